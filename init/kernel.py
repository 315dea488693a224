"""The seam: every call the init makes into the kernel, one method each.

Boot logic never calls os, signal or the cffi module directly; it receives a `Kernel` (or the
recording fake in tests/fakes.py) and calls these methods. Errors are `OSError` with `errno` set,
whatever the underlying call was, so callers name the errnos they expect.

Two calls are guarded because a host test may run the init as an ordinary process: `reboot` and
`kill(-1, …)` act only when this process is PID 1 (of the machine or of a PID namespace, where
reboot(2) just ends the namespace). Otherwise reboot prints what it would have done and exits.
"""

from __future__ import annotations

import _signal as signal  # not `signal`: it imports enum

# The C module, not socket.py: that one also imports selectors, and PID 1 needs just one
# datagram socket for interface ioctls.
import errno
import fcntl
import posix
import time

ETH_P_IP = 0x0800
BROADCAST = b"\xff" * 6  # the hardware broadcast address

REBOOT_CMDS = {
    "reboot": "RB_AUTOBOOT",
    "poweroff": "RB_POWER_OFF",
    "halt": "RB_HALT_SYSTEM",
    "cad-off": "RB_DISABLE_CAD",
}
# Reboots that carry a command for the firmware (init/slots.py): action -> the command.
REBOOT_WITH = {"tryboot": "0 tryboot"}

# Python ignores these at start-up; an exec'd program must get the default actions back,
# or e.g. a shell pipeline in a service never sees SIGPIPE.
RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def write_durably(kernel: Kernel, path: str, data: bytes, mode: int = 0o644) -> None:
    """Write `path` so that a reader, and a power cut at any moment, leaves the old content or
    the whole new one: a temporary file, fsync (its data and size are on the card), rename over
    the old one, fsync of the folder (the rename is on the card). Kernel.write_file and the
    fake's both run this, so the tests' transcripts show every step. A failed write (ENOSPC)
    removes the temporary file, giving its space back, and raises."""
    tmp = path + ".tmp"
    fd = kernel.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, mode)
    try:
        kernel.write(fd, data)
        kernel.fsync(fd)
    except OSError:
        kernel.close(fd)
        try:
            kernel.unlink(tmp)
        except OSError:
            pass  # nothing more can be done; the next write truncates it
        raise
    kernel.close(fd)
    kernel.rename(tmp, path)
    folder = kernel.open(
        path.rpartition("/")[0] or "/", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC
    )
    try:
        kernel.fsync(folder)
    finally:
        kernel.close(folder)


def _noop(signum: int, frame: object) -> None:
    """A handler is needed for set_wakeup_fd to see the signal; the work happens in the loop."""


class Kernel:
    """The real kernel (also used by the host tests inside a PID + mount namespace)."""

    def __init__(self) -> None:
        # The cffi module is compiled into the static init; on a host it is the extension
        # built by `python -m init.sysdefs build/host`.
        from _pinit_sys import ffi, lib

        self._ffi = ffi
        self._lib = lib
        self._pid = posix.getpid()
        self._cwd = posix.getcwd()  # PID 1 never changes it

    def _check(self, result: int, *what: str) -> None:
        if result < 0:
            err = self._ffi.errno
            raise OSError(err, posix.strerror(err), *what[:1])

    # --- file systems -------------------------------------------------------------------------

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
        raw = data.encode() if data else self._ffi.NULL
        result = self._lib.mount(source.encode(), target.encode(), fstype.encode(), flags, raw)
        self._check(result, target)

    def umount(self, target: str, flags: int = 0) -> None:
        self._check(self._lib.umount2(target.encode(), flags), target)

    def mkdir(self, path: str, mode: int) -> None:
        posix.mkdir(path, mode)

    def rmdir(self, path: str) -> None:
        posix.rmdir(path)

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        posix.mknod(path, mode, posix.makedev(major, minor))

    def symlink(self, target: str, path: str) -> None:
        posix.symlink(target, path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        posix.chown(path, uid, gid)

    def chmod(self, path: str, mode: int) -> None:
        posix.chmod(path, mode)

    def mkfifo(self, path: str, mode: int) -> None:
        posix.mkfifo(path, mode)

    def umask(self, mask: int) -> int:
        return posix.umask(mask)

    def exists(self, path: str) -> bool:
        """Like os.path.lexists (a dangling link exists): the init imports no `os` to boot."""
        try:
            posix.lstat(path)
        except (OSError, ValueError):
            return False
        return True

    def is_mountpoint(self, path: str) -> bool:
        """Something is mounted on `path` (it sits on another device than its parent)."""
        try:
            return posix.stat(path).st_dev != posix.stat(path.rstrip("/") + "/..").st_dev
        except OSError:
            return False

    def early_service(self) -> tuple[int, int] | None:
        """(pid, output pipe or -1) of the service the C prologue started before Python (see
        init/prologue.c, "early start"), handed over once through the environment."""
        value = posix.environ.pop(b"PINIT_EARLY", b"").decode()
        if value:
            posix.unsetenv("PINIT_EARLY")
        pid, _, fd = value.partition(",")
        try:
            return (int(pid), int(fd)) if int(pid) > 0 else None  # fd -1: output on the console
        except ValueError:
            return None

    def early_module_times(self) -> list[tuple[float, float]]:
        """(start, end) on CLOCK_BOOTTIME of each module the C prologue loaded before it
        started the first service, in its order; handed over once through the environment."""
        from init.early import module_times

        value = posix.environ.pop(b"PINIT_EARLY_MODULES", b"").decode()
        if value:
            posix.unsetenv("PINIT_EARLY_MODULES")
        return module_times(value)

    def setpriority(self, nice: int, pid: int = 0) -> None:
        posix.setpriority(posix.PRIO_PROCESS, pid, nice)

    def listdir(self, path: str) -> list[str]:
        return sorted(posix.listdir(path))

    def realpath(self, path: str) -> str:
        """posixpath.realpath(path) for an absolute path, without `os` (big for PID 1): every
        symbolic link resolved; a part that is missing or not a link is kept as it is."""
        parts = [p for p in reversed(path.split("/")) if p not in ("", ".")]
        resolved = ""
        links = 0
        while parts:
            part = parts.pop()
            if part == "..":
                resolved = resolved.rpartition("/")[0]
                continue
            candidate = f"{resolved}/{part}"
            try:
                target = posix.readlink(candidate)
            except OSError:
                resolved = candidate
                continue
            links += 1
            if links > 40:
                raise OSError(errno.ELOOP, posix.strerror(errno.ELOOP), path)
            if target.startswith("/"):
                resolved = ""
            parts += [p for p in reversed(target.split("/")) if p not in ("", ".")]
        return resolved or "/"

    def read_file(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            if size < 0:
                chunks = []
                while chunk := posix.read(fd, 65536):
                    chunks.append(chunk)
                return b"".join(chunks)
            return posix.pread(fd, size, offset)
        finally:
            posix.close(fd)

    def read_text(self, path: str) -> str:
        return self.read_file(path).decode("utf-8", "replace")

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Whole or not at all, also across a power cut (write_durably)."""
        write_durably(self, path, data, mode)

    # --- file descriptors ---------------------------------------------------------------------

    def uevent_socket(self) -> int:
        """A non-blocking socket on which the kernel announces devices (NETLINK_KOBJECT_UEVENT)."""
        fd = int(self._lib.pinit_uevent_socket())
        self._check(fd, "uevent socket")
        return fd

    def file_size(self, fd: int) -> int:
        return posix.fstat(fd).st_size

    def free_space(self, path: str) -> int:
        """Bytes an unprivileged writer may still put on the file system that holds `path`."""
        info = posix.statvfs(path)
        return info.f_bavail * info.f_frsize

    def fdatasync(self, fd: int) -> None:
        posix.fdatasync(fd)

    def fsync(self, fd: int) -> None:
        posix.fsync(fd)

    def ftruncate(self, fd: int, size: int) -> None:
        posix.ftruncate(fd, size)

    def unlink(self, path: str) -> None:
        posix.unlink(path)

    def rename(self, old: str, new: str) -> None:
        posix.rename(old, new)

    def set_value(self, path: str, value: str) -> None:
        """Write a kernel setting (a cgroup or /proc file) in place: no temporary file."""
        fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
        try:
            posix.write(fd, value.encode())
        finally:
            posix.close(fd)

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        """Callers pass O_CLOEXEC themselves: the console fds must survive exec."""
        return posix.open(path, flags, mode)

    def close(self, fd: int) -> None:
        posix.close(fd)

    def read(self, fd: int, size: int) -> bytes:
        """b"" means end of file; a non-blocking fd with nothing to read raises EAGAIN."""
        return posix.read(fd, size)

    def write(self, fd: int, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[posix.write(fd, view) :]
        return len(data)

    def write_some(self, fd: int, data: bytes) -> int:
        """One write(2): how much the fd took. A full non-blocking fd raises EAGAIN."""
        return posix.write(fd, data)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        """O_NONBLOCK off or on: for the whole open file description, shared by its dups."""
        posix.set_blocking(fd, blocking)

    def dup2(self, fd: int, fd2: int) -> None:
        posix.dup2(fd, fd2, inheritable=True)

    def partition(self, fd: int, number: int, start: int, length: int, add: bool = False) -> None:
        """The kernel's view of partition `number` of the disk open as `fd`: `length` bytes
        from byte `start`, resized or `add`ed (after the partition table on the disk says so)."""
        lib = self._lib
        op = lib.BLKPG_ADD_PARTITION if add else lib.BLKPG_RESIZE_PARTITION
        self._check(lib.pinit_blkpg(fd, op, number, start, length), "BLKPG")

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        """All of `data` at byte `offset` of `fd` (a disk), whatever the file position."""
        view = memoryview(data)
        while view:
            done = posix.pwrite(fd, view, offset)
            view, offset = view[done:], offset + done

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        result: bytes = fcntl.ioctl(fd, request, arg)
        return result

    def ioctl_int(self, fd: int, request: int, arg: int) -> int:
        """An ioctl whose argument is a number; returns what the call returns."""
        result: int = fcntl.ioctl(fd, request, arg)
        return result

    def socket(self) -> int:
        """A datagram socket, for interface ioctls (SIOCGIFFLAGS and friends). Through cffi, not
        the `socket` module: its C part drags glibc's resolver into the static init."""
        lib = self._lib
        fd: int = lib.socket(lib.AF_INET, lib.SOCK_DGRAM | lib.SOCK_CLOEXEC, 0)
        self._check(fd, "socket")
        return fd

    def packet_socket(self, ifindex: int, protocol: int = ETH_P_IP) -> int:
        """A non-blocking packet socket for one ethertype of one interface: IPv4 (DHCP before
        there is an address) or EAPOL (Wi-Fi's key handshakes)."""
        fd = int(self._lib.pinit_packet_socket(ifindex, protocol))
        self._check(fd, "packet socket")
        return fd

    def packet_send(
        self, fd: int, ifindex: int, data: bytes, protocol: int = ETH_P_IP, dest: bytes = BROADCAST
    ) -> None:
        """Send a packet of `protocol` to the hardware address `dest` (by default broadcast)."""
        self._check(
            self._lib.pinit_packet_send(fd, ifindex, protocol, dest, data, len(data)), "packet send"
        )

    def netlink_socket(self, protocol: int, groups: int = 0) -> int:
        """A non-blocking netlink socket (write = a request to the kernel), subscribed to the
        multicast `groups`."""
        fd = int(self._lib.pinit_netlink_socket(protocol, groups))
        self._check(fd, "netlink socket")
        return fd

    def netlink_join(self, fd: int, group: int) -> None:
        """Subscribe a netlink socket to multicast group `group` (a number past 32 too)."""
        self._check(self._lib.pinit_netlink_join(fd, group), "netlink group")

    def udp_socket(self, address: bytes, port: int) -> int:
        """A non-blocking UDP socket connected to address (4 bytes) and port."""
        fd = int(self._lib.pinit_udp_socket(address, port))
        self._check(fd, "udp socket")
        return fd

    def tcp_socket(self, address: bytes, port: int) -> int:
        """A non-blocking TCP socket connecting to address (4 bytes) and port: writable once
        connected."""
        fd = int(self._lib.pinit_tcp_socket(address, port))
        self._check(fd, "tcp socket")
        return fd

    def tcp_listen(self, port: int) -> int:
        """A non-blocking TCP socket listening on `port` of every address: readable when a
        client waits to be accepted."""
        fd = int(self._lib.pinit_tcp_listen(port))
        self._check(fd, f"tcp port {port}")
        return fd

    def tcp_accept(self, fd: int) -> tuple[int, bytes]:
        """(the waiting client's non-blocking socket, its address: 4 bytes) of a listening
        socket; BlockingIOError (EAGAIN) when none waits."""
        address = self._ffi.new("unsigned char[4]")
        client = int(self._lib.pinit_tcp_accept(fd, address))
        self._check(client, "accept")
        return client, bytes(self._ffi.buffer(address))

    # --- the rest of the kernel ---------------------------------------------------------------

    def finit_module(self, path: str, params: str) -> None:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            result = self._lib.pinit_finit_module(fd, params.encode(), 0)
            err = self._ffi.errno
        finally:
            posix.close(fd)
        if result < 0:
            raise OSError(err, posix.strerror(err), path)

    def sethostname(self, name: str) -> None:
        raw = name.encode()
        self._check(self._lib.sethostname(raw, len(raw)), name)

    def uname_release(self) -> str:
        return posix.uname().release

    def uname_machine(self) -> str:
        return posix.uname().machine

    def sync(self) -> None:
        self._lib.sync()

    def reboot(self, action: str) -> None:
        """reboot(2): "reboot", "poweroff", "halt", "cad-off" (Ctrl-Alt-Del sends SIGINT) or
        "tryboot" (a restart that asks the firmware to try the other boot slot once)."""
        name = REBOOT_CMDS.get(action, action)
        if self._pid != 1:
            # A host test running the init as a plain process must not reboot the machine.
            if action != "cad-off":
                posix.write(1, f"pinit: not PID 1, so no reboot(2) {name}; exiting\n".encode())
                posix._exit(0)
            return
        if action in REBOOT_WITH:
            self._check(self._lib.pinit_reboot_with(REBOOT_WITH[action].encode()), action)
            return
        cmd = getattr(self._lib, name)
        # The magic numbers are unsigned in <sys/reboot.h> (RB_HALT_SYSTEM is 0xcdef0123) but
        # reboot() takes an int: pass the same 32 bits as the negative int they are in C.
        if cmd >= 1 << 31:
            cmd -= 1 << 32
        self._check(self._lib.reboot(cmd), name)

    # --- processes ----------------------------------------------------------------------------

    def getpid(self) -> int:
        return self._pid

    def kill(self, pid: int, sig: int) -> None:
        if pid == -1 and self._pid != 1:
            # kill(-1) from an ordinary process would hit every process of this user.
            raise PermissionError(1, "kill(-1) only as PID 1", "-1")
        posix.kill(pid, sig)

    def killpg(self, pgid: int, sig: int) -> None:
        posix.killpg(pgid, sig)

    def waitpid(self, pid: int, options: int) -> tuple[int, int]:
        return posix.waitpid(pid, options)

    def spawn(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        cgroup: str = "",
        groups: tuple[int, ...] = (),
    ) -> tuple[int, int]:
        """Start `argv` in a new session, stdin on /dev/null, stdout and stderr on a new pipe;
        returns (pid, the pipe's non-blocking read end). OSError if it cannot be executed.

        With nothing to change but the session, posix_spawn (vfork-style: no copy of PID 1's
        page tables, which under emulation costs more than the exec) reports exec errors
        itself. A cwd or user change needs fork, where the child reports a failed exec over a
        close-on-exec pipe; then it exits 127 and is reaped by the caller's one waitpid loop.
        A `cgroup` is joined by the child before it execs, so nothing the service ever starts
        is outside the group: through the C helper pinit_spawn (vfork, like posix_spawn) when
        nothing else changes, else in the forked child.
        """
        out_r, out_w = posix.pipe()
        try:
            # Nothing to change but the session (and maybe the cgroup): no fork of PID 1.
            plain = uid == 0 and gid == 0 and not groups and cwd == self._cwd
            if plain and not cgroup:
                pid = posix.posix_spawn(
                    argv[0],
                    argv,
                    env,
                    setsid=True,
                    setsigdef=RESET_SIGNALS,
                    file_actions=[
                        (posix.POSIX_SPAWN_OPEN, 0, "/dev/null", posix.O_RDONLY, 0),
                        (posix.POSIX_SPAWN_DUP2, out_w, 1),
                        (posix.POSIX_SPAWN_DUP2, out_w, 2),
                    ],
                )
            elif plain:
                pid = self._spawn_into(argv, env, cgroup, out_w)
            else:
                pid = self._fork_exec(argv, env, cwd, uid, gid, out_w, cgroup, groups)
        except BaseException:
            posix.close(out_r)
            raise
        finally:
            posix.close(out_w)
        posix.set_blocking(out_r, False)
        return pid, out_r

    def _spawn_into(self, argv: list[str], env: dict[str, str], cgroup: str, out_w: int) -> int:
        """posix_spawn with a cgroup: the C helper pinit_spawn (init/sysdefs.py)."""
        ffi = self._ffi
        keep = [ffi.new("char[]", a.encode()) for a in argv]
        env_c = [ffi.new("char[]", f"{k}={v}".encode()) for k, v in env.items()]
        argv_p = ffi.new("char *[]", [*keep, ffi.NULL])
        envp = ffi.new("char *[]", [*env_c, ffi.NULL])
        err = ffi.new("int *")
        procs = posix.open(f"{cgroup}/cgroup.procs", posix.O_WRONLY | posix.O_CLOEXEC)
        null = posix.open("/dev/null", posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            pid = self._lib.pinit_spawn(keep[0], argv_p, envp, procs, out_w, null, err)
        finally:
            posix.close(procs)
            posix.close(null)
        if pid < 0 or err[0]:
            # An exec failure: the child exited 127; the caller's waitpid loop reaps it.
            raise OSError(err[0], posix.strerror(err[0]), argv[0])
        return int(pid)

    def _fork_exec(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        out_w: int,
        cgroup: str = "",
        groups: tuple[int, ...] = (),
    ) -> int:
        err_r, err_w = posix.pipe()  # close-on-exec: EOF with no data means exec succeeded
        pid = posix.fork()
        if pid == 0:
            try:
                posix.close(err_r)
                if cgroup:
                    self.set_value(f"{cgroup}/cgroup.procs", "0")
                posix.setsid()
                null = posix.open("/dev/null", posix.O_RDONLY)
                posix.dup2(null, 0)
                posix.dup2(out_w, 1)
                posix.dup2(out_w, 2)
                self._become(argv, env, cwd, uid, gid, groups)
            except BaseException as exc:
                err = exc.errno if isinstance(exc, OSError) and exc.errno else errno.EINVAL
                posix.write(err_w, str(err).encode())
            finally:
                posix._exit(127)
        posix.close(err_w)
        try:
            report = posix.read(err_r, 32)
        finally:
            posix.close(err_r)
        if report:
            err = int(report)
            raise OSError(err, posix.strerror(err), argv[0])
        return pid

    def execve(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        groups: tuple[int, ...] = (),
    ) -> None:
        """Replace this process (mode "exec"); returns only by raising OSError."""
        self._become(argv, env, cwd, uid, gid, groups)

    def _become(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        groups: tuple[int, ...] = (),
    ) -> None:
        signal.set_wakeup_fd(-1)
        for sig in RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        posix.chdir(cwd)
        if uid or gid or groups:
            posix.setgroups(list(groups))
            posix.setgid(gid)
            posix.setuid(uid)
        if uid:
            self._check(self._lib.pinit_no_new_privs(), "prctl(PR_SET_NO_NEW_PRIVS)")
        posix.execve(argv[0], argv, env)

    # --- time and events ----------------------------------------------------------------------

    def clock(self) -> float:
        """CLOCK_BOOTTIME: seconds since the kernel started, so boot times are absolute."""
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def wall_clock(self) -> float:
        """CLOCK_REALTIME: seconds since 1970 (what a Pi without a battery starts at zero)."""
        return time.clock_gettime(time.CLOCK_REALTIME)

    def set_wall_clock(self, seconds: float) -> None:
        time.clock_settime(time.CLOCK_REALTIME, seconds)

    def slew_wall_clock(self, seconds: float) -> None:
        """Move the clock by `seconds` gradually (adjtime(3)): it never jumps or goes back."""
        self._check(self._lib.pinit_adjtime(round(seconds * 1e6)), "adjtime")

    def select(
        self, fds: list[int], timeout: float | None, writable: list[int] | None = None
    ) -> list[int]:
        """The fds of `fds` that are readable and of `writable` that are writable, in one list
        (no fd is in both)."""
        import select  # here: the supervisor's loop is the first to wait, once the app runs

        ready, room, _ = select.select(fds, writable or [], [], timeout)
        return ready + room

    def watch_signals(self, signals: tuple[int, ...]) -> int:
        """Route `signals` to a pipe (one byte = one signal number); returns its read end."""
        read_end, write_end = posix.pipe()
        posix.set_blocking(read_end, False)
        posix.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for sig in signals:
            signal.signal(sig, _noop)
        # The static init's C prologue blocks these as PID 1: the kernel drops a signal to init
        # that has no handler, but keeps a blocked one pending. Anything sent during start-up
        # (say, by an early-started app) arrives now. Services inherit the unblocked mask.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
        return read_end
