"""QEMU's write log (the `blklogwrites` block driver, harness.plan(disk_log=...)), read on the
host to replay a power cut at every write.

The format is Linux's dm-log-writes', as QEMU 7.2's block/blklogwrites.c writes it, all fields
little-endian: sector 0 is the super block (magic, version, the number of entries, the log's
sector size), then each entry: one sector whose start is its header (sector, nr_sectors, flags,
data_len), then, unless it is a discard, nr_sectors sectors of the data written. `sector` and
`nr_sectors` count the log's sectors (log-sector-size, 512 here, as Linux's). A flush is an
entry of its own with no data; a "write zeroes" is logged as a write of zeros. QEMU logs a write
once the disk file has it, so the log's order is the order in which writes completed: replaying
each prefix of it is a power cut after each write, each write whole (a block device promises
no more than each sector whole: a write of many sectors may be cut part way).

QEMU updates the super block's count only at a flush or every 4096 entries, so the count can
trail the entries a killed QEMU left: the log is read to its end (the harness makes it empty
before each boot), and a last entry cut short is dropped.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0x6A736677736872
VERSION = 1
FLUSH, FUA, DISCARD, MARK = 1, 2, 4, 8
SUPER = struct.Struct("<QQQI")
ENTRY = struct.Struct("<QQQQ")


class LogError(ValueError):
    """Not a write log, or one this reader does not understand."""


@dataclass(frozen=True)
class Entry:
    """One logged request: `offset` and `length` in bytes on the disk; its data, if any, at
    `data_at` in the log file."""

    index: int  # 1-based: entry k is the k-th request
    offset: int
    length: int
    flags: int
    data_at: int

    @property
    def writes(self) -> bool:
        """It changes the disk: a write (or write zeroes) or a discard, not a flush or mark."""
        return self.length > 0 and not self.flags & MARK

    def overlaps(self, start: int, size: int) -> bool:
        return self.writes and self.offset < start + size and start < self.offset + self.length

    def describe(self) -> str:
        names = [
            n
            for bit, n in ((FLUSH, "flush"), (FUA, "fua"), (DISCARD, "discard"))
            if self.flags & bit
        ]
        what = "+".join(names) or "write"
        return (
            f"#{self.index} {what} {self.length} bytes at {self.offset}"
            if self.length
            else f"#{self.index} {what}"
        )


@dataclass(frozen=True)
class WriteLog:
    path: Path
    sector_size: int
    counted: int  # the super block's entry count (may trail len(entries), see above)
    entries: tuple[Entry, ...]

    @property
    def writes(self) -> list[Entry]:
        return [e for e in self.entries if e.writes]


def parse(data: bytes, path: Path = Path("-")) -> WriteLog:
    """The entries of a write log's bytes."""
    if len(data) < SUPER.size:
        raise LogError(f"{path}: {len(data)} bytes: no super block")
    magic, version, counted, sector_size = SUPER.unpack_from(data, 0)
    if magic != MAGIC:
        raise LogError(f"{path}: magic {magic:#x}, not a dm-log-writes log ({MAGIC:#x})")
    if version != VERSION:
        raise LogError(f"{path}: version {version}, expected {VERSION}")
    if sector_size < ENTRY.size or sector_size & (sector_size - 1):
        raise LogError(f"{path}: sector size {sector_size}")
    entries: list[Entry] = []
    at = sector_size
    while at + ENTRY.size <= len(data):
        sector, sectors, flags, data_len = ENTRY.unpack_from(data, at)
        if flags & ~(FLUSH | FUA | DISCARD | MARK):
            if len(entries) >= counted:
                break  # what lies past the counted entries is not an entry: the end
            raise LogError(f"{path}: entry {len(entries) + 1} has unknown flags {flags:#x}")
        if flags & MARK:
            size = -(-data_len // sector_size) * sector_size
        else:
            size = 0 if flags & DISCARD else sectors * sector_size
        if at + sector_size + size > len(data):
            break  # the last entry, cut short by the end of the log
        entries.append(
            Entry(
                len(entries) + 1,
                sector * sector_size,
                0 if flags & MARK else sectors * sector_size,
                flags,
                at + sector_size,
            )
        )
        at += sector_size + size
    if len(entries) < counted:
        raise LogError(
            f"{path}: the super block counts {counted} entries, the log holds {len(entries)}"
        )
    return WriteLog(path, sector_size, counted, tuple(entries))


def read(path: Path) -> WriteLog:
    return parse(path.read_bytes(), path)


class Replay:
    """A copy of a disk, `disk`, to which a log's entries are applied one at a time, in order:
    after k steps it is the disk as a power cut after the log's k-th entry leaves it, each
    write whole. `mirrors`: (file, start, size): files that hold a copy of the disk's bytes
    [start, start + size) (a partition, for a tool that reads a whole device), kept the same."""

    def __init__(
        self, log: WriteLog, disk: Path, mirrors: Sequence[tuple[Path, int, int]] = ()
    ) -> None:
        self.log = log
        self.disk = disk
        self.applied = 0  # entries applied so far
        self._log_file = log.path.open("rb")
        self._fd = os.open(disk, os.O_RDWR)
        self._mirrors = [(os.open(path, os.O_RDWR), start, size) for path, start, size in mirrors]

    def data(self, entry: Entry) -> bytes:
        if entry.flags & DISCARD:
            return bytes(entry.length)  # QEMU's raw file punches a hole: it reads as zeros
        self._log_file.seek(entry.data_at)
        data = self._log_file.read(entry.length)
        if len(data) != entry.length:
            raise LogError(f"{self.log.path}: entry {entry.index} is cut short")
        return data

    def step(self) -> Entry:
        """Apply the next entry; returns it."""
        entry = self.log.entries[self.applied]
        if entry.writes:
            data = self.data(entry)
            os.pwrite(self._fd, data, entry.offset)
            for fd, start, size in self._mirrors:
                if entry.overlaps(start, size):
                    first = max(entry.offset, start)
                    last = min(entry.offset + entry.length, start + size)
                    os.pwrite(fd, data[first - entry.offset : last - entry.offset], first - start)
        self.applied += 1
        return entry

    def steps(self) -> Iterator[Entry]:
        while self.applied < len(self.log.entries):
            yield self.step()

    def close(self) -> None:
        self._log_file.close()
        for fd in [self._fd, *(fd for fd, _, _ in self._mirrors)]:
            os.close(fd)

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
