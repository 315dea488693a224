"""Convert a classic 32-bit Pi 2 card made from real armhf parts, then boot it in QEMU -M raspi2b.

The card is what a Pi 2 appliance made the classic way looks like: Debian's armhf (armmp) kernel
as kernel7.img with the Pi 2's dtb, an initramfs whose shell /init (Debian's armhf busybox-static)
loads the card's drivers and a module, mounts the ext4 partition 2 on /data and execs a static
armhf program. The conversion tells the card by its kernel and busybox, builds it for the Pi 2
with pinit's armhf init, and one boot of the result shows the module, the data partition
checked by the armhf e2fsck and mounted, and the app's line.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import kmod
from builder.convert import rebuild
from builder.formats import bootfs, compress, cpio, sdimage
from builder.qemu import harness
from builder.qemu.seed import seed_init
from hostkit.errors import BuildError
from tests.conftest import in_ci
from toolchain.provision import Toolchain, ensure, ensure_kernel, ensure_runtime, for_target
from toolchain.target import ARMHF, Target

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

# What the classic script loads before its mount: the Pi 2's SD hosts (the upstream dtb puts
# the card on the sdhost, bcm2835; sdhci-iproc drives the Arasan one) and ext4, each after
# what it needs (ext4 asks the crypto API for crc32c at mount), then dummy.
DRIVERS = ("bcm2835", "sdhci-iproc", "ext4", "crc32c")


def need(program: str) -> None:
    if shutil.which(program) is None:
        if in_ci():
            pytest.fail(f"{program} is missing: `invoke toolchain` installs it")
        pytest.skip(f"{program} is not installed; run `invoke toolchain` as root")


def classic_card(kernel: Path, runtime: Path, app: Path, work: Path) -> Path:
    """A Pi 2 card as made without pinit: FAT partition 1 with kernel7.img and a busybox
    initramfs, ext4 partition 2 for /data."""
    release = sorted(p.name for p in (kernel / "lib/modules").iterdir())[-1]
    resolved = kmod.resolve([*DRIVERS, "dummy"], kernel, release)
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
    shutil.copyfile(kernel / "boot" / f"vmlinuz-{release}", boot / "kernel7.img")
    dtbs = kernel / "usr/lib" / f"linux-image-{release}"
    shutil.copyfile(dtbs / "bcm2836-rpi-2-b.dtb", boot / "bcm2836-rpi-2-b.dtb")
    (boot / "config.txt").write_text(
        "upstream_kernel=1\nenable_uart=1\ninitramfs initramfs.gz followkernel\n"
    )
    (boot / "cmdline.txt").write_text("console=ttyAMA0,115200 root=/dev/ram0 quiet\n")
    card = work / "classic.img"
    sdimage.make_image(card, boot, data_size=16 << 20, data_label="appdata")
    return card


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Toolchain, Path, Path]:
    need(ARMHF.qemu)
    need(f"{ARMHF.cross}gcc")
    try:
        tc = ensure(host=False)
        kernel, runtime = ensure_kernel(ARMHF), ensure_runtime(ARMHF)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")
    work = tmp_path_factory.mktemp("convert32")
    (work / "hello.c").write_text(APP_C)
    app = work / "hello"
    subprocess.run([f"{ARMHF.cross}gcc", "-static", "-O2", "-o", app, work / "hello.c"], check=True)
    return tc, classic_card(kernel, runtime, app, work), app


def test_a_classic_pi_2_card_converts_to_armhf_and_boots_with_its_data(
    parts: tuple[Toolchain, Path, Path], tmp_path: Path
) -> None:
    from builder.python.compile import build_init, init_is_current
    from hostkit.paths import BUILD

    tc, card, app = parts
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
    assert asked == [ARMHF]

    report = (out / "convert-report.txt").read_text()
    assert "board: pi-2 (armhf): kernel7.img is ARMv7" in report
    entries = {e.path: e for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert "bin/busybox" not in entries and "bin/sh" not in entries
    init = entries["init"]
    assert isinstance(init, cpio.File) and init.data[18:20] == b"\x28\x00"  # EM_ARM
    assert init.data[4] == 1  # ELFCLASS32
    e2fsck = entries["sbin/e2fsck"]
    assert isinstance(e2fsck, cpio.File)
    assert e2fsck.data == (ensure_runtime(ARMHF) / "sbin/e2fsck.static").read_bytes()
    assert entries["app/hello"] == cpio.File.from_host("app/hello", app, 0o755)
    config = entries["etc/pinit.json"].data.decode()  # type: ignore[union-attr]
    assert '"/dev/mmcblk0p2"' in config and '"numdummies=2"' in config
    config_txt = (built.boot / "config.txt").read_text()
    assert "arm_64bit" not in config_txt and "kernel=kernel7.img" in config_txt
    assert "upstream_kernel=0" not in config_txt
    cmdline = (built.boot / "cmdline.txt").read_text()
    assert cmdline.count("console=ttyAMA0,115200") == 1 and "root=" not in cmdline

    # The new boot partition on the old card: its partition 2 holds the data as before.
    log = tmp_path / "boot.log"
    with harness.plan(built.boot, "raspi2b", disk=card) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on armv7l",
                "pinit: loaded module dummy",
                "pinit: /dev/mmcblk0p2: clean (e2fsck status 0)",
                "pinit: mounted /data",
                "CLASSIC32-APP-OK on armv7l",
            ],
            fail=["FATAL", "Traceback"],
            timeout=300,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}\n" + "\n".join(result.lines[-30:])
    assert bootfs.SERIAL_CONSOLE not in cmdline
