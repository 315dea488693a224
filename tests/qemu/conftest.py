"""What the QEMU tests share: tiny static aarch64 programs made by the cross compiler, and for
the 32-bit targets' tests their tools, trees and init."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hostkit.errors import BuildError
from hostkit.paths import BUILD
from tests.conftest import in_ci
from toolchain.provision import Toolchain, ensure, ensure_kernel, for_target
from toolchain.target import Target


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


def need(program: str) -> None:
    """A host program a test needs: missing is a failure in CI, a skip elsewhere."""
    if shutil.which(program) is None:
        if in_ci():
            pytest.fail(f"{program} is missing: `invoke toolchain` installs it")
        pytest.skip(f"{program} is not installed; run `invoke toolchain` as root")


def target_parts(target: Target) -> tuple[Toolchain, Path]:
    """For a test of another target (a 32-bit Pi): its QEMU and cross compiler, the locked
    trees with its kernel provisioned, and the unpacked kernel."""
    need(target.qemu)
    need(f"{target.cross}gcc")
    try:
        return ensure(host=False), ensure_kernel(target)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")


def target_init(target: Target) -> tuple[Toolchain, Path]:
    """The locked trees and pinit's init built for `target` (build/init-<name>), checked to be
    a 32-bit ARM program."""
    from builder.python.compile import build_init

    tc, _kernel = target_parts(target)
    init = build_init(for_target(tc, target), BUILD / f"init-{target.name}")
    head = init.read_bytes()[:20]
    assert head[4] == 1 and int.from_bytes(head[18:20], "little") == target.elf_machine
    return tc, init
