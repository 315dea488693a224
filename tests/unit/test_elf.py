"""ELF checks on real binaries: the host's, and the arm64 busybox from the locked packages."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from builder.formats.elf import inspect_elf, require_aarch64, require_static_aarch64
from hostkit.errors import BuildError


def test_host_python_is_refused_as_x86_64() -> None:
    with pytest.raises(BuildError, match="EM_X86_64 ELFCLASS64 little-endian.*not aarch64"):
        require_aarch64(Path(sys.executable).resolve(), "app")


def test_dynamic_binary_is_described_with_its_interpreter() -> None:
    info = inspect_elf(Path("/bin/ls"))
    assert info.interp and info.interp.startswith("/lib")
    assert "libc.so.6" in info.needed and not info.static


def test_not_an_elf_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\n")
    with pytest.raises(BuildError, match="not a readable ELF"):
        inspect_elf(f)


def test_static_arm64_busybox_passes(toolchain) -> None:
    info = require_static_aarch64(toolchain.busybox, "busybox")
    assert info.static and info.machine == "EM_AARCH64"


def test_dynamic_arm64_library_is_refused_as_not_static(toolchain) -> None:
    lib = toolchain.sysroot / "lib/aarch64-linux-gnu/libc.so.6"
    info = inspect_elf(lib.resolve())
    assert info.machine == "EM_AARCH64" and info.dynamic
    with pytest.raises(BuildError, match="dynamic"):
        require_static_aarch64(lib.resolve(), "init")


def test_cross_linker_is_installed() -> None:
    assert shutil.which("aarch64-linux-gnu-gcc"), "run `invoke toolchain`"


def test_a_pi_2_service_must_be_a_static_armhf_program(toolchain, tmp_path: Path) -> None:
    """app_files for armhf: the aarch64 busybox is refused by its machine, a dynamic program
    by its loader (an armhf card does not bundle libraries yet); aarch64 bundles as before."""
    from builder.apps import app_files
    from toolchain.target import ARMHF

    with pytest.raises(BuildError, match="EM_AARCH64 ELFCLASS64.*not armhf"):
        app_files(toolchain.busybox, "/app/x", toolchain.sysroot, ARMHF)
    assert list(app_files(toolchain.busybox, "/app/x", toolchain.sysroot)) == ["app/x"]
    if shutil.which("arm-linux-gnueabihf-gcc") is None:
        return
    src = tmp_path / "m.c"
    src.write_text("int main(void) { return 0; }\n")
    import subprocess

    for flags, ok in ((["-static"], True), ([], False)):
        out = tmp_path / f"m{len(flags)}"
        subprocess.run(["arm-linux-gnueabihf-gcc", *flags, "-o", out, src], check=True)
        if ok:
            assert app_files(out, "/app/m", toolchain.sysroot, ARMHF) == {"app/m": out.read_bytes()}
        else:
            with pytest.raises(BuildError, match="dynamically linked"):
                app_files(out, "/app/m", toolchain.sysroot, ARMHF)


def arm_elf(machine: int, bits: int, flags: int) -> bytes:
    """A static ELF header (no segments, no sections) of `machine`, ELF class `bits`."""
    import struct

    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1, 1]) + bytes(9)
    if bits == 32:
        return ident + struct.pack(
            "<HHIIIIIHHHHHH", 2, machine, 1, 0, 0, 0, flags, 52, 32, 0, 40, 0, 0
        )
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, flags, 64, 56, 0, 64, 0, 0)


def test_a_32_bit_cards_e2fsck_is_its_targets_own(tmp_path: Path, monkeypatch) -> None:
    """[data] on a 32-bit board ships e2fsck-static of the board's Debian architecture (its
    runtime-<target> role), checked by ELF machine, class and float ABI: Debian's armhf is
    ARMv7 code the ARMv6 Pis cannot run, and an aarch64 one runs on neither."""
    import dataclasses

    from builder import image
    from builder.config import BuildConfig, Image
    from init.config import Config, Data
    from toolchain import provision
    from toolchain.target import AARCH64, ARMHF

    armel = dataclasses.replace(
        ARMHF, name="armel", debian_arch="armel", triplet="arm-linux-gnueabi"
    )
    programs = {
        "arm64": arm_elf(183, 64, 0),
        "armhf": arm_elf(40, 32, 0x05000400),
        "armel": arm_elf(40, 32, 0x05000200),
    }
    for arch, data in programs.items():
        (tmp_path / arch / "sbin").mkdir(parents=True)
        (tmp_path / arch / "sbin/e2fsck.static").write_bytes(data)
    monkeypatch.setattr(provision, "ensure_runtime", lambda target: tmp_path / target.debian_arch)
    tree = {name: tmp_path / name for name in ("sysroot", "kernel", "firmware", "baseline")}
    tc = provision.Toolchain(
        cache=tmp_path, runtime=tmp_path / "arm64", wifi=tmp_path, testkit=tmp_path,
        kbuild=tmp_path, cffi_src=tmp_path, cpython_src=tmp_path, **tree,
    )  # fmt: skip
    cfg = BuildConfig(
        path=tmp_path / "pinit.toml", init=Config(data=Data(device="LABEL=d")), image=Image()
    )
    for target in (AARCH64, ARMHF, armel):
        files = image.fsck_files(cfg, dataclasses.replace(tc, target=target))
        assert files["sbin/e2fsck"][0] == programs[target.debian_arch]
    monkeypatch.setattr(provision, "ensure_runtime", lambda target: tmp_path / "armhf")
    with pytest.raises(BuildError, match="is an armhf program, not armel"):
        image.fsck_files(cfg, dataclasses.replace(tc, target=armel))
    monkeypatch.setattr(provision, "ensure_runtime", lambda target: tmp_path / "arm64")
    with pytest.raises(BuildError, match="EM_AARCH64 ELFCLASS64 little-endian, static, not armhf"):
        image.fsck_files(cfg, dataclasses.replace(tc, target=ARMHF))
