"""The optional data partition: find its block device, make its node, mount it.

No blkid: the device is found from /sys/class/block/*/dev, and LABEL= / PARTUUID= are read from
the device itself — the ext2/3/4 superblock label, the FAT boot sector label, and the MBR disk
signature that Raspberry Pi images use for PARTUUID=xxxxxxxx-NN (GPT partition GUIDs are not
read). Drivers probe asynchronously (the SD card appears some time after boot), so the device is
polled for until `Data.wait` seconds have passed.
"""

from __future__ import annotations

import _stat as stat  # not `stat`: one module less to import at boot

from init.config import Data
from init.console import Log, errname
from init.errors import InitError
from init.kernel import Kernel
from init.rootfs import parse_options, prefixed

POLL = 0.05                  # seconds between looks at /sys/class/block while waiting
EXT_MAGIC = b"\x53\xef"      # s_magic 0xEF53, little-endian, at superblock offset 0x38


def label_of(head: bytes) -> str | None:
    """The file system label in a device's first 2 KiB (ext2/3/4 or FAT), or None."""
    if len(head) >= 1024 + 0x88 and head[1024 + 0x38:1024 + 0x3A] == EXT_MAGIC:
        return head[1024 + 0x78:1024 + 0x88].split(b"\0", 1)[0].decode("utf-8", "replace")
    if len(head) >= 512 and head[510:512] == b"\x55\xaa":
        # FAT32 keeps BS_VolLab at 0x47 ("FAT32   " at 0x52); FAT12/16 at 0x2B ("FAT1x" at 0x36).
        if head[0x52:0x57] == b"FAT32":
            raw = head[0x47:0x52]
        elif head[0x36:0x39] == b"FAT":
            raw = head[0x2B:0x36]
        else:
            return None
        label = raw.decode("latin-1").rstrip(" \0")
        return None if label in ("", "NO NAME") else label
    return None


def disk_signature(mbr: bytes) -> str | None:
    """The MBR disk signature (offset 440) as the 8 hex digits of PARTUUID=xxxxxxxx-NN."""
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        return None
    return f"{int.from_bytes(mbr[440:444], 'little'):08x}"


class BlockDevices:
    """A view of /sys/class/block and /dev under `root`, through the kernel seam."""

    def __init__(self, kernel: Kernel, root: str) -> None:
        self._kernel = kernel
        self._root = root
        self._sys = prefixed(root, "/sys/class/block")

    def names(self) -> list[str]:
        try:
            return self._kernel.listdir(self._sys)
        except FileNotFoundError:
            return []   # ENOENT: /sys not mounted (its step failed and was reported)

    def numbers(self, name: str) -> tuple[int, int]:
        major, minor = self._kernel.read_text(f"{self._sys}/{name}/dev").strip().split(":")
        return int(major), int(minor)

    def node(self, name: str) -> str:
        """The /dev path of `name` under root, made if missing (no devtmpfs, or not yet)."""
        path = prefixed(self._root, "/dev/" + name)
        if not self._kernel.exists(path):
            major, minor = self.numbers(name)
            try:
                self._kernel.mknod(path, stat.S_IFBLK | 0o600, major, minor)
            except FileExistsError:
                pass  # EEXIST: devtmpfs made it between our look and our mknod
        return path

    def head(self, name: str, size: int = 2048) -> bytes:
        try:
            return self._kernel.read_file(self.node(name), size, 0)
        except OSError:
            return b""   # an empty card reader or a device that is not ready: not a match

    def partition_number(self, name: str) -> int | None:
        try:
            return int(self._kernel.read_text(f"{self._sys}/{name}/partition"))
        except (OSError, ValueError):
            return None  # a whole disk has no "partition" file

    def parent(self, name: str) -> str:
        """mmcblk0p2 → mmcblk0: sysfs puts a partition's directory inside its disk's."""
        return self._kernel.realpath(f"{self._sys}/{name}").rsplit("/", 2)[-2]

    def find(self, spec: str) -> str | None:
        """The device name that `spec` (/dev/NAME, LABEL=, PARTUUID=) names, if present now."""
        names = self.names()
        if spec.startswith("/dev/"):
            return spec[5:] if spec[5:] in names else None
        kind, _, want = spec.partition("=")
        for name in names:
            if kind == "LABEL" and label_of(self.head(name)) == want:
                return name
            if kind == "PARTUUID":
                number = self.partition_number(name)
                if number is None:
                    continue
                signature = disk_signature(self.head(self.parent(name), 512))
                if signature and f"{signature}-{number:02x}" == want.lower():
                    return name
        return None


def wait_for(kernel: Kernel, root: str, spec: str, wait: float, log: Log) -> str:
    """Poll until `spec` shows up; returns its /dev path under root. InitError on timeout."""
    devices = BlockDevices(kernel, root)
    deadline = kernel.clock() + wait
    waiting = False
    while True:
        name = devices.find(spec)
        if name is not None:
            return devices.node(name)
        if kernel.clock() >= deadline:
            raise InitError(f"data partition {spec} not found after {wait:g} s")
        if not waiting:
            log(f"waiting for {spec}")
            waiting = True
        kernel.sleep(POLL)


def mount_data(kernel: Kernel, root: str, data: Data, log: Log) -> str | None:
    """Find and mount the data partition; returns its mount point. InitError if impossible:
    an app that expects /data must not silently write into the initramfs instead. A partition
    that is not `required` and never shows up is None: the boot goes on without it."""
    try:
        device = wait_for(kernel, root, data.device, data.wait, log)
    except InitError:
        if data.required:
            raise
        log(f"data partition {data.device} not found after {data.wait:g} s; going on without "
            "it (required = false)")
        return None
    target = prefixed(root, data.mountpoint)
    try:
        kernel.mkdir(target, 0o755)
    except FileExistsError:
        pass  # EEXIST: the builder put the mount point into the initramfs
    flags, options = parse_options(data.options)
    try:
        kernel.mount(device, target, data.fstype, flags, options)
    except OSError as exc:
        raise InitError(f"cannot mount {data.device} ({device[len(root.rstrip('/')):]}) on "
                        f"{data.mountpoint} as {data.fstype}: {errname(exc)}") from exc
    log(f"mounted {data.mountpoint} from {device[len(root.rstrip('/')):]} ({data.fstype})")
    return data.mountpoint
