"""What PID 1 keeps on /data survives a power cut at any moment: files it rewrites (the saved
clock) go through a temporary file, fsync, rename and an fsync of the folder; a service's log
is made durable (fdatasync) after every batch of whole lines, before the next one.

Both the fake's transcript and the real kernel on a temporary folder are checked: removing an
fsync or the fdatasync fails here.
"""

from __future__ import annotations

from pathlib import Path

from init.clock import Clock
from init.config import Config, Time
from init.console import Log
from init.logfile import LogFile
from init.timeline import Timeline
from tests.fakes import FakeKernel

DURABLE_SAVE = [
    "open /data/.pinit-time.tmp O_WRONLY|O_CLOEXEC|O_CREAT|O_TRUNC",
    "write /data/.pinit-time.tmp b'1900000000\\n'",
    "fsync /data/.pinit-time.tmp",  # the new content is on the card …
    "close 3",
    "rename /data/.pinit-time.tmp /data/.pinit-time",
    "open /data O_CLOEXEC|O_DIRECTORY",
    "fsync /data",  # … and so is the rename
    "close 4",
]


def steps(fake: FakeKernel) -> list[str]:
    return [line.split(None, 1)[1] for line in fake.transcript]


def test_the_saved_clock_is_written_durably() -> None:
    fake = FakeKernel()
    fake.wall = 1_900_000_000.0
    clock = Clock(
        fake,
        "/",
        Config(time=Time(servers=(), rtc="")),
        Log(fake),  # type: ignore[arg-type]
        Timeline(fake.clock),
        "/data",
    )
    clock.save()
    assert steps(fake) == DURABLE_SAVE
    assert fake.files["/data/.pinit-time"] == b"1900000000\n"
    assert "/data/.pinit-time.tmp" not in fake.paths


def test_a_failed_write_gives_the_space_back_and_keeps_the_old_content() -> None:
    import errno

    fake = FakeKernel(files={"/data/.pinit-time": b"1800000000\n"})
    fake.fail("fsync /data/.pinit-time.tmp", errno.ENOSPC)
    fake.wall = 1_900_000_000.0
    Clock(
        fake,
        "/",
        Config(time=Time(servers=(), rtc="")),
        Log(fake),  # type: ignore[arg-type]
        Timeline(fake.clock),
        "/data",
    ).save()
    assert "unlink /data/.pinit-time.tmp" in steps(fake)
    assert fake.files["/data/.pinit-time"] == b"1800000000\n"
    assert "/data/.pinit-time.tmp" not in fake.paths


def test_each_batch_of_log_lines_is_synced_before_the_next() -> None:
    fake = FakeKernel()
    log = LogFile(fake, "/data/log", "app", 4096, Log(fake))  # type: ignore[arg-type]
    log.append(b"one\n")
    log.append(b"two\nthree\n")
    io = [s for s in steps(fake) if s.startswith(("write /data", "fdatasync"))]
    assert io == [
        "write /data/log/app.log b'one\\n'",
        "fdatasync /data/log/app.log",
        "write /data/log/app.log b'two\\nthree\\n'",
        "fdatasync /data/log/app.log",
    ]
    assert fake.files["/data/log/app.log"] == b"one\ntwo\nthree\n"


def test_the_real_kernel_syncs_the_file_and_its_folder(host_sys, tmp_path: Path) -> None:
    from init.kernel import Kernel

    class Recording(Kernel):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[str] = []

        def fsync(self, fd: int) -> None:
            self.calls.append(f"fsync {Path(f'/proc/self/fd/{fd}').readlink().name}")
            super().fsync(fd)

        def rename(self, old: str, new: str) -> None:
            self.calls.append(f"rename {Path(old).name} {Path(new).name}")
            super().rename(old, new)

    kernel = Recording()
    (tmp_path / "state").write_bytes(b"old")
    kernel.write_file(str(tmp_path / "state"), b"new")
    assert kernel.calls == ["fsync state.tmp", "rename state.tmp state", f"fsync {tmp_path.name}"]
    assert (tmp_path / "state").read_bytes() == b"new" and not (tmp_path / "state.tmp").exists()


# --- a full data partition ----------------------------------------------------------------------


def test_a_full_partition_is_said_once_the_log_drops_lines_and_recovers() -> None:
    import errno

    fake = FakeKernel()
    log = LogFile(fake, "/data/log", "app", 4096, Log(fake))  # type: ignore[arg-type]
    log.append(b"one\n")
    fake.fail("write /data/log/app.log", errno.ENOSPC)
    for _ in range(3):
        log.append(b"lost\nlost\n")
    fake.heal("write /data/log/app.log")
    log.append(b"two\n")
    said = [line.split("console| pinit: ", 1)[1] for line in fake.transcript if "console|" in line]
    assert said == [
        "cannot write /data/log/app.log: ENOSPC (No space left on device); dropping its lines "
        "until there is room",
        "/data/log/app.log: writing again (6 lines were dropped while the data partition was full)",
    ]
    assert fake.files["/data/log/app.log"] == b"one\ntwo\n"


def test_a_batch_cut_short_by_a_full_partition_is_taken_back() -> None:
    import errno

    fake = FakeKernel()
    log = LogFile(fake, "/data/log", "app", 4096, Log(fake))  # type: ignore[arg-type]
    log.append(b"one\n")
    fake.fail("fdatasync /data/log/app.log", errno.ENOSPC)  # written, then not on the card
    log.append(b"half a batch\n")
    assert "ftruncate /data/log/app.log 4" in steps(fake)
    assert fake.files["/data/log/app.log"] == b"one\n" and not log.broken


def test_the_clock_says_once_that_it_cannot_save_and_again_when_it_can() -> None:
    import errno

    fake = FakeKernel(files={"/data/.pinit-time": b"1800000000\n"})
    fake.wall = 1_900_000_000.0
    clock = Clock(
        fake,
        "/",
        Config(time=Time(servers=(), rtc="")),
        Log(fake),  # type: ignore[arg-type]
        Timeline(fake.clock),
        "/data",
    )
    fake.fail("write /data/.pinit-time.tmp", errno.ENOSPC)
    clock.save()
    clock.save()
    fake.heal("write /data/.pinit-time.tmp")
    clock.save()
    said = [line.split("console| pinit: ", 1)[1] for line in fake.transcript if "console|" in line]
    assert said == [
        "time: cannot save to /data/.pinit-time: ENOSPC (No space left on device); "
        "trying again every save_interval",
        "time: saved to /data/.pinit-time again",
    ]
    assert fake.files["/data/.pinit-time"] == b"1900000000\n"
    assert "/data/.pinit-time.tmp" not in fake.paths  # its space given back each time


def test_the_real_kernel_on_a_full_device(host_sys, tmp_path: Path) -> None:
    """/dev/full answers every write with ENOSPC: the log says so once and PID 1 goes on."""
    from init.kernel import Kernel

    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "app.log").symlink_to("/dev/full")
    said: list[str] = []
    log = LogFile(Kernel(), str(tmp_path / "log"), "app", 4096, said.append)  # type: ignore[arg-type]
    for _ in range(5):
        log.append(b"a line\n")
    assert said == [
        f"cannot write {tmp_path}/log/app.log: ENOSPC (No space left on device); "
        "dropping its lines until there is room"
    ]
    assert log.dropped == 5 and not log.broken


def test_a_batch_cut_short_by_a_power_cut_is_taken_back_when_the_log_is_opened() -> None:
    fake = FakeKernel(files={"/data/log/app.log": b"one\ntwo\nthr\0\0\0"})
    log = LogFile(fake, "/data/log", "app", 4096, Log(fake))  # type: ignore[arg-type]
    log.append(b"four\n")
    assert fake.files["/data/log/app.log"] == b"one\ntwo\nfour\n"
    assert (
        "console| pinit: /data/log/app.log: took back 6 bytes of a batch cut short "
        "(a power cut)" in [line.split(None, 1)[1] for line in fake.transcript]
    )


def test_the_logs_are_closed_at_shutdown_so_data_can_be_unmounted() -> None:
    """An open log kept /data busy (EBUSY): not unmounted, not even read-only, at power-off."""
    import signal

    from init.supervise import Supervisor
    from init.validate import from_dict
    from tests.fakes import Run

    fake = FakeKernel()
    fake.program("/talker", Run(seconds=None, output=b"hello\n"))
    fake.at(2.0, signal=signal.SIGUSR2)
    config = from_dict(
        {
            "data": {"device": "LABEL=data"},
            "services": [{"name": "talker", "exec": "/talker", "log_to_data": True}],
        },
        "test",
    )
    supervisor = Supervisor(
        fake,
        config,
        Log(fake),
        fake.watch_signals((signal.SIGUSR2,)),  # type: ignore[arg-type]
        log_dir="/data/log",
    )
    assert (supervisor.start_all() or supervisor.run()) == "poweroff"
    supervisor.stop(1.0)
    opened = {fd for fd, path in fake.fds.items() if path == "/data/log/talker.log"}
    assert fake.files["/data/log/talker.log"] == b"hello\n" and not opened
