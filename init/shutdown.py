"""Signals, the control FIFO, and the shutdown sequence.

Signals to PID 1 (the gokrazy convention, plus Ctrl-Alt-Del):
    SIGTERM → reboot    SIGUSR1 → halt    SIGUSR2 → poweroff
    SIGINT  → reboot    (the kernel sends it for Ctrl-Alt-Del once reboot(RB_DISABLE_CAD) is set)

The control FIFO /run/pinit/control (mode 0600, so services running as root): write one of
the words "reboot", "poweroff" or "halt", followed by a newline, e.g. from a service
    with open("/run/pinit/control", "w") as f: f.write("poweroff\\n")
Unknown words are reported on the console and ignored. The FIFO exists before the first service
starts.

Shutdown, one console line per step: stop the services (SIGTERM to each process group and, as
PID 1, to every other process; SIGKILL after config.shutdown_grace), sync, unmount the data
partition (or remount it read-only if busy) and the other mounts in reverse order, disarm the
watchdog with the magic close, then reboot(2) with RB_AUTOBOOT, RB_POWER_OFF or RB_HALT_SYSTEM.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum
import errno
import posix

from init.console import Log, errname
from init.kernel import Kernel
from init.rootfs import MNT_DETACH, MS_RDONLY, MS_REMOUNT, prefixed

# Type names only: init.watchdog is imported by the boot when a watchdog is configured.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from init.watchdog import Watchdog

SIGNAL_ACTIONS: dict[int, str] = {
    signal.SIGTERM: "reboot",
    signal.SIGUSR1: "halt",
    signal.SIGUSR2: "poweroff",
    signal.SIGINT: "reboot",
}
WATCHED_SIGNALS = (*SIGNAL_ACTIONS, signal.SIGCHLD)
COMMANDS = ("reboot", "poweroff", "halt")
CONTROL = "/run/pinit/control"
FINAL_WORDS = {
    "reboot": "rebooting",
    "poweroff": "powering off",
    "halt": "halting",
    "tryboot": "rebooting to try the other boot slot once",
}


def parse_commands(data: bytes) -> tuple[str | None, list[str]]:
    """Words written to the control FIFO → (the last valid action or None, unknown words)."""
    action = None
    unknown = []
    for word in data.decode("utf-8", "replace").split():
        if word in COMMANDS:
            action = word
        else:
            unknown.append(word)
    return action, unknown


def open_control(kernel: Kernel, root: str, log: Log) -> int | None:
    """Make and open the control FIFO; None (and a console line) if that fails.

    O_RDWR: with a writer of our own the FIFO never reports end-of-file when a service closes
    it, so select() does not spin; O_NONBLOCK so reading drains without blocking.
    """
    path = prefixed(root, CONTROL)
    try:
        try:
            kernel.mkdir(path.rsplit("/", 1)[0], 0o755)
        except FileExistsError:
            pass  # EEXIST: made by an earlier start (a test) or the builder
        try:
            kernel.mkfifo(path, 0o600)
        except FileExistsError:
            pass  # EEXIST: same
        return kernel.open(path, posix.O_RDWR | posix.O_NONBLOCK | posix.O_CLOEXEC)
    except OSError as exc:
        log(f"cannot make the control FIFO {CONTROL}: {errname(exc)}")
        return None


def unmount_all(
    kernel: Kernel, root: str, mounts: list[str], data_mount: str | None, log: Log
) -> None:
    """Unmount in reverse order. The data partition is unmounted for real (or made read-only,
    which also writes its journal out); the virtual file systems are only detached, since the
    init's own console fds keep /dev busy."""
    detached = []
    for target in reversed(mounts):
        path = prefixed(root, target)
        if target == data_mount:
            try:
                kernel.umount(path, 0)
                log(f"unmounted {target}")
            except OSError as exc:
                try:
                    kernel.mount("", path, "", MS_REMOUNT | MS_RDONLY, "")
                    log(f"cannot unmount {target}: {errname(exc)}; remounted read-only")
                except OSError as exc2:
                    log(f"cannot unmount {target} or make it read-only: {errname(exc2)}")
            continue
        try:
            kernel.umount(path, MNT_DETACH)
            detached.append(target)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a mount point (any more)
                log(f"cannot unmount {target}: {errname(exc)}")
    if detached:
        log("unmounted " + " ".join(detached))


def shutdown(
    kernel: Kernel,
    root: str,
    action: str,
    log: Log,
    *,
    stop: Callable[[float], None] | None = None,
    grace: float = 5.0,
    mounts: list[str] | None = None,
    data_mount: str | None = None,
    watchdog: Watchdog | None = None,
) -> None:
    """Everything before reboot(2); each step is tried even if an earlier one failed."""
    log(f"shutdown ({action})")
    if stop is not None:
        try:
            stop(grace)
        except Exception as exc:  # a bug here must not keep the file systems unsynced
            log(f"stopping services failed: {errname(exc)}")
    kernel.sync()
    log("synced file systems")
    try:
        unmount_all(kernel, root, mounts or [], data_mount, log)
    except Exception as exc:
        log(f"unmounting failed: {errname(exc)}")
    if watchdog is not None:
        try:
            watchdog.disarm()
            log("watchdog disarmed")
        except OSError as exc:
            log(f"cannot disarm the watchdog: {errname(exc)}")
    log(FINAL_WORDS.get(action, action))


def reboot(kernel: Kernel, action: str, log: Log) -> None:
    """reboot(2); never returns. If the kernel refuses, PID 1 waits forever instead of dying
    (its death would be a kernel panic, which with panic=0 hangs with less information)."""
    log.settle()  # the last lines, if a slow console still holds them back; bounded
    try:
        kernel.reboot(action)
    except Exception as exc:  # whatever it is, PID 1 must not exit: that is a kernel panic
        log(f"reboot(2) for {action} failed: {errname(exc)}; waiting forever")
    while True:
        try:
            kernel.sleep(3600)
        except Exception:
            pass  # nothing is left to do, and exiting would panic the kernel
