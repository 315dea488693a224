"""The standard library's extension modules: the table, the inittab, the real archive."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.python import pyext
from toolchain import nuitka_gen

CONFIG_C = """#include "Python.h"
extern PyObject* PyInit_posix(void);
struct _inittab _PyImport_Inittab[] = {
    {"posix", PyInit_posix},
    {"spwd", PyInit_spwd},
    /* Sentinel */
    {0, 0}
};
"""
TEST_MODULES = (
    "_ctypes_test",
    "_testbuffer",
    "_testcapi",
    "_testclinic",
    "_testimportmultiple",
    "_testinternalcapi",
    "_testmultiphase",
    "_xxtestfuzz",
    "xxlimited",
    "xxlimited_35",
)


def test_inittab_adds_the_imported_extension_modules_and_drops_the_unwanted() -> None:
    text = nuitka_gen.inittab_c(
        CONFIG_C, frozenset({"spwd"}), (("_ssl", "PyInit__ssl"), ("gpiod._ext", "PyInit_x"))
    )
    assert "spwd" not in text
    assert "extern PyObject* PyInit__ssl(void);" in text
    assert "extern PyObject* PyInit_x(void);" in text
    assert (
        'pinit_inittab_names[] = "pinit-inittab: posix _ssl gpiod._ext\\0pinit-refused: ";' in text
    )
    entries = [line.strip() for line in text.splitlines() if line.strip().startswith("{")]
    assert entries == [
        '{"posix", PyInit_posix},',
        '{"_ssl", PyInit__ssl},',
        '{"gpiod._ext", PyInit_x},',
        "{0, 0}",
    ]


def test_every_module_debian_ships_as_a_shared_object_is_built_or_says_why() -> None:
    """Debian's lib-dynload (the same list for amd64 and arm64) against the table."""
    dynload = Path("/usr/lib/python3.11/lib-dynload")
    if not dynload.is_dir():
        pytest.fail(f"{dynload} missing: Debian's python3.11 is required (toolchain/setup.sh)")
    shipped = {p.name.split(".")[0] for p in dynload.glob("*.so")} - set(TEST_MODULES)
    built = {e.name for e in pyext.EXTENSIONS}
    assert shipped - built == set(pyext.NOT_BUILT)
    assert not built & set(TEST_MODULES)


def test_link_order_covers_every_library_a_module_needs() -> None:
    for ext in pyext.EXTENSIONS:
        assert all(lib in pyext.LINK_ORDER for lib in ext.libs), ext.name
        assert [pyext.LINK_ORDER.index(lib) for lib in ext.libs] == sorted(
            pyext.LINK_ORDER.index(lib) for lib in ext.libs
        ), ext.name


def test_the_real_archive_defines_every_module_init(toolchain) -> None:
    out = pyext.ensure(toolchain)
    manifest = json.loads((out / pyext.MANIFEST).read_text())
    assert set(manifest["modules"]) == {e.name for e in pyext.EXTENSIONS}
    symbols = subprocess.run(
        ["aarch64-linux-gnu-nm", "--defined-only", out / pyext.ARCHIVE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    defined = {line.split()[-1] for line in symbols.splitlines() if " T " in line}
    missing = [e.name for e in pyext.EXTENSIONS if f"PyInit_{e.name}" not in defined]
    assert missing == []
    assert pyext.ensure(toolchain) == out  # cached by hash: the second call builds nothing


def test_a_module_that_cannot_be_static_is_a_builtin_that_says_why() -> None:
    text = nuitka_gen.refused_c({"nis": 'needs "Kerberos"', "email.iterators": "left out"})
    assert "PyObject *pinit_refused_nis(void) {" in text
    assert (
        'PyExc_ModuleNotFoundError, "nis is not in pinit\'s static binary: needs \\"Kerberos\\""'
    ) in text
    assert "PyObject *pinit_refused_email__iterators(void) {" in text


LAZY_SOURCE = """\
import os, re as _re
from . import sibling
from .pkg import thing
try:
    import _fast
except ImportError:
    _fast = None

def popen(cmd):
    import subprocess
    from email import (
        iterators)
    return subprocess

class C:
    def method(self):
        import os   # also at module level: stays eager
"""


def test_imports_inside_functions_are_told_apart_from_module_level(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text(LAZY_SOURCE)
    eager, lazy_lines = nuitka_gen._imports(str(source), "pkg.sub")
    assert {
        "os",
        "re",
        "pkg.sub",
        "pkg.sub.sibling",
        "pkg.sub.pkg",
        "pkg.sub.pkg.thing",
        "_fast",
    } <= eager
    assert "subprocess" not in eager and "email" not in eager
    lines = LAZY_SOURCE.splitlines()
    assert {
        i + 1
        for i, line in enumerate(lines)
        if "import subprocess" in line or "from email" in line or "iterators)" in line
    } <= lazy_lines
    assert not any(i + 1 in lazy_lines for i, line in enumerate(lines) if line.startswith("import"))


SCANNED_SOURCE = """\
import a.b.c
from . import sibling
from ..up import name
import sys
if sys.platform == "win32":
    import winreg
elif sys.platform.startswith(("linux", "freebsd")):
    import linux_only
else:
    import other_unix
if os.name != "nt" and not TYPE_CHECKING:
    from posix_only import x
if TYPE_CHECKING:
    import typeshed_only
else:
    import at_run_time
if _sys.platform in ("darwin", "ios") or unknown():
    import maybe
try:
    import _speedup
except ImportError:
    _speedup = None
from .star import *

def later():
    import json.decoder
    return importlib.import_module("plugins.one"), __import__("plugins.two"), import_module(".rel")

class Tool:
    def _test(self):
        import doctest

if __name__ == "__main__":
    import as_a_script
MYPY = False
_windows = sys.platform == "win32"
if MYPY or _windows:
    import for_mypy
PY2 = sys.version_info[0] == 2
if PY2 or sys.version_info < (3, 8) or sys.version_info[:2] <= (3, 10):
    import backport
elif sys.version_info >= (3, 11):
    import tomllib
REBOUND = False
if REBOUND:
    import rebound_later
def rebind():
    global REBOUND
    REBOUND = True
"""


def test_a_bytecode_modules_imports_are_read_from_its_source() -> None:
    """What Nuitka is told a module embedded as bytecode imports (toolchain/nuitka_patches.py
    scan_bytecode_imports): every import, anywhere, with its parents and its `from` names, and
    not what another platform or a type checker would import."""
    found = nuitka_gen.source_imports(SCANNED_SOURCE, "pkg.sub")
    names = [name for name, _line, _reason in found]
    assert names[:3] == ["a", "a.b", "a.b.c"]
    assert ("a", 1, "import path parent") in found and ("a.b.c", 1, "import") in found
    assert ("pkg.sub.sibling", 2, "import fromlist") in found
    assert ("pkg.up.name", 3, "import fromlist") in found and ("pkg.up", 3, "import") in found
    for name in ("linux_only", "posix_only", "at_run_time", "maybe", "_speedup", "json.decoder"):
        assert name in names, name
    for name in ("plugins.one", "plugins.two"):
        assert name in names and "plugins" in names, name
    assert "pkg.sub.star" in names
    for name in (
        "winreg",
        "other_unix",
        "typeshed_only",
        ".rel",
        "pkg.sub.star.*",
        "as_a_script",
        "for_mypy",
    ):
        assert name not in names, name
    assert "doctest" in names and "rebound_later" in names and "tomllib" in names

    def change_function(qualname: str, name: str, body: list) -> None:
        if qualname == "Tool._test":
            body[:] = []  # as anti-bloat's change_function does

    assert "doctest" not in [
        n for n, *_ in nuitka_gen.source_imports(SCANNED_SOURCE, "pkg.sub", change_function)
    ]
    lines = SCANNED_SOURCE.splitlines()
    assert {line for name, line, _ in found if name == "json.decoder"} == {
        i + 1 for i, text in enumerate(lines) if "json.decoder" in text
    }
    assert nuitka_gen.source_imports("def broken(:\n", "") == []
    deep = "x = " + " + ".join(["1"] * 2000) + "\nimport deep\n"  # deeper than the stack
    assert nuitka_gen.source_imports(deep, "")[-1][0] == "deep"


def test_a_stdlib_module_is_known_by_its_source(toolchain) -> None:
    os_imports = nuitka_gen.stdlib_imports("os")
    assert os_imports is not None
    eager, lazy_lines = os_imports
    assert "abc" in eager and "sys" in eager and "subprocess" not in eager
    assert lazy_lines  # os.popen imports subprocess inside a function
    assert nuitka_gen.stdlib_imports("init.main") is None  # not the standard library


def test_the_c_api_table_answers_dlsym_in_a_static_program(tmp_path: Path) -> None:
    """ctypes.pythonapi's way in, built and run here (x86-64, static, as on the Pi): a name
    the program links is found, one it does not link is not, and other look-ups still work."""
    (tmp_path / "api.c").write_text('char PyLinked[] = "linked";\nchar Other[] = "other";\n')
    subprocess.run(["gcc", "-c", "-o", tmp_path / "api.o", tmp_path / "api.c"], check=True)
    subprocess.run(["ar", "rcs", tmp_path / "libapi.a", tmp_path / "api.o"], check=True)
    symbols = nuitka_gen.archive_symbols(str(tmp_path / "libapi.a"))
    assert sorted(symbols) == ["Other", "PyLinked"]
    (tmp_path / "table.c").write_text(nuitka_gen.pythonapi_c([*symbols, "PyNotLinked"]))
    (tmp_path / "main.c").write_text("""#include <dlfcn.h>
#include <stdio.h>
extern char Other[];
int main(void) {
    void *self = dlopen(NULL, RTLD_NOW);
    const char *linked = dlsym(self, "PyLinked");
    void *missing = dlsym(self, "PyNotLinked");
    printf("%s %s %s\\n", linked ? linked : "-", missing ? "found" : dlerror() ? "error" : "-",
           Other);
    return 0;
}
""")
    subprocess.run(
        [
            "gcc",
            "-static",
            "-Wl,--wrap=dlsym",
            "-o",
            tmp_path / "prog",
            tmp_path / "main.c",
            tmp_path / "table.c",
            tmp_path / "api.o",
        ],
        check=True,
        capture_output=True,
    )
    out = subprocess.run([tmp_path / "prog"], check=True, capture_output=True, text=True).stdout
    assert out == "linked error other\n"


def test_flags_follow_the_target(tmp_path: Path) -> None:
    """aarch64's flags as before; armhf's headers are in its multiarch folder and libmpdec is
    configured 32-bit (no __int128), as CPython's configure picks it."""
    import dataclasses

    from toolchain.provision import Toolchain
    from toolchain.target import AARCH64, ARMHF

    tc = Toolchain(*(tmp_path for _ in dataclasses.fields(Toolchain)[:-1]))  # type: ignore[arg-type]
    decimal = next(e for e in pyext.EXTENSIONS if e.name == "_decimal")
    arm64 = pyext._flags(decimal.cflags, tc)
    assert tc.target == AARCH64
    assert f"-I{tmp_path}/usr/include/aarch64-linux-gnu/python3.11" in arm64
    assert arm64[-3:] == ["-DCONFIG_64=1", "-DANSI=1", "-DHAVE_UINT128_T=1"]
    armhf = pyext._flags(decimal.cflags, dataclasses.replace(tc, target=ARMHF))
    assert f"-I{tmp_path}/usr/include/arm-linux-gnueabihf/python3.11" in armhf
    assert armhf[-2:] == ["-DCONFIG_32=1", "-DANSI=1"]
    assert pyext.cross(dataclasses.replace(tc, target=ARMHF), "ar") == "arm-linux-gnueabihf-ar"


def test_an_edit_of_a_module_beside_the_program_rebuilds_the_appliance(
    toolchain, tmp_path: Path
) -> None:
    """The program's folder is on the build's module path: a helper module beside it, or in a
    package there, is part of what the appliance is made from (hidden folders are not)."""
    from builder.python.compile import Packages, appliance_digest

    (tmp_path / "app.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("X = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("Y = 1\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "site.py").write_text("Z = 1\n")
    services = {"app": tmp_path / "app.py"}
    before = appliance_digest(toolchain, services, Packages())
    (tmp_path / ".venv" / "site.py").write_text("Z = 2\n")
    assert appliance_digest(toolchain, services, Packages()) == before
    for path in (tmp_path / "helper.py", tmp_path / "pkg" / "mod.py"):
        path.write_text(path.read_text() + "# edited\n")
        after = appliance_digest(toolchain, services, Packages())
        assert after != before, path
        before = after
