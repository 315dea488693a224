"""DNS (RFC 1035) as bytes, just enough to turn a time server's name into IPv4 addresses: one
A query, and the addresses in its answer. Pure functions; init/clock.py sends and receives.
"""

from __future__ import annotations

import struct

PORT = 53
HEADER = struct.Struct("!HHHHHH")   # id, flags, questions, answers, authority, additional
TYPE_A, CLASS_IN = 1, 1
RD = 0x0100                         # recursion desired
NXDOMAIN = 3


def query(name: str, ident: int) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode("ascii")
                      for part in name.rstrip(".").split("."))
    return HEADER.pack(ident, RD, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", TYPE_A,
                                                                             CLASS_IN)


def _skip_name(data: bytes, offset: int) -> int:
    """The offset after a (possibly compressed) name."""
    while offset < len(data):
        size = data[offset]
        if size & 0xC0 == 0xC0:
            return offset + 2   # a pointer ends the name
        if size == 0:
            return offset + 1
        offset += 1 + size
    raise ValueError("truncated name")


def addresses(reply: bytes, ident: int) -> tuple[bytes, ...] | None:
    """The A records of the answer to query `ident`: () for a name that does not exist or has
    none; None for a datagram that is not that answer (another id, truncated, a server error).
    """
    try:
        rid, flags, questions, answers, _, _ = HEADER.unpack_from(reply)
        if rid != ident or not flags & 0x8000:
            return None
        if flags & 0xF == NXDOMAIN:
            return ()
        if flags & 0xF:
            return None   # SERVFAIL, REFUSED: ask again later
        offset = HEADER.size
        for _ in range(questions):
            offset = _skip_name(reply, offset) + 4
        found = []
        for _ in range(answers):
            offset = _skip_name(reply, offset)
            kind, klass, _, size = struct.unpack_from("!HHIH", reply, offset)
            offset += 10
            if offset + size > len(reply):
                raise ValueError("truncated answer")
            if kind == TYPE_A and klass == CLASS_IN and size == 4:
                found.append(reply[offset:offset + 4])
            offset += size
        return tuple(found)
    except (struct.error, ValueError):
        return None
