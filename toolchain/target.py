"""The machines pinit builds for: one `Target` per Debian architecture.

Everything that differs between the 64-bit Pis and the 32-bit ones is named here once: Debian's
architecture (which packages), the GNU triplet (which cross tools, which multiarch folders), the
ELF machine and class a program for it has, the Debian kernel flavour, how the Pi firmware is
told to start it (config.txt's `arm_64bit`, the kernel file it loads without `kernel=`), and
the QEMU program that runs it. aarch64 is the default; the 32-bit ones are armhf (ARMv7, the
Pi 2 B: Debian's armmp kernel) and armel (ARMv5T userland on the ARMv6 Pi Zero, Zero W and 1:
Debian's rpi kernel).
"""

from __future__ import annotations

from dataclasses import dataclass

from hostkit.errors import BuildError

EM_ARM = 40
EM_AARCH64 = 183


@dataclass(frozen=True)
class Target:
    name: str  # pinit's name for it: "aarch64", "armhf", "armel"
    debian_arch: str  # arm64, armhf: which Debian packages
    triplet: str  # aarch64-linux-gnu: the cross tools' prefix, the multiarch folders
    elf_machine: int  # e_machine of its programs (EM_AARCH64, EM_ARM)
    elf_bits: int  # 64 or 32 (ELFCLASS64, ELFCLASS32)
    kernel_flavour: str  # Debian's kernel flavour: linux-image-<flavour>
    dtb_dir: str  # where that kernel package keeps the Pi device trees, under its dtb folder
    arm_64bit: bool  # config.txt's arm_64bit=1: the firmware starts the kernel in 64-bit mode
    default_kernel: str  # the kernel file the firmware loads when config.txt has no kernel=
    qemu: str  # the QEMU program that runs its boards
    cards: bool  # whether `invoke image` makes cards for it

    @property
    def kernel_meta(self) -> str:
        """Debian's metapackage that names the current kernel image package."""
        return f"linux-image-{self.kernel_flavour}"

    @property
    def cross(self) -> str:
        """The cross tools' prefix: aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc, …"""
        return f"{self.triplet}-"


AARCH64 = Target(
    name="aarch64",
    debian_arch="arm64",
    triplet="aarch64-linux-gnu",
    elf_machine=EM_AARCH64,
    elf_bits=64,
    kernel_flavour="arm64",
    dtb_dir="broadcom/",
    arm_64bit=True,
    default_kernel="kernel8.img",
    qemu="qemu-system-aarch64",
    cards=True,
)
ARMHF = Target(
    name="armhf",
    debian_arch="armhf",
    triplet="arm-linux-gnueabihf",
    elf_machine=EM_ARM,
    elf_bits=32,
    kernel_flavour="armmp",
    dtb_dir="",  # armmp keeps its dtbs flat: linux-image-<release>/bcm2836-rpi-2-b.dtb
    arm_64bit=False,
    default_kernel="kernel7.img",
    qemu="qemu-system-arm",
    cards=True,
)
ARMEL = Target(
    name="armel",
    debian_arch="armel",
    triplet="arm-linux-gnueabi",
    elf_machine=EM_ARM,
    elf_bits=32,
    kernel_flavour="rpi",  # Debian's kernel for exactly the ARMv6 Pis (BCM2835)
    dtb_dir="",
    arm_64bit=False,
    default_kernel="kernel.img",
    qemu="qemu-system-arm",
    cards=True,
)
DEFAULT = AARCH64
TARGETS = {t.name: t for t in (AARCH64, ARMHF, ARMEL)}


def target(name: str) -> Target:
    """The target called `name`, or a one-line error that lists them."""
    try:
        return TARGETS[name]
    except KeyError:
        raise BuildError(
            f"target {name!r}: pinit builds for none such",
            hint=f"expected one of {', '.join(TARGETS)}",
        ) from None
