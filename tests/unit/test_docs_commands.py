"""Every `invoke …` command shown in README.md and docs/*.md names a task and options that exist.

The commands are parsed by invoke's own parser against tasks.py, exactly as `.venv/bin/invoke`
would parse them; a placeholder (`[--config FILE]`) counts as the option it names. The QEMU tier
runs the README's boot commands for real (tests/qemu/test_docs_boot.py).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from invoke import Collection
from invoke.parser import ParseError, Parser

import tasks

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `invoke` and its words up to the end of the code span, a comment or the line; in a code block
# only a shell line (`.venv/bin/invoke …`, or a line that starts with `invoke`), not prose.
COMMAND = re.compile(r"(?:\.venv/bin/)?\binvoke((?: +[^`#\n ]+)*)")
SHELL_LINE = re.compile(r"^\s*invoke |\.venv/bin/invoke")


def documented_commands() -> list[tuple[str, str]]:
    """(where, argv words) for each `invoke …` in code blocks and inline code of the docs."""
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            spans = re.findall(r"`([^`]+)`", line) if "`" in line else [line]
            if "`" not in line and not SHELL_LINE.search(line):
                continue
            for span in spans:
                for match in COMMAND.finditer(span):
                    words = match.group(1).replace("[", " ").replace("]", " ").replace("…", "")
                    if words.strip():
                        found.append((f"{doc.name}:{number}", words.strip()))
    return found


def parse(words: str) -> list:
    collection = Collection.from_module(tasks)
    parser = Parser(contexts=collection.to_contexts())
    try:
        return parser.parse_argv(shlex.split(words))
    except ParseError as exc:
        # Prose may name an option without its value (`invoke image --from`).
        if "needed value" not in str(exc):
            raise
        return parser.parse_argv([*shlex.split(words), "VALUE"])


COMMANDS = documented_commands()


def test_docs_show_the_boot_commands() -> None:
    shown = {words for _, words in COMMANDS}
    assert "boot" in shown
    assert "boot --machine raspi3b --expect 'Hello world!'" in shown


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where: str, words: str) -> None:
    try:
        contexts = parse(words)
    except ParseError as exc:
        pytest.fail(f"{where}: `invoke {words}`: {exc}")
    assert contexts, f"{where}: `invoke {words}` names no task"


def test_an_unknown_option_is_caught() -> None:
    with pytest.raises(ParseError):
        parse("boot --no-such-option")
