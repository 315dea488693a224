"""The code stays ruff- and mypy-clean (STYLE.md 12); both are pinned in the test extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostkit.paths import REPO


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_linter_is_clean(tool: str) -> None:
    exe = Path(sys.executable).with_name(tool)
    if not exe.exists() and shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    cmd = [str(exe if exe.exists() else tool)] + (["check", "."] if tool == "ruff" else [])
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
