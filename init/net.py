"""Bring up an interface (lo at boot, the network's card), without ip(8): two ioctls on a socket
with a struct ifreq.

The kernel gives `lo` the address 127.0.0.1/8 by itself once it is up.
"""

from __future__ import annotations

import struct

from init.kernel import Kernel

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# struct ifreq: char ifr_name[16]; then a union whose largest member (struct ifmap) makes the
# whole struct 40 bytes on 64-bit Linux; the flags are a short at the union's start.
IFREQ = struct.Struct("16sh22x")


def link_up(kernel: Kernel, name: str = "lo") -> bool:
    """Set IFF_UP on `name`; returns False if it was up already (then nothing is written)."""
    fd = kernel.socket()
    try:
        reply = kernel.ioctl(fd, SIOCGIFFLAGS, IFREQ.pack(name.encode(), 0))
        _, flags = IFREQ.unpack(reply)
        if flags & IFF_UP:
            return False
        kernel.ioctl(fd, SIOCSIFFLAGS, IFREQ.pack(name.encode(), flags | IFF_UP))
        return True
    finally:
        kernel.close(fd)
