"""Where downloads and unpacked trees live: outside the repository, one place per user."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_dir() -> Path:
    """~/.cache/pinit; PINIT_CACHE overrides the place (CI uses an empty one)."""
    env = os.environ.get("PINIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pinit"


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made if missing) for the block: two builds on one
    machine that share a work folder in the cache take turns instead of mixing their files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
