"""Power cuts, for real: the machine is killed while PID 1 writes a service's log and saves the
clock on the data partition, then the card boots again. The log has whole lines only, up to
about the last synced batch; the saved time is a whole number, never older than the first
boot's start."""

from __future__ import annotations

import re
import shutil

import pytest

from builder.image import build
from builder.qemu import harness as qemu

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(qemu.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
POWER_DOWN = "reboot: Power down"
# First boot: marks the card (synced), then prints numbered lines of one length for ever.
# Second boot: after its first line has reached the log (PID 1 opens it then), checks it.
CUTTER = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static void check(const char *path, int *lines, int *torn, int *last) {
    char line[512];
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        int n;
        if (strncmp(line, "CUT second", 10) == 0 || strncmp(line, "CUTTER", 6) == 0) continue;
        (*lines)++;
        if (strlen(line) != 92 || sscanf(line, "CUT %6d ", &n) != 1) (*torn)++;
        else *last = n;
    }
    if (f) fclose(f);
}
int main(void) {
    if (access("/data/cut-ran", F_OK) == 0) {
        char saved[64] = {0};
        int lines = 0, torn = 0, last = -1;
        printf("CUT second run\n"); fflush(stdout);
        sleep(1);
        check("/data/log/cutter.log.1", &lines, &torn, &last);
        check("/data/log/cutter.log", &lines, &torn, &last);
        int fd = open("/data/.pinit-time", O_RDONLY);
        if (fd >= 0) { read(fd, saved, sizeof saved - 1); close(fd); }
        saved[strcspn(saved, "\n")] = 0;
        printf("CUT checked: lines=%d torn=%d last=%d saved=[%s]\n", lines, torn, last, saved);
        fflush(stdout);
        kill(1, SIGUSR2);
        for (;;) pause();
    }
    int fd = open("/data/cut-ran", O_WRONLY | O_CREAT, 0644);
    fsync(fd); close(fd);
    fd = open("/data", O_RDONLY | O_DIRECTORY);
    fsync(fd); close(fd);
    printf("CUTTER clock %ld\n", (long)time(NULL));
    for (int i = 0;; i++) {
        printf("CUT %06d %080d\n", i, 0);
        if (i % 50 == 49) { fflush(stdout); usleep(20000); }
    }
}
"""


def test_a_power_cut_while_logging_and_saving_the_clock(
    cc, built_init, toolchain, tmp_path
) -> None:
    (tmp_path / "pinit.toml").write_text(f"""
[kernel]
modules = ["virtio_mmio", "virtio_blk", "crc32c", "ext4"]
[data]
size = "16MiB"
[time]
servers = ["10.99.0.1"]
save_interval = 1
[[service]]
name = "cutter"
exec = "{cc("cutter", CUTTER)}"
after = ["data"]
log_to_data = true
log_max = "64KiB"
restart = "never"
""")
    card = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).image
    with qemu.plan(card) as plan:  # ends by killing qemu: the power cut
        first = qemu.run(
            plan,
            expect=["CUTTER clock", "CUT 000600"],
            fail=["FATAL"],
            timeout=90,
            log=tmp_path / "first.log",
        )
    assert first.ok, f"{first.reason}\n" + "\n".join(first.lines[-30:])
    started = int(next(ln for ln in first.lines if ln.startswith("CUTTER clock")).split()[-1])
    with qemu.plan(card) as plan:
        second = qemu.run(
            plan,
            expect=["CUT checked: ", "pinit: unmounted /data", POWER_DOWN],
            fail=["FATAL", "cannot unmount"],
            timeout=90,
            log=tmp_path / "second.log",
        )
    assert second.ok, f"{second.reason}\n" + "\n".join(second.lines[-30:])
    checked = next(ln for ln in second.lines if ln.startswith("CUT checked: "))
    found = re.match(r"CUT checked: lines=(\d+) torn=(\d+) last=(-?\d+) saved=\[(\d*)\]$", checked)
    assert found, checked
    lines, torn, last, saved = found.groups()
    assert torn == "0", checked  # whole lines only
    assert int(last) >= 500, checked  # up to about the last synced batch
    assert saved and int(saved) >= started, checked  # a whole number, not older than the start
