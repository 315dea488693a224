"""The README's "Using it" commands, run as written: `invoke image`, then each `invoke boot`.

A boot that would wait at an interactive console (`invoke boot` alone) gets a short `--expect`
for the demo's line; `invoke image --from` needs an old image and is run by
tests/qemu/test_convert_boot.py. tests/unit/test_docs_commands.py parses every documented
command against tasks.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(
        shutil.which("qemu-system-aarch64") is None,
        reason="qemu-system-aarch64 is not installed (invoke toolchain)",
    ),
]
REPO = Path(__file__).resolve().parents[2]
INVOKE = Path(sys.executable).with_name("invoke")


def using_it() -> list[list[str]]:
    """The invoke command lines of the README's "Using it" code block, comments stripped."""
    section = REPO.joinpath("README.md").read_text().split("## Using it", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == ".venv/bin/invoke":
            commands.append(words[1:])
    return commands


def scripted(words: list[str]) -> list[str]:
    if words[0] == "boot" and not {"--expect", "--timeline"} & set(words):
        return [*words, "--expect", "Hello world!"]
    return words


def test_using_it_commands_run(built_init) -> None:
    commands = using_it()
    assert ["boot"] in commands and ["image"] in commands
    for words in commands:
        if "--from" in words:
            continue
        cmd = [str(INVOKE), *scripted(words)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{shlex.join(cmd)} failed:\n{out[-3000:]}"
        if words[0] == "boot" and "--timeline" not in words:
            assert re.search(r"Hello world!", out), out[-2000:]
