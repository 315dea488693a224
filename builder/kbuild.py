"""pinit's own kernel modules (init/kmod/*.c), built for exactly the locked kernel.

The way DKMS builds an out-of-tree module on a Debian system: Debian's kbuild for this machine
and the kernel's headers (the lock's `kbuild` role, the kernel's own version), the cross
compiler the kernel was built with (gcc 12), `make M=`. The modules go where DKMS puts them,
lib/modules/<release>/updates/ of the provisioned kernel tree, so the module index
(builder/kmod.py) finds them like any other module and an image ships one only when asked.
Rebuilt when a source, the headers or the compiler change; the debug info is stripped.

Unsigned: Debian's kernel does not enforce module signatures (CONFIG_MODULE_SIG_FORCE is
unset), so loading one taints the kernel ("module verification failed") and works.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.paths import REPO
from hostkit.run import run, step
from init.modules import modules_dir
from toolchain.provision import Toolchain
from toolchain.target import AARCH64

SOURCES = REPO / "init/kmod"
CROSS = AARCH64.cross  # the kernel is arm64's
OWN = "updates"  # DKMS's folder in lib/modules/<release>/
STAMP = ".pinit-own"


def headers(tc: Toolchain) -> Path:
    folder = tc.kbuild / "usr/src" / f"linux-headers-{tc.kernel_release}"
    if not (folder / "Makefile").is_file():
        raise BuildError(
            f"{folder}: no headers for kernel {tc.kernel_release}",
            hint="the lock's kbuild packages must be the kernel's: run `invoke toolchain --update`",
        )
    return folder


def ensure_own_modules(tc: Toolchain) -> Path:
    """The folder of the built modules (lib/modules/<release>/updates/ of the kernel tree)."""
    sources = sorted(SOURCES.glob("*.c"))
    dest = Path(modules_dir(tc.kernel, tc.kernel_release)) / OWN
    tree = headers(tc)
    compiler = run([f"{CROSS}gcc-12", "--version"], capture=True, quiet=True).stdout
    key = hashlib.sha256(compiler + (tc.kbuild / ".pinit-stamp").read_bytes())
    for path in sources:
        key.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = dest / STAMP
    if stamp.is_file() and stamp.read_text() == key.hexdigest():
        return dest
    with step(f"building {len(sources)} kernel module(s) for {tc.kernel_release}"):
        with tempfile.TemporaryDirectory(prefix="pinit-kbuild-") as tmp:
            work = Path(tmp)
            for path in sources:
                (work / path.name).write_bytes(path.read_bytes())
            objects = " ".join(f"{p.stem}.o" for p in sources)
            (work / "Kbuild").write_text(f"obj-m := {objects}\n")
            # Debian's headers Makefile includes its other half by its installed path, /usr/src.
            makefile = (tree / "Makefile").read_text()
            (work / "Makefile.headers").write_text(
                makefile.replace("/usr/src/", f"{tc.kbuild}/usr/src/")
            )
            run(
                [
                    "make",
                    "-s",
                    "-C",
                    tree,
                    "-f",
                    work / "Makefile.headers",
                    f"M={work}",
                    "ARCH=arm64",
                    f"CROSS_COMPILE={CROSS}",
                    "modules",
                ],
                capture=True,
            )
            for path in sources:
                built = work / f"{path.stem}.ko"
                run([f"{CROSS}strip", "--strip-debug", built], quiet=True)
                write_atomic(dest / built.name, built.read_bytes())
    write_atomic(stamp, key.hexdigest().encode())
    return dest
