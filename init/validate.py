"""Checking the configuration: a plain dict (the JSON the builder wrote, or a pinit.toml table)
becomes the frozen values of init/config.py, or a ConfigError that quotes the bad value and
says where it came from. One generic walk over the schema's fields; the tables below add what
a type cannot say.
"""

from __future__ import annotations

from init import jsontext
from init.config import (
    CONDITIONS,
    FIRST_ETHERNET,
    FIRST_WIRELESS,
    MODES,
    MODULE_FAILURE,
    ON_DAMAGE,
    POLICIES,
    RESTART,
    WAIT_EXPIRED,
    Config,
    CrashLoop,
    Data,
    Device,
    Module,
    Network,
    Service,
    Time,
    Update,
    Watchdog,
    Wifi,
    start_order,
)
from init.errors import ConfigError, did_you_mean
from init.frozen import MISSING, fields

# Names for type checkers only: _collections_abc is 25 ABCs to build at boot.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CMDLINE = "kernel command line"  # the `source` named in warnings about pinit.* words

CHOICES: dict[tuple[type, str], tuple[str, ...]] = {
    (Config, "mode"): MODES,
    (Config, "on_failure"): POLICIES,
    (Config, "module_failure"): MODULE_FAILURE,
    (Service, "restart"): RESTART,
    (CrashLoop, "action"): POLICIES,
    (Service, "on_wait_timeout"): WAIT_EXPIRED,
    (Data, "on_damage"): ON_DAMAGE,
}

# Numbers are at least 0 unless listed here.
MINIMUM: dict[tuple[type, str], int] = {
    (CrashLoop, "count"): 1,
    (Watchdog, "timeout"): 1,  # the kernel rejects a zero timeout
    (Service, "cpu_weight"): 1,  # cgroup v2's cpu.weight is 1..10000
    (Service, "log_max"): 4096,  # room for a few lines at least
}

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _service_name(value: str) -> str:
    # The builder packs the program as /app/<name>, so the name must be a plain file name.
    if not value or not set(value) <= NAME_CHARS or value[0] in ".-":
        return "expected a name of letters, digits, '.', '_', '-' (not starting with '.' or '-')"
    # /init is the init itself; a Python service runs as /app/<name>, a link to it.
    if value == "init":
        return "the name init is the init's own; choose another"
    return ""


def _module_name(value: str) -> str:
    if not value or "/" in value or not value.isprintable() or " " in value:
        return "expected a module name or alias"
    return ""


def _hostname(value: str) -> str:
    # sethostname(2) refuses more than 64 bytes (HOST_NAME_MAX).
    if not 0 < len(value.encode()) <= 64 or "/" in value or not value.isprintable() or " " in value:
        return "expected 1 to 64 characters without spaces or '/'"
    return ""


def _absolute(value: str) -> str:
    return "" if value.startswith("/") else "expected an absolute path"


def _absolute_or_empty(value: str) -> str:
    return "" if not value or value.startswith("/") else 'expected an absolute path or ""'


def _block_device(value: str) -> str:
    if not value or value.startswith(("/dev/", "LABEL=", "PARTUUID=")):
        return ""
    return 'expected "", /dev/NAME, LABEL=... or PARTUUID=...'


def _interface(value: str) -> str:
    # IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and spaces in a name.
    if (
        not value
        or len(value.encode()) > 15
        or not value.isprintable()
        or any(c in value for c in "/: ")
    ):
        return f'expected "{FIRST_ETHERNET}", "{FIRST_WIRELESS}" or an interface name such as eth0'
    return ""


def _ssid(value: str) -> str:
    if not 1 <= len(value.encode()) <= 32:
        return "expected a network name of 1 to 32 bytes"
    return ""


def _psk(value: str) -> str:
    if value and (len(value) != 64 or any(c not in "0123456789abcdefABCDEF" for c in value)):
        return 'expected 64 hex digits (the derived key), or "" for an open network'
    return ""


def _country(value: str) -> str:
    if value and (len(value) != 2 or not value.isascii() or not value.isupper()):
        return 'expected a two-letter country code such as "GB" or "US", or ""'
    return ""


def _ip_or_empty(value: str) -> str:
    from init import inet  # here: a boot without [network] need not import it

    try:
        if value:
            inet.pack(value)
    except ValueError:
        return 'expected "" or an IPv4 address such as 192.168.1.1'
    return ""


def _prefix_or_empty(value: str) -> str:
    from init import inet

    try:
        if value:
            inet.pack_prefix(value)
    except ValueError:
        return 'expected "" (DHCP) or an address with its prefix length, such as 192.168.1.10/24'
    return ""


CHECKS: dict[tuple[type, str], Callable[[str], str]] = {
    (Service, "name"): _service_name,
    (Service, "exec"): _absolute,
    (Service, "cwd"): _absolute,
    (Module, "name"): _module_name,
    (Config, "hostname"): _hostname,
    (Watchdog, "device"): _absolute_or_empty,
    (Config, "automount"): _absolute_or_empty,
    (Data, "device"): _block_device,
    (Data, "mountpoint"): _absolute,
    (Network, "interface"): _interface,
    (Network, "address"): _prefix_or_empty,
    (Network, "gateway"): _ip_or_empty,
    (Network, "country"): _country,
    (Wifi, "ssid"): _ssid,
    (Wifi, "psk"): _psk,
    (Time, "rtc"): _absolute_or_empty,
    (Update, "key"): _absolute_or_empty,
    (Update, "inbox"): _absolute,
}

_STRINGS = "tuple[str, ...]"
_INTS = "tuple[int, ...]"
_PAIRS = "tuple[tuple[str, str], ...]"
SCALARS = ("str", "int", "float", "bool")
# `from __future__ import annotations` keeps field types as strings; these name the compound ones.
_TABLES = {
    "CrashLoop": CrashLoop,
    "Watchdog": Watchdog,
    "Data": Data,
    "Time": Time,
    "Update": Update,
}
_LISTS = {
    "tuple[Module, ...]": Module,
    "tuple[Service, ...]": Service,
    "tuple[Device, ...]": Device,
    "tuple[Network, ...]": Network,
    "tuple[Wifi, ...]": Wifi,
}


_INFINITIES = (float("inf"), float("-inf"))


class BadValue(Exception):
    """What is wrong with one value; the caller adds where the value came from."""


def _show(value: object) -> str:
    text = jsontext.dumps(value)  # default=str: TOML dates have no JSON form
    return text if len(text) <= 60 else text[:57] + "..."


def located(source: str, where: str, key: str, value: object, problem: str) -> str:
    """The one message shape: `pinit.toml: [service.app] restart = "x": expected ...`."""
    label = f"{where} " if where else ""
    return f"{source}: {label}{key} = {_show(value)}: {problem}"


def _fail(source: str, where: str, key: str, value: object, problem: str) -> ConfigError:
    return ConfigError(located(source, where, key, value, problem))


def _sub(section: str, name: str) -> str:
    return f"[{name}]" if not section else f"{section[:-1]}.{name}]"


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise BadValue("expected a string")
    if "\0" in value:
        raise BadValue("expected a string without NUL bytes")
    return value


def convert(cls: type, name: str, kind: str, value: object, source: str, where: str) -> object:
    """Convert one field's value; raise BadValue, or ConfigError for a nested key."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadValue("expected true or false")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadValue("expected an integer" if kind == "int" else "expected a number")
        if kind == "int" and not isinstance(value, int):
            raise BadValue("expected an integer")
        if value != value or value in _INFINITIES:
            raise BadValue("expected a finite number")
        low = MINIMUM.get((cls, name), 0)
        if value < low:
            raise BadValue(f"expected at least {low}")
        return float(value) if kind == "float" else value
    if kind == "str":
        text = _string(value)
        choices = CHOICES.get((cls, name))
        if choices and text not in choices:
            raise BadValue("expected one of " + ", ".join(choices))
        check = CHECKS.get((cls, name))
        problem = check(text) if check else ""
        if problem:
            raise BadValue(problem)
        return text
    if kind == _STRINGS:
        if not isinstance(value, (list, tuple)):
            raise BadValue("expected a list of strings")
        return tuple(_string(item) for item in value)
    if kind == _INTS:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise BadValue("expected a list of numbers (0 or more)")
        return tuple(value)
    if kind == _PAIRS:
        if not isinstance(value, dict):
            raise BadValue("expected a table of strings")
        for key, text in value.items():
            if not key or "=" in key or "\0" in key:
                raise BadValue(f'"{key}" cannot be an environment variable name')
            _string(text)
        return tuple(sorted(value.items()))
    if kind in _TABLES:
        if not isinstance(value, dict):
            raise BadValue("expected a table")
        table = _TABLES[kind]
        return table(**section(table, value, source, _sub(where, name)))
    if kind in _LISTS:
        if not isinstance(value, (list, tuple)):
            raise BadValue("expected a list of tables")
        return tuple(_item(_LISTS[kind], i, item, source, name) for i, item in enumerate(value))
    raise TypeError(f"{cls.__name__}.{name}: no parser for type {kind}")


def _item(cls: type, index: int, value: object, source: str, key: str) -> object:
    if not isinstance(value, dict):
        raise _fail(source, "", f"{key}[{index}]", value, "expected a table")
    label = cls.__name__.lower()
    name = value.get("name")
    where = f"[{label}.{name}]" if isinstance(name, str) and name else f"[{label} #{index + 1}]"
    return cls(**section(cls, value, source, where))


def section(
    cls: type, data: dict, source: str, where: str, keys: tuple[str, ...] | None = None
) -> dict[str, object]:
    """Check `data` against the fields of `cls` (or only `keys`); return keyword arguments.

    `where` is the section label used in messages, e.g. "[service.app]" or "" for the top level.
    """
    known = {f.name: f for f in fields(cls) if keys is None or f.name in keys}
    out: dict[str, object] = {}
    for key, value in data.items():
        f = known.get(key)
        if f is None:
            raise _fail(source, where, key, value, "unknown key" + did_you_mean(str(key), known))
        try:
            out[key] = convert(cls, key, str(f.type), value, source, where)
        except BadValue as bad:
            raise _fail(source, where, key, value, str(bad)) from None
    for f in known.values():
        if f.default is MISSING and f.default_factory is MISSING and f.name not in out:
            label = f"{where} " if where else ""
            raise ConfigError(f'{source}: {label}missing required key "{f.name}"')
    return out


def check(config: Config, source: str, top: str = "") -> None:
    """Rules that span fields; `top` labels the top-level keys (the builder's "[init]")."""
    names: set[str] = set()
    for service in config.services:
        if service.name in names:
            raise _fail(
                source,
                f"[service.{service.name}]",
                "name",
                service.name,
                "another service has this name",
            )
        names.add(service.name)
        if service.log_to_data and not config.data.device:
            raise _fail(
                source,
                f"[service.{service.name}]",
                "log_to_data",
                True,
                "needs a data partition ([data])",
            )
        for path in service.wait_for:
            if not path.startswith("/"):
                raise _fail(
                    source,
                    f"[service.{service.name}]",
                    "wait_for",
                    list(service.wait_for),
                    f'"{path}" is not an absolute path',
                )
        if service.cpu_weight > 10000:
            raise _fail(
                source,
                f"[service.{service.name}]",
                "cpu_weight",
                service.cpu_weight,
                "expected 1 to 10000 (cgroup v2 cpu.weight)",
            )
        if service.backoff_max < service.backoff_start:
            raise _fail(
                source,
                f"[service.{service.name}]",
                "backoff_max",
                service.backoff_max,
                f"must not be below backoff_start ({service.backoff_start})",
            )
    needs = {
        "data": (config.data.device, "a data partition ([data])"),
        "network": (config.network, "a network interface ([network])"),
        "time": (config.time.servers, "time servers ([time])"),
    }
    for service in config.services:
        for name in service.after:
            if name in CONDITIONS and not needs[name][0]:
                raise _fail(
                    source,
                    f"[service.{service.name}]",
                    "after",
                    list(service.after),
                    f'"{name}" needs {needs[name][1]}',
                )
            if name not in CONDITIONS and name not in names:
                raise _fail(
                    source,
                    f"[service.{service.name}]",
                    "after",
                    list(service.after),
                    f'no service named "{name}"' + did_you_mean(name, names),
                )
    try:
        start_order(config.services)
    except ValueError as exc:
        raise _fail(source, "[service]", "after", "...", str(exc)) from None
    loaded: set[str] = set()
    for module in config.modules:
        if module.name.replace("-", "_") in loaded:
            raise _fail(source, f"[module.{module.name}]", "name", module.name, "listed twice")
        loaded.add(module.name.replace("-", "_"))
    _check_network(config, source)
    if config.mode == "exec" and len(config.services) != 1:
        raise _fail(
            source,
            top,
            "mode",
            config.mode,
            f"needs exactly one service, found {len(config.services)}",
        )
    watchdog = config.watchdog
    if watchdog.device and watchdog.interval >= watchdog.timeout:
        raise _fail(
            source,
            "[watchdog]",
            "interval",
            watchdog.interval,
            f"must be shorter than timeout ({watchdog.timeout})",
        )


def is_hostname(value: str) -> bool:
    """A DNS name: labels of letters, digits and '-', dots between them."""
    labels = value.rstrip(".").split(".")
    return 0 < len(value) <= 253 and all(
        0 < len(label) <= 63
        and label.isascii()
        and label.replace("-", "").isalnum()
        and not label.startswith("-")
        for label in labels
    )


def network_label(config: Config, index: int) -> str:
    """How messages name one interface: [network], or [network #2] among several."""
    return "[network]" if len(config.network) == 1 else f"[network #{index + 1}]"


def _check_network(config: Config, source: str) -> None:
    time = config.time
    names: set[str] = set()
    for index, network in enumerate(config.network):
        where = network_label(config, index)
        if network.interface in names:
            raise _fail(
                source,
                where,
                "interface",
                network.interface,
                "another [network] names this interface",
            )
        names.add(network.interface)
        for server in network.dns:
            if _ip_or_empty(server) or not server:
                raise _fail(
                    source,
                    where,
                    "dns",
                    list(network.dns),
                    f'"{server}" is not an IPv4 address (name servers are addresses)',
                )
        if network.wifi and network.interface == FIRST_ETHERNET:
            raise _fail(
                source,
                where,
                "interface",
                network.interface,
                f'Wi-Fi networks need a wireless interface ("{FIRST_WIRELESS}" or a name)',
            )
        if network.interface == FIRST_WIRELESS and not network.wifi:
            raise _fail(
                source,
                where,
                "interface",
                network.interface,
                "a wireless interface needs the networks to join ([[network.wifi]])",
            )
        if network.country and not network.wifi:
            raise _fail(
                source, where, "country", network.country, "goes with Wi-Fi ([[network.wifi]])"
            )
        ssids = [w.ssid for w in network.wifi]
        for ssid in ssids:
            if ssids.count(ssid) > 1:
                raise _fail(source, where, "wifi", ssid, "this network is in the list twice")
        if network.gateway and not network.address:
            raise _fail(
                source,
                where,
                "gateway",
                network.gateway,
                "a gateway goes with a static address; DHCP gives its own",
            )
        if network.address and network.gateway:
            from init import inet

            address, prefix = inet.pack_prefix(network.address)
            if not inet.same_net(address, inet.pack(network.gateway), prefix):
                raise _fail(
                    source,
                    where,
                    "gateway",
                    network.gateway,
                    f"not in the network of {network.address}",
                )
    if (config.network or time.servers) and config.mode == "exec":
        raise _fail(
            source,
            "[init]",
            "mode",
            "exec",
            "[network] and [time] need the init "
            'to stay (mode = "supervise"): it keeps the lease and the clock',
        )
    dhcp = any(not n.address for n in config.network)
    for server in time.servers:
        if server == "dhcp":
            if not dhcp:
                raise _fail(
                    source,
                    "[time]",
                    "servers",
                    list(time.servers),
                    '"dhcp" needs DHCP on an interface ([network])',
                )
        elif _ip_or_empty(server):
            if not is_hostname(server):
                raise _fail(
                    source,
                    "[time]",
                    "servers",
                    list(time.servers),
                    f'"{server}" is neither an IPv4 address nor a host name',
                )
            if not dhcp and not any(n.dns for n in config.network):
                raise _fail(
                    source,
                    "[time]",
                    "servers",
                    list(time.servers),
                    f'"{server}" is a name: it needs a name server ([network] with DHCP, or dns)',
                )
    if time.servers and time.interval < 16:
        raise _fail(
            source,
            "[time]",
            "interval",
            time.interval,
            "expected at least 16 s (time servers ask clients not to poll faster)",
        )


def from_dict(data: dict, source: str) -> Config:
    """Build a Config from the plain dict to_dict() makes; ConfigError names source, key, value."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table (JSON object) at the top level")
    config = Config(**section(Config, data, source, ""))  # type: ignore[arg-type]
    check(config, source)
    return config


def to_dict(obj: object) -> dict:
    """The JSON-able form of a Config (or any of its parts): from_dict(to_dict(c)) == c."""
    out: dict[str, object] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if f.type == _PAIRS:
            value = dict(value)
        elif str(f.type) in _TABLES:
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = [to_dict(item) if str(f.type) in _LISTS else item for item in value]
        out[f.name] = value
    return out
