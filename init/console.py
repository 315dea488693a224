"""Console lines and the console device.

Every line the init prints goes through one `Log`, so each starts with "pinit: " and a failing
console (EIO on a serial line that went away) can never take PID 1 down.
"""

from __future__ import annotations

import errno
import posix

from init.errors import InitError
from init.kernel import Kernel

OUT = 1   # the init's stdout: the console in a real boot, a pipe in host tests


# Linux's numbers (the same on arm64 and x86_64). `signal.Signals` would give the names, but the
# `signal` module drags in `enum` (and functools, collections…): the init uses `_signal`.
SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
                7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV",
                12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT",
                17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN",
                22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
                27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}


def signame(signum: int) -> str:
    return SIGNAL_NAMES.get(signum, f"SIGRTMIN+{signum - 34}" if 34 <= signum <= 64 else "unknown")


def errname(exc: BaseException) -> str:
    """"ENOENT (No such file or directory)" — the symbol is what people search for.
    An InitError's message already says everything; anything else is named by its type."""
    if isinstance(exc, OSError) and exc.errno:
        return f"{errno.errorcode.get(exc.errno, str(exc.errno))} ({posix.strerror(exc.errno)})"
    if isinstance(exc, InitError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Log:
    """Writes "pinit: <message>" lines; `debug` lines only when verbose."""

    def __init__(self, kernel: Kernel, verbose: bool = False) -> None:
        self._kernel = kernel
        self.verbose = verbose

    def __call__(self, message: str) -> None:
        try:
            self._kernel.write(OUT, f"pinit: {message}\n".encode())
        except OSError:
            pass  # nowhere left to report it; the init must go on regardless

    def debug(self, message: str) -> None:
        if self.verbose:
            self(message)

    def raw(self, data: bytes) -> None:
        """A service's output, copied as it is."""
        try:
            self._kernel.write(OUT, data)
        except OSError:
            pass


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


def open_console(kernel: Kernel, root: str, name: str, log: Log) -> None:
    """Make the console stdin, stdout and stderr.

    O_NOCTTY: a controlling terminal would turn a Ctrl-C typed on the serial console into a
    SIGINT for PID 1, which means "reboot" here. No O_CLOEXEC: services inherit fds 0-2.
    """
    path = root.rstrip("/") + device_path(name or "console")
    try:
        fd = kernel.open(path, posix.O_RDWR | posix.O_NOCTTY)
    except OSError as exc:
        log(f"cannot open console {device_path(name or 'console')}: {errname(exc)}; "
            "keeping the kernel's console")
        return
    for target in (0, 1, 2):
        if fd != target:
            kernel.dup2(fd, target)
    if fd > 2:
        kernel.close(fd)
