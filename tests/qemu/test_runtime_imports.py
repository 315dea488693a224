"""What CPython can import and do on a Pi, a pinit service can: one appliance, one boot.

The appliance has two services: tests/apps/runtime_probe.py (imports by computed names, every
codec, sysconfig's data, lazy imports, name resolution, docstrings and asserts) and
tests/apps/cpython_suite.py, which runs CPython's own regression tests (the modules of
tests/cpython/modules.txt, from Debian's libpython3.11-testsuite) and whose result per module
must equal the host python3.11's (tests/cpython/baseline.json) but for the differences
tests/cpython/differences.txt lists with their reasons.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from builder.image import build
from builder.qemu import harness
from hostkit.paths import BUILD, REPO

sys.path.insert(0, str(REPO / "tests/cpython"))
import suite  # noqa: E402  (tests/cpython/suite.py: the list, the data, the comparison)

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]


@pytest.fixture(scope="module")
def booted(built_init, toolchain, tmp_path_factory) -> harness.BootResult:
    tmp = tmp_path_factory.mktemp("runtime")
    stdlib = toolchain.runtime / "usr/lib/python3.11"
    # The suite's `test` and `ctypes` packages as Debian installs them, beside the harness so
    # that the build finds them first; their data files ship where the modules look for them.
    suite.merged_packages(stdlib, tmp)
    shutil.copy(suite.HARNESS, tmp / "cpython_suite.py")
    files = "\n".join(f'"{image}" = "{host}"' for image, host in suite.data_files(stdlib).items())
    modules = suite.modules()
    config = tmp / "pinit.toml"
    config.write_text(f"""
[init]
on_failure = "poweroff"
[[service]]
name = "probe"
exec = "{REPO / "tests/apps/runtime_probe.py"}"
restart = "never"
[[service]]
name = "cpython"
exec = "{tmp / "cpython_suite.py"}"
args = {json.dumps(modules)}
include = {json.dumps(suite.includes(stdlib))}
restart = "never"
after = ["probe"]
[image]
compression = "zstd"
[image.files]
{files}
""")
    image = build(config, tmp / "out", built_init, toolchain).image
    with harness.plan(image) as plan:
        return harness.run(
            plan,
            expect=["RUNTIME done", "CPYTHON done"],
            fail=["FATAL"],
            timeout=1500,
            log=BUILD / "runtime-imports.log",
        )


def test_run_time_imports_work_as_in_cpython(booted) -> None:
    assert any(line.startswith("RUNTIME done") for line in booted.lines), (
        booted.reason + "\n" + "\n".join(booted.lines[-40:])
    )
    lines = [line for line in booted.lines if line.startswith("RUNTIME ")]
    text = "\n".join(lines)
    assert "FAILED" not in text, text
    expected = [
        "RUNTIME getaddrinfo: ok ('127.0.0.1', 80) ('127.0.0.1', 80) port=123",
        "RUNTIME urlopen: ok 200 hello /x",
        # mbcs is Windows' codec: CPython on Linux has no such codec either.
        "RUNTIME codecs: ok 97/98 missing=['mbcs'] round_trips=True binary=True "
        "idna=xn--bcher-kva.example",
        "RUNTIME sysconfig: ok MULTIARCH=aarch64-linux-gnu "
        "SOABI=cpython-311-aarch64-linux-gnu tzpath=True",
        # dbm's back end: whichever of CPython's the binary links (gnu, ndbm, dumb).
        "RUNTIME computed: ok xml.dom.minidom xml.sax.expatreader dbm.",
        "RUNTIME lazy: ok '\\\\N{BULLET}' lines=True dispatch=int",
        "RUNTIME sqlite-dump: ok 4 lines",
        "RUNTIME pythonapi: ok 3.11.2 async=True",
        "RUNTIME flags: ok optimize=0 doc=True asserts=True",
    ]
    assert any(
        line.endswith(" logging.handlers concurrent.futures.process")
        for line in lines
        if line.startswith("RUNTIME computed:")
    ), text
    for want in expected:
        assert any(line.startswith(want) for line in lines), f"{want!r} not in:\n{text}"


def test_cpython_test_suite_gives_the_hosts_results(booted) -> None:
    assert any(line.startswith("CPYTHON done") for line in booted.lines), (
        booted.reason + "\n" + "\n".join(booted.lines[-40:])
    )
    device = suite.parse(booted.lines)
    host = suite.baseline()
    assert sorted(host) == sorted(suite.modules())
    report = "\n".join(
        f"{name}: run={r.run} fail={r.fail} err={r.err} skip={r.skip}" for name, r in device.items()
    )
    print(report)
    problems = suite.unexplained(device, host, suite.differences())
    assert not problems, "\n".join(problems) + "\n\n" + report
    # Every listed difference is still real: a fixed one is taken off the list.
    bad = {test for r in device.values() for test in r.bad}
    stale = [
        key
        for key in suite.differences()
        if key not in device and not any(t == key or t.startswith(key + ".") for t in bad)
    ]
    assert not stale, f"tests/cpython/differences.txt lists what now passes: {stale}"
