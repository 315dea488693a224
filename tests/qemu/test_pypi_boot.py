"""Packages from the pip index in the one binary, proven on -M virt's real UART and GPIO chip.

tests/apps/pypi is a complete appliance: two Python services, one requirements.txt (pyserial,
pure Python; gpiod and spidev, C extensions built from their sdists) and its committed
pinit.lock. Needs the pip index for the first fetch (then the cache); CI runs it.
"""

from __future__ import annotations

import shutil

import pytest

from builder.formats import compress, cpio
from builder.image import build
from builder.qemu import harness
from hostkit.paths import REPO

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
APP = REPO / "tests" / "apps" / "pypi"


def test_pyserial_gpiod_spidev_and_a_restarted_asyncio_service(
    built_init, toolchain, tmp_path
) -> None:
    lock_before = (APP / "pinit.lock").read_bytes()
    built = build(APP / "pinit.toml", tmp_path / "out", built_init, toolchain)
    assert (APP / "pinit.lock").read_bytes() == lock_before, "a build must not re-lock"
    entries = cpio.read(compress.decompress(built.initramfs.read_bytes()))
    assert not [e.path for e in entries if ".so" in e.path.rsplit("/", 1)[-1]]
    with harness.plan(built.boot) as plan:
        result = harness.run(
            plan,
            expect=[
                "PYPI serial: written by pyserial 3.5",
                "PYPI gpiod: gpiochip0 label=9030000.pl061 lines=8",
                "PYPI gpiod: line 5 INACTIVE -> ACTIVE",
                "/certifi/cacert.pem exists=True certificates>100=True",
                "PYPI spidev: FileNotFoundError",
                "reboot: Power down",
            ],
            fail=["FATAL"],
            timeout=90,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    runs = [line for line in result.lines if line.startswith("PYPI looper run")]
    assert runs == [
        "PYPI looper run 1: ticks=3 serial=3.5 gpiod=2.5.0",
        "PYPI looper run 2: ticks=3 serial=3.5 gpiod=2.5.0",
    ], runs
    assert any("pinit: looper exited with status 1; restart 1 in" in line for line in result.lines)
