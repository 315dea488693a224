"""The native runtime: Debian's own CPython, for services whose packages exist for the Pi only
as binary wheels.

Most packages become part of the one static binary (builder/python/pypi.py, sdist.py). Some
cannot: their build is meson-python (numpy), Rust through maturin (orjson, pydantic-core) or
the like, which pinit cannot replay; the index has their aarch64 manylinux wheels, which are
shared objects and need a dynamic loader. A service whose requirements need such a wheel runs
in the native runtime, beside the static PID 1 and the other services:
- the interpreter: Debian's python3.11 (3.11.2, the same release as the static libpython), its
  standard library and lib-dynload modules (python3.11-minimal, libpython3.11-stdlib: locked
  "runtime" packages), the loader and libraries from the arm64 sysroot (locked);
- its packages: the wheels, as pip would install them, in /usr/lib/python3/dist-packages (on
  Debian's python3.11 path), each shared object with the sysroot libraries it needs; a package
  pinit would build from its sdist comes as its aarch64 wheel here;
- every .py compiled at build time by the build machine's python3.11 (the same 3.11.2: the
  same bytecode), shipped as .pyc alone (sourceless imports, as in a frozen application);
- the service's program at /usr/lib/pinit/app/<name>.py, run as `python3.11 -I <program>`.
PID 1 says it on the console: "starting <name> (pid N, /usr/bin/python3.11)".
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

from builder.formats.elf import bundle_elf, inspect_elf, is_elf, libraries
from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain.provision import Toolchain
from toolchain.target import DEFAULT, Target

INTERPRETER = "/usr/bin/python3.11"
HOST_PYTHON = "/usr/bin/python3.11"  # Debian's 3.11.2 on the build machine: same bytecode
STDLIB = "usr/lib/python3.11"
SITE = "usr/lib/python3/dist-packages"
APP_DIR = "usr/lib/pinit/app"
# Not in the runtime: tests (numpy's are 10 MB), IDEs, GUI, installers, the build-time config,
# others' site folders; and what only a compiler reads (headers, static libraries, stubs).
LEFT_OUT = frozenset(
    {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "pydoc_data",
        "site-packages",
        "dist-packages",
        "venv",
        "__pycache__",
        "config-3.11-aarch64-linux-gnu",
    }
)
LEFT_OUT_SUFFIXES = (".pyi", ".h", ".a", ".pxd", ".c", ".cpp")


def wheel_machine(target: Target) -> str | None:
    """The machine in the platform tag of the binary wheels the native runtime takes for
    `target` (manylinux_2_17_aarch64), or None when `target` has no native runtime: its
    interpreter and libraries (tc.runtime, packages.RUNTIME) are the default target's Debian
    packages only, so a 32-bit Pi's compiled packages come from their sdists alone."""
    return target.triplet.split("-")[0] if target == DEFAULT else None


def _compiled_tree(source: Path, image_dir: str, out: Path) -> None:
    """`source` copied to `out` with every .py replaced by its .pyc (named as in the image)."""
    shutil.copytree(
        source,
        out,
        symlinks=False,
        ignore=lambda d, names: [
            n for n in names if n in LEFT_OUT or n.endswith(LEFT_OUT_SUFFIXES)
        ],
    )
    run(
        [
            HOST_PYTHON,
            "-m",
            "compileall",
            "-q",
            "-b",
            "-j",
            "0",
            "-d",
            f"/{image_dir}",
            "--invalidation-mode",
            "unchecked-hash",
            str(out),
        ],
        capture=True,
        quiet=True,
    )
    for py in out.rglob("*.py"):
        if py.with_suffix(".pyc").is_file():
            py.unlink()


def _files(tree: Path, image_dir: str) -> dict[str, bytes]:
    return {
        f"{image_dir}/{p.relative_to(tree)}": p.read_bytes()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _shared_objects(
    files: dict[str, bytes], root: Path, tc: Toolchain, what: str
) -> dict[str, bytes]:
    """The sysroot libraries the shared objects among `files` (extracted under `root`) need;
    those a wheel ships itself (in its .libs folder) are found by their RPATH."""
    elfs = [
        (root / path, inspect_elf(root / path))
        for path in files
        if path.endswith(".so") or ".so." in path.rsplit("/", 1)[-1]
    ]
    elfs = [(p, i) for p, i in elfs if is_elf(p)]
    provided = frozenset(p.name for p, _ in elfs)
    libs, _seen, missing = libraries(elfs, tc.sysroot, provided)
    if missing:
        raise BuildError(
            f"{what}: libraries not found in the arm64 sysroot: {', '.join(missing)}",
            hint="add the Debian packages that provide them to toolchain/packages.py SYSROOT",
        )
    return libs


def runtime(tc: Toolchain) -> dict[str, bytes]:
    """The interpreter, its standard library as .pyc, the lib-dynload modules whose libraries
    the sysroot has, and every library they need. Cached per locked runtime and sysroot."""
    stamps = b"".join(
        (tree / ".pinit-stamp").read_bytes() if (tree / ".pinit-stamp").is_file() else b"-"
        for tree in (tc.runtime, tc.sysroot)
    )
    key = hashlib.sha256(stamps + Path(__file__).read_bytes()).hexdigest()[:16]
    out = tc.cache / f"native-{key}"
    if not (out / "done").is_file():
        with atomic_output(out) as tmp, step("preparing the native runtime (Debian's python3.11)"):
            _compiled_tree(tc.runtime / STDLIB, STDLIB, tmp / "stdlib")
            dynload = tmp / "stdlib" / "lib-dynload"
            for module in sorted(dynload.glob("*.so")):
                _libs, _seen, missing = libraries([(module, inspect_elf(module))], tc.sysroot)
                if missing:  # e.g. _tkinter, _gdbm: their libraries are not locked
                    log(
                        f"native runtime: {module.name.split('.')[0]} left out (needs "
                        f"{', '.join(missing)})"
                    )
                    module.unlink()
            write_atomic(tmp / "done", b"")
    files = bundle_elf(tc.runtime / INTERPRETER.lstrip("/"), INTERPRETER.lstrip("/"), tc.sysroot)
    stdlib = _files(out / "stdlib", STDLIB)
    files.update(stdlib)
    files.update(
        _shared_objects(
            {p[len(STDLIB) + 1 :]: b for p, b in stdlib.items()},
            out / "stdlib",
            tc,
            "the native runtime",
        )
    )
    return files


def site(
    wheels: list[Path], lib: Path | None, names: tuple[str, ...], cache: Path, tc: Toolchain
) -> dict[str, bytes]:
    """The wheels (pure and aarch64) installed as pip would, plus the Python files of `names`
    from the static site `lib` (packages built from an sdist that have no aarch64 wheel: pure
    here), compiled; with the sysroot libraries their shared objects need."""
    key = hashlib.sha256(
        "\n".join([*map(str, wheels), *names, Path(__file__).read_text()]).encode()
    ).hexdigest()[:16]
    out = cache / f"native-site-{key}"
    if not (out / "done").is_file():
        with atomic_output(out) as tmp:
            raw = tmp / "raw"
            raw.mkdir(parents=True)
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as z:
                    z.extractall(raw)  # hash-verified file
            for name in names:
                assert lib is not None
                if (lib / name).is_dir():
                    shutil.copytree(lib / name, raw / name, dirs_exist_ok=True)
            _compiled_tree(raw, SITE, tmp / "site")
            shutil.rmtree(raw)
            write_atomic(tmp / "done", b"")
    files = _files(out / "site", SITE)
    files.update(
        _shared_objects(
            {p[len(SITE) + 1 :]: b for p, b in files.items()},
            out / "site",
            tc,
            "the native packages",
        )
    )
    return files


def program(name: str, source: Path) -> tuple[dict[str, bytes], str]:
    """The service's program in the image, and its path there."""
    if source.is_dir():
        raise BuildError(
            f"{source}: a package as a native-runtime service is not supported yet",
            hint="give the service one .py file that imports the package",
        )
    path = f"{APP_DIR}/{name}.py"
    return {path: source.read_bytes()}, f"/{path}"
