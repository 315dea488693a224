"""builder/kbuild.py: pinit's own kernel module, really built against the locked kernel's
headers with Debian's kbuild and the cross compiler, and found by the module index."""

from __future__ import annotations

from builder import kbuild, kmod


def test_the_tryboot_module_is_built_for_the_locked_kernel_and_indexed(toolchain) -> None:
    folder = kbuild.ensure_own_modules(toolchain)
    ko = folder / "pinit_tryboot.ko"
    data = ko.read_bytes()
    assert data[:4] == b"\x7fELF" and data[18] == 183  # e_machine EM_AARCH64
    info = dict(kmod.modinfo(data, str(ko)))
    assert info["name"] == "pinit_tryboot"
    assert info["vermagic"].split()[0] == toolchain.kernel_release
    kernel_module = next(
        (toolchain.kernel / "lib/modules" / toolchain.kernel_release / "kernel/fs/fat").glob(
            "vfat.ko*"
        )
    )
    vfat = dict(kmod.modinfo(kmod.read_module(kernel_module), "vfat"))
    assert info["vermagic"] == vfat["vermagic"]  # the kernel loads it: the same build
    assert kmod.present(["pinit_tryboot"], toolchain.kernel, toolchain.kernel_release) == [
        "pinit_tryboot"
    ]
    mtime = ko.stat().st_mtime_ns
    kbuild.ensure_own_modules(toolchain)  # nothing changed: not built again
    assert ko.stat().st_mtime_ns == mtime
