"""The Raspberry Pi boot folder: config.txt, cmdline.txt, and writing the folder atomically.

The Pi firmware reads config.txt from the FAT partition, loads `kernel=` and the initramfs named
on the `initramfs` line, and hands the kernel the single line in cmdline.txt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hostkit.errors import BuildError
from hostkit.run import log, source_date_epoch

# The firmware ignores everything past this many characters on a config.txt line.
CONFIG_LINE_MAX = 98

# With `upstream_kernel=1` and `enable_uart=1`, Debian's upstream device trees name the Pi 3/4
# mini-UART (the one wired to GPIO 14/15 while the PL011 drives Bluetooth) serial1, so the 8250
# driver calls it ttyS1; ttyAMA0 is the PL011 on the Bluetooth chip. enable_uart=1 also pins the
# core clock so the mini-UART's baud rate does not drift. The kernel uses the *last* console= as
# /dev/console, so init's own output goes to tty1 (HDMI) and kernel messages to both.
SERIAL_CONSOLE = "ttyS1,115200"
LOGLEVEL = 4  # warnings and worse on the console; the rest stays in dmesg

MODEL_SECTIONS = frozenset(
    {
        "pi0",
        "pi0w",
        "pi02",
        "pi1",
        "pi2",
        "pi3",
        "pi3+",
        "pi4",
        "pi400",
        "pi5",
        "pi500",
        "cm4",
        "cm4s",
        "cm5",
    }
)


def _check_word(what: str, value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise BuildError(f"{what} {value!r}: expected one file name without spaces")


def config_txt(
    kernel: str, initramfs: str, extra_lines: Sequence[str], arm_64bit: bool = True
) -> str:
    """config.txt for a Debian kernel, 64-bit or (`arm_64bit` False: the Pi 2's armmp) 32-bit;
    `extra_lines` go last, under [all]."""
    _check_word("config.txt kernel", kernel)
    _check_word("config.txt initramfs", initramfs)
    for line in extra_lines:
        if "\n" in line or "\r" in line:
            raise BuildError(
                f"config.txt line {line!r}: contains a line break",
                hint="give each config.txt setting as its own list item",
            )
        if len(line) > CONFIG_LINE_MAX:
            raise BuildError(
                f"config.txt line {line!r}: longer than {CONFIG_LINE_MAX} characters",
                hint="the firmware ignores the rest of the line; split it up",
            )
    lines = [
        "# Written by pinit; rebuild instead of editing: changes here are overwritten.",
        *(
            [
                "# 64-bit Debian kernel, upstream device-tree names (bcm2711-rpi-4-b.dtb ...).",
                "arm_64bit=1",
            ]
            if arm_64bit
            else ["# 32-bit Debian kernel, upstream device-tree names (bcm2836-rpi-2-b.dtb ...)."]
        ),
        f"kernel={kernel}",
        f"initramfs {initramfs} followkernel",
        "upstream_kernel=1",
        "enable_uart=1",
        "disable_splash=1",
    ]
    if extra_lines:
        lines += ["", "[all]", *extra_lines]
    return "\n".join(lines) + "\n"


def cmdline_txt(extra_words: Sequence[str], serial: str = SERIAL_CONSOLE) -> str:
    """The one-line kernel command line; no root=, init runs from the initramfs. `serial` is
    the console on the board's GPIO 14/15 UART (the Pi 2's is its PL011, ttyAMA0,115200)."""
    for word in extra_words:
        if not word or "\n" in word or "\r" in word:
            raise BuildError(f"cmdline.txt word {word!r}: expected a non-empty single-line word")
    words = [
        f"console={serial}",
        "console=tty1",
        "rdinit=/init",
        "panic=10",
        f"loglevel={LOGLEVEL}",
        *extra_words,
    ]
    return " ".join(words) + "\n"


@dataclass(frozen=True)
class Setting:
    """One config.txt setting, with the conditional section it sits in."""

    section: str
    key: str
    value: str
    lineno: int


def parse_config_txt(text: str) -> list[Setting]:
    """Every setting in file order: `key=value`, `initramfs FILE ...` (key "initramfs"),
    `include FILE` (key "include"). Comments, blank and unknown lines are skipped, as the
    firmware skips them."""
    settings: list[Setting] = []
    section = "all"
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            settings.append(Setting(section, key.strip(), value.strip(), lineno))
            continue
        words = line.split()
        if words[0] in ("initramfs", "include") and len(words) >= 2:
            settings.append(Setting(section, words[0], words[1], lineno))
    return settings


def effective(text: str, board: str) -> dict[str, str]:
    """The settings the firmware applies on `board` ("pi3", "pi4"): [all] and [board] sections,
    later lines overriding earlier ones. Other sections ([none], other models, and filters we
    cannot evaluate at build time such as [HDMI:1] or [gpio4=1]) are skipped. Repeatable keys
    (dtoverlay, dtparam) keep only their last value; use parse_config_txt() to see them all."""
    board = board.lower()
    if board not in MODEL_SECTIONS:
        raise BuildError(f"board {board!r}: expected one of {', '.join(sorted(MODEL_SECTIONS))}")
    result: dict[str, str] = {}
    for setting in parse_config_txt(text):
        if setting.section in ("all", board):
            result[setting.key] = setting.value
    return result


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if (
        not name
        or path.is_absolute()
        or ".." in path.parts
        or "." in name.split("/")
        or str(path) != name
    ):
        raise BuildError(
            f"boot folder entry {name!r}: expected a plain relative path like 'overlays/foo.dtbo'"
        )
    return path


def _fix_mtimes(root: Path, when: int) -> None:
    # Children before their directory: writing a file would bump its directory's mtime again.
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


def _fill(tmp: Path, files: Mapping[str, Path | bytes]) -> None:
    for name in sorted(files):
        dest = tmp / _check_name(name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        source = files[name]
        if isinstance(source, bytes):
            dest.write_bytes(source)
        else:
            try:
                shutil.copyfile(source, dest)
            except OSError as exc:
                raise BuildError(
                    f"boot folder {name}: cannot copy {source}: {exc.strerror}"
                ) from exc
        os.chmod(dest, 0o644)


def make_boot_folder(out: Path, files: Mapping[str, Path | bytes]) -> None:
    """Write `files` (relative name -> source file or contents) as the folder `out`.

    Built beside `out` and swapped in with renames, so a failed build leaves the previous folder
    as it was. Every file and directory gets mtime SOURCE_DATE_EPOCH."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        _fill(tmp, files)
        _fix_mtimes(tmp, source_date_epoch())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Directories cannot be replaced by one rename; for the instant between the two renames
    # `out` is missing, but a crash there leaves the complete old folder under `old`.
    old = out.parent / f".{out.name}.old{tmp.name.rsplit('.tmp', 1)[1]}"
    if out.exists() or out.is_symlink():
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError as exc:
        if old.exists():
            os.rename(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise BuildError(f"{out}: cannot move the new boot folder into place: {exc}") from exc
    if old.is_symlink() or old.is_file():
        old.unlink()
    elif old.exists():
        shutil.rmtree(old)
    log(f"wrote boot folder {out} ({len(files)} files)")
