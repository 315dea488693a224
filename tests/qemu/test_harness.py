"""The QEMU boot harness itself, booting the real Debian kernel with a tiny busybox initramfs.

No pinit init is needed: the initramfs is written here with builder/formats/cpio.py, so these tests
show that plan() reads a boot folder / card image like the firmware and run() judges a boot
from the console and never leaves qemu behind."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.formats import bootfs, compress, cpio, sdimage
from builder.qemu import harness
from hostkit.errors import BuildError
from toolchain.provision import Toolchain, ensure

pytestmark = pytest.mark.qemu

INIT_OK = (
    "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho HARNESS-OK\n"
    "exec /bin/busybox poweroff -f\n"
)
INIT_HANG = "#!/bin/sh\necho HARNESS-WAITING\nexec /bin/busybox sleep 600\n"


@pytest.fixture(scope="module")
def toolchain() -> Toolchain:
    if shutil.which(harness.QEMU) is None:
        pytest.skip(f"{harness.QEMU} is not installed (apt-get install qemu-system-arm)")
    try:
        tc = ensure(host=False)
    except BuildError as exc:
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")
    dtb = tc.dtbs / "broadcom" / "bcm2837-rpi-3-b.dtb"
    if not (tc.vmlinuz.is_file() and tc.busybox.is_file() and dtb.is_file()):
        pytest.skip(f"kernel, dtb or busybox missing under {tc.cache}; run `invoke toolchain`")
    return tc


def boot_folder(tc: Toolchain, out: Path, init: str) -> Path:
    """A boot folder laid out as the builder lays it out: kernel, initramfs and the dtbs at
    the top, config.txt and cmdline.txt as bootfs writes them."""
    archive = cpio.write(
        [
            cpio.File.from_host("bin/busybox", tc.busybox, 0o755),
            cpio.Symlink("bin/sh", "busybox"),
            cpio.Dir("proc", 0o555),
            cpio.Dir("dev"),
            cpio.CharDev("dev/console", 5, 1),
            cpio.File("init", init.encode(), 0o755),
        ]
    )
    out.mkdir(parents=True)
    (out / "initramfs.gz").write_bytes(compress.compress(archive, "gzip"))
    shutil.copyfile(tc.vmlinuz, out / tc.vmlinuz.name)
    for dtb in sorted((tc.dtbs / "broadcom").glob("bcm2837-rpi-3-*.dtb")):
        shutil.copyfile(dtb, out / dtb.name)
    (out / "config.txt").write_text(bootfs.config_txt(tc.vmlinuz.name, "initramfs.gz", []))
    (out / "cmdline.txt").write_text(bootfs.cmdline_txt([]))
    return out


@pytest.fixture(scope="module")
def ok_folder(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return boot_folder(toolchain, tmp_path_factory.mktemp("harness") / "boot", INIT_OK)


def qemu_left(marker: Path) -> str:
    """Any process still running with `marker` (a unique path) on its command line."""
    proc = subprocess.run(["pgrep", "-af", str(marker)], capture_output=True, text=True)
    return proc.stdout


def test_virt_boots_to_the_app_and_powers_down(ok_folder: Path, tmp_path: Path) -> None:
    log = tmp_path / "boot.log"
    with harness.plan(ok_folder, "virt", ["loglevel=6"]) as plan:
        result = harness.run(
            plan, expect=["HARNESS-OK"], then="reboot: Power down", timeout=30, log=log
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-20:])
    assert result.first_seen["HARNESS-OK"] <= result.first_seen["reboot: Power down"]
    app = harness.kernel_time(result.lines, "HARNESS-OK")
    down = harness.kernel_time(result.lines, "reboot: Power down")
    assert app is not None and down is not None and 0 < app <= down
    assert "HARNESS-OK" in log.read_text()
    print(f"virt: HARNESS-OK at {result.first_seen['HARNESS-OK']:.2f} s wall, {app:.2f} s kernel")


def test_a_boot_without_the_expected_line_times_out_and_leaves_no_qemu(
    toolchain: Toolchain, tmp_path: Path
) -> None:
    folder = boot_folder(toolchain, tmp_path / "boot-hang", INIT_HANG)
    with harness.plan(folder) as plan:
        result = harness.run(plan, expect=["HARNESS-OK"], timeout=15, log=tmp_path / "boot.log")
    assert not result.ok
    assert result.reason == "timed out after 15 s waiting for 'HARNESS-OK'"
    assert any("HARNESS-WAITING" in line for line in result.lines)  # it booted, then hung
    assert qemu_left(folder / "initramfs.gz") == ""


def test_a_fail_text_stops_the_boot_early(ok_folder: Path, tmp_path: Path) -> None:
    with harness.plan(ok_folder) as plan:
        result = harness.run(
            plan,
            expect=["NEVER-PRINTED"],
            fail=["HARNESS-OK"],
            timeout=30,
            log=tmp_path / "boot.log",
        )
    assert not result.ok and result.reason.startswith("saw 'HARNESS-OK' after ")
    assert result.seconds < 20 and "reboot: Power down" not in "\n".join(result.lines)


def test_raspi3b_boots_the_same_folder(ok_folder: Path, tmp_path: Path) -> None:
    # Power-off only halts the raspi3b board: qemu keeps running until run() kills it.
    with harness.plan(ok_folder, "raspi3b") as plan:
        result = harness.run(plan, expect=["HARNESS-OK"], timeout=30, log=tmp_path / "boot.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-20:])
    assert harness.kernel_time(result.lines, "HARNESS-OK") is not None
    assert qemu_left(ok_folder / "bcm2837-rpi-3-b.dtb") == ""
    print(f"raspi3b: HARNESS-OK at {result.first_seen['HARNESS-OK']:.2f} s wall")


@pytest.mark.parametrize("machine", ["virt", "raspi3b"])
def test_a_card_image_boots_with_its_disk_attached(
    ok_folder: Path, tmp_path: Path, machine: str
) -> None:
    card = tmp_path / "sdcard.img"
    sdimage.make_image(card, ok_folder, data_size=4 * 1024 * 1024)  # 72 MiB: raspi3b pads
    with harness.plan(card, machine) as plan:
        assert plan.disk is not None
        result = harness.run(plan, expect=["HARNESS-OK"], timeout=30, log=tmp_path / "boot.log")
        assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-20:])
        assert qemu_left(plan.disk) == ""
    print(f"{machine} from {card.name}: HARNESS-OK at {result.first_seen['HARNESS-OK']:.2f} s")
