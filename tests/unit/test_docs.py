"""The docs cite only what exists: paths, modules, `invoke` options; every source file is named."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
from invoke import Collection, FilesystemLoader

from hostkit.paths import REPO
from tests.pynames import defined

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PACKAGES = ("init", "builder", "toolchain", "hostkit")
# Folders that hold outputs or the user's own files, not the repository's: cited, never present.
NOT_IN_REPO = ("build/",)
SOURCES = sorted(
    [REPO / "tasks.py"]
    + [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    + list((REPO / "init").glob("*.c"))
)


def cited(doc: Path) -> list[str]:
    """What a doc names in backticks (also inside code blocks' lines) and as link targets."""
    text = doc.read_text()
    spans = re.findall(r"`([^`\n]+)`", text)
    links = [
        t
        for t in re.findall(r"\]\(([^)\s]+)\)", text)
        if not re.match(r"[a-z]+:", t) and not t.startswith("#")
    ]
    return spans + [
        str((doc.parent / t.split("#")[0]).resolve().relative_to(REPO))
        for t in links
        if t.split("#")[0]
    ]


def top_level() -> set[str]:
    return {p.name for p in REPO.iterdir() if not p.name.startswith(".")} | {".ci"}


def repo_paths(doc: Path) -> list[str]:
    """Cited words that are paths in the repository: they start with one of its top-level names."""
    names = top_level() - {"build"}
    found = []
    for span in cited(doc):
        for word in span.split():
            word = word.strip("[](),:;'\"")
            if any(c in word for c in "*<>…{}$") or word.startswith(NOT_IN_REPO):
                continue
            first = word.split("/")[0]
            if ("/" in word and first in names) or (word in names and "." in word):
                found.append(word)
    return found


@cache
def top_names(module: Path) -> set[str]:
    return defined(ast.parse(module.read_text()).body)


def resolves(dotted: str) -> bool:
    """`builder.image`, `builder.python.compile.build_appliance`, `hostkit.run.run()`: a module,
    or a module and one name defined at its top."""
    parts = dotted.removesuffix("()").split(".")
    for i in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:i])
        module = (
            base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        )
        if module.exists():
            rest = parts[i:]
            return not rest or (len(rest) == 1 and rest[0] in top_names(module))
    return False


def path_exists(word: str) -> bool:
    word = word.rstrip("/")
    if (REPO / word).exists():
        return True
    # builder/python/compile.build_appliance: a file and a name in it
    head, _, name = word.rpartition(".")
    return (REPO / f"{head}.py").exists() and name in top_names(REPO / f"{head}.py")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_a_doc_names_exists(doc: Path) -> None:
    missing = sorted({w for w in repo_paths(doc) if not path_exists(w)})
    assert not missing, missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_module_a_doc_names_exists(doc: Path) -> None:
    modules = {
        span
        for span in cited(doc)
        if re.fullmatch(r"(init|builder|toolchain|hostkit)(\.\w+)+(\(\))?", span)
    }
    missing = sorted(m for m in modules if not resolves(m))
    assert not missing, missing


@cache
def task_flags() -> dict[str, set[str]]:
    module, _ = FilesystemLoader(start=str(REPO)).load("tasks")
    return {
        ctx.name: set(ctx.flags) | set(ctx.inverse_flags)
        for ctx in Collection.from_module(module).to_contexts()
    }


def invoke_commands(doc: Path) -> list[list[str]]:
    """Each `invoke …` command in a doc, as words, up to a comment or the end of the command."""
    commands = []
    for line in doc.read_text().splitlines():
        for span in re.findall(r"`([^`]*invoke [^`]*)`", line) or [line]:
            for m in re.finditer(r"\binvoke((?: [^#|;&`]*)?)", span):
                commands.append(m.group(1).replace("[", " ").replace("]", " ").split())
    return commands


@pytest.mark.parametrize("doc", DOCS + SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_invoke_option_a_doc_or_docstring_shows_exists(doc: Path) -> None:
    flags, wrong = task_flags(), []
    for words in invoke_commands(doc):
        task = None
        for word in words:
            if word in flags:
                task = word
            elif word.startswith("--") and task is not None:
                if word.split("=")[0] not in flags[task]:
                    wrong.append(f"invoke {task} {word}")
    assert not wrong, sorted(set(wrong))


def test_the_check_reads_the_tasks_and_their_options() -> None:
    flags = task_flags()
    assert "--from" in flags["image"] and "--no-builds" in flags["bench"]
    assert ["image", "--config", "FILE", "--from", "PATH"] in invoke_commands(REPO / "README.md")


def test_every_source_file_is_named_in_the_architecture() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [str(p.relative_to(REPO)) for p in SOURCES if f"`{p.relative_to(REPO)}`" not in text]
    assert not missing, missing


def catalogue() -> list[str]:
    """init/main.py's console catalogue: one pattern per line it lists, annotations left out."""
    doc = ast.get_docstring(ast.parse((REPO / "init" / "main.py").read_text())) or ""
    block = doc.split("Console lines", 1)[1].split("\n\n", 2)[1]
    entries: list[str] = []
    for line in block.splitlines():
        text = re.split(r"\s{2,}", line.strip())[0]
        if text.startswith("pinit: "):
            entries.append(text)
        elif entries and len(line) - len(line.lstrip()) < 20:  # the entry goes on, not its note
            entries[-1] += " " + text
    return entries


def pattern(entry: str) -> re.Pattern[str]:
    """A catalogue line as a regex: N K S X W SIG, <…>, ..., paths, errnos and names stand for
    any value of their kind."""
    words = {
        "N": r"\d+",
        "K": r"\d+",
        "S": r"-?\d+",
        "X": r"\d+(?:\.\d+)?",
        "W": r"\d+(?:\.\d+)?",
        "SIG": r"SIG[A-Z0-9]+",
        "app": r"[\w.-]+",
        "dummy": r"[\w-]+",
    }
    out = []
    for token in re.findall(
        r"<[^>]*>|\.\.\.|'[^']*'|E[A-Z]+ \([^)]*\)|/[\w/.=-]+|\w+(?:\|\w+)+"
        r"|\w+|\W",
        entry,
    ):
        if "|" in token:
            out.append(f"(?:{token})")
        elif token.startswith("<") or token == "...":
            out.append(".*")
        elif token.startswith("'") and len(token) > 1:
            out.append("'[^']*'")
        elif re.fullmatch(r"E[A-Z]+ \([^)]*\)", token):
            out.append(r"E[A-Z]+ \([^)]*\)")
        elif token.startswith("/"):
            out.append(r"/\S+")
        else:
            out.append(words.get(token, re.escape(token)))
    return re.compile("".join(out))


def test_the_console_catalogue_matches_the_golden_transcripts() -> None:
    """Every console line a golden boot shows is one that init/main.py's catalogue lists."""
    patterns = [pattern(entry) for entry in catalogue()]
    lines = {
        m.group(1)
        for path in sorted((REPO / "tests" / "golden").glob("*.txt"))
        for m in re.finditer(r"console\| (pinit: .*)$", path.read_text(), re.M)
    }
    unlisted = sorted(line for line in lines if not any(p.fullmatch(line) for p in patterns))
    assert lines and not unlisted, unlisted
