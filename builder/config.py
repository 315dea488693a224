"""pinit.toml -> one frozen BuildConfig: the init's Config plus what only the build needs.

Every value is checked here, before any slow step runs, and a bad one is quoted back with the
file and key it came from. The init's settings are checked by the init's own parser
(init/config.py), so both sides share one definition and one set of defaults.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from builder import boards
from builder.accounts import Accounts, resolve_service
from builder.accounts import parse as parse_accounts
from builder.formats.compress import DEFAULT_METHOD, METHODS
from hostkit.errors import BuildError
from init import http, inet
from init.config import (
    CONFIG_FILE,
    FIRST_WIRELESS,
    Config,
    Data,
    Device,
    Module,
    Network,
    Service,
    Time,
    Update,
    Watchdog,
)
from init.errors import ConfigError, did_you_mean
from init.frozen import fields, replace
from init.validate import CHECKS, check, located, section, to_dict
from toolchain.target import AARCH64, Target

HINT = "docs/config.md lists every key of pinit.toml, its type and its default"
COMPRESSIONS = METHODS
SECTIONS = (
    "init",
    "kernel",
    "watchdog",
    "data",
    "network",
    "time",
    "service",
    "image",
    "user",
    "group",
    "device",
    "python",
    "update",
)
INIT_KEYS = tuple(
    f.name
    for f in fields(Config)
    if f.type in ("str", "int", "float", "bool") and f.name not in ("module_failure", "coldplug")
)
KERNEL_KEYS = ("modules", "params", "module_failure", "source", "available")
DATA_BUILD_KEYS = ("size", "label")
SERVICE_BUILD_KEYS = ("requirements", "include")  # Python services only
IMAGE_KEYS = (
    "compression",
    "files",
    "config_txt",
    "cmdline",
    "firmware",
    "size",
    "board",
    "timezone",
)
PYTHON_KEYS = ("optimize", "exclude", "compiled", "wheels")
APP_DIR = "/app"  # services are packed as /app/<name>
UPDATE_KEY = "/etc/pinit/update.pub"  # [update] key, where the image holds it
RESERVED = ("/init", CONFIG_FILE, UPDATE_KEY)
ELF_MACHINES = {3: "x86", 40: "32-bit ARM", 62: "x86-64", 183: "aarch64"}
SIZE_UNITS = {
    "": 1,
    "K": 1 << 10,
    "KiB": 1 << 10,
    "M": 1 << 20,
    "MiB": 1 << 20,
    "G": 1 << 30,
    "GiB": 1 << 30,
}


@dataclass(frozen=True)
class Image:
    compression: str = DEFAULT_METHOD  # initramfs compression: gzip | zstd | xz | lz4 | none
    files: tuple[tuple[str, Path], ...] = ()  # (path in the initramfs, file on this machine)
    config_txt: tuple[str, ...] = ()  # extra config.txt lines
    cmdline: tuple[str, ...] = ()  # extra cmdline.txt words
    firmware: str = "debian"  # "debian" or an absolute folder path
    size: int = 0  # sdcard.img bytes; 0 = just large enough
    board: str = "all"  # the Pi the card is for (builder/boards.py); "all" = every 64-bit one
    timezone: str = ""  # /etc/localtime's zone, a tz database name; "" = none (UTC)


@dataclass(frozen=True)
class Python:
    """[python]: how the Python services are built (one binary for them all)."""

    optimize: int = 0  # 0 as `python3 app.py`, 1 as -O, 2 as -OO
    exclude: tuple[str, ...] = ()  # modules and packages left out of the binary
    compiled: tuple[str, ...] = ()  # modules and packages compiled to C
    wheels: tuple[str, ...] = ()  # distributions taken as their aarch64 wheels


@dataclass(frozen=True)
class BuildConfig:
    path: Path  # the pinit.toml this came from
    init: Config  # written to /etc/pinit.json
    host_exec: dict[str, Path] = field(default_factory=dict, hash=False)  # service -> program here
    # Python services: their requirements.txt (pip's format) and modules to include by name.
    requirements: dict[str, Path] = field(default_factory=dict, hash=False)
    includes: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    kernel_source: str = "debian"  # "debian" or an absolute boot folder / image path
    data_size: int = 0  # bytes of the ext4 data partition; 0 = none
    data_label: str = "pinit-data"
    image: Image = field(default_factory=Image)
    accounts: Accounts = field(default_factory=Accounts)  # [[user]], [[group]]: /etc/passwd
    available: tuple[str, ...] = ()  # [kernel] available: shipped, loaded by coldplug
    python: Python = field(default_factory=Python)
    update_key: Path | None = None  # [update] key: the public key file on this machine


@dataclass(frozen=True)
class _At:
    """Where values come from: the file, its section ("[image]", "" for the top level) and the
    folder host paths are relative to. Every check below quotes a bad value back with them."""

    source: str
    where: str = ""
    base: Path = Path()

    def at(self, where: str) -> _At:
        return _At(self.source, where, self.base)

    def error(self, key: str, value: object, problem: str, hint: str = HINT) -> BuildError:
        return BuildError(located(self.source, self.where, key, value, problem), hint)

    def known(self, table: dict, allowed: tuple[str, ...]) -> None:
        for key, value in table.items():
            if key not in allowed:
                raise self.error(key, value, "unknown key" + did_you_mean(key, allowed))

    def table(self, doc: dict, name: str) -> dict:
        value = doc.get(name, {})
        if not isinstance(value, dict):
            raise self.at("").error(name, value, f"expected a [{name}] table")
        return value

    def text(self, table: dict, key: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or "\n" in value or "\0" in value:
            raise self.error(key, value, "expected a one-line string")
        return value

    def lines(self, table: dict, key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and "\n" not in v for v in value
        ):
            raise self.error(key, value, "expected a list of one-line strings")
        return tuple(value)

    def size(self, table: dict, key: str, empty: tuple[object, ...]) -> int:
        value = table.get(key, "")
        if value in empty:
            return 0
        try:
            return parse_size(value)
        except ValueError:
            raise self.error(key, value, 'expected a size such as "64MiB"') from None

    def host_path(self, value: object, key: str) -> Path:
        if not isinstance(value, str) or not value:
            raise self.error(key, value, "expected a path on this machine")
        path = (self.base / value).resolve()
        if not path.exists():
            raise self.error(
                key,
                value,
                f"{path} does not exist",
                f"{key} is a path on this machine, relative to the folder of {self.source}",
            )
        return path

    def section(self, cls: type, table: dict, keys: tuple[str, ...] | None = None) -> dict:
        """The init's own checks of `table` as `cls` (init/validate.py)."""
        return section(cls, table, self.source, self.where, keys=keys)


def parse_size(value: object) -> int:
    """Bytes from 1048576, "64MiB", "512K", "1GiB"; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = len(text) - len(text.lstrip("0123456789"))
        unit = text[digits:].strip()
        if digits and unit in SIZE_UNITS:
            return int(text[:digits]) * SIZE_UNITS[unit]
    raise ValueError(value)


def _program(value: object, at: _At, target: Target = AARCH64) -> Path:
    """Check the program a service runs: an ELF for the board's `target`, a .py file or a
    package folder."""
    path = at.host_path(value, "exec")
    if path.is_dir():
        if not (path / "__main__.py").is_file():
            raise at.error(
                "exec",
                value,
                f"{path} has no __main__.py",
                "a Python package folder runs as `python -m`; add __main__.py",
            )
        return path
    if path.suffix == ".py":
        return path
    with path.open("rb") as file:
        head = file.read(20)
    if head[:4] != b"\x7fELF":
        raise at.error(
            "exec",
            value,
            f"{path} is not an ELF executable, a .py file or a Python package folder",
        )
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    if machine != target.elf_machine:
        kind = ELF_MACHINES.get(machine, f"machine {machine}")
        raise at.error(
            "exec",
            value,
            f"{path} is a {kind} ELF, not {target.name}",
            f"cross-compile it for {target.name} ({target.debian_arch}), or give a .py file",
        )
    return path


@dataclass(frozen=True)
class _Python:
    requirements: dict[str, Path]
    includes: dict[str, tuple[str, ...]]


def _python_keys(table: dict, name: str, program: Path, at: _At, into: _Python) -> None:
    """`requirements` and `include`, which only a Python service can have."""
    present = [k for k in SERVICE_BUILD_KEYS if k in table]
    if present and not (program.is_dir() or program.suffix == ".py"):
        raise at.error(
            present[0],
            table[present[0]],
            "only a Python service (a .py file or a package folder) has this key",
        )
    if "requirements" in table:
        into.requirements[name] = at.host_path(table["requirements"], "requirements")
    if "include" in table:
        includes = at.lines(table, "include")
        for module in includes:
            if not all(part.isidentifier() for part in module.split(".")):
                raise at.error("include", module, "expected a dotted module name")
        into.includes[name] = includes


def _services(
    doc: dict, top: _At, accounts: Accounts, target: Target = AARCH64
) -> tuple[list[Service], dict[str, Path], _Python]:
    python = _Python({}, {})
    tables = doc.get("service", [])
    if not isinstance(tables, list):
        raise top.error("service", tables, "expected [[service]] tables, one per program")
    services: list[Service] = []
    host_exec: dict[str, Path] = {}
    for index, table in enumerate(tables):
        if not isinstance(table, dict):
            raise top.error(f"service[{index}]", table, "expected a table")
        name = table.get("name")
        at = top.at(
            f"[service.{name}]" if isinstance(name, str) and name else f"[service #{index + 1}]"
        )
        if "exec" not in table:
            raise BuildError(f'{at.source}: {at.where} missing required key "exec"', HINT)
        # The init runs the program where the builder packs it; the host path stays here.
        init_keys = resolve_service(
            {k: v for k, v in table.items() if k not in SERVICE_BUILD_KEYS},
            accounts,
            at.source,
            at.where,
        )
        for key in ("memory_max", "log_max"):  # "64MiB": bytes for the init
            if isinstance(init_keys.get(key), str):
                init_keys[key] = at.size(init_keys, key, ("",))
        values = at.section(Service, {**init_keys, "exec": f"{APP_DIR}/{name}"})
        service = Service(**values)  # type: ignore[arg-type]
        if service.name in host_exec:
            raise at.error("name", service.name, "another service has this name")
        host_exec[service.name] = _program(table["exec"], at, target)
        _python_keys(table, service.name, host_exec[service.name], at, python)
        services.append(service)
    return services, host_exec, python


DEVICE_KEYS = ("subsystem", "kernel", "owner", "group", "mode", "symlink")


def _devices(doc: dict, accounts: Accounts, top: _At) -> tuple[Device, ...]:
    """[[device]] rules, owner and group names resolved, mode an octal string."""
    rules = []
    for index, table in enumerate(doc.get("device", [])):
        at = top.at(f"[device #{index + 1}]")
        if not isinstance(table, dict):
            raise at.error("", table, "expected a table")
        at.known(table, DEVICE_KEYS)
        values: dict[str, object] = {}
        for key in ("subsystem", "kernel", "symlink"):
            if key in table:
                value = table[key]
                if (
                    not isinstance(value, str)
                    or "/" in value.strip("/")
                    and key != "symlink"
                    or not value.isprintable()
                    or " " in value
                ):
                    raise at.error(key, value, "expected a name without spaces")
                values[key] = value
        if "subsystem" not in values and "kernel" not in values:
            raise at.error(
                "kernel",
                None,
                'a rule needs a subsystem or a kernel name (a glob such as "ttyUSB*")',
            )
        mode = table.get("mode", "0600")
        if (
            not isinstance(mode, str)
            or not mode.isdigit()
            or any(c > "7" for c in mode)
            or int(mode, 8) > 0o7777
        ):
            raise at.error("mode", mode, 'expected an octal mode such as "0660"')
        values["mode"] = int(mode, 8)
        ids = resolve_service(
            {"user": table.get("owner", 0), "group": table.get("group", 0)},
            accounts,
            at.source,
            at.where,
        )
        values["uid"], values["gid"] = ids["user"], ids["group"]
        if not isinstance(values["uid"], int) or not isinstance(values["gid"], int):
            raise at.error("owner", table.get("owner"), "expected a name or number")
        rules.append(Device(**values))  # type: ignore[arg-type]
    return tuple(rules)


def _modules(kernel: dict, at: _At) -> tuple[Module, ...]:
    names = kernel.get("modules", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise at.error("modules", names, "expected a list of module names")
    seen: dict[str, str] = {}
    for name in names:
        problem = CHECKS[(Module, "name")](name)
        if problem:
            raise at.error("modules", names, f'"{name}": {problem}')
        if name.replace("-", "_") in seen:
            raise at.error("modules", names, f'"{name}" is listed twice')
        seen[name.replace("-", "_")] = name
    params = kernel.get("params", {})
    if not isinstance(params, dict):
        raise at.error("params", params, 'expected a table of module = "params"')
    for name, text in params.items():
        if not isinstance(text, str) or "\n" in text or "\0" in text:
            raise at.error(f"params.{name}", text, "expected a one-line string")
        if name.replace("-", "_") not in seen:
            raise at.error(
                f"params.{name}",
                text,
                "not in modules" + did_you_mean(name, seen.values()),
                "parameters apply to modules listed in [kernel] modules",
            )
    by_key = {name.replace("-", "_"): text for name, text in params.items()}
    return tuple(Module(name, by_key.get(key, "")) for key, name in seen.items())


def _source(value: str, at: _At, key: str) -> str:
    return value if value == "debian" else str(at.host_path(value, key))


def _image(doc: dict, top: _At) -> Image:
    at = top.at("[image]")
    table = at.table(doc, "image")
    at.known(table, IMAGE_KEYS)
    compression = at.text(table, "compression", DEFAULT_METHOD)
    if compression not in COMPRESSIONS:
        raise at.error("compression", compression, "expected one of " + ", ".join(COMPRESSIONS))
    files = table.get("files", {})
    if not isinstance(files, dict):
        raise at.error("files", files, 'expected a table of "/image/path" = "host path"')
    packed: list[tuple[str, Path]] = []
    for target, host in sorted(files.items()):
        key = f'files."{target}"'
        if not target.startswith("/") or target.endswith("/") or ".." in target.split("/"):
            raise at.error(key, host, "the image path must be an absolute file path")
        if target in RESERVED or target.startswith(APP_DIR + "/"):
            raise at.error(key, host, f"{target} is written by the builder")
        packed.append((target, at.host_path(host, key)))
    firmware = at.text(table, "firmware", "debian")
    timezone = at.text(table, "timezone", "")
    if timezone and (
        timezone.startswith("/")
        or ".." in timezone.split("/")
        or not all(
            part.replace("_", "").replace("-", "").replace("+", "").isalnum()
            for part in timezone.split("/")
        )
    ):
        raise at.error("timezone", timezone, 'expected a tz database name, e.g. "Europe/Berlin"')
    board = boards.canonical(at.text(table, "board", boards.ALL))
    problem = boards.check(board)
    if problem:
        raise at.error("board", board, problem)
    return Image(
        board=board,
        compression=compression,
        files=tuple(packed),
        config_txt=at.lines(table, "config_txt"),
        cmdline=at.lines(table, "cmdline"),
        firmware=_source(firmware, at, "firmware"),
        size=at.size(table, "size", ("", "auto")),
        timezone=timezone,
    )


def _python(doc: dict, top: _At) -> Python:
    at = top.at("[python]")
    table = at.table(doc, "python")
    at.known(table, PYTHON_KEYS)
    optimize = table.get("optimize", 0)
    if optimize not in (0, 1, 2) or isinstance(optimize, bool):
        raise at.error(
            "optimize",
            optimize,
            "expected 0 (as python3), 1 (as python3 -O: no asserts) or 2 "
            "(as python3 -OO: no asserts, no docstrings)",
        )
    names = {}
    for key in ("exclude", "compiled"):
        names[key] = at.lines(table, key)
        for module in names[key]:
            if not all(part.isidentifier() for part in module.split(".")):
                raise at.error(key, module, "expected a dotted module name")
    wheels = at.lines(table, "wheels")
    for name in wheels:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
            raise at.error(
                "wheels",
                name,
                "expected a distribution name, as pip "
                "spells it in requirements.txt (pillow, numpy)",
            )
    return Python(optimize=optimize, wheels=wheels, **names)


def _build(doc: dict, path: Path) -> BuildConfig:
    top = _At(str(path), "", path.resolve().parent)
    for name in doc:
        if name in INIT_KEYS:
            raise top.error(name, doc[name], "belongs in the [init] section")
        if name not in SECTIONS:
            raise BuildError(
                f"{top.source}: [{name}]: unknown section" + did_you_mean(name, SECTIONS), HINT
            )
    at = top.at("[init]")
    init = at.table(doc, "init")
    if "module_failure" in init:
        raise at.error("module_failure", init["module_failure"], "belongs in the [kernel] section")
    settings = at.section(Config, init, keys=INIT_KEYS)

    at = top.at("[kernel]")
    kernel = at.table(doc, "kernel")
    at.known(kernel, KERNEL_KEYS)
    settings.update(
        at.section(
            Config,
            {k: v for k, v in kernel.items() if k == "module_failure"},
            keys=("module_failure",),
        )
    )
    kernel_source = _source(at.text(kernel, "source", "debian"), at, "source")
    available = at.lines(kernel, "available")
    for name in available:
        problem = CHECKS[(Module, "name")](name)
        if problem:
            raise at.error("available", list(available), f'"{name}": {problem}')

    at = top.at("[watchdog]")
    watchdog = Watchdog(**at.section(Watchdog, at.table(doc, "watchdog")))  # type: ignore[arg-type]

    at = top.at("[data]")
    data_table = at.table(doc, "data")
    at.known(data_table, tuple(f.name for f in fields(Data)) + DATA_BUILD_KEYS)
    init_data = {k: v for k, v in data_table.items() if k not in DATA_BUILD_KEYS}
    data = Data(**at.section(Data, init_data))  # type: ignore[arg-type]
    data_size = at.size(data_table, "size", ("", 0))
    label = at.text(data_table, "label", "pinit-data")
    if not 0 < len(label.encode()) <= 16 or " " in label:
        # ext4 stores at most 16 bytes of volume label.
        raise at.error("label", label, "expected 1 to 16 characters, no spaces")
    if data_size and not data.device:
        # The partition the builder makes; on a card made by copying the boot folder, PID 1
        # makes it from the image's seed (init/grow.py), unless the pinit.toml says not to.
        data = replace(
            data,
            device=f"LABEL={label}",
            create=data_table.get("create", True),
            file=data_table.get("file", data_size),
        )
    if data.create and not data_size:
        raise at.error("create", True, 'needs "size": the data partition the builder makes')

    # [network] is one interface, [[network]] one table per interface; a [time] table turns
    # clock keeping on, with DHCP's time servers unless it names some.
    raw = doc.get("network", [])
    tables = [raw] if isinstance(raw, dict) else raw
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise top.error(
            "network", raw, "expected a [network] table, or [[network]] tables: one per interface"
        )
    network = tuple(
        _network(table, top.at("[network]" if len(tables) == 1 else f"[network #{i + 1}]"))
        for i, table in enumerate(tables)
    )
    at = top.at("[update]")
    update_table = at.table(doc, "update")
    update_key = at.host_path(update_table["key"], "key") if "key" in update_table else None
    update = Update(
        **at.section(  # type: ignore[arg-type]
            Update, {**update_table, "key": UPDATE_KEY if update_key else ""}
        )
    )
    if update_table and not update_key:
        raise at.error("key", "", "updates need the public key that invoke keygen wrote")
    _update_network(update, network, at)
    _not_on_the_card_yet(doc, top)
    image = doc.get("image")
    board = image.get("board") if isinstance(image, dict) else None
    pi4 = isinstance(board, str) and board in boards.BOARDS and boards.BOARDS[board].pi4
    if update_key and isinstance(board, str) and board in boards.BOARDS and not pi4:
        raise at.error(
            "key",
            update_table["key"],
            f"the {board}'s firmware (bootcode.bin) reads no autoboot.txt, so a card with two "
            "boot slots would not boot",
            hint="A/B updates need the Pi 4 family's bootloader: "
            + ", ".join(f'board = "{b}"' for b, x in boards.BOARDS.items() if x.pi4),
        )

    at = top.at("[time]")
    time_table = at.table(doc, "time")
    time = (
        Time(**at.section(Time, {"servers": ["dhcp"], **time_table}))  # type: ignore[arg-type]
        if "time" in doc
        else Time()
    )

    accounts = parse_accounts(doc, top.source)
    devices = _devices(doc, accounts, top)
    services, host_exec, python = _services(doc, top, accounts, _target(doc))
    config = Config(
        **settings,  # type: ignore[arg-type]
        modules=_modules(kernel, top.at("[kernel]")),
        watchdog=watchdog,
        data=data,
        network=network,
        time=time,
        update=update,
        services=tuple(services),
        devices=devices,
        coldplug=bool(available or data.device or network or update.key),
    )
    check(config, top.source, top="[init]")
    return BuildConfig(
        path=path,
        init=config,
        host_exec=host_exec,
        requirements=python.requirements,
        includes=python.includes,
        kernel_source=kernel_source,
        data_size=data_size,
        data_label=label,
        image=_image(doc, top),
        accounts=accounts,
        available=available,
        python=_python(doc, top),
        update_key=update_key,
    )


def _target(doc: dict) -> Target:
    """The machine the card's programs are for: its [image] board's (aarch64 when none)."""
    image = doc.get("image")
    board = image.get("board") if isinstance(image, dict) else None
    chosen = boards.BOARDS.get(board) if isinstance(board, str) else None
    return chosen.target if chosen else AARCH64


def _not_on_the_card_yet(doc: dict, top: _At) -> None:
    """[python] wheels: refused in one line on a board whose target has no native runtime
    (the 32-bit Pis). Its [data] and [network] are built like
    aarch64's (its e2fsck-static, its kernel's drivers); [update] is refused by the board's
    firmware, below."""
    target = _target(doc)
    if target == AARCH64:
        return
    board = doc["image"]["board"]
    # Services' requirements are built for every target (sdists, with its cross compiler);
    # binary wheels run only in the native runtime, which is arm64's Debian python3.11.
    python = doc.get("python")
    if isinstance(python, dict) and python.get("wheels"):
        raise top.at("[python]").error(
            "wheels",
            python["wheels"],
            f"the {board} card ({target.name}) has no native runtime for binary wheels "
            "(Debian's python3.11 beside the init is arm64 only); its requirements are "
            "built from their sdists",
        )


def _update_network(update: Update, network: tuple[Network, ...], at: _At) -> None:
    """`url` (http, a host name or an IPv4 address, a port) and `listen` (a TCP port), and the
    [network] and name server they need."""
    if update.url:
        try:
            host = http.parse_url(update.url)[0]
        except ValueError as exc:
            hint = (
                "a bundle is signed (Ed25519) and checked before a byte of it is written: plain "
                "http:// cannot slip a change past that, so PID 1 carries no TLS"
                if update.url.startswith("https://")
                else "expected http://HOST[:PORT]/PATH, HOST a name or an IPv4 address"
            )
            raise at.error("url", update.url, str(exc), hint) from None
        if not network:
            raise at.error("url", update.url, "needs a network interface ([network])")
        try:
            inet.pack(host)
        except ValueError:  # a name
            if all(n.address and not n.dns for n in network):
                raise at.error(
                    "url",
                    update.url,
                    f'"{host}" is a name: it needs a name server ([network] with DHCP, or dns)',
                ) from None
    if update.listen > 65535:
        raise at.error("listen", update.listen, "expected a TCP port (1 to 65535), or 0: off")
    if update.listen and not network:
        raise at.error("listen", update.listen, "needs a network interface ([network])")


def _network(table: dict, at: _At) -> Network:
    """One interface. Its Wi-Fi networks' passphrases become their keys here (PBKDF2, as
    wpa_passphrase does): the card carries the key, never the passphrase. A list of networks
    makes the interface "wireless" unless it names one."""
    raw = table.get("wifi", [])
    if not isinstance(raw, list) or not all(isinstance(w, dict) for w in raw):
        raise at.error("wifi", raw, "expected [[network.wifi]] tables: one per network")
    wifi = []
    for i, entry in enumerate(raw):
        where = at.at(f"{at.where[:-1]}.wifi #{i + 1}]")
        entry = dict(entry)
        passphrase = entry.pop("passphrase", None)
        if passphrase is not None:
            if "psk" in entry:
                raise where.error("passphrase", "...", "give a passphrase or a psk, not both")
            if (
                not isinstance(passphrase, str)
                or not 8 <= len(passphrase) <= 63
                or not all(" " <= c <= "~" for c in passphrase)
            ):
                raise where.error(
                    "passphrase",
                    "...",  # never quoted back: it is a secret
                    "expected 8 to 63 printable ASCII characters (WPA2's rule)",
                    "a 64-hex-digit key goes in psk instead",
                )
            ssid = entry.get("ssid")
            if isinstance(ssid, str):
                entry["psk"] = hashlib.pbkdf2_hmac(
                    "sha1", passphrase.encode(), ssid.encode(), 4096, 32
                ).hex()
        wifi.append(entry)
    values = {**table, "wifi": wifi}
    if wifi and "interface" not in table:
        values["interface"] = FIRST_WIRELESS
    return Network(**at.section(Network, values))  # type: ignore[arg-type]


def load_build_config(path: Path) -> BuildConfig:
    """Read and check pinit.toml; BuildError names the file, the key and the bad value."""
    try:
        with path.open("rb") as file:
            doc = tomllib.load(file)
    except FileNotFoundError:
        raise BuildError(f"{path}: not found", "create it; " + HINT) from None
    except OSError as err:
        raise BuildError(f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:  # the message ends "(at line N, column M)"
        raise BuildError(f"{path}: not valid TOML: {err}", "see https://toml.io") from None
    except UnicodeDecodeError as err:
        raise BuildError(f"{path}: not valid UTF-8 at byte {err.start}") from None
    try:
        return _build(doc, path)
    except ConfigError as err:
        raise BuildError(str(err), HINT) from None


def to_init_json(build: BuildConfig) -> bytes:
    """/etc/pinit.json: the init's part only, sorted keys, so equal configs give equal bytes."""
    text = json.dumps(to_dict(build.init), sort_keys=True, indent=1, ensure_ascii=False)
    return text.encode() + b"\n"
