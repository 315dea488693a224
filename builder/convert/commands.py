"""What each set-up command of a classic /init becomes: mount, mknod, mkdir, insmod, modprobe,
echo, hostname, export, cd, switch_root, and the network and clock commands (netcommands.py).

The walk over the script (initscript.py) gives these the command's expanded words; each records
one outcome per thing it did, and the values pinit takes over (modules, initramfs entries, the
data partition, the host name, the services' environment and working directory).
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace

from builder.convert import netcommands
from builder.formats import cpio
from init.config import Data
from init.modules import name_of
from init.rootfs import EARLY_ROOTFS, Mount


class Kind(enum.StrEnum):
    """What became of a command: translated into the pinit.toml, noted (pinit does it
    itself, nothing to write), or untranslated (the report says why)."""

    TRANSLATED = "translated"
    NOTED = "noted"
    UNTRANSLATED = "untranslated"


TRANSLATED, NOTED, UNTRANSLATED = Kind.TRANSLATED, Kind.NOTED, Kind.UNTRANSLATED
# Mounts the init makes itself (init/rootfs.py EARLY_ROOTFS); tmpfs on /dev is the classic
# stand-in for devtmpfs.
PINIT_MOUNTS = {(m.fstype, m.target) for m in EARLY_ROOTFS if isinstance(m, Mount)} | {
    ("tmpfs", "/dev")
}
PINIT_DIRS = ("/proc", "/sys", "/dev", "/run", "/tmp")  # mounted over at boot
DATA_FSTYPES = ("ext4", "ext3", "ext2", "vfat", "exfat", "f2fs", "btrfs", "xfs")
QUIET_TARGETS = ("/dev/null", "/dev/console", "/dev/kmsg", "/dev/tty0", "/dev/tty1")
HOTPLUG_FILES = ("/proc/sys/kernel/hotplug", "/sys/kernel/uevent_helper")
NOTES = {
    "mdev": "devtmpfs makes the device nodes and pinit's coldplug and hotplug load their "
    "modules ([kernel] available); no mdev needed",
    "sleep": "a pause; pinit starts services in their order (after, wait_for) and waits "
    "for the data partition itself ([data] wait)",
    "wait": "waits for the programs started with &: pinit supervises them as services",
    **{
        name: "a shell built-in; pinit runs no shell"
        for name in ("set", "trap", "true", ":", "clear", "sync", "shift", "unset", "reset")
    },
}
# Commands that are never the appliance's program: busybox applets and system tools.
APPLETS = {
    "sh",
    "ash",
    "bash",
    "hush",
    "busybox",
    "hwclock",
    "date",
    "sysctl",
    "cp",
    "mv",
    "rm",
    "cat",
    "chmod",
    "chown",
    "touch",
    "dmesg",
    "klogd",
    "syslogd",
    "logger",
    "telnetd",
    "httpd",
    "getty",
    "login",
    "setsid",
    "cttyhack",
    "switch_root",
    "chroot",
    "pivot_root",
    "poweroff",
    "reboot",
    "halt",
    "umount",
    "swapon",
    "fsck",
    "e2fsck",
    "stty",
    "crond",
    "loadkmap",
    "init",
    "linuxrc",
    "umask",
    "ulimit",
    "source",
    ".",
    "test",
    "[",
    "exit",
    "read",
    "ln",
    "mknod",
    "mkdir",
    "mount",
    "insmod",
    "modprobe",
    "hostname",
    "cd",
    "export",
    "false",
    "grep",
    "sed",
    "awk",
    "tee",
    "kill",
    "killall",
    "env",
    "eval",
    "return",
    "break",
    "continue",
    "printf",
    "echo",
    "sleep",
    "wait",
    "mdev",
}
NET = "[network]"  # the subject of network outcomes, which netcommands.settle may take back
LOGGERS = {"logger", "tee"}  # `APP | logger`: pinit logs a service's output itself
TRUE = {"true", ":", "/bin/true", "/usr/bin/true"}
PATH_TESTS = {"-e", "-b", "-c", "-f", "-d", "-L", "-h", "-r", "-w", "-x", "-s"}


@dataclass(frozen=True)
class Outcome:
    line: int  # 1-based line number in /init
    text: str  # the command as written
    kind: Kind
    what: str  # what it became, or why not
    subject: str = ""  # the program or module it made, for demote()


@dataclass(frozen=True)
class ModuleLoad:
    name: str  # module name as the script gives it (insmod: the file's stem)
    params: str
    path: str  # the .ko in the old initramfs (insmod); "" when modprobe names it
    line: int


def quiet(redirects: list[tuple[str, str]]) -> bool:
    return all(op in (">&", "<&") or target in QUIET_TARGETS for op, target in redirects)


def dropped(redirects: list[tuple[str, str]]) -> str:
    if quiet(redirects):
        return ""
    return (
        " (not kept: its redirection "
        + " ".join(f"{op} {t}" for op, t in redirects)
        + "; pinit logs a service's output)"
    )


def under_pinit(path: str) -> bool:
    """Whether pinit mounts over `path` at boot, hiding anything the initramfs has there."""
    return any(path == d or path.startswith(d + "/") for d in PINIT_DIRS)


def number(text: str) -> float | None:
    try:
        return float(text.rstrip("s"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Context:
    background: bool = False  # started with & (itself or a group around it)
    guard: str = ""  # "only if /dev/x exists": a test this command depends on
    tolerant: bool = False  # `CMD || true`: its failure is ignored
    loop: bool = False  # inside a restart loop: the program is looked at by loop()


class Stop(Exception):
    """The script ends here: an exec, or an endless loop, ran (the line given)."""

    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


class SetupCommands:
    """The commands that set the machine up; mixed into the walker, which holds the state."""

    outcomes: list[Outcome]
    modules: list[ModuleLoad]
    entries: list[cpio.Entry]
    data: Data | None
    data_line: int
    hostname: str
    vars: dict[str, str]
    exported: dict[str, str]
    waited: list[str]
    cwd: str
    switch_root: str
    net: list[netcommands.NetSetting]
    files: Callable[[str], str | None]  # a file of the old initramfs, by its path there

    def out(self, line: int, text: str, kind: Kind, what: str, subject: str = "") -> None:
        self.outcomes.append(Outcome(line, text, kind, what, subject))

    def network(self, line: int, text: str, words: list[str]) -> None:
        """A network or clock command: its steps, settled into [network] and [time] at the end
        (netcommands.settle)."""
        try:
            steps, what = netcommands.read(words, line, self.files)
        except netcommands.Unread as exc:
            self.out(line, text, UNTRANSLATED, str(exc))
            return
        except (ValueError, IndexError) as exc:
            self.out(line, text, UNTRANSLATED, f"cannot read it: {exc}; write [network] by hand")
            return
        self.net += steps
        self.out(line, text, TRANSLATED if steps else NOTED, what, NET if steps else "")

    def do_switch_root(self, line: int, text: str, args: list[str]) -> None:
        root = posixpath.normpath(args[0]) if args else ""
        if self.data is not None and self.data.mountpoint == root:
            self.switch_root = self.data.device
            self.data = None
            self.outcomes = [
                replace(
                    o,
                    kind=UNTRANSLATED,
                    what=f"the root file system that line {line} switches to, not a data partition",
                )
                if o.line == self.data_line
                else o
                for o in self.outcomes
            ]
        self.out(
            line,
            text,
            UNTRANSLATED,
            f"hands the machine to the init of {self.switch_root or 'another root'} "
            f"({' '.join(args[1:]) or '/sbin/init'}); pinit runs from the initramfs: give "
            "the program that init starts in a pinit.toml (--config)",
        )
        raise Stop(line, f"after the switch_root on line {line}: never ran")

    def do_mount(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        fstype, options, places = "", [], []  # type: str, list[str], list[str]
        words = iter(args)
        for arg in words:
            if arg == "-t":
                fstype = next(words, "")
            elif arg == "-o":
                options += next(words, "").split(",")
            elif arg in ("-r", "-w"):
                options.append("ro" if arg == "-r" else "rw")
            elif arg.startswith("-") and arg not in ("-n", "-v"):
                places = []  # -a, --bind, --move ...: nothing pinit has a setting for
                break
            else:
                places.append(posixpath.normpath(arg) if arg.startswith("/") else arg)
        if len(places) == 1 and "remount" in options and places[0] == "/":
            self.out(line, text, NOTED, "the initramfs root is already writable")
            return
        if len(places) != 2 or "remount" in options or "bind" in options:
            self.out(line, text, UNTRANSLATED, "a mount pinit has no setting for")
            return
        source, target = places
        if (fstype, target) in PINIT_MOUNTS or (not fstype and target in PINIT_DIRS):
            self.out(line, text, NOTED, f"pinit mounts {target} itself")
        elif fstype in DATA_FSTYPES and source.startswith(("/dev/", "LABEL=", "PARTUUID=")):
            if self.data is not None:
                self.out(
                    line,
                    text,
                    UNTRANSLATED,
                    f"pinit mounts one data partition; {self.data.device} is it",
                )
                return
            kept = ",".join(o for o in options if o not in ("rw", "defaults"))
            optional = bool(ctx.guard) or ctx.tolerant
            waited = source in self.waited
            # A guard looks once, at that moment: the same is no wait, going on without it.
            self.data = Data(
                device=source,
                mountpoint=target,
                fstype=fstype,
                options=kept,
                required=not optional,
                wait=Data.wait if waited or not optional else 0.0,
            )
            self.data_line = line
            how = (
                "; the script waited for it ([data] wait)"
                if waited
                else "; optional, no wait: the script mounts it only if it is there already"
                if optional
                else ""
            )
            self.out(line, text, TRANSLATED, f"the data partition ({source} on {target}{how})")
        else:
            self.out(
                line, text, UNTRANSLATED, f"a {fstype or 'untyped'} mount pinit has no setting for"
            )

    def do_mknod(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        mode = 0o644  # mode 0666 under the kernel's umask 022 for init
        if len(args) >= 2 and args[0] == "-m":
            mode, args = int(args[1], 8), args[2:]
        kinds: dict[str, type[cpio.CharDev] | type[cpio.BlockDev]] = {
            "c": cpio.CharDev,
            "u": cpio.CharDev,
            "b": cpio.BlockDev,
        }
        if len(args) == 2 and args[1] == "p":
            self.entries.append(cpio.Fifo(args[0], mode))
        elif len(args) == 4 and args[1] in kinds and args[2].isdigit() and args[3].isdigit():
            self.entries.append(kinds[args[1]](args[0], int(args[2]), int(args[3]), mode))
        else:
            self.out(line, text, UNTRANSLATED, "a mknod this translator does not read")
            return
        hidden = " (pinit's devtmpfs covers /dev at boot)" if args[0].startswith("/dev/") else ""
        self.out(line, text, TRANSLATED, f"node {args[0]} in the initramfs{hidden}")

    def do_mkdir(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        mode, made, skipped = 0o755, [], []
        if "-m" in args and args.index("-m") + 1 < len(args):
            at = args.index("-m")
            mode, args = int(args[at + 1], 8), args[:at] + args[at + 2 :]
        for path in (a for a in args if not a.startswith("-")):
            norm = posixpath.normpath(posixpath.join(self.cwd, path))
            if under_pinit(norm) or norm == "/":
                skipped.append(norm)
            else:
                self.entries.append(cpio.Dir(norm, mode))
                made.append(norm)
        if made:
            self.out(line, text, TRANSLATED, "directories in the initramfs: " + " ".join(made))
        else:
            self.out(line, text, NOTED, "pinit makes or mounts " + " ".join(skipped) + " itself")

    def do_insmod(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        words = [a for a in args if not a.startswith("-")]
        if not words:
            self.out(line, text, UNTRANSLATED, "insmod without a module file")
            return
        path = posixpath.normpath(posixpath.join(self.cwd, words[0]))
        self.modules.append(ModuleLoad(name_of(path), " ".join(words[1:]), path, line))
        self.out(line, text, TRANSLATED, f"module {name_of(path)}" + _params(words[1:]), path)

    def do_modprobe(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        flags = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if any(f in ("-r", "--remove") for f in flags) or not words:
            self.out(line, text, UNTRANSLATED, "a modprobe that loads nothing")
            return
        names, params = (words, "") if "-a" in flags else (words[:1], " ".join(words[1:]))
        for name in names:
            self.modules.append(ModuleLoad(name, params, "", line))
            self.out(line, text, TRANSLATED, f"module {name}" + _params(params.split()), name)

    def do_echo(
        self, line: int, text: str, args: list[str], redirects: list[tuple[str, str]], ctx: Context
    ) -> None:
        targets = [target for op, target in redirects if op in (">", ">>", ">|")]
        if any(t in HOTPLUG_FILES for t in targets):
            self.out(
                line,
                text,
                NOTED,
                "the mdev hotplug helper: PID 1 listens to the kernel's device events itself",
            )
        elif targets == [netcommands.NAMESERVER] and (step := netcommands.nameserver(args, line)):
            self.net.append(step)
            self.out(line, text, TRANSLATED, f"name server {step.value} ([network] dns)", NET)
        elif targets == ["/proc/sys/kernel/hostname"] and len(args) == 1:
            self.hostname = args[0]
            self.out(line, text, TRANSLATED, f"hostname {args[0]}")
        elif quiet(redirects):
            self.out(line, text, NOTED, "a console message; pinit logs its own steps")
        else:
            kernel = all(t.startswith(("/sys/", "/proc/", "/dev/")) for t in targets)
            self.out(
                line,
                text,
                UNTRANSLATED,
                f"writes {', '.join(targets)} at boot; pinit has "
                "no setting for it: "
                + (
                    "the app must do it when it starts"
                    if kernel
                    else "put the file into the image ([image] files)"
                ),
            )

    do_printf = do_echo

    def do_hostname(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        if len(args) != 1 or args[0].startswith("-"):
            self.out(line, text, UNTRANSLATED, "only `hostname NAME` is translated")
            return
        self.hostname = args[0]
        self.out(line, text, TRANSLATED, f"hostname {args[0]}")

    def do_export(
        self, line: int, text: str, args: list[str], redirects: object, ctx: Context
    ) -> None:
        for arg in args:
            key, eq, value = arg.partition("=")
            self.vars[key] = value if eq else self.vars.get(key, "")
            self.exported[key] = self.vars[key]
        self.out(line, text, TRANSLATED, "environment of the services: " + " ".join(args))

    def do_cd(self, line: int, text: str, args: list[str], redirects: object, ctx: Context) -> None:
        self.cwd = posixpath.normpath(posixpath.join(self.cwd, args[0] if args else "/"))
        self.out(line, text, TRANSLATED, f"working directory {self.cwd} of later services")


def _params(words: list[str]) -> str:
    return f" ({' '.join(words)})" if words else ""
