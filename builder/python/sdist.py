"""A package's sdist made into Python files and builtin C modules for the one static binary.

The package's own build runs on this machine, with its own build requirements (the lock pins
them; pypi.py installs them into a build environment): setuptools' build_py copies the Python
files and package data as a real build would, and build_ext's compiler step is replaced by a
recorder that only describes each extension. Cython sources among them are translated by the
package's own Cython; then every extension is cross-compiled for the toolchain's target
(tc.target: aarch64, armhf, …) with its cross compiler, against its sysroot's Python headers,
and registered as a builtin module (`PyInit_pinitpkg_<name>`). Never a `.so`.

An extension that does not compile for the Pi stops the build, unless the package works without
it: every import of it (and of the modules that import it unguarded) sits in a `try` that
catches ImportError, as markupsafe's, msgpack's and pyyaml's speed-ups do. Then the package is
built pure, with one warning line, as pip would install it on a machine without a compiler.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
import tarfile
import tomllib
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.python import native
from hostkit.errors import BuildError
from hostkit.run import log, run
from toolchain.nuitka_pin import sysroot_paths
from toolchain.provision import Toolchain
from toolchain.target import Target

CXX_SUFFIXES = (".cc", ".cpp", ".cxx")
# Build backends whose C build pinit replays: setuptools, and an in-tree backend beside a
# setup.py (pyyaml's _pyyaml_pep517 wraps setuptools).
SETUPTOOLS_BACKENDS = ("setuptools.build_meta", "setuptools.build_meta:__legacy__", "")
# Backends that build no C: the sdist's Python files are the package.
PURE_BACKENDS = (
    "flit_core.buildapi",
    "hatchling.build",
    "poetry.core.masonry.api",
    "pdm.backend",
    "pdm.pep517.api",
)
# PEP 517's default for an sdist without [build-system].
DEFAULT_REQUIRES = ("setuptools>=40.8.0", "wheel")
# Run by the build environment's Python in an unpacked sdist: the package's own build
# (setuptools), with build_ext's compiler step replaced by a recorder.
RECORDER = r"""
import json, os, sys
from setuptools.command.build_ext import build_ext

out, lib, tmp = sys.argv[1:4]
recorded = []

def record(self, ext):
    recorded.append({"name": ext.name, "sources": list(ext.sources),
                     "include_dirs": list(ext.include_dirs or []),
                     "define_macros": [list(m) for m in ext.define_macros or []],
                     "undef_macros": list(ext.undef_macros or []),
                     "extra_compile_args": list(ext.extra_compile_args or []),
                     "libraries": list(ext.libraries or [])})

build_ext.build_extension = record
sys.argv = ["setup.py", "build_py", "--build-lib", lib, "build_ext", "--build-lib", lib,
            "--build-temp", tmp]
sys.path.insert(0, os.getcwd())
if os.path.exists("setup.py"):
    with open("setup.py") as f:
        code = compile(f.read(), "setup.py", "exec")
    exec(code, {"__name__": "__main__", "__file__": os.path.abspath("setup.py")})
else:
    from setuptools import setup
    setup()
with open(out, "w") as f:
    json.dump(recorded, f)
"""


@dataclass(frozen=True)
class BuildSystem:
    backend: str
    requires: tuple[str, ...]
    in_tree: bool = False  # backend-path: the sdist brings its own backend
    setup_py: bool = False

    @property
    def replayable(self) -> bool:
        """pinit can build it for the Pi: setuptools (or an in-tree backend beside a
        setup.py, as PyYAML's), or a backend that builds no C."""
        return self.backend in (*SETUPTOOLS_BACKENDS, *PURE_BACKENDS) or (
            self.in_tree and self.setup_py
        )


def build_system(archive: Path) -> BuildSystem:
    """The sdist's [build-system] (PEP 517/518), read from the archive without unpacking it."""
    data = b""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            top = [n for n in z.namelist() if n.count("/") == 1]
            names = [n for n in top if n.endswith("/pyproject.toml")]
            data = z.read(names[0]) if names else b""
    else:
        with tarfile.open(archive) as tar:
            top = [m.name for m in tar if m.name.count("/") == 1]
            member = next((n for n in top if n.endswith("/pyproject.toml")), None)
            f = tar.extractfile(member) if member else None
            data = f.read() if f else b""
    setup_py = any(n.endswith("/setup.py") for n in top)
    try:
        table = tomllib.loads(data.decode()).get("build-system", {}) if data else {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{archive.name}: its pyproject.toml is not valid TOML: {exc}") from exc
    requires = table.get("requires", DEFAULT_REQUIRES) if table else DEFAULT_REQUIRES
    return BuildSystem(
        str(table.get("build-backend", "")),
        tuple(str(r) for r in requires),
        bool(table.get("backend-path")),
        setup_py,
    )


def _init_symbol(module: str) -> str:
    return "PyInit_pinitpkg_" + module.replace(".", "__")


def build(
    name: str,
    version: str,
    archive: Path,
    work: Path,
    lib: Path,
    obj: Path,
    tc: Toolchain,
    tools: Path | None = None,
) -> dict[str, dict[str, object]]:
    """Run the package's own build with the recorder, its build requirements installed in
    `tools` (first on the path), then cross-compile its extensions into `obj`; the Python files
    land in `lib`."""
    what = f"{name} {version}"
    env = {"PYTHONPATH": str(tools)} if tools else {}
    system = build_system(archive)
    src_root = work / "src"
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(src_root)  # hash-verified file
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(src_root)  # hash-verified file
    (src,) = [p for p in src_root.iterdir() if p.is_dir()]
    if system.backend in PURE_BACKENDS:
        return _pure_backend(what, src, lib, env)
    if not system.replayable:
        raise BuildError(
            f"{what}: its build backend {system.backend} cannot be built for the Pi "
            "yet (pinit replays setuptools builds)",
            hint="pin a version built with setuptools"
            + (
                f" or one with a {machine} wheel on the index"
                if (machine := native.wheel_machine(tc.target))
                else ""
            )
            + ", or use a pure-Python alternative",
        )
    recorded = work / "extensions.json"
    proc = run(
        [sys.executable, "-c", RECORDER, recorded, lib, work / "tmp"],
        cwd=src,
        env=env,
        capture=True,
        quiet=True,
        check=False,
    )
    if proc.returncode != 0 or not recorded.is_file():
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise BuildError(
            f"{what}: its setuptools build failed on this machine: {last}",
            hint=f"its build requirements are {', '.join(system.requires)} (the "
            "lock pins them); on a 64-bit Pi, to use the index's aarch64 wheel "
            "instead, name it in [python] wheels (docs/config.md)",
        )
    modules: dict[str, dict[str, object]] = {}
    for ext in json.loads(recorded.read_text()):
        ext_name = ext["name"]
        try:
            jobs = _jobs(what, ext, src, obj, tc, env)
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                list(pool.map(lambda cmd: _compile(what, cmd, tc.target), jobs))
        except BuildError as exc:
            if not optional(lib, ext_name):
                raise
            for stale in obj.glob(f"{ext_name}__*.o"):
                stale.unlink()
            log(
                f"warning: {what}: built without its optional C module {ext_name} "
                f"(pure Python, as without a compiler): {exc}"
            )
            continue
        cxx = any(cmd[0] == cross_cxx(tc.target) for cmd in jobs)
        modules[ext_name] = {
            "libs": [*ext["libraries"], *(["stdc++"] if cxx else [])],
            "requires": [],
            "init": _init_symbol(ext_name),
            "package": name,
        }
    return modules


def _pure_backend(
    what: str, src: Path, lib: Path, env: dict[str, str]
) -> dict[str, dict[str, object]]:
    """A backend that builds no C: pip builds its wheel here, and the wheel is the package."""
    wheels = src.parent / "wheel"
    proc = run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            wheels,
            src,
        ],
        env=env,
        capture=True,
        quiet=True,
        check=False,
    )
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if proc.returncode != 0 or len(found) != 1:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"{what}: its wheel did not build: {last}")
    with zipfile.ZipFile(found[0]) as wheel:
        wheel.extractall(lib)
    return {}


def cross_cc(target: Target) -> str:
    """The target's C cross compiler: aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc, …"""
    return f"{target.cross}gcc"


def cross_cxx(target: Target) -> str:
    """The target's C++ cross compiler: aarch64-linux-gnu-g++, arm-linux-gnueabihf-g++, …"""
    return f"{target.cross}g++"


def target_includes(tc: Toolchain) -> list[str]:
    """The target's Python headers in its sysroot: Python.h, then its own pyconfig.h in the
    multiarch folder (usr/include/<triplet>/python3.11: word size, alignment, sizes)."""
    paths = sysroot_paths(tc.sysroot, tc.target.triplet)
    return [f"-I{paths.include}", f"-I{tc.sysroot}/usr/include/{tc.target.triplet}/python3.11"]


# The kernel's headers (linux-libc-dev, in the locked sysroot) as the cross compiler's own
# folder would give them: it searches its older copy (linux-libc-dev-<arch>-cross) before the
# sysroot, so a package generating code from the sysroot's <linux/input.h> (evdev) would not
# compile. They use no #include_next: first on the path for C and C++ alike.
KERNEL_HEADERS = ("linux", "asm-generic", "misc", "mtd", "rdma", "scsi", "sound", "video", "xen")


def kernel_headers(tc: Toolchain, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for name in KERNEL_HEADERS:
        if (tc.sysroot / "usr/include" / name).is_dir() and not (where / name).exists():
            (where / name).symlink_to(tc.sysroot / "usr/include" / name)
    if not (where / "asm").exists():
        (where / "asm").symlink_to(tc.sysroot / "usr/include" / tc.target.triplet / "asm")
    return where


def _jobs(
    what: str, ext: dict, src: Path, obj: Path, tc: Toolchain, env: dict[str, str]
) -> list[list[str]]:
    name = ext["name"]
    leaf = name.rsplit(".", 1)[-1]
    flags = [
        f"--sysroot={tc.sysroot}",
        "-isystem",
        str(kernel_headers(tc, src.parent / "kernel")),
        "-Os",
        "-fwrapv",
        "-ffunction-sections",
        "-fdata-sections",
        "-DNDEBUG",
        f"-DPyInit_{leaf}={_init_symbol(name)}",
        *target_includes(tc),
    ]
    flags += [f"-I{src / d}" for d in ext["include_dirs"]]
    flags += [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in ext["define_macros"]]
    flags += [f"-U{u}" for u in ext["undef_macros"]]
    flags += [a for a in ext["extra_compile_args"] if a.startswith(("-D", "-I", "-std"))]
    jobs = []
    for source in ext["sources"]:
        path = src / source
        if path.suffix == ".pyx":
            path = cythonize(what, path, name, ext["include_dirs"], src, env)
        if path.suffix not in (".c", *CXX_SUFFIXES):
            continue  # headers and the like, listed as sources by some packages
        out = obj / f"{name}__{source.replace('/', '_')}.o"
        compiler = cross_cxx(tc.target) if path.suffix in CXX_SUFFIXES else cross_cc(tc.target)
        jobs.append([compiler, *flags, "-c", str(path), "-o", str(out)])
    return jobs


def cythonize(
    what: str, pyx: Path, module: str, include_dirs: list[str], src: Path, env: dict[str, str]
) -> Path:
    """The package's Cython (its build requirement, in the build environment) translates one
    .pyx into C, for the module's full name."""
    out = pyx.with_suffix(".c")
    proc = run(
        [
            sys.executable,
            "-m",
            "cython",
            "-3",
            f"--module-name={module}",
            *(f"-I{src / d}" for d in include_dirs),
            f"-I{pyx.parent}",
            str(pyx),
            "-o",
            str(out),
        ],
        cwd=src,
        env=env,
        capture=True,
        quiet=True,
        check=False,
    )
    if proc.returncode != 0:
        text = (proc.stderr + proc.stdout).decode(errors="replace").strip().splitlines()
        reason = next(
            (ln for ln in text if "Error" in ln or "error" in ln), text[-1] if text else "no output"
        )
        raise BuildError(
            f"{what}: Cython could not translate {pyx.name}: {reason}",
            hint="Cython is one of its build requirements, pinned in the lock",
        )
    return out


def _compile(what: str, cmd: list[str], target: Target) -> None:
    if shutil.which(cmd[0]) is None:
        raise BuildError(
            f"{what}: its {'C++' if cmd[0] == cross_cxx(target) else 'C'} extension needs "
            f"{cmd[0]}, the {target.name} cross compiler, which is not installed",
            hint="install it with apt (Debian's g++-<triplet> and gcc-<triplet> packages)",
        )
    proc = run(cmd, capture=True, quiet=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        errors = (
            [ln for ln in stderr.splitlines() if "error" in ln]
            or stderr.strip().splitlines()
            or ["no output"]
        )
        raise BuildError(
            f"{what}: its C extension does not compile for {target.name}: {errors[0]}",
            hint=f"it may need a library or header the {target.name} sysroot lacks; on a "
            "64-bit Pi, to use the index's aarch64 wheel instead, name it in [python] "
            "wheels (docs/config.md)",
        )


# --- is an extension optional? ------------------------------------------------------------------

CATCHES_IMPORT_ERROR = frozenset(
    {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        (isinstance(n, ast.Name) and n.id in CATCHES_IMPORT_ERROR)
        or (isinstance(n, ast.Attribute) and n.attr in CATCHES_IMPORT_ERROR)
        for n in names
    )


def _module_imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """Every module `tree` imports, absolute, each with whether a `try` that catches
    ImportError guards it."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def resolve(level: int, name: str | None) -> str:
        if not level:
            return name or ""
        base = package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, *([name] if name else [])])

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Try):
            inner = guarded or any(_catches_import_error(h) for h in node.handlers)
            for body in node.body:
                visit(body, inner)
            for other in (*node.handlers, *node.orelse, *node.finalbody):
                visit(other, guarded)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, guarded) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.level, node.module)
            found.append((base, guarded))
            found.extend((f"{base}.{alias.name}", guarded) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


def optional(lib: Path, extension: str) -> bool:
    """Whether the package in `lib` works without `extension`: some module imports it, every
    import of it is guarded (or is in a module that only guarded imports reach), and no
    package's __init__ needs it."""
    graph: dict[str, list[tuple[str, bool]]] = {}
    top = extension.split(".")[0]
    root = lib / top
    for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
        rel = path.relative_to(lib).with_suffix("").parts
        is_package = rel[-1] == "__init__"
        module = ".".join(rel[:-1] if is_package else rel)
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (SyntaxError, ValueError):
            continue
        graph[module] = _module_imports(tree, module, is_package)
    failing = {extension}
    changed = True
    while changed:
        changed = False
        for module, imports in graph.items():
            if module not in failing and any(
                not guarded and name in failing for name, guarded in imports
            ):
                failing.add(module)
                changed = True
    reached = any(name == extension for imports in graph.values() for name, _ in imports)
    packages = {m for m in graph if (lib / m.replace(".", "/") / "__init__.py").is_file()}
    return reached and not (failing & packages)
