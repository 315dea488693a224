"""The tokens of a POSIX sh script: words (quotes, escapes and expansions split into parts),
operators, new lines, fd numbers before a redirection; here-document bodies read after the line
that names them; comments and backslash-newlines dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from builder.convert.sh.tree import ParseError, Part, Word

OPERATORS = (
    "&&",
    "||",
    ";;",
    "<<-",
    "<<",
    ">>",
    "<&",
    ">&",
    "<>",
    ">|",
    ";",
    "&",
    "|",
    "(",
    ")",
    "<",
    ">",
)
SPECIAL_PARAMS = "@*#?-$!0123456789"


@dataclass
class Token:
    kind: str  # "word" | "op" | "newline" | "io" (an fd number before < or >) | "eof"
    text: str
    line: int
    word: Word | None = None
    heredoc: list[str] = field(default_factory=list)  # filled at the next newline

    def reserved(self, *names: str) -> bool:
        return self.kind == "word" and self.text in names


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.pending: list[tuple[Token, str, bool]] = []  # here-docs to read after the newline

    def peek(self, offset: int = 0) -> str:
        at = self.i + offset
        return self.s[at] if at < len(self.s) else ""

    def advance(self, n: int = 1) -> str:
        out = self.s[self.i : self.i + n]
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
                self.read_heredocs()  # as dash and busybox sh: the end of file ends them too
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
        source = self.s[start : self.i].replace("\\\n", "")
        if (
            not any(p.quoted or p.kind != "lit" for p in parts)
            and source.isdigit()
            and self.peek() in "<>"
        ):
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
