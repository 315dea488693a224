"""The tryboot flag reaches the firmware: on QEMU's Raspberry Pi 3 B, whose firmware mailbox
answers property requests, PID 1's tryboot reboot goes through pinit's kernel module
(init/kmod/pinit_tryboot.c), which sends the firmware RPI_FIRMWARE_SET_REBOOT_FLAGS (tag
0x00038064). QEMU does not implement that tag: with `-d unimp` it logs every property request
it does not know, which shows the request reaching the mailbox. A boot that ends in a plain
power-off sends none. What the bootloader does with the flag is the harness's part
(test_update.py)."""

from __future__ import annotations

from pathlib import Path

from builder import update
from builder.qemu import harness
from tests.qemu.test_update import TRYBOOT, appliance, bundle_of, drop

SET_REBOOT_FLAGS = "unhandled tag 0x00038064"  # QEMU's -d unimp line for the request


def raspi3b_boot(card: Path, tryboot: bool, expect: list[str], log: Path) -> str:
    """One boot on -M raspi3b; what QEMU logged of the devices it does not implement."""
    unimp = log.with_suffix(".unimp")
    args = ("-d", "unimp", "-D", str(unimp))
    with harness.plan(card, "raspi3b", tryboot=tryboot, qemu_args=args) as plan:
        result = harness.run(
            plan, expect=expect, fail=("FATAL",), then="reboot: ", timeout=300, log=log
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    return unimp.read_text(errors="replace")


def test_the_tryboot_reboot_sets_the_firmware_flag_and_a_power_off_does_not(
    cc, built_init, toolchain, tmp_path
) -> None:
    private, public = update.keygen(tmp_path / "keys")
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    drop(
        card,
        {
            "u.bundle": bundle_of(
                new, private, tmp_path / "u.bundle", "v2", keep=harness.RASPI3B_DTBS
            )
        },
        tmp_path,
    )
    with open(card, "r+b") as f:  # a power of two: QEMU's SD card itself, not a padded copy
        f.truncate(1 << (card.stat().st_size - 1).bit_length())
    written = raspi3b_boot(
        card,
        False,
        ["update: version v2 written to slot 3", TRYBOOT],
        tmp_path / "1.log",
    )
    assert written.count(SET_REBOOT_FLAGS) == 1, written
    kept = raspi3b_boot(
        card,
        True,
        ["update: slot 3 is healthy and kept", "pinit: powering off"],
        tmp_path / "2.log",
    )
    assert "bcm2835_property" in kept  # the log works: the firmware driver's other requests
    assert SET_REBOOT_FLAGS not in kept
