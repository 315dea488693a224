"""Small pure pieces of the boot: labels and signatures, mount options, ifreq, the timeline,
the command line of main(), and the rootfs steps run into a temporary directory."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from init.console import Log, errname
from init.data import disk_signature, label_of
from init.errors import InitError
from init.main import NOT_PID1, describe, main, parse_args
from init.net import IFREQ, link_up
from init.rootfs import (
    MS_NOATIME,
    MS_NOSUID,
    MS_RDONLY,
    CharDev,
    Dir,
    Mount,
    Symlink,
    parse_options,
    run_steps,
)
from init.timeline import Timeline
from tests.fakes import FakeKernel, Run


def made_fs(tmp_path: Path, tool: list[str], size: int = 40 << 20) -> bytes:
    """The first 2 KiB of a fresh file system (mkfs on a sparse file: no root needed; FAT32
    wants at least ~33 MiB)."""
    if not shutil.which(tool[0]):
        pytest.skip(f"{tool[0]} not installed")
    image = tmp_path / "fs.img"
    with open(image, "wb") as file:
        file.truncate(size)
    subprocess.run([*tool, str(image)], check=True, capture_output=True)
    return image.read_bytes()[:2048]


def test_label_of_real_ext4(tmp_path: Path) -> None:
    assert label_of(made_fs(tmp_path, ["mkfs.ext4", "-q", "-L", "data"])) == "data"


@pytest.mark.parametrize("fat", ["16", "32"])
def test_label_of_real_vfat(tmp_path: Path, fat: str) -> None:
    head = made_fs(
        tmp_path, ["mkfs.vfat", "-F", fat, "-n", "BOOT"], (16 if fat == "16" else 40) << 20
    )
    assert label_of(head) == "BOOT"


def test_label_of_unlabelled_and_unknown() -> None:
    assert label_of(b"") is None
    assert label_of(bytes(2048)) is None
    fat = bytearray(512)
    fat[510:512] = b"\x55\xaa"
    fat[0x52:0x5A] = b"FAT32   "
    fat[0x47:0x52] = b"NO NAME    "
    assert label_of(bytes(fat)) is None


def test_disk_signature() -> None:
    mbr = bytearray(512)
    mbr[440:444] = (0x6C586E13).to_bytes(4, "little")
    assert disk_signature(bytes(mbr)) is None  # no boot signature: not an MBR
    mbr[510:512] = b"\x55\xaa"
    assert disk_signature(bytes(mbr)) == "6c586e13"


def test_parse_options() -> None:
    assert parse_options("") == (0, "")
    assert parse_options("ro,noatime,errors=remount-ro") == (
        MS_RDONLY | MS_NOATIME,
        "errors=remount-ro",
    )
    assert parse_options("defaults,rw,nosuid") == (MS_NOSUID, "")


def test_ifreq_is_the_kernels_40_bytes() -> None:
    assert IFREQ.size == 40
    name, flags = IFREQ.unpack(IFREQ.pack(b"lo", 0x49))
    assert name.rstrip(b"\0") == b"lo" and flags == 0x49


def test_link_up_only_when_down() -> None:
    fake = FakeKernel()
    assert link_up(fake) is True  # type: ignore[arg-type]
    assert [line.split()[1:] for line in fake.transcript if "ioctl" in line] == [
        ["ioctl", "socket", "SIOCGIFFLAGS"],
        ["ioctl", "socket", "SIOCSIFFLAGS"],
    ]


def test_timeline_summary_and_json() -> None:
    now = [1.0]
    timeline = Timeline(lambda: now[0])
    with timeline.step("mounts", "mount proc on /proc"):
        now[0] = 1.02
    with timeline.step("modules", "dummy"):
        now[0] = 1.17
    assert timeline.summary(1.2) == (
        "boot 1.200 s: main at 1.000 s, mounts 0.020 s, modules 0.150 s -> app started"
    )
    data = json.loads(timeline.to_json())
    assert data["app_started"] == 1.2 and [s["name"] for s in data["steps"]] == [
        "mount proc on /proc",
        "dummy",
    ]


def test_timeline_records_the_error_of_a_failing_step() -> None:
    timeline = Timeline(lambda: 0.0)
    with pytest.raises(OSError), timeline.step("data", "LABEL=x"):
        raise OSError(errno.EIO, "I/O error")
    assert timeline.steps[0].error.startswith("OSError")


def test_parse_args() -> None:
    assert parse_args([], strict=True) == ("/", None)
    assert parse_args(["--root", "/tmp/r", "--config=/c.json"], strict=True) == (
        "/tmp/r",
        "/c.json",
    )
    # As PID 1, the kernel hands its unknown command-line words to init: ignore them.
    assert parse_args(["single", "--root"], strict=False) == ("/", None)
    with pytest.raises(SystemExit):
        parse_args(["--bogus"], strict=True)


def test_messages_name_errnos_and_places() -> None:
    assert errname(FileNotFoundError(errno.ENOENT, "x")) == "ENOENT (No such file or directory)"
    assert describe(InitError("data partition LABEL=x not found after 1 s")) == (
        "data partition LABEL=x not found after 1 s"
    )
    table: dict[str, int] = {}
    try:
        table["missing"]
    except KeyError as exc:
        assert describe(exc).startswith(
            "KeyError: 'missing' at "
        ) and "test_boot_units" in describe(exc)


def test_steps_into_a_temporary_root(
    tmp_path: Path, host_sys: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Dir and Symlink steps for real (no privileges needed); EEXIST on a second run is fine,
    a failing mount is reported and the loop goes on."""
    from init.kernel import Kernel

    kernel = Kernel()
    steps = (
        Dir("/dev"),
        Dir("/dev/shm", 0o1777),
        Symlink("/proc/self/fd", "/dev/fd"),
        Mount("none", "/nowhere", "no-such-fs", MS_NOSUID),
    )
    old = os.umask(0)
    try:
        for _ in range(2):
            assert (
                run_steps(kernel, str(tmp_path), steps, Timeline(kernel.clock), Log(kernel)) == []
            )
    finally:
        os.umask(old)
    assert (tmp_path / "dev/shm").stat().st_mode & 0o7777 == 0o1777
    assert os.readlink(tmp_path / "dev/fd") == "/proc/self/fd"
    assert capfd.readouterr().out.count("pinit: cannot mount no-such-fs on /nowhere: ") == 2


def test_chardev_step_records_major_minor() -> None:
    fake = FakeKernel()
    run_steps(fake, "/", (CharDev("/dev/null", 1, 3),), Timeline(fake.clock), Log(fake))  # type: ignore[arg-type]
    assert fake.transcript[-1].endswith("mknod /dev/null c 1:3 666")


def test_struct_is_what_the_watchdog_ioctls_take() -> None:
    from init.watchdog import INT, WDIOC_KEEPALIVE, WDIOC_SETTIMEOUT

    assert INT.size == struct.calcsize("i") == 4
    # _IOR('W', 5, int) and _IOWR('W', 6, int) from linux/watchdog.h
    assert WDIOC_KEEPALIVE == (2 << 30) | (4 << 16) | (ord("W") << 8) | 5
    assert WDIOC_SETTIMEOUT == (3 << 30) | (4 << 16) | (ord("W") << 8) | 6


def test_module_resolve_reads_builtin_and_alias_only_when_needed() -> None:
    from init.modules import resolve as modules_resolve

    def resolve(kernel: FakeKernel, folder: str, names: list[str]) -> list[str]:
        return modules_resolve(kernel.read_text, folder, names)

    folder = "/lib/modules/6.1.0-test"
    fake = FakeKernel(
        files={
            f"{folder}/modules.dep": b"kernel/drivers/net/dummy.ko:\n",
            f"{folder}/modules.builtin": b"kernel/fs/ext4/ext4.ko\n",
            f"{folder}/modules.alias": b"alias net-pf-99 dummy\n",
        }
    )
    assert resolve(fake, folder, ["dummy"]) == ["kernel/drivers/net/dummy.ko"]  # type: ignore[arg-type]
    assert not any("modules.builtin" in line for line in fake.transcript)
    assert resolve(fake, folder, ["ext4"]) == []  # type: ignore[arg-type]
    assert not any("modules.alias" in line for line in fake.transcript)
    assert resolve(fake, folder, ["net-pf-99"]) == ["kernel/drivers/net/dummy.ko"]  # type: ignore[arg-type]


# ---- the data partition: a damaged one is found, checked, and never a reboot loop


def damaged_ext4(tmp_path: Path, label: str = "pinit-data") -> bytes:
    """A real 16 MiB ext4 (1 KiB blocks) whose primary superblock is zeroed, as a worn card's."""
    if not shutil.which("mkfs.ext4"):
        pytest.skip("mkfs.ext4 not installed")
    image = tmp_path / "data.img"
    with open(image, "wb") as file:
        file.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-L", label, str(image)], check=True, capture_output=True)
    data = bytearray(image.read_bytes())
    data[1024:2048] = bytes(1024)
    return bytes(data)


def data_kernel(device: bytes, *fsck: Run) -> FakeKernel:
    fake = FakeKernel(
        files={
            "/sys/class/block/vda2/dev": b"254:2\n",
            "/sys/class/block/vda2/size": b"%d\n" % (len(device) // 512),
        }
    )
    fake.devices["/dev/vda2"] = device
    fake.paths.add("/dev/vda2")
    if fsck:
        fake.program("/sbin/e2fsck", *fsck)
    return fake


def test_a_label_is_found_in_a_backup_superblock_when_the_primary_is_damaged(tmp_path) -> None:
    from init.data import BlockDevices

    fake = data_kernel(damaged_ext4(tmp_path))
    assert label_of(fake.devices["/dev/vda2"][:2048]) is None  # what the kernel sees first
    assert BlockDevices(fake, "/").find("LABEL=pinit-data") == "vda2"
    assert BlockDevices(fake, "/").find("LABEL=other") is None


def test_a_damaged_partition_is_preened_then_repaired_then_mounted(tmp_path) -> None:
    from init.config import Data
    from init.data import mount_data

    lines: list[str] = []
    fake = data_kernel(
        damaged_ext4(tmp_path),
        Run(0.5, status=8, output=b"The superblock could not be read\n"),
        Run(
            2.0,
            status=1,
            output=b"e2fsck: Superblock invalid, trying backup "
            b"blocks...\npinit-data: ***** FILE SYSTEM WAS "
            b"MODIFIED *****",
        ),
    )
    data = Data(device="LABEL=pinit-data")
    assert mount_data(fake, "/", data, lines.append, Timeline(fake.clock)) == "/data"
    spawned = [line for line in fake.transcript if " spawn " in line]
    assert [line.split()[2:4] for line in spawned] == [
        ["/sbin/e2fsck", "-p"],
        ["/sbin/e2fsck", "-y"],
    ]
    assert "e2fsck: e2fsck: Superblock invalid, trying backup blocks..." in lines
    assert "LABEL=pinit-data: repaired (e2fsck status 1)" in lines
    assert lines[-1] == "mounted /data from /dev/vda2 (ext4)"


def test_what_e2fsck_cannot_repair_goes_on_without_data_unless_told_to_fail(tmp_path) -> None:
    from init.config import Data
    from init.data import mount_data

    for on_damage in ("continue", "fail"):
        lines: list[str] = []
        fake = data_kernel(damaged_ext4(tmp_path), Run(0.1, status=4), Run(0.1, status=4))
        fake.fail("mount /dev/vda2", errno.EUCLEAN)
        data = Data(device="LABEL=pinit-data", on_damage=on_damage)
        if on_damage == "fail":
            with pytest.raises(
                InitError,
                match=r"cannot mount LABEL=pinit-data .*EUCLEAN.*"
                r"\(e2fsck: damaged\)",
            ):
                mount_data(fake, "/", data, lines.append, Timeline(fake.clock))
        else:
            assert mount_data(fake, "/", data, lines.append, Timeline(fake.clock)) is None
            assert lines[-1].endswith(
                'going on without it (on_damage = "continue"): /data is in RAM this boot'
            )
        assert "LABEL=pinit-data: damaged (e2fsck status 4)" in lines


def test_a_clean_partition_is_checked_once_and_a_missing_e2fsck_is_said(tmp_path) -> None:
    from init.config import Data
    from init.data import mount_data

    lines: list[str] = []
    fake = data_kernel(damaged_ext4(tmp_path), Run(0.1, status=0))
    assert (
        mount_data(fake, "/", Data(device="/dev/vda2"), lines.append, Timeline(fake.clock))
        == "/data"
    )
    assert sum(" spawn " in line for line in fake.transcript) == 1
    assert "/dev/vda2: clean (e2fsck status 0)" in lines
    lines.clear()
    fake = data_kernel(damaged_ext4(tmp_path))  # no /sbin/e2fsck: an image built without it
    assert (
        mount_data(fake, "/", Data(device="/dev/vda2"), lines.append, Timeline(fake.clock))
        == "/data"
    )
    assert lines[1:] == [
        "cannot run /sbin/e2fsck: ENOENT (No such file or directory); mounting unchecked",
        "mounted /data from /dev/vda2 (ext4)",
    ]


# ---- a flashed card's data partition grows to fill the card


def card_mbr(*partitions: tuple[int, int, int]) -> bytes:
    head = bytearray(512)
    for i, (kind, start, count) in enumerate(partitions):
        head[446 + 16 * i + 4] = kind
        head[446 + 16 * i + 8 : 446 + 16 * i + 16] = struct.pack("<II", start, count)
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def test_the_growth_plan_fills_the_free_space_after_the_partition_and_no_more() -> None:
    from init.grow import planned, with_count

    card = card_mbr((0x0C, 8192, 212992), (0x83, 221184, 32768))
    assert planned(card, 2, 221184, 4_000_000) == (32768, 4_000_000 - 221184)
    assert planned(card, 2, 221184, 221184 + 32768 + 100) is None  # < 1 MiB more
    assert planned(card, 2, 4096, 4_000_000) is None  # not where sysfs says
    assert planned(card, 3, 0, 4_000_000) is None  # no such partition
    assert planned(card_mbr((0xEE, 1, 100)), 1, 1, 4_000_000) is None  # GPT: left alone
    assert planned(bytes(512), 2, 221184, 4_000_000) is None  # no MBR at all
    before_third = card_mbr((0x0C, 8192, 212992), (0x83, 221184, 32768), (0x83, 400000, 2048))
    assert planned(before_third, 2, 221184, 4_000_000) == (32768, 400000 - 221184)
    assert planned(card, 2, 221184, 1 << 40) == (32768, (1 << 32) - 221184)  # MBR's limit
    grown = with_count(card, 2, 123456)
    assert planned(grown, 2, 221184, 221184 + 123456) is None
    assert grown[: 446 + 16 + 12] == card[: 446 + 16 + 12] and grown[-2:] == b"\x55\xaa"


def test_a_flashed_card_grows_its_partition_then_its_file_system(tmp_path) -> None:
    from init.config import Data
    from init.data import mount_data

    fake = FakeKernel(
        files={
            "/sys/class/block/vda/dev": b"254:0\n",
            "/sys/class/block/vda/size": b"2000000\n",
            "/sys/class/block/vda2/dev": b"254:2\n",
            "/sys/class/block/vda2/partition": b"2\n",
            "/sys/class/block/vda2/start": b"221184\n",
            "/sys/class/block/vda2/size": b"32768\n",
        }
    )
    fake.links["/sys/class/block/vda2"] = "/sys/devices/virtio/block/vda/vda2"
    fake.devices["/dev/vda"] = card_mbr((0x0C, 8192, 212992), (0x83, 221184, 32768))
    superblock = bytearray(2048)
    superblock[1024 + 0x04 : 1024 + 0x08] = (4096).to_bytes(4, "little")
    superblock[1024 + 0x18 : 1024 + 0x1C] = (2).to_bytes(4, "little")
    superblock[1024 + 0x38 : 1024 + 0x3A] = b"\x53\xef"
    fake.devices["/dev/vda2"] = bytes(superblock)
    fake.paths |= {"/dev/vda", "/dev/vda2"}
    fake.program("/sbin/e2fsck", Run(0.1, status=0))
    lines: list[str] = []
    assert (
        mount_data(fake, "/", Data(device="/dev/vda2"), lines.append, Timeline(fake.clock))
        == "/data"
    )
    assert lines[0] == "growing partition 2 of vda to fill the card: 16 MiB -> 869 MiB"
    new_count = 2000000 - 221184
    assert fake.devices["/dev/vda"][446 + 16 + 12 : 446 + 16 + 16] == struct.pack("<I", new_count)
    steps = [
        line.split(maxsplit=1)[1]
        for line in fake.transcript
        if line.split()[1] in ("pwrite", "fsync", "resize_partition", "spawn", "mount")
    ]
    assert steps[:4] == [
        "pwrite /dev/vda 512 bytes at 0",
        "fsync /dev/vda",
        f"resize_partition /dev/vda 2 {221184 * 512} {new_count * 512}",
        "spawn /sbin/e2fsck -p /dev/vda2 (cwd /, uid 0, gid 0)",
    ]
    # The kernel took the new size (the fake's sysfs does not follow BLKPG by itself): the file
    # system grows once mounted; the next boot finds nothing left to do.
    fake.files["/sys/class/block/vda2/size"] = b"%d\n" % new_count
    from init.grow import grow_filesystem

    grow_filesystem(fake, "/sys/class/block", "/dev/vda2", "vda2", "/data", lines.append)
    assert f"ioctl /data EXT4_IOC_RESIZE_FS {new_count * 512 // 4096}" in [
        line.split(maxsplit=1)[1] for line in fake.transcript
    ]
    assert lines[-1] == "grew the file system on /data to 869 MiB"


def test_the_seed_is_the_builders_ext4_and_is_made_where_a_copied_card_has_room() -> None:
    from builder.formats import sdimage
    from init.grow import decode_seed, encode_seed, free_space, with_entry

    image = sdimage.data_seed("pinit-data")
    seed = encode_seed(image)
    size, blocks = decode_seed(seed)
    rebuilt = b"".join(blocks.get(i, bytes(4096)) for i in range(size // 4096))
    assert rebuilt == image and label_of(rebuilt[:2048]) == "pinit-data"
    assert len(seed) < len(image) // 20  # the non-zero blocks only
    with pytest.raises(ValueError, match="truncated"):
        decode_seed(seed[:-1])

    copied = card_mbr((0x0C, 2048, 500000))  # the seed's way: one FAT partition
    assert free_space(copied, 4_000_000, size) == (2, 507904, 4_000_000 - 507904)
    assert free_space(copied, 507904 + 100, size) is None  # no room
    assert (
        free_space(card_mbr((0x0C, 8192, 212992), (0x83, 221184, 32768)), 4_000_000, size) is None
    )  # a Linux partition: never a second one
    assert free_space(card_mbr((0x83, 2048, 500000)), 4_000_000, size) is None  # no FAT
    made = with_entry(copied, 2, 507904, 1000)
    assert made[: 446 + 16] == copied[: 446 + 16] and made[510:] == b"\x55\xaa"
    assert struct.unpack_from("<B3xII", made, 446 + 16 + 4) == (0x83, 507904, 1000)


def test_a_copied_card_gets_its_data_partition_from_the_seed_before_its_table_names_it() -> None:
    from builder.formats import sdimage
    from init.config import Data
    from init.data import mount_data
    from init.grow import SEED_PATH, encode_seed

    fake = FakeKernel(
        files={
            "/sys/class/block/mmcblk0/dev": b"179:0\n",
            "/sys/class/block/mmcblk0/size": b"1000000\n",
            "/sys/class/block/mmcblk0p1/dev": b"179:1\n",
            "/sys/class/block/mmcblk0p1/partition": b"1\n",
            SEED_PATH: encode_seed(sdimage.data_seed("pinit-data")),
        }
    )
    fake.devices["/dev/mmcblk0"] = card_mbr((0x0C, 2048, 500000))
    fake.paths.add("/dev/mmcblk0")
    lines: list[str] = []
    data = Data(device="LABEL=pinit-data", wait=0.2, create=True)
    with pytest.raises(InitError, match="not found"):  # the fake's kernel adds no partition
        mount_data(fake, "/", data, lines.append, Timeline(fake.clock))
    assert "making the data partition (first boot): partition 2 of mmcblk0, 240 MiB" in lines
    writes = [
        line.split(maxsplit=1)[1]
        for line in fake.transcript
        if line.split()[1] in ("pwrite", "add_partition")
    ]
    assert writes[0] == f"pwrite /dev/mmcblk0 4096 bytes at {507904 * 512}"  # the seed first
    assert writes[-2:] == [
        "pwrite /dev/mmcblk0 512 bytes at 0",  # then the table
        f"add_partition /dev/mmcblk0 2 {507904 * 512} {492096 * 512}",
    ]
    card = fake.devices["/dev/mmcblk0"]
    assert label_of(card[507904 * 512 : 507904 * 512 + 2048]) == "pinit-data"


def test_a_card_without_room_keeps_its_data_in_a_file_on_its_fat_partition() -> None:
    from builder.formats import sdimage
    from init.config import Data
    from init.data import mount_data
    from init.grow import LOOP_CONFIGURE, SEED_PATH, encode_seed, loop_config

    fake = FakeKernel(
        files={
            "/sys/class/block/mmcblk0/dev": b"179:0\n",
            "/sys/class/block/mmcblk0/size": b"600000\n",
            "/sys/class/block/mmcblk0p1/dev": b"179:1\n",
            "/sys/class/block/mmcblk0p1/partition": b"1\n",
            "/sys/class/block/loop0/dev": b"7:0\n",
            "/sys/class/block/loop0/size": b"131072\n",
            SEED_PATH: encode_seed(sdimage.data_seed("pinit-data")),
        }
    )
    fake.devices["/dev/mmcblk0"] = card_mbr((0x0C, 2048, 597952))  # FAT to the card's end
    fake.paths |= {"/dev/mmcblk0", "/dev/loop-control", "/dev/loop0", "/run"}
    fake.program("/sbin/e2fsck", Run(0.1, status=0))
    loaded: list[list[str]] = []
    mounts: list[str] = []
    lines: list[str] = []
    data = Data(device="LABEL=pinit-data", wait=0.2, create=True, file=64 << 20)
    assert (
        mount_data(fake, "/", data, lines.append, Timeline(fake.clock), mounts, loaded.append)
        == "/data"
    )
    assert loaded == [["fs-vfat", "nls_cp437", "nls_ascii", "loop"]]
    assert mounts == ["/run/pinit/boot"]  # unmounted after /data at shutdown
    assert lines[1] == "no card with free space after a FAT partition for the data partition"
    assert "making the data file (first boot): pinit-data.img on mmcblk0p1, 64 MiB" in lines
    assert "the data is in pinit-data.img on mmcblk0p1 (loop0)" in lines
    calls = [line.split(maxsplit=1)[1] for line in fake.transcript]
    made = [c for c in calls if c.startswith(("ftruncate", "rename", "mount", "spawn"))]
    assert made[:3] == [
        "mount /dev/mmcblk0p1 /run/pinit/boot vfat 0",
        f"ftruncate /run/pinit/boot/pinit-data.img.new {64 << 20}",
        "rename /run/pinit/boot/pinit-data.img.new /run/pinit/boot/pinit-data.img",
    ]
    assert made[3:] == [
        "spawn /sbin/e2fsck -p /dev/loop0 (cwd /, uid 0, gid 0)",
        "mount /dev/loop0 /data ext4 0",
    ]
    assert any(c.startswith("ioctl /dev/loop0 0x4c0a") for c in calls), calls
    config = loop_config(5, "/run/pinit/boot/pinit-data.img")
    assert len(config) == 304 and config[:4] == (5).to_bytes(4, "little") and LOOP_CONFIGURE
    assert config[8 + 52 : 8 + 56] == (4).to_bytes(4, "little")  # autoclear


def test_format_only_when_asked_writes_the_seed_over_the_damaged_partition(tmp_path) -> None:
    from builder.formats import sdimage
    from init.config import Data
    from init.data import mount_data
    from init.grow import SEED_PATH, encode_seed

    fake = data_kernel(damaged_ext4(tmp_path), Run(0.1, status=8), Run(0.1, status=8))
    fake.files[SEED_PATH] = encode_seed(sdimage.data_seed("pinit-data"))
    fake.fail("mount /dev/vda2", errno.EINVAL)  # and still after formatting: said, then policy
    lines: list[str] = []
    data = Data(device="LABEL=pinit-data", on_damage="format")
    with pytest.raises(InitError, match=r"formatted, and still: cannot mount it: EINVAL"):
        mount_data(fake, "/", data, lines.append, Timeline(fake.clock))
    assert any(
        line.endswith('formatting it (on_damage = "format"): what it held is lost')
        for line in lines
    )
    written = [line for line in fake.transcript if " pwrite /dev/vda2 " in line]
    assert len(written) == 16 << 20 >> 12  # every block of the seed, zeros included
    assert label_of(bytes(fake.devices["/dev/vda2"][:2048])) == "pinit-data"


def test_init_not_pid1_and_asked_nothing_boots_nothing() -> None:
    """A service's sys.executable is /init: run bare, it must not start a second system."""
    with pytest.raises(SystemExit) as caught:
        main(["/init"])
    assert caught.value.code == NOT_PID1 and "spawn" in NOT_PID1
