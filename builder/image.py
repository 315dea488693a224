"""`invoke image`: pinit.toml → initramfs → build/boot/ → build/sdcard.img, one way.

Each stage takes the previous stage's values and prints its duration. Outputs are written
atomically: a failing build leaves the previous build/boot and build/sdcard.img as they were.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder import boards
from builder.apps import app_files, is_python, program_data, require_static_target
from builder.config import BuildConfig, load_build_config, to_init_json
from builder.formats import bootfs, compress, cpio, sdimage
from builder.formats.elf import require_static_for
from builder.python import native
from builder.python.compile import Packages, build_appliance
from hostkit.errors import BuildError
from hostkit.paths import REPO
from hostkit.run import log, step
from init import cgroup, early
from init.config import CONFIG_FILE, E2FSCK, EXT_TYPES
from init.frozen import replace as evolve
from init.grow import SEED_PATH, encode_seed
from init.slots import TRYBOOT_MODULE
from init.validate import located
from toolchain.provision import Toolchain
from toolchain.target import AARCH64, Target

INITRAMFS_NAMES = {
    "gzip": "initramfs.gz",
    "zstd": "initramfs.zst",
    "xz": "initramfs.xz",
    "lz4": "initramfs.lz4",
    "none": "initramfs.cpio",
}
FIRMWARE_GLOBS = ("bootcode.bin", "start*.elf", "fixup*.dat", "LICENCE*")
# The Pi boards a 64-bit kernel runs on; the firmware picks the dtb by these upstream names.
DTB_GLOBS = (
    "broadcom/bcm2837-rpi-*.dtb",
    "broadcom/bcm2710-rpi-*.dtb",
    "broadcom/bcm2711-rpi-*.dtb",
    "broadcom/bcm2712-rpi-*.dtb",
)


@dataclass(frozen=True)
class Platform:
    """Where the kernel, its modules, dtbs and the firmware come from."""

    kernel: Path  # the kernel image file
    kernel_name: str  # its name in the boot folder (config.txt kernel=)
    release: str  # uname -r, matches lib/modules/<release>
    modules_root: Path  # a tree holding lib/modules/<release>
    kernel_config: str = ""  # the kernel's .config text, when known
    boot_files: dict[str, Path] = field(default_factory=dict)  # dtbs, overlays, firmware
    # The boot files are a converted card's own (its kernel's dtb names): all kept, whatever
    # the board; the builder's own are kept only when the board reads them.
    as_is: bool = False


def debian_platform(tc: Toolchain) -> Platform:
    from builder.kbuild import ensure_own_modules

    ensure_own_modules(tc)  # pinit's own modules, beside the kernel package's
    return kernel_platform(tc.kernel, tc.firmware)


def dtb_globs(target: Target) -> tuple[str, ...]:
    """The device trees a boot folder for `target` carries: every 64-bit Pi's for aarch64,
    the dtbs of the boards (builder/boards.py) of another target."""
    if target == AARCH64:
        return DTB_GLOBS
    return tuple(
        f"{target.dtb_dir}{dtb}.dtb"
        for board in boards.BOARDS.values()
        if board.target == target
        for dtb in board.dtbs
    )


def kernel_platform(kernel: Path, firmware: Path, target: Target = AARCH64) -> Platform:
    """The Platform of an unpacked Debian kernel package (`kernel`: boot/vmlinuz-<release>,
    lib/modules/<release>, usr/lib/linux-image-<release>/ with the dtbs) for `target`, and
    the unpacked raspi-firmware (`firmware`)."""
    modules = kernel / "lib/modules"
    releases = sorted(p.name for p in modules.iterdir()) if modules.is_dir() else []
    if not releases:
        raise BuildError(
            f"{kernel}: no lib/modules/<release>: not an unpacked kernel package",
            hint="run `invoke toolchain`",
        )
    release = releases[-1]
    vmlinuz = kernel / "boot" / f"vmlinuz-{release}"
    dtbs = kernel / "usr/lib" / f"linux-image-{release}"
    files: dict[str, Path] = {}
    fw = firmware / "usr/lib/raspi-firmware"
    for pattern in FIRMWARE_GLOBS:
        for p in sorted(fw.glob(pattern)):
            files[p.name] = p
    for pattern in dtb_globs(target):
        for p in sorted(dtbs.glob(pattern)):
            files[p.name] = p
    config = kernel / "boot" / f"config-{release}"
    return Platform(
        kernel=vmlinuz,
        kernel_name=vmlinuz.name,
        release=release,
        modules_root=kernel,
        boot_files=files,
        kernel_config=config.read_text() if config.is_file() else "",
    )


def boot_texts(
    board: str,
    kernel_name: str,
    initramfs_name: str,
    config_lines: Sequence[str] = (),
    cmdline_words: Sequence[str] = (),
) -> dict[str, bytes]:
    """config.txt and cmdline.txt of a card for `board`: a 32-bit board's kernel starts
    without arm_64bit=1, and its serial console is that board's UART on GPIO 14/15."""
    chosen = boards.BOARDS.get(board)
    arm_64bit = chosen.target.arm_64bit if chosen else True
    serial = chosen.serial if chosen else bootfs.SERIAL_CONSOLE
    return {
        "config.txt": bootfs.config_txt(
            kernel_name, initramfs_name, config_lines, arm_64bit
        ).encode(),
        "cmdline.txt": bootfs.cmdline_txt(cmdline_words, serial).encode(),
    }


@dataclass(frozen=True)
class Built:
    boot: Path
    image: Path
    initramfs: Path
    initramfs_size: int
    cpio_size: int
    shadowed: tuple[str, ...] = ()  # extra entries left out: the builder's own came first


def early_start(cfg: BuildConfig, packed: Mapping[str, bytes]) -> bytes | None:
    """/etc/pinit.early for the init's C prologue, or None when the first service must wait
    for the Python init (a data partition, device rules, another user, something to wait for,
    exec mode, or turned off). `packed`: the image's lib/modules files, from which the
    configured modules' load order is resolved here, by the init's own resolver."""
    from init.config import start_order
    from init.supervise import service_argv, service_env

    init = cfg.init
    if not (init.early_start and init.mode == "supervise" and init.services):
        return None
    first = start_order(init.services)[0]
    # The app may need what the Python init sets up first: device permissions, the data
    # partition, another user, a console that comes with a module (hvc0: the early app would
    # write to the kernel's). Coldplug (`[kernel] available`) goes on while it starts, as
    # udev's does beside systemd's services: a service that needs such a device waits for it.
    if init.devices or init.data.device or first.user or first.group:
        return None
    if first.wait_for or first.after or (init.console and init.modules):
        return None
    if init.update.ready:  # the line the update waits for must come through PID 1's pipe
        return None
    record = early.Record(
        first.exec,
        first.cwd,
        f"{cgroup.MOUNT}/{first.name}",
        tuple(service_argv(first)),
        tuple(f"{k}={v}" for k, v in sorted(service_env(first).items())),
        early_modules(cfg, packed),
        init.hostname,
    )
    try:
        return early.encode(record)
    except ValueError as exc:
        raise BuildError(
            f"service {first.name}: cannot be started early: {exc}",
            hint="shorten its command or environment, or set [init] early_start = false",
        ) from None


def early_modules(cfg: BuildConfig, packed: Mapping[str, bytes]) -> tuple[tuple[str, str], ...]:
    """(absolute path, parameters) of `[kernel] modules` and their dependencies, in the order
    PID 1 loads them (init.modules.resolve over the packed files)."""
    from init import modules

    if not cfg.init.modules:
        return ()
    folder = next((path.rpartition("/")[0] for path in packed if path.endswith("/modules.dep")), "")

    def read(path: str) -> str:
        if path not in packed:
            raise FileNotFoundError(path)
        return packed[path].decode()

    names = [m.name for m in cfg.init.modules]
    params = {modules.normalize(m.name): m.params for m in cfg.init.modules}
    order = modules.resolve(read, folder, names)
    return tuple((f"/{folder}/{path}", params.get(modules.name_of(path), "")) for path in order)


# What a data partition needs that nobody has to list: the card and disk drivers of the boards
# (virtio on QEMU's -M virt; the Pi's SD hosts: sdhci-iproc for the Pi 3's and Pi 4's emmc,
# bcm2835 for the sdhost), found by coldplug, and its file system's modules (init.coldplug).
DATA_DRIVERS = ("virtio_mmio", "virtio_blk", "sdhci-iproc", "bcm2835")
# What a [network] interface needs, found by coldplug the same way: virtio on -M virt; the Pi
# 3 B's and B+'s USB ethernet (the dwc2 USB host, then smsc95xx or lan78xx); the Pi 4's genet
# with its MDIO bus and PHY drivers (which the kernel asks for by module request).
NET_DRIVERS = (
    "virtio_mmio",
    "virtio_net",
    "dwc2",
    "smsc95xx",
    "lan78xx",
    "genet",
    "mdio-bcm-unimac",
    "broadcom",
)


# What a wireless [network] needs: the Pi's SDIO hosts (sdhci-iproc on the Pi 3's and 4's
# emmc, where the radio sits; bcm2835's sdhost), the radio's power sequence (its reset line)
# and Broadcom's FullMAC driver, which loads the chip's firmware below; and the ciphers the
# kernel asks for by module request when a radio encrypts in software (mac80211's CCMP is
# "ccm(aes)", its management frame protection "cmac(aes)").
WIFI_DRIVERS = ("sdhci-iproc", "bcm2835", "pwrseq_simple", "brcmfmac", "ccm", "ctr", "cmac")
# The Pi's radios and their firmware in Debian's firmware-brcm80211 (the `wifi` tree): the
# chip's code, its board's NVRAM (.txt) and its country tables (.clm_blob). Not the driver's
# whole list (every Broadcom chip, 30 MB): only these ship.
PI_WIFI = {
    "brcmfmac43430": "Pi 3 B, Zero W",
    "brcmfmac43455": "Pi 3 B+, 3 A+, 4 B, CM4",
}
PI_WIFI_MISSING = "Zero 2 W (BCM43436) and Pi 400 (BCM43456)"
# cfg80211's regulatory database and its signature (the kernel checks it), as Debian ships them.
REGDB = {"regulatory.db": "regulatory.db-debian", "regulatory.db.p7s": "regulatory.db.p7s-debian"}


def wifi_firmware(tc: Toolchain, board: str = boards.ALL) -> list[tuple[str, Path]]:
    """The files under /lib/firmware that a wireless [network] ships (for `board`'s radio)."""
    out: list[tuple[str, Path]] = []
    for chip in boards.radios(board, tuple(PI_WIFI)):
        for name in (".bin", ".clm_blob", ".raspberrypi,*.txt"):
            out += firmware_files(tc, f"brcm/{chip}-sdio{name}", tc.wifi)
    base = tc.wifi / "lib/firmware"
    out += [(name, (base / packaged).resolve()) for name, packaged in REGDB.items()]
    return out


def shipped_modules(cfg: BuildConfig, platform: Platform) -> list[str]:
    """Modules loaded at boot, then those shipped for coldplug and the data partition."""
    names = [m.name for m in cfg.init.modules] + list(cfg.available)
    if cfg.init.data.device:
        from builder import kmod
        from init.coldplug import fs_modules

        implied = [*DATA_DRIVERS, *fs_modules(cfg.init.data.fstype)]
        if cfg.init.data.create and cfg.init.data.file:  # a data file on the FAT partition
            implied += [*fs_modules("vfat"), "loop"]
        names += kmod.present(implied, platform.modules_root, platform.release)
    if cfg.init.network:
        from builder import kmod

        names += kmod.present(list(NET_DRIVERS), platform.modules_root, platform.release)
        if any(n.wifi for n in cfg.init.network):
            names += kmod.present(list(WIFI_DRIVERS), platform.modules_root, platform.release)
    if cfg.init.update.key:  # the boot slots: the card's drivers and FAT
        from builder import kmod
        from init.coldplug import fs_modules

        # TRYBOOT_MODULE: Debian's kernel passes "tryboot" to the firmware only with it.
        implied = [*DATA_DRIVERS, *fs_modules("vfat"), TRYBOOT_MODULE]
        names += kmod.present(implied, platform.modules_root, platform.release)
    return list(dict.fromkeys(names))


# Where the configured firmware packages (toolchain/packages.py FIRMWARE) keep the files that
# drivers load from /lib/firmware.
FIRMWARE_DIRS = ("lib/firmware", "usr/lib/firmware")


def firmware_files(tc: Toolchain, name: str, tree: Path | None = None) -> list[tuple[str, Path]]:
    """The provisioned firmware files a module's `firmware=` entry (maybe a glob) names."""
    found: dict[str, Path] = {}
    for folder in FIRMWARE_DIRS:
        base = (tree or tc.firmware) / folder
        if base.is_dir():
            for path in sorted(base.glob(name)):
                if path.is_file():
                    found.setdefault(str(path.relative_to(base)), path.resolve())
    return sorted(found.items())


def initramfs_entries(
    cfg: BuildConfig,
    platform: Platform,
    init: Path,
    tc: Toolchain,
    app_cache: Path,
    out: Path | None = None,
    carried: frozenset[str] = frozenset(),
) -> list[cpio.Entry]:
    """`carried`: the paths of an old initramfs' files that the image keeps (build's `extras`)."""
    python = {
        s.name: cfg.host_exec[s.name] for s in cfg.init.services if is_python(cfg.host_exec[s.name])
    }
    beside_init: dict[str, bytes] = {}
    packages = python_packages(cfg, tc) if python else Packages()
    cfg, native_files = native_services(cfg, tc, packages, python)
    static = {
        s.name: python[s.name]
        for s in cfg.init.services
        if s.name in python and s.exec != native.INTERPRETER
    }
    modules: frozenset[str] = frozenset()
    if static:
        # The init and every Python service: one interpreter, one binary (/app/<name> links).
        built = build_appliance(tc, static, app_cache, packages)
        init, beside_init, modules = built.binary, built.data, built.modules
    target = tc.target
    require_static_for(
        init,
        "the init",
        target.elf_machine,
        target.elf_bits,
        target.name,
        f"{target.triplet} ({target.debian_arch}): invoke build-init"
        + ("" if target == AARCH64 else f" --target {target.name}"),
    )
    entries: list[cpio.Entry] = [
        # The kernel opens /dev/console for PID 1 before any devtmpfs exists: a node in the archive.
        cpio.Dir("dev"),
        cpio.CharDev("dev/console", 5, 1),
        cpio.CharDev("dev/null", 1, 3, 0o666),
        cpio.Dir("proc", 0o555),
        cpio.Dir("sys", 0o555),
        cpio.Dir("run"),
        cpio.Dir("tmp", 0o1777),
        cpio.Dir("etc"),
        cpio.Dir("app"),
        cpio.File("init", init.read_bytes(), 0o755),
        # The kernel's module requests run /sbin/modprobe: the same binary, by that name.
        cpio.Dir("sbin"),
        cpio.Symlink("sbin/modprobe", "/init"),
        cpio.File(CONFIG_FILE.lstrip("/"), to_init_json(cfg), 0o644),
    ]
    entries += [cpio.File(path, blob, 0o644) for path, blob in sorted(beside_init.items())]
    entries += [
        cpio.File(
            path, blob, 0o755 if path.startswith("usr/bin/") or "/ld-linux" in path else 0o644
        )
        for path, blob in sorted(native_files.items())
    ]
    given = {image_path.lstrip("/") for image_path, _ in cfg.image.files}
    entries += program_data_entries(python, static, entries, given, out)
    # root in every image, as on Debian (getpass.getuser(), pwd.getpwuid(0) answer), with the
    # [[user]]s and [[group]]s; without those, an [image] files one or a converted card's own
    # may stand instead.
    accounts = bool(cfg.accounts.users or cfg.accounts.groups)
    entries += [
        cpio.File(path, blob, 0o644)
        for path, blob in (
            ("etc/passwd", cfg.accounts.passwd()),
            ("etc/group", cfg.accounts.group()),
        )
        if accounts or path not in given | carried
    ]
    if cfg.update_key is not None:
        from builder.update import read_public_key

        key = cfg.init.update.key.lstrip("/")
        entries += [
            cpio.Dir(key.rpartition("/")[0]),
            cpio.File(key, read_public_key(cfg.update_key), 0o644),
        ]
    if cfg.init.data.device:
        entries.append(cpio.Dir(cfg.init.data.mountpoint.lstrip("/")))
        entries += [
            cpio.File(path, blob, mode) for path, (blob, mode) in fsck_files(cfg, tc).items()
        ]
    for service in cfg.init.services:
        program = cfg.host_exec[service.name]
        if service.name in static:
            entries.append(cpio.Symlink(service.exec.lstrip("/"), "/init"))
            continue
        if service.name in python:
            continue  # the native runtime's program: among `native_files`
        for path, data in sorted(app_files(program, service.exec, tc.sysroot, tc.target).items()):
            mode = 0o755 if path == service.exec.lstrip("/") or "/ld-linux" in f"/{path}" else 0o644
            entries.append(cpio.File(path, data, mode))
    shipped = shipped_modules(cfg, platform)
    packed: dict[str, bytes] = {}
    if shipped:
        from builder import kmod

        resolved = kmod.resolve(shipped, platform.modules_root, platform.release)
        packed = dict(kmod.pack(resolved))
        entries += [cpio.File(path, data, 0o644) for path, data in packed.items()]
        shipped_files = {path for path, _ in cfg.image.files}
        wifi = any(n.wifi for n in cfg.init.network)
        if wifi:
            board = cfg.image.board
            entries += [
                cpio.File(f"lib/firmware/{rel}", path.read_bytes(), 0o644)
                for rel, path in wifi_firmware(tc, board)
                if f"/lib/firmware/{rel}" not in shipped_files
            ]
            absent = boards.BOARDS[board].radio_missing if board != boards.ALL else ""
            if absent:
                log(
                    f"warning: the {board}'s radio ({absent}) has no firmware in Debian's "
                    "firmware-brcm80211: give it with [image] files "
                    '("/lib/firmware/brcm/<chip>-sdio.bin" = "<file on this machine>")'
                )
            elif board != boards.ALL and not boards.BOARDS[board].radio:
                log(
                    f"warning: the {board} has no radio of its own: give a USB radio's firmware "
                    'with [image] files ("/lib/firmware/<name>" = "<file on this machine>")'
                )
            else:
                chips = boards.radios(board, tuple(PI_WIFI))
                log(
                    "Wi-Fi: the card has the radio firmware of the "
                    + "; ".join(PI_WIFI[c] for c in chips)
                    + ("" if board != boards.ALL else f"; not of the {PI_WIFI_MISSING}")
                )
        for module, files in sorted(kmod.firmware(resolved).items()):
            if wifi and module in ("brcmfmac", "cfg80211"):
                continue  # the Pi's radios only, above
            missing = []
            for name in files:
                if f"/lib/firmware/{name}" in shipped_files:
                    continue
                found = firmware_files(tc, name)
                entries += [
                    cpio.File(f"lib/firmware/{rel}", path.read_bytes(), 0o644)
                    for rel, path in found
                ]
                if not found:
                    missing.append(name)
            if missing:
                log(
                    f"module {module} may ask for firmware not in the image: "
                    f"{', '.join(missing)} (add it with [image] files = "
                    f'{{ "/lib/firmware/{missing[0]}" = "<file on this machine>" }})'
                )
    record = early_start(cfg, packed)
    if record is not None:
        entries.append(cpio.File(early.PATH.lstrip("/"), record, 0o644))
    entries += [
        cpio.File(path, blob, 0o644)
        for path, blob in base_files(cfg, tc).items()
        if path not in given
    ]
    # The native runtime has the whole standard library, zoneinfo and ssl with it.
    if native_files or modules & ZONEINFO_READERS:
        entries += [e for e in zoneinfo_entries(tc) if e.path not in given]
    if native_files or "ssl" in modules:
        entries += [e for e in ca_entries(tc) if e.path not in given]
    for image_path, host in cfg.image.files:
        entries.append(cpio.File.from_host(image_path, host))
    return entries


ZONEINFO = "usr/share/zoneinfo"
# What reads the tz database (zoneinfo.ZoneInfo, dateutil.tz.gettz; both look in
# /usr/share/zoneinfo first): a binary with one of them ships it, as Debian always has it.
ZONEINFO_READERS = frozenset(("zoneinfo", "dateutil.tz"))


def zoneinfo_entries(tc: Toolchain) -> list[cpio.Entry]:
    """Debian's tz database (tzdata, locked) as /usr/share/zoneinfo, its links as links; not
    right/, its leap-second variants (Debian 13 moved them to tzdata-legacy)."""
    root = tc.runtime / ZONEINFO
    entries: list[cpio.Entry] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        name = f"{ZONEINFO}/{rel.as_posix()}"
        if rel.parts[0] == "right":
            continue
        if path.is_symlink():
            entries.append(cpio.Symlink(name, os.readlink(path)))
        elif path.is_dir():
            entries.append(cpio.Dir(name))
        else:
            entries.append(cpio.File(name, path.read_bytes(), 0o644))
    return entries


# Debian's CA certificates (ca-certificates, locked), bundled as its update-ca-certificates
# bundles them, where Debian's OpenSSL looks by default (OPENSSLDIR /usr/lib/ssl: cert.pem,
# certs/): ssl.create_default_context() and urllib's HTTPS trust them, as on Debian.
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


def ca_entries(tc: Toolchain) -> list[cpio.Entry]:
    certs = sorted((tc.runtime / "usr/share/ca-certificates").rglob("*.crt"))
    if not certs:
        raise BuildError(
            f"{tc.runtime}: no CA certificates in usr/share/ca-certificates",
            hint="run `invoke toolchain`, which unpacks Debian's ca-certificates",
        )
    pems = [c.read_bytes() for c in certs]
    bundle = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in pems)
    return [
        cpio.File(CA_BUNDLE, bundle, 0o644),
        cpio.Symlink("usr/lib/ssl/cert.pem", f"/{CA_BUNDLE}"),
        cpio.Symlink("usr/lib/ssl/certs", "/etc/ssl/certs"),
    ]


def zone_file(cfg: BuildConfig, tc: Toolchain) -> bytes:
    """[image] timezone's TZif data, from Debian's tz database."""
    zone = cfg.image.timezone
    root = (tc.runtime / ZONEINFO).resolve()
    path = (root / zone).resolve()
    if path.is_file() and path.is_relative_to(root) and path.read_bytes()[:4] == b"TZif":
        return path.read_bytes()
    raise BuildError(
        located(str(cfg.path), "[image]", "timezone", zone, "no such zone in the tz database"),
        hint="a name as in `timedatectl list-timezones`: Area/City (Europe/Berlin, "
        "America/New_York) or UTC; the zones are the folders and files of "
        f"{tc.runtime / ZONEINFO}",
    )


def program_data_entries(
    python: dict[str, Path],
    static: dict[str, Path],
    taken: list[cpio.Entry],
    given: set[str],
    out: Path | None,
) -> list[cpio.Entry]:
    """Each Python service's folder, as `python3 app.py` finds it (builder/apps.py
    program_data), where its `__file__` says it is: a service in the init's binary is at /
    (its program is /<file>.py there, and the service starts in / unless `cwd` says otherwise),
    one in the native runtime at /usr/lib/pinit/app. A path the builder already fills, or that
    two services' folders fill differently, is a build error; [image] files may replace one."""
    builders = {e.path: e for e in taken}
    placed: dict[str, tuple[str, Path]] = {}
    for name, program in sorted(python.items()):
        home = "" if name in static else native.APP_DIR + "/"
        for rel, host in program_data(program, (out,) if out else ()).items():
            path = home + rel
            if path in given:
                continue
            if path in builders:
                same = builders[path]
                if isinstance(same, cpio.File) and same.data == host.read_bytes():
                    continue  # the native runtime's program itself
                raise BuildError(
                    f"{host}: beside service {name}'s program, it would be /{path} in the "
                    "image, which is the builder's",
                    hint="rename it or move it into a subfolder",
                )
            first = placed.setdefault(path, (name, host))
            if first[1] != host and first[1].read_bytes() != host.read_bytes():
                raise BuildError(
                    f"{host}: beside service {name}'s program, it would be /{path} in the "
                    f"image, as {first[1]} beside service {first[0]}'s",
                    hint="give one of them another name",
                )
    return [cpio.File.from_host(path, host) for path, (_, host) in sorted(placed.items())]


# The pinit.toml's [data] checked at boot (init/data.py): Debian's static e2fsck, and its
# configuration for a board without a battery-backed clock (a Pi), whose time at boot may be
# before the last mount's: without it e2fsck would take that for damage.
E2FSCK_STATIC = "sbin/e2fsck.static"
E2FSCK_CONF = b"[options]\n\tbroken_system_clock = 1\n"


def fsck_files(cfg: BuildConfig, tc: Toolchain) -> dict[str, tuple[bytes, int]]:
    """e2fsck and its configuration for a checked [data]; the seed of a [data] PID 1 may make."""
    data = cfg.init.data
    files: dict[str, tuple[bytes, int]] = {}
    if data.device and data.check and data.fstype in EXT_TYPES:
        program = runtime_of(tc) / E2FSCK_STATIC
        require_static_target(program, "e2fsck-static's e2fsck", tc.target)
        files[E2FSCK.lstrip("/")] = (program.read_bytes(), 0o755)
        files["etc/e2fsck.conf"] = (E2FSCK_CONF, 0o644)
    if data.create or (data.on_damage == "format" and data.fstype in EXT_TYPES):
        # The partition's label, so that LABEL= finds what PID 1 makes or formats.
        label = data.device[6:] if data.device.startswith("LABEL=") else cfg.data_label
        files[SEED_PATH.lstrip("/")] = (encode_seed(sdimage.data_seed(label)), 0o644)
    return files


def runtime_of(tc: Toolchain) -> Path:
    """Where the programs an image of `tc`'s target ships are unpacked (e2fsck.static):
    aarch64's with the rest of its runtime, another target's from its runtime-<name> role."""
    if tc.target == AARCH64:
        return tc.runtime
    from toolchain.provision import ensure_runtime

    return ensure_runtime(tc.target)


def base_files(cfg: BuildConfig, tc: Toolchain) -> dict[str, bytes]:
    """What every image has in /etc for the C library's and Python's look-ups, as on Debian:
    /etc/hosts (localhost, and the host name as Debian's installer writes it), Debian's
    /etc/services and /etc/protocols (netbase, locked): socket.getservbyname, getaddrinfo with
    a service name; with [image] timezone, /etc/localtime (the zone's data) and /etc/timezone
    (its name). [image] files may replace them."""
    hosts = (
        f"127.0.0.1\tlocalhost\n127.0.1.1\t{cfg.init.hostname}\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    files = {"etc/hosts": hosts.encode()}
    for name in ("services", "protocols"):
        files[f"etc/{name}"] = (tc.runtime / "etc" / name).read_bytes()
    if cfg.image.timezone:  # the zone itself, not a link: the database may not be in
        files["etc/localtime"] = zone_file(cfg, tc)
        files["etc/timezone"] = f"{cfg.image.timezone}\n".encode()
    return files


def native_services(
    cfg: BuildConfig, tc: Toolchain, packages: Packages, python: dict[str, Path]
) -> tuple[BuildConfig, dict[str, bytes]]:
    """The Python services whose requirements need the native runtime (builder/python/native.py):
    their files (the runtime, their packages, their programs), and the config with each run as
    `python3.11 -I <program> <args>`."""
    if not cfg.requirements or packages.lib is None:
        return cfg, {}
    from builder.python import pypi

    requirements = sorted(set(cfg.requirements.values()))
    by_file = pypi.native_packages(cfg.path, requirements, tc, packages.lib, cfg.python.wheels)
    chosen = {
        name: os.path.relpath(req, cfg.path.parent)
        for name, req in cfg.requirements.items()
        if name in python and os.path.relpath(req, cfg.path.parent) in by_file
    }
    if not chosen:
        return cfg, {}
    files = native.runtime(tc)
    for file in sorted(set(chosen.values())):
        wheels, pure = by_file[file]
        files.update(native.site(wheels, packages.lib, pure, tc.cache, tc))
    services = []
    for service in cfg.init.services:
        if service.name in chosen:
            program, path = native.program(service.name, python[service.name])
            files.update(program)
            log(
                f"{service.name}: runs in the native runtime ({native.INTERPRETER}): "
                f"{chosen[service.name]} needs binary wheels"
            )
            service = evolve(service, exec=native.INTERPRETER, args=("-I", path, *service.args))
        services.append(service)
    return replace(cfg, init=evolve(cfg.init, services=tuple(services))), files


def python_packages(cfg: BuildConfig, tc: Toolchain) -> Packages:
    """The services' requirements (one lock beside the pinit.toml) and includes."""
    include = tuple(sorted({m for mods in cfg.includes.values() for m in mods}))
    if not cfg.requirements:
        return Packages(
            include=include,
            optimize=cfg.python.optimize,
            exclude=cfg.python.exclude,
            compiled=cfg.python.compiled,
        )
    from builder.python import pypi

    requirements = sorted(set(cfg.requirements.values()))
    site = pypi.ensure(cfg.path, requirements, tc, cfg.python.wheels)
    return Packages(
        lib=site.lib,
        ext=site.ext,
        names=site.packages,
        distributions=site.distributions,
        include=include,
        optimize=cfg.python.optimize,
        exclude=cfg.python.exclude,
        compiled=cfg.python.compiled,
        digest=site.lib.parent.name,
    )


def merge(
    entries: list[cpio.Entry], extras: Sequence[cpio.Entry]
) -> tuple[list[cpio.Entry], tuple[str, ...]]:
    """`entries` plus those `extras` whose path is free; the paths of the others."""
    have = {e.path: e for e in entries}
    shadowed = []
    for entry in extras:
        kept = have.setdefault(entry.path, entry)
        if kept is not entry and kept != entry and not isinstance(entry, cpio.Dir):
            shadowed.append(entry.path)
    return list(have.values()), tuple(shadowed)


def build(
    config_path: Path,
    out: Path,
    init: Path,
    tc: Toolchain,
    platform: Platform | None = None,
    cfg: BuildConfig | None = None,
    extras: Sequence[cpio.Entry] = (),
) -> Built:
    """`extras`: more initramfs entries (`invoke image --from` carries an old initramfs' files
    and device nodes); where a path is taken, the builder's own entry wins (Built.shadowed)."""
    start = time.monotonic()
    if cfg is None:
        with step(f"reading {config_path}"):
            cfg = load_build_config(config_path)
    # The board's target picks the toolchain (its sysroot, cross tools, ELF checks) and the
    # kernel: aarch64's with pinit's own modules, another's (armhf) as Debian packages it.
    target = boards.target_of(cfg.image.board)
    if target != AARCH64:
        from toolchain.provision import ensure_kernel, for_target

        tc = for_target(tc, target)
        platform = platform or kernel_platform(ensure_kernel(target), tc.firmware, target)
    platform = platform or debian_platform(tc)
    method = cfg.image.compression
    if platform.kernel_config:
        compress.check_kernel_supports(method, platform.kernel_config, f"kernel {platform.release}")
    with step("collecting the initramfs contents"):
        # Compiled Python apps are cached by content hash, shared by every output directory.
        entries, shadowed = merge(
            initramfs_entries(
                cfg,
                platform,
                init,
                tc,
                tc.cache / "apps",
                out,
                frozenset(e.path for e in extras if isinstance(e, cpio.File)),
            ),
            extras,
        )
    with step(f"writing the initramfs ({method})"):
        archive = cpio.write(entries)
        packed = compress.compress(archive, method)
    initramfs_name = INITRAMFS_NAMES[method]
    files: dict[str, Path | bytes] = {
        name: path
        for name, path in platform.boot_files.items()
        if platform.as_is or boards.keeps(cfg.image.board, name)
    }
    files[platform.kernel_name] = platform.kernel
    files[initramfs_name] = packed
    files.update(
        boot_texts(
            cfg.image.board,
            platform.kernel_name,
            initramfs_name,
            cfg.image.config_txt,
            cfg.image.cmdline,
        )
    )
    boot = out / "boot"
    with step(f"writing {boot}"):
        bootfs.make_boot_folder(boot, files)
    image = out / "sdcard.img"
    with step(f"writing {image}"):
        sdimage.make_image(
            image,
            boot,
            data_size=cfg.data_size,
            data_label=cfg.data_label,
            size=cfg.image.size or None,
            slots=card_slots() if cfg.init.update.key else None,
        )
    if cfg.init.update.key and cfg.image.board == boards.ALL:
        log(
            "update: the card's two boot slots boot only on a Pi whose bootloader reads "
            "autoboot.txt: " + ", ".join(b.title for b in boards.BOARDS.values() if b.pi4)
        )
    log(
        f"initramfs: {len(archive) / 1e6:.2f} MB cpio, {len(packed) / 1e6:.2f} MB {method}; "
        f"{len(entries)} entries; image ready in {time.monotonic() - start:.1f} s"
    )
    return Built(boot, image, boot / initramfs_name, len(packed), len(archive), shadowed)


def card_slots() -> sdimage.Slots:
    """The A/B card of an appliance with [update] (init/slots.py): slot A is the default."""
    from init import slots

    return sdimage.Slots(
        slots.SWITCH_LABEL,
        {slots.AUTOBOOT: slots.autoboot_txt(slots.SLOTS[0])},
        (slots.SLOT_LABELS[slots.SLOTS[0]], slots.SLOT_LABELS[slots.SLOTS[1]]),
    )


def firmware_choice(image: Path, tryboot: bool) -> tuple[int, tuple[str, ...]]:
    """The partition the Pi 4 bootloader boots from the card `image` (autoboot.txt's choice, the
    tried slot when the tryboot flag is set; partition 1 on a card without A/B slots), and the
    words through which a harness that plays the firmware tells PID 1 what the firmware would
    put in the device tree (/chosen/bootloader: partition, tryboot)."""
    from init import slots

    if slots.AUTOBOOT.upper() not in {n.upper() for n in sdimage.fat_list(image, 1)}:
        return 1, ()
    text = sdimage.fat_read(image, 1, slots.AUTOBOOT).decode("utf-8", "replace")
    chosen = slots.parse_autoboot(text)
    if chosen is None:
        return 1, ()
    partition = chosen[1] if tryboot else chosen[0]
    return partition, (f"pinit.boot_partition={partition}", f"pinit.tryboot={int(tryboot)}")


def default_config() -> Path:
    return Path(os.environ.get("PINIT_CONFIG", REPO / "pinit.toml"))
