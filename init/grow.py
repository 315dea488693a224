"""A data partition grows to fill the card on first boot, as Raspberry Pi OS's does, or is
made on a card that has none.

A card image is written to cards larger than itself: its data partition, the last on the disk,
gets the free space after it. In two steps, each safe to cut the power in: the partition table
(one 512-byte sector, the MBR: the partition's entry gets its new length, then the kernel is told
with BLKPG_RESIZE_PARTITION, which works while the boot partition is in use), then, once the
partition is mounted, the ext4 file system (EXT4_IOC_RESIZE_FS: the kernel's online resize,
journalled). Each step compares what is with what the card allows, so a boot cut in between
completes the rest; growing never formats. GPT disks and logical partitions are left alone.

A card made the seed's way (the boot folder copied onto a FAT card) has no data partition. When
the builder made the [data] (`Data.create`), the image carries a seed: a small empty ext4 with
the partition's label, made by the builder's mkfs.ext4, stored as its non-zero blocks
(`encode_seed`). On a card whose MBR has a free entry and free space after its partitions, the
seed is written into that free space first (nobody's data: no partition covers it), and only
then the partition's entry, in one sector write: a power cut before it leaves free space for the
next boot to do again, after it a partition with a file system, found by its label, checked,
mounted and grown to fill the card as above. An existing partition is never written to.
A card with no room after its FAT partition keeps the data in a file on it instead
(`Data.file` bytes, DATA_FILE): made once from the seed under a temporary name and renamed,
attached to a loop device that lets go of it when /data is unmounted (LOOP_CONFIGURE with
autoclear), and checked, mounted and grown like a partition. The same seed is what
`on_damage = "format"` writes over a partition e2fsck cannot save (`format_device`), only when
the pinit.toml asks.
"""

from __future__ import annotations

import posix

from init.console import Log, errname

TYPE_CHECKING = False
if TYPE_CHECKING:
    from init.kernel import Kernel

SECTOR = 512
MIN_GROWTH = 1 << 20  # bytes: less is not worth a partition table write
EXT4_IOC_RESIZE_FS = 0x40086610  # _IOW('f', 16, __u64)
GPT_PROTECTIVE = 0xEE
EXTENDED = (0x05, 0x0F, 0x85)
FAT_TYPES = (0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E)
LINUX = 0x83
ALIGN = 8192  # sectors (4 MiB), where a new partition starts, as the builder's
SEED_PATH = "/usr/lib/pinit/data.seed"
SEED_MAGIC = b"pinit-seed\n"
SEED_BLOCK = 4096
DATA_FILE = "pinit-data.img"  # on the card's FAT partition, when there is no room for one
FAT_MOUNT = "/run/pinit/boot"
LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A
LO_FLAGS_AUTOCLEAR = 4


def mbr_entries(mbr: bytes) -> list[tuple[int, int, int]] | None:
    """The four primary entries of an MBR sector as (type, first sector, sectors), or None when
    `mbr` is not one."""
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return None
    return [
        (
            mbr[at + 4],
            int.from_bytes(mbr[at + 8 : at + 12], "little"),
            int.from_bytes(mbr[at + 12 : at + 16], "little"),
        )
        for at in range(446, 446 + 64, 16)
    ]


def planned(mbr: bytes, number: int, start: int, disk_sectors: int) -> tuple[int, int] | None:
    """(old, new) sector counts of primary partition `number` (1-4), which begins at sector
    `start`, grown up to the next partition or the disk's end; None when it cannot or need not
    grow (no MBR, a GPT disk, a partition the table does not show there, < MIN_GROWTH)."""
    entries = mbr_entries(mbr)
    if entries is None or not 1 <= number <= 4:
        return None
    if any(kind == GPT_PROTECTIVE for kind, _, _ in entries):
        return None
    kind, first, count = entries[number - 1]
    if kind == 0 or kind in EXTENDED or first != start:
        return None
    limit = min(
        [disk_sectors, 1 << 32, *(other for k, other, n in entries if k and n and other > first)]
    )
    new = limit - first
    if (new - count) * SECTOR < MIN_GROWTH:
        return None
    return count, new


def with_count(mbr: bytes, number: int, count: int) -> bytes:
    """The MBR sector with partition `number`'s sector count set to `count`."""
    at = 446 + 16 * (number - 1) + 12
    return mbr[:at] + count.to_bytes(4, "little") + mbr[at + 4 : SECTOR]


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
    log(
        f"growing partition {number} of {disk} to fill the card: {mib(old * SECTOR)} -> "
        f"{mib(new * SECTOR)}"
    )
    try:
        fd = kernel.open(f"{dev}/{disk}", posix.O_RDWR | posix.O_CLOEXEC)
        try:
            kernel.pwrite(fd, with_count(mbr, number, new), 0)
            kernel.fsync(fd)
            kernel.partition(fd, number, start * SECTOR, new * SECTOR)
        finally:
            kernel.close(fd)
    except OSError as exc:
        log(
            f"cannot grow partition {number} of {disk}: {errname(exc)}; it keeps "
            f"{mib(old * SECTOR)}"
        )


def grow_filesystem(
    kernel: Kernel, sysfs: str, device: str, name: str, mountpoint: str, log: Log
) -> None:
    """The ext2/3/4 file system on `device` (mounted at `mountpoint`) to fill its partition."""
    try:
        superblock = kernel.read_file(device, 1024, 1024)
        if superblock[0x38:0x3A] != b"\x53\xef":
            return  # not what was mounted as ext2/3/4 after all: nothing to grow
        block_size = 1024 << int.from_bytes(superblock[0x18:0x1C], "little")
        blocks = int.from_bytes(superblock[0x04:0x08], "little")
        if int.from_bytes(superblock[0x60:0x64], "little") & 0x80:  # 64bit: the high half
            blocks |= int.from_bytes(superblock[0x150:0x154], "little") << 32
        size = int(kernel.read_text(f"{sysfs}/{name}/size")) * SECTOR
    except (OSError, ValueError) as exc:
        log(f"cannot read {device}'s size to grow its file system: {errname(exc)}")
        return
    target = size // block_size
    if (target - blocks) * block_size < MIN_GROWTH:
        return
    log(
        f"growing the file system on {mountpoint}: {mib(blocks * block_size)} -> "
        f"{mib(target * block_size)}"
    )
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


def encode_seed(image: bytes) -> bytes:
    """An ext4 image as the seed PID 1 writes: magic, size and count of non-zero blocks (u32
    each), their indexes (u32), then their bytes; every other block is zeros."""
    blocks = len(image) // SEED_BLOCK
    kept = [i for i in range(blocks) if image[i * SEED_BLOCK : (i + 1) * SEED_BLOCK].strip(b"\0")]
    return b"".join(
        (
            SEED_MAGIC,
            len(image).to_bytes(4, "little"),
            len(kept).to_bytes(4, "little"),
            *(i.to_bytes(4, "little") for i in kept),
            *(image[i * SEED_BLOCK : (i + 1) * SEED_BLOCK] for i in kept),
        )
    )


def decode_seed(seed: bytes) -> tuple[int, dict[int, bytes]]:
    """(size in bytes, {block index: its bytes}) of a seed; ValueError if it is not one."""
    if not seed.startswith(SEED_MAGIC):
        raise ValueError("not a pinit data seed")
    at = len(SEED_MAGIC)
    size = int.from_bytes(seed[at : at + 4], "little")
    count = int.from_bytes(seed[at + 4 : at + 8], "little")
    first = at + 8 + 4 * count
    if len(seed) != first + count * SEED_BLOCK:
        raise ValueError("a truncated pinit data seed")
    return size, {
        int.from_bytes(seed[at + 8 + 4 * n : at + 12 + 4 * n], "little"): seed[
            first + n * SEED_BLOCK : first + (n + 1) * SEED_BLOCK
        ]
        for n in range(count)
    }


def free_space(mbr: bytes, disk_sectors: int, size: int) -> tuple[int, int, int] | None:
    """(entry number, start, sectors) for a new partition of at least `size` bytes after a
    card's partitions, on a card made the seed's way: an MBR with a FAT partition, no Linux
    one and a free entry; None when there is none (a GPT disk, no FAT, no room)."""
    entries = mbr_entries(mbr)
    if entries is None:
        return None
    used = [(kind, start, count) for kind, start, count in entries if kind and count]
    # A Linux partition means a card made otherwise (its data partition damaged beyond
    # finding, say): never a second one beside it.
    if (
        any(kind in (GPT_PROTECTIVE, LINUX) for kind, _, _ in used)
        or not any(kind in FAT_TYPES for kind, _, _ in used)
        or len(used) == 4
    ):
        return None
    end = max(start + count for _, start, count in used)
    start = -(-end // ALIGN) * ALIGN
    sectors = min(disk_sectors, 1 << 32) - start
    if sectors * SECTOR < size:
        return None
    number = next(i + 1 for i, (kind, _, count) in enumerate(entries) if not (kind and count))
    return number, start, sectors


def with_entry(mbr: bytes, number: int, start: int, sectors: int) -> bytes:
    """The MBR sector with entry `number` a Linux partition of `sectors` from `start`."""
    at = 446 + 16 * (number - 1)
    entry = (
        bytes(4)
        + bytes((LINUX,))
        + bytes(3)
        + start.to_bytes(4, "little")
        + sectors.to_bytes(4, "little")
    )
    return mbr[:at] + entry + mbr[at + 16 : SECTOR]


def read_seed(kernel: Kernel, why: str, log: Log) -> tuple[int, dict[int, bytes]] | None:
    """The image's seed (decode_seed), or None after a console line saying `why` fails."""
    try:
        return decode_seed(kernel.read_file(SEED_PATH))
    except OSError as exc:
        log(f"cannot {why}: {SEED_PATH}: {errname(exc)}")
    except ValueError as exc:
        log(f"cannot {why}: {SEED_PATH}: {exc}")
    return None


def write_seed(kernel: Kernel, fd: int, offset: int, seed: tuple[int, dict[int, bytes]]) -> None:
    """The seed's file system at byte `offset` of `fd`: every block, zeros included, then
    fsync (what was there before is overwritten, whatever it was)."""
    size, blocks = seed
    zeros = bytes(SEED_BLOCK)
    for index in range(size // SEED_BLOCK):
        kernel.pwrite(fd, blocks.get(index, zeros), offset + index * SEED_BLOCK)
    kernel.fsync(fd)


def format_device(kernel: Kernel, device: str, log: Log) -> bool:
    """The seed's empty file system on `device` (on_damage = "format"); True when written."""
    seed = read_seed(kernel, f"format {device}", log)
    if seed is None:
        return False
    try:
        fd = kernel.open(device, posix.O_RDWR | posix.O_CLOEXEC)
        try:
            write_seed(kernel, fd, 0, seed)
        finally:
            kernel.close(fd)
    except OSError as exc:
        log(f"cannot format {device}: {errname(exc)}")
        return False
    return True


def create_partition(kernel: Kernel, sysfs: str, dev: str, disks: list[str], log: Log) -> bool:
    """A data partition, from the seed, in the free space of the first of `disks` (whole
    disks, SD cards first) made the seed's way. True when one was made."""
    seed = read_seed(kernel, "make a data partition", log)
    if seed is None:
        return False
    for disk in disks:
        try:
            disk_sectors = int(kernel.read_text(f"{sysfs}/{disk}/size"))
            mbr = kernel.read_file(f"{dev}/{disk}", SECTOR, 0)
        except (OSError, ValueError):
            continue
        found = free_space(mbr, disk_sectors, seed[0])
        if found is None:
            continue
        number, start, sectors = found
        log(
            f"making the data partition (first boot): partition {number} of {disk}, "
            f"{mib(sectors * SECTOR)}"
        )
        try:
            fd = kernel.open(f"{dev}/{disk}", posix.O_RDWR | posix.O_CLOEXEC)
            try:
                write_seed(kernel, fd, start * SECTOR, seed)  # nobody's space: no partition yet
                kernel.pwrite(fd, with_entry(mbr, number, start, sectors), 0)
                kernel.fsync(fd)
                kernel.partition(fd, number, start * SECTOR, sectors * SECTOR, add=True)
            finally:
                kernel.close(fd)
        except OSError as exc:
            log(f"cannot make the data partition on {disk}: {errname(exc)}")
            return False
        return True
    log("no card with free space after a FAT partition for the data partition")
    return False


def fat_partition(kernel: Kernel, dev: str, disks: list[str]) -> str | None:
    """The first FAT partition's /sys/class/block name on the first of `disks` that has one."""
    for disk in disks:
        try:
            mbr = kernel.read_file(f"{dev}/{disk}", SECTOR, 0)
        except OSError:
            continue
        for number, (kind, _, _) in enumerate(mbr_entries(mbr) or [], start=1):
            if kind in FAT_TYPES:
                return f"{disk}{'p' if disk[-1].isdigit() else ''}{number}"
    return None


def loop_config(fd: int, name: str) -> bytes:
    """struct loop_config: the backing fd, the default block size, a loop_info64 whose
    lo_flags say autoclear (offset 52) and whose lo_file_name names the file (56), reserved."""
    info = bytearray(232)
    info[52:56] = LO_FLAGS_AUTOCLEAR.to_bytes(4, "little")
    info[56 : 56 + min(len(name), 63)] = name.encode()[:63]
    return fd.to_bytes(4, "little") + bytes(4) + bytes(info) + bytes(64)


def data_file(
    kernel: Kernel,
    dev: str,
    fat: str,
    fat_device: str,
    mount_at: str,
    size: int,
    mounts: list[str],
    held: list[int],
    log: Log,
) -> str | None:
    """The data in DATA_FILE on the FAT partition `fat` (its node `fat_device`, mounted at
    `mount_at` and added to `mounts`): made from the seed the first time, attached to a loop
    device. Returns the loop device's path (in `dev`), None when impossible (said). The loop
    device's fd is left open in `held`: autoclear detaches a loop device at its last close,
    so the caller closes it once /data is mounted (the mount holds it from then on)."""
    try:
        for folder in (mount_at.rpartition("/")[0], mount_at):  # /run/pinit comes later
            try:
                kernel.mkdir(folder, 0o755)
            except FileExistsError:
                pass
        kernel.mount(fat_device, mount_at, "vfat", 0, "")
    except OSError as exc:
        log(f"cannot mount {fat} for the data file: {errname(exc)}")
        return None
    mounts.append(mount_at)
    path = f"{mount_at}/{DATA_FILE}"
    try:
        if not kernel.exists(path):
            seed = read_seed(kernel, "make the data file", log)
            if seed is None:
                return None
            seed_size, blocks = seed
            log(f"making the data file (first boot): {DATA_FILE} on {fat}, {mib(size)}")
            partial = path + ".new"  # a cut before the rename: made again from the start
            fd = kernel.open(
                partial, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600
            )
            try:
                for index, block in sorted(blocks.items()):
                    kernel.pwrite(fd, block, index * SEED_BLOCK)
                kernel.ftruncate(fd, max(size, seed_size))
                kernel.fsync(fd)
            finally:
                kernel.close(fd)
            kernel.rename(partial, path)
            kernel.sync()
        control = kernel.open(f"{dev}/loop-control", posix.O_RDWR | posix.O_CLOEXEC)
        try:
            number = kernel.ioctl_int(control, LOOP_CTL_GET_FREE, 0)
        finally:
            kernel.close(control)
        backing = kernel.open(path, posix.O_RDWR | posix.O_CLOEXEC)
        try:
            loop = kernel.open(f"{dev}/loop{number}", posix.O_RDWR | posix.O_CLOEXEC)
            held.append(loop)
            kernel.ioctl(loop, LOOP_CONFIGURE, loop_config(backing, path))
        finally:
            kernel.close(backing)
    except OSError as exc:
        log(f"cannot use the data file {DATA_FILE} on {fat}: {errname(exc)}")
        return None
    log(f"the data is in {DATA_FILE} on {fat} (loop{number})")
    return f"{dev}/loop{number}"
