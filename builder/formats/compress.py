"""Compress an initramfs the way the kernel can unpack it, and decompress any initramfs it accepts.

Writing: gzip (Python, reproducible), zstd, xz and lz4 (host tools through run()), or none.
Reading also accepts bzip2 and lzma, which the kernel still unpacks and older images use.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable
from typing import Protocol

from hostkit.errors import BuildError
from hostkit.run import run

METHODS: tuple[str, ...] = ("gzip", "zstd", "xz", "lz4", "none")
# The default: the fastest whole boot `invoke bench` measured (the kernel's unpacking is on the
# boot's path; lz4 unpacks several times faster than gzip for some 15% more bytes to load).
DEFAULT_METHOD = "lz4"

# Magic numbers as the kernel's lib/decompress.c matches them, most specific first.
# lzma ("alone" format) has no real magic: the kernel takes properties byte 0x5d and a
# dictionary size whose low bytes are zero, and so do we.
_MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
    ("xz", b"\xfd7zXZ\x00"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("bzip2", b"BZh"),
    ("lzma", b"\x5d\x00\x00"),
)

# The kernel only unpacks an initramfs compression it was configured with (init/Kconfig RD_*).
_CONFIG_SYMBOLS: dict[str, str] = {
    "gzip": "CONFIG_RD_GZIP",
    "zstd": "CONFIG_RD_ZSTD",
    "xz": "CONFIG_RD_XZ",
    "lz4": "CONFIG_RD_LZ4",
    "bzip2": "CONFIG_RD_BZIP2",
    "lzma": "CONFIG_RD_LZMA",
}

_LZ4_LEGACY_MAGIC = 0x184C2102


class _Decoder(Protocol):
    """What zlib, lzma and bz2 stream decompressors have in common."""

    def decompress(self, data: bytes) -> bytes: ...

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise BuildError(
            f"unknown initramfs compression {method!r}", hint=f"use one of {', '.join(METHODS)}"
        )


def compress(data: bytes, method: str = DEFAULT_METHOD) -> bytes:
    """Compress `data` with `method`; the same input always gives the same bytes."""
    _check_method(method)
    if method == "none":
        return data
    if method == "gzip":
        # mtime=0 keeps the build time out of the gzip header.
        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "zstd":
        cmd = ["zstd", "-19", "-q", "-c"]
    elif method == "xz":
        # The kernel's xz decoder only verifies crc32 (it rejects the default crc64), and
        # -T1 because multi-threaded xz splits blocks by core count, so output would vary by host.
        cmd = ["xz", "--check=crc32", "-9", "-T1", "-c"]
    else:
        # -l: the legacy lz4 format is the only one the kernel's unlz4 understands.
        cmd = ["lz4", "-l", "-9", "-q", "-c"]
    return run(cmd, input=data, capture=True).stdout


def detect(data: bytes) -> str | None:
    """The compression whose magic starts `data`, or None if it has no known magic."""
    for method, magic in _MAGICS:
        if data.startswith(magic):
            return method
    return None


def _zstd_frame_length(data: bytes) -> int:
    """Length of the zstd frame at the start of `data` (RFC 8878 section 3.1.1)."""
    if len(data) < 5:
        raise BuildError("zstd stream is truncated in its frame header")
    descriptor = data[4]
    single_segment = descriptor >> 5 & 1
    content_size_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + content_size_bytes
    while True:
        if pos + 3 > len(data):
            raise BuildError(f"zstd stream is truncated at offset {pos}")
        header = int.from_bytes(data[pos : pos + 3], "little")
        block_type, size = header >> 1 & 3, header >> 3
        if block_type == 3:
            raise BuildError(f"zstd stream has a reserved block type at offset {pos}")
        # An RLE block stores one byte however long it expands.
        pos += 3 + (1 if block_type == 1 else size)
        if header & 1:
            break
    pos += 4 if descriptor & 4 else 0
    if pos > len(data):
        raise BuildError("zstd stream is truncated in its last block")
    return pos


def _lz4_legacy_length(data: bytes) -> int:
    """Length of the legacy lz4 stream at the start of `data`.

    The legacy format has no end marker: like the kernel's unlz4 we stop at the end of the data,
    at zero padding, or at the magic of the next legacy stream.
    """
    pos = 4
    while len(data) - pos >= 4:
        size = int.from_bytes(data[pos : pos + 4], "little")
        if size in (0, _LZ4_LEGACY_MAGIC):
            break
        if pos + 4 + size > len(data):
            raise BuildError(
                f"lz4 stream is truncated: the block at offset {pos} needs {size} "
                f"bytes, {len(data) - pos - 4} remain"
            )
        pos += 4 + size
    return pos


def _python_stream(data: bytes, method: str, decoder: _Decoder) -> tuple[bytes, int]:
    try:
        plain = decoder.decompress(data)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise BuildError(f"{method} stream is corrupt: {exc}") from exc
    if not decoder.eof:
        raise BuildError(f"{method} stream is truncated after {len(data)} bytes")
    return plain, len(data) - len(decoder.unused_data)


def _tool_stream(data: bytes, length: Callable[[bytes], int], cmd: list[str]) -> tuple[bytes, int]:
    # Cut the stream out first so the tool never sees what follows it (padding, another archive).
    used = length(data)
    return run(cmd, input=data[:used], capture=True, quiet=True).stdout, used


def decompress_stream(data: bytes) -> tuple[bytes, int]:
    """Decompress the one compressed stream at the start of `data`.

    Returns the plain bytes and how many bytes of `data` the stream used, so a caller can go on
    with whatever follows, as the kernel's unpack_to_rootfs does.
    """
    method = detect(data)
    if method == "gzip":
        # wbits=31: one gzip member with header and trailer; unused_data is what follows it.
        return _python_stream(data, method, zlib.decompressobj(wbits=31))
    if method == "xz":
        return _python_stream(data, method, lzma.LZMADecompressor(format=lzma.FORMAT_XZ))
    if method == "lzma":
        return _python_stream(data, method, lzma.LZMADecompressor(format=lzma.FORMAT_ALONE))
    if method == "bzip2":
        return _python_stream(data, method, bz2.BZ2Decompressor())
    if method == "zstd":
        return _tool_stream(data, _zstd_frame_length, ["zstd", "-d", "-q", "-c"])
    if method == "lz4":
        return _tool_stream(data, _lz4_legacy_length, ["lz4", "-d", "-q", "-c"])
    raise BuildError(f"no known compression magic: starts with {data[:6].hex(' ')}")


def decompress(data: bytes) -> bytes:
    """Decompress every stream in `data` (zero padding between them is skipped).

    Data with no compression magic is returned unchanged, so decompress(compress(x, "none")) == x.
    """
    if detect(data) is None:
        return data
    parts: list[bytes] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            pos += 1
            continue
        if detect(data[pos : pos + 6]) is None:
            raise BuildError(
                f"unexpected bytes at offset {pos} after a compressed stream: "
                f"{data[pos : pos + 6].hex(' ')}"
            )
        plain, used = decompress_stream(data[pos:])
        parts.append(plain)
        pos += used
    return b"".join(parts)


def kernel_config_symbol(method: str) -> str | None:
    """The Kconfig symbol the kernel needs to unpack `method`, or None for "none"."""
    symbol = _CONFIG_SYMBOLS.get(method)
    if symbol is None and method != "none":
        _check_method(method)
    return symbol


def _config_enabled(symbol: str, kernel_config_text: str) -> bool:
    # RD_* are bool options: "=y" or "# ... is not set"; a missing line means not set too.
    return any(line.strip() == f"{symbol}=y" for line in kernel_config_text.splitlines())


def check_kernel_supports(method: str, kernel_config_text: str, where: str) -> None:
    """Raise BuildError if the kernel whose config is `kernel_config_text` cannot unpack `method`.

    `where` names the config file (e.g. "/boot/config-6.1.0-rpi7-rpi-v8") for the message.
    """
    _check_method(method)
    symbol = kernel_config_symbol(method)
    if symbol is None or _config_enabled(symbol, kernel_config_text):
        return
    usable = [
        m
        for m in METHODS
        if (s := kernel_config_symbol(m)) is None or _config_enabled(s, kernel_config_text)
    ]
    raise BuildError(
        f"{where}: the kernel cannot unpack a {method}-compressed initramfs: {symbol} is not set",
        hint=f"choose a compression this kernel supports ({', '.join(usable)}) "
        f"or use a kernel built with {symbol}=y",
    )
