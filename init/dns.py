"""DNS (RFC 1035) as bytes, just enough to turn a host name (a time server's, an update URL's)
into IPv4 addresses: one A query, and the addresses in its answer. Pure functions;
init/resolve.py sends and receives.
"""

from __future__ import annotations

import struct

from init.errors import Malformed

PORT = 53
HEADER = struct.Struct("!HHHHHH")  # id, flags, questions, answers, authority, additional
RECORD = struct.Struct("!HHIH")  # type, class, ttl, data length
TYPE_A, CLASS_IN = 1, 1
RD = 0x0100  # recursion desired
NXDOMAIN = 3


class DnsError(Malformed):
    """A DNS answer whose names or records run past its end."""


def query(name: str, ident: int) -> bytes:
    labels = b"".join(
        bytes([len(part)]) + part.encode("ascii") for part in name.rstrip(".").split(".")
    )
    return (
        HEADER.pack(ident, RD, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", TYPE_A, CLASS_IN)
    )


def _skip_name(data: bytes, offset: int) -> int:
    """The offset after a (possibly compressed) name."""
    while offset < len(data):
        size = data[offset]
        if size & 0xC0 == 0xC0:
            return offset + 2  # a pointer ends the name
        if size == 0:
            return offset + 1
        offset += 1 + size
    raise DnsError(f"a name runs past the end ({len(data)} bytes)")


def addresses(reply: bytes, ident: int) -> tuple[bytes, ...] | None:
    """The A records of the answer to query `ident`: () for a name that does not exist or has
    none; None for a datagram that is not that answer (another id, a server error); DnsError
    for one that cannot be read.
    """
    if len(reply) < HEADER.size:
        raise DnsError(f"a {len(reply)}-byte answer (at least {HEADER.size})")
    rid, flags, questions, answers, _, _ = HEADER.unpack_from(reply)
    if rid != ident or not flags & 0x8000:
        return None
    if flags & 0xF == NXDOMAIN:
        return ()
    if flags & 0xF:
        return None  # SERVFAIL, REFUSED: ask again later
    offset = HEADER.size
    for _ in range(questions):
        offset = _skip_name(reply, offset) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(reply, offset)
        if offset + RECORD.size > len(reply):
            raise DnsError(f"a record runs past the end ({len(reply)} bytes)")
        kind, klass, _, size = RECORD.unpack_from(reply, offset)
        offset += RECORD.size
        if offset + size > len(reply):
            raise DnsError(f"a {size}-byte record runs past the end ({len(reply)} bytes)")
        if kind == TYPE_A and klass == CLASS_IN and size == 4:
            found.append(reply[offset : offset + 4])
        offset += size
    return tuple(found)
