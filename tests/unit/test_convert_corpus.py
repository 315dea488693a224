"""The corpus of classic /init scripts (tests/corpus/*.sh) read as a conversion reads them.

Each script goes into a classic boot folder (fake busybox, a fake ELF /app/probe, dummy.ko) and
through sources.from_initramfs; what the conversion reports and the services it makes are
compared with tests/golden/convert/<case>.txt. tests/qemu/test_corpus_boot.py boots the same
scripts for real, under busybox and converted. After an intended change, review and rewrite:
    PINIT_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_convert_corpus.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_convert import classic
from test_kmod import RELEASE, fake_ko

from builder.convert import sources
from builder.convert.sh import parse
from builder.formats import cpio
from hostkit.paths import REPO

CORPUS = REPO / "tests" / "corpus"
GOLDEN = REPO / "tests" / "golden" / "convert"
CASES = sorted(p.stem for p in CORPUS.glob("*.sh"))
PROBE = b"\x7fELF" + b"\0" * 60 + b"probe"


def converted(tmp_path: Path, case: str) -> str:
    folder = classic(
        tmp_path,
        (CORPUS / f"{case}.sh").read_text(),
        [
            cpio.File("app/probe", PROBE, 0o755),
            cpio.File("opt/probe", PROBE, 0o755),
            cpio.File("lib/modules/dummy.ko", fake_ko("dummy")),
            cpio.Dir("tmp"),
        ],
    )
    src = sources.detect(folder, tmp_path / "work")
    parts = sources.Parts(tmp_path / "work" / "modules", release=RELEASE)
    sources.from_initramfs(src, tmp_path / "work", parts, configured=False)
    assert parts.services, "every case has a program to run"
    lines = [
        f"# Written by tests/unit/test_convert_corpus.py from tests/corpus/{case}.sh "
        "(PINIT_UPDATE_GOLDEN=1 rewrites it).",
        *parts.report,
        "services:",
    ]
    for s in parts.services:
        lines.append(
            f"  {s.name}: exec={s.exec} args={list(s.args)} env={dict(s.env)} "
            f"cwd={s.cwd} restart={s.restart} backoff={s.backoff_start:g}-"
            f"{s.backoff_max:g} wait_for={list(s.wait_for)}"
        )
    lines += [
        f"modules: {[(m.name, m.params) for m in parts.modules]}",
        f"data: {parts.data}",
        f"hostname: {parts.hostname or '-'}",
        f"network: {list(parts.network)}",
        f"time servers: {list(parts.time.servers)}",
    ]
    return "\n".join(lines).replace(str(tmp_path), "<tmp>") + "\n"


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_corpus_report(case: str, tmp_path: Path) -> None:
    text = converted(tmp_path, case)
    golden = GOLDEN / f"{case}.txt"
    if os.environ.get("PINIT_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no {golden}; create it with PINIT_UPDATE_GOLDEN=1"
    assert text == golden.read_text()


@pytest.mark.parametrize("case", CASES)
def test_corpus_parses_as_the_shell_does(case: str) -> None:
    """Every corpus script is a whole tree, each line of a command accounted to its line."""
    tree = parse.parse((CORPUS / f"{case}.sh").read_text())
    assert tree.items
