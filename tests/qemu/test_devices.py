"""Devices in real boots: modules loaded for the hardware that is there (coldplug) with nothing
listed to load, device permissions for a non-root service, and a data partition whose disk and
file system drivers nobody had to name."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from builder.image import build
from builder.qemu import harness

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
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


def test_coldplug_finds_the_rng_and_a_rule_lets_a_normal_user_read_it(
    cc, built_init, toolchain, tmp_path
) -> None:
    app = cc("rng", RNG_READER)
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
    with harness.plan(boot, qemu_args=("-device", "virtio-rng-device")) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: loaded module virtio_mmio (coldplug)",
                "pinit: loaded module virtio_rng (coldplug)",
                "pinit: /dev/hwrng: 0:990 640",
                "RNG uid=1000 read 16 bytes",
            ],
            fail=["FATAL"],
            timeout=60,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    assert not any(
        "pinit: loaded module" in line and "(coldplug)" not in line for line in result.lines
    ), "nothing was listed to load at boot"


def test_a_data_partition_needs_no_module_list(cc, built_init, toolchain, tmp_path) -> None:
    app = cc("writer", DATA_WRITER)
    (tmp_path / "pinit.toml").write_text(f"""
[data]
size = "16MiB"
[[service]]
name = "writer"
exec = "{app}"
""")
    card = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).image
    with harness.plan(card) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: loaded module virtio_blk (coldplug)",
                "pinit: loaded module ext4 (/data)",
                "pinit: mounted /data from",
                "DATA written 1",
                "pinit: unmounted /data",
                POWER_DOWN,
            ],
            fail=["FATAL"],
            timeout=60,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


STICK_READER = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int mounted(void) {
    char line[512];
    int found = 0;
    FILE *f = fopen("/proc/mounts", "r");
    while (f && fgets(line, sizeof line, f)) found |= strstr(line, " /media/STICK ") != NULL;
    if (f) fclose(f);
    return found;
}
int main(void) {
    char buf[64] = {0};
    printf("STICKWAIT\n"); fflush(stdout);
    for (int i = 0; i < 300; i++) {
        int fd = open("/media/STICK/hello.txt", O_RDONLY);
        if (fd >= 0) { read(fd, buf, sizeof buf - 1); close(fd); break; }
        usleep(100000);
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("STICK says %s\n", buf); fflush(stdout);
    for (int i = 0; i < 300 && access("/run/waiter-saw", F_OK) != 0; i++) usleep(100000);
    printf("STICK pull it now\n"); fflush(stdout);   /* both have seen it: the test pulls it */
    for (int i = 0; i < 300 && mounted(); i++) usleep(100000);
    printf("STICK gone, mounted=%d\n", mounted()); fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""


WAITER = r"""
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    printf("WAITER sees the stick: %d\n", access("/media/STICK/hello.txt", R_OK) == 0);
    fflush(stdout);
    close(open("/run/waiter-saw", O_WRONLY | O_CREAT, 0644));
    for (;;) pause();
}
"""


def test_a_usb_stick_plugged_in_is_mounted_read_and_unmounted_when_pulled(
    cc, built_init, toolchain, tmp_path
) -> None:
    """qemu-xhci at boot (coldplug), a FAT stick hot-plugged through QEMU's monitor while the
    service waits: its USB, SCSI and FAT modules load on demand and it is mounted by label; a
    second service waits for the mount point (wait_for) and starts once it is there."""
    app = cc("stick", STICK_READER)
    waiter = cc("waiter", WAITER)
    stick = tmp_path / "stick.img"
    subprocess.run(
        ["mkfs.vfat", "-n", "STICK", "-C", str(stick), "8192"], check=True, capture_output=True
    )
    (tmp_path / "hello.txt").write_text("hello from the stick\n")
    subprocess.run(
        ["mcopy", "-i", str(stick), str(tmp_path / "hello.txt"), "::hello.txt"], check=True
    )
    (tmp_path / "pinit.toml").write_text(f"""
[init]
automount = "/media"
[kernel]
available = ["xhci_pci", "usb_storage", "sd_mod", "vfat", "nls_cp437", "nls_ascii"]
[[service]]
name = "stick"
exec = "{app}"
wait_for = ["/sys/bus/pci/drivers/xhci_hcd"]  # coldplug goes on beside an early service
[[service]]
name = "waiter"
exec = "{waiter}"
wait_for = ["/media/STICK"]
""")
    boot = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).boot
    drive = str(stick).replace(",", ",,")
    with harness.plan(
        boot,
        qemu_args=(
            "-device",
            "qemu-xhci,id=xhci",
            "-drive",
            f"if=none,id=stick,format=raw,file={drive}",
        ),
    ) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: loaded module xhci_pci (coldplug)",
                "STICKWAIT",
                "pinit: loaded module usb_storage (hotplug)",
                "pinit: mounted /media/STICK from /dev/sda (vfat)",
                "pinit: starting waiter",
                "STICK pull it now",
                "pinit: unmounted /media/STICK (/dev/sda removed)",
                "STICK gone, mounted=0",
                POWER_DOWN,
            ],
            fail=["FATAL"],
            timeout=90,
            log=tmp_path / "console.log",
            monitor=[
                ("STICKWAIT", "device_add usb-storage,bus=xhci.0,drive=stick,id=stick"),
                ("STICK pull it now", "device_del stick"),
            ],
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    assert "STICK says hello from the stick" in result.lines
    assert "WAITER sees the stick: 1" in result.lines


MOUNTER = r"""
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    mkdir("/mnt", 0755);
    int ok = mount("/dev/vda", "/mnt", "vfat", MS_RDONLY, NULL) == 0;
    printf("MOUNTER vfat mounted=%d %s readable=%d\n", ok, ok ? "" : strerror(errno),
           access("/mnt/hello.txt", R_OK) == 0);
    fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""


def test_the_kernels_own_module_requests_are_served(cc, built_init, toolchain, tmp_path) -> None:
    """A service mounts a FAT disk; nobody loaded vfat: the kernel asks /sbin/modprobe (the one
    binary by that name) for fs-vfat and the code pages, and gets them from the shipped ones."""
    app = cc("mounter", MOUNTER)
    disk = tmp_path / "fat.img"
    subprocess.run(["mkfs.vfat", "-C", str(disk), "4096"], check=True, capture_output=True)
    (tmp_path / "hello.txt").write_text("hi\n")
    subprocess.run(
        ["mcopy", "-i", str(disk), str(tmp_path / "hello.txt"), "::hello.txt"], check=True
    )
    (tmp_path / "pinit.toml").write_text(f"""
[kernel]
available = ["virtio_mmio", "virtio_blk", "vfat", "nls_cp437", "nls_ascii"]
[[service]]
name = "mounter"
exec = "{app}"
wait_for = ["/dev/vda"]  # found by coldplug, which goes on beside an early service
""")
    boot = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).boot
    drive = str(disk).replace(",", ",,")
    with harness.plan(
        boot,
        qemu_args=(
            "-drive",
            f"if=none,id=d1,format=raw,file={drive}",
            "-device",
            "virtio-blk-device,drive=d1",
        ),
    ) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: loaded module virtio_blk (coldplug)",
                "pinit: loaded module vfat (requested by the kernel)",
                "MOUNTER vfat mounted=1  readable=1",
                POWER_DOWN,
            ],
            fail=["FATAL"],
            timeout=60,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
