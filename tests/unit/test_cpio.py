"""cpio newc bytes and initramfs compression, checked against hand-built bytes and the real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder.formats import compress, cpio
from builder.formats.cpio import BlockDev, CharDev, Dir, Fifo, File, Symlink
from hostkit.errors import BuildError

MTIME = 1700000000

ROOTFS: list[cpio.Entry] = [
    CharDev("/dev/console", 5, 1),
    File("init", b"#!/bin/sh\nexec /bin/app\n", 0o755),
    Symlink("/bin/sh", "busybox"),
    File("bin/busybox", bytes(range(256)) * 3, 0o755),
    Dir("proc", 0o555),
    File("etc/hostname", b"pi\n"),
    BlockDev("dev/mmcblk0", 179, 0, 0o660),
    Fifo("run/initctl"),
]

FIELDS = (
    "ino",
    "mode",
    "uid",
    "gid",
    "nlink",
    "mtime",
    "filesize",
    "devmajor",
    "devminor",
    "rdevmajor",
    "rdevminor",
    "namesize",
    "check",
)


def parse_headers(archive: bytes) -> list[tuple[str, dict[str, int], bytes]]:
    """An independent newc walk, so header checks do not trust cpio.read()."""
    records = []
    pos = 0
    while True:
        assert archive[pos : pos + 6] == b"070701", f"magic at {pos}"
        fields = {
            name: int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16)
            for i, name in enumerate(FIELDS)
        }
        name_end = pos + 110 + fields["namesize"]
        name = archive[pos + 110 : name_end - 1].decode()
        assert archive[name_end - 1] == 0
        data_start = (name_end + 3) // 4 * 4
        data = archive[data_start : data_start + fields["filesize"]]
        records.append((name, fields, data))
        pos = (data_start + fields["filesize"] + 3) // 4 * 4
        if name == "TRAILER!!!":
            assert pos == len(archive)
            return records


def needs(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} is not installed")


def tool(cmd: list[str], data: bytes, cwd: Path | None = None) -> bytes:
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True, cwd=cwd).stdout


# --- writer -----------------------------------------------------------------------------------


def test_one_file_archive_matches_hand_built_bytes() -> None:
    def header(ino: int, mode: int, nlink: int, mtime: int, size: int, namesize: int) -> bytes:
        values = (ino, mode, 0, 0, nlink, mtime, size, 0, 0, 0, 0, namesize, 0)
        return b"070701" + b"".join(b"%08X" % v for v in values)

    expected = (
        header(1, 0o100644, 1, 0x10, 2, 2)
        + b"a\0"
        + b"hi\0\0"
        + header(0, 0, 1, 0, 0, 11)
        + b"TRAILER!!!\0"
        + b"\0\0\0"
    )
    assert cpio.write([File("/a", b"hi")], mtime=0x10) == expected


def test_header_fields_describe_each_entry() -> None:
    records = parse_headers(cpio.write(ROOTFS, mtime=MTIME))
    by_name = {name: (fields, data) for name, fields, data in records}
    console, _ = by_name["dev/console"]
    assert console["mode"] == 0o020600
    assert (console["rdevmajor"], console["rdevminor"]) == (5, 1)
    mmc, _ = by_name["dev/mmcblk0"]
    assert mmc["mode"] == 0o060660 and (mmc["rdevmajor"], mmc["rdevminor"]) == (179, 0)
    link, target = by_name["bin/sh"]
    assert link["mode"] == 0o120777 and target == b"busybox"
    init, script = by_name["init"]
    assert init["mode"] == 0o100755 and script == b"#!/bin/sh\nexec /bin/app\n"
    assert by_name["proc"][0]["mode"] == 0o040555
    assert by_name["run/initctl"][0]["mode"] == 0o010600
    for name, fields, _ in records[:-1]:
        assert fields["uid"] == fields["gid"] == 0, name
        assert fields["mtime"] == MTIME, name
        assert fields["nlink"] == (2 if fields["mode"] & 0o170000 == 0o040000 else 1), name
        assert fields["namesize"] == len(name) + 1
    assert [fields["ino"] for _, fields, _ in records[:-1]] == list(range(1, len(records)))
    assert records[-1][0] == "TRAILER!!!"


def test_entries_sorted_with_parents_first_and_missing_parents_added() -> None:
    archive = cpio.write(
        [File("b/c/d", b""), File("a-b", b""), File("a/z", b""), Dir("b")], mtime=0
    )
    assert [name for name, _, _ in parse_headers(archive)] == [
        "a",
        "a/z",
        "a-b",
        "b",
        "b/c",
        "b/c/d",
        "TRAILER!!!",
    ]
    added = {name: fields["mode"] for name, fields, _ in parse_headers(archive)}
    assert added["a"] == added["b/c"] == 0o040755


def test_two_writes_give_identical_bytes_in_any_input_order() -> None:
    first = cpio.write(ROOTFS, mtime=MTIME)
    assert cpio.write(list(reversed(ROOTFS)), mtime=MTIME) == first
    assert cpio.write(ROOTFS, mtime=MTIME + 1) != first


def test_mtime_defaults_to_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567")
    assert {f["mtime"] for _, f, _ in parse_headers(cpio.write(ROOTFS))[:-1]} == {1234567}


def test_paths_are_normalised() -> None:
    assert File("/dev//./x", b"").path == "dev/x"
    assert cpio.write([Dir("/etc/")], mtime=0) == cpio.write([Dir("etc")], mtime=0)


@pytest.mark.parametrize("path", ["/", ".", "", "a/../../etc", "a\0b"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(BuildError, match="cpio entry"):
        Dir(path)


def test_bad_modes_and_devices_are_refused() -> None:
    with pytest.raises(BuildError, match=r"0o10644"):
        File("x", b"", 0o10644)
    with pytest.raises(BuildError, match="dev/big: device 4096,0"):
        CharDev("dev/big", 4096, 0)
    with pytest.raises(BuildError, match="mtime"):
        cpio.write([Dir("x")], mtime=-1)


def test_identical_duplicates_merge_but_different_ones_name_the_path() -> None:
    assert cpio.write([Dir("etc"), Dir("/etc")], mtime=0) == cpio.write([Dir("etc")], mtime=0)
    with pytest.raises(BuildError, match="two different entries for etc/hostname"):
        cpio.write([File("etc/hostname", b"a"), File("/etc/hostname", b"b")])
    with pytest.raises(BuildError, match="bin/sh is inside bin, which is a file"):
        cpio.write([File("bin", b""), Symlink("bin/sh", "busybox")])


def test_file_from_host_reads_bytes_and_normalises_mode(tmp_path: Path) -> None:
    script = tmp_path / "app"
    script.write_bytes(b"#!/bin/sh\n")
    script.chmod(0o700)
    assert File.from_host("/bin/app", script) == File("bin/app", b"#!/bin/sh\n", 0o755)
    script.chmod(0o600)
    assert File.from_host("bin/app", script).mode == 0o644
    assert File.from_host("bin/app", script, mode=0o400).mode == 0o400
    with pytest.raises(BuildError, match="bin/app: cannot read .*missing"):
        File.from_host("bin/app", tmp_path / "missing")


def test_file_repr_summarises_large_data() -> None:
    assert "bytes sha256:" in repr(File("big", b"x" * 100))
    assert repr(File("small", b"hi", 0o600)) == "File('small', b'hi', mode=0o600)"


# --- reader -----------------------------------------------------------------------------------


def expected_tree() -> list[cpio.Entry]:
    return [
        Dir("bin"),
        File("bin/busybox", bytes(range(256)) * 3, 0o755),
        Symlink("bin/sh", "busybox"),
        Dir("dev"),
        CharDev("dev/console", 5, 1),
        BlockDev("dev/mmcblk0", 179, 0, 0o660),
        Dir("etc"),
        File("etc/hostname", b"pi\n"),
        File("init", b"#!/bin/sh\nexec /bin/app\n", 0o755),
        Dir("proc", 0o555),
        Dir("run"),
        Fifo("run/initctl"),
    ]


def test_round_trip_write_read() -> None:
    assert cpio.read(cpio.write(ROOTFS, mtime=MTIME)) == expected_tree()


def test_concatenated_archives_with_zero_padding() -> None:
    early = cpio.write([File("kernel/x86/microcode/GenuineIntel.bin", b"ucode")], mtime=0)
    main = cpio.write([File("init", b"new")], mtime=0)
    entries = cpio.read(early + b"\0" * 8 + main + cpio.write([File("init", b"newer")], mtime=0))
    assert [e.path for e in entries] == [
        "kernel",
        "kernel/x86",
        "kernel/x86/microcode",
        "kernel/x86/microcode/GenuineIntel.bin",
        "init",
        "init",
    ]
    assert entries[-1] == File("init", b"newer")
    with pytest.raises(BuildError, match="offset 126 is not 4-byte aligned"):
        cpio.read(cpio.write([], mtime=0) + b"\0\0" + main)


def test_bad_magic_names_the_offset() -> None:
    archive = cpio.write([File("a", b"hi")], mtime=0)
    with pytest.raises(BuildError, match=r"bad magic b'070707' at offset 0"):
        cpio.read(b"070707" + archive[6:])
    with pytest.raises(BuildError, match="bad magic b'garbag' at offset 116"):
        cpio.read(archive[:116] + b"garbage" + archive[123:])


def test_non_hex_field_is_refused() -> None:
    archive = bytearray(cpio.write([File("a", b"hi")], mtime=0))
    archive[6 + 8 * 6] = ord("x")  # inside filesize
    with pytest.raises(BuildError, match="offset 0 has a field that is not 8 hex digits"):
        cpio.read(bytes(archive))


@pytest.mark.parametrize("cut", [50, 111, 113, 120, 200])
def test_truncated_archive_names_an_offset(cut: int) -> None:
    archive = cpio.write([File("a", b"hi"), Symlink("b", "a")], mtime=0)
    with pytest.raises(BuildError, match=r"cpio: truncated at offset \d+"):
        cpio.read(archive[:cut])


def test_missing_trailer_is_truncation() -> None:
    archive = cpio.write([File("a", b"hi")], mtime=0)
    with pytest.raises(BuildError, match="truncated at offset 116: no TRAILER"):
        cpio.read(archive[:116])


def test_unsupported_type_names_offset_and_path() -> None:
    archive = cpio.write([Fifo("sock")], mtime=0).replace(b"00001180", b"0000C180", 1)
    with pytest.raises(BuildError, match="entry at offset 0: .*sock: unsupported file type"):
        cpio.read(archive)


# --- against GNU cpio -------------------------------------------------------------------------


@needs("cpio")
def test_gnu_cpio_extracts_what_we_write(tmp_path: Path) -> None:
    # Device nodes are left out: creating them needs privileges a test run may not have.
    entries = [e for e in ROOTFS if not isinstance(e, CharDev | BlockDev | Fifo)]
    tool(
        ["cpio", "-i", "-d", "-m", "--no-absolute-filenames", "--quiet"],
        cpio.write(entries, mtime=MTIME),
        cwd=tmp_path,
    )
    assert (tmp_path / "init").read_bytes() == b"#!/bin/sh\nexec /bin/app\n"
    assert (tmp_path / "init").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "bin/busybox").read_bytes() == bytes(range(256)) * 3
    assert os.readlink(tmp_path / "bin/sh") == "busybox"
    assert (tmp_path / "proc").stat().st_mode & 0o7777 == 0o555
    assert (tmp_path / "etc/hostname").read_bytes() == b"pi\n"
    assert int((tmp_path / "init").stat().st_mtime) == MTIME


@needs("cpio")
def test_gnu_cpio_lists_devices_and_symlinks() -> None:
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
    listing = subprocess.run(
        ["cpio", "-t", "-v", "--quiet"],
        input=cpio.write(ROOTFS, mtime=0),
        stdout=subprocess.PIPE,
        check=True,
        env=env,
    ).stdout.decode()
    lines = {
        line.split()[-1] if "->" not in line else line.split()[-3]: line
        for line in listing.splitlines()
    }
    assert lines["dev/console"].startswith("crw-------")
    assert "5,   1" in lines["dev/console"]
    assert lines["dev/mmcblk0"].startswith("brw-rw----") and "179,   0" in lines["dev/mmcblk0"]
    assert lines["bin/sh"].startswith("lrwxrwxrwx") and lines["bin/sh"].endswith(
        "bin/sh -> busybox"
    )
    assert lines["proc"].startswith("dr-xr-xr-x")
    assert lines["run/initctl"].startswith("prw-------")
    assert list(lines) == [e.path for e in expected_tree()]


@needs("cpio")
@pytest.mark.parametrize("fmt", ["newc", "crc"])
def test_read_what_gnu_cpio_writes_including_hard_links(tmp_path: Path, fmt: str) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/busybox").write_bytes(b"BB" * 1000)
    (tree / "bin/busybox").chmod(0o755)
    os.link(tree / "bin/busybox", tree / "bin/ls")
    os.symlink("busybox", tree / "bin/sh")
    names = b"".join(p.encode() + b"\n" for p in [".", "bin", "bin/busybox", "bin/ls", "bin/sh"])
    archive = tool(["cpio", "-o", "-H", fmt, "--quiet"], names, cwd=tree)
    assert archive.startswith(b"070702" if fmt == "crc" else b"070701")
    entries = {e.path: e for e in cpio.read(archive)}
    assert "." not in entries
    assert entries["bin/busybox"] == File("bin/busybox", b"BB" * 1000, 0o755)
    assert entries["bin/ls"] == File("bin/ls", b"BB" * 1000, 0o755)
    assert entries["bin/sh"] == Symlink("bin/sh", "busybox")
    if fmt == "crc":
        corrupt = archive.replace(b"BB" * 1000, b"BC" + b"BB" * 999)
        with pytest.raises(BuildError, match="checksum mismatch for bin/"):
            cpio.read(corrupt)


# --- compression ------------------------------------------------------------------------------

PAYLOAD = cpio.write(ROOTFS, mtime=MTIME) * 20

# How each host tool decompresses, to check the kernel-facing formats against the reference.
TOOL_DECOMPRESS = {
    "gzip": ["gzip", "-d", "-c"],
    "zstd": ["zstd", "-d", "-c", "-q"],
    "xz": ["xz", "-d", "-c"],
    "lz4": ["lz4", "-d", "-c", "-q"],
}
TOOL_COMPRESS = {
    "gzip": ["gzip", "-c"],
    "zstd": ["zstd", "-c", "-q"],
    "xz": ["xz", "-c"],
    "lz4": ["lz4", "-l", "-c", "-q"],
    "bzip2": ["bzip2", "-c"],
    "lzma": ["lzma", "-c"],
}


@pytest.mark.parametrize("method", compress.METHODS)
def test_compress_round_trip_and_reproducible(method: str) -> None:
    packed = compress.compress(PAYLOAD, method)
    assert compress.decompress(packed) == PAYLOAD
    assert compress.compress(PAYLOAD, method) == packed
    assert compress.detect(packed) == (None if method == "none" else method)
    if method != "none":
        assert len(packed) < len(PAYLOAD) // 4


@pytest.mark.parametrize("method", sorted(TOOL_DECOMPRESS))
def test_real_tool_decompresses_our_output(method: str) -> None:
    if shutil.which(TOOL_DECOMPRESS[method][0]) is None:
        pytest.skip(f"{method} tool is not installed")
    assert tool(TOOL_DECOMPRESS[method], compress.compress(PAYLOAD, method)) == PAYLOAD


@pytest.mark.parametrize("method", sorted(TOOL_COMPRESS))
def test_we_decompress_real_tool_output(method: str) -> None:
    if shutil.which(TOOL_COMPRESS[method][0]) is None:
        pytest.skip(f"{method} tool is not installed")
    packed = tool(TOOL_COMPRESS[method], PAYLOAD)
    assert compress.detect(packed) == method
    assert compress.decompress(packed) == PAYLOAD
    assert cpio.read_initramfs(packed) == cpio.read(PAYLOAD)


def test_kernel_facing_format_details() -> None:
    assert compress.compress(b"x", "gzip")[4:8] == b"\0\0\0\0"  # gzip mtime field
    assert compress.compress(b"x", "xz")[7] == 0x01  # xz stream flags: check type crc32
    assert compress.compress(b"x", "lz4")[:4] == b"\x02\x21\x4c\x18"  # lz4 legacy magic


def test_decompress_concatenated_streams_and_errors() -> None:
    gz, zst = compress.compress(b"one", "gzip"), compress.compress(b"two", "zstd")
    assert compress.decompress(gz + b"\0" * 3 + zst + gz) == b"onetwoone"
    assert compress.decompress_stream(zst + gz) == (b"two", len(zst))
    with pytest.raises(BuildError, match="gzip stream is truncated"):
        compress.decompress(gz[:-4])
    with pytest.raises(BuildError, match="zstd stream is truncated"):
        compress.decompress(zst[:-2])
    with pytest.raises(BuildError, match="xz stream is corrupt"):
        compress.decompress(b"\xfd7zXZ\x00" + b"\x01" * 40)
    with pytest.raises(BuildError, match=f"unexpected bytes at offset {len(gz)}"):
        compress.decompress(gz + b"junk")
    with pytest.raises(BuildError, match="unknown initramfs compression 'brotli'"):
        compress.compress(b"", "brotli")


@pytest.mark.parametrize("method", [m for m in compress.METHODS if m != "none"])
def test_initramfs_early_cpio_then_compressed_main(method: str) -> None:
    early = cpio.write([File("kernel/x86/microcode/AuthenticAMD.bin", b"ucode")], mtime=0)
    main = compress.compress(cpio.write(ROOTFS, mtime=MTIME), method)
    extra = compress.compress(cpio.write([File("init", b"override", 0o755)], mtime=0), method)
    image = early + main + b"\0" * 16 + extra
    entries = cpio.read_initramfs(image)
    assert entries[:4] == cpio.read(early)
    assert entries[4:-1] == expected_tree()
    assert entries[-1] == File("init", b"override", 0o755)


def test_read_initramfs_names_the_offset_of_bad_parts() -> None:
    early = cpio.write([Dir("etc")], mtime=0)
    with pytest.raises(BuildError, match=f"known compression at offset {len(early)}"):
        cpio.read_initramfs(early + b"PK\x03\x04")
    bad_inner = compress.compress(b"070701 not really", "gzip")
    with pytest.raises(BuildError, match=f"gzip stream at offset {len(early)}: truncated"):
        cpio.read_initramfs(early + bad_inner)
    with pytest.raises(BuildError, match=f"zstd stream at offset {len(early)}: .*truncated"):
        cpio.read_initramfs(early + compress.compress(early, "zstd")[:-3])


# --- kernel config ----------------------------------------------------------------------------

CONFIG = """\
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
# CONFIG_RD_ZSTD is not set
CONFIG_RD_XZ=y
CONFIG_RD_LZ4_SOMETHING=y
"""


def test_kernel_config_symbols() -> None:
    assert [compress.kernel_config_symbol(m) for m in compress.METHODS] == [
        "CONFIG_RD_GZIP",
        "CONFIG_RD_ZSTD",
        "CONFIG_RD_XZ",
        "CONFIG_RD_LZ4",
        None,
    ]
    assert compress.kernel_config_symbol("bzip2") == "CONFIG_RD_BZIP2"
    with pytest.raises(BuildError, match="unknown initramfs compression 'lzo'"):
        compress.kernel_config_symbol("lzo")


def test_check_kernel_supports() -> None:
    for method in ("gzip", "xz", "none"):
        compress.check_kernel_supports(method, CONFIG, "config-6.1")
    for method, symbol in (("zstd", "CONFIG_RD_ZSTD"), ("lz4", "CONFIG_RD_LZ4")):
        with pytest.raises(BuildError) as err:
            compress.check_kernel_supports(method, CONFIG, "/boot/config-6.1.0-rpi7")
        assert str(err.value).startswith(
            f"/boot/config-6.1.0-rpi7: the kernel cannot unpack a "
            f"{method}-compressed initramfs: {symbol} is not set"
        )
        assert "(gzip, xz, none)" in err.value.hint
