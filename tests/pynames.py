"""What a Python module (or class) body defines, read from its syntax tree: for the tests that
check names the docs cite or the Nuitka internals the patches use."""

from __future__ import annotations

import ast


def defined(body: list[ast.stmt]) -> set[str]:
    """Functions, classes, assigned names and what imports bind (`import a.b` binds `a`)."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names
