"""What the QEMU tests share: tiny static aarch64 programs made by the cross compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def cc(toolchain, tmp_path_factory):
    """Compile a C source into a static aarch64 program (seconds, not a Nuitka run)."""
    out_dir = tmp_path_factory.mktemp("apps")

    def compile_c(name: str, source: str) -> Path:
        src = out_dir / f"{name}.c"
        src.write_text(source)
        out = out_dir / name
        subprocess.run(
            [
                "aarch64-linux-gnu-gcc",
                f"--sysroot={toolchain.sysroot}",
                "-static",
                "-O2",
                "-o",
                str(out),
                str(src),
            ],
            check=True,
        )
        return out

    return compile_c
