"""Where the repository is and where its outputs go: the one definition of both."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build"  # outputs (build/init, build/boot/, build/nuitka/…); never committed
