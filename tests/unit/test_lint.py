"""The code stays ruff- and mypy-clean and ruff-formatted (STYLE.md 12); both tools are pinned
in the test extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostkit.paths import REPO

COMMANDS = {
    "ruff": ["ruff", "check", "."],
    "ruff-format": ["ruff", "format", "--check", "."],
    "mypy": ["mypy"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_linter_is_clean(name: str) -> None:
    tool, *args = COMMANDS[name]
    exe = Path(sys.executable).with_name(tool)
    if not exe.exists() and shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [str(exe if exe.exists() else tool), *args], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
