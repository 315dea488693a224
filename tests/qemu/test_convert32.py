"""Convert a classic 32-bit card made from real parts, then boot it in QEMU: a Pi 2 card (armhf)
on -M raspi2b and a Pi Zero card (armel) on -M raspi0.

The card is what such an appliance made the classic way looks like: Debian's kernel for it
(armmp as kernel7.img, rpi as kernel.img) with the board's dtb, an initramfs whose shell /init
(Debian's busybox-static of that architecture) loads the card's drivers and a module, mounts the
ext4 partition 2 on /data and execs a static program. The conversion tells the card by its
kernel and busybox, builds it for that board with pinit's init for its architecture, and one
boot of the result shows the module, the data partition checked by that architecture's e2fsck
and mounted, and the app's line.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder import kmod
from builder.convert import rebuild
from builder.formats import bootfs, compress, cpio, sdimage
from builder.qemu import harness
from builder.qemu.seed import seed_init
from tests.qemu.conftest import target_parts
from toolchain.provision import Toolchain, ensure_runtime, for_target
from toolchain.target import ARMEL, ARMHF, Target

pytestmark = pytest.mark.qemu

APP_C = r"""
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>
int main(void) {
    struct utsname u;
    uname(&u);
    printf("CLASSIC32-APP-OK on %s\n", u.machine);
    fflush(stdout);
    for (;;) sleep(60);
}
"""


@dataclass(frozen=True)
class Case:
    target: Target
    machine: str  # the QEMU machine (builder/qemu/harness.py)
    uname: str  # its uname -m
    kernel: str  # the card's kernel file
    dtb: str
    # What the classic script loads before its mount: the SD hosts (the upstream dtb puts the
    # card on the sdhost, bcm2835, built into the rpi kernel; sdhci-iproc drives the Arasan
    # one) and ext4, each after what it needs (ext4 asks the crypto API for crc32c at mount).
    drivers: tuple[str, ...]
    report: str  # the conversion report's board line


CASES = {
    "pi-2": Case(
        ARMHF,
        "raspi2b",
        "armv7l",
        "kernel7.img",
        "bcm2836-rpi-2-b.dtb",
        ("bcm2835", "sdhci-iproc", "ext4", "crc32c"),
        "board: pi-2 (armhf): kernel7.img is ARMv7",
    ),
    "pi-zero": Case(
        ARMEL,
        "raspi0",
        "armv6l",
        "kernel.img",
        "bcm2835-rpi-zero.dtb",
        ("sdhci-iproc", "ext4", "crc32c"),
        "board: pi-zero (armel): kernel.img is ARMv6",
    ),
}


def classic_card(case: Case, kernel: Path, runtime: Path, app: Path, work: Path) -> Path:
    """A card as made without pinit: FAT partition 1 with the kernel and a busybox
    initramfs, ext4 partition 2 for /data."""
    release = sorted(p.name for p in (kernel / "lib/modules").iterdir())[-1]
    resolved = kmod.resolve([*case.drivers, "dummy"], kernel, release)
    plain = [rel.split(".ko")[0] + ".ko" for rel in resolved.modules]  # as read_module gives
    modules = [f"lib/modules/{release}/{rel}" for rel in plain]
    init = seed_init(
        "/app/hello",
        (
            *(f"insmod /{path}" + (" numdummies=2" if "dummy" in path else "") for path in modules),
            "mkdir -p /data",
            "mount -t ext4 /dev/mmcblk0p2 /data",
        ),
    )
    archive = cpio.write(
        [
            cpio.File.from_host("bin/busybox", runtime / "bin/busybox", 0o755),
            cpio.Symlink("bin/sh", "busybox"),
            cpio.Dir("proc", 0o555),
            cpio.Dir("sys", 0o555),
            cpio.Dir("dev"),
            cpio.CharDev("dev/console", 5, 1),
            *(
                cpio.File(path, kmod.read_module(resolved.folder / rel), 0o644)
                for path, rel in zip(modules, resolved.modules, strict=True)
            ),
            cpio.File.from_host("app/hello", app, 0o755),
            cpio.File("init", init.encode(), 0o755),
        ]
    )
    boot = work / "classic"
    boot.mkdir()
    (boot / "initramfs.gz").write_bytes(compress.compress(archive, "gzip"))
    shutil.copyfile(kernel / "boot" / f"vmlinuz-{release}", boot / case.kernel)
    dtbs = kernel / "usr/lib" / f"linux-image-{release}"
    shutil.copyfile(dtbs / case.dtb, boot / case.dtb)
    (boot / "config.txt").write_text(
        "upstream_kernel=1\nenable_uart=1\ninitramfs initramfs.gz followkernel\n"
    )
    (boot / "cmdline.txt").write_text("console=ttyAMA0,115200 root=/dev/ram0 quiet\n")
    card = work / "classic.img"
    sdimage.make_image(card, boot, data_size=16 << 20, data_label="appdata")
    return card


def parts(case: Case, work: Path) -> tuple[Toolchain, Path, Path]:
    target = case.target
    tc, kernel = target_parts(target)
    runtime = ensure_runtime(target)
    (work / "hello.c").write_text(APP_C)
    app = work / "hello"
    subprocess.run(
        [f"{target.cross}gcc", "-static", "-O2", "-o", app, work / "hello.c"], check=True
    )
    return tc, classic_card(case, kernel, runtime, app, work), app


@pytest.mark.parametrize("board", list(CASES))
def test_a_classic_32_bit_card_converts_for_its_architecture_and_boots_with_its_data(
    board: str, tmp_path: Path
) -> None:
    from builder.python.compile import build_init, init_is_current
    from hostkit.paths import BUILD

    case = CASES[board]
    (tmp_path / "classic-work").mkdir()
    tc, card, app = parts(case, tmp_path / "classic-work")
    asked: list[Target] = []

    def init_for(target: Target) -> Path:
        asked.append(target)
        out = BUILD / f"init-{target.name}"
        if not init_is_current(for_target(tc, target), out):
            build_init(for_target(tc, target), out)
        return out

    before = card.read_bytes()
    out = tmp_path / "out"
    built = rebuild.build_from(card, None, out, init_for, tc)
    assert card.read_bytes() == before, "the input must not change"
    assert asked == [case.target]

    report = (out / "convert-report.txt").read_text()
    assert case.report in report
    entries = {e.path: e for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert "bin/busybox" not in entries and "bin/sh" not in entries
    init = entries["init"]
    assert isinstance(init, cpio.File) and init.data[18:20] == b"\x28\x00"  # EM_ARM
    assert init.data[4] == 1  # ELFCLASS32
    e2fsck = entries["sbin/e2fsck"]
    assert isinstance(e2fsck, cpio.File)
    assert e2fsck.data == (ensure_runtime(case.target) / "sbin/e2fsck.static").read_bytes()
    assert entries["app/hello"] == cpio.File.from_host("app/hello", app, 0o755)
    config = entries["etc/pinit.json"].data.decode()  # type: ignore[union-attr]
    assert '"/dev/mmcblk0p2"' in config and '"numdummies=2"' in config
    config_txt = (built.boot / "config.txt").read_text()
    assert "arm_64bit" not in config_txt and f"kernel={case.kernel}" in config_txt
    assert "upstream_kernel=0" not in config_txt
    cmdline = (built.boot / "cmdline.txt").read_text()
    assert cmdline.count("console=ttyAMA0,115200") == 1 and "root=" not in cmdline

    # The new boot partition on the old card: its partition 2 holds the data as before.
    log = tmp_path / "boot.log"
    with harness.plan(built.boot, case.machine, disk=card) as plan:
        result = harness.run(
            plan,
            expect=[
                f"pinit: started as PID 1 on {case.uname}",
                "pinit: loaded module dummy",
                "pinit: /dev/mmcblk0p2: clean (e2fsck status 0)",
                "pinit: mounted /data",
                f"CLASSIC32-APP-OK on {case.uname}",
            ],
            fail=["FATAL", "Traceback"],
            timeout=300,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}\n" + "\n".join(result.lines[-30:])
    assert bootfs.SERIAL_CONSOLE not in cmdline
