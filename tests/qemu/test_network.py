"""The network and the clock in real boots, against test hosts the test makes itself: QEMU's
own DHCP server (user networking with restrict=on: nothing outside the guest is reachable),
and a network namespace with a tap device where the test runs its own DHCP and SNTP servers
on private addresses. Never the machine's real network or resolvers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder import qemu
from builder.image import build

pytestmark = [pytest.mark.qemu,
              pytest.mark.skipif(shutil.which(qemu.QEMU) is None,
                                 reason="qemu-system-aarch64 is not installed (invoke toolchain)")]
POWER_DOWN = "reboot: Power down"
# Prints what the network left for services (the resolver's file, the default route, the
# clock), then powers off (SIGUSR2 to PID 1).
SHOW = """
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static void cat(const char *path) {
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f) { printf("SHOW %s: missing\\n", path); return; }
    while (fgets(line, sizeof line, f)) printf("SHOW %s: %s", path, line);
    fclose(f);
}
int main(void) {
    printf("SHOW clock %ld\\n", (long)time(NULL));
    cat("/etc/resolv.conf");
    cat("/proc/net/route");
    fflush(stdout);
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""


def image(tmp: Path, toml: str, built_init, toolchain) -> Path:
    (tmp / "pinit.toml").write_text(toml)
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).boot


def test_dhcp_from_qemus_server_then_the_service_after_network(cc, built_init, toolchain,
                                                              tmp_path) -> None:
    boot_dir = image(tmp_path, f"""
[init]
hostname = "probe"

[network]

[[service]]
name = "show"
exec = "{cc('show', SHOW)}"
after = ["network"]
restart = "never"
""", built_init, toolchain)
    with qemu.plan(boot_dir, nic=qemu.NIC_USER_RESTRICTED) as plan:
        result = qemu.run(plan, expect=[
            "pinit: network: eth0 up; asking for an address (DHCP)",
            # restrict=on: qemu names no gateway and no name server (nothing is reachable).
            "pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s",
            "pinit: starting show",
            "SHOW /proc/net/route: eth0\t0002000A\t00000000",
            "pinit: network: eth0: released 10.0.2.15", POWER_DOWN],
            fail=["FATAL", "Traceback"], timeout=90, log=tmp_path / "console.log")
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    lease = next(i for i, line in enumerate(result.lines) if "lease 10.0.2.15" in line)
    started = next(i for i, line in enumerate(result.lines) if "starting show" in line)
    assert started > lease   # after = ["network"] held it back until then
