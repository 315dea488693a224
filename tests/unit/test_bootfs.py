"""config.txt, cmdline.txt, the config.txt reader, and the atomic boot folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.formats import bootfs
from hostkit.errors import BuildError
from hostkit.run import source_date_epoch


def test_config_txt_boots_a_64bit_debian_kernel() -> None:
    text = bootfs.config_txt("vmlinuz", "initrd.img", ["dtparam=i2c_arm=on", "gpu_mem=16"])
    lines = text.splitlines()
    assert lines[0].startswith("# Written by pinit")
    for line in (
        "arm_64bit=1",
        "kernel=vmlinuz",
        "initramfs initrd.img followkernel",
        "enable_uart=1",
        "upstream_kernel=1",
        "disable_splash=1",
    ):
        assert line in lines
    assert lines[-3:] == ["[all]", "dtparam=i2c_arm=on", "gpu_mem=16"]
    assert text.endswith("\n")


def test_config_txt_without_extra_lines_has_no_section() -> None:
    assert "[all]" not in bootfs.config_txt("vmlinuz", "initrd.img", [])


@pytest.mark.parametrize(
    "kernel, initramfs, extra",
    [
        ("vm linuz", "initrd.img", []),
        ("vmlinuz", "", []),
        ("vmlinuz", "initrd.img", ["a=1\nb=2"]),
        ("vmlinuz", "initrd.img", ["dtoverlay=" + "x" * 100]),
    ],
)
def test_config_txt_rejects_what_the_firmware_would_misread(
    kernel: str, initramfs: str, extra: list[str]
) -> None:
    with pytest.raises(BuildError):
        bootfs.config_txt(kernel, initramfs, extra)


def test_cmdline_txt_is_one_line_with_serial_console_and_no_root() -> None:
    text = bootfs.cmdline_txt(["pinit.debug=1", "quiet"])
    assert text.endswith("\n") and text.count("\n") == 1
    words = text.split()
    assert words[:4] == ["console=ttyS1,115200", "console=tty1", "rdinit=/init", "panic=10"]
    assert words[4].startswith("loglevel=")
    assert words[-2:] == ["pinit.debug=1", "quiet"]
    assert not any(w.startswith("root=") for w in words)


def test_cmdline_txt_rejects_a_line_break() -> None:
    with pytest.raises(BuildError, match="cmdline.txt"):
        bootfs.cmdline_txt(["a\nb"])


SECTIONS = """\
# comment
arm_64bit=1
kernel = vmlinuz
initramfs initrd.img followkernel
dtparam=audio=on

[pi3]
kernel=kernel-pi3
gpu_mem=32
[pi4]
kernel=kernel-pi4
initramfs initrd-pi4.img followkernel
[none]
enable_uart=0
[HDMI:1]
hdmi_group=2
[all]
gpu_mem=16
"""


def test_effective_applies_all_and_the_board_section_in_order() -> None:
    pi3 = bootfs.effective(SECTIONS, "pi3")
    assert pi3 == {
        "arm_64bit": "1",
        "kernel": "kernel-pi3",
        "initramfs": "initrd.img",
        "dtparam": "audio=on",
        "gpu_mem": "16",
    }
    pi4 = bootfs.effective(SECTIONS, "pi4")
    assert pi4["kernel"] == "kernel-pi4"
    assert pi4["initramfs"] == "initrd-pi4.img"
    assert pi4["gpu_mem"] == "16"
    assert "enable_uart" not in pi4 and "hdmi_group" not in pi4


def test_effective_reads_what_config_txt_writes() -> None:
    text = bootfs.config_txt("vmlinuz", "initrd.img", ["[pi4]", "arm_boost=1"])
    assert bootfs.effective(text, "pi4")["arm_boost"] == "1"
    pi3 = bootfs.effective(text, "pi3")
    assert "arm_boost" not in pi3
    assert pi3["kernel"] == "vmlinuz" and pi3["initramfs"] == "initrd.img"


def test_parse_config_txt_keeps_every_setting_with_its_section() -> None:
    settings = bootfs.parse_config_txt(SECTIONS)
    assert settings[0] == bootfs.Setting("all", "arm_64bit", "1", 2)
    assert [s.value for s in settings if s.key == "kernel"] == [
        "vmlinuz",
        "kernel-pi3",
        "kernel-pi4",
    ]
    assert bootfs.Setting("none", "enable_uart", "0", 14) in settings


def test_effective_rejects_an_unknown_board() -> None:
    with pytest.raises(BuildError, match="pi9"):
        bootfs.effective(SECTIONS, "pi9")


def test_make_boot_folder_writes_files_with_fixed_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "kernel"
    src.write_bytes(b"\x7fELF kernel")
    out = tmp_path / "boot"
    bootfs.make_boot_folder(
        out, {"vmlinuz": src, "config.txt": b"arm_64bit=1\n", "overlays/foo.dtbo": b"dtbo"}
    )
    assert (out / "vmlinuz").read_bytes() == b"\x7fELF kernel"
    assert (out / "overlays" / "foo.dtbo").read_bytes() == b"dtbo"
    entries = [out, *out.rglob("*")]
    assert {p.stat().st_mtime for p in entries} == {source_date_epoch()}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_make_boot_folder_replaces_the_previous_folder(tmp_path: Path) -> None:
    out = tmp_path / "boot"
    bootfs.make_boot_folder(out, {"old.txt": b"old"})
    bootfs.make_boot_folder(out, {"new.txt": b"new"})
    assert sorted(os.listdir(out)) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["boot"]


def test_failed_build_leaves_the_previous_folder_intact(tmp_path: Path) -> None:
    out = tmp_path / "boot"
    bootfs.make_boot_folder(out, {"config.txt": b"good\n"})
    missing = tmp_path / "no-such-kernel"
    with pytest.raises(BuildError, match="no-such-kernel"):
        bootfs.make_boot_folder(out, {"config.txt": b"new\n", "vmlinuz": missing})
    assert (out / "config.txt").read_bytes() == b"good\n"
    assert sorted(os.listdir(out)) == ["config.txt"]
    assert sorted(os.listdir(tmp_path)) == ["boot"]


@pytest.mark.parametrize("name", ["/abs", "../up", "a/../b", "a//b", "", ".", "dir/"])
def test_make_boot_folder_rejects_names_outside_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(BuildError, match="boot folder entry"):
        bootfs.make_boot_folder(tmp_path / "boot", {name: b"x"})
    assert not (tmp_path / "boot").exists()
    assert os.listdir(tmp_path) == []


def test_config_txt_and_cmdline_txt_of_a_32_bit_board() -> None:
    text = bootfs.config_txt("vmlinuz-6.1.0-57-armmp", "initramfs.gz", [], arm_64bit=False)
    assert "arm_64bit" not in text and "32-bit Debian kernel" in text
    assert bootfs.effective(text, "pi2") == {
        "kernel": "vmlinuz-6.1.0-57-armmp",
        "initramfs": "initramfs.gz",
        "upstream_kernel": "1",
        "enable_uart": "1",
        "disable_splash": "1",
    }
    # Only the first two lines differ from the 64-bit kernel's.
    text64 = bootfs.config_txt("vmlinuz-6.1.0-57-armmp", "initramfs.gz", [])
    assert text64.splitlines()[3:] == text.splitlines()[2:]
    line = bootfs.cmdline_txt(["quiet"], "ttyAMA0,115200")
    assert line.startswith("console=ttyAMA0,115200 console=tty1 rdinit=/init")
    assert bootfs.cmdline_txt(["quiet"]) == bootfs.cmdline_txt(["quiet"], bootfs.SERIAL_CONSOLE)
