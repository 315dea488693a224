"""toolchain/target.py and what follows from a target: the lock's other kernels, the boot
folder's kernel, device trees and texts for a 32-bit board."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from builder import image
from builder.formats import bootfs
from hostkit.errors import BuildError
from toolchain import provision
from toolchain.target import AARCH64, ARMEL, ARMHF, DEFAULT, TARGETS, target

RELEASE = "6.1.0-57-armmp"


def test_targets_name_their_debian_arch_tools_elf_kernel_and_qemu() -> None:
    assert DEFAULT is AARCH64 and set(TARGETS) == {"aarch64", "armhf", "armel"}
    assert (AARCH64.debian_arch, AARCH64.cross, AARCH64.kernel_meta, AARCH64.qemu) == (
        "arm64",
        "aarch64-linux-gnu-",
        "linux-image-arm64",
        "qemu-system-aarch64",
    )
    assert (ARMHF.debian_arch, ARMHF.cross, ARMHF.kernel_meta, ARMHF.qemu) == (
        "armhf",
        "arm-linux-gnueabihf-",
        "linux-image-armmp",
        "qemu-system-arm",
    )
    assert (AARCH64.elf_machine, AARCH64.elf_bits, ARMHF.elf_machine, ARMHF.elf_bits) == (
        183,
        64,
        40,
        32,
    )
    assert AARCH64.arm_64bit and not ARMHF.arm_64bit
    assert (AARCH64.default_kernel, ARMHF.default_kernel) == ("kernel8.img", "kernel7.img")
    assert target("armhf") is ARMHF and target("armel") is ARMEL
    assert (ARMEL.debian_arch, ARMEL.cross, ARMEL.kernel_meta, ARMEL.default_kernel) == (
        "armel",
        "arm-linux-gnueabi-",
        "linux-image-rpi",
        "kernel.img",
    )
    with pytest.raises(BuildError, match="target 'armv6': pinit builds for none such"):
        target("armv6")


def test_the_lock_has_the_armhf_kernel_of_the_same_debian_version() -> None:
    locked = provision.read_lock()
    armhf = [p for p in locked if p.role == provision.kernel_role(ARMHF)]
    assert [(p.name, p.arch) for p in armhf] == [(f"linux-image-{RELEASE}", "armhf")]
    arm64 = next(p for p in locked if p.role == "kernel")
    assert armhf[0].version == arm64.version  # one Debian linux source for both
    assert provision.EXTRA_TARGETS == (ARMHF, ARMEL)


def test_the_lock_has_each_32_bit_targets_kernel_sysroot_and_runtime() -> None:
    locked = provision.read_lock()
    for t in provision.EXTRA_TARGETS:
        roles = {p.role: p for p in locked if p.arch == t.debian_arch}
        assert provision.kernel_role(t) in roles and provision.sysroot_role(t) in roles
        runtime = sorted(p.name for p in locked if p.role == provision.runtime_role(t))
        assert runtime == ["busybox-static", "e2fsck-static"]
    armel = next(p for p in locked if p.role == provision.kernel_role(ARMEL))
    assert armel.name.startswith("linux-image-") and armel.name.endswith("-rpi")


def test_a_moved_armhf_sysroot_is_an_error_and_armel_is_held_back_by_debian() -> None:
    locked = provision.read_lock()
    provision.check_lock(locked)  # armel's sysroot is at Debian's last armel versions
    moved = [
        replace(p, version=p.version + "+x") if p.role == "sysroot-armhf" else p for p in locked
    ]
    with pytest.raises(BuildError, match="the armhf sysroot is not at the aarch64 one's"):
        provision.check_lock(moved)
    assert ARMEL in provision.NOT_UPDATED


def test_ensure_kernel_without_a_locked_kernel_says_how_to_lock_it(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    body = json.loads(provision.LOCK.read_text())
    body["packages"] = [p for p in body["packages"] if p["role"] != "kernel-armhf"]
    lock.write_text(json.dumps(body))
    with pytest.raises(BuildError, match=r"no armhf kernel locked \(role kernel-armhf\)"):
        provision.ensure_kernel(ARMHF, lock)


def fake_kernel(root: Path, release: str, dtbs: list[str]) -> Path:
    (root / "lib/modules" / release).mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"zImage")
    (root / "boot" / f"config-{release}").write_text("CONFIG_RD_GZIP=y\n")
    for dtb in dtbs:
        path = root / "usr/lib" / f"linux-image-{release}" / dtb
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"dtb")
    return root


def fake_firmware(root: Path) -> Path:
    fw = root / "usr/lib/raspi-firmware"
    fw.mkdir(parents=True)
    for name in ("bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat"):
        (fw / name).write_bytes(b"fw")
    return root


def test_kernel_platform_of_the_armhf_kernel_carries_the_pi_2_dtb(tmp_path: Path) -> None:
    # armmp keeps its dtbs flat, arm64 under broadcom/: each target takes its own boards'.
    kernel = fake_kernel(
        tmp_path / "k",
        RELEASE,
        ["bcm2836-rpi-2-b.dtb", "bcm2835-rpi-zero.dtb", "bcm2837-rpi-3-b.dtb"],
    )
    platform = image.kernel_platform(kernel, fake_firmware(tmp_path / "fw"), ARMHF)
    assert platform.release == RELEASE and platform.kernel_name == f"vmlinuz-{RELEASE}"
    assert platform.kernel_config == "CONFIG_RD_GZIP=y\n"
    assert sorted(platform.boot_files) == [
        "bcm2836-rpi-2-b.dtb",
        "bootcode.bin",
        "fixup.dat",
        "fixup4.dat",
        "start.elf",
        "start4.elf",
    ]
    arm64 = fake_kernel(tmp_path / "k64", "6.1.0-57-arm64", ["broadcom/bcm2837-rpi-3-b.dtb"])
    assert "bcm2837-rpi-3-b.dtb" in image.kernel_platform(arm64, tmp_path / "fw").boot_files
    assert image.dtb_globs(AARCH64) == image.DTB_GLOBS
    with pytest.raises(BuildError, match="not an unpacked kernel package"):
        image.kernel_platform(tmp_path / "fw", tmp_path / "fw", ARMHF)


def test_boot_texts_of_the_pi_2_and_of_a_64_bit_card() -> None:
    pi2 = image.boot_texts("pi-2", f"vmlinuz-{RELEASE}", "initramfs.gz", [], ["quiet"])
    assert b"arm_64bit" not in pi2["config.txt"]
    assert pi2["cmdline.txt"].startswith(b"console=ttyAMA0,115200 console=tty1 ")
    for board in ("all", "pi-3", "pi-4"):  # every 64-bit card: what bootfs writes by default
        texts = image.boot_texts(board, "vmlinuz", "initramfs.gz", ["gpu_mem=16"], ["quiet"])
        assert texts == {
            "config.txt": bootfs.config_txt("vmlinuz", "initramfs.gz", ["gpu_mem=16"]).encode(),
            "cmdline.txt": bootfs.cmdline_txt(["quiet"]).encode(),
        }
