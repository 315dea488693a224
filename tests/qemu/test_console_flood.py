"""A console that comes with a module and a flood of service output, with a real watchdog
(i6300esb, 3 s): PID 1's console is a virtio port (vport0p1; virtio_console is a module, so the
console is opened after the modules, and the port allows one opener, so PID 1's fd 1 itself is
made non-blocking). The test reads the port's socket not at all for 8 s, then at a serial
line's 11 KB/s. No watchdog reset; the restarts and a clean power-off come on time; the console
says what PID 1 dropped when the port answered EAGAIN. QEMU 7.2 discards much of what a guest
sends to a port whose socket is full, so a stalled reader seldom stops the guest for long here:
tests/unit/test_console.py covers a console that takes nothing at all (PID 1 never waits)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

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
HEADERS = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_BOOTTIME, &t); return t.tv_sec + t.tv_nsec / 1e9;
}
"""
# Runs 1-4: 1 MB of output as fast as the pipe takes it, then exit 1 (restarted after 1 s);
# run 5 says so and exits 125 (no restart): the console can drain then.
FLOOD = (
    HEADERS
    + r"""
int main(void) {
    int con = open("/dev/ttyAMA0", O_WRONLY), runs = 0;
    FILE *f = fopen("/run/flood-runs", "r");
    if (f) { fscanf(f, "%d", &runs); fclose(f); }
    f = fopen("/run/flood-runs", "w"); fprintf(f, "%d", ++runs); fclose(f);
    if (runs > 4) { dprintf(con, "FLOOD done\n"); return 125; }
    dprintf(con, "FLOOD run at %.2f\n", now());
    char line[101]; memset(line, 'f', 99); line[99] = '\n'; line[100] = 0;
    for (int i = 0; i < 10000; i++) fputs(line, stdout);
    fflush(stdout);
    sleep(1);
    return 1;
}
"""
)
STOPPER = (
    HEADERS
    + r"""
int main(void) {
    int con = open("/dev/ttyAMA0", O_WRONLY);
    sleep(20);
    dprintf(con, "STOPPER asking poweroff at %.2f\n", now());
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""
)
STALL = 8.0  # seconds the console reads nothing
SLOW = 11_000  # then bytes per second: 115200 baud


class Reader(threading.Thread):
    """The far end of the virtio console: stopped, then slow, then fast."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.data = bytearray()
        self.times: list[tuple[float, int]] = []  # (seconds after connecting, bytes so far)
        self.done = threading.Event()

    def run(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(200):
            try:
                sock.connect(str(self.path))
                break
            except OSError:
                time.sleep(0.05)
        start = time.monotonic()
        sock.settimeout(0.1)
        while not self.done.is_set():
            age = time.monotonic() - start
            if age < STALL:
                time.sleep(0.1)
                continue
            try:
                chunk = sock.recv(SLOW // 10 if age < STALL + 5 else 65536)
            except (TimeoutError, OSError):
                continue
            if not chunk:
                break
            self.data += chunk
            self.times.append((round(age, 2), len(self.data)))
            if age < STALL + 5:
                time.sleep(0.1)
        sock.close()


def test_a_stalled_then_slow_console_holds_up_neither_watchdog_restarts_nor_shutdown(
    cc, built_init, toolchain, tmp_path
) -> None:
    (tmp_path / "pinit.toml").write_text(f"""
[init]
console = "vport0p1"
[kernel]
modules = ["virtio_mmio", "virtio_console", "i6300esb"]
[watchdog]
device = "/dev/watchdog"
timeout = 3
interval = 1
[[service]]
name = "flood"
exec = "{cc("flood", FLOOD)}"
restart = "always"
backoff_start = 1
backoff_max = 1
crash_loop = {{ count = 100 }}
[[service]]
name = "stopper"
exec = "{cc("stopper", STOPPER)}"
""")
    boot_dir = build(tmp_path / "pinit.toml", tmp_path / "out", built_init, toolchain).boot
    sock = tmp_path / "hvc.sock"
    reader = Reader(sock)
    reader.start()
    args = (
        "-device",
        "virtio-serial-device",
        "-chardev",
        f"socket,id=hvc,path={sock},server=on,wait=off",
        "-device",
        "virtserialport,chardev=hvc,name=console",
        "-device",
        "i6300esb",
        "-watchdog-action",
        "poweroff",
    )
    try:
        with qemu.plan(boot_dir, qemu_args=args) as plan:
            result = qemu.run(
                plan,
                expect=[
                    "FLOOD run at",
                    "FLOOD done",
                    "STOPPER asking poweroff",
                    "reboot: Power down",
                ],
                fail=["FATAL", "Kernel panic"],
                timeout=90,
                log=tmp_path / "console.log",
            )
    finally:
        reader.done.set()
        reader.join(5)
    (tmp_path / "hvc.log").write_bytes(reader.data)  # what the virtio console showed
    text = reader.data.decode(errors="replace")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:]) + text[-2000:]
    runs = [float(ln.split()[-1]) for ln in result.lines if ln.startswith("FLOOD run at")]
    # Each run takes about 1 s after its output, then 1 s to its restart: PID 1 copied every
    # run's output away (dropping what the console could not take) without waiting for it.
    gaps = [b - a for a, b in zip(runs, runs[1:], strict=False)]
    assert len(runs) == 4 and max(gaps) < 3.5, runs
    asked = float(next(ln for ln in result.lines if "STOPPER asking" in ln).split()[-1])
    down = qemu.kernel_time(result.lines, "reboot: Power down")
    assert down is not None and down - asked < 4.0, (asked, down)  # a clean shutdown, on time
    assert "pinit: console too slow: dropped " in text, text[-2000:]
