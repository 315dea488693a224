"""Requirements → lock → the one binary: the lock's rules, and real sdist builds for aarch64."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.python import pypi
from hostkit.errors import BuildError

SETUP = """from setuptools import Extension, setup
setup(name="blinky", version="1.0", packages=["blinky"],
      package_data={"blinky": ["pins.txt"]},
      ext_modules=[Extension("blinky._speed", ["src/speed.c"], define_macros=[("FAST", "1")])])
"""
SPEED_C = """#include <Python.h>
#ifndef FAST
#error FAST is not defined
#endif
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "blinky._speed", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&def); }
"""


def sdist(tmp: Path, speed_c: str = SPEED_C) -> Path:
    root = tmp / "blinky-1.0"
    (root / "blinky").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "setup.py").write_text(SETUP)
    (root / "blinky/__init__.py").write_text("from . import _speed\n")
    (root / "blinky/pins.txt").write_text("17 27 22\n")
    (root / "src/speed.c").write_text(speed_c)
    archive = tmp / "blinky-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return archive


def test_pure_wheels_are_told_from_binary_ones() -> None:
    assert pypi.PURE_TAGS.search("pyserial-3.5-py2.py3-none-any.whl")
    assert pypi.PURE_TAGS.search("paho_mqtt-2.1.0-py3-none-any.whl")
    assert not pypi.PURE_TAGS.search("gpiod-2.5.0-cp311-cp311-manylinux2014_x86_64.whl")


def test_a_lock_is_read_back_and_a_changed_requirement_is_an_error(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("pyserial==3.5\n")
    lock = tmp_path / pypi.LOCK_NAME
    assert pypi.read_lock(lock, [req]) is None
    dist = pypi.Dist("pyserial", "3.5", "pyserial-3.5-py2.py3-none-any.whl", "ab" * 32)
    lock.write_text(json.dumps({"format": 1, "requirements": {
        "requirements.txt": pypi.sha256_of(req)}, "distributions": [dist.__dict__]}))
    assert pypi.read_lock(lock, [req]) == [dist]
    req.write_text("pyserial==3.4\n")
    with pytest.raises(BuildError, match=r"requirements.txt changed since the lock") as err:
        pypi.read_lock(lock, [req])
    assert "invoke lock" in err.value.hint


def test_a_lock_that_is_not_json_says_so(tmp_path: Path) -> None:
    lock = tmp_path / pypi.LOCK_NAME
    lock.write_text("pyserial==3.5\n")
    with pytest.raises(BuildError, match="not a pinit lock file"):
        pypi.read_lock(lock, [])


def test_an_sdist_is_built_for_aarch64_with_its_package_data(toolchain, tmp_path) -> None:
    archive = sdist(tmp_path)
    dist = pypi.Dist("blinky", "1.0", archive.name, pypi.sha256_of(archive))
    lib, obj = tmp_path / "lib", tmp_path / "obj"
    lib.mkdir()
    obj.mkdir()
    modules = pypi._build_sdist(dist, archive, tmp_path / "work", lib, obj, toolchain)
    assert modules == {"blinky._speed": {"libs": [], "requires": [], "package": "blinky",
                                         "init": "PyInit_pinitpkg_blinky___speed"}}
    assert (lib / "blinky/__init__.py").is_file() and (lib / "blinky/pins.txt").is_file()
    assert not list(lib.rglob("*.so"))
    (o,) = obj.iterdir()
    header = subprocess.run(["aarch64-linux-gnu-readelf", "-h", o], capture_output=True,
                            text=True, check=True).stdout
    assert "AArch64" in header
    symbols = subprocess.run(["aarch64-linux-gnu-nm", o], capture_output=True, text=True,
                             check=True).stdout
    assert "T PyInit_pinitpkg_blinky___speed" in symbols


def test_an_extension_that_does_not_compile_names_the_package(toolchain, tmp_path) -> None:
    archive = sdist(tmp_path, SPEED_C.replace("return", "retrun"))
    dist = pypi.Dist("blinky", "1.0", archive.name, pypi.sha256_of(archive))
    (tmp_path / "lib").mkdir()
    (tmp_path / "obj").mkdir()
    with pytest.raises(BuildError, match=r"^blinky 1.0: its C extension does not compile for "
                                         r"aarch64: .*error"):
        pypi._build_sdist(dist, archive, tmp_path / "work", tmp_path / "lib", tmp_path / "obj",
                          toolchain)


def test_a_c_extension_with_only_binary_wheels_stops_the_build(monkeypatch, tmp_path) -> None:
    def no_sdist(args: list[str], what: str, cwd: Path | None = None) -> None:
        raise BuildError(f"{what}: pip failed: No matching distribution found")
    monkeypatch.setattr(pypi, "_pip", no_sdist)
    with pytest.raises(BuildError, match=r"^fastlib 1.0: a C extension and no source "
                                         r"distribution on the index") as err:
        pypi._sdist_of("fastlib", "1.0", tmp_path)
    assert "pure-Python alternative" in err.value.hint


def test_a_failed_package_build_keeps_nothing(toolchain, monkeypatch, tmp_path) -> None:
    from dataclasses import replace

    archive = sdist(tmp_path, SPEED_C.replace("return", "retrun"))
    dist = pypi.Dist("blinky", "1.0", archive.name, pypi.sha256_of(archive))
    monkeypatch.setattr(pypi, "fetch", lambda d, cache: archive)
    cache = tmp_path / "cache"
    cache.mkdir()
    with pytest.raises(BuildError, match="blinky 1.0"):
        pypi.ensure_site([dist], replace(toolchain, cache=cache))
    assert list(cache.iterdir()) == []
