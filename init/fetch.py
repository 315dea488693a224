"""An update bundle fetched over HTTP for init/update.py, never waiting: the URL's host name
resolved through the network's name servers (init/resolve.py; kept until a fetch fails, then
resolved again), a TCP connection, an HTTP/1.0 GET conditional on the last answer's
Last-Modified (init/http.py), and the whole answer, held in memory.

Console lines ("pinit: update: ..."):
    updates.test is 10.99.0.1
    cannot resolve updates.test yet: no name server
    cannot fetch http://updates.test/app.bundle: updates.test: no such name
    cannot fetch http://updates.test/app.bundle: no answer from name server 10.0.2.3
    cannot fetch http://10.0.0.2:8080/app.bundle: ECONNREFUSED (Connection refused)
    cannot fetch http://10.0.0.2:8080/app.bundle: no whole answer in 300 s
"""

from __future__ import annotations

from init import dns, http, inet, resolve
from init.bundle import MAX_SIZE
from init.console import Log, errname
from init.errors import Dropped

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from init.kernel import Kernel

FETCH_TIMEOUT = 300.0  # seconds for one whole fetch
ANSWER_WAIT = 2.0  # seconds for a name server to answer
CONNECT_POLL = 0.05  # seconds between looks at a connecting socket


class Fetcher:
    """A fetch of `url` every `every` seconds, one at a time, conditional on `since()` (the last
    answer's Last-Modified); the update source hands on the loop's calls (fds, due, ready,
    tick). A whole answer goes to `got`; a failure is one console line."""

    def __init__(
        self,
        kernel: Kernel,
        url: str,
        every: float,
        log: Log,
        name_servers: Callable[[], tuple[bytes, ...]],
        since: Callable[[], str],
        got: Callable[[bytes], None],
    ) -> None:
        self.url, self._every = url, every
        self._kernel, self._log, self._name_servers = kernel, log, name_servers
        self._since, self._got = since, got
        self._next = kernel.clock()  # the first fetch: at once
        self._dropped = Dropped("update", log)
        self._host, self._port, self._request = "", 80, b""
        self._address = b""  # the host's, once resolved; forgotten when a fetch fails
        self._turn = 0  # which name server is asked next
        self._query: resolve.Query | None = None  # resolving the host
        self._fd = -1  # the TCP socket: connecting, then sending, then receiving
        self._sent = False
        self._data = bytearray()
        self._deadline = 0.0

    @property
    def busy(self) -> bool:
        return self._query is not None or self._fd >= 0

    def fds(self) -> list[int]:
        if self._query is not None:
            return [self._query.fd]
        return [self._fd] if self._fd >= 0 and self._sent else []

    def due(self) -> float:
        if self._fd >= 0 and not self._sent:
            return self._kernel.clock() + CONNECT_POLL
        return self._deadline if self.busy else self._next

    def _start(self, now: float) -> None:
        self._next = now + self._every
        try:
            self._host, self._port, netloc, path = http.parse_url(self.url)
        except ValueError as exc:
            self._log(f"update: cannot fetch {self.url}: {exc}")
            return
        self._request = http.request(netloc, path, self._since())
        try:
            address = inet.pack(self._host)
        except ValueError:
            address = self._address  # a name: resolved already, or not yet
        if address:
            self._connect(now, address)
        else:
            self._resolve(now)

    def tick(self, now: float) -> None:
        if not self.busy:
            if now >= self._next:
                self._start(now)
            return
        if self._query is not None:
            if now >= self._deadline:
                server = inet.text(self._query.server)
                self._end(f"no answer from name server {server} for {self._host}")
            return
        if now >= self._deadline:
            self._end(f"no whole answer in {FETCH_TIMEOUT:g} s")
        elif not self._sent and self._kernel.select([], 0, [self._fd]):
            try:  # connected (or refused: the write says which)
                self._kernel.write(self._fd, self._request)
                self._sent = True
            except BlockingIOError:
                pass
            except OSError as exc:
                self._end(errname(exc))

    def ready(self, fd: int) -> None:
        if self._query is not None and fd == self._query.fd:
            self._resolved(self._query)
            return
        if fd != self._fd or self._fd < 0:
            return
        try:
            chunk = self._kernel.read(fd, 1 << 16)
        except BlockingIOError:
            return  # EAGAIN
        except OSError as exc:
            self._end(errname(exc))
            return
        self._data += chunk
        if len(self._data) > MAX_SIZE:
            self._end(f"more than {MAX_SIZE} bytes")
        elif not chunk:
            data = bytes(self._data)
            self._end()
            self._got(data)

    # --- the host's address -----------------------------------------------------------------

    def _resolve(self, now: float) -> None:
        servers = self._name_servers()
        if not servers:
            self._log(f"update: cannot resolve {self._host} yet: no name server")
            return
        server = resolve.pick(servers, self._turn)
        self._turn += 1
        try:
            self._query = resolve.Query(self._kernel, self._host, server)
        except OSError as exc:
            # ENETUNREACH: no address yet; the next fetch asks again.
            self._end(f"cannot ask name server {inet.text(server)}: {errname(exc)}")
            return
        self._deadline = now + ANSWER_WAIT

    def _resolved(self, query: resolve.Query) -> None:
        try:
            found = query.answer(self._kernel.read(query.fd, 512))
        except BlockingIOError:
            return  # EAGAIN
        except dns.DnsError as exc:
            self._dropped(exc)
            return  # not read; the deadline still runs
        except OSError as exc:
            # ECONNREFUSED: no name server on that host (an ICMP port unreachable).
            self._end(f"name server {inet.text(query.server)}: {errname(exc)}")
            return
        if found is None:
            return  # not the answer; the deadline still runs
        self._end_query()
        if not found:
            self._end(f"{query.name}: no such name")
            return
        self._address = found[0]
        self._log(f"update: {query.name} is {inet.text(found[0])}")
        self._connect(self._kernel.clock(), found[0])

    # --- the connection -----------------------------------------------------------------------

    def _connect(self, now: float, address: bytes) -> None:
        try:
            self._fd = self._kernel.tcp_socket(address, self._port)
        except OSError as exc:
            self._end(errname(exc))
            return
        self._sent = False
        self._data = bytearray()
        self._deadline = now + FETCH_TIMEOUT

    def _end_query(self) -> None:
        if self._query is not None:
            self._kernel.close(self._query.fd)
            self._query = None

    def _end(self, problem: str = "") -> None:
        """The fetch is over; with a problem, said in one line, and the host's address is
        forgotten: the next fetch resolves its name again (the server may have moved)."""
        self._end_query()
        if self._fd >= 0:
            self._kernel.close(self._fd)
            self._fd = -1
        self._data = bytearray()
        if problem:
            self._address = b""
            self._log(f"update: cannot fetch {self.url}: {problem}")
