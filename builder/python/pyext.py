"""The standard library's extension modules, built as builtins for the static binary.

Debian's libpython3.11.a carries only part of the standard library's C modules; the rest
(_contextvars, _asyncio, termios, mmap, _ctypes, _ssl, _sqlite3, _lzma, …) Debian ships as
shared objects in lib-dynload, which a static binary cannot load. Here each of them is compiled
from Debian's own CPython source package (the lock's python3.11 source, Debian's patches
applied) by the cross compiler, against the arm64 sysroot's Python headers and static
libraries, with the flags Debian's build used (its Makefile's MODULE_*_CFLAGS/LDFLAGS), as a
builtin (Py_BUILD_CORE_BUILTIN), into one archive: build/…/libpinit_stdlib.a.

The archive alone links nothing: toolchain/nuitka_plugin.py registers as builtins only the
modules the program imports (the import graph Nuitka computed), so their objects, and only
their static libraries, are pulled in by the linker; a hello world carries no OpenSSL.

libpython is made here too, for size without losing speed. Debian's libpython3.11.a is built
with profile-guided optimisation (rebuilding its hot code without the profile makes start-up
~15% slower), so its objects are kept, less their unwind tables (C needs none; a forced
unwind stops at the first frame without one). What changes: the code no appliance runs at
start-up, the compiler and parser (LIBPYTHON_COLD), is compiled again for size; pystate.c is
compiled again without a 169 KB copy of the runtime's initial state (LIBPYTHON_PATCHED); and
the frozen modules are only the two importlib needs to start (Debian freezes 19 more, 0.8 MB,
which Nuitka's own embedded modules shadow anyway), without docstrings, deep-frozen with
CPython's own script.

Cached by hash of the source, the sysroot, this table and this file: built once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain.nuitka_pin import sysroot_paths
from toolchain.provision import Toolchain


def cross(tc: Toolchain, tool: str) -> str:
    """The target's cross tool: aarch64-linux-gnu-gcc, arm-linux-gnueabihf-ar, …"""
    return f"{tc.target.cross}{tool}"


ARCHIVE = "libpinit_stdlib.a"
LIBPYTHON = "libpython3.11.a"
MANIFEST = "modules.json"


@dataclass(frozen=True)
class Ext:
    name: str
    sources: tuple[str, ...]  # under Modules/
    libs: tuple[str, ...] = ()  # static libraries, in link order
    cflags: tuple[str, ...] = ()  # Modules/ and the sysroot are spelled $M and $S
    requires: tuple[str, ...] = ()  # modules it imports from C, which no import graph shows


LIBMPDEC = tuple(
    f"_decimal/libmpdec/{n}.c"
    for n in (
        "basearith",
        "constants",
        "context",
        "convolute",
        "crt",
        "difradix2",
        "fnt",
        "fourstep",
        "io",
        "mpalloc",
        "mpdecimal",
        "numbertheory",
        "sixstep",
        "transpose",
    )
)
CURSES = ("-DHAVE_NCURSESW=1", "-D_XOPEN_SOURCE_EXTENDED=1", "-I$S/usr/include/ncursesw")

# Every extension module of Debian's python3.11 that is not already in libpython3.11.a,
# except the CPython test modules and those listed in NOT_BUILT. Sources as in CPython's
# Modules/Setup.stdlib.in and setup.py; flags as in Debian's build.
EXTENSIONS = (
    Ext("_asyncio", ("_asynciomodule.c",)),
    Ext("_bz2", ("_bz2module.c",), ("bz2",)),
    *(
        Ext(f"_codecs_{c}", (f"cjkcodecs/_codecs_{c}.c",), requires=("_multibytecodec",))
        for c in ("cn", "hk", "iso2022", "jp", "kr", "tw")
    ),
    Ext("_multibytecodec", ("cjkcodecs/multibytecodec.c",)),
    Ext("_contextvars", ("_contextvarsmodule.c",)),
    Ext("_crypt", ("_cryptmodule.c",), ("crypt",)),
    Ext(
        "_ctypes",
        (
            "_ctypes/_ctypes.c",
            "_ctypes/callbacks.c",
            "_ctypes/callproc.c",
            "_ctypes/stgdict.c",
            "_ctypes/cfield.c",
        ),
        ("ffi",),
        (
            "-DHAVE_FFI_PREP_CIF_VAR=1",
            "-DHAVE_FFI_PREP_CLOSURE_LOC=1",
            "-DHAVE_FFI_CLOSURE_ALLOC=1",
        ),
    ),
    Ext("_curses", ("_cursesmodule.c",), ("ncursesw", "tinfo"), CURSES),
    Ext("_curses_panel", ("_curses_panel.c",), ("panelw", "ncursesw", "tinfo"), CURSES),
    Ext("_dbm", ("_dbmmodule.c",), ("db",), ("-DUSE_BERKDB",)),
    Ext(
        "_decimal",
        ("_decimal/_decimal.c", *LIBMPDEC),
        (),
        ("-I$M/_decimal/libmpdec", "$LIBMPDEC"),
    ),
    Ext("_hashlib", ("_hashopenssl.c",), ("crypto",)),
    Ext("_json", ("_json.c",)),
    Ext("_lsprof", ("_lsprof.c", "rotatingtree.c")),
    Ext("_lzma", ("_lzmamodule.c",), ("lzma",)),
    Ext(
        "_multiprocessing",
        ("_multiprocessing/multiprocessing.c", "_multiprocessing/semaphore.c"),
        (),
        ("-I$M/_multiprocessing",),
    ),
    Ext("_posixshmem", ("_multiprocessing/posixshmem.c",), (), ("-I$M/_multiprocessing",)),
    Ext("_queue", ("_queuemodule.c",)),
    Ext(
        "_sqlite3",
        tuple(
            f"_sqlite/{n}.c"
            for n in (
                "blob",
                "connection",
                "cursor",
                "microprotocols",
                "module",
                "prepare_protocol",
                "row",
                "statement",
                "util",
            )
        ),
        ("sqlite3",),
        ("-I$M/_sqlite",),
    ),
    Ext("_ssl", ("_ssl.c",), ("ssl", "crypto")),
    Ext("_typing", ("_typingmodule.c",)),
    Ext("_uuid", ("_uuidmodule.c",), ("uuid",), ("-I$S/usr/include/uuid",)),
    Ext("_xxsubinterpreters", ("_xxsubinterpretersmodule.c",)),
    Ext("_zoneinfo", ("_zoneinfo.c",)),
    Ext("audioop", ("audioop.c",)),
    Ext("mmap", ("mmapmodule.c",)),
    Ext("ossaudiodev", ("ossaudiodev.c",)),
    Ext("readline", ("readline.c",), ("readline", "tinfo")),
    Ext("resource", ("resource.c",)),
    Ext("termios", ("termios.c",)),
)

# Shipped by Debian as shared objects but not built here, with the reason.
NOT_BUILT = {
    "nis": "Debian's libtirpc needs Kerberos, which Debian ships without static libraries "
    "(and nis is deprecated since Python 3.11)",
}

# libmpdec's configuration as CPython's configure picks it by the target's word size: 64-bit
# with __int128, or 32-bit ANSI C (armhf).
LIBMPDEC_CONFIG = {
    64: ("-DCONFIG_64=1", "-DANSI=1", "-DHAVE_UINT128_T=1"),
    32: ("-DCONFIG_32=1", "-DANSI=1"),
}

# C needs no unwind tables (aarch64's gcc makes them unless told twice).
NO_UNWIND = ("-fno-asynchronous-unwind-tables", "-fno-unwind-tables")
CFLAGS = (
    "-DNDEBUG",
    "-fwrapv",
    "-Os",
    "-std=c11",
    "-ffunction-sections",
    "-fdata-sections",
    *NO_UNWIND,
    "-fvisibility=hidden",
    "-Wno-unused-result",
    "-DPy_BUILD_CORE_BUILTIN",
    "-I$S/usr/include/python3.11/internal",
    "-I$S/usr/include/python3.11",
    "-I$S/usr/include/$T/python3.11",
)


# The static libraries in an order in which each needs only those after it.
LINK_ORDER = (
    "ssl",
    "crypto",
    "sqlite3",
    "lzma",
    "bz2",
    "readline",
    "panelw",
    "ncursesw",
    "tinfo",
    "db",
    "uuid",
    "crypt",
    "ffi",
)


def _flags(cflags: tuple[str, ...], tc: Toolchain) -> list[str]:
    modules = str(tc.cpython_src / "Modules")
    out: list[str] = []
    for flag in (*CFLAGS, *cflags):
        if flag == "$LIBMPDEC":
            out += LIBMPDEC_CONFIG[tc.target.elf_bits]
            continue
        out.append(
            flag.replace("$M", modules)
            .replace("$S", str(tc.sysroot))
            .replace("$T", tc.target.triplet)
        )
    return [f"--sysroot={tc.sysroot}", *out]


# ---- libpython, for size.


def debian_libpython(tc: Toolchain) -> Path:
    return Path(sysroot_paths(tc.sysroot, tc.target.triplet).config) / LIBPYTHON


# The compiler and the parser: run only by compile(), eval() and exec() of source text, never
# by compiled code or embedded bytecode. Compiled again with CFLAGS (-Os, function sections).
LIBPYTHON_COLD = (
    "Parser/token.c",
    "Parser/pegen.c",
    "Parser/pegen_errors.c",
    "Parser/action_helpers.c",
    "Parser/parser.c",
    "Parser/string_parser.c",
    "Parser/peg_api.c",
    "Parser/tokenizer.c",
    "Python/Python-ast.c",
    "Python/Python-tokenize.c",
    "Python/ast.c",
    "Python/ast_opt.c",
    "Python/ast_unparse.c",
    "Python/compile.c",
    "Python/future.c",
    "Python/symtable.c",
)
CORE = ("-DPy_BUILD_CORE", "-I$C/Include/internal", "-I$C/Include")
# Compiled again as they are, for speed, with a change (source text → replacement) for size:
# pystate.c keeps a second copy of the runtime's initial state (169 KB), to start the runtime
# again after Py_Finalize(), which a pinit program never does, and as the template of a
# subinterpreter or thread state, which are set from their initializers instead.
LIBPYTHON_PATCHED = {
    "Python/pystate.c": {
        "static const _PyRuntimeState initial = _PyRuntimeState_INIT;\n": "",
        "memcpy(runtime, &initial, sizeof(*runtime));": 'Py_FatalError("pinit: the runtime starts only once");',
        "memcpy(interp, &initial._main_interpreter,\n               sizeof(*interp));": "*interp = (PyInterpreterState)_PyInterpreterState_INIT;",
        "memcpy(tstate,\n               &initial._main_interpreter._initial_thread,\n"
        "               sizeof(*tstate));": "*tstate = (PyThreadState)_PyThreadState_INIT;",
    },
}
HOT = ("-O2",)
# The frozen modules the interpreter itself needs to start, without docstrings, asserts or
# column positions (its tracebacks hide importlib's frames anyway); the rest of
# Python/frozen.c's table is left empty. zipimport is not among them: a static program
# imports nothing from zip files, and CPython starts without it.
FROZEN = {
    "importlib._bootstrap": "_frozen_importlib",
    "importlib._bootstrap_external": "_frozen_importlib_external",
}
FREEZE_PY = """\
import marshal, sys
name, source, header = sys.argv[1:]
code = compile(open(source, "rb").read(), f"<frozen {name}>", "exec", optimize=2,
               dont_inherit=True)
data = marshal.dumps(code)
lines = "".join(", ".join(map(str, data[i:i + 16])) + ",\\n" for i in range(0, len(data), 16))
open(header, "w").write("/* Auto-generated by Programs/_freeze_module.py */\\n"
                        "const unsigned char _Py_M__" + name.replace(".", "_") + "[] = {\\n"
                        + lines + "};\\n")
"""


def frozen_c() -> str:
    """Python/frozen.c with only the bootstrap modules (deep-frozen by deepfreeze.c)."""
    symbol = {m: f"_Py_get_{m.replace('.', '_')}_toplevel" for m in FROZEN}
    return "".join(
        [
            '#include "Python.h"\n#include "pycore_import.h"\n#include <stdbool.h>\n',
            *(f"extern PyObject *{symbol[m]}(void);\n" for m in FROZEN),
            "static const struct _frozen bootstrap_modules[] = {\n",
            *(f'    {{"{name}", NULL, 0, false, {symbol[m]}}},\n' for m, name in FROZEN.items()),
            "    {0, 0, 0}\n};\n",
            "static const struct _frozen no_modules[] = {{0, 0, 0}};\n",
            "const struct _frozen *_PyImport_FrozenBootstrap = bootstrap_modules;\n",
            "const struct _frozen *_PyImport_FrozenStdlib = no_modules;\n",
            "const struct _frozen *_PyImport_FrozenTest = no_modules;\n",
            "static const struct _module_alias aliases[] = {\n",
            *(f'    {{"{name}", "{m}"}},\n' for m, name in FROZEN.items() if name != m),
            "    {0, 0}\n};\n",
            "const struct _module_alias *_PyImport_FrozenAliases = aliases;\n",
            "const struct _frozen *PyImport_FrozenModules = NULL;\n",
        ]
    )


def freeze(tc: Toolchain, gen: Path) -> list[Path]:
    """deepfreeze.c and frozen.c for FROZEN: compiled by this Python (Debian's 3.11.2, as
    compile.check_host_python requires) and deep-frozen by CPython's own script."""
    src = tc.cpython_src
    frozen = []
    for module in FROZEN:
        header = gen / f"{module}.h"
        run(
            [
                sys.executable,
                "-X",
                "no_debug_ranges",
                "-c",
                FREEZE_PY,
                module,
                src / "Lib" / f"{module.replace('.', '/')}.py",
                header,
            ],
            quiet=True,
        )
        frozen.append(f"{header}:{module}")
    run(
        [sys.executable, src / "Tools/scripts/deepfreeze.py", "-o", gen / "deepfreeze.c", *frozen],
        quiet=True,
    )
    write_atomic(gen / "frozen.c", frozen_c().encode())
    return [gen / "deepfreeze.c", gen / "frozen.c"]


def patched(tc: Toolchain, gen: Path) -> list[Path]:
    """LIBPYTHON_PATCHED's sources, changed, in gen/ (each change must apply)."""
    out = []
    for source, changes in LIBPYTHON_PATCHED.items():
        text = (tc.cpython_src / source).read_text()
        for old, new in changes.items():
            if text.count(old) != 1:
                raise BuildError(
                    f"{source}: the text pinit changes is not there once: {old!r}",
                    hint="the CPython source is not the locked 3.11.2?",
                )
            text = text.replace(old, new)
        write_atomic(gen / Path(source).name, text.encode())
        out.append(gen / Path(source).name)
    return out


def digest(tc: Toolchain) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    for stamp in (tc.cpython_src / ".pinit-stamp", tc.sysroot / ".pinit-stamp"):
        h.update(stamp.read_bytes() if stamp.is_file() else b"-")
    h.update(json.dumps([asdict(e) for e in EXTENSIONS]).encode())
    h.update(tc.target.name.encode())
    return h.hexdigest()[:16]


def ensure(tc: Toolchain) -> Path:
    """The directory holding libpinit_stdlib.a, libpython3.11.a and modules.json, built when
    not cached."""
    out = tc.cache / f"stdlib-ext-{digest(tc)}"
    if (out / MANIFEST).is_file():
        return out
    if shutil.which(cross(tc, "gcc")) is None:
        raise BuildError(f"{cross(tc, 'gcc')}: not installed", hint="run `invoke toolchain`")
    src = tc.cpython_src
    # (source, flags, object name, archive)
    jobs = [
        (src / "Modules" / s, ext.cflags, f"{ext.name}__{s.replace('/', '_')[:-2]}.o", ARCHIVE)
        for ext in EXTENSIONS
        for s in ext.sources
    ]
    jobs += [(src / c, CORE, c.replace("/", "_")[:-2] + ".o", LIBPYTHON) for c in LIBPYTHON_COLD]
    with atomic_output(out) as tmp:
        gen = tmp / "gen"
        gen.mkdir(parents=True)
        jobs += [(c, CORE, f"pinit_{c.stem}.o", LIBPYTHON) for c in freeze(tc, gen)]
        jobs += [(c, (*CORE, *HOT), f"pinit_{c.stem}.o", LIBPYTHON) for c in patched(tc, gen)]
        (tmp / "obj").mkdir()
        with step(
            f"building {len(EXTENSIONS)} standard-library extension modules and "
            f"libpython's cold parts for {tc.target.name} ({len(jobs)} C files)"
        ):

            def compile_one(job: tuple[Path, tuple[str, ...], str, str]) -> tuple[str, Path]:
                source, cflags, name, archive = job
                obj = tmp / "obj" / name
                flags = [f.replace("$C", str(src)) for f in _flags(cflags, tc)]
                run([cross(tc, "gcc"), *flags, "-c", source, "-o", obj], capture=True, quiet=True)
                return archive, obj

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                built = sorted(pool.map(compile_one, jobs))
            # Debian's other objects, without their unwind tables.
            debian = tmp / "debian"
            debian.mkdir()
            run([cross(tc, "ar"), "x", "--output", debian, debian_libpython(tc)], quiet=True)
            replaced = {Path(c).stem for c in (*LIBPYTHON_COLD, *LIBPYTHON_PATCHED)} | {
                "deepfreeze",
                "frozen",
            }
            for obj in sorted(debian.iterdir()):
                if obj.stem in replaced:
                    continue
                run([cross(tc, "objcopy"), "--remove-section=.eh_frame", obj], quiet=True)
                built.append((LIBPYTHON, obj))
            for archive in (ARCHIVE, LIBPYTHON):
                # D: deterministic (no timestamps, uids); member names are unique by construction.
                run(
                    [
                        cross(tc, "ar"),
                        "rcsD",
                        tmp / archive,
                        *(o for a, o in built if a == archive),
                    ],
                    quiet=True,
                )
            for scratch in ("obj", "debian", "gen"):
                shutil.rmtree(tmp / scratch)
            manifest = {
                "modules": {
                    e.name: {"libs": list(e.libs), "requires": list(e.requires)} for e in EXTENSIONS
                },
                "link_order": list(LINK_ORDER),
                "not_built": NOT_BUILT,
                "libpython": LIBPYTHON,
            }
            write_atomic(tmp / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    for archive in (ARCHIVE, LIBPYTHON):
        log(f"{out / archive}: {(out / archive).stat().st_size / 1e6:.1f} MB")
    return out
