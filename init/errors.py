"""The one exception base of the init, and the close-match hint its messages share.

main() turns any InitError into one console line and then follows the failure policy; a message
therefore names what was acted on (file, key, module) and the value that was wrong.
"""

from __future__ import annotations

# Names for type checkers only: _collections_abc is 25 ABCs to build at boot.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


class InitError(Exception):
    """Boot cannot go on as configured; str(err) says what and where in one line."""


class ConfigError(InitError):
    """pinit.json (or pinit.toml, via the builder) holds a value the init cannot use."""


class ModuleError(InitError):
    """A kernel module cannot be found or its dependencies cannot be ordered."""


class Malformed(ValueError):
    """Bytes from outside (a packet, a kernel message) that a parser cannot read. Each parser
    of such bytes raises its own subclass and nothing else; the caller drops the message,
    counts it (Dropped) and goes on."""


class Dropped:
    """Malformed messages of one kind, counted; the console hears of the 1st, 2nd, 4th, 8th …
    so that whoever floods the LAN with bad packets cannot flood the console too."""

    __slots__ = ("what", "count", "_log")

    def __init__(self, what: str, log: Callable[[str], None]) -> None:
        self.what = what
        self.count = 0
        self._log = log

    def __call__(self, exc: Malformed) -> None:
        self.count += 1
        if self.count & (self.count - 1) == 0:
            self._log(f"{self.what}: dropped a malformed message ({exc}); {self.count} so far")


def similarity(a: str, b: str) -> float:
    """2·M / (len(a) + len(b)), M the longest common subsequence: difflib's ratio for names
    (written out so that the init carries neither difflib nor the re and enum it imports)."""
    previous = [0] * (len(b) + 1)
    for char in a:
        row = [0]
        for j, other in enumerate(b):
            row.append(previous[j] + 1 if char == other else max(previous[j + 1], row[j]))
        previous = row
    return 2 * previous[-1] / (len(a) + len(b)) if a or b else 1.0


def close_match(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """The choice most like `word`, or "" when none is close."""
    scored = [(similarity(word, choice), choice) for choice in set(choices)]
    best = max((pair for pair in scored if pair[0] >= cutoff), default=None)
    return best[1] if best else ""


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """' (did you mean "restart"?)' when a choice is close to `word`, else ''.

    `prefix` is shown but not compared, so "pinit.restrat" is not matched on its "pinit.".
    """
    close = close_match(word, choices)
    return f' (did you mean "{prefix}{close}"?)' if close else ""
