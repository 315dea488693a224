"""The toolchain's pure parts: apt source derivation, the lock, cache verification, the Nuitka pin."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from hostkit.errors import BuildError
from hostkit.paths import REPO
from toolchain import apt, provision
from toolchain.apt import Apt, Locked, derive_sources


def test_derive_sources_adds_non_free_firmware_and_keeps_only_the_suite(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://other.example/apt\nSuites: nodistro\nComponents: main\n"
    )
    (tmp_path / "sources.list").write_text(
        "deb [signed-by=/k.gpg] http://sec.example/debian-security bookworm-security main\n"
        "deb http://x.example/ cloud-sdk-bookworm main\n"
    )
    text = derive_sources("bookworm", tmp_path)
    assert "nodistro" not in text and "cloud-sdk" not in text
    assert text.count("Components: main non-free-firmware") == 2
    assert "Suites: bookworm bookworm-updates" in text
    assert text.count("Types: deb deb-src") == 2
    assert "Signed-By: /k.gpg" in text


def test_derive_sources_without_a_matching_source_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://x.example/ trixie main\n")
    with pytest.raises(BuildError, match="no apt source for Debian bookworm"):
        derive_sources("bookworm", tmp_path)


def test_lock_lists_every_role_with_versions_and_hashes() -> None:
    locked = provision.read_lock()
    roles = {p.role for p in locked}
    assert roles == {
        "host",
        "sysroot",
        "kernel",
        "firmware",
        "baseline",
        "runtime",
        "wifi",
        "testkit",
        "kbuild",
        "kernel-armhf",
        "sysroot-armhf",
        "runtime-armhf",
        "kernel-armel",
        "sysroot-armel",
        "runtime-armel",
    }
    for p in locked:
        assert p.version and len(p.sha256) == 64, p
    names = {p.name for p in locked}
    assert {
        "libpython3.11-dev",
        "gcc-aarch64-linux-gnu",
        "raspi-firmware",
        "busybox-static",
        "libpython3.11-minimal",
        "netbase",
        "libpython3.11-testsuite",
    } <= names
    assert any(n.startswith("linux-image-6.1.0-") for n in names)
    sdist = json.loads(provision.LOCK.read_text())["cffi_sdist"]
    assert sdist["name"] == "cffi" and len(sdist["sha256"]) == 64


def test_the_kernel_and_its_headers_are_locked_together() -> None:
    locked = provision.read_lock()
    provision.check_lock(locked)  # the lock in git agrees with itself
    kbuild = {p.name: p for p in locked if p.role == "kbuild"}
    kernel = next(p for p in locked if p.role == "kernel")
    release = kernel.name.removeprefix("linux-image-")
    assert {f"linux-headers-{release}", f"linux-headers-{release.rsplit('-', 1)[0]}-common"} < set(
        kbuild
    )
    assert any(p.arch == provision.HOST_ARCH for p in kbuild.values())  # kbuild's programs
    older = [replace(p, version="6.1.0-0") if p.role == "kbuild" else p for p in locked]
    with pytest.raises(BuildError, match="the kernel .* and its headers and kbuild .* are at"):
        provision.check_lock(older)
    moved = [
        replace(p, version="3.11.1-1") if p.role == "sysroot-armhf" and "python" in p.name else p
        for p in locked
    ]
    with pytest.raises(BuildError, match="the armhf sysroot is not at the aarch64 one's versions"):
        provision.check_lock(moved)


def test_broken_lock_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "lock.json"
    bad.write_text("{")
    with pytest.raises(BuildError, match="not a valid lock file"):
        provision.read_lock(bad)
    with pytest.raises(BuildError, match="lock file missing"):
        provision.read_lock(tmp_path / "missing.json")


def test_tampered_cache_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = Locked("zlib1g-dev", "arm64", "1:1.2.13.dfsg-1", "0" * 64, "zlib.deb", "sysroot")
    (tmp_path / "zlib.deb").write_bytes(b"not what the lock names")
    monkeypatch.setattr(Apt, "__init__", lambda self, *a, **k: None)
    with pytest.raises(BuildError, match="zlib1g-dev: .* does not match the lock's sha256"):
        Apt("arm64", "bookworm").download(pkg, tmp_path)


def test_sha256_of_reads_the_whole_file(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"a" * (3 << 20))
    import hashlib

    assert apt.sha256_of(f) == hashlib.sha256(b"a" * (3 << 20)).hexdigest()


def test_nuitka_adaptation_still_matches_the_pinned_nuitka() -> None:
    """A Nuitka upgrade must fail here, loudly, not silently produce a host-linked binary."""
    import nuitka.build.SconsInterface as SconsInterface
    import nuitka.PythonVersions as PythonVersions
    import nuitka.utils.StaticLibraries as StaticLibraries
    from nuitka.Version import getNuitkaVersion

    from toolchain import nuitka_patches, nuitka_pin

    assert getNuitkaVersion() == nuitka_pin.NUITKA_VERSION
    assert hasattr(StaticLibraries, "_static_lib_python_path")
    assert (
        StaticLibraries.getSystemStaticLibPythonPath.__code__.co_names.count(
            "_static_lib_python_path"
        )
        >= 1
    )
    assert callable(PythonVersions.getTargetPythonIncludePath)
    assert SconsInterface.getTargetPythonIncludePath is PythonVersions.getTargetPythonIncludePath
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"nuitka=={nuitka_pin.NUITKA_VERSION}"' in pyproject
    # Each line the plugin drops from Nuitka's start-up C is there, once.
    import nuitka.build

    static_src = Path(nuitka.build.__file__).parent / "static_src"
    for name, line, _code, _why in nuitka_patches.STARTUP_PATCHES:
        assert (static_src / name).read_text().count(line) == 1, (name, line)
    # nuitka_patches.main_files replaces this method of every module.
    nodes = (Path(nuitka.build.__file__).parent.parent / "nodes" / "ModuleNodes.py").read_text()
    assert nodes.count("    def getRunTimeFilename(self):") == 1
    # init/__init__.py finds Nuitka's loader on sys.meta_path by its type's name.
    assert '"nuitka_module_loader",' in (static_src / "MetaPathBasedLoader.c").read_text()


# Every name of Nuitka's internals that toolchain/nuitka_patches.py replaces or reads, by module.
NUITKA_INTERNALS = {
    "nuitka.Version": ("getNuitkaVersion",),
    "nuitka.PythonVersions": ("getTargetPythonIncludePath",),
    "nuitka.utils.StaticLibraries": ("_static_lib_python_path",),
    "nuitka.utils.Importing": ("isBuiltinModuleName", "builtin_module_names"),
    "nuitka.HardImportRegistry": ("addModuleDynamicHard",),
    "nuitka.plugins.standard.AntiBloatPlugin": ("NuitkaPluginAntiBloat",),
    "nuitka.MainControl": ("provideStaticSourceFilesBackend", "createMultidistMainSourceCode"),
    "nuitka.tree.ReformulationNamespacePackages": ("_getNameSpacePathExpression",),
    "nuitka.nodes.ConstantRefNodes": ("makeConstantRefNode",),
    "nuitka.nodes.ModuleNodes": ("PythonModuleBase",),
    "nuitka.freezer.ImportDetection": ("_early_modules_names", "_stdlib_modules_names"),
    "nuitka.utils.ModuleNames": ("ModuleName", "makeMultidistModuleName", "trigger_names"),
    "nuitka.options.Options": ("getMainEntryPointFilenames",),
    "nuitka.ModuleRegistry": ("getDoneModules",),
    "nuitka.plugins.Plugins": ("getActivePlugins",),
    "nuitka.tree.Building": (
        "hasCachedImportedModuleUsageAttempts",
        "getCachedImportedModuleUsageAttempts",
    ),
    "nuitka.importing.Importing": ("locateModule", "makeModuleUsageAttempt"),
    "nuitka.BytecodeCaching": (
        "getCachedImportedModuleUsageAttempts",
        "writeImportedModulesNamesToCache",
    ),
}


def test_every_nuitka_internal_the_patches_use_exists() -> None:
    """toolchain/nuitka_patches.py names no internal of Nuitka's that this list lacks, and each
    is still defined in the pinned Nuitka (read from its source: most of these modules cannot be
    imported outside a compilation)."""
    import ast
    import importlib.util

    from tests.pynames import defined

    def parsed(module: str) -> ast.Module:
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, module
        return ast.parse(Path(spec.origin).read_text())

    tree = parsed("toolchain.nuitka_patches")
    used = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert {m for m in used if m.split(".")[0] == "nuitka"} - {"nuitka.build"} == set(
        NUITKA_INTERNALS
    )
    for module, names in NUITKA_INTERNALS.items():
        missing = set(names) - defined(parsed(module).body)
        assert not missing, (module, missing)
    (anti_bloat,) = [
        node
        for node in parsed("nuitka.plugins.standard.AntiBloatPlugin").body
        if isinstance(node, ast.ClassDef) and node.name == "NuitkaPluginAntiBloat"
    ]
    assert {"_getContextCode", "_onModuleSourceCode"} <= defined(anti_bloat.body)


def test_each_setting_is_named_once_and_both_sides_use_it() -> None:
    """The PINIT_* settings: builder/python/compile.py sets each and the plugin reads each, by
    the names toolchain/nuitka_pin.py gives them; no other file spells one out."""
    import ast

    from toolchain import nuitka_pin

    assert nuitka_pin.SETTINGS and all(
        getattr(nuitka_pin, name) == name for name in nuitka_pin.SETTINGS
    )

    def used(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }

    for side in ("builder/python/compile.py", "toolchain/nuitka_plugin.py"):
        assert set(nuitka_pin.SETTINGS) <= used(REPO / side), side
    spelled = {
        f"{path.relative_to(REPO)}: {node.value}"
        for pkg in ("builder", "toolchain", "init", "hostkit")
        for path in (REPO / pkg).rglob("*.py")
        if path.name != "nuitka_pin.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in nuitka_pin.SETTINGS
    }
    assert not spelled, sorted(spelled)


def test_the_plugin_sources_are_every_file_of_the_adaptation() -> None:
    """build/init is made again when any file the plugin loads changes."""
    from toolchain import nuitka_pin

    found = {str(p) for p in (REPO / "toolchain").glob("nuitka_*.py")}
    assert set(nuitka_pin.PLUGIN_SOURCES) == found
    assert nuitka_pin.PLUGIN in found


def test_the_dispatcher_runs_the_program_of_its_name() -> None:
    from toolchain.nuitka_gen import dispatcher_py

    source = dispatcher_py(
        [("init", "multidist-1-pinit_main_0"), ("hello", "multidist-2-x")],
        "_sysconfigdata__aarch64-linux-gnu",
    )
    code = compile(source, "dispatcher", "exec")
    assert {"multidist-1-pinit_main_0", "multidist-2-x"} <= set(code.co_consts)
    assert "'_sysconfigdata__aarch64-linux-gnu'" in source
    assert not {"os", "re"} & set(code.co_names)
    assert source.index("'init'") < source.index("'hello'")
    assert "_PinitSysconfigData" not in dispatcher_py([("init", "m")])
    # Not imported: a program's module is never "initializing" while it runs.
    assert "__import__" not in code.co_names and "_pinit_run" in code.co_names
    named = next(c for c in code.co_consts if getattr(c, "co_name", "") == "_pinit_programs")
    assert {"multidist-1-pinit_main_0", "multidist-2-x"} <= set(named.co_consts)


def test_the_dispatcher_runs_a_program_outside_the_import_lock(tmp_path: Path) -> None:
    """Another thread imports the program's module while it runs (pickle does): no wait."""
    import subprocess
    import sys

    from toolchain.nuitka_gen import dispatcher_py

    (tmp_path / "prog_main.py").write_text(
        "import importlib, threading\n"
        "got = []\n"
        "t = threading.Thread(target=lambda: got.append(importlib.import_module('prog_main')))\n"
        "t.start()\n"
        "t.join(10)\n"
        "print('imported' if got else 'waited')\n"
    )
    # Named as its program, as /app/<name> is: the dispatcher runs prog_main.
    (tmp_path / "prog").write_text(
        "import sys\nclass __compiled__:\n    original_argv0 = sys.argv[0]\n"
        + dispatcher_py([("other", "nothing"), ("prog", "prog_main")])
    )
    run = subprocess.run(
        [sys.executable, str(tmp_path / "prog")],
        env={"PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout == "imported\n", run.stderr


def test_retarget_points_nuitka_at_the_sysroot(tmp_path: Path) -> None:
    import nuitka.build.SconsInterface as SconsInterface
    import nuitka.utils.StaticLibraries as StaticLibraries

    from toolchain import nuitka_patches, nuitka_pin

    lib, include, _config = nuitka_pin.sysroot_paths(tmp_path)
    Path(lib).parent.mkdir(parents=True)
    Path(lib).write_bytes(b"!<arch>\n")
    Path(include).mkdir(parents=True)
    saved = (StaticLibraries._static_lib_python_path, SconsInterface.getTargetPythonIncludePath)
    try:
        nuitka_patches.retarget(str(tmp_path))
        assert StaticLibraries.getSystemStaticLibPythonPath(python_debug=False) == lib
        assert (
            SconsInterface.getTargetPythonIncludePath(
                logger=None, python_debug=False, self_compiled_python_uninstalled=False
            )
            == include
        )
    finally:
        StaticLibraries._static_lib_python_path, SconsInterface.getTargetPythonIncludePath = saved


def test_unreachable_source_is_one_error_naming_the_source(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    # Port 9 (discard) on loopback: refused at once, no network needed.
    (etc / "sources.list").write_text("deb [trusted=yes] http://127.0.0.1:9/debian bookworm main\n")
    apt_ = Apt("arm64", "bookworm", root=tmp_path / "state", etc=etc)
    with pytest.raises(BuildError, match=r"unreachable \(http://127.0.0.1:9/debian\)") as err:
        apt_.update()
    assert "\n" not in str(err.value)
    pkg = Locked("zlib1g-dev", "arm64", "1:1.2.13.dfsg-1", "0" * 64, "zlib.deb", "sysroot")
    with pytest.raises(
        BuildError,
        match="zlib1g-dev:arm64=1:1.2.13.dfsg-1: download failed from http://127.0.0.1:9/debian",
    ):
        apt_.download(pkg, tmp_path / "debs")
    assert not list((tmp_path / "debs").iterdir())  # nothing half-written kept


def test_contain_makes_absolute_links_relative_and_linker_scripts_sysroot_relative(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib/aarch64-linux-gnu"
    usr = tmp_path / "usr/lib/aarch64-linux-gnu"
    lib.mkdir(parents=True)
    usr.mkdir(parents=True)
    (lib / "libm.so.6").write_bytes(b"\x7fELF")
    (usr / "libm.so").symlink_to("/lib/aarch64-linux-gnu/libm.so.6")
    (usr / "libc.so").write_text(
        "/* GNU ld script */\nOUTPUT_FORMAT(elf64-littleaarch64)\n"
        "GROUP ( /lib/aarch64-linux-gnu/libc.so.6 "
        "/usr/lib/aarch64-linux-gnu/libc_nonshared.a "
        "AS_NEEDED ( /lib/ld-linux-aarch64.so.1 ) )\n"
    )
    assert len(apt.escapes(tmp_path)) == 4
    apt.contain(tmp_path)
    assert apt.escapes(tmp_path) == []
    assert (usr / "libm.so").resolve() == (lib / "libm.so.6").resolve()
    assert "GROUP ( =/lib/aarch64-linux-gnu/libc.so.6 =/usr/lib/" in (usr / "libc.so").read_text()
    apt.contain(tmp_path)  # idempotent
    assert "==" not in (usr / "libc.so").read_text()


def test_escapes_sees_a_relative_link_that_climbs_out(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/out").symlink_to("../../etc/passwd")
    assert apt.escapes(tmp_path) == ["a/out -> ../../etc/passwd"]


def test_the_provisioned_sysroot_points_nowhere_outside_itself() -> None:
    """The real sysroot (every -dev package unpacked) needs nothing from the host's /lib or /usr."""
    tree = apt.cache_dir() / "sysroot"
    if not (tree / "usr/include").is_dir():
        pytest.fail(f"{tree} is not provisioned; run `invoke toolchain`")
    assert apt.escapes(tree) == []
    assert (tree / "usr/lib/aarch64-linux-gnu/libm.so").resolve().is_relative_to(tree.resolve())


def test_the_build_and_the_pin_import_without_nuitka() -> None:
    """Nuitka runs in its own process: the build side, the pin and the generators work in a
    Python where it cannot be imported."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['nuitka'] = None\n"
        "import builder.python.compile, builder.image, toolchain.nuitka_gen, toolchain.nuitka_pin\n"
        "try:\n    import toolchain.nuitka_plugin\nexcept ImportError:\n    pass\n"
        "else:\n    sys.exit('the plugin imported without Nuitka?')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_sysroot_paths_follow_the_triplet(tmp_path: Path) -> None:
    from toolchain import nuitka_pin
    from toolchain.target import ARMHF

    default = nuitka_pin.sysroot_paths(tmp_path)
    assert default.libpython == f"{tmp_path}/usr/lib/aarch64-linux-gnu/libpython3.11.a"
    assert default.config == f"{tmp_path}/usr/lib/python3.11/config-3.11-aarch64-linux-gnu"
    armhf = nuitka_pin.sysroot_paths(tmp_path, ARMHF.triplet)
    assert armhf.libpython == f"{tmp_path}/usr/lib/arm-linux-gnueabihf/libpython3.11.a"
    assert armhf.config == f"{tmp_path}/usr/lib/python3.11/config-3.11-arm-linux-gnueabihf"
    assert armhf.include == default.include
