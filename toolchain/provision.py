"""Provision the pinned toolchain from toolchain/bookworm.lock.json.

`ensure()` makes every locked tree exist in the cache (sysroot, kernel, firmware, baseline,
runtime, wifi, testkit, kbuild),
verified against the lock and reused when its stamp matches; `update_lock()` re-resolves the
package list deliberately. Host packages are installed with apt only when running as root;
otherwise the exact apt command is printed and the build stops.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import tarfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hostkit.cache import cache_dir
from hostkit.errors import BuildError
from hostkit.output import atomic_output, write_atomic
from hostkit.run import log, run, step
from toolchain import packages
from toolchain.apt import (
    Apt,
    Locked,
    LockedSource,
    SourceApt,
    SourceFile,
    sha256_of,
    unpack,
)
from toolchain.target import ARMEL, ARMHF, DEFAULT, Target

LOCK = Path(__file__).with_name("bookworm.lock.json")
TARGET_ARCH = "arm64"
HOST_ARCH = "amd64"
TREES = ("sysroot", "kernel", "firmware", "baseline", "runtime", "wifi", "testkit", "kbuild")
# The other targets (the 32-bit Pis), each locked beside the default's and provisioned only
# when asked for: its Debian kernel (role "kernel-<name>", ensure_kernel), packages.SYSROOT for
# its Debian architecture ("sysroot-<name>", ensure_sysroot: its Python init) and the programs
# its images ship or its bench runs ("runtime-<name>": packages.TARGET_RUNTIME, ensure_runtime).
EXTRA_TARGETS = (ARMHF, ARMEL)
# Targets whose Debian architecture no longer gets bookworm's updates: Debian 12's LTS builds
# amd64, arm64, armhf and i386, not armel, so armel's packages stay at their last security
# update and its sysroot cannot be at the default's versions (check_lock says so, once).
NOT_UPDATED = {ARMEL: "Debian 12's LTS does not build armel"}


def kernel_role(target: Target) -> str:
    return f"kernel-{target.name}"


def sysroot_role(target: Target) -> str:
    return f"sysroot-{target.name}"


def runtime_role(target: Target) -> str:
    return f"runtime-{target.name}"


@dataclass(frozen=True)
class Toolchain:
    cache: Path
    sysroot: Path
    kernel: (
        Path  # unpacked linux-image package: boot/vmlinuz-*, lib/modules/*, usr/lib/linux-image-*
    )
    firmware: Path  # unpacked raspi-firmware: usr/lib/raspi-firmware/
    baseline: Path  # unpacked busybox-static
    runtime: Path  # unpacked packages.RUNTIME: usr/lib/python3.11/, etc/services
    wifi: Path  # unpacked packages.WIFI: lib/firmware/brcm/, regulatory.db
    testkit: Path  # unpacked packages.TESTKIT: usr/sbin/hostapd and its libraries
    kbuild: Path  # the kernel's headers and kbuild: usr/src/linux-headers-<release>/
    cffi_src: Path  # unpacked cffi sdist: src/c/_cffi_backend.c
    cpython_src: Path  # Debian's CPython source, patched: Modules/ for builder/python/pyext.py
    # The machine `sysroot` is for: its cross tools, multiarch folders and ELF checks.
    target: Target = DEFAULT

    @property
    def kernel_release(self) -> str:
        return sorted(p.name for p in (self.kernel / "lib/modules").iterdir())[-1]

    @property
    def vmlinuz(self) -> Path:
        return self.kernel / "boot" / f"vmlinuz-{self.kernel_release}"

    @property
    def dtbs(self) -> Path:
        return self.kernel / "usr/lib" / f"linux-image-{self.kernel_release}"

    @property
    def busybox(self) -> Path:
        return self.baseline / "bin/busybox"


def read_lock(path: Path = LOCK) -> list[Locked]:
    try:
        data = json.loads(path.read_text())
        return [Locked(**p) for p in data["packages"]]
    except FileNotFoundError as exc:
        raise BuildError(
            f"{path}: lock file missing", hint="run `invoke toolchain --update` to create it"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(
            f"{path}: not a valid lock file ({exc})",
            hint="restore it from git or run `invoke toolchain --update`",
        ) from exc


def update_lock(path: Path = LOCK) -> list[Locked]:
    """Re-resolve every package to what the machine's apt sources offer now."""
    with step("resolving the package list against the apt sources"):
        target = Apt(TARGET_ARCH, packages.SUITE)
        target.update()
        host = Apt(HOST_ARCH, packages.SUITE)
        host.update()
        locked = [host.resolve(n, "host") for n in packages.HOST]
        locked += [target.resolve(n, "sysroot") for n in packages.SYSROOT]
        image = target.depends(packages.KERNEL_META)
        if not image:
            raise BuildError(f"{packages.KERNEL_META}: names no kernel image package")
        locked += [target.resolve(n, "kernel") for n in image]
        locked += kbuild_packages(target, host)
        locked += [target.resolve(n, "firmware") for n in packages.FIRMWARE]
        locked += [target.resolve(n, "baseline") for n in packages.BASELINE]
        locked += [target.resolve(n, "runtime") for n in packages.RUNTIME]
        locked += [target.resolve(n, "wifi") for n in packages.WIFI]
        locked += [target.resolve(n, "testkit") for n in packages.TESTKIT]
        for other in EXTRA_TARGETS:
            locked += target_packages(other)
    with step("resolving the source packages (deb-src)"):
        wanted = {p.name: p.version for p in locked if p.role == "sysroot"}
        sources = [resolve_source(n, wanted.get(f"lib{n}-dev")) for n in packages.SOURCES]
    sdist = resolve_cffi_sdist()
    body = {
        "suite": packages.SUITE,
        "packages": [asdict(p) for p in locked],
        "sources": [asdict(s) for s in sources],
        "cffi_sdist": asdict(sdist),
    }
    write_atomic(path, (json.dumps(body, indent=1) + "\n").encode())
    log(f"wrote {path} ({len(locked)} packages)")
    return locked


def kernel_packages(target: Target, apt: Apt) -> list[Locked]:
    """The kernel image package that `target`'s Debian metapackage names now, locked in the
    role kernel-<target>."""
    image = apt.depends(target.kernel_meta)
    if not image:
        raise BuildError(f"{target.kernel_meta}: names no kernel image package")
    return [apt.resolve(n, kernel_role(target)) for n in image]


def target_packages(target: Target) -> list[Locked]:
    """Another target's kernel (kernel-<target>), packages.SYSROOT for its Debian architecture
    (sysroot-<target>) and packages.TARGET_RUNTIME (runtime-<target>)."""
    apt = Apt(target.debian_arch, packages.SUITE)
    apt.update()
    return (
        kernel_packages(target, apt)
        + [apt.resolve(n, sysroot_role(target)) for n in packages.SYSROOT]
        + [apt.resolve(n, runtime_role(target)) for n in packages.TARGET_RUNTIME]
    )


def kbuild_packages(target: Apt, host: Apt) -> list[Locked]:
    """The headers of the locked kernel's version (arm64, and their arch-independent half) and
    the kbuild they name, for the build machine."""
    headers = target.depends(packages.HEADERS_META)
    if not headers:
        raise BuildError(f"{packages.HEADERS_META}: names no headers package")
    names = [*headers, *(n for h in headers for n in target.depends(h))]
    kbuild = [n for h in headers for n in target.depends(h, exact=False)]
    return [target.resolve(n, "kbuild") for n in dict.fromkeys(names)] + [
        host.resolve(n, "kbuild") for n in kbuild if n.startswith(packages.KBUILD_PREFIX)
    ]


def check_lock(locked: list[Locked], path: Path = LOCK) -> None:
    """Packages that must move together are at one version: each target's sysroot (one CPython
    source builds their stdlib modules) and the kernel and its headers (an external module
    built against other headers does not load)."""
    default = {p.name: p.version for p in locked if p.role == "sysroot"}
    for target in EXTRA_TARGETS:
        if target in NOT_UPDATED:
            continue
        other = [p for p in locked if p.role == sysroot_role(target)]
        moved = [f"{p.name} {p.version}" for p in other if default.get(p.name) != p.version]
        if moved:
            raise BuildError(
                f"{path}: the {target.name} sysroot is not at the {DEFAULT.name} one's versions "
                f"({', '.join(moved)}): one CPython source builds both",
                hint="run `invoke toolchain --update`, which locks them together",
            )
    kernel = {p.version for p in locked if p.role == "kernel"}
    headers = {p.version for p in locked if p.role == "kbuild"}
    if len(kernel | headers) > 1:
        raise BuildError(
            f"{path}: the kernel ({', '.join(sorted(kernel))}) and its headers and kbuild "
            f"({', '.join(sorted(headers))}) are at different versions",
            hint="run `invoke toolchain --update`, which locks them together",
        )


def resolve_source(name: str, prefer: str | None) -> LockedSource:
    """The source package of the same version as its locked binaries when the sources serve
    its files, else the newest one they do serve (a security archive may list a source whose
    files it no longer has); which one is said."""
    src_apt = SourceApt(TARGET_ARCH, packages.SUITE)
    versions = src_apt.source_versions(name)
    if prefer in versions:
        versions.remove(prefer)
        versions.insert(0, prefer)
    problems = []
    for version in versions:
        locked = src_apt.resolve_source(name, version)
        try:
            src_apt.download_source(locked, cache_dir() / "sources")
        except BuildError as exc:
            problems.append(str(exc))
            continue
        if prefer and version != prefer:
            log(f"source {name}: {prefer} is listed but not served; locked {version}")
        return locked
    raise BuildError(
        f"source {name}: no version can be fetched ({'; '.join(problems) or 'none listed'})",
        hint="add a deb-src line for Debian's archive to the apt sources",
    )


def read_sources(path: Path = LOCK) -> list[LockedSource]:
    data = json.loads(path.read_text())
    return [
        LockedSource(s["name"], s["version"], tuple(SourceFile(**f) for f in s["files"]))
        for s in data.get("sources", ())
    ]


def ensure_source_tree(src: LockedSource, cache: Path) -> Path:
    """The source package unpacked with its Debian patch series applied (what dpkg-source -x
    does for a "3.0 (quilt)" package), verified and cached by the lock's hashes."""
    tree = cache / f"src-{src.name}"
    stamp = tree / ".pinit-stamp"
    want = hashlib.sha256(json.dumps(asdict(src)).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        return tree
    with (
        step(f"fetching and unpacking the source of {src.name} {src.version}"),
        atomic_output(tree) as out,
    ):
        files = SourceApt(TARGET_ARCH, packages.SUITE).download_source(src, cache / "sources")
        orig = [f for f in files if ".orig." in f.name]
        debian = [f for f in files if f.name.endswith((".debian.tar.xz", ".debian.tar.gz"))]
        if len(orig) != 1 or len(debian) != 1:
            raise BuildError(
                f"source {src.name}={src.version}: expected one orig and one "
                "debian tarball (a 3.0 (quilt) package)"
            )
        extract(orig[0], out, strip=1)  # hash-verified files
        extract(debian[0], out)
        series = out / "debian/patches/series"
        for line in series.read_text().splitlines() if series.is_file() else ():
            patch = line.split("#", 1)[0].strip()
            if patch:
                run(
                    [
                        "patch",
                        "-p1",
                        "--quiet",
                        "--no-backup-if-mismatch",
                        "-i",
                        out / "debian/patches" / patch.split()[0],
                    ],
                    cwd=out,
                    quiet=True,
                )
        (out / ".pinit-stamp").write_text(want)
    return tree


@dataclass(frozen=True)
class Sdist:
    name: str
    version: str
    filename: str
    sha256: str


def _pip_download(version: str, dest: Path) -> Path:
    """cffi's source tree (for _cffi_backend.c) from the machine's configured pip index."""
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            dest,
            f"cffi=={version}",
        ],
        capture=True,
    )
    found = sorted(dest.glob(f"cffi-{version}.tar.gz"))
    if not found:
        raise BuildError(f"cffi {version}: pip download gave no sdist in {dest}")
    return found[0]


def resolve_cffi_sdist() -> Sdist:
    import cffi

    tmp = cache_dir() / f".pip-{os.getpid()}"
    try:
        path = _pip_download(cffi.__version__, tmp)
        return Sdist("cffi", cffi.__version__, path.name, sha256_of(path))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_cffi_src(cache: Path) -> Path:
    """Unpacked cffi sdist matching the lock; the installed cffi must be the same version."""
    import cffi

    data = json.loads(LOCK.read_text())
    sdist = Sdist(**data["cffi_sdist"])
    if cffi.__version__ != sdist.version:
        raise BuildError(
            f"cffi {cffi.__version__} is installed but the lock names {sdist.version}",
            hint=f"pip install cffi=={sdist.version}",
        )
    tree = cache / f"cffi-{sdist.version}"
    stamp = tree / ".pinit-stamp"
    if stamp.is_file() and stamp.read_text() == sdist.sha256:
        return tree
    tmp = cache / f".pip-{os.getpid()}"
    try:
        with step(f"fetching the cffi {sdist.version} source"), atomic_output(tree) as out:
            path = _pip_download(sdist.version, tmp)
            if sha256_of(path) != sdist.sha256:
                raise BuildError(
                    f"cffi {sdist.version}: sha256 of {path.name} does not match the lock",
                    hint="the pip index serves a different file than the lock names",
                )
            extract(path, out, strip=1)  # hash-verified above
            (out / ".pinit-stamp").write_text(sdist.sha256)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def extract(archive: Path, dest: Path, strip: int = 0) -> None:
    """Unpack a (verified) tar archive into `dest`, dropping `strip` leading path components."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = member.name.split("/")[strip:]
            if not parts or parts == [""]:
                continue
            member.name = "/".join(parts)
            if member.islnk():
                member.linkname = "/".join(member.linkname.split("/")[strip:])
            members.append(member)
        tar.extractall(dest, members=members)


def _installed_version(name: str) -> str | None:
    proc = run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", name], capture=True, quiet=True, check=False
    )
    status = proc.stdout.decode()
    if proc.returncode != 0 or not status.startswith("install ok installed"):
        return None
    return status.split()[-1]


def ensure_host(locked: list[Locked]) -> None:
    missing = [p for p in locked if p.role == "host" and _installed_version(p.name) != p.version]
    if not missing:
        return
    specs = [f"{p.name}={p.version}" for p in missing]
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "--allow-downgrades", *specs]
    if os.geteuid() != 0:
        raise BuildError(
            "host packages missing or at another version: " + ", ".join(p.name for p in missing),
            hint="run as root: apt-get update && " + shlex.join(cmd),
        )
    with step(f"installing {len(missing)} host packages with apt"):
        run(["apt-get", "-q", "update"], capture=True)
        run(cmd, env={"DEBIAN_FRONTEND": "noninteractive"}, capture=True)


# Bumped when unpacking changes what a tree holds (2: links and linker scripts contained).
UNPACK_FORMAT = 2


def _stamp(pkgs: list[Locked]) -> str:
    body = {"format": UNPACK_FORMAT, "packages": [asdict(p) for p in pkgs]}
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def ensure_tree(name: str, pkgs: list[Locked], cache: Path, apts: dict[str, Apt]) -> Path:
    """The unpacked tree of `pkgs`, fetched with an apt of each one's architecture (arm64 and
    all for the target; the build machine's for kbuild's programs) made once into `apts`."""
    tree = cache / name
    stamp = tree / ".pinit-stamp"
    want = _stamp(pkgs)
    if stamp.is_file() and stamp.read_text() == want:
        return tree
    debs_dir = cache / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    with step(f"fetching and unpacking the {name} ({len(pkgs)} packages)"):
        debs = []
        for p in pkgs:
            arch = p.arch if p.arch != "all" else TARGET_ARCH  # arm64, armhf, amd64 (kbuild)
            if arch not in apts:
                apts[arch] = Apt(arch, packages.SUITE)
                with step(f"reading the apt sources ({arch})"):
                    apts[arch].update()
            debs.append(apts[arch].download(p, debs_dir))
        unpack(debs, tree)
        write_atomic(stamp, want.encode())
    return tree


def ensure_kernel(target: Target, path: Path = LOCK) -> Path:
    """The unpacked Debian kernel of another target (`EXTRA_TARGETS`: boot/vmlinuz-*,
    lib/modules/*, usr/lib/linux-image-*/ with its dtbs), verified against the lock."""
    return _ensure_role(kernel_role(target), f"{target.name} kernel", path)


def ensure_sysroot(target: Target, path: Path = LOCK) -> Path:
    """The unpacked sysroot of another target (`EXTRA_TARGETS`), verified against the lock."""
    return _ensure_role(sysroot_role(target), f"{target.name} sysroot", path)


def ensure_runtime(target: Target, path: Path = LOCK) -> Path:
    """The unpacked programs of another target that images ship or the bench runs
    (packages.TARGET_RUNTIME: sbin/e2fsck.static, bin/busybox), verified against the lock."""
    return _ensure_role(runtime_role(target), f"{target.name} runtime", path)


def _ensure_role(role: str, what: str, path: Path) -> Path:
    pkgs = [p for p in read_lock(path) if p.role == role]
    if not pkgs:
        raise BuildError(
            f"{path}: no {what} locked (role {role})",
            hint="run `invoke toolchain --update`, which locks every target's trees",
        )
    return ensure_tree(role, pkgs, cache_dir(), {})


def for_target(tc: Toolchain, target: Target) -> Toolchain:
    """`tc` building for `target`: the default's as it is, another's with its own sysroot."""
    if target == DEFAULT:
        return tc
    return replace(tc, sysroot=ensure_sysroot(target), target=target)


def ensure(host: bool = True) -> Toolchain:
    """Everything the build needs, from the lock; cheap when already provisioned."""
    locked = read_lock()
    check_lock(locked)
    cache = cache_dir()
    apts: dict[str, Apt] = {}
    trees = {
        tree: ensure_tree(tree, [p for p in locked if p.role == tree], cache, apts)
        for tree in TREES
    }
    cffi_src = ensure_cffi_src(cache)
    # Without root this stops with the apt command, after all that needs no root is done.
    if host:
        ensure_host(locked)
    sources = {s.name: s for s in read_sources()}
    if "python3.11" not in sources:
        raise BuildError(
            f"{LOCK}: names no python3.11 source package", hint="run `invoke toolchain --update`"
        )
    # Last: applying Debian's patch series needs the host's `patch`.
    return Toolchain(
        cache=cache,
        cffi_src=cffi_src,
        cpython_src=ensure_source_tree(sources["python3.11"], cache),
        sysroot=trees["sysroot"],
        kernel=trees["kernel"],
        firmware=trees["firmware"],
        baseline=trees["baseline"],
        runtime=trees["runtime"],
        wifi=trees["wifi"],
        testkit=trees["testkit"],
        kbuild=trees["kbuild"],
    )
