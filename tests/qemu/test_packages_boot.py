"""The packages people build appliances from, in one appliance, each doing one real thing.

tests/apps/packages is a complete appliance: one service (packages.py) and one requirements.txt
with its committed pinit.lock. What it proves, in one build and one boot:
- pure wheels (requests, flask, paho-mqtt, sqlalchemy, python-dateutil, smbus2, gpiozero; and
  the pure wheels beside the binary ones of frozenlist, multidict, yarl, propcache);
- C extensions built from their sdists with their own locked build requirements: Cython
  (msgpack), aiohttp's HTTP parser and websocket reader, a package's relative import of its own extension (markupsafe's `_speedups`), C++
  (greenlet, sqlalchemy's dependency), psutil (whose Nuitka configuration imports it on the
  build machine), evdev (generating its event codes from the sysroot's kernel headers; the
  power button of -M virt, a gpio-keys input device, read through /dev/input);
- single-file modules (six, typing_extensions), with no package-data request;
- the native runtime (builder/python/native.py) for what the Pi can have only as binary
  wheels: numpy (meson-python) and orjson (Rust), in a second service, with pillow (its
  aarch64 wheel there: libjpeg and libpng are its own);
- run-time lookups by name: six.moves, dateutil's zone data, the idna codec of `requests`,
  importlib.metadata (werkzeug's server asks for its own version; flask, markupsafe).
Needs the pip index for the first fetch (then the cache); CI runs it.
"""

from __future__ import annotations

import shutil

import pytest

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
APP = REPO / "tests" / "apps" / "packages"
CHECKS = (
    "flask+requests",
    "markupsafe",
    "pyyaml",
    "msgpack",
    "websockets",
    "aiohttp",
    "paho-mqtt",
    "sqlalchemy",
    "python-dateutil",
    "six+typing_extensions",
    "psutil",
    "smbus2",
    "gpiozero",
    "evdev",
    "numpy",
    "orjson",
    "pillow",
)


def test_the_packages_people_use_work_on_the_device(built_init, toolchain, tmp_path) -> None:
    lock_before = (APP / "pinit.lock").read_bytes()
    built = build(APP / "pinit.toml", tmp_path / "out", built_init, toolchain)
    assert (APP / "pinit.lock").read_bytes() == lock_before, "a build must not re-lock"
    with harness.plan(built.boot) as plan:
        # (arrays.py prints its two lines whenever it is ready, and powers off after PKG done)
        result = harness.run(
            plan,
            expect=["PKG done:", "reboot: Power down"],
            fail=["FATAL"],
            timeout=300,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-60:])
    lines = {line.split(":", 1)[0][4:]: line for line in result.lines if line.startswith("PKG ")}
    failed = [
        lines.get(name, f"PKG {name}: no line")
        for name in CHECKS
        if ": ok " not in lines.get(name, "")
    ]
    assert not failed, "\n".join(failed)
    # The compiled speed-ups are the ones in use, not their pure fallbacks.
    assert "2.1.5 speedups=C" in lines["markupsafe"], lines["markupsafe"]
    assert "flask 3.0.3" in lines["flask+requests"], lines["flask+requests"]
    assert "impl=msgpack._cmsgpack" in lines["msgpack"], lines["msgpack"]
    assert "parser=C" in lines["aiohttp"], lines["aiohttp"]
    assert lines["done"].startswith(f"PKG done: {len(CHECKS) - 3} ok, 0 failed")
    # numpy (meson-python) and orjson (Rust): the index's aarch64 wheels, in the native runtime,
    # which PID 1 names; the other service stays in the static binary.
    assert "executable=/usr/bin/python3.11" in lines["orjson"], lines["orjson"]
    assert any(
        "starting arrays (pid " in line and ", /usr/bin/python3.11)" in line
        for line in result.lines
    )
    assert any(
        "starting packages (pid " in line and "python3.11" not in line for line in result.lines
    )
