"""The data partition for real: an MBR disk image on a loop device, found by LABEL= and by
PARTUUID= (no blkid), mounted by the init in its namespace, written by a service, unmounted at
shutdown — and the written file is on the partition afterwards."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from init.config import Config, Data, Service
from init.validate import to_dict
from tests.host.nsinit import NsInit, script

TOOLS = ("sfdisk", "losetup", "partx", "mkfs.ext4", "mount")
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: loop devices, mounts, namespaces"),
    pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS), reason="needs " + ", ".join(TOOLS)),
    pytest.mark.timeout(90),
]


def run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def disk(tmp_path: Path):
    """(partition device, label, PARTUUID): a 16 MiB MBR image with one ext4 partition."""
    signature = random.getrandbits(32) | 1
    label = f"pinit{signature:08x}"[:16]
    image = tmp_path / "disk.img"
    with open(image, "wb") as file:
        file.truncate(16 << 20)
    subprocess.run(
        ["sfdisk", "-q", str(image)],
        check=True,
        text=True,
        input=f"label: dos\nlabel-id: {signature:#010x}\nstart=2048, type=83\n",
    )
    loop = run("losetup", "--find", "--show", str(image))
    try:
        run("partx", "-a", loop)  # the kernel here may not parse MBRs itself; partx tells it
        part = f"{loop}p1"
        run("mkfs.ext4", "-q", "-L", label, part)
        yield part, label, f"{signature:08x}-01"
    finally:
        subprocess.run(["partx", "-d", loop], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)


def read_back(part: str, tmp_path: Path, name: str) -> str:
    """Mount the partition read-only in a private mount namespace and read one file."""
    mnt = tmp_path / "check"
    mnt.mkdir()
    return run(
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f"mount -o ro {part} {mnt} && cat {mnt}/{name}",
    )


def writer(tmp_path: Path, target: Path) -> Service:
    code = (
        f"open({str(target)!r}, 'w').write('kept'); print('written'); import time; time.sleep(3600)"
    )
    path = script(tmp_path, "writer", code)
    return Service("writer", sys.executable, args=(str(path),), env=(("PYTHONUNBUFFERED", "1"),))


@pytest.fixture
def start(tmp_path: Path, host_sys: Path):
    running: list[NsInit] = []

    def start(config: Config) -> NsInit:
        ns = NsInit(tmp_path, to_dict(config), host_sys)
        running.append(ns)
        return ns

    yield start
    for ns in running:
        ns.kill()


@pytest.mark.parametrize("by", ["LABEL", "PARTUUID"])
def test_data_partition_mounted_written_unmounted(by: str, disk, tmp_path: Path, start) -> None:
    part, label, partuuid = disk
    device = f"LABEL={label}" if by == "LABEL" else f"PARTUUID={partuuid}"
    root = tmp_path / "root"
    config = Config(
        data=Data(device=device, mountpoint="/data", fstype="ext4", wait=5.0),
        services=(writer(tmp_path, root / "data" / "hello.txt"),),
    )
    ns = start(config)
    ns.wait_for(f"pinit: mounted /data from {part} (ext4)")
    ns.wait_for("written")
    assert ns.mounts()[str(root / "data")] == "ext4"
    ns.signal(signal.SIGUSR2)
    ns.wait_for("pinit: unmounted /data")
    assert ns.wait() == -signal.SIGINT
    assert read_back(part, tmp_path, "hello.txt") == "kept"


def test_missing_data_partition_is_fatal(tmp_path: Path, start) -> None:
    config = Config(
        failure_delay=0.0,
        data=Data(device="LABEL=no-such-label", wait=0.3),
        services=(Service("never", "/bin/true"),),
    )
    ns = start(config)
    ns.wait_for("pinit: waiting for LABEL=no-such-label")
    ns.wait_for("pinit: FATAL: data partition LABEL=no-such-label not found after 0.3 s")
    ns.wait_for("pinit: rebooting")
    assert ns.wait() == -signal.SIGHUP
    assert not any("starting never" in line for line in ns.lines())


def test_an_optional_data_partition_that_is_missing_is_gone_without(tmp_path: Path, start) -> None:
    config = Config(
        data=Data(device="LABEL=no-such-label", wait=0.3, required=False),
        services=(Service("app", "/bin/sh", ("-c", "echo app-ran; sleep 60")),),
    )
    ns = start(config)
    ns.wait_for(
        "pinit: data partition LABEL=no-such-label not found after 0.3 s; going on "
        "without it (required = false)"
    )
    ns.wait_for("app-ran")
    assert not any("FATAL" in line for line in ns.lines())
    ns.kill()
