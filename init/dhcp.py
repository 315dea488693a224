"""DHCPv4 messages (RFC 2131, 2132) as bytes, and the IPv4 + UDP headers around them: what the
client sends on its packet socket before it has an address, and what it accepts back. Pure
functions; the client that uses them is init/network.py. Bytes that cannot be read raise
DhcpError and nothing else: the packet socket hears every IPv4 packet on the LAN.
"""

from __future__ import annotations

import struct

from init import inet
from init.errors import Malformed

CLIENT_PORT, SERVER_PORT = 68, 67
MAGIC = b"\x63\x82\x53\x63"
BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7
NAMES = {
    DISCOVER: "DISCOVER",
    OFFER: "OFFER",
    REQUEST: "REQUEST",
    ACK: "ACK",
    NAK: "NAK",
    RELEASE: "RELEASE",
}
# Options (RFC 2132).
PAD, SUBNET, ROUTER, DNS, HOSTNAME, NTP, REQUESTED_IP, LEASE_TIME = 0, 1, 3, 6, 12, 42, 50, 51
MESSAGE_TYPE, SERVER_ID, PARAMETERS, MAX_SIZE, RENEWAL, REBINDING, CLIENT_ID, END = (
    53,
    54,
    55,
    57,
    58,
    59,
    61,
    255,
)
ASKED = bytes([SUBNET, ROUTER, DNS, NTP, LEASE_TIME, RENEWAL, REBINDING])
BROADCAST = b"\xff\xff\xff\xff"
ANY = b"\0\0\0\0"
# op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr(16) sname(64) file(128)
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
IP = struct.Struct("!BBHHHBBH4s4s")
UDP = struct.Struct("!HHHH")


class DhcpError(Malformed):
    """An IPv4, UDP or DHCP header or option that does not fit the packet it came in."""


class Lease:
    """What an OFFER or ACK says; times in seconds."""

    __slots__ = (
        "kind",
        "xid",
        "address",
        "server",
        "prefix",
        "router",
        "dns",
        "ntp",
        "lease",
        "renew",
        "rebind",
    )

    def __init__(
        self,
        kind: int,
        xid: int,
        address: bytes,
        server: bytes,
        prefix: int,
        router: bytes,
        dns: tuple[bytes, ...],
        ntp: tuple[bytes, ...],
        lease: int,
        renew: int,
        rebind: int,
    ) -> None:
        self.kind, self.xid, self.address, self.server = kind, xid, address, server
        self.prefix, self.router, self.dns, self.ntp = prefix, router, dns, ntp
        self.lease, self.renew, self.rebind = lease, renew, rebind


def options(pairs: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(MAGIC)
    for code, value in pairs:
        out += bytes([code, len(value)]) + value
    out.append(END)
    return bytes(out)


def message(
    kind: int,
    xid: int,
    mac: bytes,
    hostname: str = "",
    *,
    requested: bytes = b"",
    server: bytes = b"",
    ciaddr: bytes = ANY,
    secs: int = 0,
) -> bytes:
    """A client message. `ciaddr` is set when renewing (the client has the address); the
    broadcast flag asks for replies to the broadcast address while it has none."""
    flags = 0 if ciaddr != ANY else 0x8000
    head = HEADER.pack(
        BOOTREQUEST,
        1,
        6,
        0,
        xid,
        min(secs, 0xFFFF),
        flags,
        ciaddr,
        ANY,
        ANY,
        ANY,
        mac.ljust(16, b"\0"),
        b"",
        b"",
    )
    pairs = [(MESSAGE_TYPE, bytes([kind])), (CLIENT_ID, b"\x01" + mac)]
    if requested:
        pairs.append((REQUESTED_IP, requested))
    if server:
        pairs.append((SERVER_ID, server))
    if kind != RELEASE:
        pairs += [(MAX_SIZE, struct.pack("!H", 1500)), (PARAMETERS, ASKED)]
        if hostname:
            pairs.append((HOSTNAME, hostname.encode()[:63]))
    body = head + options(pairs)
    return body + b"\0" * max(0, 300 - len(body))  # BOOTP's minimum, which old servers want


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip_udp(payload: bytes, src: bytes = ANY, dst: bytes = BROADCAST) -> bytes:
    """An IPv4 packet carrying a UDP datagram from port 68 to 67 (UDP checksum 0: none)."""
    length = IP.size + UDP.size + len(payload)
    header = IP.pack(0x45, 0x10, length, 0, 0, 64, 17, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + UDP.pack(CLIENT_PORT, SERVER_PORT, UDP.size + len(payload), 0) + payload


def udp_payload(packet: bytes) -> bytes | None:
    """The DHCP part of an IPv4 packet for the client port, or None for any other packet.
    Neither the IPv4 header length nor the UDP length is trusted: past the end is DhcpError."""
    if len(packet) < IP.size or packet[0] >> 4 != 4 or packet[9] != 17:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if ihl < IP.size or ihl + UDP.size > len(packet):
        raise DhcpError(f"IPv4 header length {ihl} in a {len(packet)}-byte packet")
    if struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:
        return None  # a fragment: DHCP replies fit one packet
    _, dport, length, _ = UDP.unpack_from(packet, ihl)
    if dport != CLIENT_PORT:
        return None
    if length < UDP.size or ihl + length > len(packet):
        raise DhcpError(f"UDP length {length} in a {len(packet) - ihl}-byte datagram")
    return packet[ihl + UDP.size : ihl + length]


def parse_options(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == END:
            break
        if code == PAD:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        size = data[i + 1]
        # A long option may come in parts (RFC 3396): they are joined.
        found[code] = found.get(code, b"") + data[i + 2 : i + 2 + size]
        i += 2 + size
    return found


def _addresses(value: bytes) -> tuple[bytes, ...]:
    return tuple(value[i : i + 4] for i in range(0, len(value) - 3, 4))


def parse(payload: bytes, mac: bytes) -> Lease | None:
    """An OFFER, ACK or NAK for `mac`; None for anything else (other clients' replies too);
    DhcpError for what is no DHCP message at all."""
    if len(payload) < HEADER.size + 4:
        raise DhcpError(f"a {len(payload)}-byte DHCP message (at least {HEADER.size + 4})")
    if payload[HEADER.size : HEADER.size + 4] != MAGIC:
        raise DhcpError("no DHCP magic cookie")
    op, _, _, _, xid, _, _, _, yiaddr, _, _, chaddr, _, _ = HEADER.unpack_from(payload)
    if op != BOOTREPLY or chaddr[: len(mac)] != mac:
        return None
    opts = parse_options(payload[HEADER.size + 4 :])
    kind = (opts.get(MESSAGE_TYPE) or b"\0")[0]
    if kind not in (OFFER, ACK, NAK):
        return None
    raw_lease = opts.get(LEASE_TIME, b"\0\0\x0e\x10")  # absent: 1 hour
    if len(raw_lease) != 4:
        raise DhcpError(f"a {len(raw_lease)}-byte lease time option (4 bytes)")
    lease = int.from_bytes(raw_lease, "big")
    renew = int.from_bytes(opts[RENEWAL], "big") if len(opts.get(RENEWAL, b"")) == 4 else lease // 2
    rebind = (
        int.from_bytes(opts[REBINDING], "big")
        if len(opts.get(REBINDING, b"")) == 4
        else lease * 7 // 8
    )
    mask = opts.get(SUBNET, b"")
    prefix = inet.prefix_of(mask) if len(mask) == 4 else 24
    routers = _addresses(opts.get(ROUTER, b""))
    return Lease(
        kind,
        xid,
        yiaddr,
        opts.get(SERVER_ID, b"")[:4],
        prefix,
        routers[0] if routers else b"",
        _addresses(opts.get(DNS, b"")),
        _addresses(opts.get(NTP, b"")),
        lease,
        renew,
        rebind,
    )
