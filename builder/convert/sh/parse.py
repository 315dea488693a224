"""A POSIX sh parser: the text of a shell script in, its syntax tree (tree.py) out; no
expansion, no run. The tokens come from tokens.py.

Pure and complete for the POSIX shell grammar (XCU 2.10): words with '…', "…", \\ escapes,
$VAR, ${…}, $(…), `…` and $((…)); the operators ; & && || | ! and ;; ; if/elif/else/fi,
while/until/do/done, for … in …, case … esac, { }, ( ), functions `name() body`, redirections
(with an fd number), here-documents (<< and <<-, quoted delimiters), comments and line
continuations. A word keeps its source text and is split into parts (literal, quoted literal,
parameter, command substitution, arithmetic) so that initscript.py expands only what it knows.
ParseError says where the script stops making sense, as busybox sh would refuse it.
"""

from __future__ import annotations

from dataclasses import replace

from builder.convert.sh.tokens import Token, tokens
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
    Part,
    Pipeline,
    Redirect,
    Sequence,
    Simple,
    Word,
)

RESERVED = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "case",
    "esac",
    "while",
    "until",
    "for",
    "in",
    "{",
    "}",
    "!",
}
REDIRECTS = {"<", ">", ">>", "<&", ">&", "<>", ">|", "<<", "<<-"}


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
            raise ParseError(
                self.tok.line,
                f"expected `{name}` for the `{opened.text}` of line "
                f"{opened.line}, found {self.describe(self.tok)}",
            )
        return self.take()

    @staticmethod
    def describe(token: Token) -> str:
        return {"eof": "the end of the script", "newline": "a new line"}.get(
            token.kind, f"`{token.text}`"
        )

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
            items.append(Item(command, background, command.line))
            self.linebreak()
        return Sequence(tuple(items), line)

    def at_end(self, stops: tuple[str, ...]) -> bool:
        tok = self.tok
        return (
            tok.kind == "eof"
            or (tok.kind == "op" and tok.text in (")", ";;"))
            or (tok.kind == "word" and tok.text in stops)
        )

    def and_or(self) -> Node:
        first = self.pipeline()
        rest: list[tuple[str, Node]] = []
        while self.tok.kind == "op" and self.tok.text in ("&&", "||"):
            op = self.take().text
            self.linebreak()
            rest.append((op, self.pipeline()))
        return AndOr(first, tuple(rest), first.line) if rest else first

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
        compound = {
            "if": self.if_,
            "while": self.loop,
            "until": self.loop,
            "for": self.for_,
            "case": self.case,
            "{": self.brace,
        }
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
        after = self.toks[self.at + 1 : self.at + 3]
        if tok.kind == "word" and [(t.kind, t.text) for t in after] == [("op", "("), ("op", ")")]:
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
        if not (
            self.tok.kind == "word"
            and self.tok.text in ("{", "if", "while", "until", "for", "case")
            or self.tok.kind == "op"
            and self.tok.text == "("
        ):
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
                    raise ParseError(
                        pattern.line, f"a `case` pattern, not {self.describe(pattern)}"
                    )
                patterns.append(pattern.word)
                if self.tok.kind == "op" and self.tok.text == "|":
                    self.take()
                    continue
                break
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise ParseError(
                    self.tok.line,
                    f"expected `)` after a `case` pattern, found {self.describe(self.tok)}",
                )
            self.take()
            body = self.sequence(("esac",))
            items.append((tuple(patterns), body))
            if self.tok.kind == "op" and self.tok.text == ";;":
                self.take()
                self.linebreak()
            elif not self.tok.reserved("esac"):
                raise ParseError(
                    self.tok.line, f"expected `;;` or `esac`, found {self.describe(self.tok)}"
                )
        end = self.take().line
        return Case(subject.word, tuple(items), opened.line, end)

    def redirect(self) -> Redirect:
        fd = int(self.take().text) if self.tok.kind == "io" else None
        op = self.take()
        target = self.take()
        if target.word is None:
            raise ParseError(op.line, f"`{op.text}` needs a file name, not {self.describe(target)}")
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


def parse(text: str) -> Sequence:
    """The script's syntax tree. ParseError names the line where it stops making sense."""
    return _Parser(tokens(text)).program()
