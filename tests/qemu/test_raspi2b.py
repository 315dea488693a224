"""The Pi 2 B (armhf): its boot folder written by the builder's own pieces (Debian's armmp
kernel from the lock, the Pi 2's dtb and firmware, config.txt without arm_64bit, its PL011
console), and the card `invoke image` makes for `[image] board = "pi-2"` (builder.image.build
with pinit's own init built for armhf, a static armhf C service, and a Python service whose
packages from the pip index, tests/apps/pypi32, are built from their sdists for armhf), booted
on QEMU's -M raspi2b through the harness."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import boards, image
from builder.formats import bootfs, compress, cpio
from builder.qemu import harness
from hostkit.paths import REPO
from tests.qemu.conftest import target_init, target_parts
from toolchain.target import ARMHF

pytestmark = pytest.mark.qemu

HELLO = r"""
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("Hello world! PID %d on %s\n", (int)getpid(), u.machine);
    fflush(stdout);
    reboot(RB_POWER_OFF); /* raspi2b only halts: the harness stops at the expected line */
    for (;;)
        pause();
}
"""


@pytest.fixture(scope="module")
def pi2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tc, kernel = target_parts(ARMHF)
    work = tmp_path_factory.mktemp("raspi2b")
    (work / "hello.c").write_text(HELLO)
    init = work / "init"
    subprocess.run(
        [f"{ARMHF.cross}gcc", "-static", "-O2", "-o", init, work / "hello.c"], check=True
    )
    archive = cpio.write(
        [
            cpio.Dir("dev"),
            cpio.CharDev("dev/console", 5, 1),
            cpio.File.from_host("init", init, 0o755),
        ]
    )
    platform = image.kernel_platform(kernel, tc.firmware, ARMHF)
    files: dict[str, Path | bytes] = {
        name: path for name, path in platform.boot_files.items() if boards.keeps("pi-2", name)
    }
    files[platform.kernel_name] = platform.kernel
    files["initramfs.gz"] = compress.compress(archive, "gzip")
    files.update(image.boot_texts("pi-2", platform.kernel_name, "initramfs.gz"))
    bootfs.make_boot_folder(work / "boot", files)
    return work / "boot"


def test_the_pi_2_boot_folder_holds_only_what_the_pi_2_reads(pi2_folder: Path) -> None:
    names = sorted(p.name for p in pi2_folder.iterdir())
    assert "bcm2836-rpi-2-b.dtb" in names and "bootcode.bin" in names
    assert not [n for n in names if n.startswith(("bcm2837", "bcm2711", "start4", "fixup4"))]
    assert any(n.startswith("vmlinuz-") and n.endswith("-armmp") for n in names)
    assert "arm_64bit" not in (pi2_folder / "config.txt").read_text()


CRASHER = r"""
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("Hello world! from a service on %s\n", u.machine);
    fflush(stdout);
    return 3; /* a crash: the supervisor restarts it */
}
"""


PYPI32 = REPO / "tests" / "apps" / "pypi32"


def test_invoke_image_makes_a_pi_2_card_whose_c_and_python_services_run(
    tmp_path: Path,
) -> None:
    """The real image build for `board = "pi-2"`: the board's target picks the armhf
    toolchain, Debian's armmp kernel and the armhf init; the card's boot folder boots on
    -M raspi2b, pinit's own Python init built for armhf (invoke build-init --target armhf) is
    PID 1: it starts the C service, and restarts it after it exits with a failure; the Python
    service (tests/apps/pypi32, its committed lock) imports pyserial (pure Python) and the C
    extensions of MarkupSafe and msgpack, cross-compiled for armhf from their sdists into the
    one static binary, and prints what they compute, and sysconfig's data (armhf's own)."""
    tc, init = target_init(ARMHF)
    (tmp_path / "crasher.c").write_text(CRASHER)
    app = tmp_path / "crasher"
    subprocess.run(
        [f"{ARMHF.cross}gcc", "-static", "-O2", "-o", app, tmp_path / "crasher.c"], check=True
    )
    for name in ("packages.py", "requirements.txt", "pinit.lock"):
        shutil.copy(PYPI32 / name, tmp_path / name)
    toml = tmp_path / "pinit.toml"
    toml.write_text(
        (PYPI32 / "pinit.toml").read_text()
        + '[[service]]\nname = "app"\nexec = "crasher"\nrestart = "always"\nbackoff_start = 0.5\n'
        + '\n[kernel]\nmodules = ["dummy"]\n'  # the seed's job: a module, then the apps
    )
    built = image.build(toml, tmp_path / "out", init, tc)
    assert (tmp_path / "pinit.lock").read_bytes() == (PYPI32 / "pinit.lock").read_bytes()
    names = sorted(p.name for p in built.boot.iterdir())
    assert "bcm2836-rpi-2-b.dtb" in names and not [n for n in names if n.startswith("bcm2837")]
    entries = cpio.read(compress.decompress(built.initramfs.read_bytes()))
    assert not [e.path for e in entries if ".so" in e.path.rsplit("/", 1)[-1]]
    log = tmp_path / "boot.log"
    with harness.plan(built.boot, "raspi2b") as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on armv7l",
                "pinit: mounted /dev",
                "pinit: loaded module dummy",
                "Hello world! from a service on armv7l",
                "pinit: app exited with status 3",
                "Hello world! from a service on armv7l",
            ],
            also=[
                "PYPI32 pyserial 3.5 on armv7l",
                "PYPI32 markupsafe C: &lt;pi &amp; 2&gt;",
                "PYPI32 msgpack C: 82a2706902a46269747393"
                "20ffcf0000010000000000 -> {'pi': 2, 'bits': [32, -1, 1099511627776]}",
                "PYPI32 builtin: built-in built-in",
                "PYPI32 sysconfig: arm-linux-gnueabihf 4 .cpython-311-arm-linux-gnueabihf.so",
            ],
            fail=["Traceback", "FATAL"],
            timeout=240,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"
