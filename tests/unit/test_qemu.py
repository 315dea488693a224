"""builder/qemu/harness.py without booting: plans from boot folders and card images, the console
verdict against a fake qemu-system-aarch64 script, and printk timestamps."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from builder.formats import bootfs, sdimage
from builder.qemu import harness
from hostkit.errors import BuildError

MiB = 1024 * 1024
KERNEL = b"fake arm64 Image " * 1000
INITRAMFS = b"\x1f\x8b fake initramfs"
DTB = b"\xd0\x0d\xfe\xed fake dtb"


def make_folder(root: Path, config: str | None = None, cmdline: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "vmlinuz-6.1").write_bytes(KERNEL)
    (root / "initramfs.gz").write_bytes(INITRAMFS)
    (root / "bcm2837-rpi-3-b.dtb").write_bytes(DTB)
    (root / "config.txt").write_text(
        config if config is not None else bootfs.config_txt("vmlinuz-6.1", "initramfs.gz", [])
    )
    (root / "cmdline.txt").write_text(
        cmdline if cmdline is not None else bootfs.cmdline_txt(["quiet"])
    )
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "boot")


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """plan()'s temporary directories land here, so tests can see them cleaned up."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_virt_plan_from_a_folder(folder: Path) -> None:
    with harness.plan(folder) as p:
        assert p.args == [
            "-M",
            "virt",
            "-cpu",
            "cortex-a53",
            "-smp",
            "1",
            "-m",
            "512",
            "-nographic",
            "-no-reboot",
            "-kernel",
            str(folder / "vmlinuz-6.1"),
            "-initrd",
            str(folder / "initramfs.gz"),
            "-append",
            "console=tty1 rdinit=/init loglevel=4 quiet panic=-1 console=ttyAMA0",
            "-nic",
            "none",
        ]
        assert p.dtb is None and p.disk is None and p.workdir is None


def test_raspi3b_plan_from_a_folder(folder: Path) -> None:
    p = harness.plan(folder, "raspi3b", ["pinit.debug=1"])
    assert p.args == [
        "-M",
        "raspi3b",
        "-accel",
        "tcg,thread=single",
        "-serial",
        "null",
        "-serial",
        "mon:stdio",
        "-nographic",
        "-no-reboot",
        "-kernel",
        str(folder / "vmlinuz-6.1"),
        "-initrd",
        str(folder / "initramfs.gz"),
        "-dtb",
        str(folder / "bcm2837-rpi-3-b.dtb"),
        "-append",
        "console=tty1 rdinit=/init loglevel=4 quiet pinit.debug=1 panic=-1 console=ttyS1,115200",
        "-nic",
        "none",
    ]


def test_a_nic_only_when_asked_for(folder: Path) -> None:
    """-M virt would add a PCI virtio NIC whose option ROM (efi-virtio.rom) a minimal host
    lacks; a boot gets a NIC only when it names one, and the named one needs no ROM."""
    with harness.plan(folder, nic=harness.NIC_USER_RESTRICTED) as p:
        assert "restrict=on" in p.args[p.args.index("-netdev") + 1]
        assert p.args[p.args.index("-device") + 1] == "virtio-net-device,netdev=net0"
        assert "-nic" not in p.args
    assert harness.plan(folder).args.count("-nic") == 1
    with pytest.raises(BuildError, match="no network card"):
        harness.plan(folder, "raspi3b", nic=harness.NIC_USER_RESTRICTED)


def test_board_sections_pick_the_kernel(tmp_path: Path) -> None:
    config = (
        "arm_64bit=1\ninitramfs initramfs.gz followkernel\n"
        "[pi3]\nkernel=k3\n[pi4]\nkernel=k4\n[pi0]\nkernel=k0\n[all]\ncmdline=cl.txt\n"
    )
    folder = make_folder(tmp_path / "boot", config)
    for name in ("k3", "k4", "k0"):
        (folder / name).write_bytes(KERNEL)
    (folder / "cl.txt").write_text("from cl.txt\nsecond line is ignored\n")
    pi3 = harness.plan(folder, "raspi3b")
    pi4 = harness.plan(folder, "virt")
    assert pi3.kernel.name == "k3" and pi4.kernel.name == "k4"
    assert pi4.append == "from cl.txt panic=-1 console=ttyAMA0"


def test_device_tree_is_honoured_on_raspi3b_and_ignored_on_virt(tmp_path: Path) -> None:
    config = bootfs.config_txt("vmlinuz-6.1", "initramfs.gz", ["device_tree=my.dtb"])
    folder = make_folder(tmp_path / "boot", config)
    (folder / "my.dtb").write_bytes(DTB)
    assert harness.plan(folder, "raspi3b").dtb == folder / "my.dtb"
    (folder / "my.dtb").unlink()
    assert harness.plan(folder, "virt").dtb is None
    with pytest.raises(BuildError, match=r"line 11 `device_tree=my.dtb` names my.dtb"):
        harness.plan(folder, "raspi3b")


def test_raspi3b_finds_the_dtb_in_broadcom_or_says_it_is_missing(folder: Path) -> None:
    (folder / "bcm2837-rpi-3-b.dtb").unlink()
    with pytest.raises(BuildError, match="no bcm2837-rpi-3-b.dtb for -M raspi3b"):
        harness.plan(folder, "raspi3b")
    (folder / "broadcom").mkdir()
    (folder / "broadcom" / "bcm2837-rpi-3-b.dtb").write_bytes(DTB)
    assert harness.plan(folder, "raspi3b").dtb == folder / "broadcom" / "bcm2837-rpi-3-b.dtb"


def test_missing_initramfs_names_the_file_and_the_line(folder: Path) -> None:
    (folder / "initramfs.gz").unlink()
    with pytest.raises(BuildError) as err:
        harness.plan(folder)
    assert "config.txt line 5 `initramfs initramfs.gz followkernel` names initramfs.gz" in str(
        err.value
    )


def test_missing_kernel_names_the_file_and_the_line(folder: Path) -> None:
    (folder / "vmlinuz-6.1").unlink()
    with pytest.raises(BuildError, match=r"line 4 `kernel=vmlinuz-6.1` names vmlinuz-6.1"):
        harness.plan(folder)


def test_default_kernel_needs_arm_64bit(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "boot", "initramfs initramfs.gz followkernel\n")
    with pytest.raises(BuildError, match="32-bit"):
        harness.plan(folder)
    (folder / "config.txt").write_text("arm_64bit=1\n")
    with pytest.raises(BuildError, match="kernel8.img"):
        harness.plan(folder)
    (folder / "kernel8.img").write_bytes(KERNEL)
    p = harness.plan(folder)
    assert p.kernel == folder / "kernel8.img" and p.initramfs is None
    assert "-initrd" not in p.args


def test_names_are_found_case_insensitively_as_on_fat(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "boot", "arm_64bit=1\nkernel=VMLINUZ-6.1\ninitramfs InitRamfs.GZ followkernel\n"
    )
    p = harness.plan(folder)
    assert p.kernel == folder / "vmlinuz-6.1" and p.initramfs == folder / "initramfs.gz"


def test_missing_cmdline_txt_boots_with_an_empty_command_line(folder: Path) -> None:
    (folder / "cmdline.txt").unlink()
    assert harness.plan(folder).append == "panic=-1 console=ttyAMA0"


def test_bad_sources_and_machines(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(BuildError, match="no such boot folder"):
        harness.plan(tmp_path / "nowhere")
    with pytest.raises(BuildError, match="machine 'raspi4b'"):
        harness.plan(folder, "raspi4b")
    (folder / "config.txt").unlink()
    with pytest.raises(BuildError, match="has no config.txt"):
        harness.plan(folder)


def test_cmdline_serial_consoles_and_panic_are_replaced() -> None:
    words = [
        "console=serial0,115200",
        "console=ttyS1,115200",
        "console=tty1",
        "console=ttyAMA0",
        "root=/dev/mmcblk0p2",
        "panic=10",
        "rdinit=/init",
    ]
    assert harness.qemu_cmdline(words, "virt", ["x=1"]) == (
        "console=tty1 root=/dev/mmcblk0p2 rdinit=/init x=1 panic=-1 console=ttyAMA0"
    )
    assert harness.qemu_cmdline(words, "raspi3b").endswith("panic=-1 console=ttyS1,115200")


def test_virt_attaches_a_separate_disk(folder: Path, tmp_path: Path) -> None:
    disk = tmp_path / "a,b.img"
    disk.write_bytes(b"\0" * 3 * MiB)
    p = harness.plan(folder, disk=disk)
    assert p.args[-4:] == [
        "-drive",
        f"if=none,file={tmp_path}/a,,b.img,format=raw,id=hd0",
        "-device",
        "virtio-blk-device,drive=hd0",
    ]
    with pytest.raises(BuildError, match="no such disk image"):
        harness.plan(folder, disk=tmp_path / "missing.img")


def test_raspi3b_pads_a_copy_of_the_disk_to_a_power_of_two(
    folder: Path, tmp_path: Path, private_tmp: Path
) -> None:
    disk = tmp_path / "data.img"
    disk.write_bytes(b"\x01" * (3 * MiB + 512))
    with harness.plan(folder, "raspi3b", disk=disk) as p:
        assert p.disk is not None and p.disk != disk and p.workdir is not None
        assert p.disk.stat().st_size == 4 * MiB
        assert p.disk.read_bytes()[: 3 * MiB + 512] == disk.read_bytes()
        assert p.args[-2:] == ["-drive", f"if=sd,format=raw,file={p.disk}"]
    assert disk.stat().st_size == 3 * MiB + 512
    assert list(private_tmp.iterdir()) == []
    exact = tmp_path / "exact.img"
    exact.write_bytes(b"\0" * 4 * MiB)
    assert harness.plan(folder, "raspi3b", disk=exact).disk == exact


def test_card_image_is_read_from_partition_1_and_attached(
    folder: Path, tmp_path: Path, private_tmp: Path
) -> None:
    card = tmp_path / "sdcard.img"
    sdimage.make_image(card, folder, data_size=4 * MiB)
    before = card.stat()
    with harness.plan(card) as p:
        assert p.kernel.read_bytes() == KERNEL and p.initramfs is not None
        assert p.initramfs.read_bytes() == INITRAMFS
        assert p.append.endswith("quiet panic=-1 console=ttyAMA0")
        assert p.disk == card and f"if=none,file={card},format=raw,id=hd0" in p.args
    with harness.plan(card, "raspi3b") as p:
        assert p.dtb is not None and p.dtb.read_bytes() == DTB
        assert p.disk is not None and p.disk != card
        size = p.disk.stat().st_size
        assert size >= before.st_size and size & (size - 1) == 0
    after = card.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert list(private_tmp.iterdir()) == []


def test_card_image_missing_initramfs_fails_and_cleans_up(
    tmp_path: Path, private_tmp: Path
) -> None:
    folder = make_folder(tmp_path / "boot")
    (folder / "initramfs.gz").unlink()
    card = tmp_path / "sdcard.img"
    sdimage.make_image(card, folder)
    with pytest.raises(BuildError, match="names initramfs.gz, which is not there"):
        harness.plan(card)
    assert list(private_tmp.iterdir()) == []


LINES = [
    "Booting Linux on physical CPU 0x0000000000 [0x410fd034]",
    "[    0.000000] Linux version 6.1.0",
    "\ufffd[    2.035125] Run /init as init process",
    "APP-READY",
    "[   12.500000] reboot: Power down",
]


def test_kernel_time() -> None:
    assert harness.kernel_time(LINES, "Linux version") == 0.0
    assert harness.kernel_time(LINES, "Run /init") == 2.035125
    assert harness.kernel_time(LINES, "APP-READY") == 2.035125  # app output: the line before
    assert harness.kernel_time(LINES, "Power down") == 12.5
    assert harness.kernel_time(LINES, "Booting Linux") is None
    assert harness.kernel_time(LINES, "never printed") is None


# run() against a stand-in qemu-system-aarch64: a shell script printing a console transcript.


def fake_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> harness.BootPlan:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / harness.MACHINES["virt"].target.qemu
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return harness.BootPlan(tmp_path, "virt", tmp_path / "k", None, None, "", None)


def no_process(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 1


def test_run_passes_on_the_expected_lines_in_order_and_kills_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeper = f"sleep 3600.{time.time_ns() % 10**6:06d}"  # a child qemu left in its group
    plan = fake_qemu(
        tmp_path,
        monkeypatch,
        f"{sleeper} &\necho $! > {tmp_path}/pid\nprintf '[    1.000000] B early\\n"
        f"A\\n[    2.500000] B\\nnot a full line'\nexec sleep 3600\n",
    )
    log = tmp_path / "console.log"
    result = harness.run(plan, expect=["A", "B"], timeout=10, log=log)
    assert result.ok, result.reason
    assert result.lines == ["[    1.000000] B early", "A", "[    2.500000] B"]
    assert list(result.first_seen) == ["A", "B"] and result.seconds < 5
    assert log.read_text() == "[    1.000000] B early\nA\n[    2.500000] B\n"
    assert (tmp_path / "pid").exists() and no_process(sleeper)


def test_run_fails_at_once_on_a_fail_text_or_a_panic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = fake_qemu(tmp_path, monkeypatch, "echo 'app: FATAL oops'\nexec sleep 3600\n")
    result = harness.run(plan, expect=["never"], fail=["FATAL"], timeout=10, log=tmp_path / "l")
    assert not result.ok and "'FATAL'" in result.reason and result.seconds < 5
    plan = fake_qemu(
        tmp_path,
        monkeypatch,
        "echo 'READY'\necho '[ 1.0] Kernel panic - not syncing: Attempted to kill "
        "init!'\nexec sleep 3600\n",
    )
    result = harness.run(plan, expect=["READY"], then="Power down", timeout=10, log=tmp_path / "l")
    assert not result.ok and "Kernel panic" in result.reason


def test_run_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = fake_qemu(tmp_path, monkeypatch, "echo booting\nexec sleep 3600\n")
    result = harness.run(plan, expect=["READY"], timeout=1.5, log=tmp_path / "l")
    assert not result.ok and result.reason == "timed out after 1.5 s waiting for 'READY'"
    assert 1.5 <= result.seconds < 5 and result.lines == ["booting"]


def test_run_fails_when_qemu_exits_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = fake_qemu(tmp_path, monkeypatch, "echo 'qemu: Invalid SD card size' >&2\nexit 1\n")
    result = harness.run(plan, expect=["READY"], timeout=10, log=tmp_path / "l")
    assert not result.ok
    assert result.reason == (
        "qemu exited (status 1) while waiting for 'READY'; last line: qemu: Invalid SD card size"
    )


def test_run_then_keeps_reading_after_the_expected_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = fake_qemu(
        tmp_path,
        monkeypatch,
        "echo 'reboot: Power down too early'\necho READY\nsleep 0.3\n"
        "echo '[ 3.0] reboot: Power down'\nexec sleep 3600\n",
    )
    result = harness.run(
        plan, expect=["READY"], then="reboot: Power down", timeout=10, log=tmp_path / "l"
    )
    assert result.ok, result.reason
    assert result.first_seen["reboot: Power down"] - result.first_seen["READY"] >= 0.25
    plan = fake_qemu(tmp_path, monkeypatch, "echo READY\nsleep 0.3\necho bye\n")
    result = harness.run(
        plan, expect=["READY"], stop_after_expect=False, timeout=10, log=tmp_path / "l"
    )
    assert result.ok and result.lines == ["READY", "bye"] and "exited" in result.reason


def test_raspi2b_plan_boots_a_32_bit_kernel_with_qemu_system_arm(tmp_path: Path) -> None:
    config = bootfs.config_txt("vmlinuz-6.1", "initramfs.gz", [], arm_64bit=False)
    folder = make_folder(tmp_path / "boot", config, bootfs.cmdline_txt(["quiet"], "ttyAMA0,115200"))
    with pytest.raises(BuildError, match="no bcm2836-rpi-2-b.dtb for -M raspi2b"):
        harness.plan(folder, "raspi2b")
    (folder / "bcm2836-rpi-2-b.dtb").write_bytes(DTB)
    p = harness.plan(folder, "raspi2b")
    assert p.append == "console=tty1 rdinit=/init loglevel=4 quiet panic=-1 console=ttyAMA0,115200"
    assert p.args[:4] == ["-M", "raspi2b", "-serial", "mon:stdio"]
    assert p.dtb == folder / "bcm2836-rpi-2-b.dtb"
    assert harness.MACHINES["raspi2b"].target.qemu == "qemu-system-arm"
    assert harness.MACHINES["raspi3b"].target.qemu == "qemu-system-aarch64"


def test_raspi2b_loads_kernel7_img_without_kernel_and_needs_no_arm_64bit(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "boot", "initramfs initramfs.gz followkernel\n")
    (folder / "bcm2836-rpi-2-b.dtb").write_bytes(DTB)
    with pytest.raises(BuildError, match="no kernel= in config.txt and no kernel7.img"):
        harness.plan(folder, "raspi2b")
    (folder / "kernel7.img").write_bytes(KERNEL)
    assert harness.plan(folder, "raspi2b").kernel == folder / "kernel7.img"
    with pytest.raises(BuildError, match="neither kernel= nor arm_64bit=1"):
        harness.plan(folder, "raspi3b")  # a 64-bit board would load kernel7 as 32-bit


def test_run_starts_the_machines_own_qemu(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "bcm2836-rpi-2-b.dtb").write_bytes(DTB)
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    with pytest.raises(BuildError, match="qemu-system-arm: command not found"):
        harness.run(harness.plan(folder, "raspi2b"), expect=["x"], log=tmp_path / "log")
    with pytest.raises(BuildError, match="qemu-system-aarch64: command not found"):
        harness.run(harness.plan(folder, "virt"), expect=["x"], log=tmp_path / "log")
