"""Debian packages without root: resolve, download, verify and unpack with a private apt state.

apt runs with its own lists and cache under the pinit cache directory and an architecture of our
choosing, so arm64 packages can be fetched on an amd64 machine without touching the system's
dpkg architectures. The package sources are the machine's own apt sources (never a hard-coded
host), with the component non-free-firmware added where the Pi firmware lives.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hostkit.cache import cache_dir
from hostkit.errors import BuildError
from hostkit.output import atomic_output
from hostkit.run import log, run

SYSTEM_SOURCES = Path("/etc/apt")


@dataclass(frozen=True)
class Locked:
    name: str
    arch: str
    version: str
    sha256: str
    filename: str
    role: str

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.arch}={self.version}"


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current = {}
            continue
        if line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def _one_line_sources(text: str) -> list[dict[str, str]]:
    """`deb [opts] URI SUITE COMPONENTS...` lines, as deb822 stanzas."""
    stanzas = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        opts: dict[str, str] = {}
        words = words[1:]
        line = " ".join(words)
        if line.startswith("["):
            inside, _, rest = line[1:].partition("]")
            for word in inside.split():
                key, _, value = word.partition("=")
                opts[key] = value
            words = rest.split()
        if len(words) < 3:
            continue
        stanza = {
            "Types": "deb",
            "URIs": words[0],
            "Suites": words[1],
            "Components": " ".join(words[2:]),
        }
        if "signed-by" in opts:
            stanza["Signed-By"] = opts["signed-by"]
        stanzas.append(stanza)
    return stanzas


def derive_sources(suite: str, etc: Path = SYSTEM_SOURCES) -> str:
    """The machine's Debian `suite` sources as one deb822 file, with non-free-firmware and the
    matching source packages (deb-src) added."""
    stanzas: list[dict[str, str]] = []
    main_list = etc / "sources.list"
    if main_list.is_file():
        stanzas += _one_line_sources(main_list.read_text())
    parts = etc / "sources.list.d"
    for path in sorted(parts.glob("*.list")) if parts.is_dir() else ():
        stanzas += _one_line_sources(path.read_text())
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else ():
        stanzas += _deb822_stanzas(path.read_text())
    wanted = {suite, f"{suite}-updates", f"{suite}-security"}
    out = []
    for stanza in stanzas:
        if "deb" not in stanza.get("Types", "deb").split():
            continue
        if stanza.get("Enabled", "yes").lower() == "no":
            continue
        suites = [s for s in stanza.get("Suites", "").split() if s in wanted]
        if not suites:
            continue
        components = stanza.get("Components", "main").split()
        if "main" in components and "non-free-firmware" not in components:
            components.append("non-free-firmware")
        # deb-src too: Debian's own sources of what pinit compiles for the target (CPython).
        lines = [
            "Types: deb deb-src",
            f"URIs: {stanza['URIs']}",
            f"Suites: {' '.join(suites)}",
            f"Components: {' '.join(components)}",
        ]
        if "Signed-By" in stanza:
            lines.append(f"Signed-By: {stanza['Signed-By']}")
        out.append("\n".join(lines))
    if not out:
        raise BuildError(
            f"{etc}: no apt source for Debian {suite} found",
            hint=f"add a deb source for {suite} to /etc/apt/sources.list.d",
        )
    return "\n\n".join(out) + "\n"


class Apt:
    """apt-get/apt-cache with a private state directory for one architecture."""

    def __init__(
        self, arch: str, suite: str, root: Path | None = None, etc: Path = SYSTEM_SOURCES
    ) -> None:
        self.arch = arch
        self.suite = suite
        self.root = (root or cache_dir() / "apt") / arch
        parts = self.root / "sources.list.d"
        for sub in ("lists/partial", "archives/partial", "prefs.d"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        parts.mkdir(parents=True, exist_ok=True)
        sources = derive_sources(suite, etc)
        (parts / "pinit.sources").write_text(sources)
        self.uris = " ".join(
            line.split(":", 1)[1].strip()
            for line in sources.splitlines()
            if line.startswith("URIs:")
        )

    def _opts(self) -> list[str]:
        r = self.root
        return [
            f"-oAPT::Architecture={self.arch}",
            f"-oAPT::Architectures={self.arch}",
            f"-oDir::State::Lists={r}/lists",
            f"-oDir::Cache={r}",
            f"-oDir::Cache::archives={r}/archives",
            "-oDir::Etc::SourceList=/dev/null",
            f"-oDir::Etc::SourceParts={r}/sources.list.d",
            "-oDir::State::status=/dev/null",
            "-oDir::Etc::Preferences=/dev/null",
            f"-oDir::Etc::PreferencesParts={r}/prefs.d",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root"
            if os.geteuid() == 0
            else "-oAPT::Sandbox::User=" + os.environ.get("USER", "nobody"),
        ]

    def update(self) -> None:
        proc = run(
            ["apt-get", *self._opts(), "-q", "update"], capture=True, quiet=True, check=False
        )
        # apt-get update exits 0 even when a source is unreachable; its "W:"/"E:" lines tell.
        problems = [
            ln
            for ln in (proc.stdout + proc.stderr).decode(errors="replace").splitlines()
            if ln.startswith(("E:", "W: Failed to fetch", "Err:"))
        ]
        if proc.returncode != 0 or problems:
            detail = problems[-1] if problems else f"apt-get update exited {proc.returncode}"
            raise BuildError(
                f"apt sources for {self.suite}/{self.arch} unreachable ({self.uris}): {detail}",
                hint="check the network and /etc/apt/sources.list.d",
            )

    def resolve(self, name: str, role: str) -> Locked:
        """The candidate version of `name` with the archive's sha256."""
        proc = run(
            ["apt-get", *self._opts(), "-q", "download", "--print-uris", name],
            capture=True,
            quiet=True,
        )
        for line in proc.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3].startswith("SHA256:"):
                filename = parts[1]
                _, version, _ = urllib.parse.unquote(filename[:-4]).split("_")
                arch = filename[:-4].rsplit("_", 1)[1]
                return Locked(name, arch, version, parts[3][7:], filename, role)
        raise BuildError(f"{name}: not found in the {self.suite} sources for {self.arch}")

    def depends(self, name: str, exact: bool = True) -> list[str]:
        """Packages `name` depends on; with `exact`, only those with `(= version)`: how a
        metapackage names its target."""
        proc = run(["apt-cache", *self._opts(), "show", name], capture=True, quiet=True)
        first = proc.stdout.decode().split("\n\n")[0]
        for line in first.splitlines():
            if line.startswith("Depends:"):
                found = [d for d in line[8:].split(",") if "(=" in d or not exact]
                return [d.split("(")[0].split("|")[0].strip() for d in found]
        return []

    def download(self, pkg: Locked, dest: Path) -> Path:
        """Fetch one locked package into `dest`, verified; never leave half a file there."""
        final = dest / pkg.filename
        if final.is_file():
            if sha256_of(final) == pkg.sha256:
                return final
            raise BuildError(
                f"{pkg.name}: {final} does not match the lock's sha256",
                hint=f"the cache was tampered with or corrupted: delete {final}",
            )
        tmp = dest / f".partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            try:
                run(
                    [
                        "apt-get",
                        *self._opts(),
                        "-q",
                        "download",
                        f"{pkg.name}:{pkg.arch}={pkg.version}",
                    ],
                    cwd=tmp,
                    capture=True,
                    quiet=True,
                )
            except BuildError as exc:
                detail = str(exc).rsplit(": ", 1)[-1]  # apt's own last line, not its argv
                raise BuildError(
                    f"{pkg.spec}: download failed from {self.uris}: {detail}",
                    hint="check the network and /etc/apt/sources.list.d; "
                    "`invoke toolchain --update` re-locks to what the sources offer",
                ) from exc
            got = tmp / pkg.filename
            if not got.is_file():
                found = ", ".join(p.name for p in tmp.iterdir()) or "nothing"
                raise BuildError(f"{pkg.spec}: apt delivered {found}, expected {pkg.filename}")
            if sha256_of(got) != pkg.sha256:
                raise BuildError(
                    f"{pkg.spec}: sha256 mismatch for {pkg.filename}",
                    hint="the source serves a different file than the lock names",
                )
            os.replace(got, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"fetched {pkg.filename}")
        return final


@dataclass(frozen=True)
class SourceFile:
    filename: str
    sha256: str


@dataclass(frozen=True)
class LockedSource:
    """A Debian source package: the .dsc and the files it names, each with its sha256."""

    name: str
    version: str
    files: tuple[SourceFile, ...]

    @property
    def dsc(self) -> str:
        return next(f.filename for f in self.files if f.filename.endswith(".dsc"))


class SourceApt(Apt):
    """Source packages (deb-src) of the machine's sources, with the same private state."""

    def source_versions(self, name: str) -> list[str]:
        """Every version of source package `name` the sources list, newest first."""
        proc = run(
            ["apt-cache", *self._opts(), "showsrc", "--only-source", name], capture=True, quiet=True
        )
        versions = [
            line.split(":", 1)[1].strip()
            for line in proc.stdout.decode().splitlines()
            if line.startswith("Version:")
        ]
        order = run(["apt-cache", *self._opts(), "madison", name], capture=True, quiet=True)
        ranked = [
            w.split("|")[1].strip() for w in order.stdout.decode().splitlines() if "Sources" in w
        ]
        return [v for v in ranked if v in versions] + [v for v in versions if v not in ranked]

    def resolve_source(self, name: str, version: str) -> LockedSource:
        proc = run(
            ["apt-get", *self._opts(), "-q", "source", "--print-uris", f"{name}={version}"],
            capture=True,
            quiet=True,
        )
        files = []
        for line in proc.stdout.decode().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[3].startswith("SHA256:"):
                files.append(SourceFile(parts[1], parts[3][7:]))
        if not any(f.filename.endswith(".dsc") for f in files):
            raise BuildError(
                f"source {name}={version}: not found in the deb-src of the "
                f"{self.suite} sources ({self.uris})"
            )
        return LockedSource(name, version, tuple(files))

    def download_source(self, src: LockedSource, dest: Path) -> list[Path]:
        """Fetch every file of a locked source package into `dest`, verified."""
        dest.mkdir(parents=True, exist_ok=True)
        if all(
            (dest / f.filename).is_file() and sha256_of(dest / f.filename) == f.sha256
            for f in src.files
        ):
            return [dest / f.filename for f in src.files]
        tmp = dest / f".partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            try:
                run(
                    [
                        "apt-get",
                        *self._opts(),
                        "-q",
                        "source",
                        "--download-only",
                        f"{src.name}={src.version}",
                    ],
                    cwd=tmp,
                    capture=True,
                    quiet=True,
                )
            except BuildError as exc:
                detail = str(exc).rsplit(": ", 1)[-1]
                raise BuildError(
                    f"source {src.name}={src.version}: download failed from {self.uris}: {detail}",
                    hint="check the network and the deb-src of the apt sources; "
                    "`invoke toolchain --update` re-locks to what they serve",
                ) from exc
            for f in src.files:
                got = tmp / f.filename
                if not got.is_file() or sha256_of(got) != f.sha256:
                    raise BuildError(
                        f"source {src.name}={src.version}: {f.filename} is missing "
                        "or does not match the lock's sha256",
                        hint="the source serves a different file than the lock names",
                    )
            for f in src.files:
                os.replace(tmp / f.filename, dest / f.filename)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"fetched source {src.name} {src.version}")
        return [dest / f.filename for f in src.files]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack(debs: list[Path], dest: Path) -> None:
    """`dpkg -x` each deb into a fresh tree, then rename it into place (atomic for readers)."""
    with atomic_output(dest) as tmp:
        tmp.mkdir()
        for deb in debs:
            run(["dpkg-deb", "-x", deb, tmp], quiet=True)
        contain(tmp)


# A linker script is small text; ld reads `=/path` as "/path inside the sysroot".
_SCRIPT_MAX = 4096
_SCRIPT_PATH = re.compile(rb"(?<![=\w/.-])(/(?:usr/)?lib[\w/.+-]*)")


def is_linker_script(path: Path) -> bool:
    if path.is_symlink() or not path.is_file() or path.stat().st_size > _SCRIPT_MAX:
        return False
    head = path.read_bytes()
    return (
        not head.startswith(b"\x7fELF")
        and b"\0" not in head
        and (b"GROUP" in head or b"INPUT" in head)
    )


def _walk(tree: Path) -> Iterator[tuple[Path, Path]]:
    """(directory, entry) for every entry under `tree`, links not followed."""
    for dirpath, dirnames, filenames in os.walk(tree):
        here = Path(dirpath)
        for name in (*dirnames, *filenames):
            yield here, here / name


def contain(tree: Path) -> None:
    """Make an unpacked tree self-contained: Debian's -dev packages carry absolute symlinks
    (libm.so -> /lib/aarch64-linux-gnu/libm.so.6) and linker scripts naming /lib and /usr/lib,
    which as a sysroot would point at the build machine's own files. Absolute links become
    relative to the tree; script paths get ld's `=` (sysroot) prefix."""
    for here, path in _walk(tree):
        if path.is_symlink():
            target = os.readlink(path)
            if target.startswith("/"):
                relative = os.path.relpath(tree / target.lstrip("/"), here)
                path.unlink()
                path.symlink_to(relative)
        elif path.name.endswith(".so") and is_linker_script(path):
            text = path.read_bytes()
            fixed = _SCRIPT_PATH.sub(rb"=\1", text)
            if fixed != text:
                path.write_bytes(fixed)  # inside the fresh, not yet renamed tree


def escapes(tree: Path) -> list[str]:
    """Every link or linker script under `tree` that points outside it (empty when contained)."""
    found = []
    root = tree.resolve()
    for here, path in _walk(tree):
        if path.is_symlink():
            target = os.readlink(path)
            inside = os.path.normpath(here.resolve() / target)
            if target.startswith("/") or not (
                inside == str(root) or inside.startswith(str(root) + os.sep)
            ):
                found.append(f"{path.relative_to(tree)} -> {target}")
        elif path.name.endswith(".so") and is_linker_script(path):
            for m in _SCRIPT_PATH.finditer(path.read_bytes()):
                found.append(f"{path.relative_to(tree)}: names {m.group(1).decode()}")
    return found
