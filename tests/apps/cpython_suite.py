"""CPython's own regression tests (Debian's libpython3.11-testsuite), run as a pinit service.

The same file runs on the build machine's python3.11 (tests/cpython/baseline.py writes
tests/cpython/baseline.json from it) and, compiled into an appliance, on the device
(tests/qemu/test_cpython_suite.py). Per test module it prints one line,
`CPYTHON <module> run=R fail=F err=E skip=S`, then one `CPYTHON-BAD <module> <test id>` line
per failure or error, and `CPYTHON done` at the end. Resources stay off, as `python3 -m test`
runs without `-u`: no network, no heavy CPU tests.

The test modules are imported by name; tests/cpython/modules.txt lists them (the appliance's
pinit.toml includes each one, so the build compiles them in).
"""

import importlib
import io
import sys
import time
import unittest

# The list is read by the host run and the QEMU test from tests/cpython/modules.txt; the
# device has no copy of that file, so the build passes it as the program's arguments.
MODULES = sys.argv[1:]


def main():
    if not MODULES or any(not name.startswith("test_") for name in MODULES):
        # A test that runs sys.executable with interpreter options (-c, -m, -X) reaches this
        # program, not an interpreter: it says so and fails, as the device has no python3.
        sys.exit(
            f"cpython_suite: {' '.join(sys.argv[1:])!r}: not test module names "
            "(this program is not a Python interpreter)"
        )
    from test import support

    support.use_resources = []  # as regrtest without -u
    support.verbose = 0
    for name in MODULES:
        start = time.monotonic()
        loader = unittest.TestLoader()
        try:
            module = importlib.import_module(f"test.{name}")
            suite = loader.loadTestsFromModule(module)
        except BaseException as exc:  # an import that fails is a result, never a dead harness
            print(f"CPYTHON {name} run=0 fail=0 err=1 skip=0", flush=True)
            print(f"CPYTHON-BAD {name} import: {type(exc).__name__}: {exc}", flush=True)
            continue
        result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
        print(
            f"CPYTHON {name} run={result.testsRun} fail={len(result.failures)} "
            f"err={len(result.errors)} skip={len(result.skipped)} "
            f"time={time.monotonic() - start:.1f}",
            flush=True,
        )
        for test, trace in result.failures + result.errors:
            last = trace.strip().splitlines()[-1][:160] if trace.strip() else ""
            print(f"CPYTHON-BAD {name} {test.id()}: {last}", flush=True)
    print("CPYTHON done", flush=True)


main()
