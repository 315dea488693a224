"""rtnetlink messages (what ip(8) sends): an address with its lifetime, a default route, and
the link events the kernel multicasts. Pure functions over bytes; init/network.py sends them.
A message or attribute whose length does not fit what came raises RtnlError and nothing else.
"""

from __future__ import annotations

import struct

from init.errors import Malformed

NETLINK_ROUTE = 0
RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE = 24
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
AF_INET = 2
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_CACHEINFO = 1, 2, 4, 6
RTA_GATEWAY, RTA_OIF = 5, 4
IFLA_IFNAME = 3
RT_TABLE_MAIN, RTPROT_STATIC, RTPROT_DHCP = 254, 4, 16
RT_SCOPE_UNIVERSE, RTN_UNICAST = 0, 1
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
FOREVER = 0xFFFFFFFF
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
IFADDRMSG = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
IFINFOMSG = struct.Struct("=BxHiII")
ATTR = struct.Struct("=HH")


class RtnlError(Malformed):
    """A netlink message or attribute whose length does not fit the datagram."""


def attr(kind: int, value: bytes) -> bytes:
    raw = ATTR.pack(ATTR.size + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def request(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return (
        HEADER.pack(HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body
    )


def address(
    kind: int, seq: int, index: int, addr: bytes, prefix: int, lifetime: int = FOREVER
) -> bytes:
    """RTM_NEWADDR (replacing: a renewal only moves the lifetime) or RTM_DELADDR. With a
    lease's `lifetime` the kernel removes the address itself when the lease runs out."""
    host = int.from_bytes(addr, "big")
    broadcast = (host | ((1 << (32 - prefix)) - 1)).to_bytes(4, "big")
    body = (
        IFADDRMSG.pack(AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
        + attr(IFA_LOCAL, addr)
        + attr(IFA_ADDRESS, addr)
    )
    if kind == RTM_NEWADDR:
        body += attr(IFA_BROADCAST, broadcast) + attr(
            IFA_CACHEINFO, struct.pack("=IIII", lifetime, lifetime, 0, 0)
        )
    flags = NLM_F_CREATE | NLM_F_REPLACE if kind == RTM_NEWADDR else 0
    return request(kind, flags, seq, body)


def default_route(seq: int, index: int, gateway: bytes, protocol: int) -> bytes:
    body = (
        RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, protocol, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        + attr(RTA_GATEWAY, gateway)
        + attr(RTA_OIF, struct.pack("=I", index))
    )
    return request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, seq, body)


def messages(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, seq, body) of every message in a datagram."""
    out = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _, seq, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            raise RtnlError(f"a {length}-byte netlink message at byte {offset} of {len(data)}")
        out.append((kind, seq, data[offset + HEADER.size : offset + length]))
        offset += (length + 3) & ~3
    return out


def error_of(body: bytes) -> int:
    """The errno of an NLMSG_ERROR (0 = the ACK of a request that worked)."""
    return -struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0


def attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    offset = 0
    while offset + ATTR.size <= len(data):
        length, kind = ATTR.unpack_from(data, offset)
        if length < ATTR.size or offset + length > len(data):
            raise RtnlError(f"a {length}-byte attribute at byte {offset} of {len(data)}")
        found[kind & 0x3FFF] = data[offset + ATTR.size : offset + length]
        offset += (length + 3) & ~3
    return found


def link_event(kind: int, body: bytes) -> tuple[int, str, bool] | None:
    """(index, name, carrier) from RTM_NEWLINK (carrier False for RTM_DELLINK)."""
    if kind not in (RTM_NEWLINK, RTM_DELLINK):
        return None
    if len(body) < IFINFOMSG.size:
        raise RtnlError(f"a {len(body)}-byte link message (at least {IFINFOMSG.size})")
    _, _, index, flags, _ = IFINFOMSG.unpack_from(body)
    name = (
        attrs(body[IFINFOMSG.size :]).get(IFLA_IFNAME, b"").rstrip(b"\0").decode("utf-8", "replace")
    )
    carrier = kind == RTM_NEWLINK and bool(flags & IFF_UP) and bool(flags & IFF_LOWER_UP)
    return index, name, carrier
