"""Running the services: a Supervisor that owns its children, and the one main loop.

Each service runs in its own session (so its process group can be signalled as a whole), with
stdin on /dev/null and stdout+stderr on a pipe that the loop copies to the console and into a
bounded per-service ring of lines. The loop waits in select() on: the signal pipe (every signal,
including SIGCHLD, arrives there as a byte), the control FIFO, and the services' pipes; its
timeout is the next restart or watchdog pet. After every wake-up one waitpid(-1, WNOHANG) loop
reaps every zombie — services and the orphans PID 1 inherits — so the bookkeeping (pid → service)
is only ever changed in one place.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum
import errno
import posix
from _collections import deque  # the C type itself: `collections` is slow to import at boot

from init.cgroup import Cgroups, size_text
from init.config import CONDITIONS, Config, Service, start_order
from init.console import Log, errname, signame
from init.errors import Dropped
from init.kernel import Kernel
from init.policy import Backoff, CrashWindow, describe_exit, failed, restart_verdict
from init.shutdown import SIGNAL_ACTIONS, parse_commands

# Type names only: init.watchdog is imported by the boot when a watchdog is configured.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from init.hotplug import Hotplug
    from init.logfile import LogFile
    from init.watchdog import Watchdog

    class Source(Protocol):
        """Something else the loop waits for: sockets and a timer (init/network.py,
        init/clock.py)."""

        def fds(self) -> list[int]: ...
        def due(self) -> float | None: ...
        def ready(self, fd: int) -> None: ...
        def tick(self, now: float) -> None: ...


BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin", "HOME": "/"}
EXEC_FAILED = 127  # what a shell reports for "command not found"; counts as a failure
FINAL_REAP = 2.0  # seconds to collect the last zombies after SIGKILL at shutdown
READ_SIZE = 65536
WAIT_POLL = 0.25  # seconds between looks for a waiting service's paths


def service_env(service: Service) -> dict[str, str]:
    return {**BASE_ENV, **dict(service.env)}


def service_argv(service: Service) -> list[str]:
    return [service.exec, *service.args]


class Child:
    """The supervisor's state for one service; pid 0 = not running."""

    __slots__ = (
        "service",
        "pid",
        "started",
        "restarts",
        "restart_at",
        "backoff",
        "crashes",
        "lines",
        "cgroup",
        "oom_kills",
        "logfile",
        "wait_deadline",
        "wait_action",
    )

    def __init__(self, service: Service) -> None:
        self.service = service
        self.pid = 0
        self.started = 0.0
        self.restarts = 0
        self.restart_at: float | None = None
        self.backoff = Backoff(service.backoff_start, service.backoff_max, service.backoff_reset)
        self.crashes = CrashWindow(service.crash_loop.count, service.crash_loop.window)
        self.lines: deque[str] = deque(maxlen=max(service.log_lines, 0))
        self.cgroup = ""  # its cgroup's path; "" when running without cgroups
        self.oom_kills = 0  # the group's OOM kill count when this run started
        self.logfile: LogFile | None = None
        self.wait_deadline: float | None = None  # while it waits for its wait_for paths
        self.wait_action: str | None = None  # on_wait_timeout = "reboot" came due


class Output:
    """A service's pipe; kept apart from Child because a pipe can outlive its process
    (a grandchild holding it) while the service is already restarted with a new pipe."""

    __slots__ = ("child", "partial")

    def __init__(self, child: Child) -> None:
        self.child = child
        self.partial = b""


class Supervisor:
    def __init__(
        self,
        kernel: Kernel,
        config: Config,
        log: Log,
        signal_fd: int,
        control_fd: int | None = None,
        watchdog: Watchdog | None = None,
        cgroups: Cgroups | None = None,
        log_dir: str = "",
        uevents: tuple[int, Hotplug] | None = None,
        sources: tuple[Source, ...] = (),
        reached: Callable[[str], bool] | None = None,
    ) -> None:
        self._kernel = kernel
        self._sources = list(sources)  # the network, the clock: their sockets and timers
        self._reached = reached or (lambda name: True)  # "network", "time", "data" in `after`
        self._uevents = uevents  # (socket, handler): devices plugged in while we run
        self._dropped_uevents = Dropped("device events", log)
        self._cgroups = cgroups
        self._log = log
        self._signal_fd = signal_fd
        self._control_fd = control_fd
        self.watchdog = watchdog
        self.requested: str | None = None  # a shutdown a source asked for (request())
        self.watch_text = config.update.ready.encode()  # a line the updater waits for
        self.text_seen = False
        self.children = [Child(s) for s in start_order(config.services)]
        for child in self.children:
            if child.service.log_to_data and log_dir:
                from init.logfile import LogFile  # here: only a data partition keeps logs

                child.logfile = LogFile(
                    kernel, log_dir, child.service.name, child.service.log_max, log
                )
        self._by_pid: dict[int, Child] = {}
        self._outputs: dict[int, Output] = {}
        self.stopping = False
        self.childless = False

    def logs(self, name: str) -> list[str]:
        """The last `log_lines` lines a service printed (for the REPL and status tools)."""
        return [line for c in self.children if c.service.name == name for line in c.lines]

    # --- starting ---------------------------------------------------------------------------

    def start_all(self, early: tuple[int, int] | None = None) -> str | None:
        """Start every service; returns an action only if that already is a crash loop.
        `early`: (pid, pipe) of the first service, already started by the C prologue."""
        action = None
        for child in self.children:
            action = self._start(child, self._kernel.clock(), early) or action
            early = None
        return action

    def _missing(self, service: Service) -> list[str]:
        """What the service still waits for: paths, conditions, services not started yet."""
        missing = [path for path in service.wait_for if not self._kernel.exists(path)]
        for name in service.after:
            if name in CONDITIONS:
                if not self._reached(name):
                    missing.append(name)
            elif not any(c.started for c in self.children if c.service.name == name):
                missing.append(name)
        return missing

    def _waiting(self, child: Child, now: float) -> bool:
        """True while what the service waits for is missing and its time is not up; when
        the time is up, its on_wait_timeout says what happens."""
        s = child.service
        missing = self._missing(s)
        if not missing:
            child.wait_deadline = None
            return False
        if child.wait_deadline is None:
            child.wait_deadline = now + s.wait_timeout
            self._log(f"{s.name}: waiting for {', '.join(missing)} (up to {s.wait_timeout:g} s)")
        if now < child.wait_deadline:
            # Looked at again soon: a mount by hotplug, a file another service writes.
            child.restart_at = min(now + WAIT_POLL, child.wait_deadline)
            return True
        child.wait_deadline = None
        what = f"{s.name}: {', '.join(missing)} not there within {s.wait_timeout:g} s"
        if s.on_wait_timeout == "skip":
            self._log(f"{what}; not starting it")
            child.restart_at = None
            return True
        if s.on_wait_timeout == "reboot":
            self._log(f"{what}; reboot")
            child.wait_action = "reboot"
            return True
        self._log(f"{what}; starting it anyway")
        return False

    def _start(self, child: Child, now: float, early: tuple[int, int] | None = None) -> str | None:
        s = child.service
        child.restart_at = None
        if early is None and (s.wait_for or s.after) and self._waiting(child, now):
            action, child.wait_action = child.wait_action, None
            return action
        child.started = now
        if self._cgroups is not None:
            child.cgroup = self._cgroups.prepare(s)
            child.oom_kills = self._cgroups.oom_kills(child.cgroup)
        if early is not None:
            pid, fd = early
            how = ", started early"
        else:
            how = ""
            try:
                pid, fd = self._kernel.spawn(
                    service_argv(s), service_env(s), s.cwd, s.user, s.group, child.cgroup, s.groups
                )
            except OSError as exc:
                self._log(f"{s.name}: cannot execute {s.exec}: {errname(exc)}")
                return self._exited(child, EXEC_FAILED, now)
        child.pid = pid
        self._by_pid[pid] = child
        if fd >= 0:  # an early-started service writes to the console itself
            self._outputs[fd] = Output(child)
        # A program outside /app, not named after its service, says what runs it (the native
        # runtime's interpreter: "starting arrays (pid 57, /usr/bin/python3.11)").
        runs = (
            ""
            if s.exec.startswith("/app/") or s.exec.rpartition("/")[2] == s.name
            else f", {s.exec}"
        )
        self._log(f"starting {s.name} (pid {pid}{how}{runs})")
        return None

    def _restart_due(self, now: float) -> str | None:
        action = None
        for child in self.children:
            if child.restart_at is not None and child.restart_at <= now:
                action = self._start(child, now) or action
        return action

    # --- the main loop ----------------------------------------------------------------------

    def _timeout(self, now: float) -> float | None:
        due = [c.restart_at for c in self.children if c.restart_at is not None]
        if self.watchdog is not None:
            due.append(self.watchdog.next_pet)
        due += [t for t in (source.due() for source in self._sources) if t is not None]
        return max(0.0, min(due) - now) if due else None

    def run(self) -> str:
        """Supervise until something asks for a shutdown; returns the action
        (reboot | poweroff | halt | shell)."""
        kernel = self._kernel
        if self._uevents is not None and self._uevents[1].backlog:
            self._device_events()  # the devices coldplug saw appear, before the queue empties
        while True:
            now = kernel.clock()
            action = self._restart_due(now)
            if action:
                return action
            if self.watchdog is not None:
                self.watchdog.pet_if_due(now)
            for source in list(self._sources):
                self._guard(source, source.tick, now)
            if self.requested:
                return self.requested
            # Services' output first: what an app printed before asking for a shutdown appears
            # on the console before the init's reply to it.
            fds = [*self._outputs, self._signal_fd]
            if self._control_fd is not None:
                fds.append(self._control_fd)
            if self._uevents is not None:
                fds.append(self._uevents[0])
            owner = {fd: source for source in self._sources for fd in source.fds()}
            fds += owner
            console = self._log.waiting()  # output the console did not take yet
            for fd in kernel.select(fds, self._timeout(now), console):
                if fd in console:
                    self._log.flush()
                elif fd == self._signal_fd:
                    action = self._signals() or action
                elif fd == self._control_fd:
                    action = self._control() or action
                elif self._uevents is not None and fd == self._uevents[0]:
                    self._device_events()
                elif fd in owner:
                    self._guard(owner[fd], owner[fd].ready, fd)
                else:
                    self._copy(fd)
            action = self._reap(kernel.clock()) or action
            if action:
                return action

    def request(self, action: str) -> None:
        """A source's shutdown (the updater's tryboot or fallback): the loop returns it next."""
        self.requested = action

    def healthy_for(self, seconds: float, now: float) -> bool:
        """Every service has been running at least `seconds`, none restarted since boot."""
        return all(c.pid and c.restarts == 0 and now - c.started >= seconds for c in self.children)

    def _guard(self, source: Source, call: Callable[[Any], None], arg: Any) -> None:
        """A source's failure (a bug: they handle the errors they expect) must not take PID 1
        down, nor spin the loop: that source is left out from then on, and says so."""
        if source not in self._sources:
            return
        try:
            call(arg)
        except Exception as exc:
            self._sources.remove(source)
            self._log(f"{type(source).__name__.lower()}: internal error, stopped: {errname(exc)}")

    def _device_events(self) -> None:
        """Every queued uevent, one datagram each, to the hotplug handler."""
        # Here: only a boot that watches devices has uevents (init.boot imports the handler).
        from init.hotplug import UeventError
        from init.hotplug import parse as parse_uevent

        assert self._uevents is not None
        fd, handler = self._uevents
        while True:
            try:
                # What coldplug read from the queue at boot comes first.
                data = (
                    handler.backlog.pop(0) if handler.backlog else self._kernel.read(fd, READ_SIZE)
                )
            except BlockingIOError:
                return  # EAGAIN: the queue is empty
            except OSError as exc:
                # ENOBUFS: events were lost while we were busy; the next ones still come.
                if exc.errno != errno.ENOBUFS:
                    self._log(f"device events: {errname(exc)}")
                    return
                continue
            if not data:
                return
            try:
                event = parse_uevent(data)
            except UeventError as exc:
                self._dropped_uevents(exc)
                continue
            handler.handle(event)

    def _read_all(self, fd: int) -> bytes:
        chunks = []
        while True:
            try:
                chunk = self._kernel.read(fd, READ_SIZE)
            except BlockingIOError:
                break  # EAGAIN: drained
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _signals(self) -> str | None:
        action = None
        for signum in self._read_all(self._signal_fd):
            if signum in SIGNAL_ACTIONS:
                action = SIGNAL_ACTIONS[signum]
                self._log(f"got {signame(signum)}: {action}")
        return action  # SIGCHLD needs nothing here: every wake-up ends in _reap()

    def _control(self) -> str | None:
        assert self._control_fd is not None
        action, unknown = parse_commands(self._read_all(self._control_fd))
        for word in unknown:
            self._log(f"control: unknown command {word!r} (expected reboot, poweroff or halt)")
        if action:
            self._log(f"control: {action}")
        return action

    def _copy(self, fd: int) -> None:
        """Copy what a service wrote to the console and its ring of lines."""
        out = self._outputs[fd]
        try:
            data = self._kernel.read(fd, READ_SIZE)
        except BlockingIOError:
            return  # EAGAIN: select() said readable but another reader... nothing to do
        if not data:
            self._kernel.close(fd)  # EOF: the service and everything holding its pipe are gone
            del self._outputs[fd]
            if out.partial:
                out.child.lines.append(out.partial.decode("utf-8", "replace"))
            return
        self._log.raw(data)
        whole, newline, partial = (out.partial + data).rpartition(b"\n")
        out.partial = partial
        if newline:
            if self.watch_text and self.watch_text in whole:
                self.text_seen = True
            out.child.lines.extend(line.decode("utf-8", "replace") for line in whole.split(b"\n"))
            if out.child.logfile is not None:
                out.child.logfile.append(whole + newline)

    # --- exits --------------------------------------------------------------------------------

    def _reap(self, now: float) -> str | None:
        """The one waitpid loop: collect every zombie, ours or inherited."""
        action = None
        while True:
            try:
                pid, status = self._kernel.waitpid(-1, posix.WNOHANG)
            except ChildProcessError:
                self.childless = True  # ECHILD: no children at all
                break
            self.childless = False
            if pid == 0:
                break
            child = self._by_pid.pop(pid, None)
            if child is not None:  # else an orphan re-parented to PID 1: reaping it is all
                action = self._exited(child, posix.waitstatus_to_exitcode(status), now) or action
        return action

    def _exited(self, child: Child, code: int, now: float) -> str | None:
        child.pid = 0
        s = child.service
        what = describe_exit(code)
        if self._cgroups is not None and child.cgroup:
            if code == -signal.SIGKILL and self._cgroups.oom_kills(child.cgroup) > child.oom_kills:
                what = f"killed by the OOM killer (memory_max {size_text(s.memory_max)})"
            # Whatever the service started dies with it, before any restart.
            try:
                left = self._cgroups.kill(child.cgroup)
            except OSError as exc:
                self._log(f"{s.name}: cannot kill what is left of it: {errname(exc)}")
                left = 0
            if left:
                self._log(
                    f"{s.name}: killed {left} leftover "
                    f"process{'es' if left > 1 else ''} of its cgroup"
                )
        if self.stopping:
            self._log(f"{s.name} {what}")
            return None
        verdict = restart_verdict(s.restart, code)
        if verdict:
            self._log(f"{s.name} {what}; not restarting ({verdict})")
            return None
        if failed(code) and child.crashes.failure(now):
            loop = s.crash_loop
            self._log(
                f"crash loop: {s.name} failed {len(child.crashes)} times in "
                f"{loop.window:g} s; action {loop.action}"
            )
            return loop.action
        delay = child.backoff.delay(now - child.started)
        child.restarts += 1
        child.restart_at = now + delay
        self._log(f"{s.name} {what}; restart {child.restarts} in {delay:.1f} s")
        return None

    # --- stopping -----------------------------------------------------------------------------

    def _signal_all(self, sig: int) -> None:
        """Signal the services' process groups, then (as PID 1) every process left."""
        for child in self.children:
            if child.pid:
                try:
                    self._kernel.killpg(child.pid, sig)
                except ProcessLookupError:
                    pass  # ESRCH: the group is gone already; its zombie is reaped below
        if self._kernel.getpid() == 1:
            try:
                self._kernel.kill(-1, sig)  # orphans and daemons that left their group
            except ProcessLookupError:
                pass  # ESRCH: there is nobody else

    def _wait(self, until: float, done: Callable[[], bool]) -> None:
        """Copy output and reap until `done()` or `until`; SIGCHLD wakes the select."""
        kernel = self._kernel
        self._reap(kernel.clock())
        now = kernel.clock()
        while not done() and now < until:
            timeout = until - now
            if self.watchdog is not None:  # a long grace must not let the board reset
                self.watchdog.pet_if_due(now)
                timeout = min(timeout, max(0.0, self.watchdog.next_pet - now))
            console = self._log.waiting()
            for fd in kernel.select([self._signal_fd, *self._outputs], timeout, console):
                if fd in console:
                    self._log.flush()
                elif fd == self._signal_fd:
                    self._read_all(fd)  # already shutting down: signals change nothing
                else:
                    self._copy(fd)
            self._reap(kernel.clock())
            now = kernel.clock()

    def stop(self, grace: float) -> None:
        """SIGTERM to every service, SIGKILL after `grace` seconds, then reap everything."""
        self.stopping = True
        for child in self.children:
            child.restart_at = None
            if child.pid:
                self._log(f"stopping {child.service.name} (pid {child.pid})")
        self._signal_all(signal.SIGTERM)
        kernel = self._kernel
        self._wait(kernel.clock() + grace, lambda: not any(c.pid for c in self.children))
        for child in self.children:
            if child.pid:
                self._log(f"{child.service.name} did not stop within {grace:g} s; sending SIGKILL")
        self._signal_all(signal.SIGKILL)
        self._wait(kernel.clock() + FINAL_REAP, lambda: self.childless)
        for fd in list(self._outputs):
            self._copy(fd)
        for child in self.children:  # an open log keeps /data from being unmounted (EBUSY)
            if child.logfile is not None:
                child.logfile.close()


def exec_service(kernel: Kernel, service: Service) -> None:
    """Mode "exec": PID 1 becomes the service, like the classic shell init's last line.
    Returns only by raising OSError (then the caller's fatal path takes over)."""
    try:
        kernel.execve(
            service_argv(service),
            service_env(service),
            service.cwd,
            service.user,
            service.group,
            service.groups,
        )
    except OSError as exc:
        raise OSError(
            exc.errno or errno.EINVAL, f"cannot execute {service.exec}: {errname(exc)}"
        ) from exc
