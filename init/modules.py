"""Kernel module dependencies: modules.dep, modules.alias and the load order they give.

Shared by the init (which loads the modules at boot) and the builder (which packs exactly the
modules the init will load). Paths are strings and the root a parameter, so the same code reads
/lib/modules on the Pi and a temporary tree in tests; no pathlib, re or fnmatch here, because
PID 1 pays for every import.
"""

from __future__ import annotations

import posix

from init.errors import ModuleError, did_you_mean

# Names for type checkers only: _collections_abc is 25 ABCs to build at boot.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from os import PathLike

SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")


def name_of(path: str) -> str:
    """ "kernel/drivers/net/dummy.ko" -> "dummy"; compressed suffixes too, dashes become "_"."""
    base = path.rpartition("/")[2]
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


def parse_dep(text: str) -> dict[str, tuple[str, ...]]:
    """modules.dep lines `kernel/a.ko: kernel/b.ko kernel/c.ko` -> {path: dependency paths}."""
    dep: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        path, colon, rest = line.partition(":")
        if colon and path.strip():
            dep[path.strip()] = tuple(rest.split())
    return dep


def parse_alias(text: str) -> tuple[tuple[str, str], ...]:
    """modules.alias lines `alias PATTERN NAME` -> ((normalised pattern, name), ...)."""
    aliases: list[tuple[str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "alias":
            aliases.append((normalize(parts[1]), parts[2].replace("-", "_")))
    return tuple(aliases)


def parse_builtin(text: str) -> frozenset[str]:
    """modules.builtin lists paths of modules compiled into the kernel."""
    return frozenset(name_of(line.strip()) for line in text.splitlines() if line.strip())


def normalize(alias: str) -> str:
    """Dashes become underscores outside [...] classes, as kmod does for names and aliases."""
    if "[" not in alias:
        return alias.replace("-", "_")  # the common case, in C: coldplug asks for every device
    out: list[str] = []
    depth = False
    for char in alias:
        if char == "[":
            depth = True
        elif char == "]":
            depth = False
        out.append("_" if char == "-" and not depth else char)
    return "".join(out)


def _one(pattern: str, p: int, char: str) -> int:
    """Match `char` against the pattern item at p: the index after the item, or -1."""
    item = pattern[p]
    if item == "?":
        return p + 1
    if item == "\\" and p + 1 < len(pattern):
        return p + 2 if pattern[p + 1] == char else -1
    if item == "[":
        end = pattern.find("]", p + 2)  # a "]" right after "[" (or "[!") is a member
        if end >= 0:
            members = pattern[p + 1 : end]
            negate = members[:1] in ("!", "^")
            if negate:
                members = members[1:]
            found, i = False, 0
            while i < len(members):
                if i + 2 < len(members) and members[i + 1] == "-":
                    found = found or members[i] <= char <= members[i + 2]
                    i += 3
                else:
                    found = found or members[i] == char
                    i += 1
            return end + 1 if found != negate else -1
    return p + 1 if item == char else -1


# Patterns made of literal text and * only (most of modules.alias: "of:N*T*Cvirtio,mmio"), split
# at the stars once; None for one with ?, [...] or \\, which the general matcher takes.
_SEGMENTS: dict[str, list[str] | None] = {}


def _stars_match(segments: list[str], text: str) -> bool:
    """text matches segments[0] * segments[1] * ... * segments[-1]: string searches in C, the
    leftmost place of each middle segment (with * only, the leftmost never loses a match)."""
    first, last = segments[0], segments[-1]
    if len(segments) == 1:
        return text == first
    if not text.startswith(first) or len(text) < len(first) + len(last):
        return False
    at, end = len(first), len(text) - len(last)
    for middle in segments[1:-1]:
        found = text.find(middle, at, end)
        if found < 0:
            return False
        at = found + len(middle)
    return text.endswith(last)


def glob_match(pattern: str, text: str) -> bool:
    """fnmatch(3) without flags: *, ?, [a-z], [!x], backslash escapes; linear in practice."""
    if pattern not in _SEGMENTS:
        plain = not any(c in pattern for c in "?[\\")
        _SEGMENTS[pattern] = pattern.split("*") if plain else None
    segments = _SEGMENTS[pattern]
    if segments is not None:
        return _stars_match(segments, text)
    p = t = 0
    star, star_t = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, star_t = p, t
            p += 1
            continue
        after = _one(pattern, p, text[t]) if p < len(pattern) else -1
        if after >= 0:
            p, t = after, t + 1
        elif star >= 0:
            # Let the last * swallow one more character and retry from there.
            star_t += 1
            p, t = star + 1, star_t
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def _find(
    name: str, by_name: dict[str, str], alias: Iterable[tuple[str, str]], builtin: frozenset[str]
) -> list[str] | None:
    """Paths a requested name stands for: [] if built in, None if unknown."""
    key = normalize(name)
    if key in by_name:
        return [by_name[key]]
    if key in builtin:
        return []
    targets = [target for pattern, target in alias if glob_match(pattern, key)]
    if not targets:
        return None
    # Like modprobe, an alias loads every module that claims it; built-in ones need nothing.
    paths = [by_name[t] for t in dict.fromkeys(targets) if t in by_name]
    if not paths and not any(t in builtin for t in targets):
        return None
    return paths


def closure(
    names: Iterable[str],
    dep: Mapping[str, tuple[str, ...]],
    alias: Iterable[tuple[str, str]] = (),
    builtin: frozenset[str] = frozenset(),
    source: str = "modules.dep",
    unknown_ok: bool = False,
) -> list[str]:
    """Module paths (keys of `dep`) to load for `names`, dependencies first, each once.

    `names` are module names or aliases; the order follows them, and each module's dependencies
    are visited last-listed first, the order modprobe uses. ModuleError names a module that
    cannot be found (with a close match) or a dependency missing from modules.dep.
    """
    by_name: dict[str, str] = {}
    for path in dep:
        by_name.setdefault(name_of(path), path)
    alias = tuple(alias)
    order: list[str] = []
    done: set[str] = set()

    def visit(path: str, needed_by: str, active: tuple[str, ...]) -> None:
        if path in done:
            return
        if path in active:
            cycle = " -> ".join(name_of(p) for p in (*active, path))
            raise ModuleError(f"{source}: dependency cycle {cycle}")
        if path not in dep:
            raise ModuleError(f"{source}: {path} (needed by {needed_by}) is not listed")
        for needed in reversed(dep[path]):
            visit(needed, name_of(path), (*active, path))
        done.add(path)
        order.append(path)

    for name in names:
        paths = _find(name, by_name, alias, builtin)
        if paths is None and unknown_ok:
            continue  # a device no shipped module claims (coldplug asks about every device)
        if paths is None:
            hint = did_you_mean(normalize(name), by_name)
            raise ModuleError(f'{source}: no module or alias "{name}"{hint}')
        for path in paths:
            visit(path, name, ())
    return order


def modules_dir(root: str | PathLike[str], release: str) -> str:
    base = posix.fspath(root)
    return f"{base.rstrip('/')}/lib/modules/{release}" if base else f"lib/modules/{release}"


def resolve(read: Callable[[str], str], folder: str, names: list[str]) -> list[str]:
    """Module paths relative to `folder` (a lib/modules/<release>), dependencies first.

    The one resolver: PID 1 passes a reader that goes through its kernel seam, tests and the
    builder's checks pass one that reads files. modules.builtin (hundreds of lines) and
    modules.alias are read only for a name that is not a module's own name: parsing them costs
    boot time under emulation. `read` raises FileNotFoundError for a missing file; only
    modules.dep is required."""

    def optional(name: str) -> str:
        try:
            return read(f"{folder}/{name}")
        except FileNotFoundError:
            return ""  # ENOENT: modules.alias and modules.builtin are optional

    dep = parse_dep(read(f"{folder}/modules.dep"))
    known = {name_of(path) for path in dep}
    builtin: frozenset[str] = frozenset()
    alias: tuple[tuple[str, str], ...] = ()
    if any(normalize(name) not in known for name in names):
        builtin = parse_builtin(optional("modules.builtin"))
        if any(normalize(name) not in known | builtin for name in names):
            alias = parse_alias(optional("modules.alias"))
    return closure(names, dep, alias, builtin, f"{folder}/modules.dep")
