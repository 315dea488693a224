"""Every place pinit reaches into Nuitka's internals rather than its public plugin API.

Each of them must be reviewed on every change of the Nuitka pin (NUITKA_VERSION in
toolchain/nuitka_pin.py, and pyproject.toml): they replace or read functions, module globals
and lines of C that Nuitka does not promise to keep. `check_nuitka()` refuses any other Nuitka
version in the build, and tests/unit/test_toolchain.py checks that every name used here and
every line of STARTUP_PATCHES still exists in the installed one.

- Nuitka looks for libpython and Python.h of the interpreter running it (the host's); `retarget`
  points both at the arm64 sysroot (the cached static-libpython path, the include-path lookup).
- The standard library's extension modules that Debian ships only as shared objects are
  builtins here (builder/python/pyext.py builds them): `register_builtins` tells Nuitka so,
  and it never bundles a host .so for them; `package_builtins_by_name` does the same for a
  package's own C extension (`gpiod._ext`).
- `tolerate_host_imports`: a package configuration of Nuitka's that imports the package on the
  build machine is skipped when the package (built for aarch64) cannot be imported there.
- Nuitka's start-up imports `inspect` and `os` (slow under emulation): `patch_startup` drops
  the calls from the build's copies of its C (STARTUP_PATCHES); `own_package_path` keeps the
  `init` package's `__path__` from importing os.
- Nuitka embeds ~270 stdlib modules whether used or not: `trim_stdlib` keeps the interpreter's
  start-up set (STARTUP_MODULES) and what the program imports.
- `multicall_main`: the multi-call binary's dispatcher is pinit's (toolchain/nuitka_gen.py).
- `scan_bytecode_imports`: a module embedded as bytecode is not built into Nuitka's tree and
  optimised only to learn what it imports (two thirds of a first build's time); its imports
  are read from its source (nuitka_gen.source_imports) and handed to Nuitka as its module
  cache would hand them, and kept in that cache (its key has the scanner's digest).
- Read, not replaced: the command line's includes (`included_modules`), the import graph of
  the compiled modules (`imported_modules`,
  `embedded_modules`), Nuitka's trigger modules and the other plugins' views.

toolchain/nuitka_plugin.py calls these from its hooks; of the rest of pinit only the tests
import this module (the build never does: it needs Nuitka).
"""

from __future__ import annotations

import os
import sys

from toolchain.nuitka_gen import dispatcher_py, source_imports, stdlib_imports
from toolchain.nuitka_pin import NUITKA_VERSION, sysroot_paths

REVIEW = "review toolchain/nuitka_patches.py for this Nuitka version"


def check_nuitka() -> None:
    from nuitka.Version import getNuitkaVersion

    found = getNuitkaVersion()
    if found != NUITKA_VERSION:
        sys.exit(
            f"pinit nuitka plugin: written for Nuitka {NUITKA_VERSION}, found {found}; "
            "review toolchain/nuitka_patches.py before changing the pin"
        )


def retarget(sysroot: str, libpython: str | None = None, triplet: str | None = None) -> None:
    """Point Nuitka's libpython and Python.h lookups at the target's sysroot (libpython: a
    rebuilt archive instead of the sysroot's; `triplet`: the target's, default aarch64's)."""
    import nuitka.PythonVersions as PythonVersions
    import nuitka.utils.StaticLibraries as StaticLibraries

    paths = sysroot_paths(sysroot, triplet) if triplet else sysroot_paths(sysroot)
    lib, include = libpython or paths.libpython, paths.include
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
        return str(module_name) in names or (
            str(module_name) not in NOT_FROZEN_ON_TARGET and bool(original(module_name))
        )

    # Modules imported it by name before plugins load; replace every binding.
    for module in list(sys.modules.values()):
        if getattr(module, "isBuiltinModuleName", None) is original:
            module.isBuiltinModuleName = is_builtin  # type: ignore[attr-defined]
    UtilsImporting.builtin_module_names.update(names)
    sys.builtin_module_names = tuple(sorted({*sys.builtin_module_names, *names}))


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

    def source(
        self,
        config_module_name,
        module_name,
        config_prefix,  # type: ignore[no-untyped-def]
        anti_bloat_config,
        source_code,
    ):
        try:
            return on_source(
                self, config_module_name, module_name, config_prefix, anti_bloat_config, source_code
            )
        except _HostImportFailed as exc:
            self.info(
                f"pinit: {module_name}: left as written, the build machine cannot run "
                f"this configuration: {str(exc).splitlines()[-1]}"
            )
            return source_code

    AntiBloat._getContextCode = context
    AntiBloat._onModuleSourceCode = source


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
    (
        "MetaPathBasedLoader.c",
        "    IMPORT_HARD_OS_PATH(tstate);\n",
        "",
        "os.path imported when first used",
    ),
    (
        "HelpersEnvironmentVariables.c",
        "    PyObject *os_module = IMPORT_HARD_OS();\n",
        '    PyObject *os_module = PyDict_GetItemString(PyImport_GetModuleDict(), "os");\n'
        "    if (os_module == NULL) {\n"
        "        if (old_value) setEnvironmentVariable(variable_name, old_value);\n"
        "        else unsetEnvironmentVariable(variable_name);\n"
        "        return;\n"
        "    }\n",
        "os.environ only when os is imported",
    ),
    # The module specs of compiled modules come from importlib._bootstrap, which is
    # _frozen_importlib: importing it under its package's name runs importlib/__init__.py and
    # `warnings` at every start.
    (
        "MetaPathBasedLoader.c",
        '        importlib = PyImport_ImportModule("importlib._bootstrap");\n',
        '        importlib = PyImport_ImportModule("_frozen_importlib");\n',
        "importlib._bootstrap by its frozen name",
    ),
)
# Nuitka copies only some of static_src into the build; the others are #included from its
# installation, by these files. A patched one is a copy named pinit_<file>.inc (not compiled on
# its own) that its includer, itself copied or patched, includes instead.
INCLUDED_BY = {
    "MetaPathBasedLoader.c": "CompiledCodeHelpers.c",
    "HelpersEnvironmentVariables.c": "CompiledCodeHelpers.c",
    "CompiledCodeHelpers.c": "CompiledFunctionType.c",
}


def _patch_static_src(build_dir: str, installed_dir: str) -> None:
    edits: dict[str, list[tuple[str, str]]] = {}
    for name, line, code, why in STARTUP_PATCHES:
        edits.setdefault(name, []).append((line, f"    /* pinit: {why} */\n{code}"))
    pending = list(edits)
    while pending:  # an includer that is not copied is redirected through a copy of its own
        name = pending.pop()
        if not os.path.exists(os.path.join(build_dir, name)) and (
            f'#include "{name}"\n',
            f'#include "pinit_{name}.inc"\n',
        ) not in edits.get(INCLUDED_BY[name], []):
            includer = INCLUDED_BY[name]
            edits.setdefault(includer, []).append(
                (f'#include "{name}"\n', f'#include "pinit_{name}.inc"\n')
            )
            pending.append(includer)
    for name, changes in edits.items():
        copied = os.path.join(build_dir, name)
        source = copied if os.path.exists(copied) else os.path.join(installed_dir, name)
        with open(source) as f:
            text = f.read()
        for line, replacement in changes:
            if text.count(line) != 1:
                sys.exit(
                    f"pinit nuitka plugin: {source} no longer has {line.strip()!r} once; " + REVIEW
                )
            text = text.replace(line, replacement)
        target = copied if os.path.exists(copied) else os.path.join(build_dir, f"pinit_{name}.inc")
        if os.path.exists(target):
            os.unlink(target)  # may be a hard link to Nuitka's own file: never edit in place
        with open(target, "w") as f:
            f.write(text)


def patch_startup() -> None:
    import nuitka.build
    import nuitka.MainControl as MainControl

    provide = MainControl.provideStaticSourceFilesBackend
    installed = os.path.join(os.path.dirname(nuitka.build.__file__), "static_src")

    def provide_patched(source_dir: str) -> None:
        provide(source_dir=source_dir)
        _patch_static_src(os.path.join(source_dir, "static_src"), installed)

    MainControl.provideStaticSourceFilesBackend = provide_patched


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


# Standalone Nuitka embeds every stdlib module it found importable on the host (about 270, 4 MB
# of bytecode) "for CPython start-up" and "as the non-excluded stdlib". A static PID 1 needs the
# modules the interpreter imports from C while it starts plus what the program really imports
# (Nuitka still follows those). These are the start-up ones (utf8_mode=1: the console's and the
# file system's codec), importlib.machinery and its imports, which Nuitka's loader imports from
# C when it looks for an extension module on disk, and ASCII and Latin-1, which
# `open(..., encoding=...)` looks up by name.
STARTUP_MODULES = (
    "abc",
    "codecs",
    "encodings",
    "encodings.aliases",
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "importlib",
    "importlib.machinery",
    "io",
    "warnings",
)


def trim_stdlib() -> None:
    import nuitka.freezer.ImportDetection as ImportDetection

    # Both are computed once and cached in these module globals.
    for name in ("_early_modules_names", "_stdlib_modules_names"):
        if getattr(ImportDetection, name, False) is not None:
            sys.exit(
                f"pinit nuitka plugin: nuitka.freezer.ImportDetection.{name} changed; " + REVIEW
            )
    from nuitka.utils.ModuleNames import ModuleName

    ImportDetection._early_modules_names = tuple(ModuleName(m) for m in STARTUP_MODULES)
    ImportDetection._stdlib_modules_names = ()


def multicall_main(programs: list[str], sysconfigdata: str = "") -> None:
    """One binary, several programs: given several --main files, Nuitka compiles each as a
    `__main__` of its own and dispatches on the invocation name. Its dispatcher imports `re`
    (tens of milliseconds under emulation on every start, PID 1 included); this one
    (nuitka_gen.dispatcher_py) compares the basename of argv[0] and imports nothing but sys.
    `programs`: the program names, in the order of the mains (PINIT_PROGRAMS)."""
    import nuitka.MainControl as MainControl
    from nuitka.options.Options import getMainEntryPointFilenames
    from nuitka.utils.ModuleNames import makeMultidistModuleName

    if not hasattr(MainControl, "createMultidistMainSourceCode"):
        sys.exit(
            "pinit nuitka plugin: nuitka.MainControl.createMultidistMainSourceCode is gone; "
            + REVIEW
        )

    def dispatch_source() -> str:
        mains = getMainEntryPointFilenames()
        # An entry's file name may not be its program name: init.py would hide the init package.
        if len(programs) != len(mains):
            sys.exit("pinit nuitka plugin: PINIT_PROGRAMS must name one program per --main")
        return dispatcher_py(
            [
                (program, makeMultidistModuleName(count, os.path.basename(path)[:-3]).asString())
                for count, (path, program) in enumerate(zip(mains, programs, strict=True), start=1)
            ],
            sysconfigdata,
        )

    MainControl.createMultidistMainSourceCode = dispatch_source


def main_files(files: list[str]) -> None:
    """A program's `__file__` and its tracebacks name its own file on the target ("/app.py"),
    not the entry file the build wrote for it ("pinit_main_2.py"): `files`, one per --main in
    order, "" for Nuitka's own (PINIT_MAIN_FILES). An absolute name Nuitka takes as it is."""
    import nuitka.nodes.ModuleNodes as ModuleNodes
    from nuitka.options.Options import getMainEntryPointFilenames

    original = ModuleNodes.PythonModuleBase.getRunTimeFilename
    by_entry: dict[str, str] = {}

    def runtime_filename(self):  # type: ignore[no-untyped-def]
        if not by_entry:  # the mains are known once Nuitka has read its options
            for main, name in zip(getMainEntryPointFilenames(), files, strict=False):
                by_entry[os.path.abspath(main)] = name
        return by_entry.get(os.path.abspath(self.getCompileTimeFilename())) or original(self)

    if any(files):
        ModuleNodes.PythonModuleBase.getRunTimeFilename = runtime_filename


def scan_bytecode_imports() -> None:
    """A module Nuitka embeds as bytecode gets its imports from a scan of its source (the
    source Nuitka embeds, after other plugins' changes), not from building and optimising a
    compiled module's tree and demoting it: Nuitka's own path for a module its cache knows,
    taken for every one. Every import statement counts, inside functions and `try` too;
    branches for another platform or Python version, `TYPE_CHECKING` and `__main__` do not
    (nuitka_gen.source_imports). What a scan finds is kept in Nuitka's module cache."""
    import nuitka.tree.Building as Building
    from nuitka.BytecodeCaching import (
        getCachedImportedModuleUsageAttempts,
        writeImportedModulesNamesToCache,
    )
    from nuitka.importing.Importing import locateModule, makeModuleUsageAttempt
    from nuitka.plugins.Plugins import getActivePlugins
    from nuitka.utils.ModuleNames import ModuleName

    for name in ("hasCachedImportedModuleUsageAttempts", "getCachedImportedModuleUsageAttempts"):
        if not hasattr(Building, name):
            sys.exit(f"pinit nuitka plugin: nuitka.tree.Building.{name} is gone; " + REVIEW)
    found: dict[tuple[str, int], object] = {}

    def attempts(module_name, source_code, source_ref):  # type: ignore[no-untyped-def]
        key = (module_name.asString(), hash(source_code))
        if key not in found:  # Nuitka's cache first: its key has the scan's digest (the plugin)
            found[key] = getCachedImportedModuleUsageAttempts(
                module_name=module_name, source_code=source_code, source_ref=source_ref
            ) or scan(module_name, source_code, source_ref)
        return found[key]

    def scan(module_name, source_code, source_ref):  # type: ignore[no-untyped-def]
        is_package = os.path.basename(source_ref.getFilename()) == "__init__.py"
        package = module_name.asString() if is_package else module_name.getPackageName()

        def change_function(qualname: str, name: str, body: list[object]) -> None:
            for plugin in getActivePlugins():
                plugin.onFunctionBodyParsing(
                    module_name=module_name,
                    function_qualname=qualname,
                    function_name=name,
                    body=body,
                )

        result = []
        located: dict[str, tuple] = {}  # type: ignore[type-arg]
        for name, line, reason in source_imports(
            source_code, str(package) if package else "", change_function
        ):
            base = name.rpartition(".")[0]
            if reason == "import fromlist" and not (
                base in located and located[base][1] and os.path.isdir(located[base][1])
            ):
                continue  # a name from a module that is not a package is no module (as Nuitka)
            if name not in located:
                located[name] = locateModule(
                    module_name=ModuleName(name), parent_package=None, level=0
                )
            used, filename, kind, finding = located[name]
            result.append(
                makeModuleUsageAttempt(
                    module_name=used,
                    filename=filename,
                    module_kind=kind,
                    finding=finding,
                    level=0,
                    source_ref=source_ref.atLineNumber(line),
                    reason=reason,
                )
            )
        writeImportedModulesNamesToCache(
            module_name=module_name,
            source_code=source_code,
            used_modules=result,
            distribution_names=[],
        )
        return result, []

    Building.hasCachedImportedModuleUsageAttempts = lambda **_kwargs: True
    Building.getCachedImportedModuleUsageAttempts = attempts


def imported_modules(split: bool = True) -> tuple[set[str], dict[str, str]]:
    """Every module name the compiled program's modules import (Nuitka's import graph), and of
    those, the ones only the standard library imports, inside a function: name → importer.

    Such a module is left out, Python or C (subprocess from os.popen, unicodedata from re's
    `\\N{...}` escapes, readline from code.interact): a program that wants it imports it.
    `split`: tell those apart (build/init); an appliance leaves nothing out, and reading the
    standard library's sources for it would cost seconds of every build."""
    from nuitka.ModuleRegistry import getDoneModules

    eager: set[str] = set()
    lazy: dict[str, str] = {}
    for module in getDoneModules():
        importer = module.getFullName().asString()
        known = stdlib_imports(importer) if split else None
        lines = known[1] if known else set()
        for attempt in module.getUsedModules():
            name = str(attempt.module_name)
            if attempt.source_ref is not None and attempt.source_ref.getLineNumber() in lines:
                lazy.setdefault(name, importer)
            else:
                eager.add(name)
    return eager | set(lazy), {n: m for n, m in lazy.items() if n not in eager}


def embedded_modules() -> set[str]:
    """The names of every module Nuitka compiled or embedded."""
    from nuitka.ModuleRegistry import getDoneModules

    return {m.getFullName().asString() for m in getDoneModules()}


def included_modules() -> frozenset[str]:
    """The modules the command line includes (`--include-module`: a service's `include`)."""
    from nuitka.options.Options import getMustIncludeModules

    return frozenset(getMustIncludeModules())


def is_trigger_module(name: str) -> bool:
    """A plugin's pre/post-load code, which Nuitka builds compiled, always."""
    from nuitka.utils.ModuleNames import trigger_names

    return name.endswith(trigger_names)


def others_decide(plugin: object, module_name: object) -> bool:
    """A plugin other than `plugin` has a view on the module's compilation."""
    from nuitka.plugins.Plugins import getActivePlugins

    return any(
        other.decideCompilation(module_name) is not None
        for other in getActivePlugins()
        if other is not plugin
    )
