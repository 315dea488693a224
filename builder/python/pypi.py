"""Python services' requirements from the pip index: one lock, installed exactly, offline.

`[[service]] requirements = "requirements.txt"` (pip's format). The first build resolves every
service's requirements together, with the machine's pip and its configured index, into
`pinit.lock` beside the pinit.toml: each distribution with its exact version, file name and
sha256 (what pip's --require-hashes checks). Later builds take exactly the lock, from the cache
when the files are there (offline), verified by hash. `invoke lock` re-locks on purpose; a
requirements file that changed since the lock was written is a build error that says so.

What a distribution becomes in the one binary:
- a pure-Python wheel (`py3-none-any`): its files, compiled by Nuitka with the services;
- a package with C extensions: built from its sdist (setuptools; the wheels on the index are for
  other machines): the package's own build steps run on this machine with the extension
  compiler replaced by a recorder, then each extension is cross-compiled for aarch64 with the
  locked toolchain into a static archive and registered as a builtin module. Never a `.so`.
A package with only binary wheels, or whose build fails, stops the build with one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain.apt import sha256_of
from toolchain.provision import Toolchain

LOCK_NAME = "pinit.lock"
LOCK_FORMAT = 1
CROSS_CC = "aarch64-linux-gnu-gcc"
CROSS_AR = "aarch64-linux-gnu-ar"
ARCHIVE = "libpinit_packages.a"
PURE_TAGS = re.compile(r"-(py3|py2\.py3|py3\.py2)-none-any\.whl$")
# Run by the host's Python in an unpacked sdist: the package's own build (setuptools), with
# build_ext's compiler step replaced by a recorder. build_py copies the Python files and package
# data as a real build would; the extensions are only described, for the cross compiler.
RECORDER = r"""
import json, os, sys
from setuptools.command.build_ext import build_ext

out, lib, tmp = sys.argv[1:4]
recorded = []

def record(self, ext):
    recorded.append({"name": ext.name, "sources": list(ext.sources),
                     "include_dirs": list(ext.include_dirs or []),
                     "define_macros": [list(m) for m in ext.define_macros or []],
                     "undef_macros": list(ext.undef_macros or []),
                     "extra_compile_args": list(ext.extra_compile_args or []),
                     "libraries": list(ext.libraries or [])})

build_ext.build_extension = record
sys.argv = ["setup.py", "build_py", "--build-lib", lib, "build_ext", "--build-lib", lib,
            "--build-temp", tmp]
sys.path.insert(0, os.getcwd())
if os.path.exists("setup.py"):
    with open("setup.py") as f:
        code = compile(f.read(), "setup.py", "exec")
    exec(code, {"__name__": "__main__", "__file__": os.path.abspath("setup.py")})
else:
    from setuptools import setup
    setup()
with open(out, "w") as f:
    json.dump(recorded, f)
"""


@dataclass(frozen=True)
class Dist:
    name: str
    version: str
    filename: str
    sha256: str

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")


def _req_digest(files: list[Path]) -> dict[str, str]:
    return {str(f): sha256_of(f) for f in sorted(set(files))}


def _pip(args: list[str], what: str, cwd: Path | None = None) -> None:
    try:
        run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                   capture=True, quiet=True, cwd=cwd)
    except BuildError as exc:
        detail = str(exc).rsplit(": ", 1)[-1]
        raise BuildError(f"{what}: pip failed: {detail}",
                         hint="check the requirement and the machine's pip index "
                              "(pip config list)") from exc


def _sdist_of(name: str, version: str, tmp: Path) -> Dist:
    """The sdist of `name==version` from the index, or a BuildError saying there is none."""
    where = tmp / f"sdist-{name}"
    try:
        _pip(["download", "--quiet", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
              "-d", str(where), f"{name}=={version}"], f"{name} {version}")
    except BuildError as exc:
        raise BuildError(f"{name} {version}: a C extension and no source distribution on the "
                         "index, only binary wheels for other machines",
                         hint="pinit compiles C extensions from source for the Pi: pin a version "
                              "that has an sdist, or use a pure-Python alternative") from exc
    found = [p for p in where.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    if len(found) != 1:
        raise BuildError(f"{name} {version}: pip gave {len(found)} source archives")
    return Dist(name, version, found[0].name, sha256_of(found[0]))


def resolve(requirements: list[Path], work: Path) -> list[Dist]:
    """Resolve the requirement files together with pip, for Python 3.11 on Linux."""
    work.mkdir(parents=True, exist_ok=True)
    report = work / "report.json"
    args = ["install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
    for path in requirements:
        args += ["-r", str(path)]
    _pip(args, ", ".join(str(p) for p in requirements))
    dists = []
    for item in json.loads(report.read_text())["install"]:
        meta = item["metadata"]
        url = item["download_info"]["url"]
        filename = url.rsplit("/", 1)[-1]
        digest = item["download_info"].get("archive_info", {}).get("hash", "")
        if not digest.startswith("sha256="):
            raise BuildError(f"{meta['name']}: the index gave no sha256 for {filename}")
        dist = Dist(meta["name"], meta["version"], filename, digest[7:])
        if dist.is_wheel and not PURE_TAGS.search(filename):
            dist = _sdist_of(dist.name, dist.version, work)
        dists.append(dist)
    return sorted(dists, key=lambda d: d.name.lower())


def write_lock(path: Path, requirements: list[Path]) -> list[Dist]:
    with step(f"resolving {', '.join(p.name for p in requirements)} into {path}"):
        tmp = path.with_name(f".{path.name}.work{os.getpid()}")
        try:
            dists = resolve(requirements, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    base = path.parent
    body = {"format": LOCK_FORMAT,
            "requirements": {os.path.relpath(f, base): h
                             for f, h in _req_digest(requirements).items()},
            "distributions": [asdict(d) for d in dists]}
    write_atomic(path, (json.dumps(body, indent=1) + "\n").encode())
    log(f"wrote {path}: " + ", ".join(f"{d.name} {d.version}" for d in dists))
    return dists


def read_lock(path: Path, requirements: list[Path]) -> list[Dist] | None:
    """The locked distributions; None when there is no lock yet. A lock whose requirement files
    changed since is an error: the build never re-resolves behind the user's back."""
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text())
        dists = [Dist(**d) for d in body["distributions"]]
        locked = body["requirements"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"{path}: not a pinit lock file ({exc})",
                         hint="delete it and build again, or run `invoke lock`") from exc
    now = {os.path.relpath(f, path.parent): h for f, h in _req_digest(requirements).items()}
    if now != locked:
        changed = sorted(set(now) ^ set(locked) | {k for k in now if locked.get(k) != now[k]})
        raise BuildError(f"{path}: {', '.join(changed)} changed since the lock was written",
                         hint=f"run `invoke lock --config {path.with_name('pinit.toml')}` "
                              "to resolve the requirements again")
    return dists


def fetch(dist: Dist, cache: Path) -> Path:
    """The locked file, from the cache or the index; always checked against the lock."""
    final = cache / "pypi" / dist.sha256[:16] / dist.filename
    if final.is_file() and sha256_of(final) == dist.sha256:
        return final
    tmp = cache / "pypi" / f".partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        req = tmp / "req.txt"
        req.write_text(f"{dist.name}=={dist.version} --hash=sha256:{dist.sha256}\n")
        kind = ["--only-binary", ":all:"] if dist.is_wheel else ["--no-binary", ":all:"]
        _pip(["download", "--quiet", "--no-deps", "--require-hashes", *kind,
              "--no-build-isolation", "-d", str(tmp / "d"), "-r", str(req)],
             f"{dist.name} {dist.version}")
        got = tmp / "d" / dist.filename
        if not got.is_file() or sha256_of(got) != dist.sha256:
            raise BuildError(f"{dist.name} {dist.version}: the index did not give {dist.filename} "
                             "with the locked sha256", hint="run `invoke lock` to re-lock")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


@dataclass(frozen=True)
class Site:
    lib: Path            # Python files and package data, for Nuitka's search path
    ext: Path | None     # libpinit_packages.a + modules.json, when any package has C
    packages: tuple[str, ...]   # top-level packages and modules, for their data files


def _unpack_wheel(path: Path, lib: Path) -> None:
    with zipfile.ZipFile(path) as wheel:
        for member in wheel.namelist():
            top = member.split("/", 1)[0]
            if top.endswith(".data"):   # scripts and headers: nothing a service imports
                continue
            wheel.extract(member, lib)   # hash-verified file


def _init_symbol(module: str) -> str:
    return "PyInit_pinitpkg_" + module.replace(".", "__")


def _build_sdist(dist: Dist, archive: Path, work: Path, lib: Path, obj: Path,
                 tc: Toolchain) -> dict[str, dict[str, object]]:
    """Run the package's own build with the recorder, then cross-compile its extensions."""
    src_root = work / "src"
    with tarfile.open(archive) as tar:
        tar.extractall(src_root)  # hash-verified file
    (src,) = [p for p in src_root.iterdir() if p.is_dir()]
    recorded = work / "extensions.json"
    proc = run([sys.executable, "-c", RECORDER, recorded, lib, work / "tmp"], cwd=src,
               capture=True, quiet=True, check=False)
    if proc.returncode != 0 or not recorded.is_file():
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"{dist.name} {dist.version}: its setuptools build failed: {last}",
                         hint="pinit builds sdists with setuptools; a package that needs another "
                              "build backend cannot be compiled in yet")
    modules: dict[str, dict[str, object]] = {}
    jobs = []
    for ext in json.loads(recorded.read_text()):
        name = ext["name"]
        leaf = name.rsplit(".", 1)[-1]
        flags = [f"--sysroot={tc.sysroot}", "-Os", "-fwrapv", "-ffunction-sections",
                 "-fdata-sections", "-DNDEBUG", f"-DPyInit_{leaf}={_init_symbol(name)}",
                 f"-I{tc.sysroot}/usr/include/python3.11",
                 f"-I{tc.sysroot}/usr/include/aarch64-linux-gnu/python3.11"]
        flags += [f"-I{src / d}" for d in ext["include_dirs"]]
        flags += [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in ext["define_macros"]]
        flags += [f"-U{u}" for u in ext["undef_macros"]]
        flags += [a for a in ext["extra_compile_args"] if a.startswith(("-D", "-I", "-std"))]
        for source in ext["sources"]:
            out = obj / f"{name}__{source.replace('/', '_')}.o"
            jobs.append((dist, [CROSS_CC, *flags, "-c", str(src / source), "-o", str(out)]))
        modules[name] = {"libs": list(ext["libraries"]), "requires": [],
                         "init": _init_symbol(name), "package": dist.name}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_compile, jobs))
    return modules


def _compile(job: tuple[Dist, list[str]]) -> None:
    dist, cmd = job
    proc = run(cmd, capture=True, quiet=True, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        errors = [ln for ln in stderr.splitlines() if "error" in ln] or \
            stderr.strip().splitlines() or ["no output"]
        raise BuildError(f"{dist.name} {dist.version}: its C extension does not compile for "
                         f"aarch64: {errors[0]}",
                         hint="it may need a library or header the sysroot lacks "
                              "(toolchain/packages.py SYSROOT), or not build on Linux/arm64")


def site_digest(dists: list[Dist], tc: Toolchain) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(json.dumps([asdict(d) for d in dists]).encode())
    stamp = tc.sysroot / ".pinit-stamp"
    h.update(stamp.read_bytes() if stamp.is_file() else b"-")
    return h.hexdigest()[:16]


def ensure_site(dists: list[Dist], tc: Toolchain) -> Site:
    """Every locked distribution made ready for the one binary; cached by the lock's hashes."""
    out = tc.cache / f"site-{site_digest(dists, tc)}"
    if not (out / "done").is_file():
        with atomic_output(out) as tmp, step(f"preparing {len(dists)} packages for the one binary"):
            lib, obj = tmp / "lib", tmp / "obj"
            lib.mkdir(parents=True)
            obj.mkdir()
            modules: dict[str, dict[str, object]] = {}
            for dist in dists:
                path = fetch(dist, tc.cache)
                if dist.is_wheel:
                    _unpack_wheel(path, lib)
                else:
                    modules.update(_build_sdist(dist, path, tmp / "sdist" / dist.name, lib,
                                                obj, tc))
            if modules:
                (tmp / "ext").mkdir()
                run([CROSS_AR, "rcsD", tmp / "ext" / ARCHIVE, *sorted(obj.iterdir())],
                    quiet=True)
                order: list[str] = []
                for m in modules.values():
                    order += [lib_ for lib_ in m["libs"] if lib_ not in order]  # type: ignore[attr-defined]
                manifest = {"archive": ARCHIVE[3:-2], "modules": modules,
                            "link_order": order, "not_built": {}}
                write_atomic(tmp / "ext" / "modules.json",
                             (json.dumps(manifest, indent=1) + "\n").encode())
            shutil.rmtree(obj)
            shutil.rmtree(tmp / "sdist", ignore_errors=True)
            write_atomic(tmp / "done", b"")
    packages = tuple(sorted(p.name.removesuffix(".py") for p in (out / "lib").iterdir()
                            if not p.name.endswith((".dist-info", ".egg-info"))
                            and (p.is_dir() or p.suffix == ".py") and p.name != "__pycache__"))
    return Site(out / "lib", out / "ext" if (out / "ext").is_dir() else None, packages)


def ensure(config: Path, requirements: list[Path], tc: Toolchain) -> Site:
    """The lock beside `config` (written when there is none yet) made ready for the binary."""
    lock = config.with_name(LOCK_NAME)
    dists = read_lock(lock, requirements)
    if dists is None:
        dists = write_lock(lock, requirements)
    return ensure_site(dists, tc)
