"""`invoke image --from PATH`: replace the shell init of an existing Pi boot folder or card.

Three kinds of input, never modified: a classic boot folder (config.txt, cmdline.txt, kernel and
an initramfs whose /init is a busybox shell script), a card image whose FAT partition 1 holds
such a folder, and a Raspberry Pi OS card (kernel on FAT partition 1, modules on the ext4 root
partition). sources.py reads them; here their kernel, firmware, dtbs and modules become a
Platform, the /init script's values and a given pinit.toml become a BuildConfig, and image.build
writes the result: no busybox, pinit as PID 1. Whatever was not translated is listed in
out/convert-report.txt and on stdout. When nothing would run (no program carried over and none
in the pinit.toml), the conversion is refused and writes nothing. docs/convert.md says what each
shell idiom becomes.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from builder import boards, image
from builder.config import BuildConfig, Image, load_build_config
from builder.convert.sources import (
    BOARD,
    RPIOS,
    THIRTY_TWO_BIT_KERNELS,
    Parts,
    Source,
    detect,
    from_initramfs,
    from_rootfs,
    kernel_release,
)
from builder.formats import bootfs
from hostkit.errors import BuildError
from hostkit.output import write_atomic
from init import frozen
from init.config import Config
from init.errors import ConfigError
from init.modules import normalize
from init.validate import check
from toolchain.provision import Toolchain
from toolchain.target import TARGETS, Target

# Words that only mean something with a root file system on a disk; pinit runs from the
# initramfs and writes its own rdinit=.
ROOT_WORDS = re.compile(
    r"(root|rootfstype|rootflags|rootdelay|init|rdinit|fsck\.\w+)=.*"
    r"|rootwait|ro|rw"
)
# config.txt lines the builder writes itself, and those that would load another initramfs or
# kernel than it writes (reported when dropped).
OWN_KEYS = {"kernel", "initramfs", "ramfsfile", "cmdline", "arm_64bit"}
DROPPED_KEYS = {"ramfsaddr", "initramfs_addr", "auto_initramfs", "os_prefix"}


# ---- Platform and BuildConfig, then the build.


def platform(src: Source, release: str, modules_root: Path) -> image.Platform:
    """The source's kernel and every other boot file as it is, but its initramfs and configs."""
    cmdline = bootfs.effective(src.config_txt, BOARD).get("cmdline", "cmdline.txt").lower()
    skip = {"config.txt", cmdline, src.kernel.lower(), src.initramfs.lower()}
    files = {
        name: src.boot / name
        for low, name in src.files.items()
        if low not in skip and not low.startswith("initramfs")
    }
    return image.Platform(
        kernel=src.boot / src.kernel,
        kernel_name=src.kernel,
        release=release or "unknown",
        modules_root=modules_root,
        boot_files=files,
        as_is=True,
    )


# The CPU of each kernel the firmware loads in 32-bit mode; a kernel of another name is told by
# the old busybox's float ABI (Debian's armhf is ARMv7, its armel ARMv5T, run by the ARMv6 Pis).
CPUS = {
    "kernel7.img": "ARMv7: a Pi 2, or a Pi 3 in 32-bit mode",
    "kernel.img": "ARMv6: a Pi Zero, Zero W or 1",
    "kernel7l.img": "ARMv7 with LPAE: a Pi 4 in 32-bit mode",
}
BY_USERLAND = {"armhf": "kernel7.img", "armel": "kernel.img"}


def card_board(src: Source, parts: Parts, user: BuildConfig | None) -> str:
    """The converted card's [image] board: the given pinit.toml's, else "all" for a 64-bit
    card, and for a 32-bit one the first board of the target whose firmware loads its kernel
    (toolchain/target.py `default_kernel`: kernel7.img the Pi 2's armhf, kernel.img the ARMv6
    Pis'). A 32-bit card pinit has no target for is refused, one line."""
    given = user.image.board if user else boards.ALL
    bits = 32 if src.kernel_arch == "arm" else 64
    if given != boards.ALL and boards.target_of(given).elf_bits != bits:
        raise BuildError(
            f"{src.path}: its kernel {src.kernel} is {bits}-bit, but the pinit.toml's [image] "
            f"board {given} is a {boards.target_of(given).name} board",
            "name the board the card is for in [image] board, or leave it out",
        )
    if bits == 64 or given != boards.ALL:
        return given
    low = src.kernel.lower()
    name = low if low in THIRTY_TWO_BIT_KERNELS else BY_USERLAND.get(parts.userland, "")
    how = f"{src.kernel}" + (f", busybox {parts.userland}" if name != low else "")
    chosen = [
        b
        for b, board in boards.BOARDS.items()
        if board.target.cards and board.target.default_kernel == name
    ]
    if not chosen:
        made = {t.default_kernel: t.name for t in TARGETS.values() if t.cards and not t.arm_64bit}
        raise BuildError(
            f"{src.path}: a 32-bit card ({how}; {CPUS.get(name, 'a CPU pinit cannot tell')}): "
            "pinit builds no init for it",
            "pinit converts 32-bit cards with "
            + ", ".join(f"{k} ({v})" for k, v in sorted(made.items()))
            + " or name the board in [image] board of a pinit.toml given with --config",
        )
    board = chosen[0]
    parts.report.append(
        f"board: {board} ({boards.target_of(board).name}): {how} is {CPUS[name].split(':')[0]}"
    )
    return board


def carried_config_txt(text: str, report: list[str]) -> list[str]:
    """The source's config.txt lines, but those the builder writes itself."""
    lines: list[str] = []
    sections = False
    ours = bootfs.config_txt("kernel", "initramfs", []).splitlines()
    for raw in text.splitlines():
        line = raw.strip()
        key = (bootfs.parse_config_txt(line) or [bootfs.Setting("", "", "", 0)])[0].key
        if not line or line.startswith("#") or line in ours or key in OWN_KEYS:
            continue
        if key in DROPPED_KEYS or len(line) > bootfs.CONFIG_LINE_MAX:
            report.append(f"config.txt: dropped `{line}`")
            continue
        sections = sections or line.startswith("[")
        lines.append(line)
    if sections:
        lines.append("[all]")
    if not any(line.strip() == "upstream_kernel=1" for line in text.splitlines()):
        # The builder writes upstream_kernel=1 for Debian's kernel; a Pi kernel wants its own
        # dtb names (bcm2710-rpi-3-b.dtb...), which the firmware only loads without it.
        lines.append("upstream_kernel=0")
    return lines


def build_config(
    src: Source, parts: Parts, user: BuildConfig | None, board: str = boards.ALL
) -> BuildConfig:
    """The script's values, with a given pinit.toml's services and settings winning, for
    `board` (card_board)."""
    chosen = boards.BOARDS.get(board)
    ours = bootfs.cmdline_txt([], chosen.serial if chosen else bootfs.SERIAL_CONSOLE).split()
    words = [w for w in src.cmdline if not ROOT_WORDS.fullmatch(w) and w not in ours]
    dropped = [w for w in src.cmdline if ROOT_WORDS.fullmatch(w)]
    if dropped:
        parts.report.append("cmdline.txt: dropped " + " ".join(dropped))
    lines = carried_config_txt(src.config_txt, parts.report)
    base = user or BuildConfig(
        path=src.path, init=Config(), image=Image(compression=parts.compression)
    )
    top = base.init
    # The script's programs only when the pinit.toml gives none; its modules are added to the
    # script's (same name: the pinit.toml's parameters win).
    services, host_exec = (
        (top.services, base.host_exec) if top.services else (tuple(parts.services), parts.host_exec)
    )
    parts.report.append(
        "services: "
        + (", ".join(f"{s.name} ({s.exec})" for s in services) or "none")
        + f" from {base.path if top.services else '/init'}"
    )
    modules = {normalize(m.name): m for m in (*parts.modules, *top.modules)}
    data = parts.data if parts.data and not top.data.device else top.data
    default_name = top.hostname == Config().hostname
    hostname = parts.hostname if parts.hostname and default_name else top.hostname
    devices = top.devices or tuple(parts.devices)  # the pinit.toml's rules win
    network = top.network or parts.network  # the pinit.toml's [network] and [time] win
    time = top.time if top.time.servers else parts.time
    parts.report.append(
        "network: "
        + (
            ", ".join(
                f"{n.interface} {n.address or 'DHCP'}"
                + (f" gateway {n.gateway}" if n.gateway else "")
                + "".join(f" dns {d}" for d in n.dns)
                for n in network
            )
            or "none"
        )
        + (f"; time servers {', '.join(time.servers)}" if time.servers else "")
        + f" from {base.path if top.network else '/init'}"
    )
    # As a pinit.toml's [network] does: its driver is shipped and coldplug loads it.
    init = frozen.replace(
        top,
        services=services,
        modules=tuple(modules.values()),
        data=data,
        hostname=hostname,
        devices=devices,
        network=network,
        time=time,
        coldplug=top.coldplug or bool(network),
    )
    try:
        check(init, str(base.path))
    except ConfigError as exc:
        raise BuildError(str(exc), "fix it in the pinit.toml given with --config") from exc
    if init.data.device and not base.data_size:
        parts.report.append(
            f"data partition {init.data.device}: not made in sdcard.img; "
            "keep the old card's partition or set [data] size"
        )
    return replace(
        base,
        init=init,
        host_exec=dict(host_exec),
        image=replace(
            base.image,
            board=board,
            config_txt=(*lines, *base.image.config_txt),
            cmdline=(*words, *base.image.cmdline),
        ),
    )


def build_from(
    source: Path,
    config: Path | None,
    out: Path,
    init: Path | Callable[[Target], Path],
    tc: Toolchain,
) -> image.Built:
    """Convert `source` (never modified) into out/boot, out/sdcard.img and a report. `init`:
    pinit's init, or what gives it for the card's target (build/init, build/init-armhf)."""
    user = load_build_config(config) if config else None
    for written in (out / "boot", out / "sdcard.img"):
        if source.resolve() == written.resolve() or written.resolve() in source.resolve().parents:
            raise BuildError(
                f"{source}: the output {written} would overwrite it",
                "the input is never modified: give another --out",
            )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=out))
    parts: Parts | None = None
    try:
        src = detect(source, work)
        parts = Parts(
            work / "modules", report=[f"pinit convert: {source} ({src.kind}), kernel {src.kernel}"]
        )
        if src.kind == RPIOS:
            if user is None:
                how = (
                    f"its {src.initramfs} only prepares the root partition {src.root_partition} "
                    "(root= on cmdline.txt), whose own init runs the system"
                    if src.initramfs
                    else "a Raspberry Pi OS card has no init script to translate"
                )
                raise BuildError(
                    f"{source}: nothing says what to run: {how}",
                    "describe the app in a pinit.toml and pass --config pinit.toml",
                )
            from_rootfs(src, parts)
        else:
            parts.release = kernel_release(src.boot / src.kernel)
            from_initramfs(src, work, parts, user is not None)
        board = card_board(src, parts, user)
        cfg = build_config(src, parts, user, board)
        plat = platform(src, parts.release, parts.modules_root)
        # The script's programs take their libraries from the old initramfs, not the sysroot.
        uses_script = bool(parts.services) and cfg.init.services == tuple(parts.services)
        tc_apps = replace(tc, sysroot=parts.sysroot) if uses_script and parts.sysroot else tc
        if not cfg.init.services:
            # A card that boots into nothing is worse than no card: refuse, write nothing.
            why = parts.nothing_to_run or "its /init starts no program pinit can carry over"
            raise BuildError(
                f"{source}: nothing to run: {why}",
                "describe the app in a pinit.toml and pass --config pinit.toml "
                "(what /init does is listed above)",
            )
        program = init(boards.target_of(board)) if callable(init) else init
        built = image.build(
            cfg.path, out, program, tc_apps, platform=plat, cfg=cfg, extras=parts.extras
        )
        parts.report += [
            f"initramfs: kept the builder's /{path}, not the old one" for path in built.shadowed
        ]
    except BuildError:
        if parts is not None:  # what was found, so the one-line error can be acted on
            print("\n".join(parts.report))
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(out.iterdir()):
            out.rmdir()
    parts.report += [f"boot folder: {built.boot}", f"card image:  {built.image}"]
    text = "\n".join(parts.report) + "\n"
    write_atomic(out / "convert-report.txt", text.encode())
    print(text + f"(this report: {out / 'convert-report.txt'})")
    return built
