"""Services' programs → files for the initramfs.

An aarch64 ELF is checked with pyelftools: a static one is copied as it is; a dynamic one gets
its interpreter and DT_NEEDED libraries, recursively, from the arm64 sysroot (or the build fails
listing all that is missing). Python programs (a .py file or a folder with __main__.py) are
not files of their own: builder/python/compile.py compiles them into the init's one binary.
"""

from __future__ import annotations

from pathlib import Path

from builder.formats.elf import bundle_elf, inspect_elf, is_elf
from hostkit.errors import BuildError


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
        raise BuildError(
            f"{program}: not an ELF executable, a .py file or a folder with __main__.py",
            hint="point [[service]] exec at an aarch64 program or a Python program",
        )
    inspect_elf(program)
    return bundle_elf(program, image_path.lstrip("/"), sysroot)
