"""Where downloads and unpacked trees live: outside the repository, one place per user."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """~/.cache/pinit; PINIT_CACHE overrides the place (CI uses an empty one)."""
    env = os.environ.get("PINIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pinit"
