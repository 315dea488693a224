"""A/B updates in PID 1: a signed bundle into the other boot slot, tried once, then kept or not.

The card (init/slots.py): autoboot.txt on partition 1 picks slot 2 or 3. A source of the
supervisor's loop:
- every `check_every` seconds it looks in `inbox` for a *.bundle. A bundle is checked whole
  (init/bundle.py: the signature of the image's key, every file's SHA-256) before a byte of the
  other slot is written; one that fails is renamed *.refused, with one line saying why. A good
  one replaces the other slot's files (each written whole and synced, the slot unmounted), is
  deleted, and PID 1 reboots with "0 tryboot": the bootloader boots the other slot once.
- booted so (the firmware's tryboot flag: /proc/device-tree/chosen/bootloader/tryboot, or
  `pinit.tryboot=1` from a harness that plays the firmware), it waits for every service to have
  run `healthy_after` seconds without a restart, then commits: autoboot.txt names this slot.
  Not healthy by `deadline`: a plain reboot, and the bootloader boots the old slot. A hang
  (the watchdog), a panic or a power cut does the same.
A power cut while a slot is written leaves the default slot untouched and the bundle in the
inbox: the next boot writes the slot again.

With `url`, it also fetches a bundle every `fetch_every` seconds (init/fetch.py: the host's name
resolved, an HTTP/1.0 GET conditional on the last answer's Last-Modified) and puts it into the
inbox when its version is new: neither the one kept last nor one that was tried and given up.
The inbox keeps that record: `.version` (the version kept), `.trying` (the version and slot
being tried), `.failed` (the versions given up, one a line).

With `listen`, a bundle can also be pushed into the inbox over HTTP (init/push.py: `invoke
update --to HOST`); the same check decides whether it is written.
"""

from __future__ import annotations

import errno
import posix

from init import http, modules, slots
from init.bundle import BundleError, decode
from init.config import Update
from init.console import Log, errname
from init.data import BlockDevices
from init.rootfs import prefixed

# Type names only: init.fetch and init.push are imported when `url` and `listen` ask for them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from init.fetch import Fetcher
    from init.kernel import Kernel
    from init.push import Push

MOUNT = "/run/pinit/slot"  # where a slot or the switch partition is mounted to be written
CHOSEN = "/proc/device-tree/chosen/bootloader"  # the Pi firmware's boot facts
SUFFIX = ".bundle"
KEPT, TRYING, FAILED, FETCHED = ".version", ".trying", ".failed", ".fetched"  # in the inbox
# The third word of .trying: the tried boot began (PID 1 ran in it); the try was asked again.
STARTED, AGAIN = "started", "again"


def booted_from(kernel: Kernel, root: str, words: dict[str, str]) -> tuple[int | None, bool]:
    """(the boot partition, whether this is a tryboot), from the firmware's device tree or the
    `pinit.boot_partition` / `pinit.tryboot` words of a harness that plays it."""

    def chosen(name: str) -> int | None:
        try:
            return int.from_bytes(kernel.read_file(prefixed(root, f"{CHOSEN}/{name}"))[:4], "big")
        except OSError:
            return None  # ENOENT: not a Pi's firmware (QEMU), or an older one

    partition: int | None
    try:
        partition = int(words["pinit.boot_partition"])
    except (KeyError, ValueError):
        partition = chosen("partition")
    tryboot = words.get("pinit.tryboot", "") == "1" or chosen("tryboot") == 1
    return partition, tryboot


class Updater:
    """The supervisor's source for [update]; `request` asks its loop for a shutdown action,
    `healthy(seconds, now)` says whether every service has run that long, `name_servers()`
    gives the network's name servers (for the host name of `url`)."""

    def __init__(
        self,
        kernel: Kernel,
        root: str,
        config: Update,
        words: dict[str, str],
        log: Log,
        request: Callable[[str], None],
        healthy: Callable[[float, float], bool],
        keepalive: Callable[[], None] = lambda: None,
        name_servers: Callable[[], tuple[bytes, ...]] = lambda: (),
    ) -> None:
        self._kernel, self._root, self._config, self._log = kernel, root, config, log
        self._request, self._healthy = request, healthy
        self._keepalive = keepalive  # the watchdog, petted between the files of a slot
        self.slot, self.trying = booted_from(kernel, root, words)
        now = kernel.clock()
        self._next_look = now
        self._deadline = now + config.deadline if self.trying else None
        self._busy = False  # a shutdown was requested: nothing more to do
        self._inbox = prefixed(root, config.inbox)
        self._fetch: Fetcher | None = None
        if config.url:
            from init.fetch import Fetcher

            self._fetch = Fetcher(
                kernel,
                config.url,
                config.fetch_every,
                log,
                name_servers,
                lambda: self._record(FETCHED),
                self._fetched,
            )
        self._push: Push | None = None
        self._offered = ""  # the version the server offered last, not new
        self._retry = False  # a written slot whose try never began: reboot to try it now
        self._stuck = False  # writing the slot failed: not again until the next boot
        if self.slot in slots.SLOTS and not self.trying:
            self._settle()
        if self.slot not in slots.SLOTS:
            log(f"update: booted from partition {self.slot}, not an A/B slot: updates are off")
        elif self.trying:
            self._started()
            also = (f", a service printed {config.ready!r}" if config.ready else "") + (
                ", the network is up" if config.network else ""
            )
            log(
                f"update: trying slot {self.slot}: kept once every service has run "
                f"{config.healthy_after:g} s{also}, else the old slot boots after "
                f"{config.deadline:g} s"
            )
        if config.listen and self.slot in slots.SLOTS:
            from init.push import Push

            self._push = Push(kernel, config.listen, self._inbox, log, self._pushed)

    def _parts(self) -> list[Fetcher | Push]:
        return [p for p in (self._fetch, self._push) if p is not None]

    def fds(self) -> list[int]:
        return [fd for part in self._parts() for fd in part.fds()]

    def ready(self, fd: int) -> None:
        for part in self._parts():
            part.ready(fd)

    def due(self) -> float | None:
        if self._busy or self.slot not in slots.SLOTS:
            return None
        due = [self._next_look]
        if self._fetch is not None and self._deadline is None:
            due.append(self._fetch.due())
        pushing = self._push.due() if self._push is not None else None
        if pushing is not None:
            due.append(pushing)
        if self._deadline is not None:
            due.append(min(self._deadline, self._kernel.clock() + 1.0))
        return min(due)

    def tick(self, now: float) -> None:
        if self._busy or self.slot not in slots.SLOTS:
            return
        if self._retry:
            self._try()
            return
        if self._push is not None:
            self._push.tick(now)
        if self._deadline is not None:  # a tried slot: keep it, or give it up
            if self._healthy(self._config.healthy_after, now):
                self._commit()
            elif now >= self._deadline:
                self._log(
                    f"update: slot {self.slot} not healthy after {self._config.deadline:g} s: "
                    f"rebooting into slot {slots.other(self.slot)}"
                )
                self._busy = True
                self._request("reboot")
            return  # no new bundle until this one is decided
        if now >= self._next_look:
            self._next_look = now + self._config.check_every
            self._look()
        if self._fetch is not None and not self._busy:
            self._fetch.tick(now)

    # --- what was tried and kept, in the inbox ----------------------------------------------------

    def _record(self, name: str) -> str:
        try:
            return self._kernel.read_text(f"{self._inbox}/{name}").strip()
        except OSError:
            return ""  # ENOENT: nothing recorded

    def _write_record(self, name: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        try:
            if not self._kernel.exists(self._inbox):
                self._kernel.mkdir(self._inbox, 0o755)
            self._kernel.write_file(f"{self._inbox}/{name}", data)
        except OSError as exc:
            self._log(f"update: cannot write {self._inbox}/{name}: {errname(exc)}")

    def _started(self) -> None:
        """This boot is the try: from here on, the old slot booting means the try failed."""
        words = self._record(TRYING).split()
        if len(words) >= 2 and words[1] == str(self.slot) and STARTED not in words:
            self._write_record(TRYING, f"{words[0]} {words[1]} {STARTED}")

    def _settle(self) -> None:
        """Booted normally after a slot was written: the tried slot is this one (kept), or its
        try began and fell back (given up), or it never began: a power cut before the reboot,
        or a kernel that panicked before PID 1. That is tried once more, then given up."""
        words = self._record(TRYING).split()
        if len(words) < 2:
            return
        version, slot, state = words[0], words[1], " ".join(words[2:])
        if slot == str(self.slot):
            self._write_record(KEPT, version)
        elif state == STARTED:
            self._give_up(version, f"version {version} was not kept: slot {self.slot} runs on")
        elif self._bundles():
            self._log(f"update: version {version} was written, not tried: writing it again")
        elif state != AGAIN:
            self._log(
                f"update: version {version} in slot {slot} was written but never tried "
                "(a power cut before the reboot, or a panic before PID 1): trying it once more"
            )
            self._write_record(TRYING, f"{version} {slot} {AGAIN}")
            self._retry = True
            return
        else:
            self._give_up(
                version,
                f"version {version} was not kept: slot {slot} never started its try twice "
                f"(no tryboot flag, or its kernel panics); slot {self.slot} runs on",
            )
        try:
            self._kernel.unlink(f"{self._inbox}/{TRYING}")
        except OSError:
            pass

    def _give_up(self, version: str, line: str) -> None:
        failed = self._record(FAILED).splitlines()
        self._write_record(FAILED, "\n".join([*failed, version]) + "\n")
        self._log(f"update: {line}")

    def _bundles(self) -> list[str]:
        try:
            return sorted(n for n in self._kernel.listdir(self._inbox) if n.endswith(SUFFIX))
        except OSError:
            return []  # ENOENT: no inbox yet (the data partition has none until one is made)

    def _try(self) -> None:
        self._busy = True
        self._tryboot_module()
        self._request("tryboot")

    # --- fetched and pushed bundles ------------------------------------------------------------

    def _pushed(self) -> None:
        self._next_look = self._kernel.clock()  # a pushed bundle is looked at now

    def _fetched(self, data: bytes) -> None:
        try:
            status, headers, body = http.response(data)
        except http.HttpError as exc:
            self._log(f"update: {self._config.url}: {exc}")
            return
        if status == 304:
            return  # not modified since the last fetch
        if status != 200:
            self._log(f"update: {self._config.url}: HTTP status {status}")
            return
        try:
            key = self._kernel.read_file(prefixed(self._root, self._config.key))
            version = decode(body, key).version
        except (OSError, BundleError) as exc:
            self._log(f"update: {self._config.url} refused: {errname(exc)}")
            return
        known = {self._record(KEPT), *self._record(FAILED).splitlines()}
        if version in known:
            if version != self._offered:  # once, for a server that answers every GET whole
                self._log(f"update: {self._config.url} offers version {version}: not new")
            self._offered = version
        else:
            self._write_record(f"fetched{SUFFIX}", body)
            self._log(f"update: fetched version {version} from {self._config.url}")
            self._next_look = self._kernel.clock()
        if headers.get("last-modified"):
            self._write_record(FETCHED, headers["last-modified"])

    # --- committing ------------------------------------------------------------------------------

    def _commit(self) -> None:
        text = slots.autoboot_txt(self.slot or slots.SLOTS[0])
        with self._mounted(slots.SWITCH_LABEL) as folder:
            if folder is None:
                return
            self._switch(f"{folder}/{slots.AUTOBOOT}", text.encode())
        self._deadline = None
        version = self._record(TRYING).partition(" ")[0]
        if version:
            self._write_record(KEPT, version)
        try:
            self._kernel.unlink(f"{self._inbox}/{TRYING}")
        except OSError:
            pass  # ENOENT: a bundle dropped into another inbox, say
        self._log(f"update: slot {self.slot} is healthy and kept: it boots from now on")

    def _switch(self, path: str, data: bytes) -> None:
        """autoboot.txt's new text. The two texts differ in two digits and not in length: they
        go over the old in place, one sector on the card, so a power cut leaves the old text or
        the new, never a file system without the switch (a new file and a rename could)."""
        kernel = self._kernel
        try:
            same = len(kernel.read_file(path)) == len(data)
        except OSError:
            same = False  # ENOENT: written by hand away, say
        if not same:
            kernel.write_file(path, data)
            return
        fd = kernel.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
        try:
            kernel.pwrite(fd, data, 0)
            kernel.fsync(fd)
        finally:
            kernel.close(fd)

    # --- a bundle into the other slot -----------------------------------------------------------

    def _look(self) -> None:
        names = [] if self._stuck else self._bundles()
        if not names:
            return
        path = f"{self._inbox}/{names[0]}"
        try:
            data = self._kernel.read_file(path)
            key = self._kernel.read_file(prefixed(self._root, self._config.key))
            bundle = decode(data, key)
        except (OSError, BundleError) as exc:
            self._log(f"update: {path} refused: {errname(exc)}")
            self._set_aside(path)
            return
        target = slots.other(self.slot or slots.SLOTS[0])
        self._log(f"update: {path}: version {bundle.version}, signature and hashes good")
        try:
            with self._mounted(slots.SLOT_LABELS[target], empty=True) as folder:
                if folder is None:
                    return
                for name, body in bundle.files:
                    parent = folder
                    for part in name.split("/")[:-1]:
                        parent = f"{parent}/{part}"
                        if not self._kernel.exists(parent):
                            self._kernel.mkdir(parent, 0o755)
                    self._kernel.write_file(f"{folder}/{name}", body)
                    self._keepalive()  # writing a slot to a slow card takes a while
        except OSError as exc:  # EIO, ENOSPC: a worn card, a bundle too big for the slot
            self._log(
                f"update: writing slot {target} failed: {errname(exc)}; {path} stays in the "
                "inbox and is written again at the next boot"
            )
            self._stuck = True  # not again this boot: it would fail the same way
            return
        self._write_record(TRYING, f"{bundle.version} {target}")
        self._kernel.unlink(path)
        self._kernel.sync()
        self._log(
            f"update: version {bundle.version} written to slot {target} "
            f"({len(bundle.files)} files): rebooting to try it once"
        )
        self._try()

    def _tryboot_module(self) -> None:
        """Load the module that passes "tryboot" to the firmware on Debian's kernel (shipped
        with [update]). A kernel that has none (Raspberry Pi's passes it itself) goes on."""
        base = f"/lib/modules/{self._kernel.uname_release()}"
        try:
            order = modules.resolve(
                self._kernel.read_text, prefixed(self._root, base), [slots.TRYBOOT_MODULE]
            )
        except (OSError, modules.ModuleError):
            return
        for path in order:
            try:
                self._kernel.finit_module(prefixed(self._root, f"{base}/{path}"), "")
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    self._log(
                        f"update: cannot load {slots.TRYBOOT_MODULE}: {errname(exc)}: the "
                        "firmware may not try the new slot (the old one then boots again)"
                    )

    def _set_aside(self, path: str) -> None:
        try:
            self._kernel.rename(path, path[: -len(SUFFIX)] + ".refused")
        except OSError as exc:
            self._log(f"update: cannot set {path} aside: {errname(exc)}; deleting it")
            try:
                self._kernel.unlink(path)
            except OSError:
                pass

    def _mounted(self, label: str, empty: bool = False) -> _Mounted:
        return _Mounted(self._kernel, self._root, label, self._log, empty)


class _Mounted:
    """The FAT partition labelled `label`, mounted at MOUNT for a `with` block (None: not
    found or not mountable, said on the console); synced and unmounted after it. `empty`:
    emptied first (slots.fat32_emptied), not its files deleted one by one: a slot a power cut
    left half-written is never read, so its damage cannot turn the mount read-only."""

    def __init__(self, kernel: Kernel, root: str, label: str, log: Log, empty: bool) -> None:
        self._kernel, self._root, self._label, self._log = kernel, root, label, log
        self._target = prefixed(root, MOUNT)
        self._mounted = False
        self._empty = empty

    def __enter__(self) -> str | None:
        devices = BlockDevices(self._kernel, self._root)
        name = devices.find(f"LABEL={self._label}")
        if name is None:
            self._log(f"update: no partition labelled {self._label}: not an A/B card")
            return None
        try:
            if self._empty:
                self._emptied(devices.node(name))
            if not self._kernel.exists(self._target):
                self._kernel.mkdir(self._target, 0o755)
            self._kernel.mount(devices.node(name), self._target, "vfat", 0, "")
        except (OSError, slots.NotFat32) as exc:
            self._log(f"update: cannot mount {self._label}: {errname(exc)}")
            return None
        self._mounted = True
        return self._target

    def _emptied(self, node: str) -> None:
        writes = slots.fat32_emptied(self._kernel.read_file(node, 512))
        fd = self._kernel.open(node, posix.O_RDWR | posix.O_CLOEXEC)
        try:
            for offset, data in writes:
                self._kernel.pwrite(fd, data, offset)
            self._kernel.fsync(fd)
        finally:
            self._kernel.close(fd)

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if self._mounted:
            self._kernel.sync()
            self._kernel.umount(self._target)
