"""builder/boards.py: what a card for one board keeps, against the Debian kernel's dtbs and
raspi-firmware's files as they are named."""

from __future__ import annotations

from builder import boards
from builder.formats import bootfs
from toolchain.target import AARCH64, ARMEL, ARMHF

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
    assert boards.check("pi-zero") == "" and boards.check("pi-1") == ""
    assert "expected one of all, aarch64, pi-3" in boards.check("pi-5")
    assert (
        "expected one of all, aarch64, pi-3, pi-zero-2-w, cm3, pi-4, pi-400, cm4, pi-2, "
        "pi-zero, pi-zero-w, pi-1, armhf, armel" in boards.check("pi-5")
    )
    assert boards.radios("pi-zero-w", chips) == ("brcmfmac43430",)
    assert boards.radios("pi-zero", chips) == ()


def test_an_architecture_names_the_card_for_every_pi_of_it() -> None:
    assert boards.canonical("aarch64") == "all" and boards.check("aarch64") == ""
    assert boards.target_of("armel") is ARMEL and boards.target_of("armhf") is ARMHF
    for name in ("pi-zero", "pi-zero-w", "pi-1"):
        assert set(boards.BOARDS[name].dtbs) <= set(boards.BOARDS["armel"].dtbs)
        assert boards.keeps("armel", boards.BOARDS[name].dtbs[0] + ".dtb")
    assert boards.BOARDS["armhf"].dtbs == boards.BOARDS["pi-2"].dtbs
    assert boards.radios("armel", ("brcmfmac43430", "brcmfmac43455")) == ("brcmfmac43430",)
    assert "expected one of all, aarch64, pi-3" in boards.check("arm64")


def test_each_arm_v6_pi_is_an_armel_board_with_its_own_dtbs_and_uart() -> None:
    for name in ("pi-zero", "pi-zero-w", "pi-1"):
        assert boards.target_of(name) is ARMEL
        assert boards.keeps(name, "bootcode.bin") and boards.keeps(name, "start.elf")
        assert not boards.keeps(name, "start4.elf")
        assert not boards.keeps(name, "bcm2836-rpi-2-b.dtb")
    assert boards.keeps("pi-zero", "bcm2835-rpi-zero.dtb")
    assert not boards.keeps("pi-zero", "bcm2835-rpi-zero-w.dtb")
    assert boards.keeps("pi-1", "bcm2835-rpi-b-plus.dtb")
    # The Zero W's PL011 drives Bluetooth: its GPIO UART is the mini-UART, as on the Pi 3.
    assert boards.BOARDS["pi-zero-w"].serial == "ttyS1,115200"
    assert boards.BOARDS["pi-zero"].serial == "ttyAMA0,115200"


def test_the_pi_2_is_armhf_and_has_a_card() -> None:
    pi2 = boards.BOARDS["pi-2"]
    assert pi2.target is ARMHF and pi2.serial == "ttyAMA0,115200" and not pi2.pi4
    assert all(
        b.target is AARCH64
        for name, b in boards.BOARDS.items()
        if name not in ("pi-2", "pi-zero", "pi-zero-w", "pi-1", "armhf", "armel")
    )
    assert all(
        b.serial == bootfs.SERIAL_CONSOLE
        for n, b in boards.BOARDS.items()
        if n not in ("pi-2", "pi-zero", "pi-1", "armhf", "armel")
    )
    assert [f for f in [*FILES, "bcm2836-rpi-2-b.dtb"] if boards.keeps("pi-2", f)] == [
        "bootcode.bin",
        "fixup.dat",
        "fixup_cd.dat",
        "start.elf",
        "start_x.elf",
        "bcm2836-rpi-2-b.dtb",
    ]
    assert boards.check("pi-2") == ""
    assert boards.target_of("pi-2") is ARMHF
    assert boards.target_of("all") is AARCH64 and boards.target_of("pi-4") is AARCH64
