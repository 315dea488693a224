"""The foundation, booted for real: build/init alone in an initramfs, on the Debian arm64 kernel.

No builder, no config: the smallest archive the kernel accepts (`/init` and `/dev/console`).
The init must come up as PID 1 on aarch64, mount the early file systems through the cffi
syscall layer, and end through reboot(2) — never through a kernel panic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.formats import bootfs, compress, cpio
from builder.qemu import harness

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-aarch64") is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]


def minimal_boot(folder: Path, init: bytes, toolchain, words: tuple[str, ...] = ()) -> Path:
    archive = cpio.write([cpio.File("init", init, 0o755), cpio.CharDev("dev/console", 5, 1)])
    bootfs.make_boot_folder(
        folder,
        {
            toolchain.vmlinuz.name: toolchain.vmlinuz,
            "initramfs.gz": compress.compress(archive, "gzip"),
            "config.txt": bootfs.config_txt(toolchain.vmlinuz.name, "initramfs.gz", ()).encode(),
            "cmdline.txt": bootfs.cmdline_txt(words).encode(),
        },
    )
    return folder


def test_init_alone_mounts_through_cffi_and_powers_off_through_reboot(
    built_init, toolchain, tmp_path
) -> None:
    # No /etc/pinit.json: the init reports it and applies the failure policy from the cmdline.
    boot = minimal_boot(
        tmp_path / "boot",
        built_init.read_bytes(),
        toolchain,
        ("pinit.on_failure=poweroff", "pinit.failure_delay=0"),
    )
    with harness.plan(boot, "virt") as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on aarch64",
                "pinit: mounted /proc",
                "pinit: mounted /sys",
                "pinit: mounted /dev",
                "pinit: FATAL: ",
                "pinit: powering off",
                "reboot: Power down",
            ],
            timeout=30,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-20:])
    fatal = next(line for line in result.lines if "FATAL" in line)
    assert "/etc/pinit.json" in fatal


def test_python_runtime_exiting_as_pid1_reboots_instead_of_panicking(toolchain, tmp_path) -> None:
    """A compiled program that simply ends as PID 1: the C guard in the binary must catch it."""
    from builder.python.compile import compile_python

    script = tmp_path / "ends.py"
    script.write_text('print("PROGRAM-RAN", flush=True)\nraise SystemExit(3)\n')
    binary = compile_python(
        script, tmp_path / "ends", toolchain, name="ends", work=tmp_path / "nuitka"
    )
    boot = minimal_boot(tmp_path / "boot", binary.read_bytes(), toolchain)
    with harness.plan(boot, "virt") as plan:
        result = harness.run(
            plan,
            expect=[
                "PROGRAM-RAN",
                "pinit: FATAL: the Python runtime ended (exit)",
                "reboot: Restarting system",
            ],
            timeout=40,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-20:])
