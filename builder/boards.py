"""The Pi boards a card is for: `[image] board`.

Without it a card boots every 64-bit Pi: the boot folder has each board's device tree and both
firmware families (the Pi 4 family's start4.elf, the older boards' bootcode.bin and start.elf).
Naming a board keeps only what that board reads, and only its radio's Wi-Fi firmware. Each
board names its target (toolchain/target.py): the Pi 2 B is armhf (Debian's armmp kernel), the
ARMv6 Pi Zero, Zero W and 1 are armel (Debian's rpi kernel); their cards have that kernel, the
init built for that target and services built for it (builder/config.py refuses what a 32-bit
card does not have).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from toolchain.target import AARCH64, ARMEL, ARMHF, Target

ALL = "all"


@dataclass(frozen=True)
class Board:
    title: str
    dtbs: tuple[str, ...]  # the device trees its firmware picks, upstream names
    pi4: bool  # the Pi 4 family's firmware (start4.elf, fixup4.dat) instead of start.elf
    radio: str = ""  # its Wi-Fi chip's firmware name (brcmfmac43455), "" = none
    radio_missing: str = ""  # a radio whose firmware Debian does not package
    target: Target = AARCH64  # the machine its kernel and init are built for
    # The UART on GPIO 14/15 with upstream dtbs: the Pi 3/4 mini-UART (the PL011 drives
    # Bluetooth there) is ttyS1; the Pi 2 has no radio, its PL011 is on the pins (ttyAMA0).
    serial: str = "ttyS1,115200"


BOARDS = {
    "pi-3": Board(
        "Pi 3 B, 3 B+, 3 A+",
        ("bcm2837-rpi-3-b", "bcm2837-rpi-3-b-plus", "bcm2837-rpi-3-a-plus"),
        False,
        "brcmfmac43430 brcmfmac43455",
    ),
    "pi-zero-2-w": Board("Pi Zero 2 W", ("bcm2837-rpi-zero-2-w",), False, radio_missing="BCM43436"),
    "cm3": Board("Compute Module 3", ("bcm2837-rpi-cm3-io3",), False),
    "pi-4": Board("Pi 4 B", ("bcm2711-rpi-4-b",), True, "brcmfmac43455"),
    "pi-400": Board("Pi 400", ("bcm2711-rpi-400",), True, radio_missing="BCM43456"),
    "cm4": Board("Compute Module 4", ("bcm2711-rpi-cm4-io",), True, "brcmfmac43455"),
    "pi-2": Board("Pi 2 B", ("bcm2836-rpi-2-b",), False, target=ARMHF, serial="ttyAMA0,115200"),
    # The ARMv6 Pis. The Zero W's PL011 drives its radio's Bluetooth, as on the Pi 3.
    "pi-zero": Board(
        "Pi Zero", ("bcm2835-rpi-zero",), False, target=ARMEL, serial="ttyAMA0,115200"
    ),
    "pi-zero-w": Board("Pi Zero W", ("bcm2835-rpi-zero-w",), False, "brcmfmac43430", target=ARMEL),
    "pi-1": Board(
        "Pi 1 A, A+, B, B+, Compute Module 1",
        ("bcm2835-rpi-a", "bcm2835-rpi-a-plus", "bcm2835-rpi-b", "bcm2835-rpi-b-rev2")
        + ("bcm2835-rpi-b-plus", "bcm2835-rpi-cm1-io1"),
        False,
        target=ARMEL,
        serial="ttyAMA0,115200",
    ),
}
# An architecture for a board: a card for every Pi of that target, as "all" is for aarch64.
# The console is the PL011's (ttyAMA0): a Zero W's GPIO UART is its mini-UART, so a Zero W
# card with a serial console on the pins names "pi-zero-w".
BOARDS["armhf"] = dataclasses.replace(BOARDS["pi-2"], title="every armhf Pi (the Pi 2 B)")
BOARDS["armel"] = Board(
    "every ARMv6 Pi (Zero, Zero W, 1)",
    tuple(d for name in ("pi-zero", "pi-zero-w", "pi-1") for d in BOARDS[name].dtbs),
    False,
    "brcmfmac43430",
    target=ARMEL,
    serial="ttyAMA0,115200",
)
ARCH_ALIASES = {"aarch64": ALL}  # "all" is the aarch64 card
FIRMWARE_4 = ("start4", "fixup4")  # the Pi 4 family's firmware files begin so


def canonical(name: str) -> str:
    """A board's one name: an architecture that "all" stands for ("aarch64") is "all"."""
    return ARCH_ALIASES.get(name, name)


def check(name: str) -> str:
    """'' when `name` is a board pinit builds for, else what is wrong (one line)."""
    name = canonical(name)
    built = [b for b, board in BOARDS.items() if board.target.cards]
    if name == ALL or name in built:
        return ""
    if name in BOARDS:  # a board whose target has no cards (none today)
        t = BOARDS[name].target
        return (
            f"the {name} is a {t.name} board and invoke image does not make its card yet; "
            "boards with a card: " + ", ".join(built)
        )
    return "expected one of " + ", ".join([ALL, *ARCH_ALIASES, *built])


def target_of(name: str) -> Target:
    """The machine a card for board `name` is built for ("all": the 64-bit Pis, aarch64)."""
    board = BOARDS.get(name)
    return board.target if board else AARCH64


def keeps(name: str, file: str) -> bool:
    """Whether the boot folder of a card for board `name` keeps `file` (a dtb or firmware).
    "all" keeps every file given: the 64-bit boards' (the caller gives only those)."""
    if name == ALL:
        return True
    board = BOARDS[name]
    if file.endswith(".dtb"):
        return file[: -len(".dtb")] in board.dtbs
    if file.startswith(("start", "fixup", "bootcode")):
        return file.startswith(FIRMWARE_4) == board.pi4 and (
            file != "bootcode.bin" or not board.pi4
        )
    return True


def radios(name: str, chips: tuple[str, ...]) -> tuple[str, ...]:
    """Of the Wi-Fi chips whose firmware is packaged, those board `name` has."""
    if name == ALL:
        return chips
    return tuple(c for c in chips if c in BOARDS[name].radio.split())
