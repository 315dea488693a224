"""What QEMU's raspi2b has no device for, on the 32-bit init: a Pi 2 card (`board = "pi-2"`,
armhf) with `[network]` and `[data]` booted on -M virt with a cortex-a15 (machine "virt32"),
where Debian's armmp kernel finds a virtio NIC and disk. Coldplug loads their drivers, the
armhf e2fsck checks the data partition, DHCP gets a lease from QEMU's own server
(restrict=on: nothing outside the guest is reached), and a Python service that waits for both
sees them, then asks PID 1 for a clean power-off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder import image
from builder.qemu import harness
from hostkit.errors import BuildError
from tests.conftest import in_ci
from toolchain.provision import ensure, ensure_kernel
from toolchain.target import ARMHF

pytestmark = pytest.mark.qemu

SHOW = """\
import os
import signal

print("SHOW32 up on", os.uname().machine, flush=True)
with open("/proc/net/route") as f:
    print("SHOW32 route", f.read().splitlines()[1].split()[:3], flush=True)
print("SHOW32 /data mounted:", os.path.ismount("/data"), flush=True)
with open("/data/kept", "a") as f:
    f.write("x")
os.kill(1, signal.SIGUSR2)
"""

TOML = """\
[image]
board = "pi-2"

[network]

[data]
size = "16M"

[[service]]
name = "show"
exec = "show.py"
after = ["network", "data"]
restart = "never"
"""


def test_a_pi_2_card_gets_its_network_and_data_on_virt32(tmp_path: Path) -> None:
    from builder.python.compile import build_init
    from hostkit.paths import BUILD
    from toolchain.provision import for_target

    if shutil.which(ARMHF.qemu) is None:
        if in_ci():
            pytest.fail(f"{ARMHF.qemu} is missing: `invoke toolchain` installs it")
        pytest.skip(f"{ARMHF.qemu} is not installed; run `invoke toolchain` as root")
    try:
        tc = ensure(host=False)
        ensure_kernel(ARMHF)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the toolchain trees are not provisioned ({exc}); run `invoke toolchain`")
    init = build_init(for_target(tc, ARMHF), BUILD / "init-armhf")
    (tmp_path / "show.py").write_text(SHOW)
    (tmp_path / "pinit.toml").write_text(TOML)
    built = image.build(tmp_path / "pinit.toml", tmp_path / "out", init, tc)
    log = tmp_path / "boot.log"
    with harness.plan(built.image, "virt32", nic=harness.NIC_USER_RESTRICTED) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: started as PID 1 on armv7l",
                "pinit: loaded module virtio_net (coldplug)",
                "pinit: LABEL=pinit-data: clean (e2fsck status 0)",
                "pinit: mounted /data from /dev/vda2 (ext4)",
                "pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s",
                "SHOW32 up on armv7l",
                "SHOW32 route ['eth0', '0002000A', '00000000']",
                "SHOW32 /data mounted: True",
                "pinit: got SIGUSR2: poweroff",
                "reboot: Power down",
            ],
            fail=["Traceback", "FATAL"],
            timeout=180,
            log=log,
        )
    assert result.ok, f"{result.reason}; console in {log}"
