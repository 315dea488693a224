"""builder/boards.py: what a card for one board keeps, against the Debian kernel's dtbs and
raspi-firmware's files as they are named."""

from __future__ import annotations

from builder import boards

FILES = [
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4-io.dtb",
    "bcm2837-rpi-3-a-plus.dtb",
    "bcm2837-rpi-3-b-plus.dtb",
    "bcm2837-rpi-3-b.dtb",
    "bcm2837-rpi-cm3-io3.dtb",
    "bcm2837-rpi-zero-2-w.dtb",
    "bootcode.bin",
    "fixup.dat",
    "fixup4.dat",
    "fixup4cd.dat",
    "fixup_cd.dat",
    "start.elf",
    "start4.elf",
    "start4x.elf",
    "start_x.elf",
]


def test_a_board_keeps_its_device_trees_and_its_firmware_family() -> None:
    assert [f for f in FILES if boards.keeps("pi-4", f)] == [
        "bcm2711-rpi-4-b.dtb",
        "fixup4.dat",
        "fixup4cd.dat",
        "start4.elf",
        "start4x.elf",
    ]
    assert [f for f in FILES if boards.keeps("pi-zero-2-w", f)] == [
        "bcm2837-rpi-zero-2-w.dtb",
        "bootcode.bin",
        "fixup.dat",
        "fixup_cd.dat",
        "start.elf",
        "start_x.elf",
    ]
    assert [f for f in FILES if boards.keeps("all", f)] == FILES
    assert boards.keeps("pi-3", "overlays/README")  # what is no dtb or firmware stays


def test_radios_and_names() -> None:
    chips = ("brcmfmac43430", "brcmfmac43455")
    assert boards.radios("pi-3", chips) == chips
    assert boards.radios("pi-4", chips) == ("brcmfmac43455",)
    assert boards.radios("pi-400", chips) == ()
    assert boards.radios("all", chips) == chips
    assert boards.check("cm4") == "" and boards.check("all") == ""
    assert "32-bit ARMv7" in boards.check("pi-2")
