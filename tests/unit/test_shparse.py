"""builder/convert/sh/parse.py: the POSIX sh grammar, and the same scripts accepted and refused as the
system's POSIX shell (`sh -n`, dash on Debian) accepts and refuses them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.convert.sh import parse
from builder.convert.sh.tree import (
    AndOr,
    Case,
    For,
    Function,
    Group,
    If,
    Loop,
    ParseError,
    Part,
    Pipeline,
    Simple,
)
from hostkit.paths import REPO
from tests.shcases import INVALID, VALID

CORPUS = REPO / "tests" / "corpus"


def shell_accepts(text: str, tmp_path: Path) -> bool:
    script = tmp_path / "script.sh"
    script.write_text(text)
    return subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def shell() -> None:
    assert shutil.which("sh"), "a POSIX sh is part of every Debian system"


@pytest.mark.parametrize("text", VALID)
def test_accepts_what_the_shell_accepts(text: str, tmp_path: Path, shell: None) -> None:
    assert shell_accepts(text, tmp_path)
    assert parse.parse(text).items


@pytest.mark.parametrize("text", INVALID)
def test_refuses_what_the_shell_refuses(text: str, tmp_path: Path, shell: None) -> None:
    assert not shell_accepts(text, tmp_path)
    with pytest.raises(ParseError):
        parse.parse(text)


@pytest.mark.parametrize("case", sorted(p.stem for p in CORPUS.glob("*.sh")))
def test_the_corpus_parses_like_the_shell(case: str, tmp_path: Path, shell: None) -> None:
    text = (CORPUS / f"{case}.sh").read_text()
    assert shell_accepts(text, tmp_path)
    assert parse.parse(text).items


def test_the_tree() -> None:
    tree = parse.parse(
        "a && b | c\nif [ -e /x ]; then d; fi\nfor m in 1 2; do e; done &\n"
        "case $v in x) f;; esac\ng() { h; }\n{ i; } 2>/dev/null\n"
        "while :; do j; done\n"
    )
    kinds = [type(item.command) for item in tree.items]
    assert kinds == [AndOr, If, For, Case, Function, Group, Loop]
    first = tree.items[0].command
    assert isinstance(first, AndOr) and isinstance(first.rest[0][1], Pipeline)
    assert tree.items[2].background and tree.items[2].line == 3
    group = tree.items[5].command
    assert isinstance(group, Group) and group.redirects[0].op == ">" and group.redirects[0].fd == 2
    loop = tree.items[6].command
    assert isinstance(loop, Loop) and (loop.line, loop.end) == (7, 7)


def test_words_keep_their_quoting_and_expansions() -> None:
    [item] = parse.parse('X="a $B" cmd \'l $x\' "$(d)" ${E:-f} \\$g\n').items
    cmd = item.command
    assert isinstance(cmd, Simple)
    ((name, value),) = cmd.assigns
    assert name == "X" and [p.kind for p in value.parts] == ["lit", "param", "lit"]
    words = cmd.words
    assert words[0].literal == "cmd" and words[1].literal == "l $x"
    assert [p.kind for p in words[2].parts if p.text] == ["cmd"]
    assert words[3].parts[0] == Part("param", "E:-f")
    assert words[4].literal == "$g"


def test_here_documents_and_continuations() -> None:
    tree = parse.parse("cat <<EOF >f\nline $x\nEOF\necho a \\\n  b\n")
    cat, echo = (item.command for item in tree.items)
    assert isinstance(cat, Simple) and cat.redirects[0].heredoc == "line $x\n"
    assert isinstance(echo, Simple) and [w.literal for w in echo.words] == ["echo", "a", "b"]
    assert echo.line == 4


def test_errors_name_the_line() -> None:
    with pytest.raises(ParseError, match="line 3: expected `fi` for the `if` of line 1"):
        parse.parse("if a\nthen b\n")
