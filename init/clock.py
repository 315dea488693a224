"""The wall clock: a Pi has no battery-backed clock, so it starts in 1970 (or wherever the RTC
says). At boot the clock is moved forward to the RTC's time and to the time saved on the data
partition, whichever is later, never backwards; then SNTP (init/sntp.py) sets it from the
configured servers and DHCP's, steps a large offset, slews a small one, and syncs again every
`interval`. After a sync the RTC is written; the time is saved to the data partition every
`save_interval` and at shutdown.

`Clock` is an event source of the supervisor's loop, like init/network.py.

Console lines ("pinit: time: ..."):
    time: 2026-12-01 12:00:00 UTC from /dev/rtc0
    time: 2026-12-01 12:00:00 UTC restored from /data/.pinit-time (saved at shutdown)
    time: stepped +1700000000.123 s to 2030-01-01 00:00:00 UTC (from 10.0.2.2)
    time: synced (offset -0.004 s, slewed; from 10.0.2.2)
    time: no answer from 10.0.2.2; trying again in 8 s
    time: 10.0.2.2: ECONNREFUSED (Connection refused); trying again in 8 s
    time: time.example.org is 192.0.2.1       (a name, asked of the network's name servers)
    time: cannot resolve nowhere.example: no such name; skipped
    time: cannot resolve time.example.org yet: no name server
"""

from __future__ import annotations

import posix
import struct
import time

from init import dns, inet, resolve, sntp
from init.config import Config
from init.console import Log, errname
from init.errors import Dropped
from init.kernel import Kernel
from init.rootfs import prefixed
from init.timeline import Timeline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _collections_abc import Callable

SAVED = ".pinit-time"  # in the data partition's top folder
STEP = 0.128  # larger offsets are stepped, smaller ones slewed (ntpd's threshold)
ANSWER_WAIT = 2.0  # seconds for one server to answer
FIRST_RETRY = 2.0  # then doubled up to RETRY_MAX until the first sync
RETRY_MAX = 64.0
# linux/rtc.h: _IOR('p', 0x09, struct rtc_time) and _IOW('p', 0x0a, struct rtc_time).
RTC_RD_TIME = 0x80247009
RTC_SET_TIME = 0x4024700A
RTC_TIME = struct.Struct("9i")  # sec min hour mday mon year wday yday isdst


def utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def rtc_seconds(raw: bytes) -> int:
    sec, minute, hour, mday, mon, year, _, _, _ = RTC_TIME.unpack(raw)
    return days_from_civil(year + 1900, mon + 1, mday) * 86400 + hour * 3600 + minute * 60 + sec


def rtc_raw(seconds: float) -> bytes:
    t = time.gmtime(seconds)
    return RTC_TIME.pack(
        t.tm_sec,
        t.tm_min,
        t.tm_hour,
        t.tm_mday,
        t.tm_mon - 1,
        t.tm_year - 1900,
        (t.tm_wday + 1) % 7,
        t.tm_yday - 1,
        0,
    )


class Clock:
    def __init__(
        self,
        kernel: Kernel,
        root: str,
        config: Config,
        log: Log,
        timeline: Timeline,
        data_dir: str = "",
        changed: Callable[[], None] | None = None,
    ) -> None:
        self._kernel = kernel
        self._root = root
        self._time = config.time
        self._log = log
        self._timeline = timeline
        self._changed = changed or (lambda: None)
        self._saved = f"{data_dir}/{SAVED}" if data_dir else ""
        self.synced = False  # `after = ["time"]` may start
        self._servers: list[bytes] = []
        self._names: list[str] = []  # servers given by name, not resolved yet
        self._name_servers: tuple[bytes, ...] = ()
        self._next = 0  # which server is asked next
        self._fd = -1
        self._server = b""
        self._query: resolve.Query | None = None  # a server's name being resolved on `_fd`
        self._sent = (0.0, 0.0)  # (wall clock, boot clock) when the request went out
        self._timer: float | None = None
        self._wait = FIRST_RETRY
        self._save_at: float | None = None
        self._started = kernel.clock()
        self._dropped = Dropped("time", log)
        self._save_error = ""  # the last failure to save, said once

    # --- at boot --------------------------------------------------------------------------

    def restore(self) -> None:
        """Forward to the RTC's time and the saved time, whichever is later; never back."""
        now = self._kernel.wall_clock()
        best, source = now, ""
        rtc = self._rtc_read()
        if rtc is not None and rtc > best:
            best, source = float(rtc), f"from {self._time.rtc}"
        if self._saved:
            try:
                saved = float(self._kernel.read_text(self._saved).strip() or 0)
            except FileNotFoundError:
                saved = 0.0  # ENOENT: the first boot with this card
            except (OSError, ValueError) as exc:
                self._log(f"time: cannot read {self._saved}: {errname(exc)}")
                saved = 0.0
            if saved > best:
                best, source = saved, f"restored from {self._saved}"
        if source:
            try:
                self._kernel.set_wall_clock(best)
                self._log(f"time: {utc(best)} {source}")
            except OSError as exc:
                self._log(f"time: cannot set the clock: {errname(exc)}")
        for server in self._time.servers:
            if server == "dhcp":
                continue
            try:
                self._servers.append(inet.pack(server))
            except ValueError:
                self._names.append(server)
        if self._saved:
            self._save_at = self._kernel.clock() + self._time.save_interval
        if self._servers or self._names:
            self._timer = self._kernel.clock()

    def add_servers(self, servers: tuple[bytes, ...], name_servers: tuple[bytes, ...]) -> None:
        """What the network learnt: the DHCP server's time servers (option 42, used when
        `servers` has "dhcp") and the name servers that resolve time servers' names."""
        if "dhcp" in self._time.servers:
            self._servers += [s for s in servers if s not in self._servers]
        self._name_servers = tuple(dict.fromkeys([*self._name_servers, *name_servers]))
        if not self.synced and self._fd < 0:  # an address at last: ask now
            self._timer = self._kernel.clock()

    def _rtc_read(self) -> int | None:
        if not self._time.rtc:
            return None
        try:
            fd = self._kernel.open(
                prefixed(self._root, self._time.rtc), posix.O_RDONLY | posix.O_CLOEXEC
            )
        except FileNotFoundError:
            return None  # ENOENT: no RTC on this board (a Pi before the 5)
        except OSError as exc:
            self._log(f"time: cannot open {self._time.rtc}: {errname(exc)}")
            return None
        try:
            return rtc_seconds(self._kernel.ioctl(fd, RTC_RD_TIME, bytes(RTC_TIME.size)))
        except (OSError, ValueError) as exc:
            # EINVAL: an RTC that was never set holds no valid time.
            self._log(f"time: cannot read {self._time.rtc}: {errname(exc)}")
            return None
        finally:
            self._kernel.close(fd)

    def _rtc_write(self, seconds: float) -> None:
        if not self._time.rtc:
            return
        try:
            fd = self._kernel.open(
                prefixed(self._root, self._time.rtc), posix.O_WRONLY | posix.O_CLOEXEC
            )
        except FileNotFoundError:
            return  # ENOENT: no RTC
        except OSError as exc:
            self._log(f"time: cannot open {self._time.rtc}: {errname(exc)}")
            return
        try:
            self._kernel.ioctl(fd, RTC_SET_TIME, rtc_raw(seconds))
        except OSError as exc:
            self._log(f"time: cannot set {self._time.rtc}: {errname(exc)}")
        finally:
            self._kernel.close(fd)

    # --- the loop's side ------------------------------------------------------------------

    def fds(self) -> list[int]:
        return [self._fd] if self._fd >= 0 else []

    def due(self) -> float | None:
        due = [t for t in (self._timer, self._save_at) if t is not None]
        return min(due) if due else None

    def tick(self, now: float) -> None:
        if self._save_at is not None and now >= self._save_at:
            self.save()
            self._save_at = now + self._time.save_interval
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        if self._fd >= 0:  # the last request went unanswered
            self._close()
            self._log(
                f"time: no answer from {inet.text(self._server)}"
                + (f"; trying again in {self._wait:g} s" if not self.synced else "")
            )
            self._retry(now)
            return
        if self._names and self._name_servers:
            self._resolve(now)
        elif self._servers:
            self._ask(now)
        elif self._names:
            self._log(f"time: cannot resolve {', '.join(self._names)} yet: no name server")

    def _retry(self, now: float) -> None:
        if self.synced:
            self._timer = now + self._time.interval
            return
        self._timer = now + self._wait
        self._wait = min(self._wait * 2, RETRY_MAX)

    def _ask(self, now: float) -> None:
        self._server = self._servers[self._next % len(self._servers)]
        self._next += 1
        self._send(now, self._sntp_request)

    def _resolve(self, now: float) -> None:
        self._server = resolve.pick(self._name_servers, self._next)
        self._next += 1
        self._send(now, self._dns_query)

    def _sntp_request(self) -> None:
        self._fd = self._kernel.udp_socket(self._server, sntp.PORT)
        self._sent = (self._kernel.wall_clock(), self._kernel.clock())
        self._kernel.write(self._fd, sntp.request(self._sent[0]))

    def _dns_query(self) -> None:
        self._query = resolve.Query(self._kernel, self._names[0], self._server)
        self._fd = self._query.fd

    def _send(self, now: float, send: Callable[[], None]) -> None:
        try:
            send()
        except OSError as exc:
            # ENETUNREACH: no address yet; the network's lease brings us back here.
            self._close()
            self._log(f"time: cannot ask {inet.text(self._server)}: {errname(exc)}")
            self._retry(now)
            return
        self._timer = now + ANSWER_WAIT

    def _close(self) -> None:
        if self._fd >= 0:
            self._kernel.close(self._fd)
            self._fd = -1
        self._query = None

    def _resolved(self, query: resolve.Query, reply: bytes) -> None:
        name = query.name
        try:
            found = query.answer(reply)
        except dns.DnsError as exc:
            self._dropped(exc)
            return  # not read; the timer still runs
        if found is None:
            return  # not the answer; the timer still runs
        self._close()
        self._names.remove(name)
        if found:
            self._servers += [a for a in found if a not in self._servers]
            self._log(f"time: {name} is {' '.join(inet.text(a) for a in found)}")
        else:
            self._log(f"time: cannot resolve {name}: no such name; skipped")
        self._timer = self._kernel.clock()

    def ready(self, fd: int) -> None:
        try:
            reply = self._kernel.read(fd, 512)
        except BlockingIOError:
            return  # EAGAIN
        except OSError as exc:
            # ECONNREFUSED: no time server on that host (an ICMP port unreachable).
            self._close()
            self._log(
                f"time: {inet.text(self._server)}: {errname(exc)}"
                + (f"; trying again in {self._wait:g} s" if not self.synced else "")
            )
            self._retry(self._kernel.clock())
            return
        if self._query is not None:
            self._resolved(self._query, reply)
            return
        sent_wall, sent_boot = self._sent
        received = sent_wall + (self._kernel.clock() - sent_boot)
        try:
            result = sntp.offset(reply, sent_wall, received)
        except sntp.SntpError as exc:
            self._dropped(exc)
            return  # not read; the timer still runs
        if result is None:
            return  # not our answer; the timer still runs
        self._close()
        self._apply(result[0])

    def _apply(self, offset: float) -> None:
        now = self._kernel.clock()
        source = inet.text(self._server)
        try:
            if abs(offset) > STEP:
                target = self._kernel.wall_clock() + offset
                self._kernel.set_wall_clock(target)
                self._log(f"time: stepped {offset:+.3f} s to {utc(target)} (from {source})")
            else:
                self._kernel.slew_wall_clock(offset)
                self._log(f"time: synced (offset {offset:+.3f} s, slewed; from {source})")
        except OSError as exc:
            self._log(f"time: cannot set the clock: {errname(exc)}")
            self._retry(now)
            return
        first = not self.synced
        self.synced = True
        self._timer = now + self._time.interval
        self._rtc_write(self._kernel.wall_clock())
        if first:
            step = self._timeline.step("time", f"sntp {source}")
            step.start, step.end = self._started, now
            self.save()
            self._changed()

    # --- saving ---------------------------------------------------------------------------

    def save(self) -> None:
        """The time to the data partition (at shutdown too), so the next boot starts later."""
        if not self._saved:
            return
        try:
            self._kernel.write_file(self._saved, f"{self._kernel.wall_clock():.0f}\n".encode())
        except OSError as exc:
            # Said once (a full partition stays full for a while); the old time stays saved.
            if self._save_error != errname(exc):
                self._save_error = errname(exc)
                self._log(
                    f"time: cannot save to {self._saved}: {self._save_error}; "
                    "trying again every save_interval"
                )
            return
        if self._save_error:
            self._save_error = ""
            self._log(f"time: saved to {self._saved} again")
