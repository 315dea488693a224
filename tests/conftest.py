"""Shared fixtures: the provisioned toolchain, the host build of the cffi syscall module."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The repository on the path first, so its packages import; then its paths from their one owner.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hostkit.paths import BUILD, REPO  # noqa: E402


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def toolchain():
    """The locked trees (sysroot, kernel, firmware, busybox); provisioned without root."""
    from hostkit.errors import BuildError
    from toolchain.provision import ensure

    try:
        return ensure(host=False)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"toolchain not provisioned here ({exc}); run `invoke toolchain`")


@pytest.fixture(scope="session")
def host_sys() -> Path:
    """Build init/sysdefs.py's cffi module for the host so init code runs in host tests."""
    from init.sysdefs import build_host

    out = BUILD / "host"
    built = list(out.glob("_pinit_sys*.so"))
    sysdefs = REPO / "init" / "sysdefs.py"
    # Rebuilt when the declaration changed since: a stale module would lack the new calls.
    if not built or built[0].stat().st_mtime < sysdefs.stat().st_mtime:
        build_host(out)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return out


@pytest.fixture(scope="session")
def built_init(toolchain) -> Path:
    """build/init, made by `invoke build-init` (invoke test builds it before pytest runs)."""
    path = BUILD / "init"
    if not path.is_file():
        if in_ci():
            pytest.fail("build/init is missing: `invoke test` builds it before running pytest")
        pytest.skip("build/init not built; run `invoke build-init`")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a failure: whatever a test needs, CI's fresh machine must have."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be missing: {reason}"
