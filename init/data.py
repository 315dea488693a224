"""The optional data partition: find its block device, make its node, check it, mount it.

No blkid: the device is found from /sys/class/block/*/dev, and LABEL= / PARTUUID= are read from
the device itself — the ext2/3/4 superblock label (a backup superblock's when the primary is
damaged), the FAT boot sector label, and the MBR disk signature that Raspberry Pi images use for
PARTUUID=xxxxxxxx-NN (GPT partition GUIDs are not read). Drivers probe asynchronously (the SD
card appears some time after boot), so the device is polled for until `Data.wait` seconds have
passed.

An ext2/3/4 partition is checked before it is mounted, as fsck -a does at a PC's boot: Debian's
e2fsck-static (shipped as /sbin/e2fsck with such a [data]) in preen mode, which repairs what is
safe to repair without asking; when that is not enough, a full repair (-y), which also finds
the file system from a backup superblock when the primary is unreadable. What still cannot be
mounted leads to `Data.on_damage`: go on without /data (the default: a worn card must not
become a reboot loop), the failure policy, or, only when the pinit.toml says so, an empty file
system written over it (the image's seed, init/grow.py, then grown to fill the partition).
"""

from __future__ import annotations

import _stat as stat  # not `stat`: one module less to import at boot

from init.coldplug import fs_modules
from init.config import E2FSCK, EXT_TYPES, Data
from init.console import Log, errname
from init.errors import InitError
from init.grow import (
    FAT_MOUNT,
    create_partition,
    data_file,
    fat_partition,
    format_device,
    grow_filesystem,
    grow_partition,
)
from init.kernel import Kernel
from init.rootfs import parse_options, prefixed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from init.timeline import Timeline

POLL = 0.05  # seconds between looks at /sys/class/block while waiting
EXT_MAGIC = b"\x53\xef"  # s_magic 0xEF53, little-endian, at superblock offset 0x38
# Where the first backup superblock is (group 1), by block size: (block number, block size).
BACKUP_SUPERBLOCKS = ((8193, 1024), (16384, 2048), (32768, 4096))
# e2fsck's exit status (e2fsck(8)): bits 1 and 2 mean repaired; 4 and up, not usable.
FSCK_REPAIRED = 1 | 2
FSCK_PROGRESS = 30.0  # seconds between "still checking" lines of a long check


def label_of(head: bytes) -> str | None:
    """The file system label in a device's first 2 KiB (ext2/3/4 or FAT), or None."""
    if ext_label(head[1024:]) is not None:
        return ext_label(head[1024:])
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


def ext_label(superblock: bytes) -> str | None:
    """The label of an ext2/3/4 superblock (1024 bytes from its start), or None."""
    if len(superblock) < 0x88 or superblock[0x38:0x3A] != EXT_MAGIC:
        return None
    return superblock[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")


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
        self.sysfs, self.dev = self._sys, prefixed(root, "/dev")

    def names(self) -> list[str]:
        try:
            return self._kernel.listdir(self._sys)
        except FileNotFoundError:
            return []  # ENOENT: /sys not mounted (its step failed and was reported)

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

    def head(self, name: str, size: int = 2048, offset: int = 0) -> bytes:
        try:
            return self._kernel.read_file(self.node(name), size, offset)
        except OSError:
            return b""  # an empty card reader or a device that is not ready: not a match

    def backup_label(self, name: str) -> str | None:
        """The label in the first backup superblock of an ext2/3/4 file system whose primary
        superblock is unreadable (zeroed or worn): what e2fsck will repair it from."""
        for block, size in BACKUP_SUPERBLOCKS:
            label = ext_label(self.head(name, 1024, block * size))
            if label is not None:
                return label
        return None

    def partition_number(self, name: str) -> int | None:
        try:
            return int(self._kernel.read_text(f"{self._sys}/{name}/partition"))
        except (OSError, ValueError):
            return None  # a whole disk has no "partition" file

    def disks(self) -> list[str]:
        """The whole disks (no "partition" file; not loop or RAM disks), SD cards first."""
        found = [
            name
            for name in self.names()
            if self.partition_number(name) is None and not name.startswith(("loop", "ram", "zram"))
        ]
        return sorted(found, key=lambda name: (not name.startswith("mmcblk"), name))

    def parent(self, name: str) -> str:
        """mmcblk0p2 → mmcblk0: sysfs puts a partition's directory inside its disk's."""
        return self._kernel.realpath(f"{self._sys}/{name}").rsplit("/", 2)[-2]

    def find(self, spec: str) -> str | None:
        """The device name that `spec` (/dev/NAME, LABEL=, PARTUUID=) names, if present now."""
        names = self.names()
        if spec.startswith("/dev/"):
            return spec[5:] if spec[5:] in names else None
        kind, _, want = spec.partition("=")
        unlabelled = []
        for name in names:
            if kind == "LABEL":
                head = self.head(name)
                label = label_of(head)
                if label == want:
                    return name
                if label is None and len(head) == 2048:
                    unlabelled.append(name)
            if kind == "PARTUUID":
                number = self.partition_number(name)
                if number is None:
                    continue
                signature = disk_signature(self.head(self.parent(name), 512))
                if signature and f"{signature}-{number:02x}" == want.lower():
                    return name
        for name in unlabelled:  # a damaged primary superblock: the label of a backup
            if self.backup_label(name) == want:
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


def fsck(kernel: Kernel, device: str, args: list[str], log: Log) -> int | None:
    """Run e2fsck with `args` on `device`; its lines go to the console as `e2fsck: ...`.
    Returns its exit status, None when it cannot be run (said on the console)."""
    argv = [E2FSCK, *args, device]
    try:
        pid, fd = kernel.spawn(argv, {"PATH": "/sbin:/bin"}, "/", 0, 0)
    except OSError as exc:
        log(f"cannot run {E2FSCK}: {errname(exc)}; mounting unchecked")
        return None
    pending = b""
    started = last = kernel.clock()
    try:
        while True:
            if kernel.clock() - last >= FSCK_PROGRESS:  # never silent, however long
                last = kernel.clock()
                log(f"e2fsck still checking {device} ({last - started:.0f} s)")
            if not kernel.select([fd], FSCK_PROGRESS):
                continue
            try:
                chunk = kernel.read(fd, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if line.strip():
                    log("e2fsck: " + line.decode("utf-8", "replace").rstrip())
        if pending.strip():
            log("e2fsck: " + pending.decode("utf-8", "replace").rstrip())
    finally:
        kernel.close(fd)
    _, status = kernel.waitpid(pid, 0)
    return (status >> 8) & 0xFF if status & 0x7F == 0 else 8


def check(kernel: Kernel, device: str, spec: str, log: Log) -> str:
    """Preen, then repair if preening is not enough. Returns "clean", "repaired" or
    "damaged" (e2fsck could not make it usable), after one console line that says which, or
    "unchecked" when e2fsck cannot be run."""
    log(f"checking {spec}{'' if spec == device else f' ({device})'} with e2fsck")
    status = fsck(kernel, device, ["-p"], log)
    if status is not None and status >= 4:
        log(f"e2fsck -p: status {status}: not enough to repair {spec}; repairing with e2fsck -y")
        status = fsck(kernel, device, ["-y"], log)
    if status is None:
        return "unchecked"
    result = "damaged" if status >= 4 else "repaired" if status & FSCK_REPAIRED else "clean"
    log(f"{spec}: {result} (e2fsck status {status})")
    return result


def make_data(
    kernel: Kernel,
    root: str,
    devices: BlockDevices,
    data: Data,
    log: Log,
    mounts: list[str] | None,
    load: Callable[[list[str]], object] | None,
    held: list[int],
) -> str | None:
    """On a card made the seed's way (init/grow.py): its data partition, made in the free
    space after its FAT partition, or else its data file; returns the device, or None."""
    if create_partition(kernel, devices.sysfs, devices.dev, devices.disks(), log):
        return wait_for(kernel, root, data.device, data.wait, log)
    fat = fat_partition(kernel, devices.dev, devices.disks()) if data.file else None
    if fat is None:
        return None
    if load is not None:
        load([*fs_modules("vfat"), "loop"])
    return data_file(
        kernel,
        devices.dev,
        fat,
        devices.node(fat),
        prefixed(root, FAT_MOUNT),
        data.file,
        mounts if mounts is not None else [],
        held,
        log,
    )


def mount_data(
    kernel: Kernel,
    root: str,
    data: Data,
    log: Log,
    timeline: Timeline,
    mounts: list[str] | None = None,
    load: Callable[[list[str]], object] | None = None,
) -> str | None:
    """Find, check and mount the data partition; returns its mount point. InitError if
    impossible and `on_damage` (or `required`, when it never appears) says to fail: an app
    that expects /data must not silently write into the initramfs instead. Otherwise None: the
    boot goes on without it."""
    held: list[int] = []  # a data file's loop device, open until /data is mounted
    try:
        return _mount_data(kernel, root, data, log, timeline, mounts, load, held)
    finally:
        for fd in held:
            kernel.close(fd)


def _mount_data(
    kernel: Kernel,
    root: str,
    data: Data,
    log: Log,
    timeline: Timeline,
    mounts: list[str] | None,
    load: Callable[[list[str]], object] | None,
    held: list[int],
) -> str | None:
    devices = BlockDevices(kernel, root)
    try:
        device = wait_for(kernel, root, data.device, data.wait, log)
    except InitError:
        made = None
        if data.create:
            with timeline.step("data", "create"):
                made = make_data(kernel, root, devices, data, log, mounts, load, held)
        if made is None and data.required:
            raise
        if made is None:
            log(
                f"data partition {data.device} not found after {data.wait:g} s; going on "
                "without it (required = false)"
            )
            return None
        device = made
    shown = device[len(root.rstrip("/")) :]
    name = device.rpartition("/")[2]
    if data.grow and devices.partition_number(name) is not None:
        with timeline.step("data", "grow"):
            grow_partition(kernel, devices.sysfs, devices.dev, name, devices.parent(name), log)
    state = "unchecked"
    if data.check and data.fstype in EXT_TYPES:
        with timeline.step("data", "e2fsck"):
            state = check(kernel, device, data.device, log)
    target = prefixed(root, data.mountpoint)
    try:
        kernel.mkdir(target, 0o755)
    except FileExistsError:
        pass  # EEXIST: the builder put the mount point into the initramfs
    flags, options = parse_options(data.options)
    try:
        kernel.mount(device, target, data.fstype, flags, options)
    except OSError as exc:
        problem = (
            f"cannot mount {data.device} ({shown}) on {data.mountpoint} as "
            f"{data.fstype}: {errname(exc)}"
            + ("" if state == "unchecked" else f" (e2fsck: {state})")
        )
        if data.on_damage == "fail":
            raise InitError(problem) from exc
        if data.on_damage == "format" and data.fstype in EXT_TYPES:
            log(f'{problem}; formatting it (on_damage = "format"): what it held is lost')
            try:
                with timeline.step("data", "format"):
                    if not format_device(kernel, device, log):
                        raise InitError(f"cannot format {data.device} ({shown})") from exc
                kernel.mount(device, target, data.fstype, flags, options)
            except OSError as again:
                raise InitError(
                    f"{data.device} ({shown}) formatted, and still: "
                    f"cannot mount it: {errname(again)}"
                ) from again
        else:
            log(
                f'{problem}; going on without it (on_damage = "continue"): '
                f"{data.mountpoint} is in RAM this boot"
            )
            return None
    log(f"mounted {data.mountpoint} from {shown} ({data.fstype})")
    if data.grow and data.fstype in EXT_TYPES:  # a partition's, or a data file's
        with timeline.step("data", "resize"):
            grow_filesystem(kernel, devices.sysfs, device, name, target, log)
    return data.mountpoint
