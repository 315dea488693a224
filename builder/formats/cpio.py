"""Write and read cpio "newc" archives, the format the kernel unpacks into the initramfs.

Modelled on Linux usr/gen_init_cpio and u-root pkg/cpio: an archive is a list of small values
(Dir, File, Symlink, CharDev, BlockDev, Fifo); write() turns them into reproducible bytes and
read() turns bytes back into them, following the kernel's init/initramfs.c where it matters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.formats import compress
from hostkit.errors import BuildError
from hostkit.run import source_date_epoch

NEWC_MAGIC = b"070701"
CRC_MAGIC = b"070702"  # newc plus a byte-sum of each file's data in the check field
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110  # 6 magic bytes + 13 fields of 8 hex digits
_HEX_FIELDS = re.compile(rb"[0-9A-Fa-f]{104}")
_MAX_FIELD = 0xFFFFFFFF

# File type bits of st_mode (<sys/stat.h>), as stored in the header's mode field.
S_IFMT = 0o170000
S_IFSOCK = 0o140000
S_IFLNK = 0o120000
S_IFREG = 0o100000
S_IFBLK = 0o060000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFIFO = 0o010000

# The kernel's dev_t keeps 12 bits of major and 20 of minor (MKDEV in include/linux/kdev_t.h).
_MAX_MAJOR = (1 << 12) - 1
_MAX_MINOR = (1 << 20) - 1


def normalise_path(path: str) -> str:
    """ "/dev/console", "dev/console" and "./dev//console" all become "dev/console".

    The kernel unpacks names relative to "/", and gen_init_cpio and `find .` write them without
    a leading slash; ".." is refused because it could step outside the root.
    """
    if "\0" in path:
        raise BuildError(f"cpio entry {path!r}: a path cannot contain a NUL byte")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BuildError(f"cpio entry {path!r}: '..' is not allowed in an archive path")
    if not parts:
        raise BuildError(
            f"cpio entry {path!r}: the archive root itself cannot be an entry",
            hint="the kernel's rootfs already has /; add entries below it",
        )
    return "/".join(parts)


def _check_mode(path: str, mode: int) -> None:
    if not 0 <= mode <= 0o7777:
        raise BuildError(f"cpio entry {path}: mode {mode:#o} is not a permission mode (0..0o7777)")


@dataclass(frozen=True)
class _Node:
    path: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", normalise_path(self.path))


@dataclass(frozen=True)
class Dir(_Node):
    mode: int = 0o755

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_mode(self.path, self.mode)


@dataclass(frozen=True, repr=False)
class File(_Node):
    data: bytes
    mode: int = 0o644

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_mode(self.path, self.mode)
        if len(self.data) > _MAX_FIELD:
            raise BuildError(
                f"cpio entry {self.path}: {len(self.data)} bytes is more than newc "
                "can store (4 GiB - 1)"
            )

    @classmethod
    def from_host(cls, path: str, host: Path, mode: int | None = None) -> File:
        """A File at archive `path` holding the bytes of the host file `host`.

        Without `mode`, it is 0o755 if the host file is executable by its owner, else 0o644:
        the host's exact bits depend on its umask, and the archive should not.
        """
        try:
            data = host.read_bytes()
            executable = bool(host.stat().st_mode & 0o100)
        except OSError as exc:
            raise BuildError(f"cpio entry {path}: cannot read {host}: {exc.strerror}") from exc
        if mode is None:
            mode = 0o755 if executable else 0o644
        return cls(path, data, mode)

    def __repr__(self) -> str:
        # Whole binaries in a repr drown test failures and error messages; show a digest instead.
        shown = (
            repr(self.data)
            if len(self.data) <= 32
            else (f"<{len(self.data)} bytes sha256:{hashlib.sha256(self.data).hexdigest()[:12]}>")
        )
        return f"File({self.path!r}, {shown}, mode={self.mode:#o})"


@dataclass(frozen=True)
class Symlink(_Node):
    target: str

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target or "\0" in self.target:
            raise BuildError(
                f"cpio entry {self.path}: symlink target {self.target!r} is empty "
                "or contains a NUL byte"
            )


@dataclass(frozen=True)
class _DevNode(_Node):
    major: int
    minor: int
    mode: int = 0o600

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_mode(self.path, self.mode)
        if not (0 <= self.major <= _MAX_MAJOR and 0 <= self.minor <= _MAX_MINOR):
            raise BuildError(
                f"cpio entry {self.path}: device {self.major},{self.minor} is out "
                f"of range (major 0..{_MAX_MAJOR}, minor 0..{_MAX_MINOR})"
            )


@dataclass(frozen=True)
class CharDev(_DevNode):
    pass


@dataclass(frozen=True)
class BlockDev(_DevNode):
    pass


@dataclass(frozen=True)
class Fifo(_Node):
    mode: int = 0o600

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_mode(self.path, self.mode)


Entry = Dir | File | Symlink | CharDev | BlockDev | Fifo


def _describe(entry: Entry) -> str:
    if isinstance(entry, File):
        return f"a file ({len(entry.data)} bytes, mode {entry.mode:#o})"
    if isinstance(entry, Symlink):
        return f"a symlink to {entry.target}"
    if isinstance(entry, CharDev | BlockDev):
        kind = "character" if isinstance(entry, CharDev) else "block"
        return f"a {kind} device {entry.major},{entry.minor} (mode {entry.mode:#o})"
    return f"a {'directory' if isinstance(entry, Dir) else 'fifo'} (mode {entry.mode:#o})"


def _complete(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Entries by path, with every missing parent added as a 0755 directory."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        first = by_path.setdefault(entry.path, entry)
        if first != entry:
            raise BuildError(
                f"cpio: two different entries for {entry.path}: "
                f"{_describe(first)} and {_describe(entry)}",
                hint="remove one of them from the initramfs contents",
            )
    for path in list(by_path):
        parent = path.rpartition("/")[0]
        while parent:
            existing = by_path.setdefault(parent, Dir(parent))
            if not isinstance(existing, Dir):
                raise BuildError(
                    f"cpio: {path} is inside {parent}, which is "
                    f"{_describe(existing)}, not a directory"
                )
            parent = parent.rpartition("/")[0]
    return by_path


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _record(
    out: bytearray,
    name: str,
    *,
    ino: int,
    mode: int,
    nlink: int,
    mtime: int,
    data: bytes = b"",
    rdev: tuple[int, int] = (0, 0),
) -> None:
    encoded = name.encode("utf-8", "surrogateescape") + b"\0"
    # Field order of struct cpio_newc_header; uid, gid and the archive's own device stay 0.
    fields = (ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    out += NEWC_MAGIC + b"".join(b"%08X" % field for field in fields) + encoded
    out += _pad(_HEADER_LEN + len(encoded))
    out += data + _pad(len(data))


def _header_values(entry: Entry) -> tuple[int, bytes, tuple[int, int]]:
    """The header mode, the data and the device number that describe `entry`."""
    if isinstance(entry, Dir):
        return S_IFDIR | entry.mode, b"", (0, 0)
    if isinstance(entry, File):
        return S_IFREG | entry.mode, entry.data, (0, 0)
    if isinstance(entry, Symlink):
        # Symlink permissions mean nothing on Linux; 0777 is what every tool writes.
        return S_IFLNK | 0o777, entry.target.encode("utf-8", "surrogateescape"), (0, 0)
    if isinstance(entry, CharDev):
        return S_IFCHR | entry.mode, b"", (entry.major, entry.minor)
    if isinstance(entry, BlockDev):
        return S_IFBLK | entry.mode, b"", (entry.major, entry.minor)
    return S_IFIFO | entry.mode, b"", (0, 0)


def write(entries: Iterable[Entry], mtime: int | None = None) -> bytes:
    """A newc archive of `entries`; the same entries in any order give the same bytes.

    Parents come before their contents and missing parents are added as 0755 directories.
    Everything is owned by 0:0 and dated `mtime` (default SOURCE_DATE_EPOCH).
    """
    stamp = source_date_epoch() if mtime is None else mtime
    if not 0 <= stamp <= _MAX_FIELD:
        raise BuildError(f"cpio: mtime {stamp} does not fit the 32-bit newc field")
    by_path = _complete(entries)
    out = bytearray()
    # Sorting by components (not by string) keeps each directory's contents right after it.
    for ino, path in enumerate(sorted(by_path, key=lambda p: p.split("/")), start=1):
        entry = by_path[path]
        mode, data, rdev = _header_values(entry)
        # Directories have nlink 2 ("." and the name in the parent), as on a real filesystem.
        nlink = 2 if isinstance(entry, Dir) else 1
        _record(out, path, ino=ino, mode=mode, nlink=nlink, mtime=stamp, data=data, rdev=rdev)
    _record(out, TRAILER, ino=0, mode=0, nlink=1, mtime=0)
    return bytes(out)


def _entry(name: str, mode: int, data: bytes, rdev: tuple[int, int]) -> Entry:
    perm, kind = mode & 0o7777, mode & S_IFMT
    if kind == S_IFDIR:
        return Dir(name, perm)
    if kind == S_IFREG:
        return File(name, data, perm)
    if kind == S_IFLNK:
        return Symlink(name, data.decode("utf-8", "surrogateescape"))
    if kind == S_IFCHR:
        return CharDev(name, rdev[0], rdev[1], perm)
    if kind == S_IFBLK:
        return BlockDev(name, rdev[0], rdev[1], perm)
    if kind == S_IFIFO:
        return Fifo(name, perm)
    raise BuildError(f"cpio entry {name}: unsupported file type {kind:#o} (mode {mode:#o})")


def _read_archive(data: bytes, pos: int, label: str) -> tuple[list[Entry], int]:
    """Parse one archive starting at `pos`, up to and including its trailer.

    Returns its entries and the offset just past the trailer's padding.
    """
    entries: list[Entry] = []
    # GNU cpio stores a hard-linked file's data only with its last link; earlier links wait here.
    waiting: dict[tuple[int, int, int], list[tuple[int, File]]] = {}
    while True:
        start = pos
        if len(data) - pos < _HEADER_LEN:
            what = "no TRAILER!!! record" if pos == len(data) else "a header is cut short"
            raise BuildError(f"{label}: truncated at offset {pos}: {what}")
        magic = data[pos : pos + 6]
        if magic not in (NEWC_MAGIC, CRC_MAGIC):
            raise BuildError(
                f"{label}: bad magic {magic!r} at offset {pos} (expected 070701 newc or 070702 crc)"
            )
        if not _HEX_FIELDS.fullmatch(data, pos + 6, pos + _HEADER_LEN):
            raise BuildError(
                f"{label}: header at offset {pos} has a field that is not 8 hex digits"
            )
        (
            ino,
            mode,
            _uid,
            _gid,
            nlink,
            _mtime,
            size,
            major,
            minor,
            rmajor,
            rminor,
            namesize,
            check,
        ) = (int(data[i : i + 8], 16) for i in range(pos + 6, pos + _HEADER_LEN, 8))
        pos += _HEADER_LEN
        if pos + namesize > len(data):
            raise BuildError(
                f"{label}: truncated at offset {pos}: the name needs {namesize} "
                f"bytes, {len(data) - pos} remain"
            )
        if namesize == 0 or data[pos + namesize - 1] != 0:
            raise BuildError(
                f"{label}: header at offset {start}: name is not NUL-terminated "
                f"within its namesize {namesize}"
            )
        name = data[pos : pos + namesize - 1].decode("utf-8", "surrogateescape")
        pos += namesize + len(_pad(_HEADER_LEN + namesize))
        if name == TRAILER:
            return entries, pos
        if pos + size > len(data):
            raise BuildError(
                f"{label}: truncated at offset {pos}: {name} needs {size} bytes of "
                f"data, {len(data) - pos} remain"
            )
        body = data[pos : pos + size]
        pos += size + len(_pad(size))
        if magic == CRC_MAGIC and mode & S_IFMT == S_IFREG and sum(body) & _MAX_FIELD != check:
            raise BuildError(f"{label}: checksum mismatch for {name} at offset {start}")
        # `find . | cpio -o` writes the root as "."; rootfs already has it, and an Entry is
        # always something below the root.
        if name in (".", "./"):
            continue
        try:
            entry = _entry(name, mode, body, (rmajor, rminor))
        except BuildError as exc:
            raise BuildError(f"{label}: entry at offset {start}: {exc}") from exc
        if isinstance(entry, File) and nlink > 1:
            links = waiting.setdefault((major, minor, ino), [])
            if size == 0:
                links.append((len(entries), entry))
            else:
                for index, link in links:
                    entries[index] = dataclasses.replace(link, data=body)
                links.clear()
        entries.append(entry)


def _read_all(data: bytes, label: str) -> list[Entry]:
    entries: list[Entry] = []
    pos = 0
    while pos < len(data):
        # Like the kernel's do_reset: zero padding may separate archives, which stay 4-aligned.
        if data[pos] == 0:
            pos += 1
            continue
        if pos % 4:
            raise BuildError(
                f"{label}: archive at offset {pos} is not 4-byte aligned (broken padding)"
            )
        archive, pos = _read_archive(data, pos, label)
        entries += archive
    return entries


def read(data: bytes) -> list[Entry]:
    """The entries of the (possibly concatenated) uncompressed newc archives in `data`.

    Entries come in archive order; a path may repeat, and the later entry wins when the kernel
    unpacks it. The root "." entry some tools write is left out.
    """
    return _read_all(data, "cpio")


def read_initramfs(data: bytes) -> list[Entry]:
    """The entries of an initramfs image, as the kernel's unpack_to_rootfs walks it.

    The image is a sequence of uncompressed newc archives and compressed streams (each holding
    archives), with zero padding allowed between them; Debian's is an uncompressed early cpio
    (CPU microcode) followed by a compressed main one.
    """
    entries: list[Entry] = []
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            pos += 1
            continue
        # The kernel's own test: an aligned '0' starts a cpio archive, anything else is compressed.
        if data[pos : pos + 1] == b"0" and pos % 4 == 0:
            archive, pos = _read_archive(data, pos, "initramfs")
            entries += archive
            continue
        method = compress.detect(data[pos : pos + 6])
        if method is None:
            raise BuildError(
                f"initramfs: neither a cpio archive nor a known compression at "
                f"offset {pos}: starts with {data[pos : pos + 6].hex(' ')}"
            )
        try:
            plain, used = compress.decompress_stream(data[pos:])
        except BuildError as exc:
            raise BuildError(
                f"initramfs: {method} stream at offset {pos}: {exc}", exc.hint
            ) from exc
        entries += _read_all(plain, f"initramfs: {method} stream at offset {pos}")
        pos += used
    return entries
