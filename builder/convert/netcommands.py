"""What the network and clock commands of a classic /init become: [network] and [time].

Each command is read into steps (DHCP on an interface, its static address, the default gateway,
a name server, a time server) as the walk meets it; settle() then puts the script's steps
together into pinit's Network tables and Time, and says which lines cannot be taken over (two
addresses for one interface, DHCP and a static address on it, a gateway without a static
address...) and what to write by hand instead.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from init import inet
from init.config import Network, Time, Wifi
from init.validate import is_hostname

NETWORK = {
    "ifconfig",
    "ip",
    "route",
    "udhcpc",
    "dhcpcd",
    "dhclient",
    "ifup",
    "ifdown",
    "wpa_supplicant",
    "iwconfig",
    "iw",
}
TIME = {"ntpd", "ntpdate", "rdate"}
BUSYBOX_DHCP = "eth0"  # busybox udhcpc's interface when -i names none
# Options that take a value, by command (the value is not an interface or a server).
VALUED = {
    "udhcpc": {
        "-s",
        "-p",
        "-t",
        "-T",
        "-A",
        "-r",
        "-O",
        "-x",
        "-F",
        "-V",
        "-H",
        "-h",
        "-c",
        "--script",
        "--pidfile",
        "--retries",
        "--timeout",
        "--tryagain",
        "--request",
        "--request-option",
        "--fqdn",
        "--vendorclass",
        "--hostname",
        "--clientid",
    },
    "dhclient": {"-cf", "-lf", "-pf", "-sf", "-p", "-s", "-g", "-e"},
    "dhcpcd": {"-h", "-i", "-c", "-t", "-l", "-s", "-r", "-v", "-o", "-O", "-m"},
    "ntpd": {"-S", "-I", "-k"},
    "ntpdate": {"-a", "-e", "-k", "-o", "-p", "-t", "-U"},
    "rdate": set(),
}
NAMESERVER = "/etc/resolv.conf"
BY_HAND = (
    'write [network] by hand (interface = "{iface}", address = "" for DHCP or '
    '"A.B.C.D/prefix" with gateway)'
)
ROUTES = "a route other than the default one; pinit sets only the default route ([network] gateway)"
WIRELESS = "write [[network.wifi]] by hand (ssid, passphrase or psk; country in [network])"


@dataclass(frozen=True)
class NetSetting:
    """One setting a network or clock command makes, by its line (settle() joins them)."""

    line: int
    key: str  # dhcp | address | gateway | dns | time
    value: str = ""  # the address/prefix, the gateway, the server
    interface: str = ""  # "" for a gateway without dev: the interface with a static address
    wifi: tuple[Wifi, ...] = ()  # key "wifi": the networks wpa_supplicant's config lists


class Unread(ValueError):
    """A network command pinit has no setting for; the message says why."""


def read(
    words: list[str], line: int, files: Callable[[str], str | None] = lambda path: None
) -> tuple[list[NetSetting], str]:
    """The steps of one network or clock command and what it becomes; Unread when none, or
    ([], note) for a line pinit does itself. `files` reads a file of the old initramfs."""
    name = posixpath.basename(words[0])
    rest = words[1:]
    if name == "wpa_supplicant":
        return _wpa_supplicant(rest, line, files)
    if name in ("iwconfig", "iw"):
        raise Unread(f"{name}: " + WIRELESS)
    if name in ("ifup", "ifdown"):
        raise Unread(
            f"{name} reads /etc/network/interfaces, which this conversion does not "
            "follow: " + BY_HAND.format(iface="eth0")
        )
    if name in TIME:
        return _time(name, rest, line)
    if name in ("udhcpc", "dhclient", "dhcpcd"):
        return _dhcp(name, rest, line)
    if name == "ifconfig":
        return _ifconfig(rest, line)
    if name == "route":
        return _route(rest, line)
    return _ip(rest, line)


def nameserver(args: list[str], line: int) -> NetSetting | None:
    """The step of `echo "nameserver X" > /etc/resolv.conf` (or >>), given echo's words."""
    words = " ".join(args).split()
    if len(words) == 2 and words[0] == "nameserver":
        return NetSetting(line, "dns", words[1])
    return None


def _options(name: str, rest: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(option → its values, plain words) of a command line."""
    given: dict[str, list[str]] = {}
    plain: list[str] = []
    words = iter(rest)
    for word in words:
        if word.startswith("--") and "=" in word:
            key, _, value = word.partition("=")
            given.setdefault(key, []).append(value)
        elif word in VALUED[name] or (name, word) in (
            ("udhcpc", "-i"),
            ("udhcpc", "--interface"),
            ("ntpd", "-p"),
            ("ntpd", "--peer"),
        ):
            given.setdefault(word, []).append(next(words, ""))
        elif (
            word[:2] in ("-i", "-p")
            and len(word) > 2
            and name in ("udhcpc", "ntpd")
            and not word.startswith("--")
        ):
            given.setdefault(word[:2], []).append(word[2:])
        elif word.startswith("-"):
            given.setdefault(word, [])
        else:
            plain.append(word)
    return given, plain


def _dhcp(name: str, rest: list[str], line: int) -> tuple[list[NetSetting], str]:
    given, plain = _options(name, rest)
    if any(f in given for f in ("-r", "-x", "-k", "--release")) and name != "udhcpc":
        raise Unread(f"{name} gives a lease back; pinit does that at shutdown")
    ifaces = (
        given.get("-i") or given.get("--interface") or [BUSYBOX_DHCP] if name == "udhcpc" else plain
    )
    if not ifaces:
        raise Unread(f"{name} without an interface: " + BY_HAND.format(iface="eth0"))
    _wired(ifaces)
    script = given.get("-s") or given.get("--script") or given.get("-sf") or []
    kept = f"; its script {script[0]} is not run: pinit applies the lease itself" if script else ""
    return (
        [NetSetting(line, "dhcp", "", iface) for iface in ifaces],
        f"DHCP on {', '.join(ifaces)} ([network]){kept}",
    )


def _wpa_supplicant(
    rest: list[str], line: int, files: Callable[[str], str | None]
) -> tuple[list[NetSetting], str]:
    """`wpa_supplicant -B -i wlan0 -c /etc/wpa_supplicant.conf`: its config's networks."""
    given: dict[str, str] = {}
    words = iter(rest)
    for word in words:
        for flag in ("-i", "-c", "-D", "-P", "-f", "-C", "-g", "-p", "-b", "-o", "-O", "-e"):
            if word == flag:
                given[flag] = next(words, "")
            elif word.startswith(flag) and len(word) > 2 and not word.startswith("--"):
                given[flag] = word[2:]
    iface, conf = given.get("-i", ""), given.get("-c", "")
    if not iface or not conf:
        raise Unread("wpa_supplicant without -i and -c: " + WIRELESS)
    text = files(conf)
    if text is None:
        raise Unread(f"wpa_supplicant's config {conf} is not in the old initramfs: " + WIRELESS)
    wifi, country, skipped = wpa_conf(text)
    if not wifi:
        raise Unread(f"{conf} has no network pinit can join ({'; '.join(skipped)}): " + WIRELESS)
    left = f"; left out: {'; '.join(skipped)}" if skipped else ""
    where = f", country {country}" if country else ""
    return [NetSetting(line, "wifi", country, iface, tuple(wifi))], (
        f"Wi-Fi on {iface} from {conf}: {', '.join(w.ssid for w in wifi)}{where} "
        f"([[network.wifi]], the passphrases stored as their keys){left}"
    )


def wpa_conf(text: str) -> tuple[list[Wifi], str, list[str]]:
    """wpa_supplicant.conf's networks in its order of preference (priority, then the file's
    order), its country, and what cannot be taken over (enterprise, WEP, SAE-only)."""
    country = ""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("network=") and line.endswith("{"):
            current = {}
        elif line == "}" and current is not None:
            blocks.append(current)
            current = None
        elif "=" in line:
            key, _, value = line.partition("=")
            if current is not None:
                current[key.strip()] = value.strip()
            elif key.strip() == "country":
                country = value.strip().strip('"').upper()
    wifi: list[tuple[int, int, Wifi]] = []
    skipped: list[str] = []
    for order, block in enumerate(blocks):
        raw_ssid = block.get("ssid", "")
        if not raw_ssid.startswith('"'):
            ssid = bytes.fromhex(raw_ssid).decode("utf-8", "replace") if raw_ssid else ""
        else:
            ssid = raw_ssid.strip('"')
        mgmt = block.get("key_mgmt", "WPA-PSK").split()
        psk = block.get("psk", "")
        if not ssid:
            skipped.append(f"network {order + 1}: no ssid")
            continue
        if block.get("disabled") == "1":
            skipped.append(f"{ssid}: disabled")
            continue
        if "NONE" in mgmt and not block.get("wep_key0"):
            key = ""
        elif "WPA-PSK" in mgmt and psk.startswith('"'):
            key = hashlib.pbkdf2_hmac(
                "sha1", psk.strip('"').encode(), ssid.encode(), 4096, 32
            ).hex()
        elif "WPA-PSK" in mgmt and len(psk) == 64:
            key = psk.lower()
        else:
            skipped.append(f"{ssid}: {' '.join(mgmt)} (pinit joins open and WPA2-PSK networks)")
            continue
        priority = int(block.get("priority", "0") or 0)
        wifi.append((-priority, order, Wifi(ssid, key, block.get("scan_ssid") == "1")))
    return [w for _, _, w in sorted(wifi, key=lambda t: t[:2])], country, skipped


def _wired(ifaces: list[str]) -> None:
    """Addresses and DHCP work on any interface; a wireless one gets its networks from the
    script's wpa_supplicant line (settle says when there is none)."""


def _address(text: str, mask: str, default: int) -> str:
    """ "A.B.C.D/prefix" from an address with a prefix, a netmask, or neither (`default`)."""
    address, slash, length = text.partition("/")
    inet.pack(address)
    prefix = (
        int(length)
        if slash and length.isdigit()
        else inet.prefix_of(inet.pack(mask))
        if mask
        else default
    )
    return inet.text(inet.pack_prefix(f"{address}/{prefix}")[0]) + f"/{prefix}"


def _classful(address: str) -> int:
    """ifconfig's prefix when no netmask is given: the address class's."""
    first = inet.pack(address.partition("/")[0])[0]
    return 8 if first < 128 else 16 if first < 192 else 24


def _up(iface: str) -> tuple[list[NetSetting], str]:
    if iface == "lo":
        return [], "pinit brings up the loopback interface (lo) itself"
    return [], (
        f"brings {iface} up: pinit brings up each interface a [network] table names "
        "(the address lines say whether it has one)"
    )


def _ifconfig(rest: list[str], line: int) -> tuple[list[NetSetting], str]:
    if not rest or rest[0].startswith("-"):
        raise Unread("an ifconfig that sets nothing pinit has a setting for")
    iface, words = rest[0], rest[1:]
    if iface == "lo":
        return _up(iface)
    _wired([iface])
    if words in ([], ["up"]):
        return _up(iface)
    address = words[0] if words and words[0][:1].isdigit() else ""
    words = words[1:] if address else words
    mask = ""
    while words:
        word = words.pop(0)
        if word in ("netmask", "broadcast") and words:
            value = words.pop(0)
            mask = value if word == "netmask" else mask
        elif word != "up":
            raise Unread(f"ifconfig {word}: a setting [network] has no key for")
    if not address:
        raise Unread("an ifconfig without an address")
    value = _address(address, mask, _classful(address))
    how = "" if mask or "/" in address else " (no netmask: the address class's prefix)"
    return [
        NetSetting(line, "address", value, iface)
    ], f"static address {value} on {iface} ([network]){how}"


def _gateway(gateway: str, iface: str, line: int) -> tuple[list[NetSetting], str]:
    inet.pack(gateway)
    _wired([iface] if iface else [])
    return (
        [NetSetting(line, "gateway", gateway, iface)],
        f"default gateway {gateway}{' of ' + iface if iface else ''} ([network] gateway)",
    )


def _route(rest: list[str], line: int) -> tuple[list[NetSetting], str]:
    words = [w for w in rest if w not in ("-n", "-A", "inet")]
    if words[:2] in (["add", "default"], ["add", "-net"]) and "gw" in words:
        net = words[2] if words[1] == "-net" else "default"
        if net in ("default", "0.0.0.0") and words.index("gw") + 1 < len(words):
            gateway = words[words.index("gw") + 1]
            iface = words[words.index("dev") + 1] if "dev" in words[:-1] else ""
            return _gateway(gateway, iface, line)
    raise Unread(ROUTES)


def _ip(rest: list[str], line: int) -> tuple[list[NetSetting], str]:
    words = [w for w in rest if w not in ("-4",)]
    obj, verb = (words + ["", ""])[:2]
    args = words[2:]
    dev = args[args.index("dev") + 1] if "dev" in args[:-1] else ""
    if obj in ("link", "l") and verb == "set":
        iface = dev or (args[0] if args else "")
        if args[-1:] == ["up"] and iface:
            return _up(iface)
    elif obj in ("addr", "address", "a") and verb == "add" and args and dev:
        if dev == "lo":
            return _up(dev)
        _wired([dev])
        value = _address(args[0], "", 32)
        return [
            NetSetting(line, "address", value, dev)
        ], f"static address {value} on {dev} ([network])"
    elif (
        obj in ("route", "r", "ro")
        and verb in ("add", "replace")
        and args[:1] == ["default"]
        and "via" in args[:-1]
    ):
        return _gateway(args[args.index("via") + 1], dev, line)
    elif obj in ("route", "r", "ro"):
        raise Unread(ROUTES)
    raise Unread(f"ip {obj} {verb}: a setting [network] has no key for")


def _time(name: str, rest: list[str], line: int) -> tuple[list[NetSetting], str]:
    given, plain = _options(name, rest)
    servers = (
        given.get("-p", []) + given.get("--peer", [])
        if name == "ntpd"
        else plain[-1:]
        if name == "rdate"
        else plain
    )
    if not servers:
        raise Unread(
            f"{name} names no server (it reads /etc/ntp.conf or serves time): write "
            '[time] servers = ["…"] by hand'
        )
    how = " (asked over SNTP, not rdate's time protocol)" if name == "rdate" else ""
    return (
        [NetSetting(line, "time", server) for server in servers],
        f"time servers {', '.join(servers)} ([time] servers){how}",
    )


def settle(steps: list[NetSetting]) -> tuple[tuple[Network, ...], Time, dict[int, str]]:
    """The script's interfaces and clock, and the lines that cannot be taken over (line →
    why, with what to write by hand)."""
    bad: dict[int, str] = {}

    def lines(key: str, iface: str) -> list[NetSetting]:
        return [s for s in steps if s.line not in bad and s.key == key and s.interface == iface]

    ifaces = list(dict.fromkeys(s.interface for s in steps if s.interface))
    for iface in ifaces:
        dhcp, static = lines("dhcp", iface), lines("address", iface)
        if len({s.value for s in static}) > 1:
            why = (
                f"{iface} gets two addresses (lines {_lines(static)}); pinit gives an "
                "interface one: " + BY_HAND.format(iface=iface)
            )
            bad.update({s.line: why for s in static})
        elif dhcp and static:
            why = (
                f"{iface} gets both DHCP (line {_lines(dhcp)}) and a static address (line "
                f"{_lines(static)}): " + BY_HAND.format(iface=iface)
            )
            bad.update({s.line: why for s in dhcp + static})
    statics = {s.interface: s.value for s in steps if s.key == "address" and s.line not in bad}
    up = [
        i
        for i in ifaces
        if any(
            s.key in ("dhcp", "address") and s.interface == i and s.line not in bad for s in steps
        )
    ]
    # A gateway without dev: the one interface with a static address, or the only one set up.
    alone = list(statics) if len(statics) == 1 else up if len(up) == 1 else [""]
    gateways: dict[str, str] = {}
    for step in (s for s in steps if s.key == "gateway"):
        iface = step.interface or alone[0]
        address = statics.get(iface, "")
        why = ""
        if not address:
            why = (
                f"a default gateway without a static address on {iface}"
                if iface
                else "a default gateway, but no one interface has a static address"
            )
            why += " (DHCP gives its own gateway): "
        elif gateways.get(iface, step.value) != step.value:
            why = f"a second default gateway for {iface}: "
        elif not inet.same_net(inet.pack(step.value), *inet.pack_prefix(address)):
            why = f"{step.value} is not in the network of {address}: "
        if why:
            bad[step.line] = why + BY_HAND.format(iface=iface or "eth0")
        else:
            gateways[iface] = step.value
    for step in (s for s in steps if s.key == "dns"):
        if not up:
            bad[step.line] = (
                "a name server, but no interface is configured: write [network] with dns by hand"
            )
        elif not _is_ip(step.value):
            bad[step.line] = f'"{step.value}" is not an IPv4 address: write [network] dns by hand'
    dns = list(dict.fromkeys(s.value for s in steps if s.key == "dns" and s.line not in bad))
    wifi = {s.interface: s for s in steps if s.key == "wifi" and s.line not in bad}
    up += [i for i in wifi if i not in up]  # joined but no address command: DHCP
    for step in steps:
        radio = step.interface.startswith(("wlan", "wl"))
        if radio and step.key in ("dhcp", "address") and step.interface not in wifi:
            bad[step.line] = (
                f"{step.interface} is a Wi-Fi interface and no wpa_supplicant line of the "
                "script says which network it joins: " + WIRELESS
            )
    up = [i for i in up if not i.startswith(("wlan", "wl")) or i in wifi]
    networks = tuple(
        Network(
            interface=i,
            address=statics.get(i, ""),
            gateway=gateways.get(i, ""),
            dns=tuple(dns) if i == up[0] else (),
            wifi=wifi[i].wifi if i in wifi else (),
            country=wifi[i].value if i in wifi else "",
        )
        for i in up
    )
    resolves = any(not n.address for n in networks) or bool(dns)
    for step in (s for s in steps if s.key == "time"):
        if not _is_ip(step.value) and not is_hostname(step.value):
            bad[step.line] = f'"{step.value}" is no server: write [time] servers by hand'
        elif not _is_ip(step.value) and not resolves:
            bad[step.line] = (
                f'"{step.value}" is a name and nothing resolves it (no DHCP, no '
                "name server): write [time] servers as addresses by hand"
            )
    servers = list(dict.fromkeys(s.value for s in steps if s.key == "time" and s.line not in bad))
    return networks, Time(servers=tuple(servers)) if servers else Time(), bad


def _is_ip(text: str) -> bool:
    try:
        inet.pack(text)
    except ValueError:
        return False
    return True


def _lines(steps: list[NetSetting]) -> str:
    return ", ".join(str(n) for n in dict.fromkeys(s.line for s in steps))
