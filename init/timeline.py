"""The boot timeline: when each step started and ended, on CLOCK_BOOTTIME.

CLOCK_BOOTTIME counts from the kernel's start, so the time at which the app starts is the boot
time a person with a stopwatch would measure (minus the firmware). The timeline is kept in
memory during boot and written to /run/pinit/timeline.json only after the app has started.
"""

from __future__ import annotations

from init import jsontext

# Names for type checkers only: _collections_abc is 25 ABCs to build at boot.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Step:
    """One timed step; a context manager so a failing step still gets its end time."""

    __slots__ = ("phase", "name", "start", "end", "error", "_clock")

    def __init__(self, phase: str, name: str, clock: Callable[[], float]) -> None:
        self.phase = phase
        self.name = name
        self._clock = clock
        self.start = clock()
        self.end = self.start
        self.error = ""

    def __enter__(self) -> Step:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.end = self._clock()
        if exc is not None and not self.error:
            self.error = f"{type(exc).__name__}: {exc}"


class Timeline:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.created = clock()  # when main() began: the kernel and Python start-up came before
        self.steps: list[Step] = []
        self.app_started: float | None = None

    def step(self, phase: str, name: str) -> Step:
        entry = Step(phase, name, self._clock)
        self.steps.append(entry)
        return entry

    def phases(self) -> list[tuple[str, float]]:
        """(phase, seconds) in the order the phases began; a phase spans its first to last step."""
        spans: dict[str, list[float]] = {}
        for s in self.steps:
            span = spans.setdefault(s.phase, [s.start, s.end])
            span[1] = max(span[1], s.end)
        return [(phase, end - start) for phase, (start, end) in spans.items()]

    def summary(self, started: float) -> str:
        """ "boot 3.412 s: main at 2.900 s, mounts 0.020 s, modules 0.150 s, ... -> app started"
        (without "pinit: "): the boot time on CLOCK_BOOTTIME, when main() began, the phases."""
        self.app_started = started
        parts = "".join(f", {phase} {seconds:.3f} s" for phase, seconds in self.phases())
        return f"boot {started:.3f} s: main at {self.created:.3f} s{parts} -> app started"

    def to_json(self, compact: bool = False) -> bytes:
        data = {
            "clock": "CLOCK_BOOTTIME",
            "main": round(self.created, 6),
            "app_started": None if self.app_started is None else round(self.app_started, 6),
            "steps": [
                {
                    "phase": s.phase,
                    "name": s.name,
                    "start": round(s.start, 6),
                    "end": round(s.end, 6),
                    **({"error": s.error} if s.error else {}),
                }
                for s in self.steps
            ],
        }
        if compact:
            return jsontext.dumps(data, separators=(",", ":")).encode()
        return (jsontext.dumps(data, indent=1) + "\n").encode()
