"""The wireless interface on the fake kernel: nl80211 played by a small simulation of the air
(scan results, association, events) and an access point that runs WPA2's 4-way handshake
with the same frames a real one sends. The real thing is tests/qemu/test_wifi.py; this one
covers the paths that are slow or awkward there: the list's order, a network that comes into
range later, roaming to a preferred one, a wrong key, the access point going away."""

from __future__ import annotations

import hashlib
import os
import struct

from init import dhcp, nl80211, rtnl, wpa
from init.config import Wifi
from tests.fakes import FakeKernel
from tests.unit.test_network import client, console, run, server_reply

WIFI_SYS = {
    "/sys/class/net/eth0/type": b"1\n",  # a card that is not the radio: passed over
    "/sys/class/net/eth0/ifindex": b"2\n",
    "/sys/class/net/eth0/address": b"52:54:00:12:34:56\n",
    "/sys/class/net/eth0/device/uevent": b"",
    "/sys/class/net/wlan0/type": b"1\n",
    "/sys/class/net/wlan0/ifindex": b"3\n",
    "/sys/class/net/wlan0/address": b"02:00:00:00:00:00\n",
    "/sys/class/net/wlan0/phy80211/index": b"0\n",
}
STA = bytes.fromhex("020000000000")
FAMILY = 0x22


def pmk(passphrase: str, ssid: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32)


def genl(kind: int, cmd: int, seq: int, *attributes: bytes) -> bytes:
    body = nl80211.GENL.pack(cmd, 1) + b"".join(attributes)
    return rtnl.HEADER.pack(rtnl.HEADER.size + len(body), kind, 0, seq, 0) + body


def ack(seq: int, err: int = 0) -> bytes:
    return rtnl.HEADER.pack(36, rtnl.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", -err) + bytes(16)


class Air:
    """nl80211 and the access points in range. `aps`: ssid → (bssid, passphrase or None)."""

    def __init__(self, fake: FakeKernel) -> None:
        self.fake = fake
        self.aps: dict[str, tuple[bytes, str | None, bool]] = {}  # ssid → bssid, key, hidden
        self.probed: list[bytes] = []
        self.keys: list[tuple[bytes, int]] = []  # (key, index) installed
        self.authorized = 0
        self.connected = ""  # the SSID the station is associated with
        self.anonce = b""
        self.replay = 0
        fake.genl_peer = self.request
        fake.eapol_peer = self.eapol

    def event(self, delay: float, cmd: int, *attributes: bytes) -> None:
        self.fake.genl_event(
            self.fake.now + delay,
            genl(
                FAMILY,
                cmd,
                0,
                nl80211.attr(nl80211.ATTR_IFINDEX, struct.pack("=I", 3)),
                *attributes,
            ),
        )

    def request(self, data: bytes) -> list[bytes]:
        _, kind, _, seq, _ = rtnl.HEADER.unpack_from(data)
        cmd, attributes = nl80211.genl(data[rtnl.HEADER.size :])
        if kind == nl80211.GENL_ID_CTRL:
            groups = nl80211.nested(
                nl80211.CTRL_ATTR_MCAST_GROUPS,
                *(
                    nl80211.nested(
                        i + 1,
                        nl80211.attr(nl80211.CTRL_ATTR_MCAST_GRP_NAME, name.encode() + b"\0"),
                        nl80211.attr(nl80211.CTRL_ATTR_MCAST_GRP_ID, struct.pack("=I", 40 + i)),
                    )
                    for i, name in enumerate(("scan", "mlme"))
                ),
            )
            family = nl80211.attr(nl80211.CTRL_ATTR_FAMILY_ID, struct.pack("=H", FAMILY))
            return [genl(nl80211.GENL_ID_CTRL, 1, seq, family, groups), ack(seq)]
        if cmd == nl80211.CMD_TRIGGER_SCAN:
            ssids = rtnl.attrs(attributes[nl80211.ATTR_SCAN_SSIDS])
            self.probed = list(ssids.values())
            self.event(0.5, nl80211.CMD_NEW_SCAN_RESULTS)
        elif cmd == nl80211.CMD_GET_SCAN:
            out = []
            for ssid, (bssid, _, hidden) in self.aps.items():
                if hidden and ssid.encode() not in self.probed:
                    continue
                rsn = wpa.rsn_ie(wpa.CIPHER_CCMP) if self.aps[ssid][1] else b""
                ies = b"\x00" + bytes([len(ssid)]) + ssid.encode() + rsn
                entry = nl80211.nested(
                    nl80211.ATTR_BSS,
                    nl80211.attr(nl80211.BSS_BSSID, bssid),
                    nl80211.attr(nl80211.BSS_FREQUENCY, struct.pack("=I", 2412)),
                    nl80211.attr(nl80211.BSS_SIGNAL_MBM, struct.pack("=i", -5000)),
                    nl80211.attr(nl80211.BSS_INFORMATION_ELEMENTS, ies),
                )
                out.append(genl(FAMILY, nl80211.CMD_NEW_SCAN_RESULTS, seq, entry))
            return [*out, rtnl.HEADER.pack(20, rtnl.NLMSG_DONE, 0, seq, 0) + bytes(4)]
        elif cmd == nl80211.CMD_CONNECT:
            ssid = attributes[nl80211.ATTR_SSID].decode()
            if ssid not in self.aps:
                self.event(1.0, nl80211.CMD_CONNECT, nl80211.attr(nl80211.ATTR_TIMED_OUT, b""))
                return [ack(seq)]
            self.connected = ssid
            self.event(0.1, nl80211.CMD_CONNECT, nl80211.attr(nl80211.ATTR_STATUS_CODE, b"\0\0"))
            if self.aps[ssid][1]:
                self.anonce = os.urandom(32)
                self.replay += 1
                msg1 = wpa.KeyFrame(
                    2 | wpa.PAIRWISE | wpa.ACK, struct.pack(">Q", self.replay), self.anonce
                )
                self.fake.eapol(self.fake.now + 0.05, msg1.pack())  # before the event is read
        elif cmd == nl80211.CMD_NEW_KEY:
            self.keys.append(
                (attributes[nl80211.ATTR_KEY_DATA], attributes[nl80211.ATTR_KEY_IDX][0])
            )
        elif cmd == nl80211.CMD_SET_STATION:
            self.authorized += 1
        elif cmd == nl80211.CMD_DISCONNECT:
            self.connected = ""
            self.event(0.01, nl80211.CMD_DISCONNECT)
        return [ack(seq)]

    def eapol(self, frame: bytes) -> list[tuple[float, bytes]]:
        parsed = wpa.parse(frame)
        assert parsed is not None
        bssid, passphrase, _ = self.aps[self.connected]
        assert passphrase is not None
        ptk = wpa.ptk(pmk(passphrase, self.connected), bssid, STA, self.anonce, parsed.nonce)
        if parsed.info & wpa.SECURE:
            return []  # message 4
        if not wpa.check_mic(ptk[:16], frame):  # a wrong key: the AP gives up after a while
            self.event(
                1.0, nl80211.CMD_DISCONNECT, nl80211.attr(nl80211.ATTR_DISCONNECTED_BY_AP, b"")
            )
            return []
        gtk = b"\x11" * 16
        kde = b"\xdd\x16" + wpa.GTK_KDE + b"\x01\x00" + gtk
        data = wpa.key_wrap(ptk[16:32], kde)  # 24 bytes: no padding needed
        self.replay += 1
        info = 2 | wpa.PAIRWISE | wpa.ACK | wpa.MIC | wpa.INSTALL | wpa.SECURE | wpa.ENCRYPTED
        msg3 = wpa.KeyFrame(info, struct.pack(">Q", self.replay), self.anonce, data, 16)
        return [(0.05, msg3.signed(ptk[:16]))]

    def gone(self, when: float, ssid: str) -> None:
        """The access point is switched off: deauthenticated, and out of the scans."""

        def off() -> None:
            self.aps.pop(ssid)
            if self.connected == ssid:
                self.connected = ""
                self.event(
                    0, nl80211.CMD_DISCONNECT, nl80211.attr(nl80211.ATTR_DISCONNECTED_BY_AP, b"")
                )

        self.fake._schedule(when, off)


def dhcp_server(packet: bytes) -> list[tuple[float, bytes]]:
    request = dhcp.udp_payload(packet[:9] + b"\x11" + packet[10:22] + b"\x00\x44" + packet[24:])
    assert request is not None
    kind = dhcp.parse_options(request[240:])[dhcp.MESSAGE_TYPE][0]
    reply = dhcp.OFFER if kind == dhcp.DISCOVER else dhcp.ACK
    return [(0.01, server_reply(request, reply, lease=600, address="192.168.77.100"))]


def radio(*wifi: Wifi) -> tuple[FakeKernel, Air, object]:
    fake = FakeKernel(files=WIFI_SYS)
    air = Air(fake)
    fake.dhcp_server = dhcp_server
    net = client(fake, interface="wireless", wifi=wifi, country="GB", retry_max=8.0)
    return fake, air, net


def wifi(ssid: str, passphrase: str | None = None, hidden: bool = False) -> Wifi:
    return Wifi(ssid, pmk(passphrase, ssid).hex() if passphrase else "", hidden)


def test_joins_the_first_listed_network_in_range_then_dhcp_then_follows_the_ap() -> None:
    fake, air, net = radio(wifi("home", "correct horse battery", hidden=True), wifi("cafe"))
    air.aps["cafe"] = (bytes.fromhex("020000000200"), None, False)
    net.start()  # type: ignore[attr-defined]
    run(fake, net, 3.0)
    lines = console(fake)
    assert lines[:5] == [
        "network: wlan0: regulatory country GB",
        "network: wlan0: scanning for home, cafe",
        "network: wlan0: joining cafe (02:00:00:00:02:00, 2412 MHz, -50 dBm, open)",
        "network: wlan0: joined cafe (open) in 0.10 s",
        "network: wlan0 up; asking for an address (DHCP)",
    ]
    assert lines[5].startswith("network: wlan0: lease 192.168.77.100/24")
    assert net.up  # type: ignore[attr-defined]
    # home comes into range (hidden: found because the scan names it); a minute later the
    # radio looks again, moves to it and does the 4-way handshake.
    air.aps["home"] = (bytes.fromhex("020000000100"), "correct horse battery", True)
    run(fake, net, 70.0)
    lines = console(fake)[6:]
    assert lines[0] == "network: wlan0: home is in range and preferred; leaving cafe"
    assert lines[1] == "network: wlan0: link down"
    assert lines[2].startswith("network: wlan0: joining home (02:00:00:00:01:00")
    assert lines[3].startswith("network: wlan0: joined home (WPA2) in ")
    assert lines[5].startswith("network: wlan0: lease 192.168.77.100/24")
    keys = [k for k, _ in air.keys]
    want = pmk("correct horse battery", "home")
    assert len(keys[0]) == 16 and keys[1] == b"\x11" * 16 and air.authorized == 1
    assert want.hex() not in " ".join(fake.transcript)  # the key itself is never logged
    # The access point goes away: the link goes down, the radio scans with a growing wait.
    air.gone(fake.now + 1, "home")
    air.aps.pop("cafe")
    run(fake, net, 100.0)
    lines = console(fake)[12:]
    assert lines == [
        "network: wlan0: left home (disconnected by the access point, reason 0); scanning",
        "network: wlan0: link down",
        "network: wlan0: none of home, cafe in range (seen: nothing); trying again in 2 s",
    ]  # said once: the same again is not repeated
    assert not net.up  # type: ignore[attr-defined]
    scans = [line for line in fake.transcript if f"genl {nl80211.CMD_TRIGGER_SCAN} " in line]
    times = [float(line.split()[0]) for line in scans[-5:]]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # doubling up to retry_max (plus the scan's own time): never a tight loop
    assert all(w <= gap < w + 1 for gap, w in zip(gaps, (2, 4, 8, 8), strict=True)), gaps


def test_a_wrong_key_is_said_per_attempt_and_retried_with_a_doubling_wait() -> None:
    fake, air, net = radio(wifi("home", "not the passphrase"))
    air.aps["home"] = (bytes.fromhex("020000000100"), "correct horse battery", False)
    net.start()  # type: ignore[attr-defined]
    run(fake, net, 40.0)
    refused = [line for line in console(fake) if "did not accept the key" in line]
    assert refused[:4] == [
        "network: wlan0: home did not accept the key: is the passphrase right?; trying again in "
        f"{wait} s"
        for wait in ("2", "4", "8", "8")
    ]
    assert not net.up and air.authorized == 0 and not air.keys  # type: ignore[attr-defined]


def test_no_nl80211_is_said_and_the_boot_goes_on() -> None:
    fake = FakeKernel(files=WIFI_SYS)
    fake.genl_peer = lambda data: [ack(struct.unpack_from("=I", data, 8)[0])]
    net = client(fake, interface="wireless", wifi=(wifi("home", "x" * 8),))
    net.start()  # type: ignore[attr-defined]
    run(fake, net, 5.0)
    assert console(fake) == ["network: wlan0: the kernel has no nl80211 (cfg80211 not loaded)"]


def test_an_interface_without_a_radio_is_not_taken_for_wireless() -> None:
    files = {k: v for k, v in WIFI_SYS.items() if "wlan0" not in k}
    fake = FakeKernel(files=files)
    Air(fake)
    net = client(fake, interface="wireless", wifi=(wifi("home"),))
    net.start()  # type: ignore[attr-defined]
    assert console(fake) == ["network: no wireless interface yet; the boot goes on without it"]


def test_a_listed_network_whose_security_pinit_cannot_join_is_named_as_such() -> None:
    fake, air, net = radio(wifi("home", "correct horse battery"))
    air.aps["home"] = (bytes.fromhex("020000000100"), None, False)  # open, but a key is listed
    air.aps["neighbours"] = (bytes.fromhex("020000000300"), None, False)
    net.start()  # type: ignore[attr-defined]
    run(fake, net, 3.0)
    assert console(fake)[2] == (
        "network: wlan0: none of home in range (seen: home (its security is not open or "
        "WPA2-PSK: not joined), neighbours); trying again in 2 s"
    )


def test_the_first_ethernet_is_never_the_radio() -> None:
    # A Pi Zero W: wlan0 is an ARPHRD_ETHER device with a driver, but a radio.
    files = {k: v for k, v in WIFI_SYS.items() if "eth0" not in k}
    files["/sys/class/net/wlan0/device/uevent"] = b""
    fake = FakeKernel(files=files)
    net = client(fake)
    net.start()  # type: ignore[attr-defined]
    assert console(fake) == ["network: no ethernet interface yet; the boot goes on without it"]
