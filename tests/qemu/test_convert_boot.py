"""Convert classic Pi images made from Debian parts, then boot the result in QEMU.

The classic boot folder is the seed recipe: busybox, /bin/sh and a shell /init that mounts,
mknods, insmods dummy.ko and execs a static C program. The Raspberry Pi OS–style card has the
kernel on FAT partition 1 and /lib/modules on ext4 partition 2, booted with root=PARTUUID=.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.convert import rebuild
from builder.formats import bootfs, compress, cpio, sdimage
from builder.qemu import harness
from builder.qemu.seed import seed_init
from hostkit.errors import BuildError
from toolchain.provision import Toolchain

pytestmark = pytest.mark.qemu

APP_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("CLASSIC-APP-OK\n");
    fflush(stdout);
    for (;;) sleep(60);
}
"""

INIT = seed_init(
    "/app/hello", ("insmod /lib/modules/dummy.ko numdummies=2", "mdev -s", "ifconfig eth0 up")
)


def dummy_ko(tc: Toolchain) -> Path:
    return tc.kernel / "lib/modules" / tc.kernel_release / "kernel/drivers/net/dummy.ko"


@pytest.fixture(scope="module")
def app(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static aarch64 program that prints CLASSIC-APP-OK and sleeps."""
    if shutil.which(harness.QEMU) is None:
        pytest.skip(f"{harness.QEMU} is not installed")
    if shutil.which("aarch64-linux-gnu-gcc") is None:
        pytest.skip("aarch64-linux-gnu-gcc is not installed; run `invoke toolchain`")
    work = tmp_path_factory.mktemp("app")
    (work / "hello.c").write_text(APP_C)
    subprocess.run(
        [
            "aarch64-linux-gnu-gcc",
            "-static",
            f"--sysroot={toolchain.sysroot}",
            "-O2",
            "-o",
            work / "hello",
            work / "hello.c",
        ],
        check=True,
    )
    return work / "hello"


def classic_folder(
    tc: Toolchain, app: Path, out: Path, init: str = INIT, extra: tuple[cpio.Entry, ...] = ()
) -> Path:
    archive = cpio.write(
        [
            cpio.File.from_host("bin/busybox", tc.busybox, 0o755),
            cpio.Symlink("bin/sh", "busybox"),
            cpio.Dir("proc", 0o555),
            cpio.Dir("sys", 0o555),
            cpio.Dir("dev"),
            cpio.CharDev("dev/console", 5, 1),
            cpio.File.from_host("lib/modules/dummy.ko", dummy_ko(tc), 0o644),
            cpio.File.from_host("app/hello", app, 0o755),
            cpio.File("etc/motd", b"carried over\n"),
            cpio.File("init", init.encode(), 0o755),
            *extra,
        ]
    )
    out.mkdir(parents=True)
    (out / "initramfs.gz").write_bytes(compress.compress(archive, "gzip"))
    shutil.copyfile(tc.vmlinuz, out / "kernel8.img")
    for dtb in sorted((tc.dtbs / "broadcom").glob("bcm2837-rpi-3-*.dtb")):
        shutil.copyfile(dtb, out / dtb.name)
    (out / "config.txt").write_text(
        bootfs.config_txt("kernel8.img", "initramfs.gz", ["dtparam=audio=on"])
    )
    (out / "cmdline.txt").write_text(bootfs.cmdline_txt(["root=/dev/ram0"]))
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def boot(boot_dir: Path, log: Path) -> harness.BootResult:
    with harness.plan(boot_dir, machine="virt") as plan:
        return harness.run(
            # The module loads before the app, in the C prologue: its line comes after.
            plan,
            expect=["CLASSIC-APP-OK", "pinit: loaded module dummy"],
            timeout=60,
            log=log,
        )


def test_classic_boot_folder_converts_and_boots(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    source = classic_folder(toolchain, app, tmp_path / "classic")
    before = snapshot(source)
    out = tmp_path / "out"
    built = rebuild.build_from(source, None, out, built_init, toolchain)
    assert snapshot(source) == before, "the input must not change"

    entries = {e.path: e for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert not [
        p for p, e in entries.items() if isinstance(e, cpio.File) and b"BusyBox v" in e.data
    ], "busybox must not be carried"
    assert "bin/sh" not in entries and "bin/busybox" not in entries
    assert isinstance(entries["app/hello"], cpio.File)
    assert entries["app/hello"].data == app.read_bytes()
    rel = toolchain.kernel_release
    assert entries[f"lib/modules/{rel}/extra/dummy.ko"].data == dummy_ko(toolchain).read_bytes()
    assert entries[f"lib/modules/{rel}/modules.dep"].data == b"extra/dummy.ko:\n"
    assert entries["etc/motd"] == cpio.File("etc/motd", b"carried over\n")
    assert entries["dev/tty"] == cpio.CharDev("dev/tty", 5, 0, 0o644)
    config = entries["etc/pinit.json"].data.decode()
    assert '"numdummies=2"' in config and '"/app/hello"' in config

    report = (out / "convert-report.txt").read_text()
    assert "line 17: ifconfig eth0 up" in report.split("NOT translated")[0].split("not needed")[1]
    cmdline = (built.boot / "cmdline.txt").read_text()
    assert "root=" not in cmdline
    assert "dtparam=audio=on" in (built.boot / "config.txt").read_text()
    assert (built.boot / "bcm2837-rpi-3-b.dtb").is_file()
    assert sdimage.fat_read(built.image, 1, "initramfs.gz") == built.initramfs.read_bytes()

    result = boot(built.boot, tmp_path / "boot.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_a_scripts_dhcp_client_becomes_pinits_lease(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    """`udhcpc -i eth0` converted: pinit's own DHCP gets a lease from qemu's user network
    (restrict=on: nothing outside the guest is reachable)."""
    init = seed_init("/app/hello", ("udhcpc -i eth0 -b -q",))
    # The old initramfs carries the card's driver, as a classic image for -M virt would.
    modules = toolchain.kernel / "lib/modules" / toolchain.kernel_release
    drivers = tuple(
        cpio.File.from_host(f"lib/modules/{toolchain.kernel_release}/{ko}", modules / ko, 0o644)
        for ko in (
            "kernel/drivers/virtio/virtio_mmio.ko",
            "kernel/net/core/failover.ko",
            "kernel/drivers/net/net_failover.ko",
            "kernel/drivers/net/virtio_net.ko",
        )
    )
    source = classic_folder(toolchain, app, tmp_path / "classic", init, drivers)
    built = rebuild.build_from(source, None, tmp_path / "out", built_init, toolchain)
    report = (tmp_path / "out" / "convert-report.txt").read_text()
    assert "DHCP on eth0 ([network])" in report.split("not needed")[0]
    assert "network: eth0 DHCP from /init" in report
    with harness.plan(built.boot, machine="virt", nic=harness.NIC_USER_RESTRICTED) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: network: eth0 up; asking for an address (DHCP)",
                "pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2",
            ],
            fail=["FATAL", "Traceback"],
            timeout=90,
            log=tmp_path / "boot.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_classic_card_image_converts_like_the_folder(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    folder = classic_folder(toolchain, app, tmp_path / "classic")
    card = tmp_path / "classic.img"
    sdimage.make_image(card, folder)
    before = card.read_bytes()
    init = tmp_path / "init"  # a copy: build/init may be rebuilt between the two conversions
    shutil.copyfile(built_init, init)
    built = rebuild.build_from(card, None, tmp_path / "out", init, toolchain)
    assert card.read_bytes() == before
    entries = {e.path for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert "app/hello" in entries and "bin/busybox" not in entries
    again = rebuild.build_from(card, None, tmp_path / "again", init, toolchain)
    assert again.image.read_bytes() == built.image.read_bytes(), "not reproducible"


GREET_C = r"""
#include <stdio.h>
void greet(void) { printf("CLASSIC-APP-OK\n"); fflush(stdout); }
"""
MAIN_C = r"""
#include <unistd.h>
void greet(void);
int main(void) { greet(); for (;;) sleep(60); }
"""


def test_dynamic_app_takes_its_libraries_from_the_old_initramfs(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    """libgreet.so is in the old initramfs only, not in the sysroot: carried from there."""
    cc = ["aarch64-linux-gnu-gcc", f"--sysroot={toolchain.sysroot}", "-O2"]
    (tmp_path / "greet.c").write_text(GREET_C)
    (tmp_path / "main.c").write_text(MAIN_C)
    subprocess.run(
        [*cc, "-shared", "-fPIC", "-o", tmp_path / "libgreet.so", tmp_path / "greet.c"], check=True
    )
    subprocess.run(
        [*cc, "-o", tmp_path / "greeter", tmp_path / "main.c", f"-L{tmp_path}", "-lgreet"],
        check=True,
    )
    lib = toolchain.sysroot / "lib/aarch64-linux-gnu"
    init = INIT.replace("exec /app/hello", "exec /usr/local/bin/greeter")
    source = classic_folder(
        toolchain,
        app,
        tmp_path / "classic",
        init,
        (
            cpio.File.from_host("usr/local/bin/greeter", tmp_path / "greeter", 0o755),
            cpio.File.from_host("usr/lib/libgreet.so", tmp_path / "libgreet.so", 0o755),
            cpio.File.from_host("lib/libc.so.6", (lib / "libc.so.6").resolve(), 0o755),
            cpio.File.from_host(
                "lib/ld-linux-aarch64.so.1", (lib / "ld-linux-aarch64.so.1").resolve(), 0o755
            ),
        ),
    )
    built = rebuild.build_from(source, None, tmp_path / "out", built_init, toolchain)
    entries = {e.path: e for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    greet = entries["lib/aarch64-linux-gnu/libgreet.so"]
    assert isinstance(greet, cpio.File)
    assert greet.data == (tmp_path / "libgreet.so").read_bytes()
    assert "lib/ld-linux-aarch64.so.1" in entries and "bin/busybox" not in entries

    result = boot(built.boot, tmp_path / "boot.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def rpios_card(tc: Toolchain, tmp_path: Path) -> Path:
    boot_dir = tmp_path / "rpios-boot"
    boot_dir.mkdir()
    shutil.copyfile(tc.vmlinuz, boot_dir / "kernel8.img")
    (boot_dir / "overlays").mkdir()
    (boot_dir / "overlays" / "README").write_text("overlays\n")
    for dtb in sorted((tc.dtbs / "broadcom").glob("bcm2711-rpi-4-*.dtb")):
        shutil.copyfile(dtb, boot_dir / dtb.name)
    (boot_dir / "config.txt").write_text(
        "# Raspberry Pi OS\ndtparam=audio=on\nauto_initramfs=1\narm_64bit=1\n[pi4]\narm_boost=1\n"
    )
    (boot_dir / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 "
        "root=PARTUUID=abcd-02 rootfstype=ext4 "
        "fsck.repair=yes rootwait quiet\n"
    )
    root = tmp_path / "rootfs"
    modules = root / "lib/modules" / tc.kernel_release
    (modules / "kernel/drivers/net").mkdir(parents=True)
    shutil.copyfile(dummy_ko(tc), modules / "kernel/drivers/net/dummy.ko")
    (modules / "modules.dep").write_text("kernel/drivers/net/dummy.ko:\n")
    (root / "lib/modules/5.10.0-old").mkdir()
    card = tmp_path / "rpios.img"
    sdimage.make_image(card, boot_dir, data_size=64 << 20, data_label="rootfs", data_files=root)
    return card


def test_rpios_card_converts_and_boots(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    card = rpios_card(toolchain, tmp_path)
    with pytest.raises(BuildError, match="nothing says what to run") as missing:
        rebuild.build_from(card, None, tmp_path / "out", built_init, toolchain)
    assert "--config pinit.toml" in missing.value.hint
    config = tmp_path / "pinit.toml"
    config.write_text(
        f'[kernel]\nmodules = ["dummy"]\n\n[[service]]\nname = "hello"\nexec = "{app}"\n'
    )
    before = card.read_bytes()
    built = rebuild.build_from(card, config, tmp_path / "out", built_init, toolchain)
    assert card.read_bytes() == before

    cmdline = (built.boot / "cmdline.txt").read_text()
    assert "root=" not in cmdline and "rootwait" not in cmdline
    assert "console=serial0,115200" in cmdline
    config_txt = (built.boot / "config.txt").read_text()
    assert "arm_boost=1" in config_txt and "auto_initramfs" not in config_txt
    assert (built.boot / "overlays" / "README").is_file()
    assert (built.boot / "bcm2711-rpi-4-b.dtb").is_file()
    entries = {e.path for e in cpio.read_initramfs(built.initramfs.read_bytes())}
    assert f"lib/modules/{toolchain.kernel_release}/kernel/drivers/net/dummy.ko" in entries

    result = boot(built.boot, tmp_path / "boot.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


SWITCH_ROOT_INIT = """#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /lib/modules/dummy.ko
mkdir -p /newroot
mount -t ext4 -o ro /dev/mmcblk0p2 /newroot
exec switch_root /newroot /sbin/init
"""


def test_a_switch_root_initramfs_is_refused_then_converts_with_a_config(
    toolchain: Toolchain, built_init: Path, app: Path, tmp_path: Path
) -> None:
    """The other shape of an existing image: /init mounts the card's root and switch_roots."""
    folder = classic_folder(toolchain, app, tmp_path / "classic", SWITCH_ROOT_INIT)
    card = tmp_path / "classic.img"
    sdimage.make_image(card, folder)
    out = tmp_path / "out"
    with pytest.raises(BuildError, match="mounts /dev/mmcblk0p2 and switch_roots into it") as err:
        rebuild.build_from(card, None, out, built_init, toolchain)
    assert "--config" in err.value.hint and not out.exists()

    config = tmp_path / "pinit.toml"
    config.write_text(f'[[service]]\nname = "hello"\nexec = "{app}"\n')
    built = rebuild.build_from(card, config, out, built_init, toolchain)
    untranslated = (out / "convert-report.txt").read_text().split("NOT translated")[1]
    assert "line 9: exec switch_root /newroot /sbin/init" in untranslated
    assert "the root file system that line 9 switches to" in untranslated
    result = boot(built.boot, tmp_path / "boot.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
