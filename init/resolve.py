"""A host name's IPv4 addresses, asked of a name server without waiting: one A query over a
connected UDP socket, for a source of the supervisor's loop to select on (init/clock.py for
time servers, init/fetch.py for an update URL's host). The bytes are init/dns.py's; which name
server is asked, how long to wait and what to say is the caller's.
"""

from __future__ import annotations

from init import dns

TYPE_CHECKING = False
if TYPE_CHECKING:
    from init.kernel import Kernel


class Query:
    """`name` asked of `server` (4 bytes): `fd` turns readable with the answer. OSError when the
    socket cannot be opened or the query not sent (ENETUNREACH: no address yet)."""

    def __init__(self, kernel: Kernel, name: str, server: bytes) -> None:
        self.name, self.server = name, server
        # Any id will do on a socket connected to one server; the clock's microseconds vary.
        self.ident = int(kernel.clock() * 1e6) & 0xFFFF
        self.fd = kernel.udp_socket(server, dns.PORT)
        try:
            kernel.write(self.fd, dns.query(name, self.ident))
        except OSError:
            kernel.close(self.fd)
            raise

    def answer(self, reply: bytes) -> tuple[bytes, ...] | None:
        """The addresses in `reply`: () when the name does not exist (or has none), None when
        the datagram is not this query's answer; dns.DnsError when it cannot be read."""
        return dns.addresses(reply, self.ident)


def pick(servers: tuple[bytes, ...], turn: int) -> bytes:
    """The name server for the `turn`th query: each in turn, so one that is down costs one
    query's wait, not every one."""
    return servers[turn % len(servers)]
