"""A service's output kept on the data partition: /data/log/<name>.log, bounded, rotated.

Only whole lines are appended, each batch made durable (fdatasync) before the next, so a power
cut loses at most the lines of the last batch. When the file would grow past the limit it is
renamed to <name>.log.1 (one rename, atomic on ext4: never half of either file) and a new one
is started; the older file is never written again.
"""

from __future__ import annotations

import posix

from init.console import Log, errname
from init.kernel import Kernel


class LogFile:
    def __init__(self, kernel: Kernel, folder: str, name: str, limit: int, log: Log) -> None:
        self._kernel = kernel
        self._folder = folder
        self.path = f"{folder}/{name}.log"
        self._limit = limit
        self._log = log
        self._fd = -1
        self._size = 0
        self.broken = False   # after a write error: said once, then the console only

    def _open(self) -> None:
        try:
            self._kernel.mkdir(self._folder, 0o755)
        except FileExistsError:
            pass   # EEXIST: an earlier boot made it
        self._fd = self._kernel.open(self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT |
                                     posix.O_CLOEXEC, 0o640)
        self._size = self._kernel.file_size(self._fd)

    def append(self, lines: bytes) -> None:
        """Append whole lines (ending in a newline); rotate first when they would not fit."""
        if self.broken or not lines:
            return
        try:
            if self._fd < 0:
                self._open()
            if self._size and self._size + len(lines) > self._limit:
                self._kernel.close(self._fd)
                self._fd = -1
                self._kernel.rename(self.path, self.path + ".1")
                self._open()
            self._kernel.write(self._fd, lines[-self._limit:])
            self._kernel.fdatasync(self._fd)
            self._size += len(lines[-self._limit:])
        except OSError as exc:
            self.broken = True
            self._log(f"cannot write {self.path}: {errname(exc)}; its output goes to the "
                      "console only")

    def close(self) -> None:
        if self._fd >= 0:
            self._kernel.close(self._fd)
            self._fd = -1
