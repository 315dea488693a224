"""A data partition grows to fill the card on first boot, as Raspberry Pi OS's does.

A card image is written to cards larger than itself: its data partition, the last on the disk,
gets the free space after it. In two steps, each safe to cut the power in: the partition table
(one 512-byte sector, the MBR: the partition's entry gets its new length, then the kernel is told
with BLKPG_RESIZE_PARTITION, which works while the boot partition is in use), then, once the
partition is mounted, the ext4 file system (EXT4_IOC_RESIZE_FS: the kernel's online resize,
journalled). Each step compares what is with what the card allows, so a boot cut in between
completes the rest; nothing is ever formatted. GPT disks and logical partitions are left alone.
"""

from __future__ import annotations

import posix

from init.console import Log, errname
from init.kernel import Kernel

SECTOR = 512
MIN_GROWTH = 1 << 20           # bytes: less is not worth a partition table write
EXT4_IOC_RESIZE_FS = 0x40086610   # _IOW('f', 16, __u64)
GPT_PROTECTIVE = 0xEE
EXTENDED = (0x05, 0x0F, 0x85)


def planned(mbr: bytes, number: int, start: int, disk_sectors: int) -> tuple[int, int] | None:
    """(old, new) sector counts of primary partition `number` (1-4), which begins at sector
    `start`, grown up to the next partition or the disk's end; None when it cannot or need not
    grow (no MBR, a GPT disk, a partition the table does not show there, < MIN_GROWTH)."""
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa" or not 1 <= number <= 4:
        return None
    entries = [(mbr[446 + 16 * i + 4], int.from_bytes(mbr[446 + 16 * i + 8:446 + 16 * i + 12],
                                                       "little"),
                int.from_bytes(mbr[446 + 16 * i + 12:446 + 16 * i + 16], "little"))
               for i in range(4)]
    if any(kind == GPT_PROTECTIVE for kind, _, _ in entries):
        return None
    kind, first, count = entries[number - 1]
    if kind == 0 or kind in EXTENDED or first != start:
        return None
    limit = min([disk_sectors, 1 << 32,
                 *(other for k, other, n in entries if k and n and other > first)])
    new = limit - first
    if (new - count) * SECTOR < MIN_GROWTH:
        return None
    return count, new


def with_count(mbr: bytes, number: int, count: int) -> bytes:
    """The MBR sector with partition `number`'s sector count set to `count`."""
    at = 446 + 16 * (number - 1) + 12
    return mbr[:at] + count.to_bytes(4, "little") + mbr[at + 4:SECTOR]


def mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB"


def grow_partition(kernel: Kernel, sysfs: str, dev: str, name: str, disk: str, log: Log) -> None:
    """Partition `name` of `disk` (/sys/class/block names; `sysfs` that folder, `dev` the
    folder of their nodes) to the end of the free space after it."""
    try:
        number = int(kernel.read_text(f"{sysfs}/{name}/partition"))
        start = int(kernel.read_text(f"{sysfs}/{name}/start"))
        disk_sectors = int(kernel.read_text(f"{sysfs}/{disk}/size"))
        mbr = kernel.read_file(f"{dev}/{disk}", SECTOR, 0)
    except (OSError, ValueError) as exc:
        log(f"cannot read {disk}'s partition table to grow {name}: {errname(exc)}")
        return
    plan = planned(mbr, number, start, disk_sectors)
    if plan is None:
        return
    old, new = plan
    log(f"growing partition {number} of {disk} to fill the card: {mib(old * SECTOR)} -> "
        f"{mib(new * SECTOR)}")
    try:
        fd = kernel.open(f"{dev}/{disk}", posix.O_RDWR | posix.O_CLOEXEC)
        try:
            kernel.write(fd, with_count(mbr, number, new))
            kernel.fsync(fd)
            kernel.resize_partition(fd, number, start * SECTOR, new * SECTOR)
        finally:
            kernel.close(fd)
    except OSError as exc:
        log(f"cannot grow partition {number} of {disk}: {errname(exc)}; it keeps "
            f"{mib(old * SECTOR)}")


def grow_filesystem(kernel: Kernel, sysfs: str, device: str, name: str, mountpoint: str,
                    log: Log) -> None:
    """The ext2/3/4 file system on `device` (mounted at `mountpoint`) to fill its partition."""
    try:
        superblock = kernel.read_file(device, 1024, 1024)
        block_size = 1024 << int.from_bytes(superblock[0x18:0x1C], "little")
        blocks = int.from_bytes(superblock[0x04:0x08], "little")
        if int.from_bytes(superblock[0x60:0x64], "little") & 0x80:   # 64bit: the high half
            blocks |= int.from_bytes(superblock[0x150:0x154], "little") << 32
        size = int(kernel.read_text(f"{sysfs}/{name}/size")) * SECTOR
    except (OSError, ValueError) as exc:
        log(f"cannot read {device}'s size to grow its file system: {errname(exc)}")
        return
    target = size // block_size
    if (target - blocks) * block_size < MIN_GROWTH:
        return
    log(f"growing the file system on {mountpoint}: {mib(blocks * block_size)} -> "
        f"{mib(target * block_size)}")
    try:
        fd = kernel.open(mountpoint, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        try:
            kernel.ioctl(fd, EXT4_IOC_RESIZE_FS, target.to_bytes(8, "little"))
        finally:
            kernel.close(fd)
    except OSError as exc:
        log(f"cannot grow the file system on {mountpoint}: {errname(exc)}")
        return
    log(f"grew the file system on {mountpoint} to {mib(target * block_size)}")
