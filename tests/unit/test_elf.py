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
