"""Modules for the hardware that is there: what mdev -s and udev's coldplug do.

Every device the kernel knows has a modalias (/sys/bus/*/devices/*/modalias); the builder
shipped the modules of `[kernel] available` (and those a data partition implies) with their
modules.alias. Coldplug loads every shipped module whose alias matches a device, then looks
again, because a bus driver reveals more devices (virtio_mmio, then virtio_blk), until nothing
new appears: in the uevent socket's queue, opened before the first scan (what the loads added,
as udev learns it), or without one by scanning every bus again. `modprobe` loads names and
aliases (fs-ext4) the same way, for the data partition.
"""

from __future__ import annotations

import errno

from init import modules
from init.console import Log, errname
from init.errors import ModuleError
from init.kernel import Kernel
from init.rootfs import prefixed
from init.timeline import Timeline

ROUNDS = 8  # a bus reveals its devices at once: a few rounds settle any real tree
MODALIAS_MAX = 4096  # sysfs shows an attribute in one page
UEVENT_MAX = 8192  # the kernel's uevent buffer (UEVENT_BUFFER_SIZE 2048) with room
# What a mount of a file system needs loaded besides its own module: what it asks for at mount
# time (ext4's modinfo "softdep: pre: crc32c"; FAT's default codepage and iocharset), which
# modules.dep does not list. The builder ships them, PID 1 loads them before mounting.
MOUNT_NEEDS = {"ext4": ("crc32c",), "vfat": ("nls_cp437", "nls_ascii")}


def fs_modules(fstype: str) -> list[str]:
    """Names or aliases to load before mounting `fstype`."""
    return [f"fs-{fstype}", *MOUNT_NEEDS.get(fstype, ())]


class Loader:
    """The shipped modules of this kernel and what has been loaded from them."""

    def __init__(self, kernel: Kernel, root: str, log: Log, timeline: Timeline) -> None:
        self._kernel = kernel
        self._log = log
        self._timeline = timeline
        self.folder = prefixed(root, f"/lib/modules/{kernel.uname_release()}")
        self._root = root
        self.loaded: set[str] = set()
        self.backlog: list[bytes] = []  # uevents coldplug read, for the hotplug handler
        self._index: tuple[dict[str, tuple[str, ...]], tuple[tuple[str, str], ...]] | None = None

    def _read(self) -> tuple[dict[str, tuple[str, ...]], tuple[tuple[str, str], ...]]:
        # Not modules.builtin (hundreds of names): a built-in module needs no loading, and an
        # alias or name that only a built-in one claims is skipped here like an unknown one.
        if self._index is None:
            read = self._kernel.read_text
            try:
                aliases = read(f"{self.folder}/modules.alias")
            except FileNotFoundError:
                aliases = ""  # ENOENT: no alias shipped
            self._index = (
                modules.parse_dep(read(f"{self.folder}/modules.dep")),
                modules.parse_alias(aliases),
            )
        return self._index

    def load(self, names: list[str], why: str) -> int:
        """Load the shipped modules `names` (names or aliases) stand for; unknown ones are
        skipped. Returns how many modules were loaded now."""
        try:
            with self._timeline.step("coldplug", "match"):
                dep, alias = self._read()
                paths = modules.closure(names, dep, alias, unknown_ok=True)
        except (OSError, ModuleError) as exc:
            self._log(f"{why}: cannot read the shipped modules: {errname(exc)}")
            return 0
        count = 0
        for path in paths:
            name = modules.name_of(path)
            if name in self.loaded:
                continue
            self.loaded.add(name)
            with self._timeline.step("coldplug", name):
                try:
                    self._kernel.finit_module(f"{self.folder}/{path}", "")
                except OSError as exc:
                    if exc.errno != errno.EEXIST:  # EEXIST: loaded already (built in, listed)
                        self._log(f"cannot load module {name} ({why}): {errname(exc)}")
                    continue
            self._log(f"loaded module {name} ({why})")
            count += 1
        return count

    def modaliases(self, seen: set[str]) -> list[str]:
        """The modalias of every device on every bus that is not in `seen` (bus/device names,
        to which the new ones are added): a later round reads only what appeared since."""
        kernel, bus_root = self._kernel, prefixed(self._root, "/sys/bus")
        found: list[str] = []
        try:
            buses = kernel.listdir(bus_root)
        except OSError:
            return found  # ENOENT: no sysfs (a host test without one)
        for bus in buses:
            try:
                devices = kernel.listdir(f"{bus_root}/{bus}/devices")
            except OSError:
                continue  # ENOENT: a bus without a devices folder
            for device in devices:
                key = f"{bus}/{device}"
                if key in seen:
                    continue
                seen.add(key)
                try:  # one read: a modalias is far shorter than a page
                    text = kernel.read_file(
                        f"{bus_root}/{bus}/devices/{device}/modalias", MODALIAS_MAX
                    ).strip()
                except OSError:
                    continue  # ENOENT: this device has no modalias
                if text:
                    found.append(text.decode("utf-8", "replace"))
        return list(dict.fromkeys(found))  # 32 virtio-mmio transports: one alias

    def added(self, events: int, seen: set[str]) -> list[str]:
        """The modalias of every device added since the uevent socket `events` was opened: its
        queue, drained; each datagram is kept in `backlog` for the hotplug handler. If the
        queue overflowed (ENOBUFS), the buses are scanned again for what `seen` lacks."""
        found: list[str] = []
        while True:
            try:
                data = self._kernel.read(events, UEVENT_MAX)
            except BlockingIOError:
                break  # EAGAIN: drained
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    self._log(f"coldplug: device events: {errname(exc)}")
                    break
                found += self.modaliases(seen)  # ENOBUFS: some were lost, sysfs has them all
                continue
            if not data:
                break
            self.backlog.append(data)
            fields = data.split(b"\0")
            if b"ACTION=add" in fields:
                found += (f[9:].decode("utf-8", "replace") for f in fields if f[:9] == b"MODALIAS=")
        return list(dict.fromkeys(found))

    def coldplug(self, events: int = -1) -> None:
        """Load the modules of every device there, round after round until nothing new appears.
        `events`: the uevent socket, opened before the first round, or -1 to scan every bus in
        each round."""
        seen: set[str] = set()
        for round_ in range(ROUNDS):
            with self._timeline.step("coldplug", "scan"):
                if round_ and events >= 0:
                    fresh = self.added(events, seen)
                else:
                    fresh = self.modaliases(seen)
            if not fresh or not self.load(fresh, "coldplug"):
                return
