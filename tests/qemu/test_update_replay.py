"""A power cut at every write of an A/B update: QEMU logs each write that reaches the card
(its `blklogwrites` driver, harness.plan(disk_log=...)) while an update is written to slot 3 and
while it is tried and committed; the host then rebuilds the card as a power cut after each write
would leave it (every prefix of the log, each write whole) and checks what the firmware would boot
from it: autoboot.txt parses and names a slot, every file of that slot is one version's, old or
new, whole, and fsck.fat finds nothing wrong with it. A few of those cards are then booted for
real. Replaying only prefixes shows the order in which writes reached the card; a real card may
also reorder writes between two flushes, or keep part of a write of many sectors."""

from __future__ import annotations

import filecmp
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder import update
from builder.formats import sdimage
from builder.image import firmware_choice
from builder.qemu import harness
from init import slots
from init.bundle import decode
from tests.qemu import writelog
from tests.qemu.test_update import POWER_DOWN, TRYBOOT, appliance, autoboot, bundle_of, drop

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which(harness.QEMU) is None or shutil.which("mcopy") is None,
        reason="qemu-system-aarch64 or mtools is not installed (invoke toolchain)",
    ),
]
# PINIT_REPLAY=distinct checks each distinct state of the card once: a prefix whose writes
# since the last check touched neither partition 1 nor the slot it boots leaves those bytes as
# they were, so the same verdict (the data partition is read again only when written, always).
# By default every prefix's slot is checked from the card itself.
EVERY = os.environ.get("PINIT_REPLAY", "every") != "distinct"
FAT_PARTITIONS = (slots.SWITCH_PARTITION, *slots.SLOTS)
FAT32_STATE = 0x41  # the boot sector's byte whose bit 0 Linux sets while the FAT is mounted
UPDATER_STOPPED = "pinit: updater: internal error"
# fsck.fat on a file whose directory entry is on the card before its cluster chain is
BROKEN_CHAIN = "Contains a free cluster"


@dataclass(frozen=True)
class Cut:
    """The card after a power cut after `k` entries of a log (`entry` the k-th, None for k = 0),
    and what the firmware boots from it."""

    log: str
    k: int
    entry: writelog.Entry | None
    partition: int
    version: str
    problems: tuple[str, ...]
    switch_dirty: bool  # partition 1 was mounted: its FAT dirty bit is set
    state: tuple[int, int, int]  # (the last entry to write partition 1, the slot booted, the
    # last entry to write that slot): equal states, equal bytes
    inbox: dict[str, str]  # /data/update after the journal's replay: name -> text ("bundle")
    other: str  # fsck.fat's complaint about the slot not booted ("" none; its dirty bit aside)

    def where(self) -> str:
        return f"{self.log} after {self.entry.describe() if self.entry else 'no write'}"


def copy_card(src: Path, dst: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", "--reflink=auto", src, dst], check=True)
    return dst


def slot_files(card: Path, partition: int, scratch: Path) -> dict[str, str]:
    """Every file of a FAT partition of the card and its SHA-256, copied out by mtools."""
    start = next(p.start for p in sdimage.read_partitions(card) if p.index == partition)
    out = scratch / "files"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    copy = subprocess.run(
        ["mcopy", "-s", "-n", "-i", f"{card}@@{start}", "::/*", str(out)],
        env={**os.environ, **sdimage.MTOOLS_ENV},
        capture_output=True,
        text=True,
    )
    if copy.returncode != 0:
        raise AssertionError(f"mcopy cannot read slot {partition}: {' '.join(copy.stderr.split())}")
    return {
        path.relative_to(out).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def fsck_fat(part: Path, allow_dirty: bool = False) -> str:
    """fsck.fat -n's complaint about a partition's copy ("" when it has none). `allow_dirty`:
    the dirty bit a mounted FAT has is not one (the Pi's firmware does not look at it)."""
    with open(part, "r+b") as f:
        f.seek(FAT32_STATE)
        state = f.read(1)[0]
        dirty = allow_dirty and state & 1
        if dirty:
            f.seek(FAT32_STATE)
            f.write(bytes([state & ~1]))
            f.flush()
        try:
            result = subprocess.run(["fsck.fat", "-n", str(part)], capture_output=True, text=True)
        finally:
            if dirty:
                f.seek(FAT32_STATE)
                f.write(bytes([state]))
    lines = [line.strip() for line in result.stdout.splitlines()[1:-1]]  # no version, no total
    return "" if result.returncode == 0 else " ".join(line for line in lines if line)


def what_boots(
    card: Path, fats: dict[int, Path], versions: dict[str, dict[str, str]], scratch: Path
) -> tuple[int, str, list[str]]:
    """(the slot the firmware boots from `card`, the version whose files it holds, what is wrong):
    autoboot.txt must name a slot (without it the firmware boots partition 1, which holds no
    kernel), that slot's files must be one version's manifest whole, and fsck.fat must pass on it
    and on partition 1 (but for the dirty bit of a mounted FAT)."""
    problems = []
    partition, _ = firmware_choice(card, tryboot=False)
    if partition not in slots.SLOTS or autoboot(card) not in {(2, 3), (3, 2)}:
        return partition, "", [f"autoboot.txt names no slot: the firmware boots {partition}"]
    if complaint := fsck_fat(fats[slots.SWITCH_PARTITION], allow_dirty=True):
        problems.append(f"fsck.fat on partition 1: {complaint}")
    try:
        files = slot_files(card, partition, scratch)
    except AssertionError as exc:
        return partition, "", [*problems, str(exc)]
    version = next((name for name, manifest in versions.items() if files == manifest), "")
    if not version:
        for name, manifest in versions.items():
            wrong = sorted(
                p for p in manifest.keys() | files.keys() if manifest.get(p) != files.get(p)
            )
            problems.append(f"slot {partition} is not {name}: {', '.join(wrong[:6])} differ")
    if complaint := fsck_fat(fats[partition]):
        problems.append(f"fsck.fat on slot {partition}: {complaint}")
    return partition, version, problems


def read_inbox(data: Path, scratch: Path) -> tuple[int, dict[str, str]]:
    """What the next boot finds in /data/update of a data partition's copy: e2fsck -fy's status
    (on a copy: it replays the journal, as the mount would) and the inbox's files, the records'
    texts (the bundle: "bundle")."""
    copy = copy_card(data, scratch / "data.img")
    status = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True).returncode
    listing = subprocess.run(
        ["debugfs", "-R", "ls -p /update", str(copy)], capture_output=True, text=True
    ).stdout
    files = {}
    for line in listing.splitlines():
        fields = line.split("/")  # /inode/mode/uid/gid/name/size/
        if len(fields) == 8 and fields[5] not in (".", "..") and fields[2].startswith("10"):
            name = fields[5]
            text = "bundle"
            if not name.endswith(".bundle"):
                text = subprocess.run(
                    ["debugfs", "-R", f"cat /update/{name}", str(copy)],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
            files[name] = text
    return status, files


def replay(
    name: str, base: Path, log: writelog.WriteLog, work: Path, versions: dict[str, dict[str, str]]
) -> list[Cut]:
    """The card `base` after a power cut at each entry of `log` (k = 0 … all), checked: what the
    firmware boots (what_boots), and what the next boot finds in /data (read_inbox: checked again
    only when a write touched the data partition, whose bytes are otherwise the same)."""
    card = copy_card(base, work / f"{name}.img")
    parts = {p.index: p for p in sdimage.read_partitions(card)}
    data = max(parts)
    copies = {i: work / f"{name}-p{i}.img" for i in (*FAT_PARTITIONS, data)}
    for i, path in copies.items():
        sdimage.extract_partition(card, i, path)
    mirrors = [(path, parts[i].start, parts[i].size) for i, path in copies.items()]
    changed = {i: 0 for i in parts}  # partition -> the last entry that wrote to it
    seen: dict[tuple[int, int, int], tuple[int, str, list[str]]] = {}
    found: dict[int, tuple[int, dict[str, str]]] = {}
    cuts = []
    with writelog.Replay(log, card, mirrors) as cards:
        for entry in itertools.chain([None], cards.steps()):
            for i, part in parts.items():
                if entry is not None and entry.overlaps(part.start, part.size):
                    changed[i] = entry.index
            partition = firmware_choice(card, tryboot=False)[0]
            key = (changed[1], partition, changed.get(partition, 0))
            if EVERY or key not in seen:
                seen[key] = what_boots(card, copies, versions, work)
            partition, version, problems = seen[key]
            if changed[data] not in found:
                found[changed[data]] = read_inbox(copies[data], work)
            status, files = found[changed[data]]
            if status >= 4:
                problems = [*problems, f"e2fsck -fy cannot repair /data: status {status}"]
            with open(copies[slots.SWITCH_PARTITION], "rb") as f:
                f.seek(FAT32_STATE)
                dirty = bool(f.read(1)[0] & 1)
            other = fsck_fat(copies[slots.other(partition)], allow_dirty=True)
            cuts.append(
                Cut(
                    name,
                    cards.applied,
                    entry,
                    partition,
                    version,
                    tuple(problems),
                    dirty,
                    key,
                    files,
                    other,
                )
            )
    return cuts


def partitions_written(card: Path, log: writelog.WriteLog) -> set[int]:
    """The partitions the log's writes touch (0: outside every partition, the MBR say)."""
    parts = sdimage.read_partitions(card)
    touched = set()
    for entry in log.writes:
        hit = {p.index for p in parts if entry.overlaps(p.start, p.size)}
        touched |= hit or {0}
    return touched


def logged_boot(card: Path, tryboot: bool, log: Path, expect: list[str], console: Path) -> None:
    """One boot as the bootloader would make it, every write to the card logged into `log`."""
    with harness.plan(card, tryboot=tryboot, disk_log=log) as plan:
        result = harness.run(
            plan, expect=expect, fail=("FATAL",), then="reboot: ", timeout=120, log=console
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])


def cut_card(base: Path, log: writelog.WriteLog, k: int, out: Path) -> Path:
    """The card `base` as a power cut after the log's k-th entry leaves it."""
    copy_card(base, out)
    with writelog.Replay(log, out) as cards:
        for _ in range(k):
            cards.step()
    return out


def write_boot(card: Path, tmp_path: Path) -> Path:
    """The boot that writes the update into slot 3, every write logged (tmp_path/write.log);
    the card as it was before it."""
    before = copy_card(card, tmp_path / "before.img")
    logged_boot(
        card,
        False,
        tmp_path / "write.log",
        ["update: version v2 written to slot 3", TRYBOOT],
        tmp_path / "write.console",
    )
    return before


def boot_cut(
    card: Path,
    expect: list[str],
    app: str,
    log: Path,
    tryboot: bool = False,
    then: str | None = None,
    fail: tuple[str, ...] = (UPDATER_STOPPED,),
) -> harness.BootResult:
    """Boot a card after a power cut: the app runs (`app`, its line, in any order beside
    `expect`) and /data is mounted, checked by e2fsck and not found damaged; `fail`: more
    texts that fail the boot (by default the updater stopping on an error)."""
    with harness.plan(card, tryboot=tryboot) as plan:
        result = harness.run(
            plan,
            expect=["pinit: mounted /data", *expect],
            also=[app],
            fail=("FATAL", "damaged", "cannot mount", *fail),
            then=then,
            timeout=120,
            log=log,
        )
    assert result.ok, f"{result.reason}\n" + "\n".join(result.lines[-40:])
    return result


def updating(cc, built_init, toolchain, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(a v1 card with a v2 bundle in its inbox, the bundle, the update key's public half)."""
    private, public = update.keygen(tmp_path / "keys")
    new = appliance(cc, tmp_path, "v2", public, False, built_init, toolchain)
    card = appliance(cc, tmp_path, "v1", public, False, built_init, toolchain)
    bundle = bundle_of(new, private, tmp_path / "u.bundle", "v2")
    drop(card, {"u.bundle": bundle}, tmp_path)
    return card, bundle, public


def test_a_power_cut_at_every_write_of_an_update_leaves_a_card_that_boots_a_whole_slot(
    cc, built_init, toolchain, tmp_path
) -> None:
    card, bundle, public = updating(cc, built_init, toolchain, tmp_path)
    scratch = Path(tempfile.mkdtemp(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None))
    try:
        versions = {
            "v1": slot_files(card, slots.SLOTS[0], scratch),
            "v2": {
                path: hashlib.sha256(body).hexdigest()
                for path, body in decode(bundle.read_bytes(), public.read_bytes()).files
            },
        }
        assert versions["v1"] != versions["v2"]

        # Two boots, every write logged: the update written to slot 3, then tried and kept.
        before = write_boot(card, tmp_path)
        written = copy_card(card, tmp_path / "written.img")
        logged_boot(
            card,
            True,
            tmp_path / "commit.log",
            ["update: trying slot 3", "APP v2", "update: slot 3 is healthy and kept", POWER_DOWN],
            tmp_path / "commit.console",
        )
        assert autoboot(card) == (3, 2)
        write_log = writelog.read(tmp_path / "write.log")
        commit_log = writelog.read(tmp_path / "commit.log")

        started = time.monotonic()
        cuts = replay("write", before, write_log, scratch, versions)
        # The whole log rebuilds the card QEMU left: no write is missing, none misread.
        assert filecmp.cmp(scratch / "write.img", written, shallow=False)
        # And the firmware's one try after it boots slot 3, whole and new.
        assert firmware_choice(written, tryboot=True)[0] == 3
        assert slot_files(written, 3, scratch) == versions["v2"]
        cuts += replay("commit", written, commit_log, scratch, versions)
        assert filecmp.cmp(scratch / "commit.img", card, shallow=False)
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    flushes = sum(bool(e.flags & writelog.FLUSH) for e in write_log.entries + commit_log.entries)
    print(
        f"replayed {len(cuts)} cards ({len(write_log.writes)} + {len(commit_log.writes)} writes, "
        f"{flushes} flushes) in {seconds:.1f} s, "
        f"{'every prefix' if EVERY else 'distinct states'} checked"
    )
    bad = [f"{c.where()}: {p}" for c in cuts for p in c.problems]
    assert not bad, f"{len(bad)} problems, the first:\n" + "\n".join(bad[:10])

    # Writing the update touches neither the switch nor the running slot, only slot 3 and /data.
    assert partitions_written(before, write_log) == {3, 4}
    assert partitions_written(written, commit_log) == {1, 4}
    # The switch is written a sector at a time: a card keeps each sector whole or not at all.
    switch = next(p for p in sdimage.read_partitions(card) if p.index == 1)
    assert all(e.length == 512 for e in commit_log.writes if e.overlaps(switch.start, switch.size))
    # Old until one write of the commit, new from it on: never a third state, never back.
    booted = [(c.partition, c.version) for c in cuts]
    flip = next((i for i, b in enumerate(booted) if b != (2, "v1")), len(cuts))
    assert flip < len(cuts), "the commit never made slot 3 the default"
    assert booted[:flip] == [(2, "v1")] * flip and booted[flip:] == [(3, "v2")] * (len(cuts) - flip)
    commit = cuts[flip]
    assert commit.log == "commit" and commit.entry is not None
    assert commit.entry.overlaps(switch.start, switch.size)
    # The update is never forgotten: the inbox still holds the bundle (the next boot writes the
    # slot again), or records the try (.trying: slot 3 holds it whole) or the version kept.
    for c in cuts:
        pending = "bundle" in c.inbox.values()
        tried = c.inbox.get(".trying", "").split()[:2] == ["v2", "3"]
        kept = c.inbox.get(".version") == "v2"
        assert pending or tried or kept, f"{c.where()}: /data/update holds {c.inbox}"
        assert c.version == "v1" or tried or kept, f"{c.where()}: v2 boots, not recorded"
    # Cards on which the bundle is gone but the old slot boots: the next boot gives v2 up.
    given_up = [c for c in cuts if c.version == "v1" and "bundle" not in c.inbox.values()]
    untried = [c for c in given_up if c.log == "write"]
    broken = [c for c in cuts if BROKEN_CHAIN in c.other]
    print(
        f"{sum(bool(c.other) for c in cuts)} cuts leave the slot not booted inconsistent, "
        f"{len(broken)} with a file whose cluster chain is not on the card yet"
    )
    print(
        f"{len({(c.log, c.state) for c in cuts})} distinct states of partition 1 and the slot "
        f"booted; the commit is {commit.where()}; {sum(c.switch_dirty for c in cuts)} cuts "
        f"leave partition 1's FAT dirty bit set; {len(given_up)} give v2 up, "
        f"{len(untried)} of them before it was tried (from {untried[0].where() if untried else '-'})"
    )

    # Some of those cards, booted for real. Halfway through slot 3: the old slot boots, and
    # finds the bundle again (that it writes it again: test_a_slot_cut_part_way_is_written_again).
    slot3 = next(p for p in sdimage.read_partitions(card) if p.index == 3)
    slot_writes = [e.index for e in write_log.writes if e.overlaps(slot3.start, slot3.size)]
    halfway = cut_card(before, write_log, slot_writes[len(slot_writes) // 2], tmp_path / "a.img")
    boot_cut(halfway, ["signature and hashes good"], "APP v1", tmp_path / "a.console", fail=())
    again = ["signature and hashes good", "update: version v2 written to slot 3", TRYBOOT]

    # The slot written whole, the bundle not yet gone: the update is written again.
    whole = cut_card(before, write_log, slot_writes[-1], tmp_path / "b.img")
    boot_cut(whole, again, "APP v1", tmp_path / "b.console", then="reboot: ")

    # Everything on the card, the reboot into the try not made: the old slot boots, sees that
    # the try never began (.trying is on the card, the bundle is not), and reboots to try it.
    everything = cut_card(before, write_log, len(write_log.entries), tmp_path / "c.img")
    boot_cut(
        everything,
        ["update: version v2 in slot 3 was written but never tried", TRYBOOT],
        "APP v1",
        tmp_path / "c.console",
        then="reboot: ",
    )

    # Cut just before and just after the commit's write of autoboot.txt.
    kept = cut_card(written, commit_log, commit.k, tmp_path / "e.img")
    result = boot_cut(kept, [], "APP v2", tmp_path / "e.console")
    assert not any("update: trying" in line or "not kept" in line for line in result.lines)
    not_kept = cut_card(written, commit_log, commit.k - 1, tmp_path / "d.img")
    boot_cut(
        not_kept,
        ["update: version v2 was not kept: slot 2 runs on"],
        "APP v1",
        tmp_path / "d.console",
    )


def test_a_slot_cut_part_way_is_written_again(cc, built_init, toolchain, tmp_path) -> None:
    """A power cut while slot 3 is written, at the first write after which a file of slot 3 is
    in its folder before its cluster chain is in the FAT: the next boot writes the slot again
    (docs/update.md), tries it and keeps it."""
    card, _, _ = updating(cc, built_init, toolchain, tmp_path)
    before = write_boot(card, tmp_path)
    write_log = writelog.read(tmp_path / "write.log")
    cut = copy_card(before, tmp_path / "cut.img")
    slot3 = next(p for p in sdimage.read_partitions(cut) if p.index == 3)
    copy = tmp_path / "p3.img"
    sdimage.extract_partition(cut, 3, copy)
    with writelog.Replay(write_log, cut, [(copy, slot3.start, slot3.size)]) as cards:
        for entry in cards.steps():
            if entry.overlaps(slot3.start, slot3.size) and BROKEN_CHAIN in fsck_fat(copy, True):
                break
        else:
            pytest.skip("no cut leaves a file without its cluster chain in slot 3")
    again = ["signature and hashes good", "update: version v2 written to slot 3", TRYBOOT]
    boot_cut(cut, again, "APP v1", tmp_path / "1.console", then="reboot: ")
    boot_cut(
        cut,
        ["update: trying slot 3", "update: slot 3 is healthy and kept", POWER_DOWN],
        "APP v2",
        tmp_path / "2.console",
        tryboot=True,
    )
