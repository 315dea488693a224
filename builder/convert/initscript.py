"""Translate a classic busybox `/init` shell script into pinit values, by what it means.

Pure: text in, values out; the old initramfs is looked at by sources.py, not here. The script
is parsed (parse.py) and its syntax tree walked in the order the shell would run it, keeping
the shell's state (variables, exported ones, the working directory, functions). Every command
ends up in exactly one of three places: "translated" into a value, "noted" (pinit does it
itself, or it only mattered to a shell), or "untranslated", with a reason a person can act on.
Only comments, blank lines and the #! line are skipped without a word.

What the usual idioms become: `exec APP` (with `env VAR=…`, `VAR=… APP`, a `cd` before it) the
service; `while true; do APP; sleep N; done` the service with restart "always" and N seconds
between runs; `APP &` … `wait` one service each; `[ -e DEV ] && mount …`, `if [ -b DEV ]; then
mount …; fi` and `mount … || true` the data partition, optional; a loop waiting for a device the
services' wait; modprobe/insmod also from `for` loops over a list; `ifconfig lo up` done by
pinit; udhcpc, ifconfig/ip addresses, default routes, name servers and ntpd the [network] and
[time] tables (netcommands.py).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace

from builder.convert.commands import (
    APPLETS,
    LOGGERS,
    NET,
    NOTED,
    NOTES,
    PATH_TESTS,
    TRANSLATED,
    TRUE,
    UNTRANSLATED,
    Context,
    ModuleLoad,
    Outcome,
    SetupCommands,
    Stop,
    dropped,
    number,
    quiet,
)
from builder.convert.netcommands import NETWORK, TIME, NetSetting, settle
from builder.convert.sh.parse import parse
from builder.convert.sh.tree import (
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
    commands,
    text_of,
)
from builder.formats import cpio
from hostkit.errors import BuildError
from init.config import Data, Network, Time


@dataclass(frozen=True)
class Program:
    path: str  # as the script names it: absolute or looked up in PATH
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]  # exported variables and VAR=value prefixes
    cwd: str
    line: int
    background: bool  # `prog &`: runs beside the main program
    restart: str = ""  # "always" from a restart loop; "" = pinit's default
    backoff: float = 0.0  # the loop's sleep between runs; 0 = pinit's default
    wait_for: tuple[str, ...] = ()  # paths a loop before it waited for


@dataclass(frozen=True)
class Script:
    outcomes: tuple[Outcome, ...]
    modules: tuple[ModuleLoad, ...] = ()
    entries: tuple[cpio.Entry, ...] = ()  # from mknod and mkdir
    programs: tuple[Program, ...] = ()  # background ones first, the main program last
    data: Data | None = None
    hostname: str = ""
    network: tuple[Network, ...] = ()  # [network] tables, from the network commands
    time: Time = Time()  # [time], from ntpd, ntpdate or rdate
    path: tuple[str, ...] = ("/sbin", "/usr/sbin", "/bin", "/usr/bin")  # PATH for bare names
    switch_root: str = ""  # the device a switch_root script hands over to


def demote(script: Script, line: int, subject: str, why: str) -> Script:
    """The script with `subject` (a program or module) of line `line` moved to "untranslated"
    and dropped."""

    def hit(o: Outcome) -> bool:
        return o.line == line and o.subject == subject

    outcomes = tuple(
        replace(o, kind=UNTRANSLATED, what=why) if hit(o) else o for o in script.outcomes
    )
    return replace(
        script,
        outcomes=outcomes,
        programs=tuple(p for p in script.programs if (p.line, p.path) != (line, subject)),
        modules=tuple(m for m in script.modules if (m.line, m.path or m.name) != (line, subject)),
    )


# What a restart loop does when it gives up (`[ $n -gt 5 ] && reboot`).
GIVE_UP = (["reboot"], ["poweroff"], ["halt"], ["exit"], ["break"])


class _Walker(SetupCommands):
    """Walks the tree in the shell's order, keeping the state later commands depend on."""

    def __init__(
        self, lines: list[str], files: Callable[[str], str | None] = lambda path: None
    ) -> None:
        self.lines = lines
        self.files = files
        self.outcomes: list[Outcome] = []
        self.modules: list[ModuleLoad] = []
        self.entries: list[cpio.Entry] = []
        self.programs: list[Program] = []
        self.pending: Program | None = None  # the last foreground program run
        self.ran: list[Program] = []  # every foreground program run, in order
        self.pauses: list[tuple[int, float]] = []  # (line, seconds) of each `sleep N`
        self.data: Data | None = None
        self.data_line = 0
        self.hostname = ""
        self.net: list[NetSetting] = []
        self.vars: dict[str, str] = {}
        self.exported: dict[str, str] = {}
        self.functions: dict[str, Node] = {}
        self.called: set[str] = set()
        self.waited: list[str] = []  # paths a loop waited for
        self.positional: list[str] = []  # $1 … inside a function call
        self.cwd = "/"
        self.switch_root = ""
        self.depth = 0

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
                return None  # pathname expansion: the files are only known at run time
            if part.kind == "lit":
                value += part.text
            elif part.kind == "param":
                name, op, default = part.text, "", ""
                for sep in (":-", "-"):
                    if sep in part.text:
                        name, op, default = part.text.partition(sep)
                        break
                known = {
                    **self.vars,
                    "#": str(len(self.positional)),
                    **{str(i): v for i, v in enumerate(self.positional, start=1)},
                }
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

    def sequence(self, seq: Sequence, ctx: Context) -> None:
        for item in seq.items:
            self.item(item, ctx)

    def item(self, item: Item, ctx: Context) -> None:
        self.node(item.command, replace(ctx, background=ctx.background or item.background))

    def node(self, node: Node, ctx: Context) -> None:
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
            self.out(
                node.line,
                self.source(node.line),
                NOTED,
                f"function {node.name}: translated where it is called",
            )

    def leave(self, node: Node, why: str) -> None:
        """Every command under `node` untranslated, for `why`."""
        for line, text in commands(node):
            self.out(line, text, UNTRANSLATED, why)

    def group(self, node: Group, ctx: Context) -> None:
        if not node.subshell:
            self.sequence(node.body, ctx)
            return
        saved = (self.cwd, dict(self.vars), dict(self.exported))
        try:
            self.sequence(node.body, ctx)
        except Stop:
            pass  # an exec inside ( … ) ends the subshell, not the script
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

    def and_or(self, node: AndOr, ctx: Context) -> None:
        test = self.test_path(node.first)
        guard = test[1] if test and not test[2] and node.rest[0][0] == "&&" else ""
        if not guard:
            # `CMD || true`, `CMD || echo …`: the script goes on whether CMD worked or not.
            handled = any(op == "||" and (_is_true(p) or _is_message(p)) for op, p in node.rest)
            self.node(node.first, replace(ctx, tolerant=ctx.tolerant or handled))
        for op, pipeline in node.rest:
            if op == "||":
                guard = ""  # what follows runs when the test or the step before failed
            if op == "||" and _is_true(pipeline):
                assert isinstance(pipeline, Simple)
                self.out(
                    pipeline.line,
                    text_of(pipeline),
                    NOTED,
                    "ignores a failure of the command before it",
                )
            else:
                self.node(pipeline, replace(ctx, guard=guard) if guard else ctx)

    def pipeline(self, node: Pipeline, ctx: Context) -> None:
        first, rest = node.commands[0], node.commands[1:]
        tail = [self.expand_all(c.words) if isinstance(c, Simple) else None for c in rest]
        if (
            not node.negated
            and isinstance(first, Simple)
            and rest
            and all(t and posixpath.basename(t[0]) in LOGGERS for t in tail)
        ):
            self.simple(first, ctx)
            for cmd in rest:
                self.out(
                    cmd.line,
                    text_of(cmd),
                    NOTED,
                    "a logger for the program's output: pinit "
                    "keeps each service's output (log_lines, log_to_data)",
                )
            return
        self.leave(
            node,
            "a pipeline (A | B) whose parts only mean something together; pinit "
            "runs no shell: give the program in a pinit.toml",
        )

    def if_(self, node: If, ctx: Context) -> None:
        condition, body = node.clauses[0]
        test = self.test_path(condition.items[0].command) if len(condition.items) == 1 else None
        if test is None or len(node.clauses) > 1:
            self.leave(
                node,
                f"inside `{self.source(node.line)}` (line {node.line}): a condition "
                "only the running system can decide; pinit runs no shell",
            )
            return
        op, path, negated = test
        self.out(
            node.line,
            self.source(node.line),
            NOTED,
            f"a test whether {path} {'is missing' if negated else 'exists'}: "
            "the commands it guards say what they became",
        )
        yes, no = (node.otherwise, body) if negated else (body, node.otherwise)
        if yes is not None:
            self.sequence(yes, replace(ctx, guard=path))
        if no is not None:
            self.leave(
                no,
                f"runs only when {path} is missing (line {node.line}); pinit runs "
                "no shell: if it matters, give it in a pinit.toml",
            )

    def loop(self, node: Loop, ctx: Context) -> None:
        cond = node.condition.items
        only = cond[0].command if len(cond) == 1 else None
        words = (
            self.expand_all(only.words) if isinstance(only, Simple) and not only.assigns else None
        )
        forever = words is not None and (
            words in (["false"], ["/bin/false"])
            if node.until
            else only is not None and _is_true(only)
        )
        if forever:
            self.restart_loop(node, ctx)
            return
        test = self.test_path(cond[0].command) if len(cond) == 1 else None
        waits = test is not None and test[2] != node.until  # while ! -e X / until -e X
        body = list(commands(node.body))
        if waits and test and all(text.split()[:1] in (["sleep"], ["echo"]) for _, text in body):
            self.waited.append(test[1])
            self.out(
                node.line,
                self.source(node.line),
                TRANSLATED,
                f"waits for {test[1]}: the services wait for it (wait_for), or the data "
                "partition ([data] wait) when it is that",
            )
            for line, text in body:
                self.out(line, text, NOTED, "a pause or message while waiting")
            return
        self.leave(
            node,
            f"inside `{self.source(node.line)}` (line {node.line}): a loop on a "
            "condition only the running system can decide; pinit runs no shell",
        )

    def restart_loop(self, node: Loop, ctx: Context) -> None:
        """`while true; do APP; sleep N; done`: APP with restart = "always", N as its backoff."""
        before = len(self.programs), self.pending
        mark, ran, paused = len(self.outcomes), len(self.ran), len(self.pauses)
        self.sequence(node.body, replace(ctx, loop=True))
        runs = self.ran[ran:]
        pauses = self.pauses[paused:]
        del self.programs[before[0] :]
        self.pending = before[1]
        if len(runs) != 1:
            self.outcomes[mark:] = []
            self.leave(
                node,
                f"inside `{self.source(node.line)}` (line {node.line}): an endless "
                f"loop around {len(runs) or 'no'} programs; pinit restarts one program "
                "per service: give them in a pinit.toml",
            )
            return
        backoff = sum(seconds for _, seconds in pauses)
        program = replace(runs[0], restart="always", backoff=backoff, background=ctx.background)
        for i in range(mark, len(self.outcomes)):
            o = self.outcomes[i]
            if o.subject == program.path and o.line == program.line:
                self.outcomes[i] = replace(
                    o,
                    kind=TRANSLATED,
                    what=(
                        f"the service {program.path}, restarted whenever it exits (restart = "
                        f'"always"' + (f", backoff {backoff:g} s" if backoff else "") + ")"
                    ),
                )
            elif o.kind == UNTRANSLATED and o.text.split()[:1] in GIVE_UP:
                self.outcomes[i] = replace(
                    o,
                    what="gives up after failures: pinit's "
                    "crash_loop (count, window, action) does that; set "
                    "it in a pinit.toml to match",
                )
            elif any(o.line == line for line, _ in pauses) and o.kind == NOTED:
                self.outcomes[i] = replace(
                    o, kind=NOTED, what="the pause between restarts: the service's backoff"
                )
        self.out(
            node.line,
            self.source(node.line),
            NOTED,
            "an endless loop: pinit restarts the program in it; its crash_loop rule still applies",
        )
        self.programs.append(program)
        if not ctx.background:
            raise Stop(node.end, f"after the endless loop of line {node.line}: never ran")

    def for_(self, node: For, ctx: Context) -> None:
        values = self.expand_all(node.words) if node.words is not None else None
        if values is None:
            self.leave(
                node,
                f"inside `{self.source(node.line)}` (line {node.line}): a loop "
                "over values only the running system knows",
            )
            return
        self.out(
            node.line,
            self.source(node.line),
            NOTED,
            f"a loop over {' '.join(values) or 'nothing'}: each run's commands are below",
        )
        for value in values:
            self.vars[node.name] = value
            self.sequence(node.body, ctx)

    def case(self, node: Case, ctx: Context) -> None:
        subject = self.expand(node.word)
        if subject is None:
            self.leave(
                node,
                f"inside `{self.source(node.line)}` (line {node.line}): decides on "
                f"{node.word.source}, known only to the running system",
            )
            return
        value = " ".join(subject)
        taken = None
        for patterns, body in node.items:
            pats = [" ".join(self.expand(p) or [p.source]) for p in patterns]
            if taken is None and any(fnmatch.fnmatchcase(value, p) for p in pats):
                taken = body
                self.out(
                    node.line,
                    self.source(node.line),
                    NOTED,
                    f"{node.word.source} is {value!r} here: the branch {'|'.join(pats)}",
                )
            else:
                for line, text in commands(body):
                    self.out(
                        line,
                        text,
                        NOTED,
                        f"a branch not taken: {node.word.source} is {value!r} here",
                    )
        if taken is None:
            self.out(node.line, self.source(node.line), NOTED, f"no branch matches {value!r}")
        else:
            self.sequence(taken, ctx)

    # ---- simple commands

    def simple(self, node: Simple, ctx: Context) -> None:
        text = text_of(node)
        words = self.expand_all(node.words)
        env: dict[str, str] = {}
        for name, value in node.assigns:
            fields = self.expand(value)
            if fields is None:
                if not node.words:
                    self.vars.pop(name, None)
                    self.exported.pop(name, None)
                    self.out(
                        node.line,
                        text,
                        NOTED,
                        f"shell variable {name}, whose value only the running system knows",
                    )
                    return
                words = None
                break
            env[name] = " ".join(fields)
        if (
            words is None
            and node.words
            and node.words[0].literal in ("echo", "printf")
            and quiet(self.redirects(node.redirects))
        ):
            self.out(node.line, text, NOTED, "a console message; pinit logs its own steps")
            return
        if words is None:
            self.out(
                node.line,
                text,
                UNTRANSLATED,
                "uses a shell variable or command substitution whose value is not known here",
            )
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

    def command(
        self,
        line: int,
        text: str,
        words: list[str],
        env: dict[str, str],
        redirects: list[tuple[str, str]],
        ctx: Context,
        exec_: bool = False,
    ) -> None:
        name = posixpath.basename(words[0])
        if name == "busybox" and len(words) > 1:
            if words[1].startswith("--install"):
                self.out(
                    line, text, NOTED, "busybox applet links: the new initramfs has no busybox"
                )
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
            self.out(
                line,
                text,
                NOTED,
                f"calls the function {name}: what its commands became is said at their lines",
            )
            self.called.add(name)
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
        elif name in NETWORK or name in TIME:
            self.network(line, text, words)
        elif handler is not None and not env:
            try:
                handler(line, text, words[1:], redirects, ctx)
            except (ValueError, IndexError, BuildError) as exc:
                self.out(line, text, UNTRANSLATED, f"cannot read it: {exc}")
        elif name in NOTES:
            seconds = number(words[1]) if name == "sleep" and len(words) == 2 else None
            if seconds is not None:
                self.pauses.append((line, seconds))
            self.out(line, text, NOTED, NOTES[name])
        elif name in APPLETS:
            what = (
                f"{name}: a shell tool with no pinit equivalent; if the appliance needs "
                "it, the app or a pinit.toml service must do it"
            )
            if name in (".", "source"):
                what = (
                    f"reads the commands of {' '.join(words[1:2]) or 'another script'}, which "
                    "this conversion does not follow: translate them by hand"
                )
            if exec_:
                what = (
                    f"exec {name}: pinit runs from the initramfs and has no shell; give the "
                    "app in pinit.toml"
                )
            self.out(line, text, UNTRANSLATED, what)
        else:
            self.program(line, text, words, env, redirects, ctx, exec_)

    def program(
        self,
        line: int,
        text: str,
        words: list[str],
        env: dict[str, str],
        redirects: list[tuple[str, str]],
        ctx: Context,
        exec_: bool,
    ) -> None:
        waits = tuple(p for p in self.waited if p != (self.data.device if self.data else ""))
        program = Program(
            words[0],
            tuple(words[1:]),
            tuple(sorted({**self.exported, **env}.items())),
            self.cwd,
            line,
            ctx.background,
            wait_for=waits,
        )
        if ctx.guard:
            self.out(
                line,
                text,
                UNTRANSLATED,
                f"runs {words[0]} only if {ctx.guard} exists; "
                "pinit starts services unconditionally: give it in a pinit.toml",
            )
            return
        if ctx.background and not ctx.loop:
            self.programs.append(program)
            self.out(
                line,
                text,
                TRANSLATED,
                f"service {words[0]} (started beside the app){dropped(redirects)}",
                words[0],
            )
        elif exec_ and not ctx.loop:
            self.programs.append(program)
            self.out(
                line, text, TRANSLATED, f"the service {words[0]}{dropped(redirects)}", words[0]
            )
            raise Stop(line, f"after the exec on line {line}: never ran")
        else:
            self.pending = program
            self.ran.append(program)
            self.out(
                line,
                text,
                UNTRANSLATED,
                f"runs {words[0]} and waits for it; pinit starts services, not steps",
                words[0],
            )


def _glob(text: str) -> bool:
    return (
        "*" in text
        or "?" in text
        or ("[" in text and "]" in text[text.index("[") :] and text not in ("[", "]"))
    )


def _is_message(node: Node) -> bool:
    return (
        isinstance(node, Simple)
        and bool(node.words)
        and node.words[0].literal in ("echo", "printf")
    )


def _is_true(node: Node) -> bool:
    return (
        isinstance(node, Simple)
        and not node.assigns
        and len(node.words) == 1
        and node.words[0].literal in TRUE
    )


def translate(text: str, files: Callable[[str], str | None] = lambda path: None) -> Script:
    """The pinit values a classic `/init` script stands for, and what became of each command.
    `files` reads the old initramfs's other files (wpa_supplicant's config), by path."""
    walker = _Walker(text.splitlines(), files)
    try:
        tree = parse(text)
    except ParseError as exc:
        return Script(
            (
                Outcome(
                    exc.line,
                    walker.source(exc.line),
                    UNTRANSLATED,
                    f"the shell cannot parse the script here: {exc.message}; "
                    "nothing of it was translated",
                ),
            )
        )
    for index, item in enumerate(tree.items):
        try:
            walker.item(item, Context())
        except Stop as stop:
            # What the walk never reached, from the command that ended the script on.
            seen = {(o.line, o.text) for o in walker.outcomes}
            for rest in tree.items[index:]:
                for line, cmd in commands(rest.command):
                    if (line, cmd) not in seen and line > stop.line:
                        walker.out(line, cmd, NOTED, stop.why)
            break
    for name, body in walker.functions.items():
        if name not in walker.called:
            for line, cmd in commands(body):
                walker.out(
                    line, cmd, NOTED, f"in the function {name}, which the script never calls"
                )
    programs = walker.programs
    outcomes = walker.outcomes
    main = walker.pending
    if main is not None and not any(not p.background for p in programs):
        # No exec: the last program the script runs (and waits for) is the appliance itself.
        programs = [*programs, main]
        outcomes = [
            replace(
                o,
                kind=TRANSLATED,
                what=f"the service {main.path} (the last program the script runs)",
            )
            if (o.line, o.subject, o.kind) == (main.line, main.path, UNTRANSLATED)
            else o
            for o in outcomes
        ]
    path = (
        tuple(walker.exported.get("PATH", "").split(":"))
        if walker.exported.get("PATH")
        else Script.path
    )
    background = [p for p in programs if p.background]
    network, time, bad = settle(walker.net)
    outcomes = [
        replace(o, kind=UNTRANSLATED, what=bad[o.line]) if o.subject == NET and o.line in bad else o
        for o in outcomes
    ]
    return Script(
        tuple(sorted(outcomes, key=lambda o: o.line)),
        tuple(walker.modules),
        tuple(walker.entries),
        (*background, *(p for p in programs if not p.background)),
        walker.data,
        walker.hostname,
        network,
        time,
        path,
        walker.switch_root,
    )


def report(script: Script) -> list[str]:
    """What became of each command, grouped; the untranslated ones are never left out."""
    titles = {
        TRANSLATED: "translated:",
        NOTED: "not needed (pinit does it, or only a shell needed it):",
        UNTRANSLATED: "NOT translated - check these by hand:",
    }
    lines: list[str] = []
    for kind, title in titles.items():
        found = [
            f"  line {o.line}: {o.text}\n      -> {o.what}"
            for o in script.outcomes
            if o.kind == kind
        ]
        lines += [title, *found] if found else [f"{title} none"]
    return lines
