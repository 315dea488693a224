"""IPv4 addresses as text and as the 4 bytes the wire and the kernel use (no `ipaddress`: it is
slow to import at boot and the init needs only this)."""

from __future__ import annotations


def pack(text: str) -> bytes:
    """b"\\xc0\\xa8\\x01\\x0a" from "192.168.1.10"; ValueError for anything else."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and len(p) <= 3 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    values = [int(p) for p in parts]
    if any(v > 255 for v in values):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return bytes(values)


def text(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def pack_prefix(value: str) -> tuple[bytes, int]:
    """(address, prefix length) from "192.168.1.10/24"; ValueError otherwise."""
    address, slash, length = value.partition("/")
    if not slash or not length.isdigit() or not length.isascii() or not 0 < int(length) <= 32:
        raise ValueError(f"not an address/prefix: {value!r}")
    return pack(address), int(length)


def prefix_of(mask: bytes) -> int:
    """24 from 255.255.255.0."""
    return bin(int.from_bytes(mask, "big")).count("1")


def same_net(a: bytes, b: bytes, prefix: int) -> bool:
    mask = ((1 << 32) - 1) ^ ((1 << (32 - prefix)) - 1)
    return int.from_bytes(a, "big") & mask == int.from_bytes(b, "big") & mask
