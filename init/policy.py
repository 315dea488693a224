"""Restart policy as pure functions and small classes: no kernel, no clock of their own.

Times are passed in (CLOCK_BOOTTIME seconds), so tests drive them with plain numbers.
"""

from __future__ import annotations

from _collections import deque  # the C type itself: `collections` is slow to import at boot

from init.config import DO_NOT_RESTART
from init.console import signame


def describe_exit(code: int) -> str:
    """A waitstatus_to_exitcode() value in words: "exited with status 1",
    "killed by signal 11 (SIGSEGV)"."""
    if code >= 0:
        return f"exited with status {code}"
    return f"killed by signal {-code} ({signame(-code)})"


def failed(code: int) -> bool:
    return code != 0


def restart_verdict(restart: str, code: int) -> str | None:
    """None to restart; otherwise the reason not to, for the console line."""
    if code == DO_NOT_RESTART:
        return f"status {DO_NOT_RESTART} means do not restart"
    if restart == "never" or (restart == "on-failure" and not failed(code)):
        return f"restart={restart}"
    return None


class Backoff:
    """Exponential restart delay: start, doubling up to maximum; back to start after a run
    of at least `reset` seconds (the service was healthy, this is a new problem)."""

    def __init__(self, start: float, maximum: float, reset: float) -> None:
        self.start = start
        self.maximum = maximum
        self.reset = reset
        self._next = start

    def delay(self, ran_for: float) -> float:
        if ran_for >= self.reset:
            self._next = self.start
        delay = self._next
        self._next = min(max(delay * 2, self.start), self.maximum)
        return min(delay, self.maximum)


class CrashWindow:
    """Trips when `count` failures fall within `window` seconds (count <= 0: never trips)."""

    def __init__(self, count: int, window: float) -> None:
        self.count = count
        self.window = window
        self._times: deque[float] = deque()

    def failure(self, now: float) -> bool:
        """Record a failure at `now`; True if this one makes it a crash loop."""
        if self.count <= 0:
            return False
        self._times.append(now)
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()
        return len(self._times) >= self.count

    def __len__(self) -> int:
        return len(self._times)
