"""The one exception base of the init, and the close-match hint its messages share.

main() turns any InitError into one console line and then follows the failure policy; a message
therefore names what was acted on (file, key, module) and the value that was wrong.
"""

from __future__ import annotations

from _collections_abc import Iterable


class InitError(Exception):
    """Boot cannot go on as configured; str(err) says what and where in one line."""


class ConfigError(InitError):
    """pinit.json (or pinit.toml, via the builder) holds a value the init cannot use."""


class ModuleError(InitError):
    """A kernel module cannot be found or its dependencies cannot be ordered."""


def close_match(word: str, choices: Iterable[str]) -> str:
    """The choice most like `word`, or "" when none is close."""
    # Only error paths get here, so PID 1 start-up never pays for importing difflib.
    import difflib

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else ""


def did_you_mean(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """' (did you mean "restart"?)' when a choice is close to `word`, else ''.

    `prefix` is shown but not compared, so "pinit.restrat" is not matched on its "pinit.".
    """
    close = close_match(word, choices)
    return f' (did you mean "{prefix}{close}"?)' if close else ""
