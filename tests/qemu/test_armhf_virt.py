"""What QEMU's raspi2b has no device for, on the 32-bit init: a Pi 2 card (`board = "pi-2"`,
armhf) with `[network]`, `[time]` and `[data]` booted on -M virt with a cortex-a15 (machine
"virt32"), where Debian's armmp kernel finds a virtio NIC and disk. Coldplug loads their
drivers, the armhf e2fsck checks the data partition, DHCP gets a lease and SNTP the time from
the test's own LAN (a network namespace with a tap: nothing outside is reached), the clock is
stepped from 2001 to 2033, and a Python service that waits for all three sees them, then asks
PID 1 for a clean power-off."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import image
from builder.qemu import harness
from tests.qemu.conftest import target_init
from tests.qemu.lan import Lan
from toolchain.target import ARMHF

pytestmark = pytest.mark.qemu

SHOW = """\
import os
import signal
import time

print("SHOW32 up on", os.uname().machine, flush=True)
with open("/proc/net/route") as f:
    print("SHOW32 route", f.read().splitlines()[1].split()[:3], flush=True)
print("SHOW32 /data mounted:", os.path.ismount("/data"), flush=True)
print("SHOW32 clock", int(time.time()), flush=True)
with open("/data/kept", "a") as f:
    f.write("x")
os.kill(1, signal.SIGUSR2)
"""

TOML = """\
[image]
board = "pi-2"

[network]

[time]

[data]
size = "16M"

[[service]]
name = "show"
exec = "show.py"
after = ["network", "data", "time"]
restart = "never"
"""
SERVER_TIME = 2_000_000_000  # 2033-05-18 03:33:20 UTC: the LAN's SNTP (still a 32-bit time_t)


def test_a_pi_2_card_gets_its_network_and_data_on_virt32(tmp_path: Path) -> None:
    tc, init = target_init(ARMHF)
    (tmp_path / "show.py").write_text(SHOW)
    (tmp_path / "pinit.toml").write_text(TOML)
    built = image.build(tmp_path / "pinit.toml", tmp_path / "out", init, tc)
    log = tmp_path / "boot.log"
    with (
        Lan(tmp_path, time=SERVER_TIME) as lan,
        harness.plan(
            built.image,
            "virt32",
            nic=lan.nic,
            qemu_args=("-rtc", "base=2001-01-01T00:00:00"),
        ) as plan,
    ):
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on armv7l",
                "pinit: loaded module virtio_net (coldplug)",
                "pinit: LABEL=pinit-data: clean (e2fsck status 0)",
                "pinit: mounted /data from /dev/vda2 (ext4)",
                "pinit: network: eth0: lease 10.99.0.50/24 from 10.99.0.1",
                "pinit: time: stepped +",
                "SHOW32 up on armv7l",
                "SHOW32 route ['eth0', '00000000', '0100630A']",
                "SHOW32 /data mounted: True",
                "pinit: got SIGUSR2: poweroff",
                "reboot: Power down",
            ],
            fail=["Traceback", "FATAL"],
            timeout=180,
            netns=lan.netns,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"
    clock = next(line for line in result.lines if line.startswith("SHOW32 clock"))
    assert int(clock.split()[-1]) >= SERVER_TIME
