"""The network and the clock: DHCP, SNTP and rtnetlink bytes, and the clients run against the
fake kernel with a virtual clock (retries, renewal, refusal, expiry, link events, clock steps)."""

from __future__ import annotations

import struct

import pytest

from hostkit.paths import REPO
from init import dhcp, dns, inet, rtnl, sntp
from init.clock import Clock, days_from_civil, rtc_raw, rtc_seconds, utc
from init.config import Config, Network, Time
from init.console import Log
from init.errors import ConfigError
from init.network import Interface, write_resolv
from init.timeline import Timeline
from init.validate import from_dict
from tests.fakes import FakeKernel

MAC = bytes.fromhex("525400123456")
SYS = {
    "/sys/class/net/eth0/type": b"1\n",
    "/sys/class/net/eth0/ifindex": b"2\n",
    "/sys/class/net/eth0/address": b"52:54:00:12:34:56\n",
    "/sys/class/net/eth0/carrier": b"1\n",
    "/sys/class/net/eth0/device/uevent": b"",
    "/sys/class/net/lo/type": b"772\n",
}


# --- bytes ----------------------------------------------------------------------------------


def test_a_discover_is_a_bootp_request_with_the_options_asked_for() -> None:
    msg = dhcp.message(dhcp.DISCOVER, 0x01020304, MAC, "probe")
    assert msg[:8] == b"\x01\x01\x06\x00\x01\x02\x03\x04"
    assert msg[10:12] == b"\x80\x00"  # broadcast: we have no address yet
    assert msg[28:34] == MAC and msg[236:240] == dhcp.MAGIC
    assert msg[240:243] == b"\x35\x01\x01"  # option 53: DISCOVER
    opts = dhcp.parse_options(msg[240:])
    assert opts[dhcp.HOSTNAME] == b"probe" and opts[dhcp.CLIENT_ID] == b"\x01" + MAC
    assert set(opts[dhcp.PARAMETERS]) >= {1, 3, 6, 42}
    assert len(msg) >= 300


def test_a_renewal_names_its_address_and_asks_no_broadcast() -> None:
    msg = dhcp.message(dhcp.REQUEST, 7, MAC, ciaddr=b"\x0a\x00\x02\x0f")
    assert msg[10:12] == b"\0\0" and msg[12:16] == b"\x0a\x00\x02\x0f"
    opts = dhcp.parse_options(msg[240:])
    assert dhcp.REQUESTED_IP not in opts and dhcp.SERVER_ID not in opts  # RFC 2131 4.3.2


def test_ip_header_checksum_is_the_internet_checksum() -> None:
    packet = dhcp.ip_udp(b"x" * 10)
    assert dhcp.checksum(packet[:20]) == 0  # a valid header sums to 0xffff
    assert packet[9] == 17 and packet[16:20] == dhcp.BROADCAST
    assert struct.unpack("!HH", packet[20:24]) == (68, 67)


def server_reply(
    request: bytes, kind: int, lease: int = 20, address: str = "10.0.2.15", extra: bytes = b""
) -> bytes:
    """What a server sends back: an IPv4 + UDP packet to port 68 (built here, not by init)."""
    head = struct.pack(
        "!BBBB4sHH4s4s4s4s16s64s128s",
        2,
        1,
        6,
        0,
        request[4:8],
        0,
        0,
        b"\0" * 4,
        inet.pack(address),
        b"\0" * 4,
        b"\0" * 4,
        request[28:44],
        b"",
        b"",
    )
    body = (
        head
        + dhcp.MAGIC
        + bytes([53, 1, kind, 54, 4, 10, 0, 2, 2, 51, 4])
        + struct.pack("!I", lease)
        + bytes(
            [
                1,
                4,
                255,
                255,
                255,
                0,
                3,
                4,
                10,
                0,
                2,
                2,
                6,
                8,
                10,
                0,
                2,
                3,
                10,
                0,
                2,
                4,
                42,
                4,
                10,
                0,
                2,
                5,
            ]
        )
        + extra
        + b"\xff"
    )
    udp = struct.pack("!HHHH", 67, 68, 8 + len(body), 0) + body
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(udp),
            0,
            0,
            64,
            17,
            0,
            b"\x0a\x00\x02\x02",
            b"\xff" * 4,
        )
        + udp
    )


def test_an_offer_is_read_with_its_lease_and_servers() -> None:
    request = dhcp.message(dhcp.DISCOVER, 99, MAC)
    lease = dhcp.parse(dhcp.udp_payload(server_reply(request, dhcp.OFFER)) or b"", MAC)
    assert lease is not None and lease.kind == dhcp.OFFER and lease.xid == 99
    assert inet.text(lease.address) == "10.0.2.15" and lease.prefix == 24
    assert inet.text(lease.router) == "10.0.2.2" and lease.server == b"\x0a\x00\x02\x02"
    assert [inet.text(a) for a in lease.dns] == ["10.0.2.3", "10.0.2.4"]
    assert [inet.text(a) for a in lease.ntp] == ["10.0.2.5"]
    assert (lease.lease, lease.renew, lease.rebind) == (20, 10, 17)
    assert (
        dhcp.parse(dhcp.udp_payload(server_reply(request, dhcp.OFFER)) or b"", b"\x02" * 6) is None
    )  # another client's
    assert dhcp.udp_payload(dhcp.ip_udp(b"ours")) is None  # our own, to port 67


def test_sntp_offset_and_the_checks_on_a_reply() -> None:
    sent, received = 100.0, 100.2
    request = sntp.request(sent)
    assert len(request) == 48 and request[0] == 0x23
    t2 = t3 = 2_000_000_000.1
    reply = struct.pack(
        "!BBbbII4sQQQQ",
        0x24,
        1,
        0,
        0,
        0,
        0,
        b"TEST",
        0,
        struct.unpack("!Q", request[40:48])[0],
        sntp.to_ntp(t2),
        sntp.to_ntp(t3),
    )
    offset, delay = sntp.offset(reply, sent, received) or (0, 0)
    assert offset == pytest.approx(t2 - 100.1, abs=1e-6) and delay == pytest.approx(0.2)
    assert sntp.offset(reply, sent + 1, received) is None  # not our request
    assert sntp.offset(reply[:1] + b"\0" + reply[2:], sent, received) is None  # kiss-o'-death
    assert sntp.from_ntp(sntp.to_ntp(2_200_000_000.5)) == pytest.approx(2_200_000_000.5)  # 2039


def test_rtnetlink_address_and_route_messages() -> None:
    msg = rtnl.address(rtnl.RTM_NEWADDR, 5, 2, b"\x0a\x00\x02\x0f", 24, 20)
    length, kind, flags, seq, _ = rtnl.HEADER.unpack_from(msg)
    assert (length, kind, seq) == (len(msg), rtnl.RTM_NEWADDR, 5)
    assert flags == rtnl.NLM_F_REQUEST | rtnl.NLM_F_ACK | rtnl.NLM_F_CREATE | rtnl.NLM_F_REPLACE
    assert msg[16:24] == struct.pack("=BBBBI", 2, 24, 0, 0, 2)
    found = rtnl.attrs(msg[24:])
    assert found[rtnl.IFA_LOCAL] == b"\x0a\x00\x02\x0f"
    assert found[rtnl.IFA_BROADCAST] == b"\x0a\x00\x02\xff"
    assert struct.unpack("=II", found[rtnl.IFA_CACHEINFO][:8]) == (20, 20)  # the lease's life
    route = rtnl.default_route(6, 2, b"\x0a\x00\x02\x02", rtnl.RTPROT_DHCP)
    assert rtnl.attrs(route[28:])[rtnl.RTA_GATEWAY] == b"\x0a\x00\x02\x02"
    ack = struct.pack("=IHHIIi", 36, rtnl.NLMSG_ERROR, 0, 6, 0, -17) + route[:16]
    assert [(k, s, rtnl.error_of(b)) for k, s, b in rtnl.messages(ack)] == [(2, 6, 17)]


def test_rtc_time_and_calendar() -> None:
    assert days_from_civil(1970, 1, 1) == 0 and days_from_civil(2000, 3, 1) == 11017
    for seconds in (0, 951782400, 2_000_000_000, 4_102_444_799):
        assert rtc_seconds(rtc_raw(seconds)) == seconds
    assert utc(2_000_000_000) == "2033-05-18 03:33:20 UTC"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"network": [{"interface": "eth0", "address": "10.0.0.300/24"}]},
            "address with its prefix",
        ),
        ({"network": [{"interface": "a/b"}]}, "interface name"),
        (
            {"network": [{"interface": "eth0"}, {"interface": "eth0", "address": "10.0.0.2/24"}]},
            "another \\[network\\] names this interface",
        ),
        (
            {"network": [{"interface": "eth0", "dns": ["dns.example"]}]},
            "name servers are addresses",
        ),
        ({"network": [{"interface": "eth0", "gateway": "10.0.0.1"}]}, "goes with a static address"),
        ({"time": {"servers": ["not a name"]}}, "neither an IPv4 address nor a host name"),
        ({"time": {"servers": ["10.0.0.1"], "interval": 1}}, "at least 16"),
        ({"time": {"servers": ["time.example"]}}, "needs a name server"),
        (
            {
                "network": [{"interface": "eth0", "address": "10.0.0.2/24"}],
                "time": {"servers": ["time.example"]},
            },
            "needs a name server",
        ),
        (
            {
                "mode": "exec",
                "network": [{"interface": "eth0"}],
                "services": [{"name": "a", "exec": "/a"}],
            },
            'mode = "supervise"',
        ),
        ({"services": [{"name": "a", "exec": "/a", "after": ["time"]}]}, "needs time servers"),
        ({"services": [{"name": "a", "exec": "/a", "on_wait_timeout": "never"}]}, "one of start"),
    ],
)
def test_bad_network_and_time_settings_are_config_errors(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(table, "pinit.toml")


# --- the clients on the fake kernel ---------------------------------------------------------


def client(fake: FakeKernel, **network: object) -> Interface:
    interface = Interface(
        fake,
        "/",
        Network(**network),
        "probe",
        Log(fake),  # type: ignore[arg-type]
        Timeline(fake.clock),
    )
    interface.on_lease = lambda: write_resolv(fake, "/", [interface], Log(fake))  # type: ignore[arg-type]
    return interface


def run(fake: FakeKernel, source: object, until: float) -> None:
    """The supervisor's loop for one source alone, until virtual time `until`."""
    while fake.now < until:
        source.tick(fake.now)  # type: ignore[attr-defined]
        due = source.due()  # type: ignore[attr-defined]
        timeout = min(due - fake.now if due is not None else until, until - fake.now)
        for fd in fake.select(source.fds(), max(timeout, 0.0)):  # type: ignore[attr-defined]
            source.ready(fd)  # type: ignore[attr-defined]


def console(fake: FakeKernel) -> list[str]:
    return [line.split("console| pinit: ", 1)[1] for line in fake.transcript if "console|" in line]


def test_no_answer_is_retried_with_a_doubling_wait_then_a_lease_and_its_renewal() -> None:
    fake = FakeKernel(files=SYS)
    sent: list[int] = []

    def server(packet: bytes) -> list[tuple[float, bytes]]:
        request = (
            dhcp.udp_payload(packet[:9] + b"\x11" + packet[10:22] + b"\x00\x44" + packet[24:])
            or b""
        )
        kind = dhcp.parse_options(request[240:])[dhcp.MESSAGE_TYPE][0]
        sent.append(kind)
        if kind == dhcp.DISCOVER and sent.count(dhcp.DISCOVER) < 3:
            return []  # the first two go unanswered
        return [(0.01, server_reply(request, dhcp.OFFER if kind == dhcp.DISCOVER else dhcp.ACK))]

    fake.dhcp_server = server
    net = client(fake)
    net.start()
    run(fake, net, 30.0)
    lines = console(fake)
    assert lines[:4] == [
        "network: eth0 up; asking for an address (DHCP)",
        "network: eth0: no DHCP answer; asking again (waiting 4 s)",
        "network: eth0: no DHCP answer; asking again (waiting 8 s)",
        "network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 20 s "
        "(gateway 10.0.2.2, dns 10.0.2.3 10.0.2.4)",
    ]
    assert "network: eth0: lease 10.0.2.15 renewed for 20 s" in lines
    assert net.up and [inet.text(a) for a in net.servers] == ["10.0.2.5"]
    assert fake.files["/etc/resolv.conf"] == b"nameserver 10.0.2.3\nnameserver 10.0.2.4\n"
    renewal = next(line for line in fake.transcript if "DHCP 3 to 10.0.2.2" in line)
    assert float(renewal.split()[0]) == pytest.approx(7 + 10, abs=0.2)  # T1 after the ACK at 7 s
    assert not any(fd == "packet" for fd in fake.fds.values())  # closed while bound


def test_a_refused_renewal_starts_over_and_an_expired_lease_is_dropped() -> None:
    fake = FakeKernel(files=SYS)
    answers = {"renewals": 0}

    def server(packet: bytes) -> list[tuple[float, bytes]]:
        request = dhcp.udp_payload(packet[:22] + b"\x00\x44" + packet[24:]) or b""
        kind = dhcp.parse_options(request[240:])[dhcp.MESSAGE_TYPE][0]
        if request[12:16] != b"\0\0\0\0":
            answers["renewals"] += 1
            return [(0.01, server_reply(request, dhcp.NAK))]
        return [(0.01, server_reply(request, dhcp.OFFER if kind == dhcp.DISCOVER else dhcp.ACK))]

    fake.dhcp_server = server
    net = client(fake)
    net.start()
    run(fake, net, 12.0)
    assert "network: eth0: refused (NAK); asking again" in console(fake)
    assert answers["renewals"] == 1 and net.up
    fake.dhcp_server = lambda packet: []  # the server is gone: the lease runs out
    run(fake, net, 40.0)
    assert "network: eth0: lease 10.0.2.15 ran out; asking again" in console(fake)
    assert not net.up


def test_link_down_drops_the_lease_and_link_up_asks_again() -> None:
    fake = FakeKernel(files=SYS)
    fake.dhcp_server = lambda packet: [
        (
            0.01,
            server_reply(
                dhcp.udp_payload(packet[:22] + b"\x00\x44" + packet[24:]) or b"",
                dhcp.OFFER if packet[28 + 242] == dhcp.DISCOVER else dhcp.ACK,
                lease=3600,
            ),
        )
    ]
    net = client(fake)
    net.start()
    fake.link(3.0, 2, "eth0", carrier=False)
    fake.link(5.0, 2, "eth0", carrier=True)
    run(fake, net, 2.9)
    assert net.up
    run(fake, net, 4.0)
    assert not net.up and console(fake)[-1] == "network: eth0: link down"
    run(fake, net, 6.0)
    assert net.up and console(fake)[-3:] == [
        "network: eth0: link up",
        "network: eth0 up; asking for an address (DHCP)",
        "network: eth0: lease 10.0.2.15/24 from 10.0.2.2 for 3600 s "
        "(gateway 10.0.2.2, dns 10.0.2.3 10.0.2.4)",
    ]


def test_an_interface_that_is_not_there_is_logged_and_taken_when_it_appears() -> None:
    fake = FakeKernel(files={k: v for k, v in SYS.items() if "eth0" not in k})
    fake.dhcp_server = lambda packet: []
    net = client(fake, retry_max=4)
    net.start()
    assert console(fake) == ["network: no ethernet interface yet; the boot goes on without it"]
    fake.files.update(SYS)
    fake.paths.update(SYS)
    fake.link(2.0, 2, "eth0", carrier=True)
    run(fake, net, 20.0)
    assert console(fake)[1:4] == [
        "network: eth0 appeared",
        "network: eth0 up; asking for an address (DHCP)",
        "network: eth0: no DHCP answer; asking again (waiting 4 s)",
    ]
    assert (
        console(fake)[-1] == "network: eth0: no DHCP answer; asking again (waiting 4 s)"
    )  # capped


def test_a_static_address_is_set_without_dhcp() -> None:
    fake = FakeKernel(files=SYS)
    net = client(
        fake,
        interface="eth0",
        address="192.168.1.10/24",
        gateway="192.168.1.1",
        dns=("192.168.1.1",),
    )
    net.start()
    assert net.up and console(fake) == [
        "network: eth0: 192.168.1.10/24 (static, gateway 192.168.1.1)"
    ]
    assert [" ".join(ln.split()[1:]) for ln in fake.transcript if " netlink " in ln] == [
        f"netlink {rtnl.RTM_NEWADDR} seq 1",
        f"netlink {rtnl.RTM_NEWROUTE} seq 2",
    ]
    assert not any("packet" in line for line in fake.transcript)


def sntp_answer(at: float) -> object:
    def server(request: bytes) -> list[tuple[float, bytes]]:
        stamp = sntp.to_ntp(at)
        return [
            (
                0.05,
                struct.pack(
                    "!BBbbII4sQQQQ",
                    0x24,
                    1,
                    0,
                    0,
                    0,
                    0,
                    b"TEST",
                    0,
                    struct.unpack("!Q", request[40:48])[0],
                    stamp,
                    stamp,
                ),
            )
        ]

    return server


def test_the_clock_moves_forward_to_the_saved_time_then_sntp_steps_it_and_saves() -> None:
    fake = FakeKernel(files={"/data/.pinit-time": b"1800000000\n"})
    config = Config(time=Time(servers=("10.0.0.1",), rtc="", interval=60))
    clock = Clock(fake, "/", config, Log(fake), Timeline(fake.clock), "/data")  # type: ignore[arg-type]
    clock.restore()
    assert fake.wall_clock() == pytest.approx(1_800_000_000)
    fake.sntp_server = sntp_answer(2_000_000_000.0)  # type: ignore[assignment]
    run(fake, clock, 5.0)
    lines = console(fake)
    assert lines[0] == "time: 2027-01-15 08:00:00 UTC restored from /data/.pinit-time"
    assert lines[1].startswith("time: stepped +199999999.9") and "(from 10.0.0.1)" in lines[1]
    assert clock.synced and fake.wall_clock() > 2_000_000_000
    assert float(fake.files["/data/.pinit-time"]) >= 2_000_000_000
    # Synced again every `interval`; the clock runs true now, so the offset is slewed.
    fake.sntp_server = sntp_answer(2_000_000_000.0 + 60.05)  # type: ignore[assignment]
    run(fake, clock, 70.0)
    assert sum("udp_socket 10.0.0.1:123" in line for line in fake.transcript) == 2
    assert console(fake)[-1].startswith("time: synced (offset")


def test_the_time_is_saved_every_save_interval() -> None:
    fake = FakeKernel()
    fake.wall = 1_900_000_000.0
    config = Config(time=Time(servers=("dhcp",), rtc="", save_interval=100))
    clock = Clock(fake, "/", config, Log(fake), Timeline(fake.clock), "/data")  # type: ignore[arg-type]
    clock.restore()
    run(fake, clock, 250.0)
    saves = [line for line in fake.transcript if "rename /data/.pinit-time.tmp" in line]
    assert [round(float(line.split()[0])) for line in saves] == [101, 201]
    assert fake.files["/data/.pinit-time"] == b"1900000200\n"


def test_a_small_offset_is_slewed_and_a_saved_time_behind_the_clock_is_ignored() -> None:
    fake = FakeKernel(files={"/data/.pinit-time": b"100\n"})
    fake.wall = 1_900_000_000.0
    config = Config(time=Time(servers=("10.0.0.1",), rtc=""))
    clock = Clock(fake, "/", config, Log(fake), Timeline(fake.clock), "/data")  # type: ignore[arg-type]
    clock.restore()
    assert fake.wall_clock() == 1_900_000_000.0 and not console(fake)
    fake.sntp_server = sntp_answer(1_900_000_000.05 + 0.05)  # type: ignore[assignment]
    run(fake, clock, 1.5)
    assert console(fake)[0].startswith("time: synced (offset +0.0")
    assert any("slew_wall_clock" in line for line in fake.transcript)
    assert not any("set_wall_clock" in line for line in fake.transcript)


def test_a_boot_without_network_or_time_imports_none_of_it() -> None:
    """Read a config, set up a boot's objects: the network and clock code stays unimported."""
    import subprocess
    import sys

    code = (
        "import sys, init.main, init.boot, init.supervise, init.configfile; "
        'init.configfile.parse(b\'{"services": [{"name": "a", "exec": "/a"}]}\', \'x\'); '
        "print(sorted(m for m in sys.modules if m.split('.')[-1] in "
        "('network', 'clock', 'dhcp', 'sntp', 'rtnl', 'inet', 'wifi', 'nl80211', 'wpa')))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def dns_reply(query: bytes, *found: bytes, rcode: int = 0) -> bytes:
    head = struct.pack(
        "!HHHHHH", struct.unpack("!H", query[:2])[0], 0x8180 | rcode, 1, len(found), 0, 0
    )
    answers = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + a for a in found)
    return head + query[12:] + answers


def test_a_dns_query_and_its_answer() -> None:
    q = dns.query("time.example", 0x1234)
    assert q[:12] == b"\x12\x34\x01\x00\x00\x01" + b"\0" * 6
    assert q[12:] == b"\x04time\x07example\x00\x00\x01\x00\x01"
    assert dns.addresses(dns_reply(q, b"\x0a\0\0\x01", b"\x0a\0\0\x02"), 0x1234) == (
        b"\x0a\0\0\x01",
        b"\x0a\0\0\x02",
    )
    assert dns.addresses(dns_reply(q, rcode=3), 0x1234) == ()  # no such name
    assert dns.addresses(dns_reply(q, rcode=2), 0x1234) is None  # SERVFAIL: later
    assert dns.addresses(dns_reply(q, b"\x0a\0\0\x01"), 0x4321) is None  # not ours
    with pytest.raises(dns.DnsError, match="runs past the end"):
        dns.addresses(dns_reply(q, b"\x0a\0\0\x01")[:-2], 0x1234)  # truncated


def test_time_servers_by_name_are_resolved_once_the_network_names_a_name_server() -> None:
    fake = FakeKernel()
    config = Config(time=Time(servers=("nowhere.example", "time.example"), rtc=""))
    clock = Clock(fake, "/", config, Log(fake), Timeline(fake.clock))  # type: ignore[arg-type]
    clock.restore()
    run(fake, clock, 1.5)
    assert console(fake) == [
        "time: cannot resolve nowhere.example, time.example yet: no name server"
    ]
    sntp_server = sntp_answer(2_000_000_000.0)

    def server(request: bytes) -> list[tuple[float, bytes]]:
        if len(request) == 48:
            return sntp_server(request)  # type: ignore[operator]
        if b"nowhere" in request:
            return [(0.01, dns_reply(request, rcode=3))]
        return [(0.01, dns_reply(request, b"\x0a\0\0\x07"))]

    fake.sntp_server = server
    clock.add_servers((), (b"\x0a\0\0\x01",))
    run(fake, clock, 5.0)
    assert console(fake)[1:3] == [
        "time: cannot resolve nowhere.example: no such name; skipped",
        "time: time.example is 10.0.0.7",
    ]
    assert "(from 10.0.0.7)" in console(fake)[3] and clock.synced
    assert any("udp_socket 10.0.0.1:53" in line for line in fake.transcript)


# --- services that wait for the network or the clock ---------------------------------------


def supervise(services: list[dict], reached, stop_at: float = 6.0) -> tuple[str, list[str]]:
    import signal

    from init.supervise import Supervisor
    from tests.fakes import Run

    fake = FakeKernel()
    for s in services:
        fake.program(s["exec"], Run(None))
    fake.at(stop_at, signal=signal.SIGUSR2)
    config = from_dict(
        {
            "network": [{"interface": "eth0"}],
            "time": {"servers": ["10.0.0.1"]},
            "services": services,
        },
        "test",
    )
    supervisor = Supervisor(
        fake,
        config,
        Log(fake),
        fake.watch_signals((signal.SIGUSR2,)),  # type: ignore[arg-type]
        reached=lambda name: reached(name, fake.now),
    )
    action = supervisor.start_all() or supervisor.run()
    return action, [
        f"{float(line.split()[0]):.2f} {line.split('pinit: ', 1)[1]}"
        for line in fake.transcript
        if "console| pinit:" in line
    ]


def test_a_service_after_network_starts_when_it_is_up_and_its_dependents_after_it() -> None:
    action, lines = supervise(
        [
            {"name": "a", "exec": "/a", "after": ["network"]},
            {"name": "b", "exec": "/b", "after": ["a"]},
        ],
        lambda name, now: now >= 2.0,
    )
    assert action == "poweroff"
    assert [line.split(" ", 1)[1] for line in lines[:4]] == [
        "a: waiting for network (up to 30 s)",
        "b: waiting for a (up to 30 s)",
        "starting a (pid 100)",
        "starting b (pid 101)",
    ]
    assert 2.0 <= float(lines[2].split()[0]) <= 2.3  # looked at four times a second


def test_on_wait_timeout_skip_start_and_reboot() -> None:
    action, lines = supervise(
        [
            {
                "name": "a",
                "exec": "/a",
                "after": ["time"],
                "wait_timeout": 1,
                "on_wait_timeout": "skip",
            },
            {"name": "b", "exec": "/b", "after": ["a"], "wait_timeout": 2},
        ],
        lambda name, now: False,
    )
    texts = [line.split(" ", 1)[1] for line in lines]
    assert "a: time not there within 1 s; not starting it" in texts
    assert "b: a not there within 2 s; starting it anyway" in texts
    assert not any(t.startswith("starting a") for t in texts) and action == "poweroff"
    action, lines = supervise(
        [
            {
                "name": "a",
                "exec": "/a",
                "after": ["network"],
                "wait_timeout": 1,
                "on_wait_timeout": "reboot",
            }
        ],
        lambda name, now: False,
    )
    assert action == "reboot" and lines[-1].endswith("a: network not there within 1 s; reboot")


def test_a_failing_source_is_left_out_and_pid_1_goes_on() -> None:
    import signal

    from init.supervise import Supervisor

    class Broken:
        calls = 0

        def fds(self) -> list[int]:
            return []

        def due(self) -> float | None:
            return 0.0  # always due: a spin if it stayed in the loop

        def ready(self, fd: int) -> None:
            pass

        def tick(self, now: float) -> None:
            Broken.calls += 1
            raise IndexError("index out of range")

    fake = FakeKernel()
    fake.at(3.0, signal=signal.SIGUSR2)
    config = from_dict({}, "test")
    supervisor = Supervisor(
        fake,
        config,
        Log(fake),
        fake.watch_signals((signal.SIGUSR2,)),  # type: ignore[arg-type]
        sources=(Broken(),),
    )  # type: ignore[arg-type]
    assert supervisor.run() == "poweroff" and Broken.calls == 1
    assert console(fake)[0] == "broken: internal error, stopped: IndexError: index out of range"


def test_malformed_dhcp_packets_are_dropped_counted_and_the_renewal_still_succeeds() -> None:
    """Anyone on the LAN can send the client's packet socket anything: a header length past the
    packet's end once stopped the interface for good."""
    fake = FakeKernel(files=SYS)

    def server(packet: bytes) -> list[tuple[float, bytes]]:
        request = (
            dhcp.udp_payload(packet[:9] + b"\x11" + packet[10:22] + b"\x00\x44" + packet[24:])
            or b""
        )
        kind = dhcp.parse_options(request[240:])[dhcp.MESSAGE_TYPE][0]
        reply = server_reply(request, dhcp.OFFER if kind == dhcp.DISCOVER else dhcp.ACK)
        bad_ihl = b"\x4f" + reply[1:40]
        bad_udp = reply[:24] + b"\x05\xdc" + reply[26:]  # UDP length 1500
        return [(0.005, bad_ihl), (0.006, bad_udp), (0.01, reply)]

    fake.dhcp_server = server
    net = client(fake)
    net.start()
    run(fake, net, 25.0)
    lines = console(fake)
    assert (
        lines[1] == "network: eth0: DHCP: dropped a malformed message (IPv4 header length "
        "60 in a 40-byte packet); 1 so far"
    )
    assert lines[2].startswith(
        "network: eth0: DHCP: dropped a malformed message (UDP length 1500 in a "
    ) and lines[2].endswith("-byte datagram); 2 so far")
    assert "network: eth0: lease 10.0.2.15 renewed for 20 s" in lines
    dropped = [line for line in lines if "dropped" in line]
    assert [line.rsplit("; ", 1)[1] for line in dropped] == [
        "1 so far",
        "2 so far",
        "4 so far",
        "8 so far",
    ]  # 1, 2, 4, 8, …
    assert net.up


def test_a_short_sntp_reply_is_dropped_and_the_answer_after_it_is_taken() -> None:
    fake = FakeKernel()
    good = sntp_answer(2_000_000_000.0)

    def server(request: bytes) -> list[tuple[float, bytes]]:
        return [(0.01, b"\x24\x01"), *good(request)]  # type: ignore[operator]

    fake.sntp_server = server
    clock = Clock(
        fake,
        "/",
        Config(time=Time(servers=("10.0.2.5",), rtc="")),
        Log(fake),  # type: ignore[arg-type]
        Timeline(fake.clock),
    )
    clock.restore()
    run(fake, clock, 2.0)
    lines = console(fake)
    assert lines[0] == "time: dropped a malformed message (a 2-byte reply (at least 48)); 1 so far"
    assert clock.synced
