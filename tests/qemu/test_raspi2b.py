"""The first 32-bit target: a Pi 2 B (armhf) boot folder written by the builder's own pieces
(Debian's armmp kernel from the lock, the Pi 2's dtb and firmware, config.txt without
arm_64bit, its PL011 console) booted on QEMU's -M raspi2b through the harness, first with a
static C /init built by the armhf cross compiler, then with pinit's own Python init built for
armhf, and last the card `invoke image` makes for `[image] board = "pi-2"` (builder.image.build
with the armhf init and a static armhf C service)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import boards, image
from builder.formats import bootfs, compress, cpio
from builder.qemu import harness
from hostkit.errors import BuildError
from tests.conftest import in_ci
from toolchain.provision import ensure, ensure_kernel
from toolchain.target import ARMHF

pytestmark = pytest.mark.qemu

HELLO = r"""
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("Hello world! PID %d on %s\n", (int)getpid(), u.machine);
    fflush(stdout);
    reboot(RB_POWER_OFF); /* raspi2b only halts: the harness stops at the expected line */
    for (;;)
        pause();
}
"""


def need(program: str) -> None:
    if shutil.which(program) is None:
        if in_ci():
            pytest.fail(f"{program} is missing: `invoke toolchain` installs it")
        pytest.skip(f"{program} is not installed; run `invoke toolchain` as root")


@pytest.fixture(scope="module")
def pi2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(ARMHF.qemu)
    need(f"{ARMHF.cross}gcc")
    try:
        tc = ensure(host=False)
        kernel = ensure_kernel(ARMHF)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")
    work = tmp_path_factory.mktemp("raspi2b")
    (work / "hello.c").write_text(HELLO)
    init = work / "init"
    subprocess.run(
        [f"{ARMHF.cross}gcc", "-static", "-O2", "-o", init, work / "hello.c"], check=True
    )
    archive = cpio.write(
        [
            cpio.Dir("dev"),
            cpio.CharDev("dev/console", 5, 1),
            cpio.File.from_host("init", init, 0o755),
        ]
    )
    platform = image.kernel_platform(kernel, tc.firmware, ARMHF)
    files: dict[str, Path | bytes] = {
        name: path for name, path in platform.boot_files.items() if boards.keeps("pi-2", name)
    }
    files[platform.kernel_name] = platform.kernel
    files["initramfs.gz"] = compress.compress(archive, "gzip")
    files.update(image.boot_texts("pi-2", platform.kernel_name, "initramfs.gz"))
    bootfs.make_boot_folder(work / "boot", files)
    return work / "boot"


def test_the_pi_2_boot_folder_holds_only_what_the_pi_2_reads(pi2_folder: Path) -> None:
    names = sorted(p.name for p in pi2_folder.iterdir())
    assert "bcm2836-rpi-2-b.dtb" in names and "bootcode.bin" in names
    assert not [n for n in names if n.startswith(("bcm2837", "bcm2711", "start4", "fixup4"))]
    assert any(n.startswith("vmlinuz-") and n.endswith("-armmp") for n in names)
    assert "arm_64bit" not in (pi2_folder / "config.txt").read_text()


def test_raspi2b_boots_the_armhf_kernel_to_a_static_c_init(
    pi2_folder: Path, tmp_path: Path
) -> None:
    log = tmp_path / "boot.log"
    with harness.plan(pi2_folder, "raspi2b", ["loglevel=7"]) as plan:
        assert plan.dtb is not None and plan.dtb.name == "bcm2836-rpi-2-b.dtb"
        result = harness.run(
            plan,
            expect=["Machine model: Raspberry Pi 2 Model B", "Hello world! PID 1 on armv7l"],
            timeout=120,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"


CRASHER = r"""
#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
    struct utsname u;
    uname(&u);
    printf("Hello world! from a service on %s\n", u.machine);
    fflush(stdout);
    return 3; /* a crash: the supervisor restarts it */
}
"""


def test_invoke_image_makes_a_pi_2_card_whose_static_c_service_is_supervised(
    tmp_path: Path,
) -> None:
    """The real image build for `board = "pi-2"`: the board's target picks the armhf
    toolchain, Debian's armmp kernel and the armhf init; the card's boot folder boots on
    -M raspi2b, pinit's own Python init built for armhf (invoke build-init --target armhf) is
    PID 1: it starts the service, and restarts it after it exits with a failure."""
    from builder.python.compile import build_init
    from hostkit.paths import BUILD
    from toolchain.provision import for_target

    need(ARMHF.qemu)
    need(f"{ARMHF.cross}gcc")
    try:
        tc = ensure(host=False)
        ensure_kernel(ARMHF)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")
    init = build_init(for_target(tc, ARMHF), BUILD / "init-armhf")
    head = init.read_bytes()[:20]
    assert head[4] == 1 and int.from_bytes(head[18:20], "little") == ARMHF.elf_machine  # ELF32, ARM
    (tmp_path / "crasher.c").write_text(CRASHER)
    app = tmp_path / "crasher"
    subprocess.run(
        [f"{ARMHF.cross}gcc", "-static", "-O2", "-o", app, tmp_path / "crasher.c"], check=True
    )
    toml = tmp_path / "pinit.toml"
    toml.write_text(
        '[image]\nboard = "pi-2"\n'
        '[[service]]\nname = "app"\nexec = "crasher"\nrestart = "always"\nbackoff_start = 0.5\n'
    )
    built = image.build(toml, tmp_path / "out", init, tc)
    names = sorted(p.name for p in built.boot.iterdir())
    assert "bcm2836-rpi-2-b.dtb" in names and not [n for n in names if n.startswith("bcm2837")]
    log = tmp_path / "boot.log"
    with harness.plan(built.boot, "raspi2b") as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on armv7l",
                "pinit: mounted /dev",
                "Hello world! from a service on armv7l",
                "pinit: app exited with status 3",
                "Hello world! from a service on armv7l",
            ],
            timeout=240,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"
