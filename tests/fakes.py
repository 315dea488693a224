"""A recording fake of init.kernel.Kernel: a tiny simulated machine with a virtual clock.

Every call appends one line to `transcript` ("  1.004 mount proc /proc proc nosuid,nodev,noexec"),
except clock() and getpid(), which would drown everything else. Console writes (fd 1, or PID
1's own non-blocking open of a /dev console) appear as "console| pinit: ...". Scripting:

    fake = FakeKernel(files={"/proc/cmdline": b"console=ttyAMA0"})
    fake.fail("mount devtmpfs", errno.ENODEV)            # calls whose line starts so → OSError
    fake.program("/app/hello", Run(2.0, status=1, output=b"hello\\n"))   # each spawn: next Run
    fake.at(5.0, signal=signal.SIGTERM)                   # a signal to PID 1 at t=5.0
    fake.at(3.0, control=b"poweroff\\n")                  # a write to the control FIFO
    fake.stall_console(1.5, 8.0)                          # the console takes nothing (EAGAIN)
    fake.heal("write /data/log/app.log")                  # a failure scripted by fail() ends
    fake.tcp_server = lambda request: [(0.1, b"HTTP/1.0 200 OK\\r\\n\\r\\n...")]  # then it closes
    fake.client(2.0, (0.0, b"PUT /update HTTP/1.1\\r\\n..."))  # to the init's listening socket

Files written with O_CREAT keep what is written (`files`); write_file runs the real
init.kernel.write_durably, so a transcript shows its temporary file, fsyncs and rename.

The simulation ends when the init calls reboot(2) (Rebooted) or execve (Execed); a select()
with nothing left to wait for raises Deadlock.
"""

from __future__ import annotations

import errno
import heapq
import os
import signal
import stat
from collections.abc import Callable
from dataclasses import dataclass

from init.grow import EXT4_IOC_RESIZE_FS
from init.kernel import write_durably
from init.net import SIOCGIFFLAGS, SIOCSIFFLAGS
from init.rootfs import FLAG_NAMES
from init.watchdog import WDIOC_KEEPALIVE, WDIOC_SETTIMEOUT

START = 1.0  # the virtual CLOCK_BOOTTIME when the init starts: the kernel took a second
COST = {"mount": 0.002, "finit_module": 0.010, "spawn": 0.001}  # virtual seconds per call
IOCTLS = {
    SIOCGIFFLAGS: "SIOCGIFFLAGS",
    SIOCSIFFLAGS: "SIOCSIFFLAGS",
    WDIOC_SETTIMEOUT: "WDIOC_SETTIMEOUT",
    WDIOC_KEEPALIVE: "WDIOC_KEEPALIVE",
    EXT4_IOC_RESIZE_FS: "EXT4_IOC_RESIZE_FS",
}
OPEN_FLAGS = {
    "O_WRONLY": os.O_WRONLY,
    "O_RDWR": os.O_RDWR,
    "O_NONBLOCK": os.O_NONBLOCK,
    "O_NOCTTY": os.O_NOCTTY,
    "O_CLOEXEC": os.O_CLOEXEC,
    "O_CREAT": os.O_CREAT,
    "O_TRUNC": os.O_TRUNC,
    "O_APPEND": os.O_APPEND,
    "O_DIRECTORY": os.O_DIRECTORY,
}
DEVTMPFS = (
    "console",
    "null",
    "zero",
    "tty",
    "ptmx",
    "random",
    "urandom",
    "kmsg",
    "watchdog",
    "ttyAMA0",
)
INITRAMFS = ("/", "/proc", "/sys", "/dev", "/dev/console", "/run", "/tmp", "/etc", "/data")


class Rebooted(BaseException):
    """reboot(2) was called: the end of a simulated boot. BaseException, as it must pass
    through the init's catch-everything fatal path the way a real reboot would."""

    def __init__(self, action: str) -> None:
        super().__init__(action)
        self.action = action


class Execed(BaseException):
    """execve in PID 1 succeeded (mode "exec")."""


class Deadlock(Exception):
    """The init waits forever and nothing is scheduled to wake it."""


@dataclass(frozen=True)
class Run:
    """One run of a scripted program."""

    seconds: float | None = 1.0  # runs this long, then exits by itself (None: until killed)
    status: int = 0  # its exit status ...
    signal: int = 0  # ... or the signal that kills it
    output: bytes = b""  # written as soon as it starts
    ignore_term: bool = False  # SIGTERM does nothing; only SIGKILL stops it
    term_seconds: float = 0.01  # how long it takes to die after SIGTERM


def _flags(value: int, names: dict[str, int]) -> str:
    words = [name for name, bit in names.items() if value & bit]
    return "|".join(words) or "0"


def _encode(status: int, sig: int) -> int:
    return sig if sig else (status & 0xFF) << 8


class FakeKernel:
    def __init__(
        self,
        files: dict[str, bytes] | None = None,
        pid: int = 1,
        release: str = "6.1.0-test",
        links: dict[str, str] | None = None,
        devices: dict[str, bytes] | None = None,
    ) -> None:
        """`files` exist from the start; `devices` are block devices' contents, readable once
        their node exists (made by mknod, as without devtmpfs)."""
        self.transcript: list[str] = []
        self.now = START
        self.files = dict(files or {})
        self.devices: dict[str, bytes | bytearray] = dict(devices or {})
        self.paths = set(INITRAMFS) | set(self.files)
        self.links = dict(links or {})
        self.release = release
        self._pid = pid
        self._failures: list[tuple[str, int]] = []
        self._programs: dict[str, list[Run]] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._next_fd = 3
        self._next_pid = 100
        self.fds: dict[int, str] = {}  # fd → what it is, for the transcript
        self._pending: dict[int, bytearray] = {}  # readable data per fd
        self._datagrams: dict[int, list[bytes]] = {}  # a socket's datagrams: one per read
        self._eof: set[int] = set()
        self._signal_fd = -1
        self._control_fd = -1
        self.alive: dict[int, Run] = {}  # pid → its run
        self._pipe_of: dict[int, int] = {}  # pid → its output fd
        self._zombies: list[tuple[int, int]] = []
        self.wall = 0.0  # CLOCK_REALTIME at START: a Pi in 1970
        self.dhcp_server: Callable[[bytes], list[tuple[float, bytes]]] | None = None
        self.sntp_server: Callable[[bytes], list[tuple[float, bytes]]] | None = None
        self.eapol_peer: Callable[[bytes], list[tuple[float, bytes]]] | None = None
        # generic netlink (nl80211): a request → the datagrams that answer it at once
        self.genl_peer: Callable[[bytes], list[bytes]] | None = None
        self.joined: dict[int, list[int]] = {}  # netlink fd → the multicast groups it joined
        self._link_fd = -1
        self.consoles: set[int] = set()  # PID 1's own opens of the console
        self.regular: set[int] = set()  # files opened to be written (O_CREAT)
        self.stalled: set[int] = set()  # fds whose writes get EAGAIN (a stopped console)
        # TCP: a connection the init opens → the server's [(seconds later, bytes)], then it
        # closes; `client()` connects to the init's listening socket. What the init writes to
        # either kind of TCP socket is kept in `sent`, by fd.
        self.tcp_server: Callable[[bytes], list[tuple[float, bytes]]] | None = None
        self.sent: dict[int, bytes] = {}
        self._listening = -1
        self._clients: list[tuple[tuple[tuple[float, bytes], ...], bool]] = []
        self.free = 1 << 30  # bytes free on every file system (statvfs)

    # --- scripting ---------------------------------------------------------------------------

    def fail(self, prefix: str, err: int) -> None:
        self._failures.append((prefix, err))

    def heal(self, prefix: str) -> None:
        """Calls whose line starts with `prefix` work again (space was freed)."""
        self._failures = [(p, e) for p, e in self._failures if p != prefix]

    def program(self, path: str, *runs: Run) -> None:
        self._programs[path] = list(runs)
        self.paths.add(path)

    def at(self, when: float, signal: int = 0, control: bytes = b"") -> None:
        if signal:
            self._schedule(when, lambda: self._deliver(signal))
        if control:
            self._schedule(when, lambda: self._feed(self._control_fd, control))

    def stall_console(self, start: float, end: float) -> None:
        """From `start` to `end` the console takes nothing (Ctrl-S, flow control, a serial
        gadget nobody drains): PID 1's writes to it get EAGAIN."""

        def stall() -> None:
            self.stalled |= self.consoles | {1}

        self._schedule(start, stall)
        self._schedule(end, self.stalled.clear)

    # --- machinery ---------------------------------------------------------------------------

    def _record(self, line: str, name: str = "", path: str = "") -> None:
        self.now += COST.get(line.split(" ", 1)[0], 0.0)
        self.transcript.append(f"{self.now:8.3f} {line}")
        for prefix, err in self._failures:
            if line.startswith(prefix):
                raise OSError(err, os.strerror(err), path or name)

    def _schedule(self, when: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._events, (when, self._seq, action))

    def _run_due(self) -> None:
        while self._events and self._events[0][0] <= self.now + 1e-9:
            heapq.heappop(self._events)[2]()

    def _new_fd(self, what: str) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = what
        return fd

    def uevent(self, data: bytes) -> None:
        """The kernel announces a device: one datagram on each open uevent socket."""
        for fd, kind in self.fds.items():
            if kind == "uevent":
                self._datagrams.setdefault(fd, []).append(data)

    def _feed(self, fd: int, data: bytes) -> None:
        if fd in self.fds:
            self._pending.setdefault(fd, bytearray()).extend(data)

    def _deliver(self, signum: int) -> None:
        self._feed(self._signal_fd, bytes([signum]))

    def _exit(self, pid: int, status: int = 0, sig: int = 0) -> None:
        if self.alive.pop(pid, None) is None:
            return
        self._zombies.append((pid, _encode(status, sig)))
        self._eof.add(self._pipe_of.pop(pid))
        self._deliver(signal.SIGCHLD)

    def _exists(self, path: str) -> bool:
        return path in self.paths or any(p.startswith(path.rstrip("/") + "/") for p in self.paths)

    def _need(self, path: str) -> None:
        if not self._exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def _create(self, path: str) -> None:
        if path in self.paths:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        self.paths.add(path)

    # --- file systems ------------------------------------------------------------------------

    def mount(self, source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
        self._record(
            f"mount {source} {target} {fstype} {_flags(flags, FLAG_NAMES)} {data}".rstrip(),
            path=target,
        )
        self._need(target)
        if fstype == "tmpfs" and target == "/dev":
            self.paths = {p for p in self.paths if not p.startswith("/dev/")}
        if fstype == "devtmpfs":
            self.paths |= {f"{target}/{name}" for name in DEVTMPFS}
        if fstype == "sysfs":
            self.paths |= {f"{target}/fs", f"{target}/fs/cgroup"}
        if fstype == "proc":
            self.paths |= {f"{target}/self"}

    def umount(self, target: str, flags: int = 0) -> None:
        self._record(f"umount {target} {flags}", path=target)

    def mkdir(self, path: str, mode: int) -> None:
        self._record(f"mkdir {path} {mode:o}", path=path)
        self._create(path)

    def mknod(self, path: str, mode: int, major: int, minor: int) -> None:
        kind = "c" if stat.S_ISCHR(mode) else "b"
        self._record(f"mknod {path} {kind} {major}:{minor} {stat.S_IMODE(mode):o}", path=path)
        self._create(path)

    def symlink(self, target: str, path: str) -> None:
        self._record(f"symlink {path} -> {target}", path=path)
        self._create(path)

    def chown(self, path: str, uid: int, gid: int) -> None:
        self._record(f"chown {path} {uid}:{gid}", path=path)

    def chmod(self, path: str, mode: int) -> None:
        self._record(f"chmod {path} {mode:o}", path=path)

    def mkfifo(self, path: str, mode: int) -> None:
        self._record(f"mkfifo {path} {mode:o}", path=path)
        self._create(path)

    def umask(self, mask: int) -> int:
        self._record(f"umask {mask:03o}")
        return 0o022

    def is_mountpoint(self, path: str) -> bool:
        self._record(f"is_mountpoint {path} -> False")
        return False

    def early_service(self) -> tuple[int, int] | None:
        return None

    def early_module_times(self) -> list[tuple[float, float]]:
        return []

    def setpriority(self, nice: int, pid: int = 0) -> None:
        self._record(f"setpriority {nice}" + (f" pid {pid}" if pid else ""))

    def exists(self, path: str) -> bool:
        found = self._exists(path)
        self._record(f"exists {path} -> {found}")
        return found

    def listdir(self, path: str) -> list[str]:
        self._record(f"listdir {path}", path=path)
        self._need(path)
        prefix = path.rstrip("/") + "/"
        return sorted({p[len(prefix) :].split("/")[0] for p in self.paths if p.startswith(prefix)})

    def realpath(self, path: str) -> str:
        self._record(f"realpath {path}")
        return self.links.get(path, path)

    def read_file(self, path: str, size: int = -1, offset: int = 0) -> bytes:
        self._record(f"read_file {path}" + (f" {size}@{offset}" if size >= 0 else ""), path=path)
        if path in self.devices and path in self.paths:
            data = self.devices[path]
        elif path in self.files:
            data = self.files[path]
        else:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return bytes(data[offset : offset + size] if size >= 0 else data)

    def read_text(self, path: str) -> str:
        return self.read_file(path).decode()

    def uevent_socket(self) -> int:
        self._record("uevent_socket")
        return self._new_fd("uevent")

    def file_size(self, fd: int) -> int:
        return len(self.files.get(self.fds.get(fd, ""), b""))

    def free_space(self, path: str) -> int:
        self._record(f"free_space {path} -> {self.free}", path=path)
        self._need(path)
        return self.free

    def fdatasync(self, fd: int) -> None:
        self._record(f"fdatasync {self.fds.get(fd, '')}")

    def fsync(self, fd: int) -> None:
        self._record(f"fsync {self.fds.get(fd, '')}")

    def ftruncate(self, fd: int, size: int) -> None:
        self._record(f"ftruncate {self.fds.get(fd, '')} {size}")
        name = self.fds.get(fd, "")
        self.files[name] = self.files.get(name, b"")[:size]

    def rmdir(self, path: str) -> None:
        self._record(f"rmdir {path}", path=path)
        self._need(path)
        self.paths.discard(path)

    def unlink(self, path: str) -> None:
        self._record(f"unlink {path}", path=path)
        self._need(path)
        self.files.pop(path, None)
        self.paths.discard(path)

    def rename(self, old: str, new: str) -> None:
        self._record(f"rename {old} {new}", path=old)
        self.files[new] = self.files.pop(old, b"")
        self.paths.discard(old)
        self.paths.add(new)

    def set_value(self, path: str, value: str) -> None:
        self._record(f"set {path} {value}", path=path)
        self._need(path.rpartition("/")[0])
        self.files[path] = value.encode()

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """The real steps (init.kernel.write_durably) on the fake's files."""
        write_durably(self, path, data, mode)  # type: ignore[arg-type]

    # --- file descriptors --------------------------------------------------------------------

    def open(self, path: str, flags: int, mode: int = 0o666) -> int:
        self._record(f"open {path} {_flags(flags, OPEN_FLAGS)}", path=path)
        if flags & os.O_CREAT:
            self._need(path.rpartition("/")[0] or "/")
            self.paths.add(path)
            if flags & os.O_TRUNC or path not in self.files:
                self.files[path] = b""
        self._need(path)
        fd = self._new_fd(path)
        if flags & os.O_CREAT:
            self.regular.add(fd)
        if path.endswith("/run/pinit/control"):
            self._control_fd = fd
        if path.startswith("/dev/") and flags & os.O_NONBLOCK and flags & os.O_WRONLY:
            self.consoles.add(fd)
        return fd

    def close(self, fd: int) -> None:
        self._record(f"close {fd}")
        self.fds.pop(fd, None)
        self._pending.pop(fd, None)

    def read(self, fd: int, size: int) -> bytes:
        if self._datagrams.get(fd):
            data = self._datagrams[fd].pop(0)[:size]
            self._record(f"read {fd} -> {data!r}")
            return data
        pending = self._pending.get(fd)
        if pending:
            data = bytes(pending[:size])
            del pending[:size]
            self._record(f"read {fd} -> {data!r}")
            return data
        if fd in self._eof:
            self._record(f"read {fd} -> EOF")
            return b""
        self._record(f"read {fd} -> EAGAIN")
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def write(self, fd: int, data: bytes) -> int:
        if fd in (1, 2) or fd in self.consoles:
            for line in data.decode(errors="replace").splitlines():
                self._record(f"console| {line}")
        elif self.fds.get(fd) == "netlink":
            import struct

            kind, seq = struct.unpack_from("=HxxI", data, 4)
            self._record(f"netlink {kind} seq {seq}", name="netlink")
            self._feed(fd, struct.pack("=IHHIIi", 36, 2, 0, seq, 0, 0) + data[:16])
        elif self.fds.get(fd) == "genl":
            assert self.genl_peer is not None
            self._record(f"genl {data[16]} seq {int.from_bytes(data[8:12], 'little')}")
            for reply in self.genl_peer(data):
                self._feed(fd, reply)
            if fd not in self._pending:
                self._pending[fd] = bytearray()
        elif self.fds.get(fd, "").startswith(("tcp ", "client ")):
            self._record(f"write {self.fds[fd]} {len(data)} bytes", name=self.fds[fd])
            self.sent[fd] = self.sent.get(fd, b"") + data
            if self.fds[fd].startswith("tcp ") and self.tcp_server is not None:
                answers = self.tcp_server(data)
                for delay, reply in answers:
                    self._schedule(self.now + delay, lambda r=reply, f=fd: self._feed(f, r))
                last = max((delay for delay, _ in answers), default=0.0)
                self._schedule(self.now + last, lambda f=fd: self._eof.add(f))
        elif self.fds.get(fd, "").startswith("udp "):
            self._record(f"write {self.fds[fd]} {len(data)} bytes")
            for delay, reply in self.sntp_server(data) if self.sntp_server else ():
                self._schedule(self.now + delay, lambda r=reply, f=fd: self._feed(f, r))
        else:
            shown = repr(data) if len(data) <= 80 else f"{len(data)} bytes"
            self._record(f"write {self.fds.get(fd, fd)} {shown}")
            path = self.fds.get(fd, "")
            if path in self.devices:  # a disk's first sector (an MBR): written from offset 0
                self.devices[path] = data + self.devices[path][len(data) :]
            if fd in self.regular:
                self.files[self.fds[fd]] += data
        return len(data)

    def write_some(self, fd: int, data: bytes) -> int:
        if fd in self.stalled:
            self._record(f"write {fd} -> EAGAIN")
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        return self.write(fd, data)

    def set_blocking(self, fd: int, blocking: bool) -> None:
        self._record(f"set_blocking {fd} {blocking}")

    def dup2(self, fd: int, fd2: int) -> None:
        self._record(f"dup2 {fd} {fd2}")

    def partition(self, fd: int, number: int, start: int, length: int, add: bool = False) -> None:
        self._record(
            f"{'add' if add else 'resize'}_partition {self.fds.get(fd, fd)} {number} "
            f"{start} {length}"
        )

    def pwrite(self, fd: int, data: bytes, offset: int) -> None:
        self._record(f"pwrite {self.fds.get(fd, fd)} {len(data)} bytes at {offset}")
        path = self.fds.get(fd, "")
        if path in self.devices:  # in place: a disk is written block by block
            disk = self.devices[path]
            if not isinstance(disk, bytearray):
                disk = self.devices[path] = bytearray(disk)
            if len(disk) < offset + len(data):
                disk.extend(bytes(offset + len(data) - len(disk)))
            disk[offset : offset + len(data)] = data

    def ioctl_int(self, fd: int, request: int, arg: int) -> int:
        self._record(f"ioctl {self.fds.get(fd, fd)} {hex(request)} {arg}")
        return 0  # LOOP_CTL_GET_FREE: loop0

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        self._record(
            f"ioctl {self.fds.get(fd, fd)} {IOCTLS.get(request, hex(request))}"
            + (f" {int.from_bytes(arg, 'little')}" if request == EXT4_IOC_RESIZE_FS else "")
        )
        if request == SIOCGIFFLAGS:
            return arg[:16] + (0x8).to_bytes(2, "little") + arg[18:]  # IFF_LOOPBACK, down
        return arg

    def socket(self) -> int:
        self._record("socket")
        return self._new_fd("socket")

    # A scripted network: `dhcp_server(packet)` and `sntp_server(request)` answer what the
    # init sends with [(seconds later, bytes)]; netlink requests are acknowledged at once
    # unless `fail("netlink ...")` says otherwise; `link(carrier)` sends a link event.

    def packet_socket(self, ifindex: int, protocol: int = 0x0800) -> int:
        if protocol != 0x0800:
            self._record(f"packet_socket {ifindex} {protocol:#06x}")
            return self._new_fd("eapol")
        self._record(f"packet_socket {ifindex}")
        return self._new_fd("packet")

    def packet_send(
        self,
        fd: int,
        ifindex: int,
        data: bytes,
        protocol: int = 0x0800,
        dest: bytes = b"\xff" * 6,
    ) -> None:
        if protocol != 0x0800:
            self._record(f"packet_send {ifindex} {protocol:#06x} to {dest.hex(':')}")
            for delay, reply in self.eapol_peer(data) if self.eapol_peer else ():
                self._schedule(self.now + delay, lambda r=reply, f=fd: self._feed(f, r))
            return
        kind = data[28 + 240 + 2] if len(data) > 28 + 242 else 0
        self._record(f"packet_send {ifindex} DHCP {kind} to {'.'.join(map(str, data[16:20]))}")
        for delay, reply in self.dhcp_server(data) if self.dhcp_server else ():
            self._schedule(self.now + delay, lambda r=reply, f=fd: self._feed(f, r))

    def netlink_socket(self, protocol: int, groups: int = 0) -> int:
        self._record(f"netlink_socket {protocol} groups {groups}")
        if protocol == 16 and self.genl_peer is not None:  # generic netlink, scripted
            return self._new_fd("genl")
        fd = self._new_fd("link-events" if groups else "netlink")
        if groups:
            self._link_fd = fd
        return fd

    def netlink_join(self, fd: int, group: int) -> None:
        self._record(f"netlink_join {self.fds.get(fd, fd)} {group}")
        self.joined.setdefault(fd, []).append(group)

    def genl_event(self, when: float, message: bytes) -> None:
        """A generic netlink multicast at `when`, to every socket that joined a group."""

        def send() -> None:
            for fd in self.joined:
                self._feed(fd, message)

        self._schedule(when, send)

    def eapol(self, when: float, frame: bytes) -> None:
        """An EAPOL frame from the access point at `when`."""

        def send() -> None:
            for fd, what in self.fds.items():
                if what == "eapol":
                    self._feed(fd, frame)

        self._schedule(when, send)

    def link(self, when: float, index: int, name: str, carrier: bool) -> None:
        """A link event (RTM_NEWLINK) at `when`."""
        import struct

        flags = 0x1 | (0x10000 if carrier else 0)
        ifname = name.encode() + b"\0"
        attr = struct.pack("=HH", 4 + len(ifname), 3) + ifname
        attr += b"\0" * (-len(attr) % 4)
        body = struct.pack("=BxHiII", 0, 1, index, flags, 0) + attr
        message = struct.pack("=IHHII", 16 + len(body), 16, 0, 0, 0) + body
        self._schedule(when, lambda: self._feed(self._link_fd, message))

    def udp_socket(self, address: bytes, port: int) -> int:
        self._record(f"udp_socket {'.'.join(map(str, address))}:{port}")
        return self._new_fd(f"udp {'.'.join(map(str, address))}:{port}")

    def tcp_socket(self, address: bytes, port: int) -> int:
        self._record(f"tcp_socket {'.'.join(map(str, address))}:{port}")
        return self._new_fd(f"tcp {'.'.join(map(str, address))}:{port}")

    def tcp_listen(self, port: int) -> int:
        self._record(f"tcp_listen {port}")
        self._listening = self._new_fd(f"listen :{port}")
        return self._listening

    def client(self, when: float, *chunks: tuple[float, bytes], close: bool = True) -> None:
        """A client of the init's listening socket: it connects at `when`, sends each chunk
        `delay` seconds after connecting, then closes its end (or, not `close`, stalls)."""

        def connect() -> None:
            self._clients.append((chunks, close))
            self._feed(self._listening, b"!")  # readable: a client waits

        self._schedule(when, connect)

    def tcp_accept(self, fd: int) -> tuple[int, bytes]:
        waiting = self._pending.get(fd)
        if not waiting or not self._clients:
            self._record("tcp_accept -> EAGAIN")
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        self._record(f"tcp_accept -> {self._next_fd}", name="accept")  # fail() before taking
        del waiting[:1]
        chunks, close = self._clients.pop(0)
        client = self._new_fd("client 10.0.0.2")
        for delay, data in chunks:
            self._schedule(self.now + delay, lambda d=data: self._feed(client, d))
        if close:
            last = max((delay for delay, _ in chunks), default=0.0)
            self._schedule(self.now + last, lambda: self._eof.add(client))
        return client, b"\x0a\x00\x00\x02"

    def wall_clock(self) -> float:
        return self.wall + (self.now - START)

    def set_wall_clock(self, seconds: float) -> None:
        self._record(f"set_wall_clock {seconds:.3f}")
        self.wall = seconds - (self.now - START)

    def slew_wall_clock(self, seconds: float) -> None:
        self._record(f"slew_wall_clock {seconds:+.6f}")

    # --- the rest of the kernel --------------------------------------------------------------

    def finit_module(self, path: str, params: str) -> None:
        self._record(f"finit_module {path} {params!r}", path=path)
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def sethostname(self, name: str) -> None:
        self._record(f"sethostname {name}")

    def uname_release(self) -> str:
        self._record(f"uname -> {self.release}")
        return self.release

    def uname_machine(self) -> str:
        return "aarch64"

    def sync(self) -> None:
        self._record("sync")

    def reboot(self, action: str) -> None:
        self._record(f"reboot {action}")
        if action != "cad-off":
            raise Rebooted(action)

    # --- processes ---------------------------------------------------------------------------

    def getpid(self) -> int:
        return self._pid

    def kill(self, pid: int, sig: int) -> None:
        self._record(f"kill {pid} {signal.Signals(sig).name}")
        targets = list(self.alive) if pid == -1 else [pid] if pid in self.alive else []
        if not targets:
            raise ProcessLookupError(errno.ESRCH, os.strerror(errno.ESRCH))
        for target in targets:
            self._signal(target, sig)

    def killpg(self, pgid: int, sig: int) -> None:
        self._record(f"killpg {pgid} {signal.Signals(sig).name}")
        if pgid not in self.alive:
            raise ProcessLookupError(errno.ESRCH, os.strerror(errno.ESRCH))
        self._signal(pgid, sig)

    def _signal(self, pid: int, sig: int) -> None:
        run = self.alive[pid]
        if sig == signal.SIGKILL:
            self._exit(pid, sig=sig)
        elif sig == signal.SIGTERM and not run.ignore_term:
            self._schedule(self.now + run.term_seconds, lambda: self._exit(pid, sig=sig))

    def waitpid(self, pid: int, options: int) -> tuple[int, int]:
        if self._zombies:
            found = self._zombies.pop(0)
            self._record(f"waitpid -> {found[0]} status {found[1]:#x}")
            return found
        if self.alive:
            self._record("waitpid -> 0")
            return 0, 0
        self._record("waitpid -> ECHILD")
        raise ChildProcessError(errno.ECHILD, os.strerror(errno.ECHILD))

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
        into = (f", groups {','.join(map(str, groups))}" if groups else "") + (
            f", cgroup {cgroup}" if cgroup else ""
        )
        self._record(
            f"spawn {' '.join(argv)} (cwd {cwd}, uid {uid}, gid {gid}{into})", path=argv[0]
        )
        runs = self._programs.get(argv[0])
        if runs is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        run = runs.pop(0) if len(runs) > 1 else runs[0]
        pid = self._next_pid
        self._next_pid += 1
        fd = self._new_fd(f"pipe:{pid}")
        self.alive[pid] = run
        self._pipe_of[pid] = fd
        self._feed(fd, run.output)
        if run.seconds is not None:
            self._schedule(self.now + run.seconds, lambda: self._exit(pid, run.status, run.signal))
        return pid, fd

    def execve(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str,
        uid: int,
        gid: int,
        groups: tuple[int, ...] = (),
    ) -> None:
        self._record(f"execve {' '.join(argv)} (cwd {cwd}, uid {uid}, gid {gid})", path=argv[0])
        if argv[0] not in self._programs:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
        raise Execed(argv[0])

    # --- time and events ---------------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self._record(f"sleep {seconds:g}")
        self.now += seconds
        self._run_due()

    def _ready(self, fds: list[int]) -> list[int]:
        return [fd for fd in fds if self._pending.get(fd) or fd in self._eof]

    def select(
        self, fds: list[int], timeout: float | None, writable: list[int] | None = None
    ) -> list[int]:
        shown = "none" if timeout is None else f"{timeout:.3f}"
        self._record(
            f"select {fds} timeout {shown}" + (f" writable {writable}" if writable else "")
        )
        until = None if timeout is None else self.now + timeout
        while True:
            self._run_due()
            ready = self._ready(fds) + [fd for fd in writable or () if fd not in self.stalled]
            if ready:
                return ready
            if not self._events or (until is not None and self._events[0][0] > until):
                if until is None:
                    raise Deadlock("select() without a timeout and nothing scheduled")
                self.now = max(self.now, until)
                return []
            self.now = max(self.now, self._events[0][0])

    def watch_signals(self, signals: tuple[int, ...]) -> int:
        self._record("watch_signals " + ",".join(signal.Signals(s).name for s in signals))
        self._signal_fd = self._new_fd("signals")
        return self._signal_fd
