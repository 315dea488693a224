"""One cgroup v2 per service: every process a service starts stays in its group, its limits
apply to the whole group, and what is left of it when its main process ends is counted and
killed before a restart. PID 1 itself stays in the root group.

Through the kernel seam, with `root` prefixed like every path the init touches. When cgroup2
is not mounted (an old kernel, a container) the supervisor runs services unconfined and says so
once.
"""

from __future__ import annotations

import errno

from init.config import Service
from init.console import Log, errname
from init.kernel import Kernel
from init.rootfs import prefixed

MOUNT = "/sys/fs/cgroup"
CONTROLLERS = "+cpu +memory +pids"


def size_text(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"


class Cgroups:
    """The services' groups under /sys/fs/cgroup; `enabled` is False when there are none."""

    def __init__(self, kernel: Kernel, root: str, log: Log) -> None:
        self._kernel = kernel
        self._log = log
        self.base = prefixed(root, MOUNT)
        self.enabled = False

    def enable(self) -> bool:
        """Hand the cpu, memory and pids controllers down to the services' groups."""
        try:
            self._kernel.set_value(f"{self.base}/cgroup.subtree_control", CONTROLLERS)
        except OSError as exc:
            self._log(f"no cgroups ({MOUNT}: {errname(exc)}): services run without limits")
            return False
        self.enabled = True
        return True

    def path(self, service: Service) -> str:
        return f"{self.base}/{service.name}" if self.enabled else ""

    def prepare(self, service: Service) -> str:
        """The service's group, made (or kept) and set to its limits; "" without cgroups."""
        if not self.enabled:
            return ""
        path = self.path(service)
        try:
            self._kernel.mkdir(path, 0o755)
        except FileExistsError:
            pass  # EEXIST: made for an earlier run, or by the C prologue (early start)
        limits = {
            "memory.max": str(service.memory_max) if service.memory_max else "max",
            "pids.max": str(service.tasks_max) if service.tasks_max else "max",
            "cpu.weight": str(service.cpu_weight),
        }
        for name, value in limits.items():
            try:
                self._kernel.set_value(f"{path}/{name}", value)
            except OSError as exc:
                self._log(f"{service.name}: cannot set {name} = {value}: {errname(exc)}")
        return path

    def members(self, path: str) -> list[int]:
        try:
            text = self._kernel.read_text(f"{path}/cgroup.procs")
        except OSError:
            return []  # ENOENT: the group is gone; nothing is in it
        return [int(word) for word in text.split()]

    def kill(self, path: str) -> int:
        """SIGKILL every process left in the group; how many there were."""
        left = self.members(path) if path else []
        if left:
            try:
                self._kernel.set_value(f"{path}/cgroup.kill", "1")
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # ENOENT: a kernel before 5.14 has no cgroup.kill
                    raise
                for pid in left:
                    try:
                        self._kernel.kill(pid, 9)
                    except ProcessLookupError:
                        pass  # ESRCH: it exited meanwhile
        return len(left)

    def oom_kills(self, path: str) -> int:
        """The group's count of processes the OOM killer killed (memory.events)."""
        if not path:
            return 0
        try:
            text = self._kernel.read_text(f"{path}/memory.events")
        except OSError:
            return 0  # ENOENT: no memory controller here
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0
