"""What an ELF file is, read with pyelftools: used to refuse anything that cannot run on the Pi."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from hostkit.errors import BuildError

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    machine: str          # e_machine, e.g. EM_AARCH64
    elfclass: int         # 32 or 64
    little_endian: bool
    interp: str | None    # PT_INTERP: the dynamic loader, None when static
    dynamic: bool         # has a dynamic section
    needed: tuple[str, ...]
    rpath: tuple[str, ...]

    @property
    def static(self) -> bool:
        return self.interp is None and not self.dynamic

    def describe(self) -> str:
        endian = "little-endian" if self.little_endian else "big-endian"
        link = "static" if self.static else f"dynamic (interpreter {self.interp or 'none'})"
        return f"{self.machine} ELFCLASS{self.elfclass} {endian}, {link}"


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == ELF_MAGIC
    except OSError:
        return False


def inspect_elf(path: Path) -> ElfInfo:
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            interp = None
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_INTERP":
                    interp = seg.get_interp_name()  # type: ignore[attr-defined]
            needed: list[str] = []
            rpath: list[str] = []
            dynamic = False
            for sec in elf.iter_sections():
                if isinstance(sec, DynamicSection):
                    dynamic = True
                    for tag in sec.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)  # type: ignore[attr-defined]
                        elif tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH"):
                            rpath += str(getattr(tag, "runpath", None)
                                         or getattr(tag, "rpath", "")).split(":")
            return ElfInfo(path, elf["e_machine"], elf.elfclass, elf.little_endian, interp,
                           dynamic, tuple(needed), tuple(rpath))
    except (ELFError, OSError) as exc:
        raise BuildError(f"{path}: not a readable ELF file ({exc})") from exc


def require_aarch64(path: Path, what: str) -> ElfInfo:
    """Refuse anything the Pi's 64-bit kernel cannot exec, saying what it is instead."""
    info = inspect_elf(path)
    if info.machine != "EM_AARCH64" or info.elfclass != 64 or not info.little_endian:
        raise BuildError(f"{what} {path} is {info.describe()}, not aarch64 (EM_AARCH64 ELFCLASS64 "
                         "little-endian)", hint="build it for aarch64-linux-gnu (arm64)")
    return info


def require_static_aarch64(path: Path, what: str) -> ElfInfo:
    info = require_aarch64(path, what)
    if info.interp is not None:
        raise BuildError(f"{what} {path} has PT_INTERP {info.interp}: it is dynamically linked",
                         hint="link it with -static")
    if info.dynamic:
        raise BuildError(f"{what} {path} has a dynamic section: it is not fully static",
                         hint="link it with -static (not -static-pie)")
    return info
