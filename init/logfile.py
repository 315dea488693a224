"""A service's output kept on the data partition: /data/log/<name>.log, bounded, rotated.

Only whole lines are appended, each batch made durable (fdatasync) before the next, so a power
cut loses at most the lines of the last batch; what a cut left of that batch (a line cut short,
or zeros) is taken back when the file is opened again. When the file would grow past the limit it is
renamed to <name>.log.1 (one rename, atomic on ext4: never half of either file) and a new one
is started; the older file is never written again. A full partition (ENOSPC, EDQUOT) is said
once; the lines that do not fit are dropped (a batch cut short is taken back: whole lines only)
and counted, and writing goes on by itself, with a line saying so, when there is room again.
"""

from __future__ import annotations

import errno
import posix

from init.console import Log, errname
from init.kernel import Kernel

FULL = (errno.ENOSPC, errno.EDQUOT)
TAIL = 65536  # how far back from the end a file's last whole line is looked for


class LogFile:
    def __init__(self, kernel: Kernel, folder: str, name: str, limit: int, log: Log) -> None:
        self._kernel = kernel
        self._folder = folder
        self.path = f"{folder}/{name}.log"
        self._limit = limit
        self._log = log
        self._fd = -1
        self._size = 0
        self.broken = False  # after a write error: said once, then the console only
        self.dropped = 0  # lines dropped while the partition is full

    def _open(self) -> None:
        try:
            self._kernel.mkdir(self._folder, 0o755)
        except FileExistsError:
            pass  # EEXIST: an earlier boot made it
        self._fd = self._kernel.open(
            self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o640
        )
        self._size = self._kernel.file_size(self._fd)
        if self._size:
            self._trim()

    def _trim(self) -> None:
        """Back to the end of the last whole line: after a power cut the file can end inside
        the batch that was being written (a part of it, or zeros where ext4 had no data yet)."""
        tail = self._kernel.read_file(self.path, min(self._size, TAIL), max(self._size - TAIL, 0))
        keep = self._size - len(tail) + tail.rfind(b"\n") + 1
        if keep == self._size:
            return
        self._kernel.ftruncate(self._fd, keep)
        self._log(
            f"{self.path}: took back {self._size - keep} bytes of a batch cut short (a power cut)"
        )
        self._size = keep

    def append(self, lines: bytes) -> None:
        """Append whole lines (ending in a newline); rotate first when they would not fit."""
        if self.broken or not lines:
            return
        kept = lines[-self._limit :]
        try:
            if self._fd < 0:
                self._open()
            if self._size and self._size + len(kept) > self._limit:
                self._kernel.close(self._fd)
                self._fd = -1
                self._kernel.rename(self.path, self.path + ".1")
                self._open()
            self._kernel.write(self._fd, kept)
            self._kernel.fdatasync(self._fd)
        except OSError as exc:
            if exc.errno in FULL:
                self._full(exc, lines.count(b"\n"))
                return
            self.broken = True
            self._log(
                f"cannot write {self.path}: {errname(exc)}; its output goes to the console only"
            )
            return
        self._size += len(kept)
        if self.dropped:
            self._log(
                f"{self.path}: writing again ({self.dropped} lines were dropped while "
                "the data partition was full)"
            )
            self.dropped = 0

    def _full(self, exc: OSError, lines: int) -> None:
        if not self.dropped:
            self._log(
                f"cannot write {self.path}: {errname(exc)}; dropping its lines until there is room"
            )
        self.dropped += lines
        if self._fd < 0:
            return
        try:
            if self._kernel.file_size(self._fd) != self._size:
                self._kernel.ftruncate(self._fd, self._size)  # part of a batch: taken back
        except OSError:
            pass  # the next batch still goes after whole lines on most file systems

    def close(self) -> None:
        if self._fd >= 0:
            self._kernel.close(self._fd)
            self._fd = -1
