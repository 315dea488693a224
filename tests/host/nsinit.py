"""Run the real init inside namespaces and look at it from the host (see test_namespace.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hostkit.paths import REPO

LAYOUT = ("proc", "sys", "dev", "run", "tmp", "etc")


def script(tmp_path: Path, name: str, code: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(code).lstrip())
    return path


class NsInit:
    def __init__(
        self, tmp_path: Path, config: dict, host_sys: Path, pid_namespace: bool = True
    ) -> None:
        self.root = tmp_path / "root"
        for name in LAYOUT:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        config_path = self.root / "etc" / "pinit.json"
        config_path.write_text(json.dumps(config))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": f"{host_sys}{os.pathsep}{REPO}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        namespaces = ["--pid", "--fork"] if pid_namespace else []
        argv = [
            "unshare",
            *namespaces,
            "--mount",
            "--uts",
            "--net",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-m",
            "init.main",
            "--root",
            str(self.root),
            "--config",
            str(config_path),
        ]
        self.pid_namespace = pid_namespace
        self._lines: list[str] = []
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._init_pid = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.append(raw.decode(errors="replace").rstrip("\n"))

    # --- output -----------------------------------------------------------------------------

    def lines(self) -> list[str]:
        return list(self._lines)

    def wait_for(self, text: str, timeout: float = 20.0, after: str = "") -> str:
        """The first console line containing `text` (after the first one containing `after`)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines()
            start = next((i for i, line in enumerate(lines) if after in line), None) if after else 0
            if start is not None:
                for line in lines[start + (1 if after else 0) :]:
                    if text in line:
                        return line
            if time.monotonic() > deadline or (
                self.proc.poll() is not None and not self._reader.is_alive()
            ):
                raise AssertionError(f"no line with {text!r}; console:\n" + "\n".join(lines))
            time.sleep(0.02)

    @staticmethod
    def settle(check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # --- the namespace, seen from the host -------------------------------------------------

    def init_pid(self) -> int:
        """The host pid of the init: unshare itself without a PID namespace, else its child."""
        if not self.pid_namespace:
            return self.proc.pid
        if not self._init_pid:
            task = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"

            def found() -> bool:
                try:
                    children = Path(task).read_text().split()
                except OSError:
                    return False
                self._init_pid = int(children[0]) if children else 0
                return bool(children)

            assert self.settle(found, 10), "unshare did not fork the init"
        return self._init_pid

    def inside(self, path: str) -> str:
        """A path under the init's root, as the init's mount namespace sees it."""
        return f"/proc/{self.init_pid()}/root{self.root}/{path}"

    def mounts(self) -> dict[str, str]:
        """mount point → file system type, from the init's mountinfo."""
        found = {}
        for line in Path(f"/proc/{self.init_pid()}/mountinfo").read_text().splitlines():
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            found[fields[4]] = fstype
        return found

    def processes(self) -> list[tuple[int, str]]:
        """(pid, state) of every process, read from the namespace's own /proc (the init's
        mount of TMP/proc shows the PID namespace it was mounted from)."""
        proc = self.inside("proc")
        found = []
        for entry in os.listdir(proc):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"{proc}/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            found.append((int(entry), stat.rsplit(")", 1)[1].split()[0]))
        return found

    def zombies(self) -> list[int]:
        return [pid for pid, state in self.processes() if state == "Z"]

    # --- acting on it ---------------------------------------------------------------------

    def signal(self, sig: int) -> None:
        os.kill(self.init_pid(), sig)

    def write_control(self, text: str) -> None:
        with open(self.inside("run/pinit/control"), "w") as fifo:
            fifo.write(text)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL to the init ends its PID namespace and with it every service."""
        if self.proc.poll() is None:
            try:
                os.kill(self.init_pid(), signal.SIGKILL)
            except (OSError, AssertionError):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait(10)
        self._reader.join(5)
