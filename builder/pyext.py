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

Cached by hash of the source, the sysroot, this table and this file: built once per machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain.provision import Toolchain

CROSS_CC = "aarch64-linux-gnu-gcc"
CROSS_AR = "aarch64-linux-gnu-ar"
ARCHIVE = "libpinit_stdlib.a"
MANIFEST = "modules.json"


@dataclass(frozen=True)
class Ext:
    name: str
    sources: tuple[str, ...]          # under Modules/
    libs: tuple[str, ...] = ()        # static libraries, in link order
    cflags: tuple[str, ...] = ()      # Modules/ and the sysroot are spelled $M and $S
    requires: tuple[str, ...] = ()    # modules it imports from C, which no import graph shows


LIBMPDEC = tuple(f"_decimal/libmpdec/{n}.c" for n in (
    "basearith", "constants", "context", "convolute", "crt", "difradix2", "fnt", "fourstep",
    "io", "mpalloc", "mpdecimal", "numbertheory", "sixstep", "transpose"))
CURSES = ("-DHAVE_NCURSESW=1", "-D_XOPEN_SOURCE_EXTENDED=1", "-I$S/usr/include/ncursesw")

# Every extension module of Debian's python3.11 that is not already in libpython3.11.a,
# except the CPython test modules and those listed in NOT_BUILT. Sources as in CPython's
# Modules/Setup.stdlib.in and setup.py; flags as in Debian's build.
EXTENSIONS = (
    Ext("_asyncio", ("_asynciomodule.c",)),
    Ext("_bz2", ("_bz2module.c",), ("bz2",)),
    *(Ext(f"_codecs_{c}", (f"cjkcodecs/_codecs_{c}.c",), requires=("_multibytecodec",))
      for c in ("cn", "hk", "iso2022", "jp", "kr", "tw")),
    Ext("_multibytecodec", ("cjkcodecs/multibytecodec.c",)),
    Ext("_contextvars", ("_contextvarsmodule.c",)),
    Ext("_crypt", ("_cryptmodule.c",), ("crypt",)),
    Ext("_ctypes", ("_ctypes/_ctypes.c", "_ctypes/callbacks.c", "_ctypes/callproc.c",
                    "_ctypes/stgdict.c", "_ctypes/cfield.c"), ("ffi",),
        ("-DHAVE_FFI_PREP_CIF_VAR=1", "-DHAVE_FFI_PREP_CLOSURE_LOC=1",
         "-DHAVE_FFI_CLOSURE_ALLOC=1")),
    Ext("_curses", ("_cursesmodule.c",), ("ncursesw", "tinfo"), CURSES),
    Ext("_curses_panel", ("_curses_panel.c",), ("panelw", "ncursesw", "tinfo"), CURSES),
    Ext("_dbm", ("_dbmmodule.c",), ("db",), ("-DUSE_BERKDB",)),
    Ext("_decimal", ("_decimal/_decimal.c", *LIBMPDEC), (),
        ("-I$M/_decimal/libmpdec", "-DCONFIG_64=1", "-DANSI=1", "-DHAVE_UINT128_T=1")),
    Ext("_hashlib", ("_hashopenssl.c",), ("crypto",)),
    Ext("_json", ("_json.c",)),
    Ext("_lsprof", ("_lsprof.c", "rotatingtree.c")),
    Ext("_lzma", ("_lzmamodule.c",), ("lzma",)),
    Ext("_multiprocessing", ("_multiprocessing/multiprocessing.c",
                             "_multiprocessing/semaphore.c"), (), ("-I$M/_multiprocessing",)),
    Ext("_posixshmem", ("_multiprocessing/posixshmem.c",), (), ("-I$M/_multiprocessing",)),
    Ext("_queue", ("_queuemodule.c",)),
    Ext("_sqlite3", tuple(f"_sqlite/{n}.c" for n in (
        "blob", "connection", "cursor", "microprotocols", "module", "prepare_protocol", "row",
        "statement", "util")), ("sqlite3",), ("-I$M/_sqlite",)),
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

CFLAGS = ("-DNDEBUG", "-fwrapv", "-Os", "-std=c11", "-ffunction-sections", "-fdata-sections",
          "-fvisibility=hidden", "-Wno-unused-result", "-DPy_BUILD_CORE_BUILTIN",
          "-I$S/usr/include/python3.11/internal", "-I$S/usr/include/python3.11",
          "-I$S/usr/include/aarch64-linux-gnu/python3.11")


# The static libraries in an order in which each needs only those after it.
LINK_ORDER = ("ssl", "crypto", "sqlite3", "lzma", "bz2", "readline", "panelw", "ncursesw",
              "tinfo", "db", "uuid", "crypt", "ffi")


def _flags(ext: Ext, tc: Toolchain) -> list[str]:
    modules = str(tc.cpython_src / "Modules")
    out = []
    for flag in (*CFLAGS, *ext.cflags):
        out.append(flag.replace("$M", modules).replace("$S", str(tc.sysroot)))
    return [f"--sysroot={tc.sysroot}", *out]


def digest(tc: Toolchain) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    for stamp in (tc.cpython_src / ".pinit-stamp", tc.sysroot / ".pinit-stamp"):
        h.update(stamp.read_bytes() if stamp.is_file() else b"-")
    h.update(json.dumps([asdict(e) for e in EXTENSIONS]).encode())
    return h.hexdigest()[:16]


def ensure(tc: Toolchain) -> Path:
    """The directory holding libpinit_stdlib.a and modules.json, built when not cached."""
    out = tc.cache / f"stdlib-ext-{digest(tc)}"
    if (out / MANIFEST).is_file():
        return out
    if shutil.which(CROSS_CC) is None:
        raise BuildError(f"{CROSS_CC}: not installed", hint="run `invoke toolchain`")
    modules = tc.cpython_src / "Modules"
    jobs = [(ext, src) for ext in EXTENSIONS for src in ext.sources]
    with atomic_output(out) as tmp:
        (tmp / "obj").mkdir(parents=True)
        with step(f"building {len(EXTENSIONS)} standard-library extension modules for aarch64 "
                  f"({len(jobs)} C files)"):
            def compile_one(job: tuple[Ext, str]) -> Path:
                ext, src = job
                obj = tmp / "obj" / f"{ext.name}__{src.replace('/', '_')[:-2]}.o"
                run([CROSS_CC, *_flags(ext, tc), "-c", modules / src, "-o", obj],
                    capture=True, quiet=True)
                return obj

            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                objects = sorted(pool.map(compile_one, jobs))
            # D: deterministic (no timestamps, uids); member names are unique by construction.
            run([CROSS_AR, "rcsD", tmp / ARCHIVE, *objects], quiet=True)
            shutil.rmtree(tmp / "obj")
            manifest = {"modules": {e.name: {"libs": list(e.libs), "requires": list(e.requires)}
                                    for e in EXTENSIONS},
                        "link_order": list(LINK_ORDER), "not_built": NOT_BUILT}
            write_atomic(tmp / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    log(f"{out / ARCHIVE}: {(out / ARCHIVE).stat().st_size / 1e6:.1f} MB")
    return out
