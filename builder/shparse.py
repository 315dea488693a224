"""A POSIX sh parser: the text of a shell script in, its syntax tree out (no expansion, no run).

Pure and complete for the POSIX shell grammar (XCU 2.10): words with '…', "…", \\ escapes,
$VAR, ${…}, $(…), `…` and $((…)); the operators ; & && || | ! and ;; ; if/elif/else/fi,
while/until/do/done, for … in …, case … esac, { }, ( ), functions `name() body`, redirections
(with an fd number), here-documents (<< and <<-, quoted delimiters), comments and line
continuations. A word keeps its source text and is split into parts (literal, quoted literal,
parameter, command substitution, arithmetic) so that shellinit.py expands only what it knows.
ParseError says where the script stops making sense, as busybox sh would refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until",
            "for", "in", "{", "}", "!"}
OPERATORS = ("&&", "||", ";;", "<<-", "<<", ">>", "<&", ">&", "<>", ">|",
             ";", "&", "|", "(", ")", "<", ">")
REDIRECTS = {"<", ">", ">>", "<&", ">&", "<>", ">|", "<<", "<<-"}
SPECIAL_PARAMS = "@*#?-$!0123456789"


class ParseError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


# ---- The tree.

@dataclass(frozen=True)
class Part:
    kind: str      # "lit" | "param" | "cmd" | "arith"
    text: str      # the literal text, the parameter's name (or ${…} body), the command's source
    quoted: bool = False


@dataclass(frozen=True)
class Word:
    source: str                 # as written, quotes included
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
    rest: tuple[tuple[str, Node], ...]   # ("&&" | "||", pipeline)
    line: int


@dataclass(frozen=True)
class Item:
    command: Node
    background: bool              # ended by &
    line: int


@dataclass(frozen=True)
class Sequence:
    items: tuple[Item, ...]
    line: int


@dataclass(frozen=True)
class If:
    clauses: tuple[tuple[Sequence, Sequence], ...]   # (condition, body) for if and each elif
    otherwise: Sequence | None
    line: int
    end: int                                          # the line of `fi`
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
    words: tuple[Word, ...] | None    # None: `for x; do` (the positional parameters)
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
    subshell: bool                   # ( … ) rather than { …; }
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


# ---- Tokens.

@dataclass
class Token:
    kind: str             # "word" | "op" | "newline" | "io" (an fd number before < or >) | "eof"
    text: str
    line: int
    word: Word | None = None
    heredoc: list[str] = field(default_factory=list)   # filled at the next newline

    def reserved(self, *names: str) -> bool:
        return self.kind == "word" and self.text in names


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.pending: list[tuple[Token, str, bool]] = []   # here-docs to read after the newline

    def peek(self, offset: int = 0) -> str:
        at = self.i + offset
        return self.s[at] if at < len(self.s) else ""

    def advance(self, n: int = 1) -> str:
        out = self.s[self.i:self.i + n]
        self.line += out.count("\n")
        self.i += n
        return out

    def skip_continuations(self) -> None:
        while self.peek() == "\\" and self.peek(1) == "\n":
            self.advance(2)

    def run(self) -> list[Token]:
        while True:
            self.skip_continuations()
            c = self.peek()
            if c == "":
                self.read_heredocs()   # as dash and busybox sh: the end of file ends them too
                self.tokens.append(Token("eof", "", self.line))
                return self.tokens
            if c in " \t\r":
                self.advance()
            elif c == "#":
                while self.peek() not in ("\n", ""):
                    self.advance()
            elif c == "\n":
                self.tokens.append(Token("newline", "\n", self.line))
                self.advance()
                self.read_heredocs()
            elif self.operator():
                pass
            else:
                self.word()

    def operator(self) -> bool:
        for op in OPERATORS:
            if self.s.startswith(op, self.i):
                self.tokens.append(Token("op", op, self.line))
                self.advance(len(op))
                return True
        return False

    def word(self) -> None:
        line, start = self.line, self.i
        parts: list[Part] = []
        lit: list[str] = []

        def flush(quoted: bool = False) -> None:
            if lit:
                parts.append(Part("lit", "".join(lit), quoted))
                lit.clear()

        while True:
            self.skip_continuations()
            c = self.peek()
            if c == "" or c in " \t\r\n;&|()<>":
                break
            if c == "\\":
                self.advance()
                flush()
                lit.append(self.advance())
                flush(True)
            elif c == "'":
                flush()
                self.advance()
                end = self.s.find("'", self.i)
                if end < 0:
                    raise ParseError(line, "a '…' quote that is never closed")
                lit.append(self.advance(end - self.i))
                self.advance()
                parts.append(Part("lit", "".join(lit), True))
                lit.clear()
            elif c == '"':
                flush()
                self.advance()
                self.double_quoted(parts, line)
            elif c == "$" or c == "`":
                flush()
                parts.append(self.dollar(False, line))
            else:
                lit.append(self.advance())
        flush()
        source = self.s[start:self.i].replace("\\\n", "")
        if (not any(p.quoted or p.kind != "lit" for p in parts) and source.isdigit()
                and self.peek() in "<>"):
            self.tokens.append(Token("io", source, line))
            return
        token = Token("word", source, line, Word(source, tuple(parts), line))
        self.tokens.append(token)
        before = self.tokens[-2] if len(self.tokens) > 1 else None
        if before is not None and before.kind == "op" and before.text in ("<<", "<<-"):
            # Its body follows the next newline: read there, kept on this token.
            delimiter = "".join(p.text for p in parts)
            self.pending.append((token, delimiter, before.text == "<<-"))

    def double_quoted(self, parts: list[Part], line: int) -> None:
        lit: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise ParseError(line, 'a "…" quote that is never closed')
            if c == '"':
                self.advance()
                break
            if c == "\\" and self.peek(1) in '$`"\\\n':
                self.advance()
                ch = self.advance()
                if ch != "\n":
                    lit.append(ch)
            elif c in "$`":
                part = self.dollar(True, line)
                if part.kind == "lit":
                    lit.append(part.text)
                    continue
                if lit:
                    parts.append(Part("lit", "".join(lit), True))
                    lit = []
                parts.append(part)
            else:
                lit.append(self.advance())
        parts.append(Part("lit", "".join(lit), True))

    def dollar(self, quoted: bool, line: int) -> Part:
        if self.peek() == "`":
            self.advance()
            body: list[str] = []
            while self.peek() != "`":
                if self.peek() == "":
                    raise ParseError(line, "a `…` command substitution that is never closed")
                if self.peek() == "\\" and self.peek(1) in "$`\\":
                    self.advance()
                body.append(self.advance())
            self.advance()
            return Part("cmd", "".join(body), quoted)
        self.advance()  # $
        c = self.peek()
        if self.s.startswith("((", self.i):
            self.advance(2)
            return Part("arith", self.balanced("(", ")", line, depth=2)[:-1], quoted)
        if c == "(":
            self.advance()
            return Part("cmd", self.balanced("(", ")", line), quoted)
        if c == "{":
            self.advance()
            return Part("param", self.balanced("{", "}", line), quoted)
        if c and c in SPECIAL_PARAMS:
            return Part("param", self.advance(), quoted)
        name = []
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            name.append(self.advance())
        if not name:
            return Part("lit", "$", quoted)
        return Part("param", "".join(name), quoted)

    def balanced(self, open_: str, close: str, line: int, depth: int = 1) -> str:
        """The text up to the matching `close` (consumed, not returned), quotes respected."""
        out: list[str] = []
        while True:
            c = self.peek()
            if c == "":
                raise ParseError(line, f"a {open_}…{close} that is never closed")
            if c == "\\":
                out.append(self.advance(2))
                continue
            if c == "'" and open_ == "(":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise ParseError(line, "a '…' quote that is never closed")
                out.append(self.advance(end + 1 - self.i))
                continue
            if c == '"':
                end = self.i + 1
                while end < len(self.s) and self.s[end] != '"':
                    end += 2 if self.s[end] == "\\" else 1
                if end >= len(self.s):
                    raise ParseError(line, 'a "…" quote that is never closed')
                out.append(self.advance(end + 1 - self.i))
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    self.advance()
                    return "".join(out)
            out.append(self.advance())

    def read_heredocs(self) -> None:
        for token, delimiter, strip in self.pending:
            body: list[str] = []
            while True:
                if self.i >= len(self.s):
                    break
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                raw = self.advance(end - self.i)
                if self.peek() == "\n":
                    self.advance()
                text = raw.lstrip("\t") if strip else raw
                if text == delimiter:
                    break
                body.append(text + "\n")
            token.heredoc.append("".join(body))
        self.pending = []



def tokens(text: str) -> list[Token]:
    return _Lexer(text).run()


# ---- The parser: recursive descent over XCU 2.10's grammar.

class _Parser:
    def __init__(self, toks: list[Token]) -> None:
        self.toks = toks
        self.at = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.at]

    def take(self) -> Token:
        token = self.toks[self.at]
        self.at += 1
        return token

    def expect_word(self, name: str, opened: Token) -> Token:
        self.linebreak()
        if not self.tok.reserved(name):
            raise ParseError(self.tok.line, f"expected `{name}` for the `{opened.text}` of line "
                             f"{opened.line}, found {self.describe(self.tok)}")
        return self.take()

    @staticmethod
    def describe(token: Token) -> str:
        return {"eof": "the end of the script", "newline": "a new line"}.get(
            token.kind, f"`{token.text}`")

    def linebreak(self) -> None:
        while self.tok.kind == "newline":
            self.take()

    def program(self) -> Sequence:
        body = self.sequence(())
        if self.tok.kind != "eof":
            raise ParseError(self.tok.line, f"unexpected {self.describe(self.tok)}")
        return body

    def sequence(self, stops: tuple[str, ...]) -> Sequence:
        """Commands separated by ; & or new lines, up to one of the reserved words `stops`,
        `)`, `;;` or the end."""
        self.linebreak()
        line = self.tok.line
        items: list[Item] = []
        while not self.at_end(stops):
            command = self.and_or()
            background = False
            if self.tok.kind == "op" and self.tok.text in (";", "&"):
                background = self.take().text == "&"
            elif self.tok.kind not in ("newline", "eof") and not self.at_end(stops):
                raise ParseError(self.tok.line, f"unexpected {self.describe(self.tok)}")
            items.append(Item(command, background, command_line(command)))
            self.linebreak()
        return Sequence(tuple(items), line)

    def at_end(self, stops: tuple[str, ...]) -> bool:
        tok = self.tok
        return (tok.kind == "eof" or (tok.kind == "op" and tok.text in (")", ";;"))
                or (tok.kind == "word" and tok.text in stops))

    def and_or(self) -> Node:
        first = self.pipeline()
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.text in ("&&", "||"):
            op = self.take().text
            self.linebreak()
            rest.append((op, self.pipeline()))
        return AndOr(first, tuple(rest), command_line(first)) if rest else first

    def pipeline(self) -> Node:
        line = self.tok.line
        negated = False
        if self.tok.reserved("!"):
            self.take()
            negated = True
        commands = [self.command()]
        while self.tok.kind == "op" and self.tok.text == "|":
            self.take()
            self.linebreak()
            commands.append(self.command())
        if len(commands) == 1 and not negated:
            return commands[0]
        return Pipeline(tuple(commands), negated, line)

    def command(self) -> Node:
        tok = self.tok
        compound = {"if": self.if_, "while": self.loop, "until": self.loop, "for": self.for_,
                    "case": self.case, "{": self.brace}
        if tok.kind == "word" and tok.text in compound:
            node = compound[tok.text]()
            return self.with_redirects(node)
        if tok.kind == "op" and tok.text == "(":
            opened = self.take()
            body = self.sequence(())
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise ParseError(self.tok.line, f"expected `)` for the `(` of line {opened.line}")
            end = self.take().line
            return self.with_redirects(Group(body, True, opened.line, end))
        if tok.kind == "word" and tok.text in RESERVED or tok.kind in ("eof", "newline"):
            raise ParseError(tok.line, f"unexpected {self.describe(tok)}")
        after = self.toks[self.at + 1:self.at + 3]
        if (tok.kind == "word" and [(t.kind, t.text) for t in after] == [("op", "("),
                                                                         ("op", ")")]):
            return self.function()
        return self.simple()

    def with_redirects(self, node: Node) -> Node:
        redirects = []
        while self.tok.kind == "io" or (self.tok.kind == "op" and self.tok.text in REDIRECTS):
            redirects.append(self.redirect())
        if not redirects:
            return node
        return replace(node, redirects=tuple(redirects))  # type: ignore[call-arg, arg-type]

    def function(self) -> Node:
        name = self.take()
        self.take(), self.take()
        self.linebreak()
        if not (self.tok.kind == "word" and self.tok.text in ("{", "if", "while", "until", "for",
                                                              "case")
                or self.tok.kind == "op" and self.tok.text == "("):
            raise ParseError(self.tok.line, f"the function {name.text}() has no body")
        body = self.command()
        return Function(name.text, body, name.line, self.toks[self.at - 1].line)

    def brace(self) -> Node:
        opened = self.take()
        body = self.sequence(("}",))
        end = self.expect_word("}", opened).line
        return Group(body, False, opened.line, end)

    def if_(self) -> Node:
        opened = self.take()
        clauses = []
        otherwise = None
        while True:
            condition = self.sequence(("then",))
            self.expect_word("then", opened)
            body = self.sequence(("elif", "else", "fi"))
            clauses.append((condition, body))
            if self.tok.reserved("elif"):
                self.take()
                continue
            if self.tok.reserved("else"):
                self.take()
                otherwise = self.sequence(("fi",))
            end = self.expect_word("fi", opened).line
            return If(tuple(clauses), otherwise, opened.line, end)

    def do_group(self, opened: Token) -> tuple[Sequence, int]:
        self.expect_word("do", opened)
        body = self.sequence(("done",))
        return body, self.expect_word("done", opened).line

    def loop(self) -> Node:
        opened = self.take()
        condition = self.sequence(("do",))
        body, end = self.do_group(opened)
        return Loop(opened.text == "until", condition, body, opened.line, end)

    def for_(self) -> Node:
        opened = self.take()
        name = self.take()
        if name.kind != "word" or not name.text.isidentifier():
            raise ParseError(name.line, f"`for` needs a variable name, not {self.describe(name)}")
        words: tuple[Word, ...] | None = None
        self.linebreak()
        if self.tok.reserved("in"):
            self.take()
            found = []
            while self.tok.kind == "word":
                assert self.tok.word is not None
                found.append(self.take().word)
            words = tuple(w for w in found if w is not None)
            if not (self.tok.kind == "newline" or self.tok.kind == "op" and self.tok.text == ";"):
                raise ParseError(self.tok.line, f"unexpected {self.describe(self.tok)} in `for`")
        if self.tok.kind == "op" and self.tok.text == ";":
            self.take()
        body, end = self.do_group(opened)
        return For(name.text, words, body, opened.line, end)

    def case(self) -> Node:
        opened = self.take()
        subject = self.take()
        if subject.word is None:
            raise ParseError(subject.line, f"`case` needs a word, not {self.describe(subject)}")
        self.expect_word("in", opened)
        self.linebreak()
        items = []
        while not self.tok.reserved("esac"):
            if self.tok.kind == "op" and self.tok.text == "(":
                self.take()
            patterns = []
            while True:
                pattern = self.take()
                if pattern.word is None:
                    raise ParseError(pattern.line, f"a `case` pattern, not {self.describe(pattern)}")
                patterns.append(pattern.word)
                if self.tok.kind == "op" and self.tok.text == "|":
                    self.take()
                    continue
                break
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise ParseError(self.tok.line, f"expected `)` after a `case` pattern, found "
                                 f"{self.describe(self.tok)}")
            self.take()
            body = self.sequence(("esac",))
            items.append((tuple(patterns), body))
            if self.tok.kind == "op" and self.tok.text == ";;":
                self.take()
                self.linebreak()
            elif not self.tok.reserved("esac"):
                raise ParseError(self.tok.line, f"expected `;;` or `esac`, found "
                                 f"{self.describe(self.tok)}")
        end = self.take().line
        return Case(subject.word, tuple(items), opened.line, end)

    def redirect(self) -> Redirect:
        fd = int(self.take().text) if self.tok.kind == "io" else None
        op = self.take()
        target = self.take()
        if target.word is None:
            raise ParseError(op.line, f"`{op.text}` needs a file name, not "
                             f"{self.describe(target)}")
        heredoc = target.heredoc[0] if target.heredoc else None
        return Redirect(op.text, fd, target.word, heredoc)

    def simple(self) -> Node:
        line = self.tok.line
        assigns: list[tuple[str, Word]] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            tok = self.tok
            if tok.kind == "io" or (tok.kind == "op" and tok.text in REDIRECTS):
                redirects.append(self.redirect())
            elif tok.kind == "word" and tok.word is not None:
                name, eq, _ = tok.text.partition("=")
                if not words and eq and name.isidentifier():
                    self.take()
                    assigns.append((name, _assignment_value(tok.word, len(name) + 1)))
                else:
                    words.append(self.take().word)  # type: ignore[arg-type]
            else:
                break
        if not (assigns or words or redirects):
            raise ParseError(self.tok.line, f"unexpected {self.describe(self.tok)}")
        return Simple(tuple(assigns), tuple(words), tuple(redirects), line)


def _assignment_value(word: Word, skip: int) -> Word:
    """The value of a NAME=value word: its parts with the first `skip` characters dropped."""
    parts = list(word.parts)
    first = parts[0]
    parts[0] = Part(first.kind, first.text[skip:], first.quoted)
    return Word(word.source[skip:], tuple(p for p in parts if p.text or p.quoted), word.line)


def command_line(node: Node) -> int:
    return node.line


def parse(text: str) -> Sequence:
    """The script's syntax tree. ParseError names the line where it stops making sense."""
    return _Parser(tokens(text)).program()
