"""Kernel modules for the image: find them in a module tree, order them, check them, pack them.

A tree is `root/lib/modules/<release>`. When depmod has run (Raspberry Pi OS) its modules.dep and
modules.alias are used; the Debian linux-image package ships neither, so the same data is read
from each module's `.modinfo` ELF section and cached as JSON. The closure itself is
init.modules.closure, so the builder packs exactly what the init will load at boot.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.run import log, run, step
from init.errors import ModuleError
from init.modules import (
    SUFFIXES,
    closure,
    glob_match,
    modules_dir,
    name_of,
    normalize,
    parse_alias,
    parse_builtin,
    parse_dep,
)

CACHE_FORMAT = 1
# The .modinfo keys the index needs; the rest (license, parm, ...) stays out of the cache.
KEYS = ("name", "depends", "alias", "vermagic")


@dataclass(frozen=True)
class ModuleTree:
    """The module index of one tree; `dep` keys are file paths relative to `folder`."""

    folder: Path
    release: str
    dep: dict[str, tuple[str, ...]]  # direct deps from .modinfo, transitive from modules.dep
    alias: tuple[tuple[str, str], ...]  # (normalised pattern, module name); built-in ones too
    builtin: frozenset[str]
    vermagic: dict[str, str]  # path -> vermagic; empty when modules.dep was used
    source: str  # what the index was read from, for messages


@dataclass(frozen=True)
class Resolved:
    """Modules to pack for some names, in load order, and the trimmed index the init reads."""

    folder: Path
    release: str
    modules: tuple[str, ...]  # tree paths (maybe .ko.xz), dependencies first
    dep: dict[str, tuple[str, ...]]  # each module's transitive deps, depmod order
    alias: tuple[tuple[str, str], ...]  # aliases that matter for the included modules
    builtin: tuple[str, ...] = field(default=())  # requested names compiled into the kernel
    vermagic: str = ""


def read_module(path: Path) -> bytes:
    """The plain ELF bytes of a .ko, .ko.xz, .ko.gz or .ko.zst file."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".ko.xz"):
            return lzma.decompress(data)
        if path.name.endswith(".ko.gz"):
            return gzip.decompress(data)
    except (OSError, lzma.LZMAError, EOFError) as exc:
        raise BuildError(f"{path}: cannot read the module ({exc})") from exc
    if path.name.endswith(".ko.zst"):
        # Python 3.11 has no zstd; the zstd tool is a host package of the toolchain.
        return run(["zstd", "-dc", path], capture=True, quiet=True).stdout
    return data


def modinfo(data: bytes, label: str) -> list[tuple[str, str]]:
    """The `key=value` strings of a module's .modinfo section, in file order."""
    try:
        section = ELFFile(io.BytesIO(data)).get_section_by_name(".modinfo")
    except ELFError as exc:
        raise BuildError(f"{label}: not an ELF kernel module ({exc})") from exc
    if section is None:
        raise BuildError(f"{label}: no .modinfo section, so not a kernel module")
    pairs = []
    for item in section.data().split(b"\0"):
        key, eq, value = item.decode(errors="replace").partition("=")
        if eq:
            pairs.append((key, value))
    return pairs


def _scan(job: tuple[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """Worker: one module's needed .modinfo keys; top level so a process pool can pickle it."""
    folder, rel = job
    path = Path(folder, rel)
    return rel, [(k, v) for k, v in modinfo(read_module(path), str(path)) if k in KEYS]


def module_files(folder: Path) -> list[tuple[str, os.stat_result]]:
    """(relative path, stat) of every module file, sorted; symlinked build/source not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in filenames:
            if name.endswith(SUFFIXES):
                path = os.path.join(dirpath, name)
                found.append((os.path.relpath(path, folder), os.stat(path)))
    return sorted(found)


Index = tuple[dict[str, tuple[str, ...]], tuple[tuple[str, str], ...], dict[str, str]]


def _index_from_modinfo(folder: Path, rels: list[str]) -> Index:
    jobs = [(str(folder), rel) for rel in rels]
    workers = min(os.cpu_count() or 1, 8)
    if workers > 1 and len(jobs) > 200:
        # pyelftools costs ~2 ms a module; a tree of 4000 is worth a process per core.
        with ProcessPoolExecutor(workers) as pool:
            scanned = list(pool.map(_scan, jobs, chunksize=64))
    else:
        scanned = [_scan(job) for job in jobs]
    by_name = {name_of(rel): rel for rel in rels}
    dep: dict[str, tuple[str, ...]] = {}
    alias: list[tuple[str, str]] = []
    vermagic: dict[str, str] = {}
    for rel, pairs in scanned:
        info: dict[str, list[str]] = {}
        for key, value in pairs:
            info.setdefault(key, []).append(value)
        name = info.get("name", [name_of(rel)])[0].replace("-", "_")
        needs = [n.strip().replace("-", "_") for n in ",".join(info.get("depends", [])).split(",")]
        # A name missing from the tree becomes a path closure() reports as "not listed".
        dep[rel] = tuple(by_name.get(n, f"{n}.ko") for n in needs if n)
        alias += [(normalize(pattern), name) for pattern in info.get("alias", [])]
        vermagic[rel] = info.get("vermagic", [""])[0]
    return dep, tuple(alias), vermagic


def _load_cache(path: Path) -> Index | None:
    """The cached index, or None when missing or damaged: a bad cache is recomputed."""
    try:
        data = json.loads(path.read_text())
        if data["format"] != CACHE_FORMAT:
            return None
        return (
            {rel: tuple(needs) for rel, needs in data["dep"].items()},
            tuple((pattern, name) for pattern, name in data["alias"]),
            {rel: str(vm) for rel, vm in data["vermagic"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _builtin_aliases(folder: Path) -> list[tuple[str, str]]:
    """modules.builtin.modinfo holds `name.alias=pattern` records of built-in code, so that
    "net-pf-17" is known to be compiled in rather than missing."""
    path = folder / "modules.builtin.modinfo"
    if not path.is_file():
        return []
    found = []
    for record in path.read_bytes().split(b"\0"):
        key, eq, value = record.decode(errors="replace").partition("=")
        name, dot, attr = key.partition(".")
        if eq and dot and attr == "alias":
            found.append((normalize(value), name.replace("-", "_")))
    return found


def load_tree(root: Path, release: str, cache: Path | None = None) -> ModuleTree:
    """The index of root/lib/modules/<release>, from depmod's files or the modules' .modinfo."""
    folder = Path(modules_dir(root, release))
    if not folder.is_dir():
        raise BuildError(
            f"{folder}: no module tree for kernel {release}",
            hint="the kernel package and the release must match",
        )
    builtin = parse_builtin(_read(folder / "modules.builtin"))
    built_alias = tuple(_builtin_aliases(folder))
    if (folder / "modules.dep").is_file():
        dep = parse_dep(_read(folder / "modules.dep"))
        alias = parse_alias(_read(folder / "modules.alias"))
        return ModuleTree(
            folder, release, dep, alias + built_alias, builtin, {}, str(folder / "modules.dep")
        )
    files = module_files(folder)
    if not files:
        raise BuildError(
            f"{folder}: no modules.dep and no .ko files",
            hint="point the build at an unpacked kernel package",
        )
    # Count, size and newest mtime change whenever the package does; hashing 300 MB would not pay.
    stamp = (
        f"{CACHE_FORMAT}\0{folder.resolve()}\0{release}\0{len(files)}\0"
        f"{sum(st.st_size for _, st in files)}\0{max(st.st_mtime_ns for _, st in files)}"
    )
    if cache is None:
        from hostkit.cache import cache_dir

        cache = cache_dir() / "kmod"
    cached = cache / f"{release}-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    index = _load_cache(cached)
    if index is None:
        with step(f"reading .modinfo of {len(files)} modules in {folder}"):
            index = _index_from_modinfo(folder, [rel for rel, _ in files])
        body = {"format": CACHE_FORMAT, "dep": index[0], "alias": index[1], "vermagic": index[2]}
        write_atomic(cached, json.dumps(body, sort_keys=True).encode())
    dep, alias, vermagic = index
    return ModuleTree(
        folder,
        release,
        dep,
        alias + built_alias,
        builtin,
        vermagic,
        f"{folder} (.modinfo of {len(files)} modules)",
    )


def _order(tree: ModuleTree, names: Iterable[str]) -> list[str]:
    try:
        return closure(names, tree.dep, tree.alias, tree.builtin, tree.source)
    except ModuleError as exc:
        raise BuildError(
            str(exc),
            hint=f"list what the tree has: find {tree.folder} -name "
            "'*.ko*'; a name may also be built into the kernel "
            "(modules.builtin)",
        ) from exc


def _check_vermagic(tree: ModuleTree, order: list[str]) -> str:
    """The kernel's vermagic; BuildError for a module built for another kernel or config.

    The release is the one the image boots (the tree's folder name); the flags after it come
    from the tree's most common vermagic, since vmlinuz is compressed and not worth unpacking.
    With modversions the kernel itself compares only the flags, but a module of another release
    then fails on symbol CRCs ("disagrees about version of symbol") on the Pi, so it is refused
    here already.
    """
    magic = dict(tree.vermagic)
    for rel in order:
        if rel not in magic:
            path = tree.folder / rel
            magic[rel] = dict(modinfo(read_module(path), str(path))).get("vermagic", "")
    pool = Counter(magic[rel] for rel in order) + Counter(tree.vermagic.values())
    ours = [vm for vm, _ in pool.most_common() if vm.split(" ")[0] == tree.release]
    kernel = ours[0] if ours else ""
    for rel in order:
        if magic[rel] != kernel or not kernel:
            base = rel.rpartition("/")[2]
            against = tree.release if magic[rel].split(" ")[0] != tree.release else repr(kernel)
            raise BuildError(
                f"{base}: vermagic '{magic[rel]}' does not match kernel {against}",
                hint=f"a module built for another kernel release or configuration "
                f"does not load; take {base} from lib/modules/{tree.release} of the "
                "kernel the image boots",
            )
    return kernel


def _by_alias(tree: ModuleTree, names: Iterable[str]) -> list[tuple[str, str]]:
    """(pattern, module) pairs that a requested name matches, as the init will match them."""
    keys = [normalize(n) for n in names]
    known = {name_of(rel) for rel in tree.dep} | tree.builtin
    return [
        (p, m) for p, m in tree.alias for key in keys if key not in known and glob_match(p, key)
    ]


def resolve(names: Iterable[str], root: Path, release: str, cache: Path | None = None) -> Resolved:
    """The modules to load for `names` (module names or aliases, "-" or "_"), in load order."""
    names = tuple(names)
    tree = load_tree(root, release, cache)
    order = _order(tree, names)
    skipped = tuple(n for n in names if not _order(tree, [n]))
    for name in skipped:
        log(f"module {name}: built into kernel {release}, nothing to load")
    kernel = _check_vermagic(tree, order)
    # Each module's line lists every transitive dependency, users before what they use, as
    # depmod does: init.modules.closure walks that list from its end and gets our load order.
    dep = {rel: tuple(reversed(_order(tree, [name_of(rel)])[:-1])) for rel in order}
    included = {name_of(rel) for rel in order}
    alias = tuple(
        dict.fromkeys([pair for pair in tree.alias if pair[1] in included] + _by_alias(tree, names))
    )
    return Resolved(tree.folder, release, tuple(order), dep, alias, skipped, kernel)


def present(names: Iterable[str], root: Path, release: str, cache: Path | None = None) -> list[str]:
    """Those of `names` the tree has as modules (a name built into the kernel needs none)."""
    tree = load_tree(root, release, cache)
    found = []
    for name in names:
        try:
            if closure([name], tree.dep, tree.alias, tree.builtin, tree.source):
                found.append(name)
        except ModuleError:
            pass  # not in this kernel's tree: another board's driver
    return found


def firmware(resolved: Resolved) -> dict[str, list[str]]:
    """The firmware files each packed module declares (modinfo firmware=), by module."""
    wanted: dict[str, list[str]] = {}
    for rel in resolved.modules:
        path = resolved.folder / rel
        files = [v for k, v in modinfo(read_module(path), str(path)) if k == "firmware"]
        if files:
            wanted[name_of(rel)] = files
    return wanted


def _plain(rel: str) -> str:
    for suffix in SUFFIXES:
        if rel.endswith(suffix):
            return rel[: -len(suffix)] + ".ko"
    return rel


def dep_text(dep: Mapping[str, tuple[str, ...]]) -> str:
    return "".join(
        f"{_plain(rel)}:{''.join(' ' + _plain(d) for d in needs)}\n" for rel, needs in dep.items()
    )


def alias_text(alias: Iterable[tuple[str, str]]) -> str:
    return "# Aliases of the packed modules, trimmed by pinit.\n" + "".join(
        f"alias {pattern} {name}\n" for pattern, name in alias
    )


def pack(resolved: Resolved) -> list[tuple[str, bytes]]:
    """Archive path and bytes of each module, decompressed, and the trimmed depmod files.

    The init loads plain .ko files with finit_module(2) and no decompression flag, so .ko.xz,
    .ko.gz and .ko.zst are unpacked here and renamed .ko, in modules.dep too.
    """
    base = f"lib/modules/{resolved.release}"
    out = [
        (f"{base}/{_plain(rel)}", read_module(resolved.folder / rel)) for rel in resolved.modules
    ]
    out.append((f"{base}/modules.dep", dep_text(resolved.dep).encode()))
    out.append((f"{base}/modules.alias", alias_text(resolved.alias).encode()))
    builtin = resolved.folder / "modules.builtin"
    if builtin.is_file():
        out.append((f"{base}/modules.builtin", builtin.read_bytes()))
    return out
