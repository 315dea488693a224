"""The network and the clock in real boots, against test hosts the test makes itself: QEMU's
own DHCP server (user networking with restrict=on: nothing outside the guest is reachable),
and a network namespace with a tap device where the test runs its own DHCP and SNTP servers
on private addresses. Never the machine's real network or resolvers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.image import build
from builder.qemu import harness
from tests.qemu.lan import Lan

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
POWER_DOWN = "reboot: Power down"
# Prints what the network left for services (the resolver's file, the default route, the
# clock), then powers off (SIGUSR2 to PID 1).
SHOW = """
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static void cat(const char *path) {
    char line[256];
    FILE *f = fopen(path, "r");
    if (!f) { printf("SHOW %s: missing\\n", path); return; }
    while (fgets(line, sizeof line, f)) printf("SHOW %s: %s", path, line);
    fclose(f);
}
int main(int argc, char **argv) {
    printf("SHOW clock %ld\\n", (long)time(NULL));
    cat("/etc/resolv.conf");
    cat("/proc/net/route");
    cat("/sys/class/rtc/rtc0/since_epoch");
    cat("/run/pinit/timeline.json");
    fflush(stdout);
    if (argc > 1) {   /* time for a lease renewal, or a second interface's first lease */
        sleep(atoi(argv[1]));
        cat("/etc/resolv.conf");
        fflush(stdout);
    }
    kill(1, SIGUSR2);
    for (;;) pause();
}
"""


def image(tmp: Path, toml: str, built_init, toolchain) -> Path:
    (tmp / "pinit.toml").write_text(toml)
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).boot


def build_card(tmp: Path, toml: str, built_init, toolchain) -> Path:
    (tmp / "pinit.toml").write_text(toml)
    return build(tmp / "pinit.toml", tmp / "out", built_init, toolchain).image


def test_dhcp_from_qemus_server_then_the_service_after_network(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[init]
hostname = "probe"

[network]

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
after = ["network"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    with harness.plan(boot_dir, nic=harness.NIC_USER_RESTRICTED) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: network: eth0 up; asking for an address (DHCP)",
                # restrict=on: qemu names no gateway and no name server (nothing is reachable).
                "pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s",
                "pinit: starting show",
                "SHOW /proc/net/route: eth0\t0002000A\t00000000",
                "pinit: network: eth0: released 10.0.2.15",
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback"],
            timeout=90,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    lease = next(i for i, line in enumerate(result.lines) if "lease 10.0.2.15" in line)
    started = next(i for i, line in enumerate(result.lines) if "starting show" in line)
    assert started > lease  # after = ["network"] held it back until then
    seen = result.first_seen
    took = (
        seen["pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s"]
        - seen["pinit: network: eth0 up; asking for an address (DHCP)"]
    )
    print(f"lease {took:.2f} s after the first DISCOVER")
    assert took < 5


RTC_2001 = ("-rtc", "base=2001-01-01T00:00:00")  # the guest's clock starts far in the past
SERVER_TIME = 2_000_000_000  # 2033-05-18 03:33:20 UTC: the test's SNTP


def clock_shown(lines: list[str]) -> int:
    return int(next(line for line in lines if line.startswith("SHOW clock")).split()[2])


def test_lease_renewal_sntp_step_and_a_clock_that_never_goes_back(
    cc, built_init, toolchain, tmp_path
) -> None:
    """A test-made LAN: DHCP with a 20 s lease (renewed after 10 s), the gateway, the name
    server and the time server (option 42) on 10.99.0.1; the clock stepped, then synced again
    16 s later. Then a second boot with no time server answering starts at or after the time
    saved at the first one's shutdown."""
    card = build_card(
        tmp_path,
        f"""
[init]
hostname = "probe"

[network]

[time]
interval = 16

[data]
size = "16MiB"

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
args = ["18"]
after = ["network", "time"]
wait_timeout = 5
restart = "never"
""",
        built_init,
        toolchain,
    )
    with (
        Lan(tmp_path, lease=20, time=SERVER_TIME) as lan,
        harness.plan(card, nic=lan.nic, qemu_args=RTC_2001) as plan,
    ):
        first = harness.run(
            plan,
            expect=[
                "pinit: network: eth0 up; asking for an address (DHCP)",
                "pinit: network: eth0: lease 10.99.0.50/24 from 10.99.0.1 for 20 s "
                "(gateway 10.99.0.1, dns 10.99.0.1)",
                "pinit: time: stepped +",
                "pinit: starting show",
                "SHOW /etc/resolv.conf: nameserver 10.99.0.1",
                "SHOW /proc/net/route: eth0\t00000000\t0100630A",
                "pinit: network: eth0: lease 10.99.0.50 renewed for 20 s",
                "pinit: time: synced (offset",  # 16 s later: a small offset, slewed (adjtime)
                "pinit: network: eth0: released 10.99.0.50",
                "pinit: unmounted /data",
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback", "cannot"],
            timeout=120,
            netns=lan.netns,
            log=tmp_path / "first.log",
        )
        served = lan.log()
    assert first.ok, f"{first.reason}\n" + "\n".join(first.lines[-40:])
    assert "to 2033-05-18 03:33:" in next(ln for ln in first.lines if "time: stepped" in ln)
    assert clock_shown(first.lines) >= SERVER_TIME
    rtc = next(ln for ln in first.lines if ln.startswith("SHOW /sys/class/rtc/rtc0/since_epoch"))
    assert int(rtc.split()[-1]) >= SERVER_TIME  # written after the sync
    timeline = " ".join(ln for ln in first.lines if "timeline.json" in ln)
    assert '"name": "dhcp eth0"' in timeline and '"name": "sntp 10.99.0.1"' in timeline
    assert any("DHCP ACK renew (hostname probe)" in line for line in served), served
    assert any("DHCP RELEASE" in line for line in served), served

    # No time server now (the LAN answers DHCP only): the clock starts from the saved time.
    with (
        Lan(tmp_path, lease=20, sntp=False) as lan,
        harness.plan(card, nic=lan.nic, qemu_args=RTC_2001) as plan,
    ):
        second = harness.run(
            plan,
            expect=[
                "pinit: time: 2033-05-18 03:3",
                "restored from /data/.pinit-time",
                "pinit: show: time not there within 5 s; starting it anyway",
                "SHOW clock",
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback", "time: stepped"],
            timeout=120,
            netns=lan.netns,
            log=tmp_path / "second.log",
        )
    assert second.ok, f"{second.reason}\n" + "\n".join(second.lines[-40:])
    assert clock_shown(second.lines) >= clock_shown(first.lines)


def test_a_static_address_and_time_servers_by_name(cc, built_init, toolchain, tmp_path) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[network]
interface = "eth0"
address = "10.99.0.60/24"
gateway = "10.99.0.1"
dns = ["10.99.0.1"]

[time]
servers = ["nowhere.test", "time.test"]   # names, asked of the LAN's name server

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
after = ["time"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    with (
        Lan(tmp_path, time=SERVER_TIME) as lan,
        harness.plan(boot_dir, nic=lan.nic, qemu_args=RTC_2001) as plan,
    ):
        result = harness.run(
            plan,
            expect=[
                "pinit: network: eth0: 10.99.0.60/24 (static, gateway 10.99.0.1)",
                "pinit: time: cannot resolve nowhere.test: no such name; skipped",
                "pinit: time: time.test is 10.99.0.1",
                "pinit: time: stepped +",
                "pinit: starting show",
                "SHOW /etc/resolv.conf: nameserver 10.99.0.1",
                "SHOW /proc/net/route: eth0\t00000000\t0100630A",
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback", "DHCP"],
            timeout=90,
            netns=lan.netns,
            log=tmp_path / "console.log",
        )
        served = lan.log()
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    assert clock_shown(result.lines) >= SERVER_TIME
    assert not any("DHCP" in line for line in served), served


def test_cable_out_and_in_again_gives_a_new_lease(cc, built_init, toolchain, tmp_path) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[network]

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
args = ["12"]
after = ["network"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    lease = "pinit: network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 86400 s"
    with harness.plan(boot_dir, nic=harness.NIC_USER_RESTRICTED) as plan:
        result = harness.run(
            plan,
            expect=[
                lease,
                "SHOW clock",
                "pinit: network: eth0: link down",
                "pinit: network: eth0: link up",
                lease,
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback"],
            timeout=90,
            log=tmp_path / "console.log",
            monitor=[
                ("SHOW clock", "set_link net0 off"),
                ("pinit: network: eth0: link down", "set_link net0 on"),
            ],
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])


def test_no_dhcp_answer_is_retried_with_backoff_and_the_boot_goes_on(
    cc, built_init, toolchain, tmp_path
) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[network]
retry_max = 8

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
args = ["16"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    with Lan(tmp_path, dhcp=False) as lan, harness.plan(boot_dir, nic=lan.nic) as plan:
        result = harness.run(
            plan,
            expect=[
                "pinit: network: eth0 up; asking for an address (DHCP)",
                "pinit: starting show",
                "pinit: network: eth0: no DHCP answer; asking again (waiting 4 s)",
                "pinit: network: eth0: no DHCP answer; asking again (waiting 8 s)",
                "pinit: network: eth0: no DHCP answer; asking again (waiting 8 s)",
                POWER_DOWN,
            ],
            also=["SHOW clock"],  # started early: it need not wait for the network
            fail=["FATAL", "Traceback", "lease"],
            timeout=90,
            netns=lan.netns,
            log=tmp_path / "console.log",
        )
        served = lan.log()
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    assert sum("DHCP ignored" in line for line in served) >= 4, served


def test_malformed_packets_during_a_renewal_are_dropped_and_the_renewal_succeeds(
    cc, built_init, toolchain, tmp_path
) -> None:
    """Before its ACK to the renewal the LAN sends the client an IPv4 header length past the
    packet's end and a UDP length past the datagram's, twice each: once, one such packet
    stopped the interface's DHCP for the rest of the boot."""
    boot_dir = image(
        tmp_path,
        f"""
[network]

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
args = ["14"]
after = ["network"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    dropped = "pinit: network: eth0: DHCP: dropped a malformed message ("
    with (
        Lan(tmp_path, lease=20, sntp=False, malformed=True) as lan,
        harness.plan(boot_dir, nic=lan.nic) as plan,
    ):
        result = harness.run(
            plan,
            expect=[
                "pinit: network: eth0: lease 10.99.0.50/24 from 10.99.0.1 for 20 s",
                dropped + "IPv4 header length 60 in a ",
                dropped + "UDP length 1500 in a ",
                "pinit: network: eth0: lease 10.99.0.50 renewed for 20 s",
                "pinit: network: eth0: released 10.99.0.50",
                POWER_DOWN,
            ],
            fail=["FATAL", "Traceback", "internal error"],
            timeout=90,
            netns=lan.netns,
            log=tmp_path / "console.log",
        )
        served = lan.log()
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    assert any("DHCP malformed frames sent" in line for line in served), served
    counts = [line.rsplit("; ", 1)[1] for line in result.lines if line.startswith(dropped)]
    assert counts[:3] == ["1 so far", "2 so far", "4 so far"], counts


def test_two_interfaces_each_with_its_own_lease(cc, built_init, toolchain, tmp_path) -> None:
    boot_dir = image(
        tmp_path,
        f"""
[[network]]
interface = "eth0"

[[network]]
interface = "eth1"

[[service]]
name = "show"
exec = "{cc("show", SHOW)}"
args = ["4"]
after = ["network"]
restart = "never"
""",
        built_init,
        toolchain,
    )
    second_card = (
        "-netdev",
        f"{harness.NIC_USER_RESTRICTED},id=net1",
        "-device",
        "virtio-net-device,netdev=net1",
    )
    with Lan(tmp_path) as lan, harness.plan(boot_dir, nic=lan.nic, qemu_args=second_card) as plan:
        result = harness.run(
            plan,
            expect=["SHOW clock", POWER_DOWN],
            fail=["FATAL", "Traceback"],
            timeout=90,
            netns=lan.netns,
            log=tmp_path / "console.log",
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    leases = sorted(
        line.split("pinit: network: ")[1].split(" from ")[0]
        for line in result.lines
        if ": lease " in line
    )
    assert len(leases) == 2 and {lease.split(": lease ")[1] for lease in leases} == {
        "10.0.2.15/24",
        "10.99.0.50/24",
    }, leases
    # The LAN's DHCP gives a name server, QEMU's (eth0) none; the service starts with the
    # first address, so it reads the file again once both leases are in.
    assert any("nameserver 10.99.0.1" in line for line in result.lines)
