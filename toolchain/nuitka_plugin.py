"""The one place pinit adapts Nuitka: cross-compile for a static aarch64 PID 1.

Loaded by Nuitka as `--user-plugin=toolchain/nuitka_plugin.py` (builder/compile.py passes it),
configured through environment variables that builder/compile.py sets:

  PINIT_SYSROOT   the arm64 sysroot (dpkg -x of the locked packages)
  PINIT_GEN_DIR   where the build wrote _pinit_sys.c (cffi's C for init/sysdefs.py)
  PINIT_CFFI_SRC  cffi's source tree, for src/c/_cffi_backend.c
  PINIT_DROP_BUILTINS  comma-separated builtin C modules of libpython to leave out
  PINIT_OPTIONAL_BUILTINS  ...and those to leave out unless the program imports them
  PINIT_EXT_DIRS       static archives of C extension modules, each with a modules.json
                       (builder/pyext.py: the stdlib's and libpython rebuilt for size;
                       builder/pypi.py: packages'), os.pathsep
  PINIT_PROGRAMS       for a multi-call binary: the program name of each --main, in order
  PINIT_BYTECODE       modules embedded as bytecode rather than compiled to C
  PINIT_LEFT_OUT       "*": leave out every standard-library module that the standard library
                       imports only inside functions (build/init: the init's code is pinit's own)
  PINIT_EXCLUDE        modules (and packages, with their submodules) the pinit.toml leaves out
  PINIT_COMPILED       modules (and packages) compiled to C; with PINIT_WHOLE every other
                       module but the main scripts is embedded as bytecode
  PINIT_WHOLE          "1": a package a program touches comes whole (every submodule, loaded
                       only when imported), and sysconfig's data is the target's
  PINIT_RUNTIME        the target's Python files (sysconfig's data) to embed for PINIT_WHOLE

What it does, and why:
- Nuitka looks for libpython and Python.h of the interpreter running it (the host's); we point
  both at the arm64 sysroot. Nuitka has no option for this, so two of its internals are
  replaced: the cached static-libpython path and the include-path lookup. This ties pinit to the
  exact Nuitka version pinned in pyproject.toml; `check_nuitka()` fails loudly on any other, and
  tests/unit/test_nuitka_plugin.py checks the replaced names still exist.
- Nuitka's start-up imports `inspect` and `os.path` (slow under emulation); the calls are
  dropped from the build's copies of its C (see STARTUP_PATCHES).
- Nuitka embeds ~270 stdlib modules whether used or not; only the interpreter's start-up set
  and what the program imports are kept (see STARTUP_MODULES).
- The standard library's extension modules that Debian ships only as shared objects are
  builtins here (builder/pyext.py builds them). Nuitka is told they are builtin, so it never
  bundles a host .so for them, and the inittab registers exactly those the program imports.
- Public plugin API for the rest: extra C code (the cffi module, cffi's backend, a constructor
  that mounts /proc and registers both modules as builtins) and extra link libraries.
"""

from __future__ import annotations

import json
import os
import sys

from nuitka.plugins.PluginBase import NuitkaPluginBase

NUITKA_VERSION = "4.3.3"
PYTHON_ABI = "3.11"

# PID 1's C, beside the Python it serves: init/prologue.c, after init/early.py's header.
PROLOGUE_C = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "init", "prologue.c")


INITTAB_MARK = "pinit-inittab:"
REFUSED_MARK = "pinit-refused:"


def inittab_c(config_c: str, drop: frozenset[str],
              add: tuple[tuple[str, str], ...] = ()) -> str:
    """libpython's config.c (its table of builtin modules) without the modules in `drop` and
    with the extension modules `add`, (module name, init function) pairs.

    Linked before libpython3.11.a, this table replaces the archive's config.o, so the dropped
    modules' objects are never pulled in (unicodedata alone is 1.1 MB of the binary), and of
    the extension archives only the added modules' objects are."""
    out = []
    for line in config_c.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith('{"') and stripped.split('"')[1] in drop:
            continue
        if stripped.startswith("struct _inittab _PyImport_Inittab[]"):
            out += [f"extern PyObject* {symbol}(void);\n" for _, symbol in add]
        if stripped == "{0, 0}":
            out += [f'    {{"{name}", {symbol}}},\n' for name, symbol in add]
        out.append(line)
    # The table's names, readable in the binary (`strings /init | grep pinit-`), for people and
    # tests alike: what a program can import as builtins, and what it is told is not in.
    entries = [ln.strip().split('"')[1:] for ln in out if ln.strip().startswith('{"')]
    names = [name for name, symbol, *_ in entries if "pinit_refused_" not in symbol]
    refused = [name for name, symbol, *_ in entries if "pinit_refused_" in symbol]
    out.append(f'const char pinit_inittab_names[] = "{INITTAB_MARK} {" ".join(names)}\\0'
               f'{REFUSED_MARK} {" ".join(refused)}";\n')
    text = "".join(out)
    if "_PyImport_Inittab[]" not in text or (add and f"{add[0][1]}}}" not in text):
        sys.exit("pinit nuitka plugin: config.c has no _PyImport_Inittab ending in {0, 0}; "
                 "wrong sysroot?")
    return text


def refused_symbol(name: str) -> str:
    return "pinit_refused_" + name.replace(".", "__")


def refused_c(reasons: dict[str, str]) -> str:
    """Builtin modules whose import fails with a ModuleNotFoundError (an ImportError) that
    names the reason."""
    out = ["#include <Python.h>\n"]
    for name, reason in reasons.items():
        message = (f"{name} is not in pinit's static binary: {reason}"
                   .replace("\\", "\\\\").replace('"', '\\"'))
        out.append(f"PyObject *{refused_symbol(name)}(void) {{\n"
                   f'    PyErr_SetString(PyExc_ModuleNotFoundError, "{message}");\n'
                   "    return NULL;\n}\n")
    return "".join(out)


# Frozen in the host's interpreter, so Nuitka takes it for a builtin and never embeds it; the
# target's libpython freezes only importlib's bootstrap (builder/python/pyext.py FROZEN). Jinja2
# and pkgutil import it at module level: embedded like any module, when imported.
NOT_FROZEN_ON_TARGET = frozenset({"zipimport"})


def register_builtins(names: frozenset[str]) -> None:
    """Make Nuitka treat `names` as builtin modules of the target interpreter, as the inittab
    makes them: it then follows no host .so for them and imports them as builtins."""
    import nuitka.utils.Importing as UtilsImporting

    original = UtilsImporting.isBuiltinModuleName

    def is_builtin(module_name: str) -> bool:
        return str(module_name) in names or (str(module_name) not in NOT_FROZEN_ON_TARGET
                                             and bool(original(module_name)))

    # Modules imported it by name before plugins load; replace every binding.
    for module in list(sys.modules.values()):
        if getattr(module, "isBuiltinModuleName", None) is original:
            module.isBuiltinModuleName = is_builtin  # type: ignore[attr-defined]
    UtilsImporting.builtin_module_names.update(names)
    sys.builtin_module_names = tuple(sorted({*sys.builtin_module_names, *names}))


def _imports(filename: str, package: str) -> tuple[set[str], set[int]]:
    """What a Python source imports at module level (names, with their parents), and the lines
    of its imports inside function bodies."""
    import ast

    with open(filename, "rb") as f:
        tree = ast.parse(f.read())
    lazy_lines: set[int] = set()
    in_functions: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    in_functions.add(id(inner))
                    lazy_lines.update(range(inner.lineno, (inner.end_lineno or inner.lineno) + 1))
    eager: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in in_functions:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            eager.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return eager, lazy_lines


_STDLIB_IMPORTS: dict[str, tuple[set[str], set[int]] | None] = {}


def stdlib_imports(module_name: str) -> tuple[set[str], set[int]] | None:
    """_imports() of a Python module of the standard library (None for any other), cached.
    The standard library is the one of the Python running Nuitka: Debian's 3.11.2, the target's."""
    if module_name not in _STDLIB_IMPORTS:
        import sysconfig

        base = os.path.join(sysconfig.get_paths()["stdlib"], *module_name.split("."))
        found = None
        for filename, package in ((os.path.join(base, "__init__.py"), module_name),
                                  (base + ".py", module_name.rpartition(".")[0])):
            if os.path.isfile(filename):
                found = _imports(filename, package)
                break
        _STDLIB_IMPORTS[module_name] = found
    return _STDLIB_IMPORTS[module_name]


def imported_modules() -> tuple[set[str], dict[str, str]]:
    """Every module name the compiled program's modules import (Nuitka's import graph), and of
    those, the ones only the standard library imports, inside a function: name → importer.

    Such a module is left out, Python or C (subprocess from os.popen, unicodedata from re's
    `\\N{...}` escapes, readline from code.interact): a program that wants it imports it."""
    from nuitka.ModuleRegistry import getDoneModules

    eager: set[str] = set()
    lazy: dict[str, str] = {}
    for module in getDoneModules():
        importer = module.getFullName().asString()
        known = stdlib_imports(importer)
        lines = known[1] if known else set()
        for attempt in module.getUsedModules():
            name = str(attempt.module_name)
            if attempt.source_ref is not None and attempt.source_ref.getLineNumber() in lines:
                lazy.setdefault(name, importer)
            else:
                eager.add(name)
    return eager | set(lazy), {n: m for n, m in lazy.items() if n not in eager}


def early_header() -> str:
    """init/early.py's C header: the early-start record's format and the early file systems."""
    from init import early  # pure Python; the repository is on the build's PYTHONPATH

    return early.c_header()


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"pinit nuitka plugin: {name} is not set (run the build through `invoke build-init`)")
    return value


def check_nuitka() -> None:
    from nuitka.Version import getNuitkaVersion

    found = getNuitkaVersion()
    if found != NUITKA_VERSION:
        sys.exit(f"pinit nuitka plugin: written for Nuitka {NUITKA_VERSION}, found {found}; "
                 "review toolchain/nuitka_plugin.py before changing the pin")


def sysroot_paths(sysroot: str) -> tuple[str, str]:
    lib = os.path.join(sysroot, "usr/lib/aarch64-linux-gnu", f"libpython{PYTHON_ABI}.a")
    include = os.path.join(sysroot, "usr/include", f"python{PYTHON_ABI}")
    return lib, include


def retarget(sysroot: str, libpython: str | None = None) -> None:
    """Point Nuitka's libpython and Python.h lookups at the arm64 sysroot (libpython: a rebuilt
    archive instead of the sysroot's)."""
    import nuitka.PythonVersions as PythonVersions
    import nuitka.utils.StaticLibraries as StaticLibraries

    lib, include = sysroot_paths(sysroot)
    lib = libpython or lib
    for path in (lib, include):
        if not os.path.exists(path):
            sys.exit(f"pinit nuitka plugin: {path} missing; run `invoke toolchain`")

    # getSystemStaticLibPythonPath() caches its answer in this module global.
    assert hasattr(StaticLibraries, "_static_lib_python_path")
    StaticLibraries._static_lib_python_path = lib

    def target_include(**_kwargs: object) -> str:
        return include

    # Modules imported it by name before plugins load; replace every binding.
    original = PythonVersions.getTargetPythonIncludePath
    for module in list(sys.modules.values()):
        if getattr(module, "getTargetPythonIncludePath", None) is original:
            module.getTargetPythonIncludePath = target_include  # type: ignore[attr-defined]


# Lines of Nuitka's start-up C replaced in the build's copies (the installed Nuitka is never
# touched): (file under static_src, the exact line, its replacement, why).
STARTUP_PATCHES = (
    # It imports `inspect` to patch it for compiled functions; that pulls in ast, dis, enum,
    # re, tokenize… and cost about 0.75 s of a 1.2 s start under QEMU. PID 1 and appliance apps
    # rarely introspect compiled generators.
    ("MainProgram.c", "    patchInspectModule(tstate);\n", "", "no inspect patching"),
    # Two imports of `os` at start-up: os.path before its sys.path hook is installed (so that
    # the hook's use of os.path cannot recurse; here os is always embedded, found by Nuitka's
    # loader, never by a path hook), and os.environ to restore PATH and PYTHON* (before `os` is
    # imported, the C environment is all there is: os.environ is made from it when it is).
    # PID 1 imports no `os`: os and the 25 ABCs of _collections_abc are ~5 M instructions.
    ("MetaPathBasedLoader.c", "    IMPORT_HARD_OS_PATH(tstate);\n", "",
     "os.path imported when first used"),
    ("HelpersEnvironmentVariables.c", "    PyObject *os_module = IMPORT_HARD_OS();\n",
     "    PyObject *os_module = PyDict_GetItemString(PyImport_GetModuleDict(), \"os\");\n"
     "    if (os_module == NULL) {\n"
     "        if (old_value) setEnvironmentVariable(variable_name, old_value);\n"
     "        else unsetEnvironmentVariable(variable_name);\n"
     "        return;\n"
     "    }\n",
     "os.environ only when os is imported"),
    # The module specs of compiled modules come from importlib._bootstrap, which is
    # _frozen_importlib: importing it under its package's name runs importlib/__init__.py and
    # `warnings` at every start.
    ("MetaPathBasedLoader.c", '        importlib = PyImport_ImportModule("importlib._bootstrap");\n',
     '        importlib = PyImport_ImportModule("_frozen_importlib");\n',
     "importlib._bootstrap by its frozen name"),
)
# Nuitka copies only some of static_src into the build; the others are #included from its
# installation, by these files. A patched one is a copy named pinit_<file>.inc (not compiled on
# its own) that its includer, itself copied or patched, includes instead.
INCLUDED_BY = {"MetaPathBasedLoader.c": "CompiledCodeHelpers.c",
               "HelpersEnvironmentVariables.c": "CompiledCodeHelpers.c",
               "CompiledCodeHelpers.c": "CompiledFunctionType.c"}


def _patch_static_src(build_dir: str, installed_dir: str) -> None:
    edits: dict[str, list[tuple[str, str]]] = {}
    for name, line, code, why in STARTUP_PATCHES:
        edits.setdefault(name, []).append((line, f"    /* pinit: {why} */\n{code}"))
    pending = list(edits)
    while pending:   # an includer that is not copied is redirected through a copy of its own
        name = pending.pop()
        if not os.path.exists(os.path.join(build_dir, name)) and \
                (f'#include "{name}"\n', f'#include "pinit_{name}.inc"\n') \
                not in edits.get(INCLUDED_BY[name], []):
            includer = INCLUDED_BY[name]
            edits.setdefault(includer, []).append(
                (f'#include "{name}"\n', f'#include "pinit_{name}.inc"\n'))
            pending.append(includer)
    for name, changes in edits.items():
        copied = os.path.join(build_dir, name)
        source = copied if os.path.exists(copied) else os.path.join(installed_dir, name)
        with open(source) as f:
            text = f.read()
        for line, replacement in changes:
            if text.count(line) != 1:
                sys.exit(f"pinit nuitka plugin: {source} no longer has {line.strip()!r} once; "
                         "review toolchain/nuitka_plugin.py for this Nuitka version")
            text = text.replace(line, replacement)
        target = copied if os.path.exists(copied) else os.path.join(build_dir, f"pinit_{name}.inc")
        if os.path.exists(target):
            os.unlink(target)   # may be a hard link to Nuitka's own file: never edit in place
        with open(target, "w") as f:
            f.write(text)


def own_package_path() -> None:
    """pinit's own package `init` gets `__path__ = []` instead of Nuitka's
    `[os.path.dirname(__file__)]`, which imports os (and _collections_abc's 25 ABCs: ~5 M
    instructions) at every boot. Its modules are all compiled in, found by name."""
    import nuitka.tree.ReformulationNamespacePackages as Namespace
    from nuitka.nodes.ConstantRefNodes import makeConstantRefNode

    original = Namespace._getNameSpacePathExpression

    def path_expression(package: object, source_ref: object) -> object:
        if package.getFullName().getTopLevelPackageName() == "init":  # type: ignore[attr-defined]
            return makeConstantRefNode(constant=[], source_ref=source_ref)
        return original(package=package, source_ref=source_ref)

    Namespace._getNameSpacePathExpression = path_expression


def package_builtins_by_name(names: frozenset[str]) -> None:
    """A package's own C extension, here a builtin named `package.module`: Nuitka lowers a
    relative import of a module it has no file for (`from ._speedups import escape`) to a hard
    import, whose helper (IMPORT_HARD_MARKUPSAFE___SPEEDUPS) exists only for the modules it knows.
    Declared dynamic hard modules, they are imported by name through the import machinery."""
    from nuitka.HardImportRegistry import addModuleDynamicHard

    for name in sorted(names):
        if "." in name:
            addModuleDynamicHard(name)


class _HostImportFailed(Exception):
    pass


def tolerate_host_imports() -> None:
    """Some of Nuitka's package configurations import the package on the build machine to
    compute a replacement (psutil's platform constants). A package built for the Pi cannot be
    imported here (its C extension is aarch64, in the binary): that one change is skipped, with
    a line in the log, and the module is compiled as its authors wrote it."""
    from nuitka.plugins.standard.AntiBloatPlugin import NuitkaPluginAntiBloat as AntiBloat

    get_context, on_source = AntiBloat._getContextCode, AntiBloat._onModuleSourceCode

    def context(self, module_name, anti_bloat_config):  # type: ignore[no-untyped-def]
        def refuse(message: str) -> None:
            raise _HostImportFailed(message)
        self_exit, self.sysexit = self.sysexit, refuse
        try:
            return get_context(self, module_name, anti_bloat_config)
        finally:
            self.sysexit = self_exit

    def source(self, config_module_name, module_name, config_prefix,  # type: ignore[no-untyped-def]
               anti_bloat_config, source_code):
        try:
            return on_source(self, config_module_name, module_name, config_prefix,
                             anti_bloat_config, source_code)
        except _HostImportFailed as exc:
            self.info(f"pinit: {module_name}: left as written, the build machine cannot run "
                      f"this configuration: {str(exc).splitlines()[-1]}")
            return source_code

    AntiBloat._getContextCode = context
    AntiBloat._onModuleSourceCode = source


def patch_startup() -> None:
    import nuitka.build
    import nuitka.MainControl as MainControl

    provide = MainControl.provideStaticSourceFilesBackend
    installed = os.path.join(os.path.dirname(nuitka.build.__file__), "static_src")

    def provide_patched(source_dir: str) -> None:
        provide(source_dir=source_dir)
        _patch_static_src(os.path.join(source_dir, "static_src"), installed)

    MainControl.provideStaticSourceFilesBackend = provide_patched


# Standalone Nuitka embeds every stdlib module it found importable on the host (about 270, 4 MB
# of bytecode) "for CPython start-up" and "as the non-excluded stdlib". A static PID 1 needs the
# modules the interpreter imports from C while it starts plus what the program really imports
# (Nuitka still follows those). These are the start-up ones (utf8_mode=1: the console's and the
# file system's codec), importlib.machinery and its imports, which Nuitka's loader imports from
# C when it looks for an extension module on disk, and ASCII and Latin-1, which
# `open(..., encoding=...)` looks up by name.
STARTUP_MODULES = (
    "abc", "codecs", "encodings", "encodings.aliases", "encodings.ascii", "encodings.latin_1",
    "encodings.utf_8", "importlib", "importlib.machinery", "io", "warnings",
)


def trim_stdlib() -> None:
    import nuitka.freezer.ImportDetection as ImportDetection

    # Both are computed once and cached in these module globals.
    for name in ("_early_modules_names", "_stdlib_modules_names"):
        if getattr(ImportDetection, name, False) is not None:
            sys.exit(f"pinit nuitka plugin: nuitka.freezer.ImportDetection.{name} changed; "
                     "review toolchain/nuitka_plugin.py for this Nuitka version")
    from nuitka.utils.ModuleNames import ModuleName

    ImportDetection._early_modules_names = tuple(ModuleName(m) for m in STARTUP_MODULES)
    ImportDetection._stdlib_modules_names = ()


# Builtin modules that import another builtin from C (a capsule), which no import graph shows.
BUILTIN_REQUIRES = {"_elementtree": ("pyexpat",), "_ssl": ("_socket",)}

# A package's C extension is a builtin named like "gpiod._ext", but CPython's BuiltinImporter
# only finds top-level builtins; this finder, last on sys.meta_path, finds the others.
BUILTIN_SUBMODULES = """\
import _imp
class _PinitBuiltinSubmodules:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if "." in fullname and _imp.is_builtin(fullname):
            bootstrap = sys.modules["_frozen_importlib"]
            return bootstrap.ModuleSpec(fullname, bootstrap.BuiltinImporter, origin="built-in")
        return None
sys.meta_path.append(_PinitBuiltinSubmodules)
del _PinitBuiltinSubmodules
"""


# sysconfig imports its data by a name computed at run time from the target's ABI
# (`_sysconfigdata__aarch64-linux-gnu`, not an identifier Nuitka can embed): the target's file
# is embedded as `_pinit_sysconfigdata` and this finder, last on sys.meta_path, gives it the
# computed name (PINIT_SYSCONFIGDATA names it).
SYSCONFIGDATA = """\
class _PinitSysconfigData:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != %r:
            return None
        return sys.modules["_frozen_importlib"].ModuleSpec(fullname, cls)
    @staticmethod
    def create_module(spec):
        return __import__("_pinit_sysconfigdata")
    @staticmethod
    def exec_module(module):
        pass
sys.meta_path.append(_PinitSysconfigData)
del _PinitSysconfigData
"""
SYSCONFIGDATA_MODULE = "_pinit_sysconfigdata"

# Packages never embedded whole, wherever they are: tests and the standard library's IDE, GUI
# and installer, which need what no appliance has (a display, pip). A program that imports one
# of their modules by name still gets that module, as any other.
NEVER_WHOLE = frozenset(("test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo",
                         "lib2to3", "ensurepip"))
# ...and packages every program's start-up touches whose submodules are always imported by
# their full names (importlib.metadata, importlib.resources): as imported, not whole.
NOT_EXPANDED = frozenset(("importlib",))


def submodules(name: str, init_file: str) -> list[str]:
    """The direct submodules of package `name` whose __init__.py is `init_file`: its .py files
    and its folders with an __init__.py, less NEVER_WHOLE."""
    folder = os.path.dirname(init_file)
    found = []
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".py") and entry not in ("__init__.py", "__main__.py"):
            sub = entry[:-3]
        elif os.path.isfile(os.path.join(folder, entry, "__init__.py")):
            sub = entry
        else:
            continue
        if sub.isidentifier() and sub not in NEVER_WHOLE:
            found.append(f"{name}.{sub}")
    return found


def multicall_main(sysconfigdata: str = "") -> None:
    """One binary, several programs: given several --main files, Nuitka compiles each as a
    `__main__` of its own and dispatches on the invocation name. Its dispatcher imports `re`
    (tens of milliseconds under emulation on every start, PID 1 included); this one compares
    the basename of argv[0] and imports nothing but sys."""
    import nuitka.MainControl as MainControl
    from nuitka.options.Options import getMainEntryPointFilenames
    from nuitka.utils.ModuleNames import makeMultidistModuleName

    if not hasattr(MainControl, "createMultidistMainSourceCode"):
        sys.exit("pinit nuitka plugin: nuitka.MainControl.createMultidistMainSourceCode is gone; "
                 "review toolchain/nuitka_plugin.py for this Nuitka version")

    def dispatch_source() -> str:
        # Nuitka sets sys.argv[0] to the executable (/init); a program sees its own name.
        lines = ["import sys", "sys.argv[0] = __compiled__.original_argv0",
                 'name = sys.argv[0].rpartition("/")[2]', *BUILTIN_SUBMODULES.splitlines()]
        if sysconfigdata:
            lines += (SYSCONFIGDATA % sysconfigdata).splitlines()
        mains = getMainEntryPointFilenames()
        # The program names, in the order of the mains (an entry's file name may not be its
        # program name: init.py would hide the init package).
        programs = os.environ.get("PINIT_PROGRAMS", "").split(",")
        if len(programs) != len(mains):
            sys.exit("pinit nuitka plugin: PINIT_PROGRAMS must name one program per --main")
        for count, (path, program) in enumerate(zip(mains, programs, strict=True), start=1):
            stem = os.path.basename(path)[:-3]
            module = makeMultidistModuleName(count, stem).asString()
            lines += [f"if name == {program!r}:", f"    __import__({module!r})", "    sys.exit(0)"]
        lines.append('sys.exit("pinit: %s: no program of that name in this binary" % name)')
        return "\n".join(lines) + "\n"

    MainControl.createMultidistMainSourceCode = dispatch_source


class PinitCross(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "pinit-cross"
    plugin_desc = "Cross-compile pinit's init into a static aarch64 PID 1."

    def __init__(self) -> None:
        check_nuitka()
        self.sysroot = _env("PINIT_SYSROOT")
        self.gen_dir = _env("PINIT_GEN_DIR")
        self.cffi_src = _env("PINIT_CFFI_SRC")
        self.drop = frozenset(filter(None, os.environ.get("PINIT_DROP_BUILTINS", "").split(",")))
        self.optional = frozenset(
            filter(None, os.environ.get("PINIT_OPTIONAL_BUILTINS", "").split(",")))
        self.bytecode = frozenset(filter(None, os.environ.get("PINIT_BYTECODE", "").split(",")))
        self.left_out = frozenset(filter(None, os.environ.get("PINIT_LEFT_OUT", "").split(",")))
        self.exclude = frozenset(filter(None, os.environ.get("PINIT_EXCLUDE", "").split(",")))
        self.compiled = frozenset(filter(None, os.environ.get("PINIT_COMPILED", "").split(",")))
        self.whole = os.environ.get("PINIT_WHOLE") == "1"
        self.sysconfigdata = os.environ.get("PINIT_SYSCONFIGDATA", "")
        self.ext_dirs = _env("PINIT_EXT_DIRS").split(os.pathsep)
        self.manifests = []
        for ext_dir in self.ext_dirs:
            with open(os.path.join(ext_dir, "modules.json")) as f:
                self.manifests.append(json.load(f))
        self.ext_modules: dict[str, dict[str, object]] = {
            name: module for m in self.manifests for name, module in m["modules"].items()}
        self.not_built: dict[str, str] = {
            name: why for m in self.manifests for name, why in m["not_built"].items()}
        self.linked: tuple[str, ...] = ()
        # builder/pyext.py's libpython, rebuilt for size, when an archive directory has one.
        libpython = next((os.path.join(d, m["libpython"])
                          for d, m in zip(self.ext_dirs, self.manifests, strict=True)
                          if "libpython" in m), None)
        retarget(self.sysroot, libpython)
        register_builtins(frozenset(self.ext_modules) | frozenset(self.not_built))
        package_builtins_by_name(frozenset(self.ext_modules))
        tolerate_host_imports()
        patch_startup()
        own_package_path()
        trim_stdlib()
        multicall_main(self.sysconfigdata)

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def leaves_out(self, name: str) -> bool:
        """PINIT_LEFT_OUT names `name`, or is "*" (build/init: its code is pinit's own, tested)."""
        return name in self.left_out or "*" in self.left_out

    @staticmethod
    def within(name: str, names: frozenset[str]) -> bool:
        """`names` has `name` or a package it is in."""
        parts = name.split(".")
        return any(".".join(parts[:i]) in names for i in range(1, len(parts) + 1))

    def excluded(self, name: str) -> bool:
        """The pinit.toml's `exclude` names `name` or a package it is in."""
        return self.within(name, self.exclude)

    def decideCompilation(self, module_name: object) -> str | None:
        """Bytecode: the init's modules but the few faster as C (PINIT_COMPILED), and in an
        appliance every module but the programs' main scripts and what the pinit.toml names in
        [python] compiled (importing bytecode is faster than importing Nuitka's C, and it is a
        fifth of the size; the standard library is bytecode already)."""
        from nuitka.utils.ModuleNames import trigger_names

        name = str(module_name)
        if name.endswith(trigger_names):
            return None   # a plugin's pre/post-load code: Nuitka builds it compiled, always
        if name in self.bytecode:
            return "bytecode"
        if self.within(name, self.compiled):
            return "compiled"
        if self.whole and not name.startswith(("multidist-", "__main__", "__parents_main__")) \
                and not self.others_decide(module_name):
            return "bytecode"
        return None

    def others_decide(self, module_name: object) -> bool:
        """Another plugin has a view on the module (anti-bloat compiles xmlrpc.server, whose
        patched classes need C): Nuitka refuses two views, so theirs stands."""
        from nuitka.plugins.Plugins import getActivePlugins

        return any(plugin.decideCompilation(module_name) is not None
                   for plugin in getActivePlugins() if plugin is not self)

    def getImplicitImports(self, module: object):  # type: ignore[no-untyped-def]
        """With PINIT_WHOLE, a package comes whole: every submodule, as bytecode loaded only
        when imported, so what a program imports by a computed name (codecs by their names,
        a package's plugins and dialects) is there, as in CPython."""
        if not self.whole:
            return
        name = module.getFullName().asString()  # type: ignore[attr-defined]
        if name == "sysconfig" and self.sysconfigdata:
            yield SYSCONFIGDATA_MODULE
        filename = module.getCompileTimeFilename()  # type: ignore[attr-defined]
        if not filename or os.path.basename(filename) != "__init__.py" \
                or name in NOT_EXPANDED or name.split(".")[0] == "init" or self.excluded(name) \
                or name.rpartition(".")[2] in NEVER_WHOLE:
            return
        for sub in submodules(name, filename):
            if not self.excluded(sub):
                yield sub

    def onModuleEncounter(self, using_module_name: object, module_name: object,
                          module_filename: str, module_kind: str) -> tuple[bool, str] | None:
        """Not followed: what the pinit.toml excludes, and (build/init) a module the standard
        library imports only inside functions (os.popen's subprocess, traceback's ast, …).
        Imported by the program, or at module level by any module it uses, such a module is
        followed as usual (Nuitka decides per importer)."""
        if self.excluded(str(module_name)):
            return False, "pinit: the pinit.toml excludes it"
        if using_module_name is None or not self.leaves_out(str(module_name)) \
                or module_kind != "py":
            return None   # C modules: decided from the import graph (getExtraCodeFiles)
        known = stdlib_imports(str(using_module_name))
        if known is None or str(module_name) in known[0]:
            return None
        return False, "pinit: the standard library imports it only inside a function"

    def getExtraCodeFiles(self) -> dict[str, str]:
        backend = os.path.join(self.cffi_src, "src/c/_cffi_backend.c")
        module = os.path.join(self.gen_dir, "_pinit_sys.c")
        config_c = os.path.join(self.sysroot, "usr/lib/python3.11/config-3.11-aarch64-linux-gnu",
                                "config.c")
        from nuitka.ModuleRegistry import getDoneModules

        imported, lazy = imported_modules()
        # Only the modules the build names may be left out: a function may be called while its
        # module is imported (hashlib's sha and blake2 constructors), or by what the program
        # calls (datetime.strptime imports _strptime), which no import graph shows.
        lazy = {name: importer for name, importer in lazy.items() if self.leaves_out(name)}
        excluded = {name for name in imported if self.excluded(name)}
        eager = imported - set(lazy) - excluded
        wanted = eager & set(self.ext_modules)
        for name in sorted(wanted):   # imports made from C, which Nuitka cannot see
            wanted.update(self.ext_modules[name].get("requires", ()))  # type: ignore[arg-type]
        # libpython's own builtins that nothing needs at start-up are linked only when imported.
        kept = eager | {dep for name in eager | wanted for dep in BUILTIN_REQUIRES.get(name, ())}
        drop = self.drop | (self.optional - kept)
        # A module that cannot be in a static binary, or was left out, is a builtin whose
        # import raises an ImportError saying why (rather than a search for a .so).
        reasons = {name: self.not_built[name] for name in imported & set(self.not_built)}
        embedded = {m.getFullName().asString() for m in getDoneModules()}
        reasons.update({
            name: f"only {importer} imports it, inside a function; a program that uses it "
                  f"imports {name} itself, and then it is in"
            for name, importer in lazy.items()
            if name in (self.optional | set(self.ext_modules)) - kept - wanted - self.drop
            or (name not in embedded and name not in self.ext_modules
                and stdlib_imports(name) is not None)})
        reasons.update({name: "the appliance's pinit.toml excludes it ([python] exclude)"
                        for name in excluded
                        if name in self.optional | set(self.ext_modules) | set(self.not_built)})
        refused = sorted(reasons)
        self.linked = tuple(sorted(wanted))
        with open(os.path.join(self.gen_dir, "stdlib-ext-linked.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in self.linked))
        # What a program imports that is not in, and why: the build prints it.
        with open(os.path.join(self.gen_dir, "left-out.txt"), "w") as f:
            f.write("".join(f"{name}: {reasons.get(name, 'the pinit.toml excludes it')}\n"
                            for name in sorted(excluded | set(reasons))))
        with open(config_c) as f:
            inittab = inittab_c(f.read(), drop, (
                *((name, str(self.ext_modules[name].get("init", f"PyInit_{name}")))
                  for name in self.linked),
                *((name, refused_symbol(name)) for name in refused)))
        return {
            "pinit_boot.c": early_header() + f'#include "{PROLOGUE_C}"\n',
            "pinit_inittab.c": inittab,
            "pinit_refused.c": refused_c(reasons),
            # Included by absolute path so their sibling #includes resolve.
            "pinit_sys.c": f'#include "{module}"\n',
            "pinit_cffi_backend.c": f'#include "{backend}"\n',
        }

    def getExtraLinkDirectories(self) -> list[str]:
        return self.ext_dirs

    def getExtraLinkLibraries(self) -> list[str]:
        # Archives: the linker takes from each only what the inittab's modules reach. After
        # each archive, its modules' static libraries; then libpython again (the modules need
        # parts of it nothing before them pulled in); zlib and expat for libpython's builtin
        # zlib and pyexpat. libffi (cffi's backend, _ctypes) ends the stdlib's link order.
        libs = []
        for manifest in self.manifests:
            libs += [manifest.get("archive", "pinit_stdlib"), *manifest["link_order"]]
        return [*libs, f":libpython{PYTHON_ABI}.a", "z", "expat", "m", "pthread", "dl"]
