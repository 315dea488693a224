"""Console lines and the console device.

Every line the init prints goes through one `Log`, so each starts with "pinit: " and a failing
console (EIO on a serial line that went away) can never take PID 1 down. Nor can a slow one: PID 1
writes through its own non-blocking open of the console and an `Outbox` that holds at most
OUTBOX_LIMIT bytes the console did not take yet; the supervisor's loop writes them when the
console is writable again, and what did not fit is dropped, counted and said.
"""

from __future__ import annotations

import errno
import posix

from init.errors import InitError
from init.kernel import Kernel

OUT = 1  # the init's stdout: the console in a real boot, a pipe in host tests
# What a console that does not keep up may hold back: at 115200 baud (11 KB/s) about 6 s.
OUTBOX_LIMIT = 64 * 1024
SETTLE = 1.0  # seconds the last lines before a reboot may wait for a slow console


# Linux's numbers (the same on arm64 and x86_64). `signal.Signals` would give the names, but the
# `signal` module drags in `enum` (and functools, collections…): the init uses `_signal`.
SIGNAL_NAMES = {
    1: "SIGHUP",
    2: "SIGINT",
    3: "SIGQUIT",
    4: "SIGILL",
    5: "SIGTRAP",
    6: "SIGABRT",
    7: "SIGBUS",
    8: "SIGFPE",
    9: "SIGKILL",
    10: "SIGUSR1",
    11: "SIGSEGV",
    12: "SIGUSR2",
    13: "SIGPIPE",
    14: "SIGALRM",
    15: "SIGTERM",
    16: "SIGSTKFLT",
    17: "SIGCHLD",
    18: "SIGCONT",
    19: "SIGSTOP",
    20: "SIGTSTP",
    21: "SIGTTIN",
    22: "SIGTTOU",
    23: "SIGURG",
    24: "SIGXCPU",
    25: "SIGXFSZ",
    26: "SIGVTALRM",
    27: "SIGPROF",
    28: "SIGWINCH",
    29: "SIGIO",
    30: "SIGPWR",
    31: "SIGSYS",
}


def signame(signum: int) -> str:
    return SIGNAL_NAMES.get(signum, f"SIGRTMIN+{signum - 34}" if 34 <= signum <= 64 else "unknown")


def errname(exc: BaseException) -> str:
    """ "ENOENT (No such file or directory)" — the symbol is what people search for.
    An InitError's message already says everything; anything else is named by its type."""
    if isinstance(exc, OSError) and exc.errno:
        return f"{errno.errorcode.get(exc.errno, str(exc.errno))} ({posix.strerror(exc.errno)})"
    if isinstance(exc, InitError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def amount(size: int) -> str:
    """1.2 MB, 3.4 kB, 17 bytes: how much output was lost, for people."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.1f} kB"
    return f"{size} bytes"


class Outbox:
    """One destination PID 1 writes to without ever waiting. What the fd does not take at once
    waits here, up to OUTBOX_LIMIT bytes, until `flush()` (the loop saw the fd writable). Once
    something did not fit, everything is dropped and counted until what waits has drained: the
    console then shows whole lines, a gap, and one line saying how much went into it."""

    __slots__ = ("fd", "pending", "dropped", "dropped_own", "midline", "_kernel")

    def __init__(self, kernel: Kernel, fd: int) -> None:
        self._kernel = kernel
        self.fd = fd
        self.pending = bytearray()
        self.dropped = 0  # bytes of service output lost since the last note
        self.dropped_own = 0  # the init's own lines lost since then
        self.midline = False  # what was kept ends inside a line

    def write(self, data: bytes, own: bool = False) -> None:
        if not data:
            return
        if self.dropped or self.dropped_own:
            self._drop(data, own)
            return
        if not self.pending:
            written = self._write(data)
            if written == len(data):
                self.midline = not data.endswith(b"\n")
                return
            data = data[written:]
        room = OUTBOX_LIMIT - len(self.pending)
        keep = len(data) if len(data) <= room else data.rfind(b"\n", 0, room) + 1
        self.pending += data[:keep]
        if keep:
            self.midline = not data[:keep].endswith(b"\n")
        if keep < len(data):
            self._drop(data[keep:], own)

    def _drop(self, data: bytes, own: bool) -> None:
        if own:
            self.dropped_own += data.count(b"\n") or 1
        else:
            self.dropped += len(data)

    def waiting(self) -> bool:
        return bool(self.pending or self.dropped or self.dropped_own)

    def flush(self) -> None:
        """Write what waits (call when the fd is writable); after a loss, say how much."""
        if self.pending:
            del self.pending[: self._write(bytes(self.pending))]
        if not self.pending and (self.dropped or self.dropped_own):
            lost = [f"{amount(self.dropped)} of service output"] if self.dropped else []
            if self.dropped_own:
                lost.append(f"{self.dropped_own} of its own lines")
            note = f"pinit: console too slow: dropped {' and '.join(lost)}\n".encode()
            self.dropped = self.dropped_own = 0
            self.write(b"\n" + note if self.midline else note)

    def _write(self, data: bytes) -> int:
        """How much the fd took; never waits."""
        try:
            return self._kernel.write_some(self.fd, data)
        except BlockingIOError:
            return 0  # EAGAIN: the console is full; the loop tries again when it drains
        except OSError:
            return len(data)  # EIO: the serial line went away; nobody can read it anyway


class Log:
    """Writes "pinit: <message>" lines; `debug` lines only when verbose."""

    def __init__(self, kernel: Kernel, verbose: bool = False) -> None:
        self._kernel = kernel
        self.verbose = verbose
        self.out = Outbox(kernel, OUT)
        self.shared = False  # fd 1 itself was made non-blocking (a console with one opener)

    def __call__(self, message: str) -> None:
        self.out.write(f"pinit: {message}\n".encode(), own=True)

    def debug(self, message: str) -> None:
        if self.verbose:
            self(message)

    def raw(self, data: bytes) -> None:
        """A service's output, copied as it is."""
        self.out.write(data)

    def to(self, fd: int) -> None:
        """Write through `fd` from now on (PID 1's own non-blocking open of the console)."""
        self.out.flush()
        self.out.fd = fd

    def waiting(self) -> list[int]:
        """The fd to wait for as writable, while output waits for it."""
        return [self.out.fd] if self.out.waiting() else []

    def flush(self) -> None:
        self.out.flush()

    def settle(self, seconds: float = SETTLE) -> None:
        """Give the last lines (before a reboot) up to `seconds` to reach a slow console."""
        until = self._kernel.clock() + seconds
        while self.waiting() and self._kernel.clock() < until:
            self._kernel.select([], until - self._kernel.clock(), self.waiting())
            self.flush()


def kmsg(kernel: Kernel, root: str, message: str) -> None:
    """Put a critical line ("<2>") into the kernel log, where it survives a dead console."""
    try:
        fd = kernel.open(root.rstrip("/") + "/dev/kmsg", posix.O_WRONLY | posix.O_CLOEXEC)
    except OSError:
        return
    try:
        kernel.write(fd, f"<2>pinit: {message}\n".encode())
    except OSError:
        pass
    finally:
        kernel.close(fd)


def device_path(name: str) -> str:
    """ttyAMA0 → /dev/ttyAMA0 (the console= form); paths are kept."""
    return name if name.startswith("/") else "/dev/" + name


def open_console(kernel: Kernel, root: str, name: str, log: Log, later: bool = False) -> bool:
    """Make the console stdin, stdout and stderr; False when it could not be opened.

    O_NOCTTY: a controlling terminal would turn a Ctrl-C typed on the serial console into a
    SIGINT for PID 1, which means "reboot" here. No O_CLOEXEC: services inherit fds 0-2.
    `later`: the device may come with a module (hvc0 with virtio_console); a node that is not
    there (ENOENT) or has no device behind it yet (ENXIO) is said nothing of: the caller tries
    again.
    """
    shown = device_path(name or "console")
    path = root.rstrip("/") + shown
    try:
        fd = kernel.open(path, posix.O_RDWR | posix.O_NOCTTY)
    except OSError as exc:
        if not (later and exc.errno in (errno.ENOENT, errno.ENXIO)):
            log(f"cannot open console {shown}: {errname(exc)}; keeping the kernel's console")
        return False
    for target in (0, 1, 2):
        if fd != target:
            kernel.dup2(fd, target)
    if fd > 2:
        kernel.close(fd)
    # PID 1's own open, apart from the services' and the shell's fds 0-2: O_NONBLOCK on those
    # would reach a program that shares them (an early-started app, the exec'd service).
    try:
        log.to(
            kernel.open(path, posix.O_WRONLY | posix.O_NOCTTY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        )
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            log(
                f"cannot open console {shown} to write without waiting: {errname(exc)}; a "
                "stalled console can hold the init up"
            )
            return True
        # EBUSY: one opener only (a virtio port). Fd 1 itself then, made blocking again
        # (release_console) before the exec'd service or the shell gets it.
        kernel.set_blocking(OUT, False)
        log.shared = True
    return True


def release_console(kernel: Kernel, log: Log) -> None:
    """The console as programs expect it (blocking), before PID 1 hands it on: exec, shell."""
    log.settle()
    if log.shared:
        try:
            kernel.set_blocking(OUT, True)
        except OSError:
            pass  # EBADF: no console; nothing to hand on
        log.shared = False
