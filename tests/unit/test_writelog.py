"""tests/qemu/writelog.py, the reader of QEMU's blklogwrites log (dm-log-writes format), on logs
made here byte by byte as QEMU 7.2 writes them; and the harness's option that asks for one."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from builder.qemu import harness
from hostkit.errors import BuildError
from tests.qemu import writelog
from tests.unit.test_qemu import make_folder

SECTOR = 512


def super_block(count: int, sector: int = SECTOR) -> bytes:
    head = struct.pack("<QQQI", writelog.MAGIC, writelog.VERSION, count, sector)
    return head.ljust(sector, b"\0")


def entry(sector: int, data: bytes = b"", flags: int = 0, sectors: int | None = None) -> bytes:
    """An entry as QEMU logs it: a header sector, then the data (none for a discard)."""
    count = len(data) // SECTOR if sectors is None else sectors
    head = struct.pack("<QQQQ", sector, count, flags, 0).ljust(SECTOR, b"\0")
    return head + data


WRITE_A = b"A" * SECTOR * 2
WRITE_B = b"B" * SECTOR
LOG = b"".join(
    [
        super_block(3),  # QEMU counts at a flush: the write after the flush is not counted yet
        entry(4, WRITE_A),
        entry(0, flags=writelog.FLUSH),
        entry(8, bytes(SECTOR * 2)),  # a "write zeroes": logged as a write of zeros
        entry(5, WRITE_B),
        entry(2, flags=writelog.DISCARD, sectors=2),
        entry(9, b"C" * SECTOR)[:-1],  # cut short by the kill: dropped
    ]
)


def test_a_log_is_read_to_its_end_past_the_super_blocks_count() -> None:
    log = writelog.parse(LOG)
    assert (log.sector_size, log.counted) == (SECTOR, 3)
    shape = [(e.index, e.offset, e.length, e.flags) for e in log.entries]
    assert shape == [
        (1, 4 * SECTOR, 2 * SECTOR, 0),
        (2, 0, 0, writelog.FLUSH),
        (3, 8 * SECTOR, 2 * SECTOR, 0),
        (4, 5 * SECTOR, SECTOR, 0),
        (5, 2 * SECTOR, 2 * SECTOR, writelog.DISCARD),
    ]
    assert [e.index for e in log.writes] == [1, 3, 4, 5]
    assert LOG[log.entries[0].data_at :].startswith(WRITE_A)
    assert log.entries[1].describe() == "#2 flush"
    assert log.entries[3].describe() == f"#4 write 512 bytes at {5 * SECTOR}"
    assert log.entries[0].overlaps(5 * SECTOR, SECTOR)
    assert not log.entries[0].overlaps(6 * SECTOR, SECTOR)
    assert not log.entries[1].overlaps(0, 100 * SECTOR)  # a flush changes nothing


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\0" * 100, "magic 0x0"),
        (b"short", "no super block"),
        (super_block(2) + entry(1, WRITE_B), "counts 2 entries, the log holds 1"),
        (super_block(1) + entry(1, WRITE_B, flags=0x40), "unknown flags 0x40"),
        (super_block(0, sector=24), "sector size 24"),
    ],
)
def test_what_is_not_a_whole_log_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(writelog.LogError, match=problem):
        writelog.parse(data)


def test_past_the_counted_entries_what_is_not_an_entry_ends_the_log() -> None:
    log = writelog.parse(super_block(1) + entry(1, WRITE_B) + b"\xff" * SECTOR)
    assert len(log.entries) == 1


def test_each_prefix_is_the_disk_after_a_power_cut_there(tmp_path: Path) -> None:
    (tmp_path / "w.log").write_bytes(LOG)
    log = writelog.read(tmp_path / "w.log")
    disk, part = tmp_path / "disk.img", tmp_path / "part.img"
    original = bytes(range(256)) * 2 * 12  # 12 sectors
    disk.write_bytes(original)
    part.write_bytes(original[4 * SECTOR : 6 * SECTOR])  # a copy of sectors 4 and 5
    states = []
    with writelog.Replay(log, disk, [(part, 4 * SECTOR, 2 * SECTOR)]) as cards:
        for _ in cards.steps():
            states.append(disk.read_bytes())
            assert part.read_bytes() == states[-1][4 * SECTOR : 6 * SECTOR]
        assert cards.applied == 5
    after = bytearray(original)
    after[4 * SECTOR : 6 * SECTOR] = WRITE_A
    assert states[0] == states[1] == after  # a flush writes nothing
    after[8 * SECTOR : 10 * SECTOR] = bytes(2 * SECTOR)
    assert states[2] == after
    after[5 * SECTOR : 6 * SECTOR] = WRITE_B  # the later write wins
    assert states[3] == after
    after[2 * SECTOR : 4 * SECTOR] = bytes(2 * SECTOR)  # a discarded range reads as zeros
    assert states[4] == after


def test_the_harness_logs_the_disks_writes_on_virt_only(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "boot")
    disk, log = tmp_path / "card.img", tmp_path / "a,b.log"
    disk.write_bytes(bytes(SECTOR))
    log.write_bytes(b"an old log")
    with harness.plan(folder, disk=disk, disk_log=log) as plan:
        assert plan.args[-4:] == [
            "-drive",
            f"if=none,id=hd0,driver=blklogwrites,file.driver=file,file.filename={disk},"
            f"log.driver=file,log.filename={tmp_path}/a,,b.log,log-sector-size=512",
            "-device",
            "virtio-blk-device,drive=hd0",
        ]
    assert log.read_bytes() == b""  # emptied: QEMU would write over it, not shorten it
    with harness.plan(folder, disk=disk) as plan:
        assert "blklogwrites" not in " ".join(plan.args)
    with pytest.raises(BuildError, match="needs -M virt"):
        harness.plan(folder, "raspi3b", disk=disk, disk_log=log)
