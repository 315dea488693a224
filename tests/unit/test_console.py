"""PID 1 never waits for its console: a pipe nobody reads (the real write(2) on a real pipe) and
a stalled console in the supervisor's loop (the fake kernel) while a service floods its output."""

from __future__ import annotations

import posix
import re
import signal
import time

from init.config import Config
from init.console import OUTBOX_LIMIT, Log, amount, open_console
from init.kernel import Kernel
from init.supervise import Supervisor
from init.validate import from_dict
from tests.fakes import FakeKernel, Run

LINE = b"x" * 99 + b"\n"


class RealConsoleKernel(Kernel):
    """The real kernel's open, write, select and clock (no syscall module needed for those);
    dup2 left out, so that the console does not replace the test's own stdout."""

    def __init__(self) -> None:
        pass

    def dup2(self, fd: int, fd2: int) -> None:
        pass


def drain(fd: int) -> bytes:
    got = bytearray()
    while True:
        try:
            chunk = posix.read(fd, 65536)
        except BlockingIOError:
            return bytes(got)
        if not chunk:
            return bytes(got)
        got += chunk


def test_a_console_nobody_reads_never_holds_pid_1_and_the_loss_is_said(tmp_path) -> None:
    """The console is a FIFO that is open for reading but never read (a stopped terminal)."""
    posix.mkfifo(str(tmp_path / "console"))
    r = posix.open(str(tmp_path / "console"), posix.O_RDONLY | posix.O_NONBLOCK)
    kernel = RealConsoleKernel()
    log = Log(kernel)
    open_console(kernel, str(tmp_path), "/console", log)  # what the boot does
    try:
        started = time.monotonic()
        for _ in range(2500):  # 10 MB of service output, nothing reads
            log.raw(LINE * 40)
        log("still here")
        assert time.monotonic() - started < 2.0  # a blocking write would never return
        assert len(log.out.pending) <= OUTBOX_LIMIT and log.waiting() == [log.out.fd]
        dropped, dropped_own = log.out.dropped, log.out.dropped_own
        got = bytearray()
        while log.waiting():  # the reader catches up; the loop flushes when writable
            got += drain(r)
            log.flush()
        got += drain(r)
    finally:
        posix.close(r)
        posix.close(log.out.fd)
    text = got.decode()
    note = re.search(
        r"^pinit: console too slow: dropped (\d+\.\d) MB of service output and "
        r"1 of its own lines$",
        text,
        re.M,
    )
    assert note and 9.7 <= float(note.group(1)) <= 10.0 and dropped_own == 1, text[-300:]
    # Whole lines kept, whole lines dropped, the note on a line of its own, nothing lost unsaid.
    assert set(text.splitlines()) == {LINE.decode().strip(), note.group(0)}
    assert text.count(LINE.decode()) * len(LINE) + dropped == 10_000_000


def test_the_inits_own_lines_are_counted_when_dropped() -> None:
    fake = FakeKernel()
    log = Log(fake)  # type: ignore[arg-type]
    fake.stalled.add(1)
    log.raw(b"a" * (OUTBOX_LIMIT - 10) + b"\n")
    log("one")
    log("two")
    fake.stalled.clear()
    log.flush()
    assert [line.split("| ", 1)[1] for line in fake.transcript if "console|" in line][
        -1
    ] == "pinit: console too slow: dropped 2 of its own lines"


def test_amounts_read_as_people_say_them() -> None:
    assert [amount(n) for n in (17, 3400, 1_234_567)] == ["17 bytes", "3.4 kB", "1.2 MB"]


def flood_run(stall: bool) -> tuple[FakeKernel, Supervisor, str]:
    """A service that prints 300 kB and crashes every second; a shutdown asked at 7.5 s."""
    fake = FakeKernel()
    fake.program("/flood", Run(seconds=1.0, status=1, output=(b"z" * 999 + b"\n") * 300))
    if stall:
        fake.stall_console(1.5, 9.0)  # Ctrl-S on the serial console, a gadget nobody drains
    fake.at(7.5, signal=signal.SIGUSR2)
    config: Config = from_dict(
        {"services": [{"name": "flood", "exec": "/flood", "restart": "always"}]}, "test"
    )
    supervisor = Supervisor(fake, config, Log(fake), fake.watch_signals((signal.SIGUSR2,)))  # type: ignore[arg-type]
    action = supervisor.start_all() or supervisor.run()
    return fake, supervisor, action


def at(fake: FakeKernel, text: str) -> list[float]:
    return [float(line.split()[0]) for line in fake.transcript if text in line]


def test_a_stalled_console_holds_up_neither_restarts_nor_shutdown() -> None:
    fake, supervisor, action = flood_run(stall=True)
    steady, _, _ = flood_run(stall=False)
    assert action == "poweroff"
    assert len(at(fake, "spawn /flood")) >= 3
    assert at(fake, "spawn /flood") == at(steady, "spawn /flood")  # restarts on time
    assert at(fake, "read 3 -> b'\\x0c'") == [7.5]  # SIGUSR2, read the moment it came
    assert not any(1.5 <= t < 9.0 for t in at(fake, "console|"))  # nothing written meanwhile
    ring = supervisor.children[0].lines  # the ring of recent lines has them all
    assert len(ring) == ring.maxlen and set(ring) == {"z" * 999}


def test_the_drop_line_comes_when_the_console_drains() -> None:
    fake = FakeKernel()
    fake.program("/flood", Run(seconds=None, output=(b"z" * 999 + b"\n") * 300))
    fake.stall_console(1.0, 3.0)
    fake.at(4.0, signal=signal.SIGUSR2)
    config: Config = from_dict({"services": [{"name": "flood", "exec": "/flood"}]}, "test")
    log = Log(fake)  # type: ignore[arg-type]
    supervisor = Supervisor(fake, config, log, fake.watch_signals((signal.SIGUSR2,)))  # type: ignore[arg-type]
    assert (supervisor.start_all() or supervisor.run()) == "poweroff"
    lines = [line for line in fake.transcript if "console| pinit: console too slow" in line]
    assert [line.split(None, 1)[1] for line in lines] == [
        f"console| pinit: console too slow: dropped {amount(300_000 - OUTBOX_LIMIT)} of "
        "service output"
    ]
    assert float(lines[0].split()[0]) == 3.0  # when the console drains, not before


def test_a_console_that_comes_with_a_module_is_tried_again_quietly() -> None:
    import errno

    fake = FakeKernel()
    log = Log(fake)  # type: ignore[arg-type]
    assert not open_console(fake, "/", "hvc0", log, later=True)  # type: ignore[arg-type]
    assert not any("console|" in line for line in fake.transcript)  # nothing said yet
    assert not open_console(fake, "/", "hvc0", log)  # type: ignore[arg-type]
    assert fake.transcript[-1].endswith(
        "console| pinit: cannot open console /dev/hvc0: ENOENT "
        "(No such file or directory); keeping the kernel's "
        "console"
    )
    fake.paths.add("/dev/hvc0")
    fake.fail("open /dev/hvc0 O_RDWR", errno.ENXIO)  # the node, but no port behind it yet
    assert not open_console(fake, "/", "hvc0", log, later=True)  # type: ignore[arg-type]
    assert sum("console|" in line for line in fake.transcript) == 1


def test_a_console_with_one_opener_is_made_non_blocking_and_given_back_blocking() -> None:
    """A virtio port allows one open: PID 1's own second open is EBUSY; fd 1 itself becomes
    non-blocking, and blocking again before the exec'd service or the shell gets it."""
    import errno

    from init.console import release_console

    fake = FakeKernel(files={"/dev/vport0p1": b""})
    fake.fail("open /dev/vport0p1 O_WRONLY", errno.EBUSY)
    log = Log(fake)  # type: ignore[arg-type]
    assert open_console(fake, "/", "vport0p1", log)  # type: ignore[arg-type]
    assert "set_blocking 1 False" in [line.split(None, 1)[1] for line in fake.transcript]
    assert log.shared and log.out.fd == 1
    release_console(fake, log)  # type: ignore[arg-type]
    assert fake.transcript[-1].split(None, 1)[1] == "set_blocking 1 True" and not log.shared
