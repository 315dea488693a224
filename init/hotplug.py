"""Devices that appear after boot: PID 1 listens to the kernel's uevents in its one event loop.

For each new device it does what coldplug did at boot (load the shipped modules its modalias
names, apply the [[device]] rules); a disk or partition with a label is mounted at
<automount>/<LABEL> (USB sticks), and unmounted when it goes away.
"""

from __future__ import annotations

import errno

from init.coldplug import Loader, fs_modules
from init.config import Device
from init.console import Log, errname
from init.data import label_of
from init.devices import apply_one
from init.errors import Malformed
from init.kernel import Kernel
from init.rootfs import MNT_DETACH, MS_NODEV, MS_NOSUID, prefixed


class UeventError(Malformed):
    """A uevent that is not 'action@devpath' and KEY=value fields, or names a node outside
    /dev."""


def parse(data: bytes) -> dict[str, str]:
    """'add@/devices/...\\0ACTION=add\\0DEVPATH=...\\0' as a dict; {} for udev's own
    re-broadcasts (they start with 'libudev'); UeventError for anything else."""
    if data.startswith(b"libudev"):
        return {}
    head, *fields = data.split(b"\0")
    if b"@" not in head:
        raise UeventError(f"no action@devpath in a {len(data)}-byte uevent")
    event: dict[str, str] = {}
    for field in fields:
        key, sep, value = field.decode("utf-8", "replace").partition("=")
        if sep:
            event[key] = value
    name = event.get("DEVNAME", "")
    if name.startswith("/") or ".." in name.split("/"):
        raise UeventError(f"DEVNAME {name!r} is not a name under /dev")
    return event


def fstype_of(head: bytes) -> str:
    """The file system a stick carries, from its first bytes: ext4 or FAT, else ""."""
    if len(head) >= 1024 + 0x3A and head[1024 + 0x38 : 1024 + 0x3A] == b"\x53\xef":
        return "ext4"
    if head[510:512] == b"\x55\xaa" and (head[0x52:0x57] == b"FAT32" or head[0x36:0x39] == b"FAT"):
        return "vfat"
    return ""


class Hotplug:
    def __init__(
        self,
        kernel: Kernel,
        root: str,
        loader: Loader | None,
        rules: tuple[Device, ...],
        automount: str,
        log: Log,
    ) -> None:
        self._kernel = kernel
        self._root = root
        self._loader = loader
        self._rules = rules
        self._automount = automount
        self._log = log
        self.mounted: dict[str, str] = {}  # DEVNAME -> mount point
        # Uevents coldplug read from the queue at boot: handled first, as if still queued.
        self.backlog: list[bytes] = loader.backlog if loader is not None else []

    def handle(self, event: dict[str, str]) -> None:
        action = event.get("ACTION")
        if action == "add":
            if event.get("MODALIAS") and self._loader is not None:
                self._loader.load([event["MODALIAS"]], "hotplug")
            name = event.get("DEVNAME")
            if name and self._rules:
                kernel_name = event.get("DEVPATH", "").rpartition("/")[2]
                apply_one(
                    self._kernel,
                    self._root,
                    self._rules,
                    event.get("SUBSYSTEM", ""),
                    kernel_name,
                    name,
                    self._log,
                )
            if name and self._automount and event.get("SUBSYSTEM") == "block":
                self._mount(name)
        elif action == "remove" and event.get("DEVNAME") in self.mounted:
            self._unmount(event["DEVNAME"])

    def _mount(self, name: str) -> None:
        device = prefixed(self._root, f"/dev/{name}")
        try:
            head = self._kernel.read_file(device, 2048, 0)
        except OSError:
            return  # EIO/ENOMEDIUM: a card reader without a card, a disk being partitioned
        label, fstype = label_of(head), fstype_of(head)
        if not label or not fstype:
            return  # a whole disk with partitions, or nothing we know: its partitions come next
        if self._loader is not None:
            self._loader.load(fs_modules(fstype), f"{self._automount}/{label}")
        target = f"{self._automount}/{label}"
        try:
            for path in (self._automount, target):
                try:
                    self._kernel.mkdir(prefixed(self._root, path), 0o755)
                except FileExistsError:
                    pass  # EEXIST: mounted before, or the folder exists in the initramfs
            self._kernel.mount(device, prefixed(self._root, target), fstype, MS_NOSUID | MS_NODEV)
        except OSError as exc:
            self._log(f"cannot mount /dev/{name} on {target} ({fstype}): {errname(exc)}")
            return
        self.mounted[name] = target
        self._log(f"mounted {target} from /dev/{name} ({fstype})")

    def _unmount(self, name: str) -> None:
        target = self.mounted.pop(name)
        try:
            # MNT_DETACH: the stick is gone; a service may still have a file open on it.
            self._kernel.umount(prefixed(self._root, target), MNT_DETACH)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not mounted any more
                self._log(f"cannot unmount {target}: {errname(exc)}")
                return
        self._log(f"unmounted {target} (/dev/{name} removed)")
