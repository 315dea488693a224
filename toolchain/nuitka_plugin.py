"""The Nuitka plugin that cross-compiles pinit's init into a static PID 1 for the target
(aarch64, the default; PINIT_TRIPLET names it).

Loaded by Nuitka as `--user-plugin=toolchain/nuitka_plugin.py`, in Nuitka's own process
(builder/python/compile.py passes it and puts the repository on PYTHONPATH, so the modules
below import). It is configured through the PINIT_* environment settings that compile.py
sets; their names and meanings are in toolchain/nuitka_pin.py.

This file holds only the plugin: its set-up and Nuitka's hooks (public plugin API). What it
generates without Nuitka is in toolchain/nuitka_gen.py; every use of Nuitka's internals, to
be reviewed on each change of the pin, in toolchain/nuitka_patches.py (checked by
tests/unit/test_toolchain.py).

- The hooks: which modules are compiled to C or embedded as bytecode, which are followed,
  which a package brings whole (PINIT_WHOLE), and the extra C code (the cffi module, cffi's
  backend, the C prologue that runs before Python, the inittab registering the builtin modules
  the program imports and those it is refused) and link libraries.
- The inittab is decided from Nuitka's import graph: a module the standard library imports
  only inside functions is left out in build/init (PINIT_LEFT_OUT), and importing it raises an
  ImportError saying why.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from nuitka.plugins.PluginBase import NuitkaPluginBase

from toolchain.nuitka_gen import (
    BUILTIN_REQUIRES,
    C_FALLBACKS,
    NEVER_WHOLE,
    SYSCONFIGDATA_MODULE,
    WHOLE_STDLIB,
    archive_symbols,
    early_header,
    in_stdlib,
    inittab_c,
    pythonapi_c,
    refused_c,
    refused_symbol,
    stdlib_imports,
    submodules,
)
from toolchain.nuitka_patches import (
    check_nuitka,
    embedded_modules,
    imported_modules,
    included_modules,
    is_trigger_module,
    main_files,
    multicall_main,
    others_decide,
    own_package_path,
    package_builtins_by_name,
    patch_startup,
    register_builtins,
    retarget,
    scan_bytecode_imports,
    tolerate_host_imports,
    trim_stdlib,
)
from toolchain.nuitka_pin import (
    PINIT_BYTECODE,
    PINIT_CFFI_SRC,
    PINIT_COMPILED,
    PINIT_DROP_BUILTINS,
    PINIT_EXCLUDE,
    PINIT_EXT_DIRS,
    PINIT_GEN_DIR,
    PINIT_LEFT_OUT,
    PINIT_MAIN_FILES,
    PINIT_OPTIONAL_BUILTINS,
    PINIT_PROGRAMS,
    PINIT_SYSCONFIGDATA,
    PINIT_SYSROOT,
    PINIT_TRIPLET,
    PINIT_WHOLE,
    PROLOGUE_C,
    PYTHON_ABI,
    sysroot_paths,
)

# The repository (this file is its toolchain/nuitka_plugin.py): on the build's PYTHONPATH for
# the plugin's own imports and the init package.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(
            f"pinit nuitka plugin: {name} is not set (run the build through `invoke build-init`)"
        )
    return value


def _names(name: str) -> frozenset[str]:
    """A comma-separated setting, unset or empty: none."""
    return frozenset(filter(None, os.environ.get(name, "").split(",")))


# What decides a module's imports besides its source: the scanner's own code.
_SCANNER = hashlib.sha256()
for _part in ("nuitka_gen.py", "nuitka_patches.py"):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), _part), "rb") as _f:
        _SCANNER.update(_f.read())
SCANNER_DIGEST = _SCANNER.hexdigest()[:16]


class PinitCross(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "pinit-cross"
    plugin_desc = "Cross-compile pinit's init into a static PID 1 (aarch64, armhf)."

    def __init__(self) -> None:
        check_nuitka()
        self.sysroot = _env(PINIT_SYSROOT)
        self.triplet = _env(PINIT_TRIPLET)
        self.paths = sysroot_paths(self.sysroot, self.triplet)
        self.gen_dir = _env(PINIT_GEN_DIR)
        self.cffi_src = _env(PINIT_CFFI_SRC)
        self.drop = _names(PINIT_DROP_BUILTINS)
        self.optional = _names(PINIT_OPTIONAL_BUILTINS)
        self.bytecode = _names(PINIT_BYTECODE)
        self.left_out = _names(PINIT_LEFT_OUT)
        self.exclude = _names(PINIT_EXCLUDE)
        self.compiled = _names(PINIT_COMPILED)
        self.whole = os.environ.get(PINIT_WHOLE) == "1"
        # The build's own path: PYTHONPATH less the repository, and the repository's `init`.
        self.roots = tuple(
            os.path.join(os.path.abspath(p), "")
            for p in (
                *(
                    p
                    for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                    if p and os.path.abspath(p) != REPO_ROOT
                ),
                os.path.join(REPO_ROOT, "init"),
            )
        )
        self.host_only: set[str] = set()
        # Standard-library packages that came as imported, not whole: name → __init__.py.
        self.as_imported: dict[str, str] = {}
        self.sysconfigdata = os.environ.get(PINIT_SYSCONFIGDATA, "")
        # The program names, in the order of the mains (multi-call binary).
        self.programs = os.environ.get(PINIT_PROGRAMS, "").split(",")
        self.ext_dirs = _env(PINIT_EXT_DIRS).split(os.pathsep)
        self.manifests = []
        for ext_dir in self.ext_dirs:
            with open(os.path.join(ext_dir, "modules.json")) as f:
                self.manifests.append(json.load(f))
        self.ext_modules: dict[str, dict[str, object]] = {
            name: module for m in self.manifests for name, module in m["modules"].items()
        }
        self.not_built: dict[str, str] = {
            name: why for m in self.manifests for name, why in m["not_built"].items()
        }
        self.linked: tuple[str, ...] = ()
        # builder/python/pyext.py's libpython, rebuilt for size, when an archive directory has one.
        libpython = next(
            (
                os.path.join(d, m["libpython"])
                for d, m in zip(self.ext_dirs, self.manifests, strict=True)
                if "libpython" in m
            ),
            None,
        )
        retarget(self.sysroot, libpython, self.triplet)
        self.libpython = libpython or self.paths.libpython
        register_builtins(frozenset(self.ext_modules) | frozenset(self.not_built))
        package_builtins_by_name(frozenset(self.ext_modules))
        tolerate_host_imports()
        patch_startup()
        own_package_path()
        trim_stdlib()
        multicall_main(self.programs, self.sysconfigdata)
        main_files(os.environ.get(PINIT_MAIN_FILES, "").split(","))
        scan_bytecode_imports()

    @staticmethod
    def getCacheContributionValues(module_name: object) -> tuple[str, ...]:
        """In Nuitka's cache of what a module imports, kept apart per version of pinit's scan
        of the source (nuitka_patches.scan_bytecode_imports)."""
        return (SCANNER_DIGEST,)

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def leaves_out(self, name: str) -> bool:
        """PINIT_LEFT_OUT names `name`, or is "*" (build/init: its code is pinit's own, tested)."""
        return name in self.left_out or "*" in self.left_out

    def on_target_path(self, filename: str) -> bool:
        """`filename` is in the standard library or in a folder of the build's own path (the
        services' folders and site, the init package), not only beside the Python running
        Nuitka."""
        path = os.path.join(os.path.abspath(filename), "")  # a package's is its folder
        return in_stdlib(path) or any(path.startswith(root) for root in self.roots)

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
        name = str(module_name)
        if is_trigger_module(name):
            return None  # a plugin's pre/post-load code: Nuitka builds it compiled, always
        if name in self.bytecode:
            return "bytecode"
        if self.within(name, self.compiled):
            return "compiled"
        if (
            self.whole
            and not name.startswith(("multidist-", "__main__", "__parents_main__"))
            and not self.others_decide(module_name)
        ):
            return "bytecode"
        return None

    def others_decide(self, module_name: object) -> bool:
        """Another plugin has a view on the module (anti-bloat compiles xmlrpc.server, whose
        patched classes need C): Nuitka refuses two views, so theirs stands."""
        return others_decide(self, module_name)

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
        if (
            not filename
            or os.path.basename(filename) != "__init__.py"
            or name.split(".")[0] == "init"
            or self.excluded(name)
            or name.rpartition(".")[2] in NEVER_WHOLE
        ):
            return
        if in_stdlib(filename) and name not in WHOLE_STDLIB:
            self.as_imported[name] = filename  # said by the build, with what it left out
            return
        for sub in submodules(name, filename):
            if not self.excluded(sub):
                yield sub

    def onModuleEncounter(
        self, using_module_name: object, module_name: object, module_filename: str, module_kind: str
    ) -> tuple[bool, str] | None:
        """Not followed: what the pinit.toml excludes, and (build/init) a module the standard
        library imports only inside functions (os.popen's subprocess, traceback's ast, …).
        Imported by the program, or at module level by any module it uses, such a module is
        followed as usual (Nuitka decides per importer)."""
        if self.excluded(str(module_name)):
            return False, "pinit: the pinit.toml excludes it"
        if (
            using_module_name is not None
            and module_kind == "py"
            and module_filename
            and not self.on_target_path(module_filename)
        ):
            # Found only beside the Python running Nuitka (its venv's setuptools puts its
            # vendored packages on sys.path): not the appliance's. urllib3's optional
            # `from backports import zstd` found setuptools' copy of backports.tarfile.
            self.host_only.add(str(module_name))
            return False, "pinit: only the build machine's Python has it"
        if (
            str(using_module_name) in C_FALLBACKS.get(str(module_name), ())
            and str(module_name) not in included_modules()
        ):
            return False, "pinit: a pure-Python fallback for a C module the binary links"
        if (
            using_module_name is None
            or not self.leaves_out(str(module_name))
            or module_kind != "py"
        ):
            return None  # C modules: decided from the import graph (getExtraCodeFiles)
        known = stdlib_imports(str(using_module_name))
        if known is None or str(module_name) in known[0]:
            return None
        return False, "pinit: the standard library imports it only inside a function"

    def getExtraCodeFiles(self) -> dict[str, str]:
        backend = os.path.join(self.cffi_src, "src/c/_cffi_backend.c")
        module = os.path.join(self.gen_dir, "_pinit_sys.c")
        config_c = os.path.join(self.paths.config, "config.c")
        imported, lazy = imported_modules(split=bool(self.left_out))
        # Only the modules the build names may be left out: a function may be called while its
        # module is imported (hashlib's sha and blake2 constructors), or by what the program
        # calls (datetime.strptime imports _strptime), which no import graph shows.
        lazy = {name: importer for name, importer in lazy.items() if self.leaves_out(name)}
        excluded = {name for name in imported if self.excluded(name)}
        eager = imported - set(lazy) - excluded
        wanted = eager & set(self.ext_modules)
        for name in sorted(wanted):  # imports made from C, which Nuitka cannot see
            wanted.update(self.ext_modules[name].get("requires", ()))  # type: ignore[arg-type]
        # libpython's own builtins that nothing needs at start-up are linked only when imported.
        kept = eager | {dep for name in eager | wanted for dep in BUILTIN_REQUIRES.get(name, ())}
        drop = self.drop | (self.optional - kept)
        # A module that cannot be in a static binary, or was left out, is a builtin whose
        # import raises an ImportError saying why (rather than a search for a .so).
        reasons = {name: self.not_built[name] for name in imported & set(self.not_built)}
        embedded = embedded_modules()
        reasons.update(
            {
                name: f"only {importer} imports it, inside a function; a program that uses it "
                f"imports {name} itself, and then it is in"
                for name, importer in lazy.items()
                if name in (self.optional | set(self.ext_modules)) - kept - wanted - self.drop
                or (
                    name not in embedded
                    and name not in self.ext_modules
                    and stdlib_imports(name) is not None
                )
            }
        )
        reasons.update(
            {
                name: "found only in the build machine's Python, not in the services' requirements"
                for name in self.host_only
            }
        )
        reasons.update(
            {
                name: "the appliance's pinit.toml excludes it ([python] exclude)"
                for name in excluded
                if name in self.optional | set(self.ext_modules) | set(self.not_built)
            }
        )
        refused = sorted(reasons)
        self.linked = tuple(sorted(wanted))
        with open(os.path.join(self.gen_dir, "stdlib-ext-linked.txt"), "w") as f:
            f.write("".join(f"{name}\n" for name in self.linked))
        # What a program imports that is not in, and why; and the standard library's
        # submodules nothing imports: the build prints both.
        unused = sorted(
            sub
            for package, init_file in self.as_imported.items()
            for sub in submodules(package, init_file)
            if sub not in embedded and not sub.rpartition(".")[2].startswith("_")
        )
        with open(os.path.join(self.gen_dir, "left-out.txt"), "w") as f:
            f.write(
                "".join(
                    f"{name}: {reasons.get(name, 'the pinit.toml excludes it')}\n"
                    for name in sorted(excluded | set(reasons))
                )
            )
            if unused:
                shown = ", ".join(unused[:12]) + (
                    f" and {len(unused) - 12} more" if len(unused) > 12 else ""
                )
                f.write(
                    f"{shown}: nothing imports these submodules of the standard library's "
                    "packages; a program that imports one only by a name built at run time "
                    "lists it in [[service]] include\n"
                )
        with open(config_c) as f:
            inittab = inittab_c(
                f.read(),
                drop,
                (
                    *(
                        (name, str(self.ext_modules[name].get("init", f"PyInit_{name}")))
                        for name in self.linked
                    ),
                    *((name, refused_symbol(name)) for name in refused),
                ),
            )
        return {
            "pinit_boot.c": early_header() + f'#include "{PROLOGUE_C}"\n',
            "pinit_inittab.c": inittab,
            "pinit_refused.c": refused_c(reasons),
            "pinit_pythonapi.c": pythonapi_c(
                archive_symbols(self.libpython) if "_ctypes" in self.linked else []
            ),
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
        # gcc's libatomic last: ARMv5 (armel) has no 64-bit atomic instructions, so OpenSSL's
        # 64-bit atomics are calls into it there (elsewhere nothing needs it).
        libs = []
        for manifest in self.manifests:
            libs += [manifest.get("archive", "pinit_stdlib"), *manifest["link_order"]]
        return [*libs, f":libpython{PYTHON_ABI}.a", "z", "expat", "m", "pthread", "dl", "atomic"]
