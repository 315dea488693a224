"""SNTP (RFC 4330) as bytes: the 48-byte client request and the checks and arithmetic on the
server's answer. Pure functions; init/clock.py sends and receives them. A reply too short to
read raises SntpError and nothing else.
"""

from __future__ import annotations

import struct

from init.errors import Malformed

PORT = 123
NTP_EPOCH = 2208988800  # seconds from 1900-01-01 (NTP's era 0) to 1970-01-01
PACKET = struct.Struct("!BBbbII4sQQQQ")  # flags stratum poll precision delay dispersion refid
# reference originate receive transmit
CLIENT = 3
SERVER = 4
VERSION = 4


class SntpError(Malformed):
    """A reply shorter than an NTP packet."""


def to_ntp(seconds: float) -> int:
    """A 64-bit NTP timestamp (32.32 fixed point, era 0 wrapping in 2036 as RFC 4330 says)."""
    value = seconds + NTP_EPOCH
    return (int(value) & 0xFFFFFFFF) << 32 | int((value % 1) * (1 << 32))


def from_ntp(stamp: int) -> float:
    seconds = stamp >> 32
    if seconds < 0x80000000:
        seconds += 1 << 32  # era 1: from 2036-02-07 on (RFC 4330 section 3)
    return seconds - NTP_EPOCH + (stamp & 0xFFFFFFFF) / (1 << 32)


def request(transmit: float) -> bytes:
    """A client request whose transmit time the server echoes back as `originate`."""
    return PACKET.pack(VERSION << 3 | CLIENT, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, to_ntp(transmit))


def offset(reply: bytes, sent: float, received: float) -> tuple[float, float] | None:
    """(clock offset, round-trip delay) from the server's reply to a request sent at `sent`
    and received at `received` (both on this clock); None for a reply that is not the
    answer to it or says not to use the server (stratum 0, a kiss-o'-death; unsynchronised)."""
    if len(reply) < PACKET.size:
        raise SntpError(f"a {len(reply)}-byte reply (at least {PACKET.size})")
    flags, stratum, _, _, _, _, _, _, originate, receive, transmit = PACKET.unpack_from(reply)
    if flags & 0x7 != SERVER or flags >> 6 == 3 or stratum == 0 or transmit == 0:
        return None
    if originate != to_ntp(sent):
        return None  # not the answer to our request (or forged)
    t2, t3 = from_ntp(receive), from_ntp(transmit)
    return ((t2 - sent) + (t3 - received)) / 2, (received - sent) - (t3 - t2)
