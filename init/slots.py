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

AUTOBOOT = "autoboot.txt"
SWITCH_PARTITION = 1  # holds autoboot.txt
SLOTS = (2, 3)
SWITCH_LABEL = "PINIT-BOOT"
SLOT_LABELS = {2: "PINIT-A", 3: "PINIT-B"}


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
