"""Bring up an interface (lo at boot, the network's card), without ip(8): two ioctls on a socket
with a struct ifreq. And the two ways the network talks netlink: a request with its answer
(`ask`), and the events queued on a subscribed socket (`datagrams`).

The kernel gives `lo` the address 127.0.0.1/8 by itself once it is up.
"""

from __future__ import annotations

import _struct as struct  # not `struct`: one module less to import at boot
import errno

from init.kernel import Kernel

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _collections_abc import Callable, Iterator

NETLINK_READ = 65536  # a datagram of a netlink answer: a scan dump's batch with its elements

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# struct ifreq: char ifr_name[IFNAMSIZ]; then a union of the request's argument (the flags are
# a short at its start), as large as its largest member, struct ifmap: two unsigned longs, a
# short and three chars, padded to a long. Native sizes: 24 bytes on 64-bit Linux (ifreq: 40),
# 16 on 32-bit (armhf, armel: 32). The init's struct module computes them for the machine it
# runs on; tests/unit/test_abi.py checks the result against each target's C compiler.
IFNAMSIZ = 16
IFMAP = "LLHBBB0L"


def ifreq_format(calcsize: Callable[[str], int] = struct.calcsize) -> str:
    """struct ifreq's format (name, flags, the rest of the union) with `calcsize`'s native sizes:
    this machine's, or in a test another target's."""
    union = max(IFNAMSIZ, calcsize(IFMAP))  # ifru_newname and the sockaddrs are 16 bytes
    return f"{IFNAMSIZ}sh{union - 2}x"


IFREQ = struct.Struct(ifreq_format())


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


def ask(kernel: Kernel, protocol: int, message: bytes) -> list[tuple[int, bytes]]:
    """One netlink request on a socket of its own: (type, body) of every message of the answer
    before its ACK or NLMSG_DONE (a dump's entries). Raises OSError with the kernel's errno,
    or rtnl.RtnlError for an answer that does not parse."""
    from init import rtnl  # here: a boot without [network] brings lo up and needs no more

    fd = kernel.netlink_socket(protocol)
    out: list[tuple[int, bytes]] = []
    try:
        kernel.write(fd, message)
        while True:
            try:
                data = kernel.read(fd, NETLINK_READ)
            except BlockingIOError:
                return out  # EAGAIN: all there is
            if not data:
                return out
            for kind, _, body in rtnl.messages(data):
                if kind == rtnl.NLMSG_DONE:
                    return out
                if kind == rtnl.NLMSG_ERROR:
                    err = rtnl.error_of(body)
                    if err:
                        raise OSError(err, errno.errorcode.get(err, str(err)))
                    return out
                out.append((kind, body))
    finally:
        kernel.close(fd)


def datagrams(kernel: Kernel, fd: int) -> Iterator[bytes]:
    """Every datagram queued on a non-blocking netlink socket of events. ENOBUFS (events were
    lost while PID 1 was busy) is passed over: the next ones still come. Other errors raise."""
    while True:
        try:
            yield kernel.read(fd, NETLINK_READ)
        except BlockingIOError:
            return  # EAGAIN: drained
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
