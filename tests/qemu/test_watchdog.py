"""The hardware watchdog for real: -M virt with QEMU's i6300esb PCI watchdog (Debian's i6300esb
module) whose action is to power the board off. Armed and petted for more than three timeouts,
the board stays up; a clean shutdown disarms it; when PID 1 is frozen (a service stops it with
ptrace), nobody pets it and the board goes down within the timeout."""

from __future__ import annotations

import shutil
from pathlib import Path

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
WATCHDOG_QEMU = ("-device", "i6300esb", "-watchdog-action", "poweroff")
TIMEOUT = 3
CONFIG = f"""
[kernel]
modules = ["i6300esb"]
[watchdog]
device = "/dev/watchdog"
timeout = {TIMEOUT}
interval = 1
"""
# Both programs write straight to the console: a frozen PID 1 copies nobody's output.
WAITER = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    int con = open("/dev/console", O_WRONLY);
    for (int i = 1; i <= 4 * TIMEOUT; i++) { sleep(1); dprintf(con, "WAITER alive %d s\n", i); }
    kill(1, SIGUSR2);
    for (;;) pause();
}
""".replace("TIMEOUT", str(TIMEOUT))
FREEZER = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <unistd.h>
int main(void) {
    int con = open("/dev/console", O_WRONLY);
    sleep(2);
    if (ptrace(PTRACE_SEIZE, 1, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, 1, 0, 0) != 0)
        dprintf(con, "FREEZER failed: %s\n", strerror(errno));
    else
        dprintf(con, "FREEZER froze PID 1\n");
    for (;;) pause();
}
"""


def appliance(tmp: Path, program: Path, built_init, toolchain) -> Path:
    (tmp / "pinit.toml").write_text(
        CONFIG + f'[[service]]\nname = "{program.name}"\nexec = "{program}"\n'
    )
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).boot


def test_petted_for_four_timeouts_the_board_stays_up_and_shutdown_disarms(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = appliance(tmp_path, cc("waiter", WAITER), built_init, toolchain)
    with harness.plan(boot_dir, qemu_args=WATCHDOG_QEMU) as plan:
        result = harness.run(
            plan,
            expect=[
                f"pinit: watchdog /dev/watchdog armed ({TIMEOUT} s)",
                f"WAITER alive {4 * TIMEOUT} s",
                "pinit: watchdog disarmed",
                "reboot: Power down",
            ],
            fail=["FATAL"],
            timeout=90,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])


def test_a_frozen_pid1_is_reset_by_the_watchdog_within_its_timeout(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = appliance(tmp_path, cc("freezer", FREEZER), built_init, toolchain)
    with harness.plan(boot_dir, qemu_args=WATCHDOG_QEMU) as plan:
        result = harness.run(
            plan,
            expect=["FREEZER froze PID 1"],
            stop_after_expect=False,
            fail=["FATAL", "FREEZER failed"],
            timeout=90,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-30:])
    after = result.lines[
        result.lines.index(next(ln for ln in result.lines if "FREEZER froze PID 1" in ln)) :
    ]
    # Nobody shut down: the board went away (QEMU's watchdog action), not the kernel.
    assert not any("reboot:" in line or line.startswith("pinit: ") for line in after), after
    frozen_for = result.seconds - result.first_seen["FREEZER froze PID 1"]
    assert frozen_for < 2 * TIMEOUT + 5, f"the board stayed up {frozen_for:.1f} s after the freeze"
