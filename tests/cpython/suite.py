"""CPython's own test suite on the device: the module list, the data files the tests read, the
harness's console lines, and the comparison with the host's baseline.

`python tests/cpython/suite.py` (Debian's /usr/bin/python3.11, the toolchain provisioned)
runs tests/apps/cpython_suite.py on this machine and rewrites tests/cpython/baseline.json:
what the same tests of the same Python give on the host, per module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HARNESS = REPO / "tests/apps/cpython_suite.py"
BASELINE = HERE / "baseline.json"
DIFFERENCES = HERE / "differences.txt"
LINE = re.compile(r"CPYTHON (\w+) run=(\d+) fail=(\d+) err=(\d+) skip=(\d+)")
BAD = re.compile(r"CPYTHON-BAD (\w+) (\S+?):? ")
# Data the listed tests read beside their modules, relative to the stdlib folder: packages the
# loader discovers by listing their folder, and data folders and files.
DATA = (
    "test/test_json",
    "test/test_email",
    "test/test_zoneinfo",
    "test/cjkencodings",
    "test/decimaltestdata",
    "ctypes/test",
    "test/*.pem",
    "test/*.der",
    "test/*.crl",
    "test/audit-tests.py",
)


def modules() -> list[str]:
    lines = (HERE / "modules.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def includes(stdlib: Path) -> list[str]:
    """What the harness imports by name (the listed modules) and what they import by a name
    computed at run time (import_fresh_module, import_module, ctypes.test's load_tests): the
    harness's pinit.toml names them in `include`, as an appliance's would."""
    ctypes_tests = sorted(p.stem for p in (stdlib / "ctypes/test").glob("test_*.py"))
    return [
        "test.support",
        *(f"test.{m}" for m in modules()),
        "test.datetimetester",
        "_pydecimal",
        "uuid",
        "sre_compile",
        "sre_constants",
        "sre_parse",
        "ctypes.test",
        *(f"ctypes.test.{t}" for t in ctypes_tests),
    ]


def data_files(stdlib: Path) -> dict[str, Path]:
    """Path in the image (under /, where the binary's modules think they live) → file."""
    found: dict[str, Path] = {}
    for pattern in DATA:
        matches = sorted(stdlib.glob(pattern)) if "*" in pattern else [stdlib / pattern]
        for match in matches:
            files = (
                sorted(p for p in match.rglob("*") if p.is_file()) if match.is_dir() else [match]
            )
            for path in files:
                if "__pycache__" not in path.parts:
                    found["/" + str(path.relative_to(stdlib))] = path
    return found


@dataclass
class Result:
    run: int = 0
    fail: int = 0
    err: int = 0
    skip: int = 0
    bad: list[str] = field(default_factory=list)  # ids of failed and erroring tests


def parse(lines: list[str]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for line in lines:
        if m := LINE.search(line):
            results[m[1]] = Result(*(int(m[i]) for i in range(2, 6)))
        elif (m := BAD.search(line)) and m[1] in results:
            results[m[1]].bad.append(m[2])
    return results


def differences() -> dict[str, str]:
    """tests/cpython/differences.txt: `<test id or module>: <reason>` per line."""
    out = {}
    for line in DIFFERENCES.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, reason = line.partition(": ")
            out[key.strip()] = reason.strip()
    return out


def unexplained(
    device: dict[str, Result], host: dict[str, Result], known: dict[str, str]
) -> list[str]:
    """Every way the device's result differs from the host's that no listed reason explains."""
    problems = []
    for name, want in host.items():
        got = device.get(name)
        if got is None:
            problems.append(f"{name}: no result on the device")
            continue
        explained = {t for t in got.bad if t in known or any(t.startswith(k + ".") for k in known)}
        new = sorted(set(got.bad) - set(want.bad) - explained)
        if new:
            problems.append(f"{name}: {len(new)} failing on the device only: {', '.join(new[:5])}")
        if got.run != want.run and name not in known:
            problems.append(f"{name}: ran {got.run} tests, the host {want.run}")
    return problems


STDLIB = Path("/usr/lib/python3.11")


def merged_packages(runtime_stdlib: Path, into: Path) -> Path:
    """`test` and `ctypes` as Debian installs them with libpython3.11-testsuite: the host's
    packages (test/__init__.py, test.support) with the suite's modules (the testsuite package
    has no test/__init__.py), as folders of symlinks in `into`; put `into` first on the path."""
    for package in ("test", "ctypes"):
        folder = into / package
        folder.mkdir(parents=True)
        for source in (STDLIB / package, runtime_stdlib / package):
            for entry in sorted(source.iterdir()):
                if entry.name != "__pycache__" and not (folder / entry.name).exists():
                    os.symlink(entry, folder / entry.name)
    return into


def run_on_host(runtime_stdlib: Path) -> dict[str, Result]:
    """The harness on this machine's python3.11, with the locked test package."""
    with tempfile.TemporaryDirectory() as tmp:
        path = merged_packages(runtime_stdlib, Path(tmp) / "lib")
        proc = subprocess.run(
            ["/usr/bin/python3.11", str(HARNESS), *modules()],
            env={**os.environ, "PYTHONPATH": str(path)},
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
    return parse(proc.stdout.splitlines())


def main() -> None:
    sys.path.insert(0, str(REPO))
    from toolchain.provision import ensure

    stdlib = ensure(host=False).runtime / "usr/lib/python3.11"
    results = run_on_host(stdlib)
    BASELINE.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=1) + "\n")
    total = sum(r.run for r in results.values())
    print(f"{BASELINE}: {len(results)} modules, {total} tests")


def baseline() -> dict[str, Result]:
    return {k: Result(**v) for k, v in json.loads(BASELINE.read_text()).items()}


if __name__ == "__main__":
    main()
