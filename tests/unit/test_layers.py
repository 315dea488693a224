"""docs/architecture.md's rules of who may import whom, checked on every file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hostkit.paths import REPO

# package -> the project packages it must not import
FORBIDDEN = {
    "hostkit": {"builder", "toolchain", "init", "tasks"},
    "toolchain": {"builder", "tasks"},
    "init": {"builder", "toolchain", "hostkit", "tasks"},
    "builder": {"tasks"},
}
PROJECT = ("builder", "hostkit", "init", "toolchain", "tasks")

# The init modules the build side may use: pure Python, no syscalls at import. One definition of
# the config (config, validate, frozen, errors), the early record, the module resolver, and what
# the image must agree with PID 1 on (cgroup names, service argv/env, coldplug's fs modules, the
# early root filesystem, the syscall declarations compiled into the binary, the data seed).
INIT_FOR_BUILDER = {
    "init.cgroup",
    "init.coldplug",
    "init.config",
    "init.early",
    "init.errors",
    "init.frozen",
    "init.grow",
    "init.bundle",
    "init.http",
    "init.slots",
    "init.inet",
    "init.modules",
    "init.rootfs",
    "init.supervise",
    "init.sysdefs",
    "init.validate",
}
INIT_FOR_TOOLCHAIN = {"init.early"}

# folder -> the project modules (prefixes) its files may import
ROOMS = {
    # the sh parser: a library of its own, nothing of pinit
    "builder/convert/sh": ("builder.convert.sh",),
    # byte formats: only hostkit (and the standard library, pyelftools)
    "builder/formats": ("builder.formats", "hostkit"),
    # Python → binary: formats, hostkit, the toolchain, the allowed init modules
    "builder/python": ("builder.formats", "builder.python", "hostkit", "toolchain"),
    # running images: everything of the builder except the conversion
    "builder/qemu": (
        "builder.formats",
        "builder.python",
        "builder.qemu",
        "builder.kmod",
        "builder.image",
        "builder.config",
        "builder.boards",
        "hostkit",
        "toolchain",
    ),
}
# the image pipeline (builder/*.py) neither converts nor runs images
PIPELINE_MUST_NOT = ("builder.convert", "builder.qemu")
# Nuitka runs in its own process, where the plugin loads the modules that need it; the rest of
# the toolchain's Nuitka files, and every file of the build side, import none of them.
NEEDS_NUITKA = ("nuitka", "toolchain.nuitka_plugin", "toolchain.nuitka_patches")
WITHOUT_NUITKA = ("toolchain/nuitka_pin.py", "toolchain/nuitka_gen.py")


def all_imports(path: Path) -> set[str]:
    """Every module a file imports, pinit's or not, at any depth (`import nuitka.build` is
    `nuitka.build`, `from toolchain import nuitka_pin` is `toolchain.nuitka_pin`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def imported_modules(path: Path) -> set[str]:
    """Every project module a file imports by its full name (`from init import cgroup` is
    `init.cgroup`, `from init.config import Data` is `init.config`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                as_module = REPO / (sub.replace(".", "/") + ".py")
                as_package = REPO / sub.replace(".", "/") / "__init__.py"
                names.add(sub if as_module.exists() or as_package.exists() else node.module)
    return {name for name in names if name.split(".")[0] in PROJECT}


def files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_only_what_is_below_it(package: str) -> None:
    wrong = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in files(package)
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN[package]
    }
    assert not wrong, sorted(wrong)


@pytest.mark.parametrize(
    ("package", "allowed"), [("builder", INIT_FOR_BUILDER), ("toolchain", INIT_FOR_TOOLCHAIN)]
)
def test_the_build_side_uses_only_the_listed_init_modules(package: str, allowed: set[str]) -> None:
    used = {
        name
        for path in files(package)
        for name in imported_modules(path)
        if name.startswith("init.")
    }
    assert used <= allowed, sorted(used - allowed)
    # the list stays exact: a module no longer used leaves it
    assert used == allowed, sorted(allowed - used)


@pytest.mark.parametrize("room", sorted(ROOMS))
def test_a_room_of_the_builder_imports_only_its_allowed_modules(room: str) -> None:
    allowed = ROOMS[room]
    wrong = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in files(room)
        for name in imported_modules(path)
        if not within(name, allowed)
        and not (room == "builder/python" and within(name, INIT_FOR_BUILDER))
    }
    assert not wrong, sorted(wrong)


def test_the_image_pipeline_neither_converts_nor_runs_images() -> None:
    wrong = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / "builder").glob("*.py"))
        for name in imported_modules(path)
        if within(name, PIPELINE_MUST_NOT)
    }
    assert not wrong, sorted(wrong)


def test_the_rules_see_imports_inside_functions() -> None:
    source = REPO / "builder" / "image.py"
    assert {"builder.kmod", "init.coldplug", "builder.python.pypi"} <= imported_modules(source)


def test_every_package_is_installed() -> None:
    """pyproject.toml lists packages one by one: a new folder of the builder must be named there."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        str(init.parent.relative_to(REPO)).replace("/", ".")
        for pkg in ("init", "builder", "toolchain", "hostkit")
        for init in (REPO / pkg).rglob("__init__.py")
    }
    assert found == listed, sorted(found ^ listed)


@pytest.mark.parametrize("where", ["builder", "hostkit", "init", "tasks.py", *WITHOUT_NUITKA])
def test_only_the_plugin_and_its_patches_need_nuitka(where: str) -> None:
    paths = [REPO / where] if where.endswith(".py") else files(where)
    wrong = {
        f"{path.relative_to(REPO)} imports {name}"
        for path in paths
        for name in all_imports(path)
        if within(name, NEEDS_NUITKA)
    }
    assert not wrong, sorted(wrong)


def test_the_nuitka_rule_sees_nuitka() -> None:
    assert within("nuitka.plugins.PluginBase", NEEDS_NUITKA)
    assert {"nuitka.plugins.PluginBase", "toolchain.nuitka_patches"} <= all_imports(
        REPO / "toolchain" / "nuitka_plugin.py"
    )
