"""The SD-card image, built and checked with the real host tools (no root, no mounts)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from builder.formats import sdimage
from hostkit.errors import BuildError

MiB = 1024 * 1024
BIG = bytes(range(256)) * (MiB // 256)  # 1 MiB, not all zeros, so the sparse copy is exercised


@pytest.fixture
def boot_dir(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    (boot / "overlays" / "deep").mkdir(parents=True)
    (boot / "empty").mkdir()
    (boot / "config.txt").write_text("arm_64bit=1\n")
    (boot / "bcm2711-rpi-4-b.dtb").write_bytes(b"\xd0\x0d\xfe\xed" + b"\0" * 100)
    (boot / "vmlinuz").write_bytes(BIG)
    (boot / "overlays" / "a-long-overlay-name.dtbo").write_bytes(b"overlay")
    (boot / "overlays" / "deep" / "x.bin").write_bytes(b"")
    return boot


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "etc").mkdir(parents=True)
    (data / "name").write_text("hello data\n")
    (data / "etc" / "with space").write_text("spaced\n")
    return data


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tool(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def test_boot_partition_at_4mib_holds_the_folder(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir)

    assert image.stat().st_size % (4 * MiB) == 0
    parts = sdimage.read_partitions(image)
    assert parts == [sdimage.Partition(1, 0x0C, 4 * MiB, parts[0].size)]
    assert parts[0].size >= 64 * MiB
    table = json.loads(tool("sfdisk", "--json", image).stdout)["partitiontable"]
    assert table["label"] == "dos"
    assert [(p["start"], p["type"]) for p in table["partitions"]] == [(8192, "c")]

    fat = tmp_path / "boot.fat"
    sdimage.extract_partition(image, 1, fat)
    check = tool("fsck.fat", "-n", fat)
    assert check.returncode == 0, check.stdout + check.stderr
    with open(fat, "rb") as f:
        assert f.read(90)[82:90] == b"FAT32   "  # the FAT32 boot sector's type field
    assert "PINIT-BOOT" in tool("mlabel", "-s", "-i", fat, "::").stdout

    assert sdimage.fat_list(image, 1) == [
        "bcm2711-rpi-4-b.dtb",
        "config.txt",
        "empty/",
        "overlays/",
        "overlays/a-long-overlay-name.dtbo",
        "overlays/deep/",
        "overlays/deep/x.bin",
        "vmlinuz",
    ]
    for rel in (
        "config.txt",
        "bcm2711-rpi-4-b.dtb",
        "vmlinuz",
        "overlays/a-long-overlay-name.dtbo",
        "overlays/deep/x.bin",
    ):
        assert sdimage.fat_read(image, 1, rel) == (boot_dir / rel).read_bytes(), rel


def test_fat_entries_carry_source_date_epoch(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1", TZ="UTC")
    listing = subprocess.run(
        ["mdir", "-i", f"{image}@@{4 * MiB}", "::/overlays"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    rows = [line for line in listing.splitlines() if "DIR" in line or "dtbo" in line]
    assert rows and all("2024-01-01" in row for row in rows), listing


def test_data_partition_is_clean_ext4_with_the_files(
    tmp_path: Path, boot_dir: Path, data_dir: Path
) -> None:
    if os.geteuid() == 0:
        # As root the copies would already be root-owned; make the 0:0 rewrite visible.
        os.chown(data_dir / "name", 1234, 1234)
    image = tmp_path / "card.img"
    sdimage.make_image(
        image, boot_dir, data_size=10 * MiB, data_label="appdata", data_files=data_dir
    )

    boot, data = sdimage.read_partitions(image)
    assert data.index == 2 and data.type == 0x83
    assert data.start % (4 * MiB) == 0 and data.start >= boot.start + boot.size
    assert data.size == 12 * MiB  # rounded up to 4 MiB
    assert image.stat().st_size == data.start + data.size

    ext4 = tmp_path / "data.ext4"
    sdimage.extract_partition(image, 2, ext4)
    check = tool("e2fsck", "-n", "-f", ext4)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Filesystem volume name:   appdata" in tool("dumpe2fs", "-h", ext4).stdout
    assert tool("debugfs", "-R", "cat /name", ext4).stdout == "hello data\n"
    assert tool("debugfs", "-R", 'cat "/etc/with space"', ext4).stdout == "spaced\n"
    stat = tool("debugfs", "-R", "stat /name", ext4).stdout
    assert "User:     0   Group:     0" in stat
    assert stat.count("Mon Jan  1 00:00:00 2024") == 4, stat  # a/c/m/crtime


def test_empty_data_partition_without_files(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir, data_size=4 * MiB)
    ext4 = tmp_path / "data.ext4"
    sdimage.extract_partition(image, 2, ext4)
    assert tool("e2fsck", "-n", "-f", ext4).returncode == 0
    assert "pinit-data" in tool("dumpe2fs", "-h", ext4).stdout


def test_two_builds_are_byte_identical(tmp_path: Path, boot_dir: Path, data_dir: Path) -> None:
    first, second = tmp_path / "1.img", tmp_path / "2.img"
    sdimage.make_image(first, boot_dir, data_size=8 * MiB, data_files=data_dir)
    time.sleep(1.1)
    # Fresh mtimes and ctimes on every input: none of them may reach the image.
    for path in [*boot_dir.rglob("*"), *data_dir.rglob("*")]:
        if path.is_file():
            path.write_bytes(path.read_bytes())
    sdimage.make_image(second, boot_dir, data_size=8 * MiB, data_files=data_dir)
    assert sha256(first) == sha256(second)  # not bytes ==: pytest would diff 80 MiB


def test_different_contents_give_different_ids(tmp_path: Path, boot_dir: Path) -> None:
    first, second = tmp_path / "1.img", tmp_path / "2.img"
    sdimage.make_image(first, boot_dir)
    (boot_dir / "config.txt").write_text("arm_64bit=1\ngpu_mem=16\n")
    sdimage.make_image(second, boot_dir)
    id1 = json.loads(tool("sfdisk", "--json", first).stdout)["partitiontable"]["id"]
    id2 = json.loads(tool("sfdisk", "--json", second).stdout)["partitiontable"]["id"]
    assert id1 != id2


def test_requested_size_is_rounded_up_and_checked(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir, size=100 * MiB + 1)
    assert image.stat().st_size == 104 * MiB
    with pytest.raises(BuildError, match="need"):
        sdimage.make_image(tmp_path / "small.img", boot_dir, size=10 * MiB)
    assert not (tmp_path / "small.img").exists()


def test_names_that_collide_on_fat_are_refused(tmp_path: Path, boot_dir: Path) -> None:
    (boot_dir / "CONFIG.TXT").write_text("other\n")
    image = tmp_path / "card.img"
    with pytest.raises(BuildError, match="same name on FAT"):
        sdimage.make_image(image, boot_dir)
    assert not image.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_truncated_image_is_named_in_the_error(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir)
    with open(image, "r+b") as f:
        f.truncate(20 * MiB)
    with pytest.raises(BuildError, match="card.img.*truncated|card.img: partition 1 ends"):
        sdimage.read_partitions(image)


@pytest.mark.parametrize("data", [b"", b"\0" * 300, b"\0" * 512])
def test_image_without_a_partition_table_is_named_in_the_error(tmp_path: Path, data: bytes) -> None:
    image = tmp_path / "junk.img"
    image.write_bytes(data)
    with pytest.raises(BuildError, match="junk.img"):
        sdimage.read_partitions(image)


def test_missing_partition_and_wrong_type(tmp_path: Path, boot_dir: Path) -> None:
    image = tmp_path / "card.img"
    sdimage.make_image(image, boot_dir, data_size=4 * MiB)
    with pytest.raises(BuildError, match="no partition 3"):
        sdimage.extract_partition(image, 3, tmp_path / "p3")
    with pytest.raises(BuildError, match="not FAT"):
        sdimage.fat_list(image, 2)
    with pytest.raises(BuildError):
        sdimage.fat_read(image, 1, "no-such-file")
