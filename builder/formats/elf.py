"""What an ELF file is, read with pyelftools: used to refuse anything that cannot run on the Pi."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.enums import ENUM_E_MACHINE

from hostkit.errors import BuildError
from hostkit.run import log

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    machine: str  # e_machine, e.g. EM_AARCH64
    elfclass: int  # 32 or 64
    little_endian: bool
    interp: str | None  # PT_INTERP: the dynamic loader, None when static
    dynamic: bool  # has a dynamic section
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    flags: int = 0  # e_flags: on 32-bit ARM the EABI version and the float ABI

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
                            rpath += str(
                                getattr(tag, "runpath", None) or getattr(tag, "rpath", "")
                            ).split(":")
            return ElfInfo(
                path,
                elf["e_machine"],
                elf.elfclass,
                elf.little_endian,
                interp,
                dynamic,
                tuple(needed),
                tuple(rpath),
                elf["e_flags"],
            )
    except (ELFError, OSError) as exc:
        raise BuildError(f"{path}: not a readable ELF file ({exc})") from exc


def require_machine(
    path: Path, what: str, machine: str, bits: int, name: str, build_for: str
) -> ElfInfo:
    """Refuse anything the target's kernel cannot exec (`machine`: pyelftools' e_machine name,
    `bits`: its ELF class), saying what it is instead."""
    info = inspect_elf(path)
    if info.machine != machine or info.elfclass != bits or not info.little_endian:
        raise BuildError(
            f"{what} {path} is {info.describe()}, not {name} ({machine} ELFCLASS{bits} "
            "little-endian)",
            hint=f"build it for {build_for}",
        )
    return info


def machine_name(number: int) -> str:
    """pyelftools' name of an e_machine number (183: EM_AARCH64, 40: EM_ARM)."""
    for name, value in ENUM_E_MACHINE.items():
        if value == number:
            return name
    raise ValueError(f"e_machine {number}: unknown to pyelftools")


# e_flags of a 32-bit ARM EABI program that passes floats in VFP registers: Debian's armhf
# (ARMv7); its armel programs (ARMv5T, soft-float calls) have it clear.
EF_ARM_ABI_FLOAT_HARD = 0x400


def debian_arch(info: ElfInfo) -> str:
    """The Debian architecture whose programs look like `info`: arm64, armhf (32-bit ARM with
    the hard-float flag) or armel (without); "" for anything else."""
    if not info.little_endian:
        return ""
    if info.machine == "EM_AARCH64" and info.elfclass == 64:
        return "arm64"
    if info.machine == "EM_ARM" and info.elfclass == 32:
        return "armhf" if info.flags & EF_ARM_ABI_FLOAT_HARD else "armel"
    return ""


def require_aarch64(path: Path, what: str) -> ElfInfo:
    """Refuse anything the Pi's 64-bit kernel cannot exec, saying what it is instead."""
    return require_machine(path, what, "EM_AARCH64", 64, "aarch64", "aarch64-linux-gnu (arm64)")


def require_static_for(
    path: Path, what: str, machine: int, bits: int, name: str, build_for: str
) -> ElfInfo:
    """A fully static program of the target whose e_machine number is `machine`."""
    return require_static(
        require_machine(path, what, machine_name(machine), bits, name, build_for), what
    )


def require_static_aarch64(path: Path, what: str) -> ElfInfo:
    return require_static(require_aarch64(path, what), what)


def require_static(info: ElfInfo, what: str) -> ElfInfo:
    """`info` (of a program already checked for its machine) is fully static."""
    path = info.path
    if info.interp is not None:
        raise BuildError(
            f"{what} {path} has PT_INTERP {info.interp}: it is dynamically linked",
            hint="link it with -static",
        )
    if info.dynamic:
        raise BuildError(
            f"{what} {path} has a dynamic section: it is not fully static",
            hint="link it with -static (not -static-pie)",
        )
    return info


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
        raise BuildError(
            f"{program}: dynamic section but no PT_INTERP (a shared library?)",
            hint="services must be executables",
        )
    loader = sysroot / info.interp.lstrip("/")
    missing: list[str] = []
    if not loader.exists():
        missing.append(f"{info.interp} (the loader)")
    else:
        files[info.interp.lstrip("/")] = loader.resolve().read_bytes()
    libs, seen, not_found = libraries([(program, info)], sysroot)
    files.update(libs)
    missing += not_found
    if missing:
        raise BuildError(
            f"{program}: libraries not found in the arm64 sysroot: {', '.join(missing)}",
            hint="link the program statically, or add the packages that provide "
            "them to toolchain/packages.py SYSROOT",
        )
    log(f"{program.name}: dynamic; bundled the loader and {len(seen)} libraries")
    return files


def libraries(
    elfs: list[tuple[Path, ElfInfo]], sysroot: Path, provided: frozenset[str] = frozenset()
) -> tuple[dict[str, bytes], set[str], list[str]]:
    """The DT_NEEDED libraries of `elfs`, recursively, from the arm64 sysroot, at
    /lib/aarch64-linux-gnu (the loader searches there first: one place for every library); but
    those named in `provided` (shipped beside them, found by their RPATH). Returns the files,
    the names seen and what is missing."""
    files: dict[str, bytes] = {}
    todo = [(path, n, info.rpath) for path, info in elfs for n in info.needed]
    seen: set[str] = set()
    missing: list[str] = []
    while todo:
        parent, name, rpath = todo.pop(0)
        if name in seen or name in provided:
            continue
        seen.add(name)
        found = _find_lib(name, sysroot, rpath)
        if found is None:
            missing.append(f"{name} (needed by {parent.name})")
            continue
        real = found.resolve()
        lib_info = require_aarch64(real, "library")
        files[f"lib/aarch64-linux-gnu/{name}"] = real.read_bytes()
        todo += [(real, n, lib_info.rpath) for n in lib_info.needed]
    return files, seen, missing
