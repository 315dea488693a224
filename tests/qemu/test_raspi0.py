"""The ARMv6 Pis' target, armel: the card `invoke image` makes for `[image] board = "pi-zero"`
(Debian's rpi kernel, the Pi Zero's dtb and firmware, pinit's own init built for armel) booted
on QEMU's -M raspi0, the Pi Zero's ARM1176. One boot checks the smoke set: the seed's job (a
module, then the Python app), a supervised crash, a Python service with packages from the pip
index (a C extension among them, cross-compiled for armel) and a clean power-off."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import image
from builder.formats import compress, cpio
from builder.qemu import harness
from tests.qemu.conftest import target_init
from toolchain.target import ARMEL

pytestmark = pytest.mark.qemu

REPO = Path(__file__).resolve().parents[2]
PYPI32 = REPO / "tests" / "apps" / "pypi32"

CRASHER = r"""
#include <stdio.h>
#include <sys/utsname.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("crasher: a static C service on %s\n", u.machine);
    fflush(stdout);
    return 3; /* a crash: the supervisor restarts it */
}
"""

HELLO = """\
import os

print("Hello world!", flush=True)
print(f"hello: {os.uname().machine}, dummy module loaded: {os.path.isdir('/sys/module/dummy')}")
with open("/proc/self/cgroup") as f:
    print(f"hello: cgroup {f.read().strip()}", flush=True)
"""


def test_invoke_image_makes_a_pi_zero_card_that_runs_the_seeds_job_and_packages(
    tmp_path: Path,
) -> None:
    tc, init = target_init(ARMEL)
    head = init.read_bytes()[:40]
    assert not int.from_bytes(head[36:40], "little") & 0x400  # EF_ARM_ABI_FLOAT_HARD: not armhf
    (tmp_path / "crasher.c").write_text(CRASHER)
    subprocess.run(
        [f"{ARMEL.cross}gcc", "-static", "-O2", "-o", tmp_path / "crasher", tmp_path / "crasher.c"],
        check=True,
    )
    (tmp_path / "hello.py").write_text(HELLO)
    for name in ("packages.py", "requirements.txt", "pinit.lock"):
        shutil.copy(PYPI32 / name, tmp_path / name)
    # Once the packages' service has said all, it asks PID 1 for a clean power-off.
    with (tmp_path / "packages.py").open("a") as f:
        f.write("\nimport os, signal\n\nos.kill(1, signal.SIGUSR2)\n")
    toml = tmp_path / "pinit.toml"
    toml.write_text(
        '[image]\nboard = "pi-zero"\n\n[kernel]\nmodules = ["dummy"]\n\n'
        '[[service]]\nname = "hello"\nexec = "hello.py"\nrestart = "never"\n\n'
        '[[service]]\nname = "packages"\nexec = "packages.py"\n'
        'requirements = "requirements.txt"\nrestart = "never"\n\n'
        '[[service]]\nname = "crasher"\nexec = "crasher"\nrestart = "always"\n'
        "backoff_start = 0.2\n"
    )
    built = image.build(toml, tmp_path / "out", init, tc)
    names = sorted(p.name for p in built.boot.iterdir())
    assert "bcm2835-rpi-zero.dtb" in names and "bootcode.bin" in names
    assert not [n for n in names if n.startswith(("bcm2836", "bcm2837", "bcm2711", "start4"))]
    assert any(n.startswith("vmlinuz-") and n.endswith("-rpi") for n in names)
    config = (built.boot / "config.txt").read_text()
    assert "arm_64bit" not in config and "kernel=vmlinuz-" in config
    entries = cpio.read(compress.decompress(built.initramfs.read_bytes()))
    assert any(e.path.endswith("/dummy.ko") or e.path.endswith("/dummy.ko.xz") for e in entries)
    log = tmp_path / "boot.log"
    with harness.plan(built.boot, "raspi0") as plan:
        assert plan.dtb is not None and plan.dtb.name == "bcm2835-rpi-zero.dtb"
        result = harness.run(
            plan,
            expect=["pinit: started as PID 1 on armv6l"],
            also=[
                "Hello world!",
                "hello: armv6l, dummy module loaded: True",
                "hello: cgroup 0::/hello",
                "crasher: a static C service on armv6l",
                "pinit: crasher exited with status 3; restart 1",
                "PYPI32 markupsafe C: &lt;pi &amp; 2&gt;",
                "PYPI32 builtin: built-in built-in",
                "PYPI32 sysconfig: arm-linux-gnueabi 4",
                "pinit: got SIGUSR2: poweroff",
            ],
            then="reboot: Power down",
            fail=["Traceback", "FATAL"],
            timeout=300,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"
