"""docs/architecture.md's rule of who may import whom, checked on every file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# package -> the project packages it must not import
FORBIDDEN = {"hostkit": {"builder", "toolchain", "init", "tasks"},
             "toolchain": {"builder", "tasks"},
             "init": {"builder", "toolchain", "hostkit", "tasks"},
             "builder": {"tasks"}}


def imported_packages(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_is_below_it(package: str) -> None:
    wrong = {f"{path.relative_to(REPO)} imports {name}"
             for path in sorted((REPO / package).rglob("*.py"))
             for name in imported_packages(path) & FORBIDDEN[package]}
    assert not wrong, sorted(wrong)
