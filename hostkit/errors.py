"""The one error type the builder raises; tasks.py turns it into a one-line message plus a hint."""

from __future__ import annotations


class BuildError(Exception):
    """A build failed for a reason a person can act on.

    `str(err)` is one line saying what failed and where; `hint` says what to do about it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint
