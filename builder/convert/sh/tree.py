"""The syntax tree of a POSIX sh script (parse.py makes it): words with their expansions,
simple and compound commands, each with the line it starts on."""

from __future__ import annotations

from dataclasses import dataclass


class ParseError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Part:
    kind: str  # "lit" | "param" | "cmd" | "arith"
    text: str  # the literal text, the parameter's name (or ${…} body), the command's source
    quoted: bool = False


@dataclass(frozen=True)
class Word:
    source: str  # as written, quotes included
    parts: tuple[Part, ...]
    line: int

    @property
    def literal(self) -> str | None:
        """The word's value when it has no expansion in it; None otherwise."""
        if all(p.kind == "lit" for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None


@dataclass(frozen=True)
class Redirect:
    op: str
    fd: int | None
    target: Word
    heredoc: str | None = None  # the body of a here-document


@dataclass(frozen=True)
class Simple:
    assigns: tuple[tuple[str, Word], ...]
    words: tuple[Word, ...]
    redirects: tuple[Redirect, ...]
    line: int


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Node, ...]
    negated: bool
    line: int


@dataclass(frozen=True)
class AndOr:
    first: Node
    rest: tuple[tuple[str, Node], ...]  # ("&&" | "||", pipeline)
    line: int


@dataclass(frozen=True)
class Item:
    command: Node
    background: bool  # ended by &
    line: int


@dataclass(frozen=True)
class Sequence:
    items: tuple[Item, ...]
    line: int


@dataclass(frozen=True)
class If:
    clauses: tuple[tuple[Sequence, Sequence], ...]  # (condition, body) for if and each elif
    otherwise: Sequence | None
    line: int
    end: int  # the line of `fi`
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Loop:
    until: bool
    condition: Sequence
    body: Sequence
    line: int
    end: int
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class For:
    name: str
    words: tuple[Word, ...] | None  # None: `for x; do` (the positional parameters)
    body: Sequence
    line: int
    end: int
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Case:
    word: Word
    items: tuple[tuple[tuple[Word, ...], Sequence], ...]
    line: int
    end: int
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Group:
    body: Sequence
    subshell: bool  # ( … ) rather than { …; }
    line: int
    end: int
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Function:
    name: str
    body: Node
    line: int
    end: int


Node = Simple | Pipeline | AndOr | Sequence | If | Loop | For | Case | Group | Function


def text_of(node: Node) -> str:
    """A simple command as written (its quotes kept), on one line."""
    if not isinstance(node, Simple):
        return ""
    parts = [f"{name}={value.source}" for name, value in node.assigns]
    parts += [w.source for w in node.words]
    parts += [f"{r.fd if r.fd is not None else ''}{r.op}{r.target.source}" for r in node.redirects]
    return " ".join(parts)


def commands(node: Node) -> list[tuple[int, str]]:
    """(line, text) of every simple command under `node`, in order."""
    if isinstance(node, Simple):
        return [(node.line, text_of(node))]
    if isinstance(node, Sequence):
        return [c for item in node.items for c in commands(item.command)]
    if isinstance(node, AndOr):
        return commands(node.first) + [c for _, p in node.rest for c in commands(p)]
    if isinstance(node, Pipeline):
        return [c for p in node.commands for c in commands(p)]
    if isinstance(node, Group):
        return commands(node.body)
    if isinstance(node, If):
        found = [c for cond, body in node.clauses for c in commands(cond) + commands(body)]
        return found + (commands(node.otherwise) if node.otherwise else [])
    if isinstance(node, Loop):
        return commands(node.condition) + commands(node.body)
    if isinstance(node, For):
        return commands(node.body)
    if isinstance(node, Case):
        return [c for _, body in node.items for c in commands(body)]
    if isinstance(node, Function):
        return commands(node.body)
    return []
