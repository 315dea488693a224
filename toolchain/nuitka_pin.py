"""What the build and the Nuitka plugin agree on, importable without Nuitka.

builder/python/compile.py runs Nuitka with toolchain/nuitka_plugin.py (PLUGIN) and configures it
through the PINIT_* environment settings below; the plugin reads them in Nuitka's own process.
Both take the names from here, so each setting has one owner. Here too: the pinned Nuitka and
target Python, the marks the binary carries for its table of builtins, and the C prologue.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from toolchain.target import DEFAULT

# The exact Nuitka pinit is written for (pyproject.toml pins the same): toolchain/nuitka_patches.py
# replaces its internals, and is reviewed on every change of this pin.
NUITKA_VERSION = "4.3.3"
# The target's Python, whose libpython and headers are the arm64 sysroot's.
PYTHON_ABI = "3.11"

_HERE = os.path.dirname(os.path.abspath(__file__))
# The plugin Nuitka loads (`--user-plugin=`), and every file of the adaptation: a change to any
# of them makes build/init again.
PLUGIN = os.path.join(_HERE, "nuitka_plugin.py")
PLUGIN_SOURCES = tuple(
    os.path.join(_HERE, f"nuitka_{part}.py") for part in ("plugin", "pin", "patches", "gen")
)

# PID 1's C, beside the Python it serves: init/prologue.c, after init/early.py's header.
PROLOGUE_C = os.path.join(os.path.dirname(_HERE), "init", "prologue.c")

# In the binary, before the names of its builtin modules and before those it refuses
# (`strings /init | grep pinit-`).
INITTAB_MARK = "pinit-inittab:"
REFUSED_MARK = "pinit-refused:"


class SysrootPython(NamedTuple):
    """Where a target's sysroot keeps the target's Python: one owner for every user."""

    libpython: str  # the static libpython
    include: str  # Python.h's folder
    config: str  # config-3.11-<triplet>: config.c (the inittab), the PIC archive


def sysroot_paths(sysroot: str | os.PathLike[str], triplet: str = DEFAULT.triplet) -> SysrootPython:
    """`triplet`: the target's GNU triplet (toolchain/target.py), its multiarch folders."""
    root = os.fspath(sysroot)
    return SysrootPython(
        libpython=os.path.join(root, f"usr/lib/{triplet}", f"libpython{PYTHON_ABI}.a"),
        include=os.path.join(root, "usr/include", f"python{PYTHON_ABI}"),
        config=os.path.join(root, f"usr/lib/python{PYTHON_ABI}", f"config-{PYTHON_ABI}-{triplet}"),
    )


# The environment settings, name → meaning. Lists are comma-separated unless said otherwise.
SETTINGS: dict[str, str] = {}


def _setting(name: str, meaning: str) -> str:
    SETTINGS[name] = meaning
    return name


PINIT_SYSROOT = _setting("PINIT_SYSROOT", "the target's sysroot (dpkg -x of the locked packages)")
PINIT_TRIPLET = _setting(
    "PINIT_TRIPLET",
    "the target's GNU triplet (toolchain/target.py): its sysroot's multiarch folders",
)
PINIT_GEN_DIR = _setting(
    "PINIT_GEN_DIR", "where the build wrote _pinit_sys.c (cffi's C for init/sysdefs.py)"
)
PINIT_CFFI_SRC = _setting("PINIT_CFFI_SRC", "cffi's source tree, for src/c/_cffi_backend.c")
PINIT_DROP_BUILTINS = _setting("PINIT_DROP_BUILTINS", "builtin C modules of libpython to leave out")
PINIT_OPTIONAL_BUILTINS = _setting(
    "PINIT_OPTIONAL_BUILTINS", "...and those to leave out unless the program imports them"
)
PINIT_EXT_DIRS = _setting(
    "PINIT_EXT_DIRS",
    "static archives of C extension modules, each with a modules.json "
    "(builder/python/pyext.py: the stdlib's and libpython rebuilt for size; "
    "builder/python/pypi.py: packages'), separated by os.pathsep",
)
PINIT_PROGRAMS = _setting(
    "PINIT_PROGRAMS", "for a multi-call binary: the program name of each --main, in order"
)
PINIT_MAIN_FILES = _setting(
    "PINIT_MAIN_FILES",
    "for a multi-call binary: each --main's __file__ on the target, in order "
    "(empty: Nuitka's own, its entry file's name beside the binary)",
)
PINIT_BYTECODE = _setting(
    "PINIT_BYTECODE", "modules embedded as bytecode rather than compiled to C"
)
PINIT_LEFT_OUT = _setting(
    "PINIT_LEFT_OUT",
    '"*": leave out every standard-library module that the standard library '
    "imports only inside functions (build/init: the init's code is pinit's own)",
)
PINIT_EXCLUDE = _setting(
    "PINIT_EXCLUDE", "modules (and packages, with their submodules) the pinit.toml leaves out"
)
PINIT_COMPILED = _setting(
    "PINIT_COMPILED",
    "modules (and packages) compiled to C; with PINIT_WHOLE every other "
    "module but the main scripts is embedded as bytecode",
)
PINIT_WHOLE = _setting(
    "PINIT_WHOLE",
    '"1": a package a program touches comes whole (every submodule, loaded only '
    "when imported), and sysconfig's data is the target's",
)
PINIT_SYSCONFIGDATA = _setting(
    "PINIT_SYSCONFIGDATA",
    "with PINIT_WHOLE: the module name sysconfig computes for its data "
    "on the target (the target's file is embedded as _pinit_sysconfigdata)",
)
