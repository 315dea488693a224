"""Requirements → lock → the one binary: the lock's rules, and real sdist builds for each target."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from dataclasses import fields, replace
from pathlib import Path

import pytest

from builder.python import index, native, pypi
from builder.python import sdist as sdists
from hostkit.errors import BuildError
from tests.conftest import in_ci
from toolchain import provision
from toolchain.provision import Toolchain
from toolchain.target import AARCH64, ARMHF, TARGETS, Target

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


# Compiles only where the target's own pyconfig.h is the one included: the word size it says
# is the compiler's.
SIZES_C = """#include <Python.h>
#if SIZEOF_LONG != __SIZEOF_LONG__ || SIZEOF_VOID_P != __SIZEOF_POINTER__
#error pyconfig.h is another machine's
#endif"""


def sdist(tmp: Path, speed_c: str = SPEED_C, init: str = "from . import _speed\n") -> Path:
    root = tmp / "blinky-1.0"
    (root / "blinky").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "setup.py").write_text(SETUP)
    (root / "blinky/__init__.py").write_text(init)
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
    lock.write_text(
        json.dumps(
            {
                "format": 1,
                "requirements": {"requirements.txt": pypi.sha256_of(req)},
                "distributions": [dist.__dict__],
            }
        )
    )
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


def for_target(toolchain: Toolchain, target: Target) -> Toolchain:
    """The provisioned toolchain for `target`: its locked sysroot, its cross compiler."""
    if shutil.which(sdists.cross_cc(target)) is None:
        if in_ci():
            pytest.fail(f"{sdists.cross_cc(target)} is missing: `invoke toolchain` installs it")
        pytest.skip(f"{sdists.cross_cc(target)} is not installed")
    try:
        return provision.for_target(toolchain, target)
    except BuildError as exc:
        if in_ci():
            raise
        pytest.skip(f"the {target.name} sysroot is not provisioned ({exc})")


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_an_sdist_is_built_for_each_target_with_its_package_data(
    toolchain, tmp_path, target
) -> None:
    """The same replayed build for every target: its cross compiler, its sysroot's pyconfig.h
    (sizeof(long) 4 on the 32-bit Pis), one object of its machine and word size."""
    archive = sdist(tmp_path, SPEED_C.replace("#include <Python.h>", SIZES_C))
    lib, obj = tmp_path / "lib", tmp_path / "obj"
    lib.mkdir()
    obj.mkdir()
    tc = for_target(toolchain, target)
    modules = sdists.build("blinky", "1.0", archive, tmp_path / "work", lib, obj, tc)
    assert modules == {
        "blinky._speed": {
            "libs": [],
            "requires": [],
            "package": "blinky",
            "init": "PyInit_pinitpkg_blinky___speed",
        }
    }
    assert (lib / "blinky/__init__.py").is_file() and (lib / "blinky/pins.txt").is_file()
    assert not list(lib.rglob("*.so"))
    (o,) = obj.iterdir()
    head = o.read_bytes()[:20]
    assert head[4] == (2 if target.elf_bits == 64 else 1)  # ELFCLASS64, ELFCLASS32
    assert int.from_bytes(head[18:20], "little") == target.elf_machine
    symbols = subprocess.run(
        [f"{target.cross}nm", o], capture_output=True, text=True, check=True
    ).stdout
    assert "T PyInit_pinitpkg_blinky___speed" in symbols


def test_an_extension_that_does_not_compile_names_the_package(toolchain, tmp_path) -> None:
    archive = sdist(tmp_path, SPEED_C.replace("return", "retrun"))
    (tmp_path / "lib").mkdir()
    (tmp_path / "obj").mkdir()
    with pytest.raises(
        BuildError,
        match=r"^blinky 1.0: its C extension does not compile for "
        r"aarch64: .*error",
    ):
        sdists.build(
            "blinky",
            "1.0",
            archive,
            tmp_path / "work",
            tmp_path / "lib",
            tmp_path / "obj",
            toolchain,
        )


GUARDED = "try:\n    from ._speed import fast\nexcept ImportError:\n    fast = None\n"


def test_an_optional_speedup_that_does_not_compile_is_left_out_with_a_warning(
    toolchain, tmp_path, capsys
) -> None:
    archive = sdist(tmp_path, SPEED_C.replace("return", "retrun"), init=GUARDED)
    lib, obj = tmp_path / "lib", tmp_path / "obj"
    lib.mkdir()
    obj.mkdir()
    modules = sdists.build("blinky", "1.0", archive, tmp_path / "work", lib, obj, toolchain)
    assert modules == {}
    assert list(obj.iterdir()) == []
    assert (lib / "blinky/__init__.py").read_text() == GUARDED
    err = capsys.readouterr().err
    assert "warning: blinky 1.0: built without its optional C module blinky._speed" in err


def write(lib: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (lib / name).parent.mkdir(parents=True, exist_ok=True)
        (lib / name).write_text(text)
    return lib


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # markupsafe: the package's __init__ falls back to the pure module.
        (
            {
                "pkg/__init__.py": "try:\n    from ._speedups import escape\n"
                "except ImportError:\n    from ._native import escape\n"
            },
            True,
        ),
        # pyyaml: an unguarded import in a module that only a guarded import reaches.
        (
            {
                "pkg/__init__.py": "try:\n    from .cyaml import *\nexcept ImportError:\n    pass\n",
                "pkg/cyaml.py": "from pkg._speedups import CParser\n",
            },
            True,
        ),
        # ...but reached unguarded from the package: needed.
        (
            {
                "pkg/__init__.py": "from .cyaml import *\n",
                "pkg/cyaml.py": "from ._speedups import CParser\n",
            },
            False,
        ),
        # except (ValueError, ImportError) and a bare except count; except ValueError does not.
        (
            {
                "pkg/__init__.py": "try:\n    import pkg._speedups\nexcept (ValueError, ImportError):\n"
                "    pass\n"
            },
            True,
        ),
        (
            {
                "pkg/__init__.py": "try:\n    from . import _speedups\nexcept ValueError:\n"
                "    pass\n"
            },
            False,
        ),
        # Imported by no module (loaded by a computed name): not provably optional.
        ({"pkg/__init__.py": "import importlib\n"}, False),
    ],
)
def test_an_extension_is_optional_only_when_every_import_of_it_is_guarded(
    tmp_path, files, expected
) -> None:
    assert sdists.optional(write(tmp_path, files), "pkg._speedups") is expected


HOST_WHEEL = index.File("fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "file:///a", "aa")
PURE_WHEEL = index.File("fast-1.0-py3-none-any.whl", "file:///c", "cc")
PI_WHEEL = index.File("fast-1.0-cp311-cp311-manylinux_2_17_aarch64.whl", "file:///d", "dd")


def meson_sdist(tmp: Path, backend: str) -> Path:
    root = tmp / "src" / "fast-1.0"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[build-system]\nrequires = []\nbuild-backend = "{backend}"\n'
    )
    archive = tmp / "fast-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    return archive


@pytest.mark.parametrize(
    ("host", "pi", "backend", "expected"),
    [
        ([HOST_WHEEL, PURE_WHEEL], [], "", PURE_WHEEL.filename),  # pure beside binary
        ([HOST_WHEEL, "sdist"], [PI_WHEEL], "setuptools.build_meta", "fast-1.0.tar.gz"),
        ([HOST_WHEEL, "sdist"], [PI_WHEEL], "mesonpy", PI_WHEEL.filename),  # native runtime
        ([HOST_WHEEL], [PI_WHEEL], "", PI_WHEEL.filename),  # no sdist at all
        ([HOST_WHEEL, "sdist"], [], "maturin", "fast-1.0.tar.gz"),  # its build says why
    ],
)
def test_what_the_pi_takes_of_a_release_with_compiled_code(
    monkeypatch, tmp_path, host, pi, backend, expected
) -> None:
    archive = meson_sdist(tmp_path, backend)
    source = index.File(archive.name, archive.as_uri(), pypi.sha256_of(archive))
    host = [source if f == "sdist" else f for f in host]
    monkeypatch.setattr(index, "files", lambda name, version, machine="": pi if machine else host)
    monkeypatch.setattr(pypi, "fetch", lambda dist, cache: archive)
    assert pypi._for_the_pi("fast", "1.0", tmp_path).filename == expected


def test_the_build_system_is_read_from_the_sdist(tmp_path) -> None:
    root = tmp_path / "pkg-1.0"
    root.mkdir()
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    assert sdists.build_system(archive) == sdists.BuildSystem("", sdists.DEFAULT_REQUIRES)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["meson-python", "Cython"]\nbuild-backend = "mesonpy"\n'
    )
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    assert sdists.build_system(archive) == sdists.BuildSystem("mesonpy", ("meson-python", "Cython"))


def test_an_unsupported_build_backend_stops_the_build_naming_it(toolchain, tmp_path) -> None:
    root = tmp_path / "fastnum-2.0"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["meson-python"]\nbuild-backend = "mesonpy"\n'
    )
    archive = tmp_path / "fastnum-2.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=root.name)
    with pytest.raises(
        BuildError,
        match=r"^fastnum 2.0: its build backend mesonpy cannot be "
        r"built for the Pi yet",
    ):
        sdists.build(
            "fastnum",
            "2.0",
            archive,
            tmp_path / "work",
            tmp_path / "lib",
            tmp_path / "obj",
            toolchain,
        )


def test_a_c_extension_with_only_binary_wheels_stops_the_build(monkeypatch) -> None:
    wheel = index.File("fastlib-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "file:///x", "00")
    monkeypatch.setattr(
        index, "files", lambda name, version, machine="": [] if machine else [wheel]
    )
    with pytest.raises(
        BuildError,
        match=r"^fastlib 1.0: compiled code, and the index has neither "
        r"its source distribution nor a wheel for the Pi",
    ) as err:
        pypi._for_the_pi("fastlib", "1.0", Path("/nonexistent"))
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


def test_a_site_lists_its_packages_and_the_metadata_of_its_sdist_builds(
    toolchain, monkeypatch, tmp_path
) -> None:
    from dataclasses import replace

    archive = sdist(tmp_path)
    dist = pypi.Dist("blinky", "1.0", archive.name, pypi.sha256_of(archive))
    monkeypatch.setattr(pypi, "fetch", lambda d, cache: archive)
    cache = tmp_path / "cache"
    cache.mkdir()
    site = pypi.ensure_site([dist], replace(toolchain, cache=cache))
    assert site.packages == ("blinky",) and site.distributions == ("blinky-1.0.dist-info",)
    metadata = (site.lib / "blinky-1.0.dist-info" / "METADATA").read_text()
    assert "Name: blinky\nVersion: 1.0\n" in metadata
    assert site.ext is not None and (site.ext / "modules.json").is_file()


def test_a_requirements_file_needs_the_native_runtime_when_one_of_its_packages_is_a_pi_wheel() -> (
    None
):
    numpy = pypi.Dist("numpy", "2.2.6", "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl", "aa")
    serial = pypi.Dist("pyserial", "3.5", "pyserial-3.5-py2.py3-none-any.whl", "bb")
    lock = pypi.Lock(
        [numpy, serial],
        {},
        {"native.txt": ["numpy", "pyserial"], "requirements.txt": ["pyserial"]},
        {},
    )
    assert numpy.is_native and not serial.is_native
    assert lock.native_files() == {"native.txt"}


def test_the_native_site_is_the_wheels_compiled_to_pyc(toolchain, tmp_path) -> None:
    import zipfile

    from builder.python import native

    wheel = tmp_path / "blinky-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("blinky/__init__.py", "VALUE = 42\n")
        z.writestr("blinky/pins.txt", "17\n")
        z.writestr("blinky-1.0.dist-info/METADATA", "Name: blinky\nVersion: 1.0\n")
    files = native.site([wheel], None, (), tmp_path / "cache", toolchain)
    assert set(files) == {
        f"{native.SITE}/blinky/__init__.pyc",
        f"{native.SITE}/blinky/pins.txt",
        f"{native.SITE}/blinky-1.0.dist-info/METADATA",
    }
    import marshal

    code = marshal.loads(files[f"{native.SITE}/blinky/__init__.pyc"][16:])
    assert code.co_filename == f"/{native.SITE}/blinky/__init__.py"


def test_a_package_only_a_native_service_needs_is_not_built_for_the_static_binary() -> None:
    numpy = pypi.Dist("numpy", "2.2.6", "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl", "aa")
    pillow = pypi.Dist("pillow", "11.1.0", "pillow-11.1.0.tar.gz", "bb")
    serial = pypi.Dist("pyserial", "3.5", "pyserial-3.5-py2.py3-none-any.whl", "cc")
    lock = pypi.Lock(
        [numpy, pillow, serial],
        {},
        {"native.txt": ["numpy", "pillow", "pyserial"], "requirements.txt": ["pyserial"]},
        {},
    )
    assert lock.static_dists() == [serial]
    assert pypi.Lock([numpy, pillow, serial], {}, {}, {}).static_dists() == [pillow, serial]


def test_python_wheels_takes_a_package_as_its_pi_wheel_and_a_change_needs_a_new_lock(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setattr(
        index, "files", lambda name, version, machine="": [PI_WHEEL] if machine else [HOST_WHEEL]
    )
    assert pypi._pi_wheel("fast", "1.0").filename == PI_WHEEL.filename
    monkeypatch.setattr(index, "files", lambda name, version, machine="": [])
    with pytest.raises(
        BuildError,
        match=r"^fast 1.0: \[python\] wheels names it, and the index "
        r"has no wheel of it for the Pi",
    ):
        pypi._pi_wheel("fast", "1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("fast==1.0\n")
    lock = tmp_path / pypi.LOCK_NAME
    lock.write_text(
        json.dumps(
            {
                "format": 1,
                "requirements": {"requirements.txt": pypi.sha256_of(req)},
                "distributions": [],
                "wheels": ["fast"],
            }
        )
    )
    assert pypi.read_lock(lock, [req], ("Fast",)) == []
    with pytest.raises(BuildError, match=r"\[python\] wheels changed since the lock"):
        pypi.read_lock(lock, [req], ())


def fake_toolchain(root: Path, target: Target) -> Toolchain:
    paths = {f.name: root / f.name for f in fields(Toolchain) if f.name != "target"}
    return Toolchain(**paths, target=target)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", TARGETS.values(), ids=list(TARGETS))
def test_an_extension_compiles_with_its_targets_compiler_headers_and_kernel_headers(
    tmp_path, target
) -> None:
    tc = fake_toolchain(tmp_path, target)
    src = tmp_path / "work" / "src" / "fast-1.0"
    src.mkdir(parents=True)
    ext = {
        "name": "fast._c",
        "sources": ["fast/a.c", "fast/b.cpp"],
        "include_dirs": [],
        "define_macros": [],
        "undef_macros": [],
        "extra_compile_args": [],
        "libraries": [],
    }
    (c, cxx) = sdists._jobs("fast 1.0", ext, src, tmp_path / "obj", tc, {})
    assert c[0] == f"{target.triplet}-gcc" and cxx[0] == f"{target.triplet}-g++"
    assert f"-I{tc.sysroot}/usr/include/{target.triplet}/python3.11" in c  # its pyconfig.h
    assert f"-I{tc.sysroot}/usr/include/python3.11" in c and f"--sysroot={tc.sysroot}" in c
    assert not [f for f in c if "aarch64" in f and target != AARCH64]
    asm = tmp_path / "work" / "src" / "kernel" / "asm"
    assert asm.readlink() == tc.sysroot / "usr/include" / target.triplet / "asm"


def test_a_missing_cross_compiler_is_named_with_its_target(tmp_path) -> None:
    target = replace(ARMHF, name="nonesuch", triplet="nonesuch-linux-gnu")
    with pytest.raises(
        BuildError,
        match=r"^fast 1.0: its C extension needs nonesuch-linux-gnu-gcc, the nonesuch cross "
        r"compiler, which is not installed",
    ):
        sdists._compile("fast 1.0", [sdists.cross_cc(target), "-c", "a.c"], target)


def test_only_a_target_with_a_native_runtime_takes_binary_wheels() -> None:
    assert native.wheel_machine(AARCH64) == "aarch64"
    assert [t.name for t in TARGETS.values() if native.wheel_machine(t)] == ["aarch64"]
    wheel = pypi.Dist("fast", "1.0", PI_WHEEL.filename, "dd")
    armv7 = pypi.Dist("fast", "1.0", "fast-1.0-cp311-cp311-manylinux_2_17_armv7l.whl", "ee")
    assert (wheel.machine, armv7.machine) == ("aarch64", "armv7l")
    for name, machine in (
        ("numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "aarch64"),
        ("fast-1.0-cp311-cp311-manylinux2014_x86_64.whl", "x86_64"),
        ("fast-1.0-cp311-cp311-musllinux_1_1_armv7l.whl", "armv7l"),
        ("fast-1.0-cp311-cp311-linux_armv6l.whl", "armv6l"),
    ):
        assert pypi.Dist("fast", "1.0", name, "").machine == machine, name
    assert pypi.Dist("pyserial", "3.5", "pyserial-3.5-py2.py3-none-any.whl", "").machine == ""
    assert pypi.Dist("fast", "1.0", "fast-1.0.tar.gz", "").machine == ""


def test_a_32_bit_pi_takes_the_sdist_and_never_a_binary_wheel(monkeypatch, tmp_path) -> None:
    archive = meson_sdist(tmp_path, "mesonpy")  # aarch64 would take the wheel (native runtime)
    source = index.File(archive.name, archive.as_uri(), pypi.sha256_of(archive))
    asked: list[str] = []

    def files(name: str, version: str, machine: str = "") -> list[index.File]:
        asked.append(machine)
        return [PI_WHEEL] if machine else [HOST_WHEEL, source]

    monkeypatch.setattr(index, "files", files)
    monkeypatch.setattr(pypi, "fetch", lambda dist, cache: archive)
    assert pypi._for_the_pi("fast", "1.0", tmp_path, AARCH64).filename == PI_WHEEL.filename
    asked.clear()
    assert pypi._for_the_pi("fast", "1.0", tmp_path, ARMHF).filename == archive.name
    assert asked == [""]  # no binary wheel is even looked for
    monkeypatch.setattr(index, "files", lambda name, version, machine="": [HOST_WHEEL])
    with pytest.raises(
        BuildError,
        match=r"^fast 1.0: compiled code, and the index has neither its source distribution, "
        r"and a armhf Pi takes no binary wheels",
    ):
        pypi._for_the_pi("fast", "1.0", tmp_path, ARMHF)
    with pytest.raises(BuildError, match=r"\[python\] wheels names it.*\(armhf, CPython"):
        pypi._pi_wheel("fast", "1.0", ARMHF)


def test_a_lock_with_a_binary_wheel_is_refused_on_a_target_without_a_native_runtime(
    tmp_path,
) -> None:
    numpy = pypi.Dist("numpy", "2.2.6", "numpy-2.2.6-cp311-cp311-manylinux_2_17_aarch64.whl", "a")
    pillow = pypi.Dist("pillow", "11.1.0", "pillow-11.1.0.tar.gz", "b")
    serial = pypi.Dist("pyserial", "3.5", "pyserial-3.5-py2.py3-none-any.whl", "c")
    path = tmp_path / pypi.LOCK_NAME
    pypi.check_target(pypi.Lock([numpy, serial], {}, {}, {}), path, AARCH64)
    pypi.check_target(pypi.Lock([pillow, serial], {}, {}, {}), path, ARMHF)
    with pytest.raises(
        BuildError,
        match=r"pinit.lock: numpy 2.2.6: locked as binary wheels for another Pi, and a armhf "
        r"Pi takes no binary wheels",
    ):
        pypi.check_target(pypi.Lock([numpy, serial], {}, {}, {}), path, ARMHF)
    with pytest.raises(BuildError, match="pillow 11.1.0: locked as binary wheels"):
        pillow_wheel = pypi.Dist("pillow", "11.1.0", numpy.filename.replace("numpy", "pillow"), "")
        pypi.check_target(
            pypi.Lock([pillow, serial], {}, {}, {"pillow": pillow_wheel}), path, ARMHF
        )


def test_a_site_is_cached_per_target() -> None:
    tc = fake_toolchain(Path("/nonexistent"), AARCH64)
    digests = {pypi.site_digest([], {}, replace(tc, target=t)) for t in TARGETS.values()}
    assert len(digests) == len(TARGETS)
