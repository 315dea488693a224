"""A Python service's folder comes with it: builder/apps.py program_data and where
builder/image.py puts it (the boot that reads it: tests/qemu/test_stdlib.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.apps import program_data
from builder.formats import cpio
from builder.image import program_data_entries
from hostkit.errors import BuildError


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_programs_folder_comes_but_caches_hidden_files_and_other_projects(tmp_path) -> None:
    _tree(
        tmp_path,
        {
            "app.py": "",
            "helpers.py": "",
            "config.json": "{}",
            "templates/index.html": "<p>",
            "static/css/site.css": "p {}",
            "__pycache__/app.cpython-311.pyc": "",
            "lib/mod.pyc": "",
            ".git/HEAD": "",
            ".env": "SECRET=1",
            "venv/pyvenv.cfg": "",
            "venv/lib/big.so": "",
            "other/pinit.toml": "",
            "other/data.txt": "",
            "build/sdcard.img": "",
        },
    )
    found = program_data(tmp_path / "app.py", skip=(tmp_path / "build",))
    assert found == {
        "app.py": tmp_path / "app.py",
        "helpers.py": tmp_path / "helpers.py",
        "config.json": tmp_path / "config.json",
        "static/css/site.css": tmp_path / "static/css/site.css",
        "templates/index.html": tmp_path / "templates/index.html",
    }


def test_a_package_program_brings_its_own_folder_under_its_name(tmp_path) -> None:
    _tree(tmp_path, {"kiosk/__main__.py": "", "kiosk/ui/page.html": "", "notes.txt": ""})
    assert program_data(tmp_path / "kiosk") == {
        "kiosk/__main__.py": tmp_path / "kiosk/__main__.py",
        "kiosk/ui/page.html": tmp_path / "kiosk/ui/page.html",
    }


def test_data_goes_where_each_runtime_puts_the_program(tmp_path) -> None:
    _tree(tmp_path, {"a/app.py": "1", "a/page.html": "A", "b/tool.py": "2", "b/conf.ini": "B"})
    python = {"app": tmp_path / "a/app.py", "tool": tmp_path / "b/tool.py"}
    entries = program_data_entries(python, {"app": python["app"]}, [], set(), None)
    assert [(e.path, e.data) for e in entries if isinstance(e, cpio.File)] == [
        ("app.py", b"1"),
        ("page.html", b"A"),
        ("usr/lib/pinit/app/conf.ini", b"B"),
        ("usr/lib/pinit/app/tool.py", b"2"),
    ]


def test_a_path_the_builder_fills_or_two_folders_fill_differently_is_an_error(tmp_path) -> None:
    _tree(
        tmp_path, {"a/app.py": "", "a/init": "x", "b/app2.py": "", "a/x.txt": "1", "b/x.txt": "2"}
    )
    one = {"app": tmp_path / "a/app.py"}
    taken = [cpio.File("init", b"ELF", 0o755)]
    with pytest.raises(
        BuildError, match=r"a/init: beside service app's program, it would be /init"
    ):
        program_data_entries(one, one, taken, set(), None)
    # [image] files name the path themselves: theirs wins, as over the builder's /etc/hosts.
    placed = program_data_entries(one, one, taken, {"init"}, None)
    assert [e.path for e in placed] == ["app.py", "x.txt"]
    # The same bytes as the builder's file (the native runtime's program itself): left to it.
    same = [cpio.File("init", b"x", 0o755)]
    assert [e.path for e in program_data_entries(one, one, same, set(), None)] == [
        "app.py",
        "x.txt",
    ]
    (tmp_path / "a/init").unlink()
    two = {**one, "app2": tmp_path / "b/app2.py"}
    with pytest.raises(BuildError, match=r"b/x.txt: .* /x.txt in the image, as .*a/x.txt"):
        program_data_entries(two, two, [], set(), None)
    (tmp_path / "b/x.txt").write_text("1")  # the same content: one file
    placed = program_data_entries(two, two, [], set(), None)
    assert [e.path for e in placed] == ["app.py", "app2.py", "x.txt"]
