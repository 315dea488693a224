"""The card's two boot slots, defined once for the builder that lays them out and PID 1 that
switches between them.

Partition 1 is a small FAT partition holding only `autoboot.txt`, the Pi 4/400/CM4/5
bootloader's A/B switch (Raspberry Pi's documentation, "autoboot.txt"); partitions 2 and 3 are
the slots, each a whole boot folder; the data partition, if any, comes after them. The
bootloader boots `boot_partition` of `[all]`, or, once after `reboot "0 tryboot"`, that of
`[tryboot]`: an update is written to the other slot, tried once, and committed by rewriting
`autoboot.txt` so that it becomes the default. Anything else (a crash, a hang the watchdog
ends, a power cut) boots the old default again.
"""

from __future__ import annotations

from init.errors import Malformed

AUTOBOOT = "autoboot.txt"
SWITCH_PARTITION = 1  # holds autoboot.txt
SLOTS = (2, 3)
SWITCH_LABEL = "PINIT-BOOT"
SLOT_LABELS = {2: "PINIT-A", 3: "PINIT-B"}
# The kernel module (init/kmod/pinit_tryboot.c) that passes "tryboot" to the Pi's firmware on
# Debian's kernel: shipped with [update], loaded by PID 1 just before it reboots to try a slot.
TRYBOOT_MODULE = "pinit_tryboot"


def other(slot: int) -> int:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


def autoboot_txt(default: int) -> str:
    """autoboot.txt that boots slot `default`, and the other slot when tried."""
    return (
        "# pinit: the A/B boot slots (partitions 2 and 3); PID 1 rewrites this file when an\n"
        "# update it tried is healthy. Edit only to go back to the other slot by hand.\n"
        f"[all]\ntryboot_a_b=1\nboot_partition={default}\n"
        f"[tryboot]\nboot_partition={other(default)}\n"
    )


def parse_autoboot(text: str) -> tuple[int, int] | None:
    """(the default slot, the tried slot) autoboot.txt names; None when it is not an A/B switch
    to slots this module knows."""
    section, values = "all", {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif "=" in line:
            key, _, value = line.partition("=")
            values[(section, key.strip())] = value.strip()
    if values.get(("all", "tryboot_a_b")) != "1":
        return None
    try:
        default = int(values.get(("all", "boot_partition"), ""))
        tried = int(values.get(("tryboot", "boot_partition"), str(other(default))))
    except ValueError:
        return None
    return (default, tried) if default in SLOTS and tried in SLOTS else None


class NotFat32(Malformed):
    """A slot whose first sector is not a FAT32 boot sector this module can empty."""


ZEROS = bytes(64 << 10)


def fat32_emptied(boot: bytes) -> list[tuple[int, bytes]]:
    """The writes (offset, bytes) that empty the FAT32 file system whose first sector is
    `boot`, keeping that sector: its geometry, label and serial. Both FATs are cleared but for
    the two reserved entries and the root directory's one cluster, the root directory is empty
    but for the label's entry, FSInfo says its counts are unknown (the kernel counts again).

    PID 1 empties the other slot so before it writes an update there, instead of deleting its
    files: a slot a power cut left half-written (directory entries whose cluster chains never
    reached the card) is then never read, and so never turns the mount read-only."""
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa" or boot[0x52:0x57] != b"FAT32":
        raise NotFat32("no FAT32 boot sector")
    size = int.from_bytes(boot[11:13], "little")
    per_cluster, reserved, fats = boot[13], int.from_bytes(boot[14:16], "little"), boot[16]
    fat_sectors = int.from_bytes(boot[36:40], "little")
    root = int.from_bytes(boot[44:48], "little")
    fsinfo = int.from_bytes(boot[48:50], "little")
    if (
        size not in (512, 1024, 2048, 4096)
        or per_cluster == 0
        or per_cluster & (per_cluster - 1)
        or not reserved
        or not fats
        or not fat_sectors
        or root < 2
    ):
        raise NotFat32(
            f"a FAT32 boot sector with an impossible geometry ({size}-byte sectors, "
            f"{per_cluster} a cluster, {reserved} reserved, {fats} FATs of {fat_sectors})"
        )
    if 4 * root + 4 > size:
        raise NotFat32(f"the root directory at cluster {root}, past the FAT's first sector")
    head = bytearray(size)
    entries = {0: 0x0FFFFF00 | boot[21], 1: 0x0FFFFFFF, root: 0x0FFFFFFF}  # media; clean; end
    for index, value in entries.items():
        head[4 * index : 4 * index + 4] = value.to_bytes(4, "little")
    writes: list[tuple[int, bytes]] = []
    for n in range(fats):
        start = (reserved + n * fat_sectors) * size
        writes.append((start, bytes(head)))
        for offset in range(size, fat_sectors * size, len(ZEROS)):
            writes.append((start + offset, ZEROS[: min(len(ZEROS), fat_sectors * size - offset)]))
    data = (reserved + fats * fat_sectors) * size
    directory = bytearray(per_cluster * size)
    directory[0:11], directory[11] = boot[0x47:0x52], 0x08  # the volume label's entry
    writes.append((data + (root - 2) * per_cluster * size, bytes(directory)))
    if 0 < fsinfo < reserved:
        info = bytearray(size)
        info[0:4], info[484:488] = b"RRaA", b"rrAa"
        info[488:496] = b"\xff" * 8  # free clusters and the next free one: unknown
        info[508:512] = b"\x00\x00\x55\xaa"
        writes.append((fsinfo * size, bytes(info)))
    return writes
