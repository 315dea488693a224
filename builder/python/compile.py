"""Python → one static ELF for the target (aarch64 by default), with Nuitka driving the locked
cross toolchain.

Used for the init itself (`invoke build-init` → build/init) and for apps written in Python.
Nuitka runs on Debian's python3.11 (the same 3.11.2 as the arm64 libpython it links), its
cross-compile adaptation is the plugin toolchain/nuitka_plugin.py (configured through the
PINIT_* settings of toolchain/nuitka_pin.py), and the result is refused unless pyelftools says
it is a static executable of the toolchain's target (tc.target, toolchain/target.py). Nuitka runs in its own process: the build never imports it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pprint
import shutil
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from builder.formats.elf import machine_name, require_machine, require_static
from builder.python import pyext
from hostkit.cache import exclusive
from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.paths import REPO
from hostkit.run import log, pinned_env, run
from init import sysdefs
from toolchain import nuitka_pin as pin
from toolchain.provision import Toolchain
from toolchain.target import DEFAULT, Target

PLUGIN = Path(pin.PLUGIN)


def cross_cc(target: Target = DEFAULT) -> str:
    """The target's cross compiler: aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc."""
    return f"{target.cross}gcc"


TARGET_PYTHON = (3, 11, 2)

# Python flags of build/init: no docstrings or asserts (size), no site (start-up: there is no
# site-packages on the target), fixed hash seed (no entropy needed at early boot; reproducible
# iteration order), unbuffered (console lines appear when printed).
INIT_FLAGS = ("no_docstrings", "no_asserts", "no_site", "static_hashes", "unbuffered")
# An appliance's services run as `python3 app.py` would: docstrings and asserts kept
# (sys.flags.optimize 0) unless [python] optimize asks; the rest as build/init (PID 1 is the
# same binary and runs before the kernel's random pool may be ready).
APPLIANCE_FLAGS = ("no_site", "static_hashes", "unbuffered")
OPTIMIZE_FLAGS = {0: (), 1: ("no_asserts",), 2: ("no_asserts", "no_docstrings")}

# Builtin C modules of Debian's libpython that nothing pinit runs can use (shadow passwords,
# syslog, a CPython test module).
DROP_ALWAYS = ("spwd", "syslog", "xxsubtype")
# ...and those the interpreter's start-up does not import: linked only when the program
# imports them (toolchain/nuitka_plugin.py reads its import graph), in build/init as in every
# appliance. Those left in are what CPython itself imports while it starts.
OPTIONAL_BUILTINS = (
    "unicodedata",
    "_elementtree",
    "pyexpat",
    "_pickle",
    "_datetime",
    "_csv",
    "cmath",
    "_statistics",
    "array",
    "_blake2",
    "_sha3",
    "_md5",
    "_sha1",
    "_sha256",
    "_sha512",
    "grp",
    "_tracemalloc",
    "_symtable",
    "zlib",
    "_posixsubprocess",
    "_socket",
    "_bisect",
    "_heapq",
    "_opcode",
    "_random",
    "_struct",
    "binascii",
    "math",
    "select",
    "fcntl",
    "pwd",
    "_locale",
    "_tokenize",
    "_sre",
    "itertools",
    "_collections",
    "_operator",
    "_functools",
    "_string",
    "errno",
    "_stat",
    "atexit",
)
# The init's modules are embedded as bytecode, except these, compiled to C. Measured under
# QEMU (`invoke bench`, guest instructions): PID 1 reaches the app sooner with bytecode
# (importing a compiled module costs more than unmarshalling its code, and little of the boot
# is loops), and bytecode is about a fifth of the size; the JSON reader's loops pay for C.
INIT_COMPILED = ("init", "init.jsontext")


def init_bytecode() -> tuple[str, ...]:
    return tuple(
        name
        for name in (f"init.{p.stem}" for p in sorted((REPO / "init").glob("*.py")))
        if name not in INIT_COMPILED and name != "init.__init__"
    )


# build/init leaves out every module the standard library imports only inside functions: the
# init's code is pinit's own, and its tests run every path it takes. An appliance leaves out
# nothing but what its pinit.toml excludes, and every package a program touches comes whole
# (toolchain/nuitka_plugin.py, PINIT_WHOLE): what a program imports at run time, by whatever
# name and wherever its import statement is, is there, as in CPython.
LEFT_OUT_FOR_INIT = ("*",)


def target_sysconfigdata(tc: Toolchain) -> tuple[str, bytes]:
    """sysconfig's data module for tc.target: its name (as the target's sysconfig computes it:
    `_sysconfigdata__<triplet>`) and text. Debian's own file where the locked runtime has it
    (libpython3.11-stdlib: the default target's); for another target, made as CPython's build
    makes it (sysconfig._generate_posix_vars) from the target sysroot's Makefile and pyconfig.h,
    parsed by the build machine's sysconfig (the same 3.11.2): its MULTIARCH, SOABI, sizes."""
    name = f"_sysconfigdata__{tc.target.triplet}"
    debian = tc.runtime / "usr/lib/python3.11" / f"{name}.py"
    if debian.is_file():
        return name, debian.read_bytes()
    makefile = Path(pin.sysroot_paths(tc.sysroot, tc.target.triplet).config) / "Makefile"
    pyconfig = tc.sysroot / "usr/include" / tc.target.triplet / "python3.11" / "pyconfig.h"
    for path in (makefile, pyconfig):
        if not path.is_file():
            raise BuildError(
                f"{path}: missing, so sysconfig's data for {tc.target.name} cannot be made",
                hint="run `invoke toolchain` (the sysroot's libpython3.11-dev)",
            )
    variables = sysconfig._parse_makefile(str(makefile))  # type: ignore[attr-defined]
    with pyconfig.open() as f:
        sysconfig.parse_config_h(f, variables)
    text = (
        f"# sysconfig's data for {tc.target.triplet}, made by pinit as CPython's build makes it"
        f"\nbuild_time_vars = {pprint.pformat(variables)}\n"
    )
    return name, text.encode()


def check_host_python(target: Target = DEFAULT) -> None:
    found = sys.version_info[:3]
    if found != TARGET_PYTHON or not sys.base_prefix.startswith("/usr"):
        raise BuildError(
            f"Nuitka runs on {sys.executable} (Python {'.'.join(map(str, found))} in "
            f"{sys.base_prefix}); it must be Debian's /usr/bin/python3.11 "
            f"({'.'.join(map(str, TARGET_PYTHON))}), the same version as the arm64 libpython",
            hint="recreate the venv: /usr/bin/python3.11 -m venv .venv && "
            ".venv/bin/pip install -e '.[test]'",
        )
    try:  # the installed distribution's version; the plugin checks Nuitka's own in its process
        installed = importlib.metadata.version("nuitka")
    except importlib.metadata.PackageNotFoundError as exc:
        raise BuildError(
            "Nuitka is not installed in this Python",
            hint=f"pip install nuitka=={pin.NUITKA_VERSION}",
        ) from exc
    if installed != pin.NUITKA_VERSION:
        raise BuildError(
            f"Nuitka {installed} is installed; pinit is pinned to {pin.NUITKA_VERSION}",
            hint=f"pip install nuitka=={pin.NUITKA_VERSION}",
        )
    if shutil.which(cross_cc(target)) is None:
        raise BuildError(f"{cross_cc(target)}: not installed", hint="run `invoke toolchain`")


def check_sysroot_python(tc: Toolchain) -> None:
    header = Path(pin.sysroot_paths(tc.sysroot, tc.target.triplet).include) / "patchlevel.h"
    version = ".".join(map(str, TARGET_PYTHON))
    if (
        not header.is_file()
        or f'#define PY_VERSION              "{version}"' not in header.read_text()
    ):
        raise BuildError(
            f"{header}: not the {tc.target.debian_arch} Python {version} headers",
            hint="run `invoke toolchain` to re-provision the sysroot",
        )


def compile_python(
    entry: Path | list[Path],
    out: Path,
    tc: Toolchain,
    *,
    name: str,
    pythonpath: tuple[Path, ...] = (),
    left_out: tuple[str, ...] = (),
    work: Path | None = None,
    programs: tuple[str, ...] = (),
    main_files: tuple[str, ...] = (),
    ext_dirs: tuple[Path, ...] = (),
    include: tuple[str, ...] = (),
    package_data: tuple[str, ...] = (),
    flags: tuple[str, ...] = INIT_FLAGS,
    whole: bool = False,
    exclude: tuple[str, ...] = (),
    compiled: tuple[str, ...] = (),
) -> Path:
    """Compile the script `entry` into the static executable `out` for tc.target (written
    atomically).

    Several entries make one multi-call executable: each runs as `__main__` when the binary is
    invoked as the program named in `programs` at the same place (the basename of argv[0];
    toolchain/nuitka_gen.py dispatcher_py)."""
    entries = entry if isinstance(entry, list) else [entry]
    target = tc.target
    check_host_python(target)
    check_sysroot_python(tc)
    work = work or REPO / "build" / "nuitka" / name
    gen = work / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    generated = gen / "_pinit_sys.c"
    new_c = gen / "_pinit_sys.c.new"
    sysdefs.emit_c(new_c)
    # Keep the old file (and its mtime) when unchanged so ccache and scons see no change.
    if generated.is_file() and generated.read_bytes() == new_c.read_bytes():
        new_c.unlink()
    else:
        os.replace(new_c, generated)

    sysroot = str(tc.sysroot)
    stdlib_ext = pyext.ensure(tc)
    sysconfigdata = ""
    if whole:
        # sysconfig's data is the target's, embedded under a name Nuitka can take; the plugin
        # gives it the name sysconfig computes on the target.
        sysconfigdata, text = target_sysconfigdata(tc)
        py_dir = gen / "py"
        py_dir.mkdir(exist_ok=True)
        data = py_dir / "_pinit_sysconfigdata.py"
        if not data.is_file() or data.read_bytes() != text:
            data.write_bytes(text)
        pythonpath = (*pythonpath, py_dir)
    env = pinned_env(
        {
            "CC": cross_cc(target),
            "CFLAGS": " ".join(
                (
                    f"--sysroot={sysroot}",
                    "-Os",
                    "-ffunction-sections",
                    "-fdata-sections",
                    *pyext.NO_UNWIND,
                )
            ),
            # --wrap=dlsym: ctypes.pythonapi's look-ups (toolchain/nuitka_gen.py pythonapi_c).
            "LDFLAGS": f"--sysroot={sysroot} -static -Wl,--gc-sections -Wl,--wrap=dlsym",
            pin.PINIT_SYSROOT: sysroot,
            pin.PINIT_TRIPLET: target.triplet,
            pin.PINIT_GEN_DIR: str(gen),
            pin.PINIT_CFFI_SRC: str(tc.cffi_src),
            pin.PINIT_DROP_BUILTINS: ",".join(DROP_ALWAYS),
            pin.PINIT_OPTIONAL_BUILTINS: ",".join(OPTIONAL_BUILTINS),
            pin.PINIT_EXT_DIRS: os.pathsep.join(str(d) for d in (*ext_dirs, stdlib_ext)),
            pin.PINIT_PROGRAMS: ",".join(programs),
            pin.PINIT_MAIN_FILES: ",".join(main_files),
            pin.PINIT_BYTECODE: ",".join(init_bytecode()),
            pin.PINIT_LEFT_OUT: ",".join(left_out),
            pin.PINIT_EXCLUDE: ",".join(exclude),
            pin.PINIT_COMPILED: ",".join((*INIT_COMPILED, *compiled)),
            pin.PINIT_WHOLE: "1" if whole else "",
            pin.PINIT_SYSCONFIGDATA: sysconfigdata,
            # Bytecode without column tables (as `python3 -X no_debug_ranges`): a traceback names
            # file, line and source line but draws no ^^^ under the failing expression. Column
            # tables compress poorly: they are a quarter of the gzipped bytecode.
            "PYTHONNODEBUGRANGES": "1",
            "PYTHONPATH": os.pathsep.join(str(p) for p in (*pythonpath, REPO)),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "nuitka",
        "--mode=standalone",
        "--static-libpython=yes",
        "--lto=no",
        f"--user-plugin={PLUGIN}",
        f"--output-dir={work}",
        f"--output-filename={name}",
        "--assume-yes-for-downloads",
        f"--jobs={os.cpu_count() or 2}",
        f"--python-flag={','.join(flags)}",
        # _py_abc: abc's fallback for a missing _abc, which is always builtin.
        "--nofollow-import-to=cffi,init.sysdefs,_pinit_sys,_cffi_backend,_py_abc",
        *(f"--include-module={m}" for m in include),
        *(f"--include-package-data={p}" for p in package_data),
        "--report=" + str(work / "report.xml"),
        *([str(entries[0])] if len(entries) == 1 else [f"--main={e}" for e in entries]),
    ]
    logfile = work / "nuitka.log"
    what = ", ".join(e.name for e in entries)
    log(f"compiling {what} with Nuitka {pin.NUITKA_VERSION} for {target.name} (log: {logfile})")
    start = time.monotonic()
    proc = run(cmd, env=env, output=logfile, quiet=True, check=False)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-15:]
        print("\n".join(tail), file=sys.stderr)
        raise BuildError(
            f"Nuitka failed (status {proc.returncode}) compiling {what}",
            hint=f"full log: {logfile}",
        )
    built = work / f"{entries[0].stem}.dist" / name
    require_static(
        require_machine(
            built,
            "the compiled program",
            machine_name(target.elf_machine),
            target.elf_bits,
            target.name,
            f"{target.triplet} ({target.debian_arch})",
        ),
        "the compiled program",
    )
    left = gen / "left-out.txt"
    if whole and left.is_file():
        for line in left.read_text().splitlines():
            log(f"left out: {line}")
    write_atomic(out, built.read_bytes(), 0o755)
    log(
        f"{out}: {out.stat().st_size / 1e6:.1f} MB static {target.name}, in {time.monotonic() - start:.1f} s"
    )
    return out


# No garbage collection while PID 1 starts (the collector would walk every object the imports
# make, ~3 ms under QEMU, and free almost nothing): init.boot re-enables it once the app runs.
INIT_ENTRY = """\
import gc
gc.disable()
import sys
from init.main import main

main(sys.argv)
"""
# The same binary called as modprobe (/sbin/modprobe links to /init): the kernel's requests.
MODPROBE_ENTRY = """\
import sys
from init.modprobe import main

sys.exit(main(sys.argv))
"""


def init_digest(tc: Toolchain) -> str:
    """What build/init is made from: the init's sources, the recipe, the locked sysroot."""
    digest = hashlib.sha256((INIT_ENTRY + MODPROBE_ENTRY).encode())
    sources = sorted((REPO / "init").glob("*.py")) + sorted((REPO / "init").glob("*.c"))
    for path in [*sources, Path(__file__), *map(Path, pin.PLUGIN_SOURCES)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    stamp = tc.sysroot / ".pinit-stamp"
    digest.update(stamp.read_bytes() if stamp.is_file() else b"")
    digest.update(pyext.digest(tc).encode())
    return digest.hexdigest()


def init_is_current(tc: Toolchain, out: Path) -> bool:
    stamp = out.with_name(out.name + ".inputs")
    return out.is_file() and stamp.is_file() and stamp.read_text() == init_digest(tc)


def build_init(tc: Toolchain, out: Path) -> Path:
    """build/init: the init package compiled into PID 1 (build/init.inputs records from what)."""
    digest = init_digest(tc)
    # Another target's build has a work folder of its own (Nuitka's incremental build).
    work = (
        REPO / "build" / "nuitka" / ("init" if tc.target == DEFAULT else f"init-{tc.target.name}")
    )
    work.mkdir(parents=True, exist_ok=True)
    entries = []
    for entry, text in (
        (work / "pinit_init.py", INIT_ENTRY),
        (work / "pinit_modprobe.py", MODPROBE_ENTRY),
    ):
        if not entry.is_file() or entry.read_text() != text:
            entry.write_text(text)  # rewritten only when changed: scons sees no change
        entries.append(entry)
    compile_python(
        entries,
        out,
        tc,
        name="init",
        work=work,
        programs=("init", "modprobe"),
        left_out=LEFT_OUT_FOR_INIT,
    )
    out.with_name(out.name + ".inputs").write_text(digest)
    return out


# Of a distribution's metadata, what importlib.metadata's version(), entry_points() and
# packages_distributions() read (not RECORD, licences or WHEEL).
METADATA_FILES = ("METADATA", "entry_points.txt", "top_level.txt")


@dataclass(frozen=True)
class Packages:
    """What builder/python/pypi.py made of the services' requirements, for the compile."""

    lib: Path | None = None  # their Python files: on Nuitka's search path
    ext: Path | None = None  # their C extensions: one more archive to link
    names: tuple[str, ...] = ()  # their top-level packages: data files ship too
    distributions: tuple[str, ...] = ()  # their *.dist-info folders in lib: shipped beside /init
    include: tuple[str, ...] = ()  # modules named in [[service]] include
    digest: str = ""
    optimize: int = 0  # [python] optimize: 0 as `python3`, 1 -O, 2 -OO
    exclude: tuple[str, ...] = ()  # [python] exclude: modules and packages left out
    compiled: tuple[str, ...] = ()  # [python] compiled: compiled to C, not bytecode


@dataclass(frozen=True)
class Appliance:
    binary: Path
    data: dict[str, bytes]  # files Nuitka puts beside the binary (package data): path → bytes
    modules: frozenset[str] = frozenset()  # every module in the binary, compiled or embedded


def folder_sources(folder: Path) -> list[Path]:
    """Every Python file below `folder`, but in hidden folders and caches (.venv, .git,
    __pycache__)."""
    return sorted(
        path
        for path in folder.rglob("*.py")
        if not any(
            part.startswith(".") or part == "__pycache__"
            for part in path.relative_to(folder).parts[:-1]
        )
    )


def appliance_digest(tc: Toolchain, services: dict[str, Path], packages: Packages) -> str:
    """What an appliance binary is made from: build/init's inputs, every service's sources and
    the packages they use."""
    digest = hashlib.sha256(init_digest(tc).encode())
    runtime = tc.runtime / ".pinit-stamp"  # sysconfig's data
    digest.update(runtime.read_bytes() if runtime.is_file() else b"")
    digest.update(
        json.dumps(
            [
                packages.digest,
                packages.include,
                packages.optimize,
                packages.exclude,
                packages.compiled,
            ]
        ).encode()
    )
    for name, program in sorted(services.items()):
        digest.update(name.encode() + b"\0" + str(program.name).encode())
        # The whole folder the program is in: it is on the build's module path, so a module
        # beside the program (helpers.py, a package) is compiled in as the program imports it.
        for src in folder_sources(program.parent):
            digest.update(str(src.relative_to(program.parent)).encode() + b"\0" + src.read_bytes())
    return digest.hexdigest()


def _data_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def check_no_shadowing(paths: tuple[Path, ...]) -> None:
    """The services' folders are on the build's module path: a file there named like a module
    of the standard library (numbers.py, queue.py) would stand in for it, in every service
    and in the build itself. Refused, with the file named."""
    for folder in paths:
        for path in sorted(folder.glob("*.py")):
            if path.stem in sys.stdlib_module_names:
                raise BuildError(
                    f"{path}: named like the standard library's `{path.stem}` "
                    "module, in a service's folder: it would hide that module "
                    "from every service",
                    hint="rename the file (and its imports)",
                )


def build_appliance(
    tc: Toolchain, services: dict[str, Path], cache: Path, packages: Packages = Packages()
) -> Appliance:
    """One multi-call executable: the init and every Python service (name → .py file or package
    folder). Run as /init it is PID 1; run as /app/<name> (a link to /init) it is that service
    alone, as its own program, with no init code run. Cached by the hash of all its sources."""
    key = appliance_digest(tc, services, packages)[:16]
    # One Nuitka work folder for every appliance (its incremental build is what makes a
    # rebuild after one edit fast): builds on one machine take turns in it.
    with exclusive(cache / "nuitka" / "appliance.lock"):
        return _build_appliance(tc, services, cache, packages, key)


def _build_appliance(
    tc: Toolchain, services: dict[str, Path], cache: Path, packages: Packages, key: str
) -> Appliance:
    out = cache / f"appliance-{key}"
    data = cache / f"appliance-{key}.data"
    modules = cache / f"appliance-{key}.modules"
    if out.is_file() and data.is_dir() and modules.is_file():
        log(f"init and {', '.join(sorted(services))}: unchanged; reusing {out.name}")
        return Appliance(out, _data_files(data), frozenset(modules.read_text().split()))
    # Another target's appliance has a work folder of its own, as its init has.
    work = (
        cache / "nuitka" / ("appliance" if tc.target == DEFAULT else f"appliance-{tc.target.name}")
    )
    mains = work / "mains"
    shutil.rmtree(mains, ignore_errors=True)
    mains.mkdir(parents=True)
    # Entry files are numbered: named after their programs, init.py would hide `init`.
    (mains / "pinit_main_0.py").write_text(INIT_ENTRY)
    (mains / "pinit_main_1.py").write_text(MODPROBE_ENTRY)
    entries = [mains / "pinit_main_0.py", mains / "pinit_main_1.py"]
    for index, (_name, program) in enumerate(sorted(services.items()), start=2):
        entry = mains / f"pinit_main_{index}.py"
        if program.is_dir():
            # A package's __main__ keeps its package (relative imports), so it runs as the
            # module `<package>.__main__`, not as `__main__` (documented in docs/config.md).
            entry.write_text(f"import {program.name}.__main__\n")
        else:
            entry.write_bytes(program.read_bytes())
        entries.append(entry)
    paths = tuple(sorted({p.parent for p in services.values()}))
    check_no_shadowing(paths)
    dist = work / "pinit_main_0.dist"
    shutil.rmtree(dist, ignore_errors=True)
    compile_python(
        entries,
        out,
        tc,
        name="init",
        work=work,
        pythonpath=(*paths, *([packages.lib] if packages.lib else [])),
        programs=("init", "modprobe", *sorted(services)),
        # A service's __file__ and tracebacks name its own file, in / (where its folder is).
        main_files=(
            "",
            "",
            *(("" if p.is_dir() else f"/{p.name}") for _, p in sorted(services.items())),
        ),
        ext_dirs=(packages.ext,) if packages.ext else (),
        include=packages.include,
        package_data=packages.names,
        flags=APPLIANCE_FLAGS + OPTIMIZE_FLAGS[packages.optimize],
        whole=True,
        exclude=packages.exclude,
        compiled=packages.compiled,
    )
    # What Nuitka put beside the binary (package data such as certifi's cacert.pem) ships
    # beside /init, where the compiled packages look for it.
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(dist, data, ignore=shutil.ignore_patterns("init", "*.so", "*.so.*"))
    # What importlib.metadata reads (versions, entry points), where it looks: sys.path is "/".
    for info in packages.distributions:
        assert packages.lib is not None
        for name in METADATA_FILES:
            if (packages.lib / info / name).is_file():
                (data / info).mkdir(exist_ok=True)
                shutil.copyfile(packages.lib / info / name, data / info / name)
    names = report_modules(work / "report.xml")
    write_atomic(modules, "".join(f"{name}\n" for name in sorted(names)).encode())
    return Appliance(out, _data_files(data), names)


def report_modules(report: Path) -> frozenset[str]:
    """The modules of a build, as Nuitka's report lists them."""
    import xml.etree.ElementTree as ET

    return frozenset(m.get("name", "") for m in ET.parse(report).getroot().iter("module"))
