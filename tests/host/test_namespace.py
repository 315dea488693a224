"""The real init with real syscalls, as PID 1 of fresh PID, mount, UTS and network namespaces.

`unshare --pid --mount --uts --net --fork --propagation private` starts
`python -m init.main --root TMP --config TMP/etc/pinit.json`, so every mount lands in TMP and
is private to the namespace; the host sees the namespace's view through /proc/<init>/root and
/proc/<init>/mountinfo. reboot(2) from a namespace's init ends the namespace: the kernel kills
the init with SIGHUP (restart) or SIGINT (power-off, halt), and unshare dies of the same signal.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from init.config import Config, CrashLoop, Service
from init.validate import to_dict
from tests.host.nsinit import NsInit, script

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: real mounts and PID namespaces"),
    pytest.mark.timeout(90),
]

FAST = {"backoff_start": 0.1, "backoff_max": 0.4, "crash_loop": CrashLoop(count=1000)}
UNBUFFERED = (("PYTHONUNBUFFERED", "1"),)


def python_service(name: str, code: str, tmp_path: Path, **kwargs: object) -> Service:
    path = script(tmp_path, name, code)
    options: dict[str, object] = {"env": UNBUFFERED, **FAST, **kwargs}
    return Service(name, sys.executable, args=(str(path),), **options)  # type: ignore[arg-type]


@pytest.fixture
def start(tmp_path: Path, host_sys: Path):
    """start(config) → a running NsInit; every one is killed (with its namespace) afterwards."""
    running: list[NsInit] = []

    def start(config: Config, pid_namespace: bool = True) -> NsInit:
        ns = NsInit(tmp_path, to_dict(config), host_sys, pid_namespace=pid_namespace)
        running.append(ns)
        return ns

    yield start
    for ns in running:
        ns.kill()


def test_mounts_nodes_and_restarts(tmp_path: Path, start) -> None:
    flaky = python_service(
        "flaky", "import time; print('flaky run'); time.sleep(0.2); raise SystemExit(1)", tmp_path
    )
    ns = start(Config(hostname="nstest", services=(flaky,)))
    ns.wait_for("pinit: started as PID 1")
    ns.wait_for("pinit: flaky exited with status 1; restart 2 in 0.2 s")
    ns.wait_for("pinit: starting flaky (pid ", after="restart 2 in")

    mounts = ns.mounts()
    for target, fstype in [
        ("proc", "proc"),
        ("sys", "sysfs"),
        ("dev", "devtmpfs"),
        ("dev/pts", "devpts"),
        ("dev/shm", "tmpfs"),
        ("run", "tmpfs"),
        ("tmp", "tmpfs"),
    ]:
        assert mounts.get(str(ns.root / target)) == fstype, (target, mounts)
    null = os.stat(ns.inside("dev/null"))
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert os.readlink(ns.inside("dev/fd")) == "/proc/self/fd"
    assert stat.S_ISFIFO(os.stat(ns.inside("run/pinit/control")).st_mode)
    timeline = json.loads(Path(ns.inside("run/pinit/timeline.json")).read_text())
    assert timeline["clock"] == "CLOCK_BOOTTIME" and timeline["steps"]
    # The namespace's own proc shows the init as PID 1, the network namespace a running lo.
    assert Path(ns.inside("proc/1/cmdline")).read_bytes().split(b"\0")[1:3] == [b"-m", b"init.main"]
    assert int(Path(ns.inside("sys/class/net/lo/flags")).read_text(), 16) & 1
    assert Path(f"/proc/{ns.init_pid()}/root/proc/sys/kernel/hostname").exists()

    ns.signal(signal.SIGUSR2)
    ns.wait_for("pinit: powering off")
    assert ns.wait() == -signal.SIGINT  # reboot(2) POWER_OFF in a PID namespace


def test_orphan_storm_is_reaped(tmp_path: Path, start) -> None:
    storm = python_service(
        "storm",
        """
import os, time
for _ in range(1000):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os._exit(0)          # the grandchild: an orphan of PID 1 once its parent is gone
        os._exit(0)
    os.waitpid(pid, 0)
print("storm done")
time.sleep(3600)
""",
        tmp_path,
    )
    ns = start(Config(services=(storm,)))
    ns.wait_for("storm done", timeout=60)
    assert ns.settle(lambda: not ns.zombies(), timeout=10), f"zombies left: {ns.zombies()}"
    assert len(ns.processes()) == 2  # the init and the storm service, nothing else
    ns.signal(signal.SIGTERM)
    ns.wait_for("pinit: rebooting")
    assert ns.wait() == -signal.SIGHUP  # reboot(2) RESTART in a PID namespace


def test_sigkill_and_segfault_are_restarts(tmp_path: Path, start) -> None:
    killed = python_service(
        "killed",
        "import os, signal, time; print('killed up'); "
        "time.sleep(0.1); os.kill(os.getpid(), signal.SIGKILL)",
        tmp_path,
    )
    segv = python_service(
        "segv",
        "import os, resource, signal, time; "
        "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
        "print('segv up'); time.sleep(0.1); os.kill(os.getpid(), signal.SIGSEGV)",
        tmp_path,
        restart="on-failure",
    )
    ns = start(Config(services=(killed, segv)))
    ns.wait_for("pinit: killed killed by signal 9 (SIGKILL); restart 2 in")
    ns.wait_for("pinit: segv killed by signal 11 (SIGSEGV); restart 2 in")
    ns.write_control("halt\n")
    ns.wait_for("pinit: control: halt")
    ns.wait_for("pinit: halting")
    assert ns.wait() == -signal.SIGINT


def test_sigterm_ignored_is_killed_after_grace(tmp_path: Path, start) -> None:
    deaf = python_service(
        "deaf",
        "import signal, time; signal.signal(signal.SIGTERM, "
        "signal.SIG_IGN); print('deaf ready'); time.sleep(3600)",
        tmp_path,
    )
    polite = python_service(
        "polite", "import time; print('polite ready'); time.sleep(3600)", tmp_path
    )
    ns = start(Config(shutdown_grace=0.5, services=(deaf, polite)))
    ns.wait_for("deaf ready")
    ns.wait_for("polite ready")
    ns.signal(signal.SIGUSR2)
    ns.wait_for("pinit: shutdown (poweroff)")
    ns.wait_for("pinit: polite killed by signal 15 (SIGTERM)")
    ns.wait_for("pinit: deaf did not stop within 0.5 s; sending SIGKILL")
    ns.wait_for("pinit: deaf killed by signal 9 (SIGKILL)")
    ns.wait_for("pinit: unmounted ")
    assert ns.wait() == -signal.SIGINT
    lines = ns.lines()
    assert lines.index("pinit: synced file systems") < lines.index("pinit: powering off")


def test_not_pid_1_does_not_reboot(tmp_path: Path, start) -> None:
    """Only a mount namespace: the init is an ordinary process, so it must neither call
    reboot(2) nor kill(-1); it exits 0 after the shutdown instead."""
    once = python_service("once", "print('once ran'); raise SystemExit(125)", tmp_path)
    ns = start(Config(services=(once,)), pid_namespace=False)
    ns.wait_for(
        "pinit: once exited with status 125; not restarting (status 125 means do not restart)"
    )
    ns.signal(signal.SIGTERM)
    ns.wait_for("pinit: not PID 1, so no reboot(2) RB_AUTOBOOT; exiting")
    assert ns.wait() == 0
