"""Python services' requirements from the pip index: one lock, installed exactly, offline.

`[[service]] requirements = "requirements.txt"` (pip's format). The first build resolves every
service's requirements together, with the machine's pip and its configured index, into
`pinit.lock` beside the pinit.toml: each distribution with its exact version, file name and
sha256 (what pip's --require-hashes checks). Later builds take exactly the lock, from the cache
when the files are there (offline), verified by hash. `invoke lock` re-locks on purpose; a
requirements file that changed since the lock was written is a build error that says so.

What a distribution becomes in the one binary:
- a pure-Python wheel (`py3-none-any`): its files, compiled by Nuitka with the services;
- a package with C extensions: built from its sdist (the wheels on the index are for other
  machines) by builder/python/sdist.py with the target's cross compiler (tc.target: the same
  way for aarch64 and the 32-bit Pis), with the package's own build requirements, which the
  lock pins too (`build`: for each sdist, the host wheels its [build-system] needs, Cython
  included) and which are installed into a directory of their own for its build;
- a package pinit cannot build from its sdist: its binary wheel for the Pi, which runs in the
  native runtime (builder/python/native.py) of a target that has one (aarch64; the 32-bit Pis
  have none, and armv7l wheels are rare on an index anyway).
A package with only binary wheels on a target without a native runtime, or whose build fails,
stops the build with one line naming it. The lock is the same for every target but for those
binary wheels: a lock with one is refused on a target without a native runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from builder.python import index, native, sdist
from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain.apt import sha256_of
from toolchain.provision import Toolchain
from toolchain.target import DEFAULT, Target

LOCK_NAME = "pinit.lock"
LOCK_FORMAT = 1
ARCHIVE = "libpinit_packages.a"
PURE_TAGS = re.compile(r"-(py3|py2\.py3|py3\.py2)-none-any\.whl$")
# A Linux platform tag's prefix before its machine: manylinux_2_17_, manylinux2014_, linux_, …
LINUX_TAG = re.compile(r"^(many|musl)?linux(_\d+_\d+|\d+)?_")


# Run by the host's Python in an unpacked sdist: the package's own build (setuptools), with
# build_ext's compiler step replaced by a recorder. build_py copies the Python files and package
# data as a real build would; the extensions are only described, for the cross compiler.
@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    filename: str
    sha256: str

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_native(self) -> bool:
        """A binary wheel for the Pi (the lock holds no other binary wheels): it runs only in
        the native runtime."""
        return self.is_wheel and not PURE_TAGS.search(self.filename)

    @property
    def machine(self) -> str:
        """A binary wheel's machine, from its last platform tag (manylinux_2_17_aarch64 →
        aarch64); "" for the others."""
        if not self.is_native:
            return ""
        platform = self.filename[: -len(".whl")].rsplit("-", 1)[-1].rsplit(".", 1)[-1]
        return LINUX_TAG.sub("", platform)


def _req_digest(files: list[Path]) -> dict[str, str]:
    return {str(f): sha256_of(f) for f in sorted(set(files))}


def _pip(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        run(
            [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
            capture=True,
            quiet=True,
            cwd=cwd,
        )
    except BuildError as exc:
        detail = str(exc).rsplit(": ", 1)[-1]
        raise BuildError(
            f"{what}: pip failed: {detail}",
            hint="check the requirement and the machine's pip index (pip config list)",
        ) from exc


def _pi_wheel_file(name: str, version: str, machine: str | None) -> index.File | None:
    """The index's wheel of `name==version` for the Pi's CPython 3.11 on `machine` (None: the
    target has no native runtime, so no wheel is taken)."""
    if machine is None:
        return None
    return next((f for f in index.files(name, version, machine) if f.is_for(machine)), None)


def _for_the_pi(name: str, version: str, work: Path, target: Target = DEFAULT) -> Dist:
    """What the Pi takes of `name==version` when pip chose a wheel for this machine, in this
    order: the pure wheel beside it (charset-normalizer's, without its mypyc build); the sdist,
    when pinit can replay its build; the index's wheel for the Pi's CPython 3.11 (numpy's
    meson-python, orjson's Rust), which runs in the native runtime (builder/python/native.py)
    of a target that has one; else the sdist, whose build then says what stops it. A
    BuildError when there is none."""
    files = index.files(name, version)
    pure = next((f for f in files if PURE_TAGS.search(f.filename)), None)
    if pure is not None:
        return Dist(name, version, pure.filename, pure.sha256)
    source = next((Dist(name, version, f.filename, f.sha256) for f in files if f.is_sdist), None)
    if source is not None and sdist.build_system(fetch(source, work)).replayable:
        return source
    machine = native.wheel_machine(target)
    wheel = _pi_wheel_file(name, version, machine)
    if wheel is not None:
        return Dist(name, version, wheel.filename, wheel.sha256)
    if source is None:
        raise BuildError(
            f"{name} {version}: compiled code, and the index has neither its source "
            + (
                f"distribution nor a wheel for the Pi ({machine}, CPython 3.11)"
                if machine
                else f"distribution, and a {target.name} Pi takes no binary wheels (the "
                "native runtime is the 64-bit Pis' only)"
            ),
            hint="pin a version that has one, or use a pure-Python alternative",
        )
    return source


def _report(args: list[str], what: str, work: Path) -> list[Dist]:
    """pip's resolution of `args` (pip install --dry-run --report), as locked files."""
    report = work / "report.json"
    _pip(
        ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report), *args],
        what,
    )
    dists = []
    for item in json.loads(report.read_text())["install"]:
        meta = item["metadata"]
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        digest = item["download_info"].get("archive_info", {}).get("hash", "")
        if not digest.startswith("sha256="):
            raise BuildError(f"{meta['name']}: the index gave no sha256 for {filename}")
        dists.append(Dist(meta["name"], meta["version"], filename, digest[7:]))
    return sorted(dists, key=lambda d: d.name.lower())


@dataclass(frozen=True)
class Lock:
    dists: list[Dist]
    build: dict[str, list[Dist]]  # an sdist's build requirements, for this machine
    files: dict[str, list[str]]  # requirements file (relative to the lock) → its packages
    native: dict[str, Dist]  # for the native runtime: the aarch64 wheel of a package
    # that the static binary builds from its sdist

    def native_files(self) -> set[str]:
        """The requirements files whose services need the native runtime."""
        native = {d.name for d in self.dists if d.is_native}
        return {f for f, names in self.files.items() if native & set(names)}

    def static_dists(self) -> list[Dist]:
        """What the static binary's services need: the packages of the other files (all but
        the aarch64 wheels in a lock without files). A package only a native service needs
        (pillow beside numpy) comes as its aarch64 wheel and is never built from its sdist."""
        if not self.files:
            return [d for d in self.dists if not d.is_native]
        native = self.native_files()
        wanted = {n for f, names in self.files.items() if f not in native for n in names}
        return [d for d in self.dists if d.name in wanted and not d.is_native]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pi_wheel(name: str, version: str, target: Target = DEFAULT) -> Dist:
    """The index's wheel of `name==version` for the Pi ([python] wheels asks for it)."""
    machine = native.wheel_machine(target)
    wheel = _pi_wheel_file(name, version, machine)
    if wheel is None:
        raise BuildError(
            f"{name} {version}: [python] wheels names it, and the index has no "
            f"wheel of it for the Pi ({machine or target.name}, CPython 3.11)",
            hint="take it out of [python] wheels, or pin a version that has one",
        )
    return Dist(name, version, wheel.filename, wheel.sha256)


def resolve(
    requirements: list[Path],
    work: Path,
    base: Path,
    wheels: tuple[str, ...] = (),
    target: Target = DEFAULT,
) -> Lock:
    """Resolve the requirement files together with pip, for Python 3.11 on Linux; then, for
    each package built from its sdist, its build requirements (for this machine); each file's
    packages; and for a file that needs the native runtime, the Pi's wheels of its packages
    that would otherwise be built from their sdists. `target`: which Pi (its native runtime,
    if it has one, takes binary wheels)."""
    work.mkdir(parents=True, exist_ok=True)
    args = [a for path in requirements for a in ("-r", str(path))]
    chosen = {canonical(w) for w in wheels}
    dists = [
        d
        if d.is_wheel and PURE_TAGS.search(d.filename)
        else _pi_wheel(d.name, d.version, target)
        if canonical(d.name) in chosen
        else d
        if not d.is_wheel
        else _for_the_pi(d.name, d.version, work, target)
        for d in _report(args, ", ".join(str(p) for p in requirements), work)
    ]
    build: dict[str, list[Dist]] = {}
    for dist in dists:
        if dist.is_wheel:
            continue
        system = sdist.build_system(fetch(dist, work))
        if system.requires:
            build[dist.name] = _report(
                ["--prefer-binary", *system.requires],
                f"{dist.name} {dist.version}'s build requirements",
                work,
            )
    files = {
        os.path.relpath(path, base): sorted(
            d.name for d in _report(["-r", str(path)], str(path), work)
        )
        for path in requirements
    }
    lock = Lock(dists, build, files, {})
    by_name = {d.name: d for d in dists}
    for names in (lock.files[f] for f in sorted(lock.native_files())):
        for name in names:
            locked = by_name.get(name)
            if locked is None or locked.is_wheel or name in lock.native:
                continue
            wheel = _pi_wheel_file(locked.name, locked.version, native.wheel_machine(target))
            if wheel is not None:
                lock.native[name] = Dist(locked.name, locked.version, wheel.filename, wheel.sha256)
    return lock


def write_lock(
    path: Path, requirements: list[Path], wheels: tuple[str, ...] = (), target: Target = DEFAULT
) -> list[Dist]:
    with step(f"resolving {', '.join(p.name for p in requirements)} into {path}"):
        tmp = path.with_name(f".{path.name}.work{os.getpid()}")
        try:
            lock = resolve(requirements, tmp, path.parent, wheels, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    base = path.parent
    body = {
        "format": LOCK_FORMAT,
        "requirements": {os.path.relpath(f, base): h for f, h in _req_digest(requirements).items()},
        "distributions": [asdict(d) for d in lock.dists],
        "build": {name: [asdict(d) for d in tools] for name, tools in sorted(lock.build.items())},
        "files": lock.files,
        "native": {name: asdict(d) for name, d in sorted(lock.native.items())},
        "wheels": sorted(canonical(w) for w in wheels),
    }
    write_atomic(path, (json.dumps(body, indent=1) + "\n").encode())
    log(f"wrote {path}: " + ", ".join(f"{d.name} {d.version}" for d in lock.dists))
    return lock.dists


def read_lock(
    path: Path, requirements: list[Path], wheels: tuple[str, ...] = ()
) -> list[Dist] | None:
    """The locked distributions; None when there is no lock yet. A lock whose requirement files
    (or [python] wheels) changed since is an error: the build never re-resolves behind the
    user's back."""
    locked = read_lock_all(path, requirements, wheels)
    return None if locked is None else locked.dists


def read_lock_all(
    path: Path, requirements: list[Path], wheels: tuple[str, ...] = ()
) -> Lock | None:
    """read_lock, with the rest of the lock (a lock written before they were locked has no
    build requirements, files or native wheels: the build machine's setuptools builds it)."""
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text())
        lock = Lock(
            [Dist(**d) for d in body["distributions"]],
            {name: [Dist(**d) for d in tools] for name, tools in body.get("build", {}).items()},
            {f: list(names) for f, names in body.get("files", {}).items()},
            {name: Dist(**d) for name, d in body.get("native", {}).items()},
        )
        locked = body["requirements"]
        locked_wheels = list(body.get("wheels", []))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(
            f"{path}: not a pinit lock file ({exc})",
            hint="delete it and build again, or run `invoke lock`",
        ) from exc
    now = {os.path.relpath(f, path.parent): h for f, h in _req_digest(requirements).items()}
    changed = sorted(set(now) ^ set(locked) | {k for k in now if locked.get(k) != now[k]})
    if sorted(canonical(w) for w in wheels) != locked_wheels:
        changed.append("[python] wheels")
    if changed:
        raise BuildError(
            f"{path}: {', '.join(changed)} changed since the lock was written",
            hint=f"run `invoke lock --config {path.with_name('pinit.toml')}` "
            "to resolve the requirements again",
        )
    return lock


def fetch(dist: Dist, cache: Path) -> Path:
    """The locked file, from the cache or the index; always checked against the lock."""
    final = cache / "pypi" / dist.sha256[:16] / dist.filename
    if final.is_file() and sha256_of(final) == dist.sha256:
        return final
    found = [
        f for f in index.files(dist.name, dist.version, dist.machine) if f.filename == dist.filename
    ]
    if not found:
        raise BuildError(
            f"{dist.name} {dist.version}: the index no longer has {dist.filename}",
            hint="run `invoke lock` to re-lock",
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".partial-{os.getpid()}")
    try:
        index.download(found[0], tmp)
        if sha256_of(tmp) != dist.sha256:
            raise BuildError(
                f"{dist.name} {dist.version}: the index did not give {dist.filename} "
                "with the locked sha256",
                hint="run `invoke lock` to re-lock",
            )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def build_tools(tools: list[Dist], cache: Path) -> Path | None:
    """A directory with an sdist's locked build requirements installed (first on its build's
    path); cached by their hashes."""
    if not tools:
        return None
    key = hashlib.sha256(json.dumps([asdict(d) for d in tools]).encode()).hexdigest()[:16]
    out = cache / "pypi" / f"tools-{key}"
    if not (out / ".done").is_file():
        files = [fetch(d, cache) for d in tools]
        with atomic_output(out) as tmp:
            _pip(
                [
                    "install",
                    "--quiet",
                    "--no-deps",
                    "--no-index",
                    "--no-build-isolation",
                    "--target",
                    str(tmp),
                    *map(str, files),
                ],
                "build requirements " + ", ".join(f"{d.name} {d.version}" for d in tools),
            )
            write_atomic(tmp / ".done", b"")
    return out


@dataclass(frozen=True)
class Site:
    lib: Path  # Python files and package data, for Nuitka's search path
    ext: Path | None  # libpinit_packages.a + modules.json, when any package has C
    packages: tuple[str, ...]  # top-level packages (not single-file modules): their data files
    distributions: tuple[str, ...]  # their *.dist-info folders in lib (versions, entry points)


def _unpack_wheel(path: Path, lib: Path) -> None:
    with zipfile.ZipFile(path) as wheel:
        for member in wheel.namelist():
            top = member.split("/", 1)[0]
            if top.endswith(".data"):  # scripts and headers: nothing a service imports
                continue
            wheel.extract(member, lib)  # hash-verified file


def _dist_info(dist: Dist, lib: Path) -> Path:
    return lib / f"{re.sub(r'[-_.]+', '_', dist.name)}-{dist.version}.dist-info"


def _metadata(dist: Dist, lib: Path, top_level: set[str]) -> None:
    """What importlib.metadata reads of a package built from its sdist (its version, for the
    packages that report it, and what it installed), as a wheel would have installed it."""
    info = _dist_info(dist, lib)
    info.mkdir(exist_ok=True)
    write_atomic(
        info / "METADATA",
        f"Metadata-Version: 2.1\nName: {dist.name}\nVersion: {dist.version}\n".encode(),
    )
    write_atomic(info / "top_level.txt", "".join(f"{n}\n" for n in sorted(top_level)).encode())


def _top_level(dist: Dist, lib: Path) -> list[str]:
    path = _dist_info(dist, lib) / "top_level.txt"
    return path.read_text().split() if path.is_file() else []


def site_digest(dists: list[Dist], build: dict[str, list[Dist]], tc: Toolchain) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes() + Path(sdist.__file__).read_bytes())
    h.update(json.dumps([asdict(d) for d in dists]).encode())
    h.update(json.dumps({k: [asdict(d) for d in v] for k, v in sorted(build.items())}).encode())
    h.update(tc.target.name.encode())
    stamp = tc.sysroot / ".pinit-stamp"
    h.update(stamp.read_bytes() if stamp.is_file() else b"-")
    return h.hexdigest()[:16]


def ensure_site(
    dists: list[Dist], tc: Toolchain, build: dict[str, list[Dist]] | None = None
) -> Site:
    """Every locked distribution made ready for the one binary; cached by the lock's hashes."""
    build = build or {}
    out = tc.cache / f"site-{site_digest(dists, build, tc)}"
    if not (out / "done").is_file():
        with atomic_output(out) as tmp, step(f"preparing {len(dists)} packages for the one binary"):
            lib, obj = tmp / "lib", tmp / "obj"
            lib.mkdir(parents=True)
            obj.mkdir()
            modules: dict[str, dict[str, object]] = {}
            failed: list[BuildError] = []
            for dist in dists:
                path = fetch(dist, tc.cache)
                if dist.is_wheel:
                    _unpack_wheel(path, lib)
                    continue
                before = {p.name for p in lib.iterdir()}
                try:
                    tools = build_tools(build.get(dist.name, []), tc.cache)
                    modules.update(
                        sdist.build(
                            dist.name,
                            dist.version,
                            path,
                            tmp / "sdist" / dist.name,
                            lib,
                            obj,
                            tc,
                            tools,
                        )
                    )
                except BuildError as exc:  # the others are still tried: all are named at once
                    failed.append(exc)
                    continue
                _metadata(
                    dist,
                    lib,
                    {
                        p.name.removesuffix(".py")
                        for p in lib.iterdir()
                        if p.name not in before and not p.name.endswith("-info")
                    },
                )
            if len(failed) == 1:
                raise failed[0]
            if failed:
                for failure in failed:
                    log(f"error: {failure}")
                raise BuildError(
                    f"{len(failed)} of the locked packages cannot be built for the "
                    f"Pi ({tc.target.name}): {', '.join(str(e).split(':')[0] for e in failed)} "
                    "(each named above with its reason)",
                    hint=failed[0].hint,
                )
            if modules:
                (tmp / "ext").mkdir()
                run(
                    [f"{tc.target.cross}ar", "rcsD", tmp / "ext" / ARCHIVE, *sorted(obj.iterdir())],
                    quiet=True,
                )
                order: list[str] = []
                for m in modules.values():
                    order += [lib_ for lib_ in m["libs"] if lib_ not in order]  # type: ignore[attr-defined]
                manifest = {
                    "archive": ARCHIVE[3:-2],
                    "modules": modules,
                    "link_order": order,
                    "not_built": {},
                }
                write_atomic(
                    tmp / "ext" / "modules.json", (json.dumps(manifest, indent=1) + "\n").encode()
                )
            shutil.rmtree(obj)
            shutil.rmtree(tmp / "sdist", ignore_errors=True)
            write_atomic(tmp / "done", b"")
    # A single-file module (six, typing_extensions) has no data, and Nuitka refuses to be asked.
    packages = tuple(
        sorted(
            p.name
            for p in (out / "lib").iterdir()
            if p.is_dir()
            and p.name.isidentifier()
            and p.name != "__pycache__"
            and any(p.rglob("*.py"))
        )
    )
    distributions = tuple(sorted(p.name for p in (out / "lib").glob("*.dist-info")))
    return Site(
        out / "lib", out / "ext" if (out / "ext").is_dir() else None, packages, distributions
    )


def native_packages(
    config: Path, requirements: list[Path], tc: Toolchain, lib: Path, wheels: tuple[str, ...] = ()
) -> dict[str, tuple[list[Path], tuple[str, ...]]]:
    """For each requirements file whose services run in the native runtime (relative to the
    lock): its wheels, fetched (pure ones and the Pi's), and its packages that come from the
    static site's Python files (built from an sdist, no wheel for the Pi: pure there)."""
    lock = read_lock_all(config.with_name(LOCK_NAME), requirements, wheels)
    if lock is None:
        return {}
    by_name = {d.name: d for d in lock.dists}
    out: dict[str, tuple[list[Path], tuple[str, ...]]] = {}
    for file in sorted(lock.native_files()):
        dists = [
            lock.native.get(name, by_name[name]) for name in lock.files[file] if name in by_name
        ]
        files = [fetch(d, tc.cache) for d in dists if d.is_wheel]
        pure = [d for d in dists if not d.is_wheel]
        for d in pure:
            log(
                f"warning: {d.name} {d.version}: no aarch64 wheel for the native runtime; "
                "its Python files only (as built from its sdist without compiled code)"
            )
        out[file] = (files, tuple(sorted(name for d in pure for name in _top_level(d, lib))))
    return out


def ensure(
    config: Path, requirements: list[Path], tc: Toolchain, wheels: tuple[str, ...] = ()
) -> Site:
    """The lock beside `config` (written when there is none yet) made ready for the binary
    of tc.target."""
    lock = config.with_name(LOCK_NAME)
    if read_lock_all(lock, requirements, wheels) is None:
        write_lock(lock, requirements, wheels, tc.target)
    locked = read_lock_all(lock, requirements, wheels)
    assert locked is not None
    check_target(locked, lock, tc.target)
    return ensure_site(locked.static_dists(), tc, locked.build)


def check_target(lock: Lock, path: Path, target: Target) -> None:
    """A lock with binary wheels for the Pi (the native runtime's) on a target that has no
    native runtime (or runs other wheels) is an error naming them."""
    machine = native.wheel_machine(target)
    foreign = sorted(
        f"{d.name} {d.version}"
        for d in (*lock.dists, *lock.native.values())
        if d.is_native and d.machine != machine
    )
    if foreign:
        raise BuildError(
            f"{path}: {', '.join(foreign)}: locked as binary wheels for another Pi, and "
            + (
                f"a {target.name} Pi takes no binary wheels (the native runtime is the 64-bit "
                "Pis' only)"
                if machine is None
                else f"the {target.name} Pi's native runtime takes {machine} wheels"
            ),
            hint="build it from its sdist: run `invoke lock` for this board, or use a "
            "pure-Python alternative",
        )
