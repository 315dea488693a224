"""Translate a classic busybox `/init` shell script into pinit values, one line at a time.

Pure: text in, values out; the old initramfs is looked at by sources.py, not here. Every
command line ends up in exactly one of three places: "translated" into a value, "noted" (pinit
does it itself, or it only mattered to a shell), or "untranslated", for a person to look at.
Only comments, blank lines and the #! line are skipped without a word.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, replace

from builder import cpio
from hostkit.errors import BuildError
from init.config import Data
from init.modules import name_of
from init.rootfs import EARLY_ROOTFS, Mount

# The classic /init of the post pinit started from (shared/seed), verbatim up to its `exec`:
# the shape `invoke image --from` translates, and what `invoke bench` runs as the baseline.
SEED_INIT_HEAD = """#!/bin/sh
# Install Busybox (places symlinks from /bin and others to the central /bin/busybox executable)
/bin/busybox --install -s

# Mount basic directories
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o size=64k,mode=0755 tmpfs /dev
mkdir /dev/pts
mount -t devpts devpts /dev/pts
# Create elementary device nodes (the numbers can be found by stat'ing on a Raspbian install)
echo "Creating basic devices..."
mknod /dev/null c 1 3
mknod /dev/tty c 5 0
"""


def seed_init(app: str = "/rust-program", before_exec: tuple[str, ...] = ()) -> str:
    """The seed's script, its last line `exec <app>`, with `before_exec` lines added before it."""
    return SEED_INIT_HEAD + "".join(f"{line}\n" for line in before_exec) + f"\nexec {app}\n"


TRANSLATED, NOTED, UNTRANSLATED = "translated", "noted", "untranslated"
# Mounts the init makes itself (init/rootfs.py EARLY_ROOTFS); tmpfs on /dev is the classic
# stand-in for devtmpfs.
PINIT_MOUNTS = {(m.fstype, m.target) for m in EARLY_ROOTFS if isinstance(m, Mount)} | {
    ("tmpfs", "/dev")}
PINIT_DIRS = ("/proc", "/sys", "/dev", "/run", "/tmp")  # mounted over at boot
DATA_FSTYPES = ("ext4", "ext3", "ext2", "vfat", "exfat", "f2fs", "btrfs", "xfs")
QUIET_TARGETS = ("/dev/null", "/dev/console", "/dev/kmsg", "/dev/tty0", "/dev/tty1")
HOTPLUG_FILES = ("/proc/sys/kernel/hotplug", "/sys/kernel/uevent_helper")
CONTROL = {"if", "then", "elif", "else", "fi", "while", "until", "for", "do", "done", "case",
           "esac", "{", "}", "function", "select"}
OPENERS, CLOSERS = {"if", "while", "until", "for", "case", "select"}, {"fi", "done", "esac"}
NOTES = {"mdev": "devtmpfs makes the device nodes and pinit's coldplug and hotplug load their "
                 "modules ([kernel] available); no mdev needed",
         "sleep": "a pause; pinit waits for the data partition itself ([data] wait)",
         **{name: "a shell built-in; pinit runs no shell" for name in
            ("set", "trap", "true", ":", "clear", "sync", "shift", "unset", "wait", "reset")}}
# Commands that are never the appliance's program: busybox applets and system tools.
APPLETS = {"sh", "ash", "bash", "hush", "busybox", "ifconfig", "ip", "route", "udhcpc", "dhcpcd",
           "hwclock", "date", "sysctl", "cp", "mv", "rm", "cat", "chmod", "chown", "touch",
           "dmesg", "klogd", "syslogd", "logger", "telnetd", "httpd", "getty", "login", "setsid",
           "cttyhack", "switch_root", "chroot", "pivot_root", "poweroff", "reboot", "halt",
           "umount", "swapon", "fsck", "e2fsck", "stty", "ntpd", "crond", "loadkmap", "init",
           "linuxrc", "umask", "ulimit", "source", ".", "test", "[", "exit", "read",
           "ln", "mknod", "mkdir", "mount", "insmod", "modprobe", "hostname", "cd", "export"}
SUBSTITUTION = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True)
class Outcome:
    line: int        # 1-based line number in /init
    text: str        # the command as written (continuation lines joined)
    kind: str        # translated | noted | untranslated
    what: str        # what it became, or why not


@dataclass(frozen=True)
class ModuleLoad:
    name: str        # module name as the script gives it (insmod: the file's stem)
    params: str
    path: str        # the .ko in the old initramfs (insmod); "" when modprobe names it
    line: int


@dataclass(frozen=True)
class Program:
    path: str                          # as the script names it: absolute or looked up in PATH
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]   # exported variables and VAR=value prefixes
    cwd: str
    line: int
    background: bool                   # `prog &`: runs beside the main program


@dataclass(frozen=True)
class Script:
    outcomes: tuple[Outcome, ...]
    modules: tuple[ModuleLoad, ...] = ()
    entries: tuple[cpio.Entry, ...] = ()   # from mknod and mkdir
    programs: tuple[Program, ...] = ()     # background ones first, the main program last
    data: Data | None = None
    hostname: str = ""
    path: tuple[str, ...] = ("/sbin", "/usr/sbin", "/bin", "/usr/bin")  # PATH for bare names


def demote(script: Script, line: int, why: str) -> Script:
    """The script with line `line` moved to "untranslated" and its program or module dropped."""
    outcomes = tuple(replace(o, kind=UNTRANSLATED, what=why) if o.line == line else o
                     for o in script.outcomes)
    return replace(script, outcomes=outcomes,
                   programs=tuple(p for p in script.programs if p.line != line),
                   modules=tuple(m for m in script.modules if m.line != line))


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with backslash-newline continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\") and not raw.endswith("\\\\"):
            pending += raw[:-1] + " "
            continue
        out.append((start, pending + raw))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _segments(tokens: list[str]) -> list[tuple[list[str], str]]:
    """Commands split at ; && || & |, each with the operator that ends it."""
    out: list[tuple[list[str], str]] = []
    current: list[str] = []
    for token in tokens:
        if token in (";", "&&", "||", "&", "|", ";;"):
            out.append((current, token))
            current = []
        else:
            current.append(token)
    if current:
        out.append((current, ""))
    return [(words, op) for words, op in out if words]


def _redirects(words: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Words without redirections, and the (operator, target) redirections."""
    kept: list[str] = []
    found: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in (">", ">>", "<", ">&", "&>", ">|", "<&") and i + 1 < len(words):
            if kept and kept[-1].isdigit():
                kept.pop()  # the fd number: 2>/dev/null
            found.append((word, words[i + 1]))
            i += 2
            continue
        kept.append(word)
        i += 1
    return kept, found


def _quiet(redirects: list[tuple[str, str]]) -> bool:
    return all(op in (">&", "<&") or target in QUIET_TARGETS for op, target in redirects)


def _dropped(redirects: list[tuple[str, str]]) -> str:
    if _quiet(redirects):
        return ""
    return (" (not kept: its redirection " + " ".join(f"{op} {t}" for op, t in redirects)
            + "; pinit logs a service's output)")


def _assignments(words: list[str]) -> dict[str, str]:
    """Take the leading VAR=value words off `words`."""
    env: dict[str, str] = {}
    while words and re.fullmatch(r"\w+=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    return env


def _under_pinit(path: str) -> bool:
    """Whether pinit mounts over `path` at boot, hiding anything the initramfs has there."""
    return any(path == d or path.startswith(d + "/") for d in PINIT_DIRS)


class _Walker:
    """Walks the commands in order, keeping the shell state that later commands depend on."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.modules: list[ModuleLoad] = []
        self.entries: list[cpio.Entry] = []
        self.programs: list[Program] = []
        self.pending: Program | None = None   # the last foreground program run
        self.data: Data | None = None
        self.hostname = ""
        self.vars: dict[str, str] = {}
        self.exported: dict[str, str] = {}
        self.cwd = "/"
        self.exec_line = 0
        self.depth = 0

    def out(self, line: int, text: str, kind: str, what: str) -> None:
        self.outcomes.append(Outcome(line, text, kind, what))

    def line(self, number: int, text: str) -> None:
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            return
        if self.exec_line:
            self.out(number, stripped, NOTED, f"after the exec on line {self.exec_line}: never ran")
            return
        try:
            tokens = _tokens(stripped)
        except ValueError as exc:
            self.out(number, stripped, UNTRANSLATED, f"cannot parse it: {exc}")
            return
        segments = _segments(tokens)
        heads = [words[0] for words, _ in segments]
        opened = sum(h in OPENERS for h in heads) + tokens.count("{")
        closed = sum(h in CLOSERS for h in heads) + tokens.count("}")
        inside = self.depth > 0
        self.depth = max(0, self.depth + opened - closed)
        if inside or opened or any(h in CONTROL for h in heads) or "(" in tokens:
            self.out(number, stripped, UNTRANSLATED,
                     "shell control flow (if/while/for/case/function/subshell); pinit runs no shell")
            return
        if any(op == "|" for _, op in segments):
            self.out(number, stripped, UNTRANSLATED, "a pipeline; pinit runs no shell")
            return
        for words, op in segments:
            text_of = shlex.join(words) if len(segments) > 1 else stripped
            self.command(number, text_of, words, background=op == "&")

    def substitute(self, words: list[str]) -> list[str] | None:
        out = []
        for word in words:
            if "`" in word or "$(" in word:
                return None
            names = [a or b for a, b in SUBSTITUTION.findall(word)]
            if any(n not in self.vars for n in names):
                return None
            out.append(SUBSTITUTION.sub(lambda m: self.vars[m.group(1) or m.group(2)], word))
        return out

    def command(self, line: int, text: str, words: list[str], background: bool) -> None:
        substituted = self.substitute(words)
        if substituted is None:
            self.out(line, text, UNTRANSLATED, "uses a shell variable or command substitution "
                     "whose value is not known here")
            return
        words, redirects = _redirects(substituted)
        env = _assignments(words)
        if not words:
            if redirects:
                self.out(line, text, UNTRANSLATED, "a bare redirection; pinit runs no shell")
                return
            self.vars.update(env)
            self.out(line, text, NOTED, "shell variable " + ", ".join(env))
            return
        if posixpath.basename(words[0]) == "busybox" and len(words) > 1:
            if words[1].startswith("--install"):
                self.out(line, text, NOTED, "busybox applet links: the new initramfs has no busybox")
                return
            words = words[1:]
        name = posixpath.basename(words[0])
        handler = getattr(self, f"do_{name.replace('-', '_')}", None)
        if name == "exec":
            self.do_exec(line, text, words[1:], env, redirects)
        elif handler is not None and not env:
            try:
                handler(line, text, words[1:], redirects)
            except (ValueError, IndexError, BuildError) as exc:
                self.out(line, text, UNTRANSLATED, f"cannot read it: {exc}")
        elif name in NOTES:
            self.out(line, text, NOTED, NOTES[name])
        elif name in APPLETS:
            self.out(line, text, UNTRANSLATED, f"{name}: no pinit equivalent")
        else:
            program = self.program(line, words, env, background)
            if background:
                self.programs.append(program)
                self.out(line, text, TRANSLATED, f"service {words[0]} (started beside the "
                         f"app){_dropped(redirects)}")
            else:
                self.pending = program
                self.out(line, text, UNTRANSLATED,
                         f"runs {words[0]} and waits for it; pinit starts services, not steps")

    def program(self, line: int, words: list[str], env: dict[str, str],
                background: bool) -> Program:
        return Program(words[0], tuple(words[1:]), tuple(sorted({**self.exported, **env}.items())),
                       self.cwd, line, background)

    def do_exec(self, line: int, text: str, words: list[str], env: dict[str, str],
                redirects: list[tuple[str, str]]) -> None:
        env.update(_assignments(words))
        if not words:
            self.out(line, text, NOTED, "console redirection; pinit sets up the console")
            return
        name = posixpath.basename(words[0])
        if name in APPLETS or name == "busybox":
            self.out(line, text, UNTRANSLATED, f"exec {name}: pinit runs from the initramfs and "
                     "has no shell; give the app in pinit.toml")
            return
        self.exec_line = line
        self.programs.append(self.program(line, words, env, False))
        self.out(line, text, TRANSLATED, f"the service {words[0]}{_dropped(redirects)}")

    def do_mount(self, line: int, text: str, args: list[str], redirects: object) -> None:
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
                self.out(line, text, UNTRANSLATED, "pinit mounts one data partition; "
                         f"{self.data.device} is it")
                return
            kept = ",".join(o for o in options if o not in ("rw", "defaults"))
            self.data = Data(device=source, mountpoint=target, fstype=fstype, options=kept)
            self.out(line, text, TRANSLATED, f"the data partition ({source} on {target})")
        else:
            self.out(line, text, UNTRANSLATED, f"a {fstype or 'untyped'} mount pinit has no "
                     "setting for")

    def do_mknod(self, line: int, text: str, args: list[str], redirects: object) -> None:
        mode = 0o644  # mode 0666 under the kernel's umask 022 for init
        if len(args) >= 2 and args[0] == "-m":
            mode, args = int(args[1], 8), args[2:]
        kinds: dict[str, type[cpio.CharDev] | type[cpio.BlockDev]] = {
            "c": cpio.CharDev, "u": cpio.CharDev, "b": cpio.BlockDev}
        if len(args) == 2 and args[1] == "p":
            self.entries.append(cpio.Fifo(args[0], mode))
        elif len(args) == 4 and args[1] in kinds and args[2].isdigit() and args[3].isdigit():
            self.entries.append(kinds[args[1]](args[0], int(args[2]), int(args[3]), mode))
        else:
            self.out(line, text, UNTRANSLATED, "a mknod this translator does not read")
            return
        hidden = " (pinit's devtmpfs covers /dev at boot)" if args[0].startswith("/dev/") else ""
        self.out(line, text, TRANSLATED, f"node {args[0]} in the initramfs{hidden}")

    def do_mkdir(self, line: int, text: str, args: list[str], redirects: object) -> None:
        mode, made, skipped = 0o755, [], []
        if "-m" in args and args.index("-m") + 1 < len(args):
            at = args.index("-m")
            mode, args = int(args[at + 1], 8), args[:at] + args[at + 2:]
        for path in (a for a in args if not a.startswith("-")):
            norm = posixpath.normpath(posixpath.join(self.cwd, path))
            if _under_pinit(norm) or norm == "/":
                skipped.append(norm)
            else:
                self.entries.append(cpio.Dir(norm, mode))
                made.append(norm)
        if made:
            self.out(line, text, TRANSLATED, "directories in the initramfs: " + " ".join(made))
        else:
            self.out(line, text, NOTED, "pinit makes or mounts " + " ".join(skipped) + " itself")

    def do_insmod(self, line: int, text: str, args: list[str], redirects: object) -> None:
        words = [a for a in args if not a.startswith("-")]
        if not words:
            self.out(line, text, UNTRANSLATED, "insmod without a module file")
            return
        path = posixpath.normpath(posixpath.join(self.cwd, words[0]))
        self.modules.append(ModuleLoad(name_of(path), " ".join(words[1:]), path, line))
        self.out(line, text, TRANSLATED, f"module {name_of(path)}")

    def do_modprobe(self, line: int, text: str, args: list[str], redirects: object) -> None:
        flags = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if any(f in ("-r", "--remove") for f in flags) or not words:
            self.out(line, text, UNTRANSLATED, "a modprobe that loads nothing")
            return
        names, params = (words, "") if "-a" in flags else (words[:1], " ".join(words[1:]))
        for name in names:
            self.modules.append(ModuleLoad(name, params, "", line))
        self.out(line, text, TRANSLATED, "module " + " ".join(names))

    def do_echo(self, line: int, text: str, args: list[str],
                redirects: list[tuple[str, str]]) -> None:
        targets = [target for op, target in redirects if op in (">", ">>", ">|")]
        if any(t in HOTPLUG_FILES for t in targets):
            self.out(line, text, NOTED, "the mdev hotplug helper: PID 1 listens to the kernel's "
                     "device events itself")
        elif targets == ["/proc/sys/kernel/hostname"] and len(args) == 1:
            self.hostname = args[0]
            self.out(line, text, TRANSLATED, f"hostname {args[0]}")
        elif _quiet(redirects):
            self.out(line, text, NOTED, "a console message; pinit logs its own steps")
        else:
            self.out(line, text, UNTRANSLATED, f"writes {', '.join(targets)}; pinit has no "
                     "setting for it")

    do_printf = do_echo

    def do_hostname(self, line: int, text: str, args: list[str], redirects: object) -> None:
        if len(args) != 1 or args[0].startswith("-"):
            self.out(line, text, UNTRANSLATED, "only `hostname NAME` is translated")
            return
        self.hostname = args[0]
        self.out(line, text, TRANSLATED, f"hostname {args[0]}")

    def do_export(self, line: int, text: str, args: list[str], redirects: object) -> None:
        for arg in args:
            key, eq, value = arg.partition("=")
            self.vars[key] = value if eq else self.vars.get(key, "")
            self.exported[key] = self.vars[key]
        self.out(line, text, TRANSLATED, "environment of the services: " + " ".join(args))

    def do_cd(self, line: int, text: str, args: list[str], redirects: object) -> None:
        self.cwd = posixpath.normpath(posixpath.join(self.cwd, args[0] if args else "/"))
        self.out(line, text, TRANSLATED, f"working directory {self.cwd} of later services")


def translate(text: str) -> Script:
    """The pinit values a classic `/init` script stands for, and what became of each line."""
    walker = _Walker()
    for number, line in logical_lines(text):
        walker.line(number, line)
    programs = walker.programs
    outcomes = walker.outcomes
    if not walker.exec_line and walker.pending is not None:
        # No exec: the last program the script runs (and waits for) is the appliance itself.
        main = walker.pending
        programs = [*programs, main]
        outcomes = [replace(o, kind=TRANSLATED, what=f"the service {main.path} (the last "
                            "program the script runs)")
                    if o.line == main.line and o.what.startswith("runs ") else o
                    for o in outcomes]
    path = tuple(walker.exported.get("PATH", "").split(":")) if walker.exported.get("PATH") \
        else Script.path
    background = [p for p in programs if p.background]
    return Script(tuple(outcomes), tuple(walker.modules), tuple(walker.entries),
                  (*background, *(p for p in programs if not p.background)), walker.data,
                  walker.hostname, path)


def report(script: Script) -> list[str]:
    """What became of each line, grouped; the untranslated ones are never left out."""
    titles = {TRANSLATED: "translated:", NOTED: "not needed (pinit does it, or only a shell "
              "needed it):", UNTRANSLATED: "NOT translated - check these by hand:"}
    lines: list[str] = []
    for kind, title in titles.items():
        found = [f"  line {o.line}: {o.text}\n      -> {o.what}"
                 for o in script.outcomes if o.kind == kind]
        lines += [title, *found] if found else [f"{title} none"]
    return lines
