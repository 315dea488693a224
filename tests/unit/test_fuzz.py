"""Bytes from outside never stop a source: every parser of network or device data raises its own
error for what it cannot read, and nothing else.

Each parser gets valid messages mutated (bytes flipped, cut, grown, a field set to 0 or 255) and
random bytes, from a fixed seed so that a failure repeats; the input that broke it is shown.
About 300,000 messages in all, in a few seconds.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

import pytest

from init import dhcp, dns, hotplug, rtnl, sntp
from init.errors import Malformed
from tests.unit.test_network import MAC, dns_reply, server_reply


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if how == 0 and data:  # a byte, anything
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif how == 1 and data:  # a byte at either end of its range
            data[min(at, len(data) - 1)] = rng.choice((0, 255, 0x7F, 0x80, 0xC0))
        elif how == 2:  # cut short
            del data[at:]
        elif how == 3:  # grown
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif how == 4 and data:  # a byte gone
            del data[min(at, len(data) - 1)]
        else:  # a header byte: lengths live there
            if data:
                data[rng.randrange(min(len(data), 40))] = rng.randrange(256)
    return bytes(data)


def fuzz(
    name: str,
    seeds: list[bytes],
    call: Callable[[bytes], object],
    error: type[Malformed],
    rounds: int,
) -> None:
    rng = random.Random(name)
    for i in range(rounds):
        data = (
            rng.randbytes(rng.randrange(600)) if i % 8 == 0 else mutate(rng, seeds[i % len(seeds)])
        )
        try:
            call(data)
        except error:
            pass
        except Exception as exc:  # the point: no other exception may leave a parser
            pytest.fail(f"{name}({data!r}) raised {type(exc).__name__}: {exc}")


def dhcp_packets() -> list[bytes]:
    request = dhcp.message(dhcp.DISCOVER, 99, MAC)
    return [server_reply(request, kind) for kind in (dhcp.OFFER, dhcp.ACK, dhcp.NAK)] + [
        server_reply(request, dhcp.ACK, extra=bytes([58, 4, 0, 0, 0, 9, 59, 4, 0, 0, 0, 15]))
    ]


def dhcp_client(packet: bytes) -> object:
    """What network.py does with each packet its socket hears."""
    payload = dhcp.udp_payload(packet)
    return dhcp.parse(payload, MAC) if payload is not None else None


def test_dhcp_is_fuzzed() -> None:
    fuzz("dhcp", dhcp_packets(), dhcp_client, dhcp.DhcpError, 80_000)


def test_dhcp_reads_the_dhcp_part_too() -> None:
    """Mutations of the DHCP message itself (not only of the headers around it)."""
    payloads = [p[28:] for p in dhcp_packets()]
    fuzz("dhcp.parse", payloads, lambda data: dhcp.parse(data, MAC), dhcp.DhcpError, 40_000)


def test_dns_is_fuzzed() -> None:
    q = dns.query("time.example", 0x1234)
    seeds = [
        dns_reply(q, b"\x0a\0\0\x01", b"\x0a\0\0\x02"),
        dns_reply(q, rcode=3),
        dns_reply(q, b"\x0a\0\0\x01"),
    ]
    fuzz("dns", seeds, lambda data: dns.addresses(data, 0x1234), dns.DnsError, 50_000)


def test_sntp_is_fuzzed() -> None:
    request = sntp.request(100.0)
    stamp = sntp.to_ntp(2_000_000_000.1)
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
        stamp,
        stamp,
    )
    fuzz("sntp", [reply], lambda data: sntp.offset(data, 100.0, 100.2), sntp.SntpError, 30_000)


def link_messages() -> list[bytes]:
    def link(kind: int, flags: int, name: bytes) -> bytes:
        body = rtnl.IFINFOMSG.pack(0, 1, 2, flags, 0) + rtnl.attr(rtnl.IFLA_IFNAME, name + b"\0")
        return rtnl.HEADER.pack(rtnl.HEADER.size + len(body), kind, 0, 0, 0) + body

    up = rtnl.IFF_UP | rtnl.IFF_LOWER_UP
    return [
        link(rtnl.RTM_NEWLINK, up, b"eth0"),
        link(rtnl.RTM_DELLINK, 0, b"eth0") + link(rtnl.RTM_NEWLINK, up, b"wlan0"),
        struct.pack("=IHHIIi", 36, rtnl.NLMSG_ERROR, 0, 6, 0, -17) + b"\0" * 16,
    ]


def netlink(data: bytes) -> object:
    """What network.py does with a datagram of link events or an ACK."""
    return [
        (rtnl.link_event(kind, body), rtnl.error_of(body), rtnl.attrs(body))
        for kind, _, body in rtnl.messages(data)
    ]


def test_netlink_is_fuzzed() -> None:
    fuzz("rtnl", link_messages(), netlink, rtnl.RtnlError, 50_000)


def test_uevents_are_fuzzed() -> None:
    seeds = [
        b"add@/devices/platform/x/block/sda/sda1\0ACTION=add\0DEVPATH=/devices/platform/x/"
        b"block/sda/sda1\0SUBSYSTEM=block\0DEVNAME=sda1\0DEVTYPE=partition\0SEQNUM=1234\0",
        b"remove@/devices/virtual/misc/x\0ACTION=remove\0DEVNAME=bus/usb/001/002\0",
        b"libudev\0\xfe\xed\xca\xfe",
    ]
    fuzz("uevent", seeds, hotplug.parse, hotplug.UeventError, 50_000)


def test_malformed_messages_raise_the_parsers_own_error() -> None:
    """The cases the fuzzing found first, named: a header length past the end of the packet."""
    good = dhcp_packets()[0]
    with pytest.raises(dhcp.DhcpError, match="IPv4 header length 60 in a 40-byte packet"):
        dhcp.udp_payload(b"\x4f" + good[1:40])
    with pytest.raises(dhcp.DhcpError, match="UDP length"):
        dhcp.udp_payload(good[:100])
    with pytest.raises(rtnl.RtnlError):
        rtnl.messages(link_messages()[0][:-4])
    with pytest.raises(hotplug.UeventError, match="not a name under /dev"):
        hotplug.parse(b"add@/x\0ACTION=add\0DEVNAME=../etc\0")
    assert isinstance(dhcp.DhcpError("x"), ValueError)
