"""init/slots.py fat32_emptied: the quick format PID 1 gives the other slot before it writes an
update there, checked on real FAT32 file systems made by the builder's mkfs.vfat and read by
mtools and fsck.fat."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from init.data import label_of
from init.slots import NotFat32, fat32_emptied

MIB = 1 << 20


def fat32(path: Path, size: int = 132 * MIB) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    # The builder's geometry (builder/formats/sdimage.py): 512-byte sectors, 1 a cluster.
    subprocess.run(
        ["mkfs.vfat", "-F", "32", "-S", "512", "-s", "1", "-n", "PINIT-B", "-i", "1234abcd", path],
        check=True,
        capture_output=True,
    )
    return path


def put(image: Path, tmp: Path, names: dict[str, int]) -> None:
    for name, size in names.items():
        src = tmp / name.replace("/", "_")
        src.write_bytes(bytes(range(256)) * (size // 256))
        if "/" in name:
            subprocess.run(
                ["mmd", "-D", "s", "-i", image, "::/" + name.rpartition("/")[0]],
                check=False,
                capture_output=True,
            )
        subprocess.run(["mcopy", "-i", image, src, "::/" + name], check=True)


def apply(image: Path) -> None:
    with open(image, "r+b") as f:
        for offset, data in fat32_emptied(f.read(512)):
            f.seek(offset)
            f.write(data)


def listing(image: Path) -> list[str]:
    out = subprocess.run(
        ["mdir", "-b", "-/", "-i", image, "::/"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def fsck(image: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["fsck.fat", "-n", image], capture_output=True, text=True, check=False)


def test_a_full_slot_is_emptied_and_keeps_its_label_and_geometry(tmp_path: Path) -> None:
    image = fat32(tmp_path / "slot.img")
    put(image, tmp_path, {"vmlinuz": 3 * MIB, "initramfs.lz4": 5 * MIB, "overlays/a.dtbo": 4096})
    assert len(listing(image)) == 4  # overlays/ and its file
    boot = image.read_bytes()[:512]
    apply(image)
    assert listing(image) == []
    assert fsck(image).returncode == 0, fsck(image).stdout
    assert image.read_bytes()[:512] == boot
    assert label_of(image.read_bytes()[:2048]) == "PINIT-B"
    # ...and holds a whole new slot again, all of its space free.
    put(image, tmp_path, {"vmlinuz": 3 * MIB, "initramfs.lz4": 100 * MIB})
    assert fsck(image).returncode == 0


def test_a_slot_a_power_cut_left_half_written_is_emptied(tmp_path: Path) -> None:
    """A directory entry reached the card, its cluster chain did not: fsck.fat finds the slot
    damaged (the kernel, deleting such a file, turns the mount read-only). Emptied, it is whole."""
    image = fat32(tmp_path / "slot.img")
    put(image, tmp_path, {"vmlinuz": 2 * MIB})
    boot = image.read_bytes()[:512]
    reserved, fat_sectors = (
        int.from_bytes(boot[14:16], "little"),
        int.from_bytes(boot[36:40], "little"),
    )
    with open(image, "r+b") as f:  # both FATs lose the file's chain
        for n in range(2):
            f.seek((reserved + n * fat_sectors) * 512 + 12)
            f.write(bytes(4 * 1000))
    assert fsck(image).returncode != 0
    apply(image)
    assert fsck(image).returncode == 0, fsck(image).stdout
    assert listing(image) == []


@pytest.mark.parametrize(
    "boot",
    [bytes(512), b"\xeb\x58\x90" + bytes(507) + b"\x55\xaa"],
    ids=["zeros", "not FAT32"],
)
def test_what_is_not_a_fat32_slot_is_refused(boot: bytes) -> None:
    with pytest.raises(NotFat32, match="no FAT32 boot sector"):
        fat32_emptied(boot)


def test_an_impossible_geometry_is_refused(tmp_path: Path) -> None:
    boot = bytearray(fat32(tmp_path / "slot.img").read_bytes()[:512])
    boot[13] = 3  # sectors a cluster: not a power of two
    with pytest.raises(NotFat32, match="impossible geometry"):
        fat32_emptied(bytes(boot))
