"""The SD-card image: an MBR disk with a FAT32 boot partition and an optional ext4 data partition.

Built without root or loop devices: sfdisk writes the table into the image file, mkfs.vfat
formats at an offset, mtools copies files in through `image@@offset`, and the ext4 partition is
made in its own file by mkfs.ext4 -d and copied into place. Two builds of the same inputs are
byte-identical (see _fat_copy and _ext4_normalise for how).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import atomic_output
from hostkit.run import log, run, source_date_epoch, step

MiB = 1024 * 1024
ALIGN = 4 * MiB  # SD cards erase in 4 MiB units; partitions start on one
SECTOR = 512
BOOT_START = ALIGN
# mkfs.vfat -F 32 needs 65525 clusters; with 512-byte clusters that is ~33 MiB. 64 MiB leaves
# room for a kernel update without making FAT16 a second code path to test.
FAT_MIN = 64 * MiB
FAT_LABEL = "PINIT-BOOT"
FAT_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E})
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}
# Characters FAT long names cannot hold; mtools would silently mangle them.
FAT_BAD_CHARS = set('"*:<>?\\|') | {chr(c) for c in range(32)}


@dataclass(frozen=True)
class Slots:
    """An A/B card: a switch partition (its label and files) and two slots (their labels)."""

    switch_label: str
    switch_files: dict[str, str]
    labels: tuple[str, str]


@dataclass(frozen=True)
class Partition:
    """One primary MBR partition; start and size in bytes."""

    index: int
    type: int
    start: int
    size: int


def _round_up(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _tree(root: Path) -> tuple[list[str], list[str]]:
    """Sorted relative directories and files under `root` (symlinks followed, as mcopy does)."""
    if not root.is_dir():
        raise BuildError(f"{root}: not a directory")
    dirs: list[str] = []
    files: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_dir():
            dirs.append(rel)
        elif path.is_file():
            files.append(rel)
        else:
            raise BuildError(
                f"{path}: not a regular file or directory",
                hint="a FAT boot partition holds only files and folders",
            )
    return dirs, files


def _check_fat_names(root: Path, names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        bad = FAT_BAD_CHARS.intersection(name)
        if bad:
            raise BuildError(f"{root / name}: FAT cannot hold the character(s) {sorted(bad)}")
        # FAT compares names case-insensitively; mcopy would ask whether to overwrite.
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise BuildError(f"{root}: {other!r} and {name!r} are the same name on FAT")


def _fat_size(root: Path, dirs: list[str], files: list[str]) -> int:
    # Clusters are at most 4 KiB below 1 GiB (_sectors_per_cluster); each directory takes at
    # least one cluster and every entry up to 128 bytes with its long-name slots.
    content = sum(_round_up((root / f).stat().st_size, 4096) for f in files)
    content += 4096 * (len(dirs) + 1) + 128 * (len(dirs) + len(files))
    return max(FAT_MIN, _round_up(content * 3 // 2 + 16 * MiB, ALIGN))


def _sectors_per_cluster(size: int) -> int:
    # Fixed here rather than left to mkfs.fat's table: the biggest cluster (up to 4 KiB) that
    # still leaves well over FAT32's 65525-cluster minimum.
    spc = 1
    while spc < 8 and size // SECTOR // (spc * 2) >= 140_000:
        spc *= 2
    return spc


def _digest(root: Path, files: list[str], data_label: str) -> bytes:
    """Hash of the inputs: identical inputs give identical volume and disk ids."""
    h = hashlib.sha256(f"pinit-sdimage {source_date_epoch()} {data_label}\n".encode())
    for name in files:
        h.update(name.encode() + b"\0")
        with open(root / name, "rb") as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
    return h.digest()


def _copy_range(src: Path, src_off: int, dst: Path, dst_off: int, length: int) -> None:
    """Copy bytes, skipping zero chunks: `dst` is a fresh sparse file that already reads zero."""
    with open(src, "rb") as fin, open(dst, "r+b") as fout:
        fin.seek(src_off)
        done = 0
        while done < length:
            chunk = fin.read(min(MiB, length - done))
            if not chunk:
                raise BuildError(
                    f"{src}: ends {length - done} bytes early at offset {src_off + done}"
                )
            if chunk.count(0) != len(chunk):
                fout.seek(dst_off + done)
                fout.write(chunk)
            done += len(chunk)


def _sfdisk(image: Path, disk_id: int, parts: list[tuple[int, int, int]]) -> None:
    script = [
        "label: dos",
        f"label-id: 0x{disk_id:08x}",
        "unit: sectors",
        f"sector-size: {SECTOR}",
        "",
    ]
    for start, size, ptype in parts:
        script.append(f"start={start // SECTOR}, size={size // SECTOR}, type={ptype:x}")
    run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe=never", image],
        input=("\n".join(script) + "\n").encode(),
    )


def _fat_make(
    image: Path, size: int, volume_id: int, start: int = BOOT_START, label: str = FAT_LABEL
) -> None:
    # --invariant fixes the label's timestamp; it also sets volume id 1234abcd, so the -i
    # after it (order matters to mkfs.fat) puts ours back. -h: the sectors before the partition.
    run(
        [
            "mkfs.vfat",
            "-F",
            "32",
            "-S",
            str(SECTOR),
            "-s",
            str(_sectors_per_cluster(size)),
            "-f",
            "2",
            "-R",
            "32",
            "-g",
            "255/63",
            "-h",
            str(start // SECTOR),
            "-n",
            label,
            "--invariant",
            "-i",
            f"{volume_id:08x}",
            "--mbr=n",
            f"--offset={start // SECTOR}",
            image,
            str(size // 1024),
        ],
        capture=True,
    )


def _fat_copy(image: Path, offset: int, root: Path, dirs: list[str], files: list[str]) -> None:
    """Copy the tree in sorted order, one directory at a time.

    Not `mcopy -s`: it walks directories in readdir order, which would make the FAT directory
    order (and the ~1 short names) depend on the host filesystem. Not `-m` either: mtools
    4.0.32 stamps new entries with SOURCE_DATE_EPOCH (pinned by run()), so every entry gets that
    time no matter what the source mtimes are. Empty stdin makes any mtools prompt fail."""
    target = f"{image}@@{offset}"
    if dirs:
        run(["mmd", "-i", target, *(f"::/{d}" for d in dirs)], env=MTOOLS_ENV, input=b"")
    by_dir: dict[str, list[str]] = {}
    for name in files:
        by_dir.setdefault(os.path.dirname(name), []).append(name)
    for parent in sorted(by_dir):
        run(
            ["mcopy", "-i", target, *(str(root / f) for f in by_dir[parent]), f"::/{parent}"],
            env=MTOOLS_ENV,
            input=b"",
        )


def _debugfs_quote(path: str) -> str:
    if '"' in path or any(ord(c) < 32 for c in path):
        raise BuildError(f"data file {path!r}: quotes and control characters are not supported")
    return f'"{path}"'


def _ext4_normalise(fs: Path, data_files: Path | None) -> None:
    """Own every inode by 0:0 and stamp it SOURCE_DATE_EPOCH.

    mkfs.ext4 -d (1.47.0) copies owner, atime, mtime and ctime from the source files, and ctime
    cannot be set on the host. E2FSPROGS_FAKE_TIME covers only what mke2fs itself creates
    (superblock, root, lost+found, crtime), so debugfs rewrites the rest."""
    when = f"@{source_date_epoch()}"
    paths = ["/", "/lost+found"]
    if data_files is not None:
        for dirpath, dirnames, filenames in os.walk(data_files):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                rel = Path(dirpath, name).relative_to(data_files).as_posix()
                paths.append("/" + rel)
    cmds = []
    for path in paths:
        quoted = _debugfs_quote(path)
        for field in ("uid", "gid", "atime_extra", "mtime_extra", "ctime_extra", "crtime_extra"):
            cmds.append(f"set_inode_field {quoted} {field} 0")
        for field in ("atime", "mtime", "ctime", "crtime"):
            cmds.append(f"set_inode_field {quoted} {field} {when}")
    proc = run(
        ["debugfs", "-w", "-f", "-", fs],
        capture=True,
        quiet=True,
        env={"E2FSPROGS_FAKE_TIME": str(source_date_epoch())},
        input=("\n".join(cmds) + "\n").encode(),
    )
    # debugfs exits 0 even when a command fails; its errors are the stderr lines after the banner.
    errors = [
        line
        for line in proc.stderr.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith("debugfs ")
    ]
    if errors:
        raise BuildError(f"debugfs on {fs}: {errors[0]}")


def _ext4_make(fs: Path, size: int, label: str, data_files: Path | None, digest: bytes) -> None:
    if len(label.encode()) > 16:
        raise BuildError(f"data partition label {label!r}: longer than 16 bytes (ext4 limit)")
    if data_files is not None and not data_files.is_dir():
        raise BuildError(f"{data_files}: data files must be a directory")
    fs_uuid = uuid.UUID(bytes=digest[8:24], version=4)
    seed = uuid.UUID(bytes=digest[16:32], version=4)
    with open(fs, "wb") as f:
        f.truncate(size)
    cmd: list[str | Path] = [
        "mkfs.ext4",
        "-q",
        "-F",
        "-b",
        "4096",
        "-I",
        "256",
        "-L",
        label,
        "-U",
        str(fs_uuid),
        "-E",
        f"root_owner=0:0,hash_seed={seed}",
    ]
    if data_files is not None:
        cmd += ["-d", data_files]
    # mke2fs keeps only the last -E, hence one comma-separated list above.
    run([*cmd, fs], env={"E2FSPROGS_FAKE_TIME": str(source_date_epoch())}, capture=True)
    _ext4_normalise(fs, data_files)


# The data partition PID 1 makes on a card made by copying the boot folder starts as this
# much ext4 and grows to fill the card (init/grow.py); its reserved group descriptors let the
# kernel's online resize take it to 1024 times that, and past it by meta_bg.
SEED_SIZE = 16 * MiB


def data_seed(label: str) -> bytes:
    """An empty ext4 of SEED_SIZE with `label`, as the data partition's, made the same way."""
    digest = hashlib.sha256(f"pinit data seed {label}".encode()).digest()
    fs = Path(tempfile.mkdtemp(prefix="pinit-seed-")) / "seed.ext4"
    try:
        _ext4_make(fs, SEED_SIZE, label, None, digest)
        return fs.read_bytes()
    finally:
        shutil.rmtree(fs.parent, ignore_errors=True)


def make_image(
    out: Path,
    boot_dir: Path,
    *,
    data_size: int = 0,
    data_label: str = "pinit-data",
    data_files: Path | None = None,
    size: int | None = None,
    slots: Slots | None = None,
) -> None:
    """Write the disk image `out`: FAT32 "PINIT-BOOT" at 4 MiB holding `boot_dir`, then, if
    `data_size` > 0, an ext4 partition of that size (rounded up to 4 MiB) holding `data_files`.
    `size` asks for a bigger image (the rest is left unpartitioned); all sizes in bytes.
    `slots` makes an A/B card instead: partition 1 holds only its switch files (autoboot.txt),
    the next two each a copy of `boot_dir`, with room for a boot folder twice its size; the
    data partition comes after them."""
    dirs, files = _tree(boot_dir)
    _check_fat_names(boot_dir, dirs + files)
    fat_size = _fat_size(boot_dir, dirs, files)
    data_size = _round_up(data_size, ALIGN) if data_size > 0 else 0
    fats = [(BOOT_START, fat_size, FAT_LABEL)]
    if slots is not None:
        room = 2 * sum((boot_dir / f).stat().st_size for f in files) + 16 * MiB
        fat_size = max(fat_size, _round_up(room, ALIGN))
        fats = [(BOOT_START, FAT_MIN, slots.switch_label)]
        for label in slots.labels:
            fats.append((fats[-1][0] + fats[-1][1], fat_size, label))
    data_start = fats[-1][0] + fats[-1][1]
    needed = data_start + data_size
    if size is not None and size < needed:
        raise BuildError(
            f"{out}: asked for {size} bytes but the partitions need {needed}",
            hint="leave the image size unset or make it bigger",
        )
    total = _round_up(max(needed, size or 0), ALIGN)
    digest = _digest(boot_dir, files, data_label)
    volume_id = int.from_bytes(digest[0:4], "little")
    disk_id = int.from_bytes(digest[4:8], "little") or 1  # 0 means "no id" to some tools
    parts = [(start, length, 0x0C) for start, length, _ in fats]
    if data_size:
        parts.append((data_start, data_size, 0x83))

    fs = out.with_name(f".{out.name}.ext4-scratch{os.getpid()}")  # copied into the image
    try:
        with step(f"building {out.name} ({total // MiB} MiB)"), atomic_output(out) as tmp:
            with open(tmp, "wb") as f:
                f.truncate(total)
            _sfdisk(tmp, disk_id, parts)
            for index, (start, length, label) in enumerate(fats):
                _fat_make(tmp, length, (volume_id + index) & 0xFFFFFFFF, start, label)
                if slots is not None and index == 0:
                    with tempfile.TemporaryDirectory() as switch:
                        for name, text in sorted(slots.switch_files.items()):
                            (Path(switch) / name).write_text(text)
                        _fat_copy(tmp, start, Path(switch), [], sorted(slots.switch_files))
                else:
                    _fat_copy(tmp, start, boot_dir, dirs, files)
            if data_size:
                _ext4_make(fs, data_size, data_label, data_files, digest)
                _copy_range(fs, 0, tmp, data_start, data_size)
    finally:
        fs.unlink(missing_ok=True)
    log(
        f"wrote {out}: boot {fat_size // MiB} MiB"
        + (" in each of 2 slots" if slots is not None else "")
        + (f", data {data_size // MiB} MiB" if data_size else "")
    )


def read_partitions(image: Path) -> list[Partition]:
    """The primary partitions of an MBR disk image, in table order (empty slots skipped)."""
    try:
        with open(image, "rb") as f:
            mbr = f.read(SECTOR)
            image_size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise BuildError(f"{image}: cannot read: {exc.strerror}") from exc
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise BuildError(
            f"{image}: no MBR partition table (too short or no 55aa signature)",
            hint="is this a whole-disk image rather than one partition?",
        )
    partitions = []
    for i in range(4):
        _status, ptype, lba, count = struct.unpack_from("<B3xB3xII", mbr, 446 + 16 * i)
        if ptype == 0 or count == 0:
            continue
        if ptype == 0xEE:
            raise BuildError(f"{image}: has a GPT partition table; only MBR is supported")
        part = Partition(i + 1, ptype, lba * SECTOR, count * SECTOR)
        if part.start + part.size > image_size:
            raise BuildError(
                f"{image}: partition {part.index} ends at byte "
                f"{part.start + part.size} but the file has {image_size} bytes",
                hint="the image is truncated or corrupt",
            )
        partitions.append(part)
    return partitions


def _partition(image: Path, index: int) -> Partition:
    for part in read_partitions(image):
        if part.index == index:
            return part
    raise BuildError(f"{image}: has no partition {index}")


def extract_partition(image: Path, index: int, out: Path) -> None:
    """Copy partition `index` (1-based) of `image` into the file `out`."""
    part = _partition(image, index)
    with atomic_output(out) as tmp:
        with open(tmp, "wb") as f:
            f.truncate(part.size)
        _copy_range(image, part.start, tmp, 0, part.size)


def _fat_target(image: Path, index: int) -> str:
    part = _partition(image, index)
    if part.type not in FAT_TYPES:
        raise BuildError(f"{image}: partition {index} has type 0x{part.type:02x}, not FAT")
    return f"{image}@@{part.start}"


def fat_list(image: Path, partition: int) -> list[str]:
    """Every path on a FAT partition, relative to its root; directories end in "/"."""
    proc = run(
        ["mdir", "-/", "-b", "-i", _fat_target(image, partition), "::/"],
        env=MTOOLS_ENV,
        capture=True,
        quiet=True,
    )
    paths = []
    for line in proc.stdout.decode().splitlines():
        if line.startswith("::/") and line != "::/":
            paths.append(line[3:])
    return sorted(paths)


def fat_read(image: Path, partition: int, path: str) -> bytes:
    """The contents of the file `path` (relative to the root) on a FAT partition."""
    target = _fat_target(image, partition)
    return run(
        ["mcopy", "-n", "-i", target, f"::/{path.lstrip('/')}", "-"],
        env=MTOOLS_ENV,
        capture=True,
        quiet=True,
        input=b"",
    ).stdout
