"""One way to write an output: whole or not at all, so a reader never sees half of it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to build a file or a directory in (by us or by a tool).
    When the block ends normally it takes the place of `path` in one rename; when it raises, it
    is removed and `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # a directory cannot be renamed over; a file can
        os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` as `path`, whole or not at all."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
