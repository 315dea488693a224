"""A bundle pushed to the device over HTTP (`invoke update --to HOST`, the way gokrazy's
`gok update` does it), for init/update.py. With `[update] listen = PORT`, PID 1 takes one
connection at a time on that TCP port, never waiting on it: a `PUT /update` (or POST) with a
Content-Length streams its body into the inbox under a temporary name, renamed to
`pushed-N.bundle` once every byte came; the answer is 202, and the inbox's own check (the update
key's signature, every file's hash) decides what becomes of it. No other authentication: only
a bundle signed by the image's key is ever written to a slot.

Other answers: 400 (not an HTTP request, no body, cut short), 404 (another path), 405 (another
method), 411 (no Content-Length), 413 (larger than the inbox has room for, or than PID 1 takes),
500 (the inbox cannot be written). A client that sends nothing for STALL seconds is dropped.

Console lines ("pinit: update: ..."):
    listening on port 8080 for pushed bundles
    cannot listen on port 8080: EADDRINUSE (Address already in use); no bundle can be pushed
    pushed from 10.0.2.2: 31457280 bytes into /data/update/pushed-1.bundle
    push from 10.0.2.2 refused (413): 300000000 bytes, room for 268435456
    push from 10.0.2.2 refused (400): not an HTTP/1.x request line: 'hello'
    push from 10.0.2.2 dropped: nothing for 30 s after 1000 of 31457280 bytes
"""

from __future__ import annotations

import errno
import posix

from init import http, inet
from init.bundle import MAX_SIZE
from init.console import Log, errname

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from init.kernel import Kernel

METHODS = ("PUT", "POST")
STALL = 30.0  # seconds without a byte from the client: it is dropped
PAUSE = 1.0  # seconds without taking clients after accept(2) failed (EMFILE), not to spin
PART = ".pushing"  # the body as it comes, in the inbox: not *.bundle, so never looked at
READ_SIZE = 1 << 16


class _Client:
    """One connection: its request's head until it is whole, then its body into the inbox
    (`left` bytes to come), or, once refused, the rest of the body read and dropped."""

    def __init__(self, fd: int, peer: str, deadline: float) -> None:
        self.fd, self.peer, self.deadline = fd, peer, deadline
        self.head = bytearray()
        self.part = -1  # the open temporary file, while the body comes
        self.length = 0  # the body's, from Content-Length
        self.left = 0
        self.expect = ""  # "100-continue": the client sends the body only when told to
        self.draining = False


class Push:
    """The listening socket of `[update] listen` and its one client; `arrived()` is told when a
    whole bundle is in the inbox."""

    def __init__(
        self, kernel: Kernel, port: int, inbox: str, log: Log, arrived: Callable[[], None]
    ) -> None:
        self._kernel, self._inbox, self._log, self._arrived = kernel, inbox, log, arrived
        self._client: _Client | None = None
        self._listen = -1
        self._paused: float | None = None  # no client taken until then
        try:
            self._listen = kernel.tcp_listen(port)
        except OSError as exc:
            log(f"update: cannot listen on port {port}: {errname(exc)}; no bundle can be pushed")
            return
        log(f"update: listening on port {port} for pushed bundles")

    def fds(self) -> list[int]:
        if self._client is not None:
            return [self._client.fd]
        return [self._listen] if self._listen >= 0 and self._paused is None else []

    def due(self) -> float | None:
        return self._client.deadline if self._client is not None else self._paused

    def tick(self, now: float) -> None:
        if self._paused is not None and now >= self._paused:
            self._paused = None
        client = self._client
        if client is not None and now >= client.deadline:
            done = f" after {client.length - client.left} of {client.length} bytes"
            self._drop(client, f"nothing for {STALL:g} s" + (done if client.part >= 0 else ""))

    def ready(self, fd: int) -> None:
        client = self._client
        if client is None and fd == self._listen:
            self._accept()
        elif client is not None and fd == client.fd:
            self._receive(client)

    def _accept(self) -> None:
        try:
            fd, address = self._kernel.tcp_accept(self._listen)
        except BlockingIOError:
            return  # EAGAIN: the client gave up before it was taken
        except OSError as exc:
            if exc.errno == errno.ECONNABORTED:
                return  # the same, said differently
            # EMFILE, ENOMEM: said, and no client is taken for a while (the socket stays
            # readable: taking again at once would spin the loop).
            self._log(f"update: cannot take a pushing client: {errname(exc)}")
            self._paused = self._kernel.clock() + PAUSE
            return
        self._client = _Client(fd, inet.text(address), self._kernel.clock() + STALL)

    def _receive(self, client: _Client) -> None:
        try:
            chunk = self._kernel.read(client.fd, READ_SIZE)
        except BlockingIOError:
            return  # EAGAIN
        except OSError as exc:
            self._drop(client, errname(exc))  # ECONNRESET: the client went away
            return
        client.deadline = self._kernel.clock() + STALL
        if client.draining:
            client.left -= len(chunk)
            if not chunk or client.left <= 0:
                self._close(client)
        elif not chunk:
            if client.part >= 0:
                done = client.length - client.left
                self._refuse(client, 400, f"cut short after {done} of {client.length} bytes")
            elif client.head:
                self._refuse(client, 400, "the connection ended inside the request's head")
            else:
                self._close(client)  # connected and went: nothing was asked
        elif client.part >= 0:
            self._body(client, chunk)
        else:
            self._head(client, chunk)

    def _head(self, client: _Client, chunk: bytes) -> None:
        client.head += chunk
        try:
            request = http.request_head(bytes(client.head))
        except http.HttpError as exc:
            self._refuse(client, 400, str(exc))
            return
        if request is None:
            return  # more of the head to come
        method, path, headers, body = request
        client.head = bytearray()
        length = headers.get("content-length", "")
        known = length.isdigit() and length.isascii()
        client.length = int(length) if known else 0
        client.left = max(0, client.length - len(body))  # what a refusal reads and drops
        client.expect = headers.get("expect", "").lower()
        expected = f"{method} {path}: expected PUT {http.PUSH_PATH}"
        if method not in METHODS:
            self._refuse(client, 405, expected)
        elif path != http.PUSH_PATH:
            self._refuse(client, 404, expected)
        elif not known:
            self._refuse(client, 411, "no Content-Length: say the bundle's size first")
        elif client.length == 0:
            self._refuse(client, 400, "no bundle in the body")
        else:
            self._start(client, body)

    def _start(self, client: _Client, body: bytes) -> None:
        kernel, part = self._kernel, f"{self._inbox}/{PART}"
        try:
            if not kernel.exists(self._inbox):
                kernel.mkdir(self._inbox, 0o755)
            room = min(kernel.free_space(self._inbox), MAX_SIZE)
            if client.length > room:
                self._refuse(client, 413, f"{client.length} bytes, room for {room}")
                return
            client.part = kernel.open(
                part, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            self._refuse(client, 500, f"cannot write {part}: {errname(exc)}")
            return
        client.left = client.length
        if client.expect == "100-continue":  # curl asks before it sends a large body
            self._send(client, http.answer(100))
        if body:
            self._body(client, body)

    def _body(self, client: _Client, chunk: bytes) -> None:
        take = chunk[: client.left]  # anything after the body is not ours to read
        try:
            self._kernel.write(client.part, take)
        except OSError as exc:
            self._refuse(client, 500, f"cannot write {self._inbox}/{PART}: {errname(exc)}")
            return
        client.left -= len(take)
        if client.left == 0:
            self._whole(client)

    def _whole(self, client: _Client) -> None:
        kernel, part = self._kernel, f"{self._inbox}/{PART}"
        try:
            kernel.fsync(client.part)
            kernel.close(client.part)
            client.part = -1
            number = 1
            while kernel.exists(f"{self._inbox}/pushed-{number}.bundle"):
                number += 1  # one that came before and is not looked at yet
            name = f"{self._inbox}/pushed-{number}.bundle"
            kernel.rename(part, name)
        except OSError as exc:
            self._refuse(client, 500, f"cannot keep {part}: {errname(exc)}")
            return
        self._log(f"update: pushed from {client.peer}: {client.length} bytes into {name}")
        self._send(
            client,
            http.answer(
                202,
                f"{client.length} bytes into {name}: the device checks the update key's "
                "signature and every file's hash, then writes the other slot and reboots to try it",
            ),
        )
        self._close(client)
        self._arrived()

    def _refuse(self, client: _Client, status: int, problem: str) -> None:
        """The answer, one console line, the partial file removed. A client that sends its
        body anyway has the rest read and dropped, so that it reads the answer (closing with
        unread bytes would reset the connection, and the answer with it)."""
        self._log(f"update: push from {client.peer} refused ({status}): {problem}")
        self._send(client, http.answer(status, problem))
        # Refused before it was told to go on, a client that asked first sends no body.
        sending = client.part >= 0 or client.expect != "100-continue"
        self._remove_part(client)
        if client.left > 0 and sending:
            client.draining = True
        else:
            self._close(client)

    def _drop(self, client: _Client, problem: str) -> None:
        self._log(f"update: push from {client.peer} dropped: {problem}")
        self._remove_part(client)
        self._close(client)

    def _send(self, client: _Client, data: bytes) -> None:
        try:
            self._kernel.write_some(client.fd, data)
        except OSError:
            pass  # EPIPE, ECONNRESET: the client went away; EAGAIN: it reads nothing

    def _remove_part(self, client: _Client) -> None:
        if client.part < 0:
            return
        self._kernel.close(client.part)
        client.part = -1
        try:
            self._kernel.unlink(f"{self._inbox}/{PART}")
        except OSError:
            pass  # ENOENT: already gone; the next push truncates it anyway

    def _close(self, client: _Client) -> None:
        self._remove_part(client)
        self._kernel.close(client.fd)
        self._client = None
