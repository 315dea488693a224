"""Translate a classic busybox `/init` shell script into pinit values, by what it means.

Pure: text in, values out; the old initramfs is looked at by sources.py, not here. The script
is parsed (shparse.py) and its syntax tree walked in the order the shell would run it, keeping
the shell's state (variables, exported ones, the working directory, functions). Every command
ends up in exactly one of three places: "translated" into a value, "noted" (pinit does it
itself, or it only mattered to a shell), or "untranslated", with a reason a person can act on.
Only comments, blank lines and the #! line are skipped without a word.

What the usual idioms become: `exec APP` (with `env VAR=…`, `VAR=… APP`, a `cd` before it) the
service; `while true; do APP; sleep N; done` the service with restart "always" and N seconds
between runs; `APP &` … `wait` one service each; `[ -e DEV ] && mount …`, `if [ -b DEV ]; then
mount …; fi` and `mount … || true` the data partition, optional; a loop waiting for a device the
services' wait; modprobe/insmod also from `for` loops over a list; `ifconfig lo up` done by
pinit; the rest of the network set-up listed (network()).
"""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, replace

from builder import cpio
from builder.shparse import (
    AndOr,
    Case,
    For,
    Function,
    Group,
    If,
    Item,
    Loop,
    Node,
    ParseError,
    Pipeline,
    Redirect,
    Sequence,
    Simple,
    Word,
    parse,
)
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
NOTES = {"mdev": "devtmpfs makes the device nodes and pinit's coldplug and hotplug load their "
                 "modules ([kernel] available); no mdev needed",
         "sleep": "a pause; pinit waits for the data partition itself ([data] wait)",
         "wait": "waits for the programs started with &: pinit supervises them as services",
         **{name: "a shell built-in; pinit runs no shell" for name in
            ("set", "trap", "true", ":", "clear", "sync", "shift", "unset", "reset")}}
# Commands that are never the appliance's program: busybox applets and system tools.
APPLETS = {"sh", "ash", "bash", "hush", "busybox", "hwclock", "date", "sysctl", "cp", "mv", "rm",
           "cat", "chmod", "chown", "touch", "dmesg", "klogd", "syslogd", "logger", "telnetd",
           "httpd", "getty", "login", "setsid", "cttyhack", "switch_root", "chroot", "pivot_root",
           "poweroff", "reboot", "halt", "umount", "swapon", "fsck", "e2fsck", "stty", "ntpd",
           "crond", "loadkmap", "init", "linuxrc", "umask", "ulimit", "source", ".", "test", "[",
           "exit", "read", "ln", "mknod", "mkdir", "mount", "insmod", "modprobe", "hostname",
           "cd", "export", "false", "grep", "sed", "awk", "tee", "kill", "killall", "env", "eval",
           "return", "break", "continue", "printf", "echo", "sleep", "wait", "mdev"}
NETWORK = {"ifconfig", "ip", "route", "udhcpc", "dhcpcd", "dhclient", "ifup", "ifdown"}
NO_NETWORK = "pinit has no network configuration yet; add [network] by hand"
LOGGERS = {"logger", "tee"}      # `APP | logger`: pinit logs a service's output itself
TRUE = {"true", ":", "/bin/true", "/usr/bin/true"}
PATH_TESTS = {"-e", "-b", "-c", "-f", "-d", "-L", "-h", "-r", "-w", "-x", "-s"}


@dataclass(frozen=True)
class Outcome:
    line: int        # 1-based line number in /init
    text: str        # the command as written
    kind: str        # translated | noted | untranslated
    what: str        # what it became, or why not
    subject: str = ""   # the program or module it made, for demote()


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
    restart: str = ""                  # "always" from a restart loop; "" = pinit's default
    backoff: float = 0.0               # the loop's sleep between runs; 0 = pinit's default
    wait_for: tuple[str, ...] = ()     # paths a loop before it waited for


@dataclass(frozen=True)
class Script:
    outcomes: tuple[Outcome, ...]
    modules: tuple[ModuleLoad, ...] = ()
    entries: tuple[cpio.Entry, ...] = ()   # from mknod and mkdir
    programs: tuple[Program, ...] = ()     # background ones first, the main program last
    data: Data | None = None
    hostname: str = ""
    path: tuple[str, ...] = ("/sbin", "/usr/sbin", "/bin", "/usr/bin")  # PATH for bare names
    switch_root: str = ""                  # the device a switch_root script hands over to


def demote(script: Script, line: int, subject: str, why: str) -> Script:
    """The script with `subject` (a program or module) of line `line` moved to "untranslated"
    and dropped."""
    def hit(o: Outcome) -> bool:
        return o.line == line and o.subject == subject

    outcomes = tuple(replace(o, kind=UNTRANSLATED, what=why) if hit(o) else o
                     for o in script.outcomes)
    return replace(script, outcomes=outcomes,
                   programs=tuple(p for p in script.programs
                                  if (p.line, p.path) != (line, subject)),
                   modules=tuple(m for m in script.modules
                                 if (m.line, m.path or m.name) != (line, subject)))


def network(words: list[str]) -> tuple[str, str]:
    """(kind, what) for a network command; the one place that knows pinit's network set-up."""
    name = posixpath.basename(words[0])
    rest = words[1:]
    loopback = (name == "ifconfig" and rest[:1] == ["lo"]
                or name == "ip" and "lo" in rest and rest[:2] in (["link", "set"], ["addr", "add"],
                                                                   ["address", "add"]))
    if loopback:
        return NOTED, "pinit brings up the loopback interface (lo) itself"
    return UNTRANSLATED, NO_NETWORK


def _quiet(redirects: list[tuple[str, str]]) -> bool:
    return all(op in (">&", "<&") or target in QUIET_TARGETS for op, target in redirects)


def _dropped(redirects: list[tuple[str, str]]) -> str:
    if _quiet(redirects):
        return ""
    return (" (not kept: its redirection " + " ".join(f"{op} {t}" for op, t in redirects)
            + "; pinit logs a service's output)")


def _under_pinit(path: str) -> bool:
    """Whether pinit mounts over `path` at boot, hiding anything the initramfs has there."""
    return any(path == d or path.startswith(d + "/") for d in PINIT_DIRS)


def _number(text: str) -> float | None:
    try:
        return float(text.rstrip("s"))
    except ValueError:
        return None


@dataclass(frozen=True)
class _Context:
    background: bool = False   # started with & (itself or a group around it)
    guard: str = ""            # "only if /dev/x exists": a test this command depends on
    loop: bool = False         # inside a restart loop: the program is looked at by loop()


class _Stop(Exception):
    """The script ends here: an exec, or an endless loop, ran (the line given)."""

    def __init__(self, line: int, why: str) -> None:
        self.line, self.why = line, why


class _Walker:
    """Walks the tree in the shell's order, keeping the state later commands depend on."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.outcomes: list[Outcome] = []
        self.modules: list[ModuleLoad] = []
        self.entries: list[cpio.Entry] = []
        self.programs: list[Program] = []
        self.pending: Program | None = None   # the last foreground program run
        self.data: Data | None = None
        self.data_line = 0
        self.hostname = ""
        self.vars: dict[str, str] = {}
        self.exported: dict[str, str] = {}
        self.functions: dict[str, Node] = {}
        self.waited: list[str] = []           # paths a loop waited for
        self.positional: list[str] = []        # $1 … inside a function call
        self.cwd = "/"
        self.switch_root = ""
        self.depth = 0

    def out(self, line: int, text: str, kind: str, what: str, subject: str = "") -> None:
        self.outcomes.append(Outcome(line, text, kind, what, subject))

    def source(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    # ---- expansion: only what is known when building

    def expand(self, word: Word) -> list[str] | None:
        """The fields `word` expands to, or None when it needs the running system."""
        parts = [p for p in word.parts if p.kind != "lit" or p.text]
        if len(parts) == 1 and parts[0].kind == "param" and parts[0].text in ("@", "*"):
            return list(self.positional)  # "$@": one field per argument
        value, split = "", False
        for part in word.parts:
            if part.kind == "lit" and not part.quoted and _glob(part.text):
                return None   # pathname expansion: the files are only known at run time
            if part.kind == "lit":
                value += part.text
            elif part.kind == "param":
                name, op, default = part.text, "", ""
                for sep in (":-", "-"):
                    if sep in part.text:
                        name, op, default = part.text.partition(sep)
                        break
                known = {**self.vars, "#": str(len(self.positional)),
                         **{str(i): v for i, v in enumerate(self.positional, start=1)}}
                if name in known and not (op == ":-" and known[name] == ""):
                    value += known[name]
                elif op:
                    value += default
                else:
                    return None
                split = split or not part.quoted
            else:
                return None
        if split:
            return value.split()
        return [value]

    def expand_all(self, words: tuple[Word, ...]) -> list[str] | None:
        out: list[str] = []
        for word in words:
            fields = self.expand(word)
            if fields is None:
                return None
            out += fields
        return out

    def redirects(self, redirects: tuple[Redirect, ...]) -> list[tuple[str, str]]:
        found = []
        for r in redirects:
            target = self.expand(r.target)
            found.append((r.op, " ".join(target) if target is not None else r.target.source))
        return found

    # ---- the tree

    def sequence(self, seq: Sequence, ctx: _Context) -> None:
        for item in seq.items:
            self.item(item, ctx)

    def item(self, item: Item, ctx: _Context) -> None:
        self.node(item.command, replace(ctx, background=ctx.background or item.background))

    def node(self, node: Node, ctx: _Context) -> None:
        if isinstance(node, Simple):
            self.simple(node, ctx)
        elif isinstance(node, AndOr):
            self.and_or(node, ctx)
        elif isinstance(node, Pipeline):
            self.pipeline(node, ctx)
        elif isinstance(node, Sequence):
            self.sequence(node, ctx)
        elif isinstance(node, Group):
            self.group(node, ctx)
        elif isinstance(node, If):
            self.if_(node, ctx)
        elif isinstance(node, Loop):
            self.loop(node, ctx)
        elif isinstance(node, For):
            self.for_(node, ctx)
        elif isinstance(node, Case):
            self.case(node, ctx)
        elif isinstance(node, Function):
            self.functions[node.name] = node.body
            self.out(node.line, self.source(node.line), NOTED,
                     f"function {node.name}: translated where it is called")

    def leave(self, node: Node, why: str) -> None:
        """Every command under `node` untranslated, for `why`."""
        for line, text in _commands(node):
            self.out(line, text, UNTRANSLATED, why)

    def group(self, node: Group, ctx: _Context) -> None:
        if not node.subshell:
            self.sequence(node.body, ctx)
            return
        saved = (self.cwd, dict(self.vars), dict(self.exported))
        try:
            self.sequence(node.body, ctx)
        except _Stop:
            pass   # an exec inside ( … ) ends the subshell, not the script
        self.cwd, self.vars, self.exported = saved

    def test_path(self, node: Node) -> tuple[str, str, bool] | None:
        """(operator, path, negated) of `[ -e PATH ]`, `test -b PATH`, `[ ! -e PATH ]`."""
        if not isinstance(node, Simple) or node.assigns:
            return None
        words = self.expand_all(node.words)
        if not words or words[0] not in ("[", "test"):
            return None
        words = words[1:-1] if words[0] == "[" and words[-1:] == ["]"] else words[1:]
        negated = words[:1] == ["!"]
        words = words[1:] if negated else words
        if len(words) == 2 and words[0] in PATH_TESTS:
            return words[0], posixpath.normpath(words[1]), negated
        return None

    def and_or(self, node: AndOr, ctx: _Context) -> None:
        test = self.test_path(node.first)
        if test and not test[2] and all(op == "&&" for op, _ in node.rest):
            for _, pipeline in node.rest:
                self.node(pipeline, replace(ctx, guard=test[1]))
            return
        tolerant = node.rest[-1][0] == "||" and _is_true(node.rest[-1][1])
        self.node(node.first, replace(ctx, guard=ctx.guard or ("" if not tolerant else "-")))
        for op, pipeline in node.rest:
            if op == "||" and _is_true(pipeline):
                assert isinstance(pipeline, Simple)
                self.out(pipeline.line, _text(pipeline), NOTED, "ignores a failure of the "
                         "command before it")
            else:
                self.node(pipeline, ctx)

    def pipeline(self, node: Pipeline, ctx: _Context) -> None:
        first, rest = node.commands[0], node.commands[1:]
        tail = [self.expand_all(c.words) if isinstance(c, Simple) else None for c in rest]
        if (not node.negated and isinstance(first, Simple) and rest
                and all(t and posixpath.basename(t[0]) in LOGGERS for t in tail)):
            self.simple(first, ctx)
            for cmd in rest:
                self.out(cmd.line, _text(cmd), NOTED, "a logger for the program's output: pinit "
                         "keeps each service's output (log_lines, log_to_data)")
            return
        self.leave(node, "a pipeline (A | B) whose parts only mean something together; pinit "
                   "runs no shell: give the program in a pinit.toml")

    def if_(self, node: If, ctx: _Context) -> None:
        condition, body = node.clauses[0]
        test = self.test_path(condition.items[0].command) if len(condition.items) == 1 else None
        if test is None or len(node.clauses) > 1:
            self.leave(node, f"inside `{self.source(node.line)}` (line {node.line}): a condition "
                       "only the running system can decide; pinit runs no shell")
            return
        op, path, negated = test
        self.out(node.line, self.source(node.line), NOTED,
                 f"a test whether {path} {'is missing' if negated else 'exists'}: "
                 "the commands it guards say what they became")
        yes, no = (node.otherwise, body) if negated else (body, node.otherwise)
        if yes is not None:
            self.sequence(yes, replace(ctx, guard=path))
        if no is not None:
            self.leave(no, f"runs only when {path} is missing (line {node.line}); pinit runs "
                       "no shell: if it matters, give it in a pinit.toml")

    def loop(self, node: Loop, ctx: _Context) -> None:
        cond = node.condition.items
        forever = len(cond) == 1 and isinstance(cond[0].command, Simple) and (
            _is_true(cond[0].command) != node.until
            or node.until and self.expand_all(cond[0].command.words) == ["false"])
        if forever:
            self.restart_loop(node, ctx)
            return
        test = self.test_path(cond[0].command) if len(cond) == 1 else None
        waits = test is not None and test[2] != node.until   # while ! -e X / until -e X
        body = list(_commands(node.body))
        if waits and test and all(text.split()[:1] in (["sleep"], ["echo"]) for _, text in body):
            self.waited.append(test[1])
            self.out(node.line, self.source(node.line), TRANSLATED,
                     f"waits for {test[1]}: the services wait for it (wait_for), or the data "
                     "partition ([data] wait) when it is that")
            for line, text in body:
                self.out(line, text, NOTED, "a pause or message while waiting")
            return
        self.leave(node, f"inside `{self.source(node.line)}` (line {node.line}): a loop on a "
                   "condition only the running system can decide; pinit runs no shell")

    def restart_loop(self, node: Loop, ctx: _Context) -> None:
        """`while true; do APP; sleep N; done`: APP with restart = "always", N as its backoff."""
        before = len(self.programs), self.pending
        mark = len(self.outcomes)
        self.sequence(node.body, replace(ctx, loop=True))
        runs = [o for o in self.outcomes[mark:] if o.subject and o.what.startswith("runs ")]
        program = self.pending
        sleeps = [_number(o.text.split()[1]) for o in self.outcomes[mark:]
                  if o.text.split()[:1] == ["sleep"] and len(o.text.split()) == 2]
        del self.programs[before[0]:]
        self.pending = before[1]
        if len(runs) != 1 or program is None:
            self.outcomes[mark:] = []
            self.leave(node, f"inside `{self.source(node.line)}` (line {node.line}): an endless "
                       f"loop around {len(runs) or 'no'} programs; pinit restarts one program "
                       "per service: give them in a pinit.toml")
            return
        backoff = sum(s for s in sleeps if s is not None)
        program = replace(program, restart="always", backoff=backoff, background=ctx.background)
        for i in range(mark, len(self.outcomes)):
            o = self.outcomes[i]
            if o.subject == program.path and o.line == program.line:
                self.outcomes[i] = replace(o, kind=TRANSLATED, what=(
                    f"the service {program.path}, restarted whenever it exits (restart = "
                    f"\"always\"" + (f", backoff {backoff:g} s" if backoff else "") + ")"))
            elif o.text.split()[:1] == ["sleep"]:
                self.outcomes[i] = replace(o, kind=NOTED, what="the pause between restarts: "
                                           "the service's backoff")
        self.out(node.line, self.source(node.line), NOTED, "an endless loop: pinit restarts "
                 "the program in it; its crash_loop rule still applies")
        self.programs.append(program)
        if not ctx.background:
            raise _Stop(node.end, f"after the endless loop of line {node.line}: never ran")

    def for_(self, node: For, ctx: _Context) -> None:
        values = self.expand_all(node.words) if node.words is not None else None
        if values is None:
            self.leave(node, f"inside `{self.source(node.line)}` (line {node.line}): a loop "
                       "over values only the running system knows")
            return
        self.out(node.line, self.source(node.line), NOTED,
                 f"a loop over {' '.join(values) or 'nothing'}: each run's commands are below")
        for value in values:
            self.vars[node.name] = value
            self.sequence(node.body, ctx)

    def case(self, node: Case, ctx: _Context) -> None:
        subject = self.expand(node.word)
        if subject is None:
            self.leave(node, f"inside `{self.source(node.line)}` (line {node.line}): decides on "
                       f"{node.word.source}, known only to the running system")
            return
        value = " ".join(subject)
        taken = None
        for patterns, body in node.items:
            pats = [" ".join(self.expand(p) or [p.source]) for p in patterns]
            if taken is None and any(fnmatch.fnmatchcase(value, p) for p in pats):
                taken = body
                self.out(node.line, self.source(node.line), NOTED,
                         f"{node.word.source} is {value!r} here: the branch {'|'.join(pats)}")
            else:
                for line, text in _commands(body):
                    self.out(line, text, NOTED, f"a branch not taken: {node.word.source} is "
                             f"{value!r} here")
        if taken is None:
            self.out(node.line, self.source(node.line), NOTED, f"no branch matches {value!r}")
        else:
            self.sequence(taken, ctx)

    # ---- simple commands

    def simple(self, node: Simple, ctx: _Context) -> None:
        text = _text(node)
        words = self.expand_all(node.words)
        env: dict[str, str] = {}
        for name, value in node.assigns:
            fields = self.expand(value)
            if fields is None:
                if not node.words:
                    self.vars.pop(name, None)
                    self.exported.pop(name, None)
                    self.out(node.line, text, NOTED, f"shell variable {name}, whose value only "
                             "the running system knows")
                    return
                words = None
                break
            env[name] = " ".join(fields)
        if words is None and node.words and node.words[0].literal in ("echo", "printf") \
                and _quiet(self.redirects(node.redirects)):
            self.out(node.line, text, NOTED, "a console message; pinit logs its own steps")
            return
        if words is None:
            self.out(node.line, text, UNTRANSLATED, "uses a shell variable or command "
                     "substitution whose value is not known here")
            return
        redirects = self.redirects(node.redirects)
        if not words:
            if redirects:
                self.out(node.line, text, UNTRANSLATED, "a bare redirection; pinit runs no shell")
                return
            self.vars.update(env)
            for name in env:
                if name in self.exported:
                    self.exported[name] = env[name]
            self.out(node.line, text, NOTED, "shell variable " + ", ".join(env))
            return
        self.command(node.line, text, words, env, redirects, ctx)

    def command(self, line: int, text: str, words: list[str], env: dict[str, str],
                redirects: list[tuple[str, str]], ctx: _Context, exec_: bool = False) -> None:
        name = posixpath.basename(words[0])
        if name == "busybox" and len(words) > 1:
            if words[1].startswith("--install"):
                self.out(line, text, NOTED, "busybox applet links: the new initramfs has no busybox")
                return
            words, name = words[1:], words[1]
        if name == "exec":
            if len(words) == 1:
                self.out(line, text, NOTED, "console redirection; pinit sets up the console")
                return
            self.command(line, text, words[1:], env, redirects, ctx, exec_=True)
            return
        if name == "env":
            rest = words[1:]
            if rest[:1] == ["-i"]:
                rest = rest[1:]
                self.exported = {}
            while rest and "=" in rest[0] and rest[0].partition("=")[0].isidentifier():
                key, _, value = rest.pop(0).partition("=")
                env[key] = value
            if rest:
                self.command(line, text, rest, env, redirects, ctx, exec_)
                return
        if name in self.functions and self.depth < 20:
            self.out(line, text, NOTED, f"calls the function {name}: what its commands became "
                     "is said at their lines")
            saved, self.positional = self.positional, words[1:]
            self.depth += 1
            try:
                self.node(self.functions[name], ctx)
            finally:
                self.depth -= 1
                self.positional = saved
            return
        handler = getattr(self, f"do_{name.replace('-', '_')}", None)
        if name == "switch_root":
            self.do_switch_root(line, text, words[1:])
        elif name in NETWORK:
            kind, what = network(words)
            self.out(line, text, kind, what)
        elif handler is not None and not env:
            try:
                handler(line, text, words[1:], redirects, ctx)
            except (ValueError, IndexError, BuildError) as exc:
                self.out(line, text, UNTRANSLATED, f"cannot read it: {exc}")
        elif name in NOTES:
            self.out(line, text, NOTED, NOTES[name])
        elif name in APPLETS:
            what = f"{name}: no pinit equivalent"
            if exec_:
                what = (f"exec {name}: pinit runs from the initramfs and has no shell; give the "
                        "app in pinit.toml")
            self.out(line, text, UNTRANSLATED, what)
        else:
            self.program(line, text, words, env, redirects, ctx, exec_)

    def program(self, line: int, text: str, words: list[str], env: dict[str, str],
                redirects: list[tuple[str, str]], ctx: _Context, exec_: bool) -> None:
        waits = tuple(p for p in self.waited if p != (self.data.device if self.data else ""))
        program = Program(words[0], tuple(words[1:]),
                          tuple(sorted({**self.exported, **env}.items())), self.cwd, line,
                          ctx.background, wait_for=waits)
        if ctx.guard and ctx.guard != "-":
            self.out(line, text, UNTRANSLATED, f"runs {words[0]} only if {ctx.guard} exists; "
                     "pinit starts services unconditionally: give it in a pinit.toml")
            return
        if ctx.background and not ctx.loop:
            self.programs.append(program)
            self.out(line, text, TRANSLATED, f"service {words[0]} (started beside the "
                     f"app){_dropped(redirects)}", words[0])
        elif exec_ and not ctx.loop:
            self.programs.append(program)
            self.out(line, text, TRANSLATED, f"the service {words[0]}{_dropped(redirects)}",
                     words[0])
            raise _Stop(line, f"after the exec on line {line}: never ran")
        else:
            self.pending = program
            self.out(line, text, UNTRANSLATED,
                     f"runs {words[0]} and waits for it; pinit starts services, not steps",
                     words[0])

    def do_switch_root(self, line: int, text: str, args: list[str]) -> None:
        root = posixpath.normpath(args[0]) if args else ""
        if self.data is not None and self.data.mountpoint == root:
            self.switch_root = self.data.device
            self.data = None
            self.outcomes = [replace(o, kind=UNTRANSLATED, what=f"the root file system that "
                                     f"line {line} switches to, not a data partition")
                             if o.line == self.data_line else o for o in self.outcomes]
        self.out(line, text, UNTRANSLATED,
                 f"hands the machine to the init of {self.switch_root or 'another root'} "
                 f"({' '.join(args[1:]) or '/sbin/init'}); pinit runs from the initramfs: give "
                 "the program that init starts in a pinit.toml (--config)")
        raise _Stop(line, f"after the switch_root on line {line}: never ran")

    def do_mount(self, line: int, text: str, args: list[str], redirects: object,
                 ctx: _Context) -> None:
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
            optional = bool(ctx.guard)
            waited = source in self.waited
            # A guard looks once, at that moment: the same is no wait, going on without it.
            self.data = Data(device=source, mountpoint=target, fstype=fstype, options=kept,
                             required=not optional,
                             wait=Data.wait if waited or not optional else 0.0)
            self.data_line = line
            how = ("; the script waited for it ([data] wait)" if waited
                   else "; optional, no wait: the script mounts it only if it is there already"
                   if optional else "")
            self.out(line, text, TRANSLATED, f"the data partition ({source} on {target}{how})")
        else:
            self.out(line, text, UNTRANSLATED, f"a {fstype or 'untyped'} mount pinit has no "
                     "setting for")

    def do_mknod(self, line: int, text: str, args: list[str], redirects: object,
                 ctx: _Context) -> None:
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

    def do_mkdir(self, line: int, text: str, args: list[str], redirects: object,
                 ctx: _Context) -> None:
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

    def do_insmod(self, line: int, text: str, args: list[str], redirects: object,
                  ctx: _Context) -> None:
        words = [a for a in args if not a.startswith("-")]
        if not words:
            self.out(line, text, UNTRANSLATED, "insmod without a module file")
            return
        path = posixpath.normpath(posixpath.join(self.cwd, words[0]))
        self.modules.append(ModuleLoad(name_of(path), " ".join(words[1:]), path, line))
        self.out(line, text, TRANSLATED, f"module {name_of(path)}" + _params(words[1:]), path)

    def do_modprobe(self, line: int, text: str, args: list[str], redirects: object,
                    ctx: _Context) -> None:
        flags = [a for a in args if a.startswith("-")]
        words = [a for a in args if not a.startswith("-")]
        if any(f in ("-r", "--remove") for f in flags) or not words:
            self.out(line, text, UNTRANSLATED, "a modprobe that loads nothing")
            return
        names, params = (words, "") if "-a" in flags else (words[:1], " ".join(words[1:]))
        for name in names:
            self.modules.append(ModuleLoad(name, params, "", line))
            self.out(line, text, TRANSLATED, f"module {name}" + _params(params.split()), name)

    def do_echo(self, line: int, text: str, args: list[str],
                redirects: list[tuple[str, str]], ctx: _Context) -> None:
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

    def do_hostname(self, line: int, text: str, args: list[str], redirects: object,
                    ctx: _Context) -> None:
        if len(args) != 1 or args[0].startswith("-"):
            self.out(line, text, UNTRANSLATED, "only `hostname NAME` is translated")
            return
        self.hostname = args[0]
        self.out(line, text, TRANSLATED, f"hostname {args[0]}")

    def do_export(self, line: int, text: str, args: list[str], redirects: object,
                  ctx: _Context) -> None:
        for arg in args:
            key, eq, value = arg.partition("=")
            self.vars[key] = value if eq else self.vars.get(key, "")
            self.exported[key] = self.vars[key]
        self.out(line, text, TRANSLATED, "environment of the services: " + " ".join(args))

    def do_cd(self, line: int, text: str, args: list[str], redirects: object,
              ctx: _Context) -> None:
        self.cwd = posixpath.normpath(posixpath.join(self.cwd, args[0] if args else "/"))
        self.out(line, text, TRANSLATED, f"working directory {self.cwd} of later services")


def _glob(text: str) -> bool:
    return "*" in text or "?" in text or ("[" in text and "]" in text[text.index("["):]
                                          and text not in ("[", "]"))


def _params(words: list[str]) -> str:
    return f" ({' '.join(words)})" if words else ""


def _is_true(node: Node) -> bool:
    return (isinstance(node, Simple) and not node.assigns and len(node.words) == 1
            and node.words[0].literal in TRUE)


def _text(node: Node) -> str:
    """A simple command as written (its quotes kept), on one line."""
    if not isinstance(node, Simple):
        return ""
    parts = [f"{name}={value.source}" for name, value in node.assigns]
    parts += [w.source for w in node.words]
    parts += [f"{r.fd if r.fd is not None else ''}{r.op}{r.target.source}" for r in node.redirects]
    return " ".join(parts)


def _commands(node: Node) -> list[tuple[int, str]]:
    """(line, text) of every simple command under `node`, in order."""
    if isinstance(node, Simple):
        return [(node.line, _text(node))]
    if isinstance(node, Sequence):
        return [c for item in node.items for c in _commands(item.command)]
    if isinstance(node, AndOr):
        return _commands(node.first) + [c for _, p in node.rest for c in _commands(p)]
    if isinstance(node, Pipeline):
        return [c for p in node.commands for c in _commands(p)]
    if isinstance(node, Group):
        return _commands(node.body)
    if isinstance(node, If):
        found = [c for cond, body in node.clauses for c in _commands(cond) + _commands(body)]
        return found + (_commands(node.otherwise) if node.otherwise else [])
    if isinstance(node, Loop):
        return _commands(node.condition) + _commands(node.body)
    if isinstance(node, For):
        return _commands(node.body)
    if isinstance(node, Case):
        return [c for _, body in node.items for c in _commands(body)]
    if isinstance(node, Function):
        return _commands(node.body)
    return []


def translate(text: str) -> Script:
    """The pinit values a classic `/init` script stands for, and what became of each command."""
    walker = _Walker(text.splitlines())
    try:
        tree = parse(text)
    except ParseError as exc:
        return Script((Outcome(exc.line, walker.source(exc.line), UNTRANSLATED,
                               f"the shell cannot parse the script here: {exc.message}; "
                               "nothing of it was translated"),))
    for index, item in enumerate(tree.items):
        try:
            walker.item(item, _Context())
        except _Stop as stop:
            # What the walk never reached, from the command that ended the script on.
            seen = {(o.line, o.text) for o in walker.outcomes}
            for rest in tree.items[index:]:
                for line, cmd in _commands(rest.command):
                    if (line, cmd) not in seen:
                        walker.out(line, cmd, NOTED, stop.why)
            break
    programs = walker.programs
    outcomes = walker.outcomes
    main = walker.pending
    if main is not None and not any(not p.background for p in programs):
        # No exec: the last program the script runs (and waits for) is the appliance itself.
        programs = [*programs, main]
        outcomes = [replace(o, kind=TRANSLATED, what=f"the service {main.path} (the last "
                            "program the script runs)")
                    if (o.line, o.subject) == (main.line, main.path) and o.what.startswith("runs ")
                    else o for o in outcomes]
    path = tuple(walker.exported.get("PATH", "").split(":")) if walker.exported.get("PATH") \
        else Script.path
    background = [p for p in programs if p.background]
    return Script(tuple(sorted(outcomes, key=lambda o: o.line)), tuple(walker.modules),
                  tuple(walker.entries),
                  (*background, *(p for p in programs if not p.background)), walker.data,
                  walker.hostname, path, walker.switch_root)


def report(script: Script) -> list[str]:
    """What became of each command, grouped; the untranslated ones are never left out."""
    titles = {TRANSLATED: "translated:", NOTED: "not needed (pinit does it, or only a shell "
              "needed it):", UNTRANSLATED: "NOT translated - check these by hand:"}
    lines: list[str] = []
    for kind, title in titles.items():
        found = [f"  line {o.line}: {o.text}\n      -> {o.what}"
                 for o in script.outcomes if o.kind == kind]
        lines += [title, *found] if found else [f"{title} none"]
    return lines
