"""Devices in real boots: modules loaded for the hardware that is there (coldplug) with nothing
listed to load, device permissions for a non-root service, and a data partition whose disk and
file system drivers nobody had to name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder import qemu
from builder.image import build

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(shutil.which(qemu.QEMU) is None,
                                 reason="qemu-system-aarch64 is not installed (invoke toolchain)")]
POWER_DOWN = "reboot: Power down"
RNG_READER = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    unsigned char buf[16];
    int fd = open("/dev/hwrng", O_RDONLY);
    int n = fd >= 0 ? (int)read(fd, buf, sizeof buf) : -1;
    printf("RNG uid=%d read %d bytes\n", (int)getuid(), n);
    fflush(stdout);
    for (;;) pause();   /* a normal user cannot signal PID 1; the test stops the machine */
}
"""
DATA_WRITER = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int fd = open("/data/hello", O_WRONLY | O_CREAT, 0644);
    printf("DATA written %d\n", fd >= 0 && write(fd, "x", 1) == 1 && fsync(fd) == 0);
    fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""


def program(tmp: Path, name: str, source: str, toolchain) -> Path:
    (tmp / f"{name}.c").write_text(source)
    subprocess.run(["aarch64-linux-gnu-gcc", f"--sysroot={toolchain.sysroot}", "-static", "-O2",
                    "-o", str(tmp / name), str(tmp / f"{name}.c")], check=True)
    return tmp / name


def test_coldplug_finds_the_rng_and_a_rule_lets_a_normal_user_read_it(built_init, toolchain,
                                                                       tmp_path) -> None:
    app = program(tmp_path, "rng", RNG_READER, toolchain)
    (tmp_path / "pinit.toml").write_text(f"""
[kernel]
available = ["virtio_mmio", "virtio-rng"]
[[group]]
name = "rng"
gid = 990
[[user]]
name = "app"
uid = 1000
groups = ["rng"]
[[device]]
kernel = "hw_random"
group = "rng"
mode = "0640"
[[service]]
name = "rng"
exec = "{app}"
user = "app"
""")
    boot = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).boot
    with qemu.plan(boot, qemu_args=("-device", "virtio-rng-device")) as plan:
        result = qemu.run(plan, expect=["pinit: loaded module virtio_mmio (coldplug)",
                                        "pinit: loaded module virtio_rng (coldplug)",
                                        "pinit: /dev/hwrng: 0:990 640", "RNG uid=1000 read 16 bytes"],
                          fail=["FATAL"], timeout=60,
                          log=tmp_path / "console.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert not any("pinit: loaded module" in line and "(coldplug)" not in line
                   for line in result.lines), "nothing was listed to load at boot"


def test_a_data_partition_needs_no_module_list(built_init, toolchain, tmp_path) -> None:
    app = program(tmp_path, "writer", DATA_WRITER, toolchain)
    (tmp_path / "pinit.toml").write_text(f"""
[data]
size = "16MiB"
[[service]]
name = "writer"
exec = "{app}"
""")
    card = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).image
    with qemu.plan(card) as plan:
        result = qemu.run(plan, expect=["pinit: loaded module virtio_blk (coldplug)",
                                        "pinit: loaded module ext4 (/data)",
                                        "pinit: mounted /data from", "DATA written 1",
                                        "pinit: unmounted /data", POWER_DOWN],
                          fail=["FATAL"], timeout=60, log=tmp_path / "console.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
