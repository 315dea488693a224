"""nl80211 over generic netlink (what iw(8) and wpa_supplicant send): the family's number and
multicast groups, a scan, its results, a connection, keys and the port's authorisation; and
the events the kernel multicasts (scan done, connected, disconnected). Pure functions over
bytes, on top of init/rtnl.py's netlink framing; init/wifi.py sends them.
"""

from __future__ import annotations

import struct

from init.rtnl import HEADER, NLM_F_ACK, NLM_F_REQUEST, RtnlError, attr, attrs
from init.wpa import elements

NETLINK_GENERIC = 16
GENL_ID_CTRL = 16
NLM_F_DUMP = 0x300
GENL = struct.Struct("=BBxx")  # struct genlmsghdr: cmd, version
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_MCAST_GROUPS = 1, 2, 7
CTRL_ATTR_MCAST_GRP_NAME, CTRL_ATTR_MCAST_GRP_ID = 1, 2
NLA_F_NESTED = 0x8000

# Commands.
CMD_GET_INTERFACE = 5
CMD_SET_KEY, CMD_NEW_KEY = 10, 11
CMD_SET_STATION = 18
CMD_REQ_SET_REG = 27
CMD_GET_SCAN, CMD_TRIGGER_SCAN, CMD_NEW_SCAN_RESULTS, CMD_SCAN_ABORTED = 32, 33, 34, 35
CMD_CONNECT, CMD_ROAM, CMD_DISCONNECT = 46, 47, 48
CMD_SET_WIPHY_NETNS = 49
# Attributes.
ATTR_WIPHY, ATTR_IFINDEX, ATTR_IFNAME, ATTR_MAC = 1, 3, 4, 6
ATTR_KEY_DATA, ATTR_KEY_IDX, ATTR_KEY_CIPHER, ATTR_KEY_SEQ, ATTR_KEY_DEFAULT = 7, 8, 9, 10, 11
ATTR_REG_ALPHA2 = 33
ATTR_WIPHY_FREQ = 38
ATTR_IE = 42
ATTR_SCAN_SSIDS = 45
ATTR_BSS = 47
ATTR_SSID, ATTR_AUTH_TYPE, ATTR_REASON_CODE, ATTR_KEY_TYPE = 52, 53, 54, 55
ATTR_TIMED_OUT = 65
ATTR_STA_FLAGS2, ATTR_CONTROL_PORT = 67, 68
ATTR_PRIVACY, ATTR_DISCONNECTED_BY_AP, ATTR_STATUS_CODE = 70, 71, 72
ATTR_CIPHER_SUITES_PAIRWISE, ATTR_CIPHER_SUITE_GROUP = 73, 74
ATTR_WPA_VERSIONS, ATTR_AKM_SUITES = 75, 76
ATTR_PID = 82
ATTR_KEY_DEFAULT_TYPES = 110
ATTR_SCAN_FLAGS = 158
SCAN_FLAG_FLUSH = 1 << 1  # forget access points this scan did not see
BSS_BSSID, BSS_FREQUENCY, BSS_INFORMATION_ELEMENTS, BSS_SIGNAL_MBM = 1, 2, 6, 7
BSS_STATUS, BSS_BEACON_IES = 9, 11
STA_FLAG_AUTHORIZED = 1
KEYTYPE_GROUP, KEYTYPE_PAIRWISE = 0, 1
KEY_DEFAULT_TYPE_MULTICAST = 2
WPA_VERSION_2 = 2
AUTHTYPE_OPEN_SYSTEM = 0
IE_SSID = 0


class Nl80211Error(RtnlError):
    """A generic netlink message that does not fit its own lengths."""


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def u16(value: int) -> bytes:
    return struct.pack("=H", value)


def nested(kind: int, *inner: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(inner))


def message(family: int, cmd: int, seq: int, *attributes: bytes, dump: bool = False) -> bytes:
    body = GENL.pack(cmd, 1) + b"".join(attributes)
    flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if dump else 0)
    return HEADER.pack(HEADER.size + len(body), family, flags, seq, 0) + body


def get_family(seq: int, name: str = "nl80211") -> bytes:
    return message(
        GENL_ID_CTRL, CTRL_CMD_GETFAMILY, seq, attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
    )


def genl(body: bytes) -> tuple[int, dict[int, bytes]]:
    """(command, attributes) of a generic netlink message's body."""
    if len(body) < GENL.size:
        raise Nl80211Error(f"a {len(body)}-byte generic netlink message")
    cmd, _ = GENL.unpack_from(body)
    return cmd, attrs(body[GENL.size :])


def family(attributes: dict[int, bytes]) -> tuple[int, dict[str, int]]:
    """(family id, {group name: group id}) from CTRL_CMD_GETFAMILY's answer."""
    if len(attributes.get(CTRL_ATTR_FAMILY_ID, b"")) < 2:
        raise Nl80211Error("the family answer has no id")
    (ident,) = struct.unpack_from("=H", attributes[CTRL_ATTR_FAMILY_ID])
    groups = {}
    for one in attrs(attributes.get(CTRL_ATTR_MCAST_GROUPS, b"")).values():
        group = attrs(one)
        name = group.get(CTRL_ATTR_MCAST_GRP_NAME, b"").rstrip(b"\0").decode("ascii", "replace")
        if len(group.get(CTRL_ATTR_MCAST_GRP_ID, b"")) >= 4:
            (groups[name],) = struct.unpack_from("=I", group[CTRL_ATTR_MCAST_GRP_ID])
    return ident, groups


def ssid_list(ssids: list[bytes]) -> bytes:
    """NL80211_ATTR_SCAN_SSIDS: the wildcard (b"") probes for every visible network; a hidden
    one answers only a probe that names it."""
    return nested(ATTR_SCAN_SSIDS, *(attr(i + 1, s) for i, s in enumerate(ssids)))


class Bss:
    """One access point of a scan's results."""

    def __init__(self, bssid: bytes, freq: int, signal: int, ies: bytes) -> None:
        self.bssid = bssid
        self.freq = freq
        self.signal = signal  # mBm (1/100 dBm)
        self.ies = ies

    @property
    def ssid(self) -> bytes:
        for kind, body in elements(self.ies):
            if kind == IE_SSID:
                return body
        return b""

    def element(self, kind: int) -> bytes | None:
        for k, body in elements(self.ies):
            if k == kind:
                return body
        return None


def bss(attributes: dict[int, bytes]) -> Bss | None:
    """The access point of one NL80211_CMD_NEW_SCAN_RESULTS dump entry."""
    raw = attributes.get(ATTR_BSS)
    if raw is None:
        return None
    info = attrs(raw)
    bssid = info.get(BSS_BSSID, b"")
    if len(bssid) != 6 or len(info.get(BSS_FREQUENCY, b"")) < 4:
        raise Nl80211Error("a scan result without a BSSID or a frequency")
    (freq,) = struct.unpack_from("=I", info[BSS_FREQUENCY])
    signal = (
        struct.unpack_from("=i", info[BSS_SIGNAL_MBM])[0]
        if len(info.get(BSS_SIGNAL_MBM, b"")) >= 4
        else -10000
    )
    ies = info.get(BSS_INFORMATION_ELEMENTS) or info.get(BSS_BEACON_IES) or b""
    return Bss(bssid, freq, signal, ies)


def status(attributes: dict[int, bytes]) -> int:
    """NL80211_CMD_CONNECT's status code (0: connected); a timeout counts as 65536."""
    if ATTR_TIMED_OUT in attributes:
        return 0x10000
    raw = attributes.get(ATTR_STATUS_CODE, b"")
    return struct.unpack_from("=H", raw)[0] if len(raw) >= 2 else 1


def reason(attributes: dict[int, bytes]) -> int:
    raw = attributes.get(ATTR_REASON_CODE, b"")
    return struct.unpack_from("=H", raw)[0] if len(raw) >= 2 else 0


def ifindex(attributes: dict[int, bytes]) -> int:
    raw = attributes.get(ATTR_IFINDEX, b"")
    return struct.unpack_from("=I", raw)[0] if len(raw) >= 4 else 0


def connect(
    family: int,
    seq: int,
    index: int,
    ssid: bytes,
    bssid: bytes,
    freq: int,
    rsn: bytes | None,
    group: int,
    pairwise: int,
    akm: int,
) -> bytes:
    """NL80211_CMD_CONNECT: the kernel authenticates and associates (open system); with `rsn`
    (the station's RSN element) the port stays closed to all but EAPOL until SET_STATION
    authorises it, after the 4-way handshake."""
    parts = [
        attr(ATTR_IFINDEX, u32(index)),
        attr(ATTR_SSID, ssid),
        attr(ATTR_MAC, bssid),
        attr(ATTR_WIPHY_FREQ, u32(freq)),
        attr(ATTR_AUTH_TYPE, u32(AUTHTYPE_OPEN_SYSTEM)),
    ]
    if rsn is not None:
        parts += [
            attr(ATTR_PRIVACY, b""),
            attr(ATTR_IE, rsn),
            attr(ATTR_WPA_VERSIONS, u32(WPA_VERSION_2)),
            attr(ATTR_CIPHER_SUITES_PAIRWISE, u32(pairwise)),
            attr(ATTR_CIPHER_SUITE_GROUP, u32(group)),
            attr(ATTR_AKM_SUITES, u32(akm)),
            attr(ATTR_CONTROL_PORT, b""),
        ]
    return message(family, CMD_CONNECT, seq, *parts)


def new_key(
    family: int,
    seq: int,
    index: int,
    key: bytes,
    idx: int,
    cipher: int,
    peer: bytes | None,
    rsc: bytes = b"",
) -> bytes:
    """NL80211_CMD_NEW_KEY: the pairwise key of `peer`, or (peer None) a group key."""
    parts = [
        attr(ATTR_IFINDEX, u32(index)),
        attr(ATTR_KEY_DATA, key),
        attr(ATTR_KEY_IDX, bytes([idx])),
        attr(ATTR_KEY_CIPHER, u32(cipher)),
    ]
    if peer is not None:
        parts.append(attr(ATTR_MAC, peer))
    else:
        parts.append(attr(ATTR_KEY_TYPE, u32(KEYTYPE_GROUP)))
    if rsc:
        parts.append(attr(ATTR_KEY_SEQ, rsc))
    return message(family, CMD_NEW_KEY, seq, *parts)


def authorize(family: int, seq: int, index: int, peer: bytes) -> bytes:
    """NL80211_CMD_SET_STATION: open the port to the access point (struct
    nl80211_sta_flag_update: mask, set)."""
    flag = 1 << STA_FLAG_AUTHORIZED
    return message(
        family,
        CMD_SET_STATION,
        seq,
        attr(ATTR_IFINDEX, u32(index)),
        attr(ATTR_MAC, peer),
        attr(ATTR_STA_FLAGS2, struct.pack("=II", flag, flag)),
    )


def request_country(family: int, seq: int, country: str) -> bytes:
    return message(family, CMD_REQ_SET_REG, seq, attr(ATTR_REG_ALPHA2, country.encode() + b"\0"))


def trigger_scan(family: int, seq: int, index: int, ssids: list[bytes]) -> bytes:
    return message(
        family,
        CMD_TRIGGER_SCAN,
        seq,
        attr(ATTR_IFINDEX, u32(index)),
        ssid_list(ssids),
        attr(ATTR_SCAN_FLAGS, u32(SCAN_FLAG_FLUSH)),
    )


def get_scan(family: int, seq: int, index: int) -> bytes:
    return message(family, CMD_GET_SCAN, seq, attr(ATTR_IFINDEX, u32(index)), dump=True)


def disconnect(family: int, seq: int, index: int, why: int = 3) -> bytes:
    """NL80211_CMD_DISCONNECT (reason 3: the station is leaving)."""
    return message(
        family,
        CMD_DISCONNECT,
        seq,
        attr(ATTR_IFINDEX, u32(index)),
        attr(ATTR_REASON_CODE, u16(why)),
    )
