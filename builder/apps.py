"""Services' programs → files for the initramfs.

An aarch64 ELF is checked with pyelftools: a static one is copied as it is; a dynamic one gets
its interpreter and DT_NEEDED libraries, recursively, from the arm64 sysroot (or the build fails
listing all that is missing). Python programs (a .py file or a folder with __main__.py) are
not files of their own: builder/python/compile.py compiles them into the init's one binary.
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.formats.elf import (
    ElfInfo,
    bundle_elf,
    debian_arch,
    inspect_elf,
    is_elf,
    require_static_for,
)
from hostkit.errors import BuildError
from toolchain.target import AARCH64, Target


def _python_sources(program: Path) -> list[Path]:
    if program.is_dir():
        return sorted(p for p in program.rglob("*.py") if "__pycache__" not in p.parts)
    return [program]


def is_python(program: Path) -> bool:
    """A Python service: compiled into the appliance's one binary (builder/python/compile.py)."""
    return program.is_dir() or program.suffix == ".py"


def program_data(program: Path, skip: tuple[Path, ...] = ()) -> dict[str, Path]:
    """The files a Python program finds beside it on the device, as under `python3 app.py`:
    path relative to the folder its `__file__` is in (for a package, its folder's parent) →
    file on this machine. Every file of the program's folder (a package: its own folder), in
    subfolders too, its Python sources with them (compiled in, they are there for tracebacks
    and `inspect`, as `__file__` names them), but bytecode caches, hidden files and folders
    (.git, .venv, .env), and folders that are a virtual environment (pyvenv.cfg), another
    appliance (pinit.toml) or in `skip` (the image's output)."""
    base = program.parent
    top = program if program.is_dir() else program.parent
    skipped = {p.resolve() for p in skip}
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(top):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d != "__pycache__"
            and (here / d).resolve() not in skipped
            and not (here / d / "pyvenv.cfg").exists()
            and not (here / d / "pinit.toml").exists()
        )
        for name in sorted(files):
            path = here / name
            if name.startswith(".") or path.suffix == ".pyc" or not path.is_file():
                continue
            found[str(path.relative_to(base))] = path
    return found


def app_files(
    program: Path, image_path: str, sysroot: Path, target: Target = AARCH64
) -> dict[str, bytes]:
    """Files (initramfs path → bytes) that make the ELF `program` runnable at `image_path`.
    For another target than aarch64 (the Pi 2's armhf) the program must be static: its
    libraries are not bundled yet."""
    if not is_elf(program):
        raise BuildError(
            f"{program}: not an ELF executable, a .py file or a folder with __main__.py",
            hint="point [[service]] exec at an aarch64 program or a Python program",
        )
    inspect_elf(program)
    if target != AARCH64:
        require_static_for(
            program,
            "service program",
            target.elf_machine,
            target.elf_bits,
            target.name,
            f"{target.triplet} ({target.debian_arch}), linked with -static",
        )
        return {image_path.lstrip("/"): program.read_bytes()}
    return bundle_elf(program, image_path.lstrip("/"), sysroot)


def require_static_target(program: Path, what: str, target: Target) -> ElfInfo:
    """A fully static program of `target`'s Debian architecture: its ELF machine and class, and
    on 32-bit ARM its float ABI (an armhf program is ARMv7 code the ARMv6 Pis cannot run)."""
    build_for = f"{target.triplet} ({target.debian_arch}), linked with -static"
    info = require_static_for(
        program, what, target.elf_machine, target.elf_bits, target.name, build_for
    )
    arch = debian_arch(info)
    if arch != target.debian_arch:
        raise BuildError(
            f"{what} {program} is an {arch} program, not {target.debian_arch}",
            hint=f"build it for {build_for}",
        )
    return info
