"""The real kernel seam's process calls, as an ordinary process (no namespace needed)."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def kernel(host_sys: Path):
    from init.kernel import Kernel

    return Kernel()


def run(
    kernel,
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: str = "/",
    uid: int = 0,
    gid: int = 0,
) -> tuple[int, bytes]:
    """spawn, collect all output, wait: (exit code, output)."""
    pid, fd = kernel.spawn(argv, env or {"PATH": "/usr/bin:/bin"}, cwd, uid, gid)
    os.set_blocking(fd, True)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    _, status = kernel.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks)


def test_exec_failure_is_an_oserror_at_the_call_fork(kernel) -> None:
    with pytest.raises(FileNotFoundError) as info:
        kernel.spawn(["/no/such/program"], {}, "/proc", 0, 0)  # a cwd change needs fork
    assert info.value.errno == errno.ENOENT
    # The child that failed to exec is left to the caller's one reaper.
    pid, status = os.waitpid(-1, 0)
    assert os.waitstatus_to_exitcode(status) == 127


def test_exec_failure_is_an_oserror_at_the_call_posix_spawn(kernel) -> None:
    with pytest.raises(FileNotFoundError):
        kernel.spawn(["/no/such/program"], {}, os.getcwd(), 0, 0)
    assert os.waitpid(-1, os.WNOHANG) == (0, 0) if _has_children() else True


def inheritable_fds() -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if int(name) > 2 and os.get_inheritable(int(name)):
                fds.append(int(name))
        except OSError:
            pass  # the directory fd listdir used, closed by now
    return fds


def _has_children() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def test_stdout_and_stderr_share_one_pipe(kernel) -> None:
    code, out = run(kernel, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (code, out) == (3, b"out\nerr\n")


@pytest.mark.parametrize("how", ["posix_spawn", "fork"])
def test_child_gets_session_null_stdin_cwd_env_and_default_signals(
    kernel, tmp_path: Path, how: str
) -> None:
    cwd = os.getcwd() if how == "posix_spawn" else str(tmp_path)
    script = (
        "echo sid=$(cut -d' ' -f6 /proc/self/stat) pid=$$; readlink /proc/self/fd/0; "
        "pwd; echo $GREETING; grep SigIgn /proc/self/status; ls /proc/self/fd | wc -l"
    )
    code, out = run(kernel, ["/bin/sh", "-c", script], {"GREETING": "hi"}, cwd)
    lines = out.decode().splitlines()
    assert code == 0
    sid, pid = (word.split("=")[1] for word in lines[0].split())
    assert sid == pid  # its own session (and process group)
    assert lines[1:4] == ["/dev/null", cwd, "hi"]
    ignored = int(lines[4].split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))  # Python's SIG_IGN is not inherited
    # ls sees 0, 1, 2, its own directory fd and what this test process has open without
    # close-on-exec: none of the Kernel's pipes leaked into the child.
    assert int(lines[5]) == 4 + len(inheritable_fds())


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_uid_and_gid_are_dropped(kernel) -> None:
    code, out = run(kernel, ["/bin/sh", "-c", "id -u; id -g; id -G"], uid=65534, gid=65534)
    assert out.decode().split() == ["65534", "65534", "65534"]


def test_kill_minus_one_refused_unless_pid_1(kernel) -> None:
    if os.getpid() == 1:
        pytest.skip("running as PID 1")
    with pytest.raises(PermissionError):
        kernel.kill(-1, 0)


def test_signals_arrive_as_bytes_on_the_pipe(kernel) -> None:
    fd = kernel.watch_signals((signal.SIGUSR1,))
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert kernel.select([fd], 2.0) == [fd]
        assert kernel.read(fd, 16) == bytes([signal.SIGUSR1])
    finally:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        os.close(fd)


def test_realpath_resolves_like_posixpath(kernel, tmp_path: Path) -> None:
    """Kernel.realpath is posixpath.realpath without `os`, for absolute paths (the links of
    /sys: relative, chained, through `..`, to directories, dangling, in a loop)."""
    (tmp_path / "devices/pci0/block/sda").mkdir(parents=True)
    (tmp_path / "class/block").mkdir(parents=True)
    (tmp_path / "class/block/sda").symlink_to("../../devices/pci0/block/sda")
    (tmp_path / "abs").symlink_to(tmp_path / "class")
    (tmp_path / "chain").symlink_to("abs/block")
    (tmp_path / "dangling").symlink_to("nowhere/at/all")
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    for rel in (
        "class/block/sda",
        "class/block/sda/..",
        "abs/block/sda/dev",
        "chain/sda",
        "chain/../block/./sda",
        "dangling",
        "dangling/x",
        "missing/../class",
        ".",
        "abs/",
    ):
        path = f"{tmp_path}/{rel}"
        assert kernel.realpath(path) == os.path.realpath(path), rel
    assert kernel.realpath("/") == "/"
    with pytest.raises(OSError) as info:
        kernel.realpath(f"{tmp_path}/loop1")
    assert info.value.errno == errno.ELOOP
