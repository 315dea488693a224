"""Services' programs → files for the initramfs.

An aarch64 ELF is checked with pyelftools: a static one is copied as it is; a dynamic one gets
its interpreter and DT_NEEDED libraries, recursively, from the arm64 sysroot (or the build fails
listing all that is missing). Python programs (a .py file or a folder with __main__.py) are
not files of their own: builder/python/compile.py compiles them into the init's one binary.
"""

from __future__ import annotations

from pathlib import Path

from builder.formats.elf import inspect_elf, is_elf, require_aarch64
from hostkit.errors import BuildError
from hostkit.run import log

# Where glibc's loader looks on Debian arm64, in its order.
LIB_DIRS = ("lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib")


def _find_lib(name: str, sysroot: Path, extra: tuple[str, ...]) -> Path | None:
    for d in (*extra, *LIB_DIRS):
        candidate = sysroot / d.lstrip("/") / name
        if candidate.exists():
            return candidate
    return None


def bundle_elf(program: Path, image_path: str, sysroot: Path) -> dict[str, bytes]:
    """The program plus, when dynamic, its loader and libraries at their paths on the target."""
    info = require_aarch64(program, "service program")
    files = {image_path: program.read_bytes()}
    if info.static:
        return files
    if info.interp is None:
        raise BuildError(f"{program}: dynamic section but no PT_INTERP (a shared library?)",
                         hint="services must be executables")
    loader = sysroot / info.interp.lstrip("/")
    missing: list[str] = []
    if not loader.exists():
        missing.append(f"{info.interp} (the loader)")
    else:
        files[info.interp.lstrip("/")] = loader.resolve().read_bytes()
    todo = [(program, n, info.rpath) for n in info.needed]
    seen: set[str] = set()
    while todo:
        parent, name, rpath = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        found = _find_lib(name, sysroot, rpath)
        if found is None:
            missing.append(f"{name} (needed by {parent.name})")
            continue
        real = found.resolve()
        lib_info = require_aarch64(real, "library")
        # The loader searches /lib/aarch64-linux-gnu first: one place for every library.
        files[f"lib/aarch64-linux-gnu/{name}"] = real.read_bytes()
        todo += [(real, n, lib_info.rpath) for n in lib_info.needed]
    if missing:
        raise BuildError(f"{program}: libraries not found in the arm64 sysroot: {', '.join(missing)}",
                         hint="link the program statically, or add the packages that provide "
                              "them to toolchain/packages.py SYSROOT")
    log(f"{program.name}: dynamic; bundled the loader and {len(seen)} libraries")
    return files


def _python_sources(program: Path) -> list[Path]:
    if program.is_dir():
        return sorted(p for p in program.rglob("*.py") if "__pycache__" not in p.parts)
    return [program]


def is_python(program: Path) -> bool:
    """A Python service: compiled into the appliance's one binary (builder/python/compile.py)."""
    return program.is_dir() or program.suffix == ".py"


def app_files(program: Path, image_path: str, sysroot: Path) -> dict[str, bytes]:
    """Files (initramfs path → bytes) that make the ELF `program` runnable at `image_path`."""
    if not is_elf(program):
        raise BuildError(f"{program}: not an ELF executable, a .py file or a folder with __main__.py",
                         hint="point [[service]] exec at an aarch64 program or a Python program")
    inspect_elf(program)
    return bundle_elf(program, image_path.lstrip("/"), sysroot)
