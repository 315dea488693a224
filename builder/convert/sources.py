"""Read the input of `invoke image --from PATH` (never modified): what it is and what it holds.

`detect` tells the three kinds apart (a classic boot folder, a card image whose FAT partition 1
holds one, a Raspberry Pi OS card) and reads its config.txt and cmdline.txt. `from_initramfs`
reads a folder's or card's old initramfs: its /init translated (initscript.translate), the
programs and modules that script runs, and the files carried over. `from_rootfs` copies a
Raspberry Pi OS card's /lib/modules out of its root partition. Both fill one Parts, which
rebuild.py turns into a BuildConfig and a Platform.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from builder import kmod
from builder.convert import initscript, mdev
from builder.formats import bootfs, compress, cpio, sdimage
from builder.formats.elf import debian_arch, inspect_elf, is_elf
from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.run import run, step
from init import frozen
from init.config import Data, Device, Module, Network, Service, Time
from init.modules import SUFFIXES, name_of, normalize

FOLDER, CARD, RPIOS = "boot folder", "card image", "Raspberry Pi OS card image"
BOARD = "pi4"  # the config.txt [section] read for kernel= and initramfs (QEMU's virt is one too)
HINT = (
    "give a Pi boot folder (config.txt, cmdline.txt, kernel, initramfs with a shell /init) "
    "or a card image whose partition 1 is that folder or a Raspberry Pi OS boot partition"
)
BANNER = re.compile(rb"Linux version (\d[^\s]*) \(")


@dataclass(frozen=True)
class Source:
    path: Path
    kind: str
    boot: Path  # the boot files: the folder itself, or copied out of the card
    files: dict[str, str]  # lower-case relative name -> relative name, every file
    config_txt: str
    cmdline: tuple[str, ...]
    kernel: str  # relative names in `boot`
    initramfs: str
    root_partition: int = 0  # RPIOS: the partition holding /lib/modules
    kernel_arch: str = "arm64"  # kernel_arch() of `kernel`: "arm" for a 32-bit zImage


@dataclass
class Parts:
    """What the conversion found; rebuild.py turns it into one BuildConfig and one Platform."""

    modules_root: Path  # a tree holding lib/modules/<release>
    release: str = ""
    modules: list[Module] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    host_exec: dict[str, Path] = field(default_factory=dict)
    data: Data | None = None
    hostname: str = ""
    network: tuple[Network, ...] = ()  # [network] and [time] from the network commands
    time: Time = field(default_factory=Time)
    devices: list[Device] = field(default_factory=list)  # from the old /etc/mdev.conf
    extras: list[cpio.Entry] = field(default_factory=list)  # old initramfs, mknod, mkdir
    sysroot: Path | None = None  # where the script's programs find their libraries
    compression: str = "gzip"
    nothing_to_run: str = ""  # why no service came from /init, when it says more than that
    userland: str = ""  # the Debian architecture of the old busybox: arm64, armhf, armel
    report: list[str] = field(default_factory=list)


def files_of(root: Path) -> dict[str, str]:
    """Every file under `root`, by lower-case name: the firmware's FAT ignores case."""
    names = (p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file())
    return {name.lower(): name for name in names}


def _root_partition(words: list[str]) -> int:
    """The partition number in root=PARTUUID=xxxxxxxx-02 or root=/dev/mmcblk0p2; 2 otherwise."""
    for word in words:
        found = re.fullmatch(
            r"root=(?:PARTUUID=[0-9a-fA-F]+-([0-9a-fA-F]{2})|/dev/\S*?(\d+))", word
        )
        if found:
            return int(found.group(1), 16) if found.group(1) else int(found.group(2))
    return 2


def detect(source: Path, work: Path) -> Source:
    """What `source` is; its boot files copied into `work` when it is a card image."""
    if not source.exists():
        raise BuildError(f"{source}: no such boot folder or card image", HINT)
    if source.is_dir():
        kind, boot = FOLDER, source
        try:
            files = files_of(boot)
        except OSError as exc:
            raise BuildError(f"{source}: cannot read the folder: {exc.strerror}") from exc
    else:
        try:
            sdimage.read_partitions(source)
            kind, boot = CARD, work / "boot"
            with step(f"copying the boot files out of {source}"):
                for name in (n for n in sdimage.fat_list(source, 1) if not n.endswith("/")):
                    (boot / name).parent.mkdir(parents=True, exist_ok=True)
                    (boot / name).write_bytes(sdimage.fat_read(source, 1, name))
        except BuildError as exc:
            detail = str(exc).removeprefix(f"{source}: ")
            raise BuildError(
                f"{source}: not a boot folder or a card image with a FAT partition 1: {detail}",
                exc.hint or HINT,
            ) from exc
        files = files_of(boot)
    if "config.txt" not in files:
        raise BuildError(f"{source}: no config.txt, so not a Raspberry Pi boot {kind}", HINT)
    text = (boot / files["config.txt"]).read_text(errors="replace")
    settings = bootfs.effective(text, BOARD)

    def named(key: str, default: str, what: str) -> str:
        name = settings.get(key, default).lstrip("/")
        if name.lower() not in files:
            raise BuildError(
                f"{source}: config.txt names {what} {name!r}, which is not there"
                if key in settings
                else f"{source}: no {what} ({default})",
                HINT,
            )
        return files[name.lower()]

    default = "kernel8.img"
    if "kernel" not in settings and default not in files:
        # A 32-bit card: what the firmware loads without arm_64bit=1, the Pi 2's first.
        default = next((n for n in THIRTY_TWO_BIT_KERNELS if n in files), default)
    kernel = named("kernel", default, "kernel")
    # What the firmware loads as kernel7.img or kernel.img it starts in 32-bit mode.
    arch = "arm" if default != "kernel8.img" else kernel_arch((boot / kernel).read_bytes())
    cmdline_name = named("cmdline", "cmdline.txt", "kernel command line")
    lines = (boot / cmdline_name).read_text(errors="replace").splitlines()
    words = lines[0].split() if lines else []  # the firmware reads only the first line
    if any(w.startswith("root=") and not w.startswith("root=/dev/ram") for w in words):
        if kind == FOLDER:
            raise BuildError(
                f"{source}: cmdline.txt boots a root file system on another "
                "partition (root=), whose /lib/modules this folder lacks",
                "convert the whole card image instead",
            )
        # An initramfs beside root= only prepares that root (and is left out): kept by name
        # so that the refusal can say so.
        ramfs = settings.get("initramfs") or settings.get("ramfsfile")
        ramfs = files.get(ramfs.lstrip("/").lower(), "") if ramfs else ""
        return Source(
            source,
            RPIOS,
            boot,
            files,
            text,
            tuple(words),
            kernel,
            ramfs,
            _root_partition(words),
            arch or "arm64",
        )
    initramfs = settings.get("initramfs") or settings.get("ramfsfile")
    if not initramfs:
        raise BuildError(
            f"{source}: config.txt names no initramfs and cmdline.txt no root=: "
            "no shell init to replace",
            HINT,
        )
    return Source(
        source,
        kind,
        boot,
        files,
        text,
        tuple(words),
        kernel,
        named("initramfs" if "initramfs" in settings else "ramfsfile", "", "initramfs"),
        kernel_arch=arch or "arm64",
    )


# The kernels the firmware loads without arm_64bit=1 (and no kernel8.img), by the CPU: the Pi 2's
# ARMv7 (also a Pi 3's in 32-bit mode), the ARMv6 Pi Zero, Zero W and 1, the Pi 4's ARMv7 with
# LPAE. The first one a card has is converted.
THIRTY_TWO_BIT_KERNELS = ("kernel7.img", "kernel.img", "kernel7l.img")
ZIMAGE_MAGIC = 0x016F2818  # a 32-bit ARM zImage's, at byte 0x24 (little-endian)
ARM64_MAGIC = b"ARM\x64"  # an arm64 Image's, at byte 0x38


def kernel_arch(data: bytes) -> str:
    """ "arm" for a 32-bit ARM zImage, "arm64" for an arm64 Image (plain or compressed as the
    Pi's kernel8.img is), "" when neither header is found."""
    if len(data) >= 0x28 and int.from_bytes(data[0x24:0x28], "little") == ZIMAGE_MAGIC:
        return "arm"
    if data[0x38:0x3C] == ARM64_MAGIC:
        return "arm64"
    if compress.detect(data[:6]):
        try:
            return kernel_arch(compress.decompress_stream(data)[0][:0x40])
        except BuildError:
            return ""
    return ""


def kernel_release(kernel: Path) -> str:
    """The release in the kernel image's "Linux version X (" banner, or "" if not found."""
    data = kernel.read_bytes()
    found = BANNER.search(data)
    if found is None and compress.detect(data[:6]):
        try:
            found = BANNER.search(compress.decompress_stream(data)[0])
        except BuildError:
            return ""
    return found.group(1).decode() if found else ""


# ---- The old initramfs: a dict of entries, paths looked up through its symlinks.


def lookup(tree: dict[str, cpio.Entry], path: str) -> str:
    """`path` with every symlink in the old initramfs followed (at most 40, as the kernel)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        entry = tree.get("/".join([*done, part]))
        if isinstance(entry, cpio.Symlink) and hops < 40:
            hops += 1
            parts = [p for p in entry.target.split("/") if p not in ("", ".")] + parts
            done = [] if entry.target.startswith("/") else done
            continue
        done.append(part)
    return "/".join(done)


def _extract(tree: dict[str, cpio.Entry], dest: Path) -> None:
    """Files, directories and symlinks (made relative, so they stay inside `dest`)."""
    root = dest.resolve()
    for path, entry in sorted(tree.items()):
        target = dest / path
        # Checked before anything is made: a symlink in the archive may point anywhere here.
        if not target.parent.resolve().is_relative_to(root):
            raise BuildError(
                f"initramfs entry /{path}: leads out of the archive through a symlink",
                "the old initramfs is damaged or crafted",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(entry, cpio.Dir):
            target.mkdir(parents=True, exist_ok=True)
        elif isinstance(entry, cpio.File):
            target.write_bytes(entry.data)
            os.chmod(target, entry.mode | 0o600)
        elif isinstance(entry, cpio.Symlink):
            link = entry.target
            if link.startswith("/"):
                link = posixpath.relpath(link, "/" + posixpath.dirname(path))
            os.symlink(link, target)


def _programs(
    script: initscript.Script,
    tree: dict[str, cpio.Entry],
    busybox: set[bytes],
    parts: Parts,
    old: Path,
) -> initscript.Script:
    names: set[str] = set()
    for program in script.programs:
        if "/" in program.path:
            found = lookup(tree, posixpath.join(program.cwd, program.path))
        else:
            found = next(
                (
                    lookup(tree, f"{d}/{program.path}")
                    for d in script.path
                    if isinstance(tree.get(lookup(tree, f"{d}/{program.path}")), cpio.File)
                ),
                "",
            )
        entry = tree.get(found)
        why = (
            "not in the old initramfs"
            if not isinstance(entry, cpio.File)
            else "a busybox applet, and the new initramfs has no busybox"
            if entry.data in busybox
            else "a script, and the new initramfs has no shell"
            if entry.data[:2] == b"#!"
            else "not an ELF program"
            if entry.data[:4] != b"\x7fELF"
            else ""
        )
        if why:
            script = initscript.demote(script, program.line, program.path, f"{program.path}: {why}")
            continue
        name = re.sub(r"[^\w.-]", "_", posixpath.basename(found)).lstrip(".-") or "app"
        while name in names:
            name += "_"
        names.add(name)
        service = Service(
            name=name,
            exec="/" + found,
            args=program.args,
            env=program.env,
            cwd=program.cwd,
            wait_for=program.wait_for,
        )
        if program.restart:
            service = frozen.replace(service, restart=program.restart)
        if program.backoff:
            # The loop's fixed pause: every restart waits just that long.
            service = frozen.replace(
                service, backoff_start=program.backoff, backoff_max=program.backoff
            )
        parts.services.append(service)
        parts.host_exec[name] = old / found
    return script


def _modules(
    script: initscript.Script, tree: dict[str, cpio.Entry], parts: Parts, old: Path, src_name: str
) -> initscript.Script:
    """The modules the script loads, from the old initramfs, in a tree kmod.resolve reads."""
    info: dict[str, tuple[str, str, list[str]]] = {}  # old path -> (name, vermagic, depends)
    aliases: list[tuple[str, str]] = []  # for coldplug: a [network]'s driver, by its device
    for path, entry in tree.items():
        if isinstance(entry, cpio.File) and path.endswith(SUFFIXES):
            try:
                found = kmod.modinfo(kmod.read_module(old / path), path)
            except BuildError as exc:
                parts.report.append(f"left out /{path}: {exc}")
                continue
            pairs = dict(found)
            info[path] = (
                pairs.get("name", name_of(path)).replace("-", "_"),
                pairs.get("vermagic", ""),
                [d for d in pairs.get("depends", "").replace("-", "_").split(",") if d],
            )
            aliases += [(value, info[path][0]) for key, value in found if key == "alias"]
    by_name = {name: path for path, (name, _, _) in info.items()}
    wanted: dict[str, str] = {}
    for load in script.modules:
        path = lookup(tree, load.path) if load.path else by_name.get(normalize(load.name), "")
        if path not in info:
            script = initscript.demote(
                script,
                load.line,
                load.path or load.name,
                f"no {load.path or load.name + '.ko'} "
                "in the old initramfs (built into the kernel?)",
            )
            continue
        wanted[info[path][0]] = load.params
    magic = Counter(info[by_name[n]][1].split(" ")[0] for n in wanted)
    if magic:
        release = magic.most_common(1)[0][0]
        if parts.release and release != parts.release:
            raise BuildError(
                f"{src_name}: the modules /init loads are built for kernel "
                f"{release}, but the kernel is {parts.release}",
                "modules load only into the kernel release they were built for",
            )
        parts.release = release
    folder = parts.modules_root / "lib" / "modules" / parts.release
    rel = {}
    for path in info:
        inner = re.fullmatch(r"lib/modules/[^/]+/(.+)", path)
        rel[path] = inner.group(1) if inner else f"extra/{posixpath.basename(path)}"
        (folder / rel[path]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(old / path, folder / rel[path])
    lines = []
    for path, (name, _, depends) in info.items():
        for missing in (d for d in depends if d not in by_name):
            parts.report.append(f"module {name} needs {missing}, which the old initramfs lacks")
        lines.append(
            f"{rel[path]}:" + "".join(f" {rel[by_name[d]]}" for d in depends if d in by_name)
        )
    if info:
        write_atomic(folder / "modules.dep", "".join(f"{ln}\n" for ln in sorted(lines)).encode())
        write_atomic(folder / "modules.alias", kmod.alias_text(aliases).encode())
    parts.modules = [Module(name, params) for name, params in wanted.items()]
    return script


def from_initramfs(src: Source, work: Path, parts: Parts, configured: bool) -> None:
    """Kinds FOLDER and CARD: translate /init and carry what it runs out of the old initramfs."""
    data = (src.boot / src.initramfs).read_bytes()
    method = "none" if data[:5] == b"07070" else compress.detect(data[:6]) or "gzip"
    parts.compression = method if method in compress.METHODS else "gzip"
    tree: dict[str, cpio.Entry] = {e.path: e for e in cpio.read_initramfs(data)}
    init = tree.get(lookup(tree, "init"))
    if not isinstance(init, cpio.File) or init.data[:2] != b"#!":
        if configured:
            parts.report.append(f"{src.initramfs}: /init is no shell script; nothing translated")
            return
        raise BuildError(
            f"{src.path}: {src.initramfs} has no shell script /init to translate",
            "describe the app in a pinit.toml and pass --config pinit.toml",
        )
    interpreter = init.data.split(b"\n")[0][2:].split()
    shell = lookup(tree, interpreter[0].decode(errors="replace")) if interpreter else ""
    busybox = {
        e.data
        for e in tree.values()
        if isinstance(e, cpio.File) and (b"BusyBox v" in e.data or e.path == shell)
    }
    old = work / "old"
    _extract(tree, old)
    parts.userland = _userland(
        old,
        [shell, *(p for p, e in tree.items() if isinstance(e, cpio.File) and e.data in busybox)],
    )

    translated: list[str] = []  # files whose contents went into the pinit.toml

    def read(path: str) -> str | None:
        found = lookup(tree, path.lstrip("/"))
        entry = tree.get(found)
        if not isinstance(entry, cpio.File):
            return None
        translated.append(found)
        return entry.data.decode(errors="replace")

    script = initscript.translate(init.data.decode(errors="replace"), read)
    script = _programs(script, tree, busybox, parts, old)
    script = _modules(script, tree, parts, old, f"{src.path}: {src.initramfs}")
    parts.sysroot, parts.data, parts.hostname = old, script.data, script.hostname
    parts.network, parts.time = script.network, script.time
    if script.switch_root:
        parts.nothing_to_run = (
            f"its /init mounts {script.switch_root} and switch_roots into "
            "it; pinit runs from the initramfs and does not start another "
            "system's init"
        )
    parts.extras += script.entries
    left = 0
    for path, entry in sorted(tree.items()):
        if path in translated:
            # wpa_supplicant's config holds the passphrases: the card keeps only the keys.
            parts.report.append(f"left behind: /{path} (translated into [network])")
            left += 1
        elif _left_behind(tree, path, entry, busybox):
            left += 1
        else:
            parts.extras.append(entry)
    parts.report += initscript.report(script)
    conf = tree.get(lookup(tree, "etc/mdev.conf"))
    if isinstance(conf, cpio.File):

        def text(name: str) -> str:
            entry = tree.get(lookup(tree, name))
            return entry.data.decode(errors="replace") if isinstance(entry, cpio.File) else ""

        rules, lines = mdev.translate(
            conf.data.decode(errors="replace"), text("etc/passwd"), text("etc/group")
        )
        parts.devices += rules
        parts.report += lines
    parts.report.append(
        f"left behind from the old initramfs: {left} entries (/init, busybox "
        "and its links, module files, /dev, /proc, /sys)"
    )


def _userland(old: Path, programs: list[str]) -> str:
    """The Debian architecture of the old initramfs's busybox (its shell): on a 32-bit card,
    armhf or armel by the float ABI its ELF header names."""
    for path in programs:
        if path and is_elf(old / path):
            try:
                return debian_arch(inspect_elf(old / path))
            except BuildError:
                continue  # not a program after all: the next one tells
    return ""


def _left_behind(
    tree: dict[str, cpio.Entry], path: str, entry: cpio.Entry, busybox: set[bytes]
) -> bool:
    if (
        path == "init"
        or path.endswith(SUFFIXES)
        or path.split("/")[0] in ("dev", "proc", "sys")
        or path.startswith(("lib/modules/", "usr/lib/modules/"))
    ):
        return True  # replaced by pinit, packed by kmod, or mounted over at boot
    if isinstance(entry, cpio.CharDev | cpio.BlockDev | cpio.Fifo):
        return True
    target = tree.get(lookup(tree, path))
    return isinstance(target, cpio.File) and target.data in busybox


# ---- Raspberry Pi OS: modules from the ext4 root partition, read with debugfs (no root needed).


def _debugfs(card: Path, part: sdimage.Partition, request: str) -> str:
    # e2fsprogs opens "FILE?offset=N" as a file system starting N bytes in: no copy of the
    # (multi-GB) root partition.
    proc = run(["debugfs", "-R", request, f"{card}?offset={part.start}"], capture=True)
    # debugfs exits 0 even when the request fails; the errors follow its banner on stderr.
    errors = [
        line
        for line in proc.stderr.decode(errors="replace").splitlines()
        if line.strip() and not line.startswith("debugfs ")
    ]
    if errors:
        raise BuildError(
            f"{card}: partition {part.index}: debugfs {request}: {errors[0]}",
            f"is partition {part.index} the ext4 root file system of the card?",
        )
    return proc.stdout.decode(errors="replace")


def from_rootfs(src: Source, parts: Parts) -> None:
    """Kind RPIOS: pick the module release that matches the kernel and copy its tree out."""
    part = next(
        (p for p in sdimage.read_partitions(src.path) if p.index == src.root_partition), None
    )
    if part is None:
        raise BuildError(
            f"{src.path}: cmdline.txt boots partition {src.root_partition}, which "
            "the card does not have"
        )
    listing = _debugfs(src.path, part, "ls -p /lib/modules")
    # `ls -p` lines: /inode/mode/uid/gid/name/size/
    releases = sorted(
        f[5]
        for f in (line.split("/") for line in listing.splitlines())
        if len(f) > 6 and f[2].startswith("04") and f[5] not in (".", "..")
    )
    banner = kernel_release(src.boot / src.kernel)
    if banner in releases or len(releases) == 1 and not banner:
        parts.release = banner or releases[0]
    else:
        raise BuildError(
            f"{src.path}: no /lib/modules/{banner or '<release>'} on partition "
            f"{part.index} for kernel {src.kernel} (has: {', '.join(releases) or 'none'})",
            "the card's kernel and its modules must come from the same update",
        )
    dest = parts.modules_root / "lib" / "modules"
    dest.mkdir(parents=True)
    with step(f"copying /lib/modules/{parts.release} out of partition {part.index}"):
        _debugfs(src.path, part, f'rdump "/lib/modules/{parts.release}" "{dest}"')
    parts.report.append(f"modules: /lib/modules/{parts.release} of partition {part.index}")
