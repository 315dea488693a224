"""Wi-Fi inside PID 1: scan, choose, join a WPA2-PSK (or open) network, keep it.

A `Radio` belongs to a wireless [network]'s `Interface` (init/network.py) and is part of the
supervisor's loop the same way: `fds()`, `due()`, `ready(fd)`, `tick(now)`. It speaks nl80211
over generic netlink (init/nl80211.py): a scan (the wildcard, and each hidden network by
name), the results, a connection to the access point of the first listed network in range
(the strongest, if it has several); with WPA2 the 4-way handshake over an EAPOL packet socket
(init/wpa.py), the keys installed through nl80211 and the port authorised. Only then does the
interface count as "link up", and DHCP (or the static address) follows as on a cable; the link
is down again when the kernel says the station was disconnected (the access point went away,
deauthenticated it, or its beacons stopped), and the radio scans again at once, then with a
doubling wait up to `retry_max`. Joined to a network that is not the first of the list, it
scans every ROAM_EVERY seconds and moves to a better one that is in range.

Nothing here raises into the loop: a failed request is logged and retried later, a malformed
frame or message is counted and dropped.

Console lines ("pinit: network: ..."):
    wlan0: scanning for home, cafe
    wlan0: joining home (02:00:00:00:01:00, 2412 MHz, -30 dBm, WPA2)
    wlan0: joined home (WPA2) in 0.31 s
    wlan0: none of home, cafe in range (seen: neighbours); scanning again in 4 s
    wlan0: home did not accept the key: is the passphrase right? trying again in 4 s
    wlan0: left home (disconnected by the access point, reason 3); scanning
    wlan0: home is in range and preferred; leaving cafe
"""

from __future__ import annotations

import posix

from init import nl80211, rtnl, wpa
from init.config import Network as NetworkConfig
from init.config import Wifi
from init.console import Log, errname
from init.errors import Dropped
from init.kernel import Kernel
from init.net import NETLINK_READ, ask, datagrams
from init.timeline import Timeline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _collections_abc import Callable

FIRST_WAIT = 2.0  # seconds before the second attempt; doubled up to retry_max
SCAN_TIMEOUT = 10.0  # no "scan done" event: read what results there are
CONNECT_TIMEOUT = 10.0  # no answer to a connect: give up on this attempt
HANDSHAKE_TIMEOUT = 5.0  # associated but no keys: the 4-way handshake failed
ROAM_EVERY = 60.0  # joined to a network that is not the first of the list: look again
STATUS_TIMEOUT = 0x10000


class Handshake:
    """The supplicant's side of one association's key handshakes (4-way, then group-key), as
    frames in and frames out. `receive` returns the reply to send (or None) and fills `keys`
    with what to install: ("pairwise" | "group", key, index, cipher, rsc)."""

    def __init__(
        self, pmk: bytes, own: bytes, peer: bytes, rsn: bytes, group: int, nonce: bytes
    ) -> None:
        self.pmk = pmk
        self.own = own
        self.peer = peer
        self.rsn = rsn  # our RSN element, as in the association request
        self.group = group  # the group cipher
        self.snonce = nonce
        self.anonce = b""
        self.ptk = b""
        self.replay = b""  # the last replay counter accepted
        self.sent_2 = False  # message 2 went out: a refusal now means a wrong key
        self.done = False  # the 4-way handshake completed
        self.keys: list[tuple[str, bytes, int, int, bytes]] = []

    def _fresh(self, frame: wpa.KeyFrame) -> bool:
        return not self.replay or frame.replay > self.replay

    def receive(self, raw: bytes) -> bytes | None:
        frame = wpa.parse(raw)
        if frame is None or not frame.info & wpa.ACK:
            return None
        info = frame.info
        version = info & wpa.VERSION_MASK
        if version != wpa.VERSION_AES:
            raise wpa.WpaError(f"key descriptor version {version} (only 2, HMAC-SHA1/AES)")
        if info & wpa.PAIRWISE and not info & wpa.MIC:  # message 1
            if not self._fresh(frame) and self.done:
                return None
            self.anonce = frame.nonce
            self.ptk = wpa.ptk(self.pmk, self.peer, self.own, self.anonce, self.snonce)
            self.sent_2 = True
            return wpa.KeyFrame(
                version | wpa.PAIRWISE | wpa.MIC,
                frame.replay,
                self.snonce,
                self.rsn,
                version=frame.version,
            ).signed(self.ptk[:16])
        if not self.ptk or not self._fresh(frame) or not wpa.check_mic(self.ptk[:16], raw):
            return None  # not ours to answer: dropped as a supplicant must
        self.replay = frame.replay
        if info & wpa.PAIRWISE:  # message 3
            if frame.nonce != self.anonce:
                return None
            data = self._unwrap(frame)
            keyid, gtk = wpa.gtk_of(data)
            self.keys = [
                ("pairwise", self.ptk[32:48], 0, wpa.CIPHER_CCMP, b""),
                ("group", gtk, keyid, self.group, frame.rsc[:6]),
            ]
            self.done = True
            return wpa.KeyFrame(
                version | wpa.PAIRWISE | wpa.MIC | wpa.SECURE, frame.replay, version=frame.version
            ).signed(self.ptk[:16])
        # the group-key handshake's message 1: a new group key
        keyid, gtk = wpa.gtk_of(self._unwrap(frame))
        self.keys = [("group", gtk, keyid, self.group, frame.rsc[:6])]
        return wpa.KeyFrame(
            version | wpa.MIC | wpa.SECURE, frame.replay, version=frame.version
        ).signed(self.ptk[:16])

    def _unwrap(self, frame: wpa.KeyFrame) -> bytes:
        if not frame.info & wpa.ENCRYPTED:
            raise wpa.WpaError("a group key sent without encryption")
        return wpa.key_unwrap(self.ptk[16:32], frame.data)


def choose(
    networks: tuple[Wifi, ...], found: list[nl80211.Bss]
) -> tuple[int, nl80211.Bss, wpa.Rsn | None] | None:
    """The first listed network in range that we can join, at its strongest access point:
    (its index in the list, the access point, its RSN offer or None for an open network)."""
    for index, net in enumerate(networks):
        best: tuple[nl80211.Bss, wpa.Rsn | None] | None = None
        for bss in found:
            if bss.ssid != net.ssid.encode():
                continue
            body = bss.element(wpa.RSN_IE)
            rsn = None
            if body is not None:
                try:
                    rsn = wpa.parse_rsn(body)
                except wpa.WpaError:
                    continue
            if net.psk:
                if (
                    rsn is None
                    or wpa.CIPHER_CCMP not in rsn.pairwise
                    or wpa.AKM_PSK not in rsn.akms
                    or rsn.group not in (wpa.CIPHER_CCMP, wpa.CIPHER_TKIP)
                ):
                    continue
            elif rsn is not None:
                continue  # an open network's entry does not join a protected one
            if best is None or bss.signal > best[0].signal:
                best = (bss, rsn)
        if best is not None:
            return index, best[0], best[1]
    return None


class Radio:
    def __init__(
        self,
        kernel: Kernel,
        net: NetworkConfig,
        log: Log,
        timeline: Timeline,
        link: Callable[[bool], None],
    ) -> None:
        self._kernel = kernel
        self._net = net
        self._log = log
        self._timeline = timeline
        self._link = link  # the port is open (True) or closed again (False)
        self.name = ""
        self.index = 0
        self.mac = b""
        self._family = 0
        self._events = -1  # nl80211's scan and mlme multicast groups
        self._eapol = -1
        self._seq = 0
        self._state = "off"  # off | scanning | waiting | connecting | handshake | joined
        self._timer: float | None = None
        self._wait = FIRST_WAIT
        self._started = 0.0  # the first scan of this search: the timeline's step
        self._asked = 0.0  # the connect request: "joined ... in 0.31 s"
        self._joined: tuple[int, nl80211.Bss] | None = None  # (list index, access point)
        self._target: tuple[int, nl80211.Bss, wpa.Rsn | None] | None = None
        self._handshake: Handshake | None = None
        self._roaming = False  # the scan running is a look for a better network
        self._said = ""  # the last "none in range" line: said again only when it changes
        self._dropped = Dropped("network: Wi-Fi", log)

    # --- set-up ---------------------------------------------------------------------------

    def start(self, name: str, index: int, mac: bytes) -> None:
        """Find nl80211, listen to its events, set the country, scan. Never raises."""
        self.name, self.index, self.mac = name, index, mac
        self._dropped.what = f"network: {name}: Wi-Fi"
        answer = self._request(nl80211.get_family(self._next()), "find nl80211")
        if not answer:
            if answer is not None:
                self._log(f"network: {name}: the kernel has no nl80211 (cfg80211 not loaded)")
            return
        try:
            self._family, groups = nl80211.family(answer[0])
            self._events = self._kernel.netlink_socket(nl80211.NETLINK_GENERIC)
            for group in ("scan", "mlme"):
                if group in groups:
                    self._kernel.netlink_join(self._events, groups[group])
            self._eapol = self._kernel.packet_socket(index, wpa.ETH_P_PAE)
        except (OSError, rtnl.RtnlError) as exc:
            self._log(f"network: {name}: cannot listen to the radio: {_why(exc)}")
            return
        if self._net.country:
            if (
                self._request(
                    nl80211.request_country(self._family, self._next(), self._net.country),
                    f"set the country {self._net.country}",
                )
                is not None
            ):
                self._log(f"network: {name}: regulatory country {self._net.country}")
        self._started = self._kernel.clock()
        self._log(f"network: {name}: scanning for {', '.join(w.ssid for w in self._net.wifi)}")
        self._scan()

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _request(self, message: bytes, what: str) -> list[dict[int, bytes]] | None:
        """One nl80211 request and its answer (a dump's every entry); None if it failed."""
        try:
            answer = ask(self._kernel, nl80211.NETLINK_GENERIC, message)
            return [nl80211.genl(body)[1] for _, body in answer]
        except OSError as exc:
            self._log(f"network: {self.name}: cannot {what}: {errname(exc)}")
        except rtnl.RtnlError as exc:
            self._log(f"network: {self.name}: cannot {what}: the kernel's answer: {exc}")
        return None

    # --- the loop's side ------------------------------------------------------------------

    def fds(self) -> list[int]:
        return [fd for fd in (self._events, self._eapol) if fd >= 0]

    def due(self) -> float | None:
        return self._timer

    def ready(self, fd: int) -> None:
        if fd == self._events:
            self._read_events()
        elif fd == self._eapol:
            self._read_eapol()

    def tick(self, now: float) -> None:
        if self._timer is None or now < self._timer:
            return
        self._timer = None
        state = self._state
        if state == "scanning":
            self._results()
        elif state == "waiting":
            self._scan()
        elif state == "joined" and self._roaming:
            self._results()  # the roaming scan said nothing: read what it found
        elif state == "joined":
            self._roaming = True
            self._scan()
        elif state == "connecting":
            self._failed("no answer from the access point")
        elif state == "handshake":
            self._failed(self._key_failure())

    # --- scanning and choosing ------------------------------------------------------------

    def _scan(self) -> None:
        if self._state != "joined":
            self._state = "scanning"
        ssids = [b""] + [w.ssid.encode() for w in self._net.wifi if w.hidden]
        answer = self._request(
            nl80211.trigger_scan(self._family, self._next(), self.index, ssids), "scan"
        )
        if answer is None:
            if self._state == "joined":
                self._roaming = False
                self._timer = self._kernel.clock() + ROAM_EVERY
            else:
                self._again()
            return
        self._timer = self._kernel.clock() + SCAN_TIMEOUT  # read the results when done, or then

    def _results(self) -> None:
        answer = self._request(
            nl80211.get_scan(self._family, self._next(), self.index), "read the scan's results"
        )
        found = []
        for entry in answer or ():
            try:
                bss = nl80211.bss(entry)
            except rtnl.RtnlError as exc:
                self._dropped(exc)
                continue
            if bss is not None:
                found.append(bss)
        pick = choose(self._net.wifi, found)
        if self._state == "joined":
            self._roam(pick)
            return
        if pick is None:
            names = ", ".join(w.ssid for w in self._net.wifi)
            listed = {w.ssid for w in self._net.wifi}
            seen = sorted(
                name
                + (" (its security is not open or WPA2-PSK: not joined)" if name in listed else "")
                for name in {b.ssid.decode("utf-8", "replace") for b in found if b.ssid}
            )
            line = f"none of {names} in range (seen: {', '.join(seen) or 'nothing'})"
            self._again(line if line != self._said else "", quiet=line == self._said)
            self._said = line
            return
        self._said = ""
        self._connect(*pick)

    def _roam(self, pick: tuple[int, nl80211.Bss, wpa.Rsn | None] | None) -> None:
        self._roaming = False
        joined = self._joined
        if pick is not None and joined is not None and pick[0] < joined[0]:
            better, current = self._net.wifi[pick[0]].ssid, self._net.wifi[joined[0]].ssid
            self._log(
                f"network: {self.name}: {better} is in range and preferred; leaving {current}"
            )
            self._state = "connecting"  # the disconnect event must not look like a loss
            self._request(nl80211.disconnect(self._family, self._next(), self.index), "disconnect")
            self._closed()
            self._connect(*pick)
            return
        self._timer = self._kernel.clock() + ROAM_EVERY if self._roamable() else None

    def _roamable(self) -> bool:
        return self._joined is not None and self._joined[0] > 0

    def _connect(self, index: int, bss: nl80211.Bss, rsn: wpa.Rsn | None) -> None:
        net = self._net.wifi[index]
        kind = "WPA2" if rsn is not None else "open"
        self._log(
            f"network: {self.name}: joining {net.ssid} ({bss.bssid.hex(':')}, {bss.freq} MHz, "
            f"{bss.signal / 100:g} dBm, {kind})"
        )
        self._target = (index, bss, rsn)
        self._asked = self._kernel.clock()
        own = wpa.rsn_ie(rsn.group) if rsn is not None else None
        self._handshake = None
        if rsn is not None and own is not None:
            self._handshake = Handshake(
                bytes.fromhex(net.psk), self.mac, bss.bssid, own, rsn.group, posix.urandom(32)
            )
        self._state = "connecting"
        self._timer = self._kernel.clock() + CONNECT_TIMEOUT
        answer = self._request(
            nl80211.connect(
                self._family,
                self._next(),
                self.index,
                net.ssid.encode(),
                bss.bssid,
                bss.freq,
                own,
                rsn.group if rsn is not None else 0,
                wpa.CIPHER_CCMP,
                wpa.AKM_PSK,
            ),
            f"join {net.ssid}",
        )
        if answer is None:
            self._state = "waiting"
            self._again()

    # --- events ---------------------------------------------------------------------------

    def _read_events(self) -> None:
        try:
            for data in datagrams(self._kernel, self._events):
                try:
                    events = [nl80211.genl(body) for _, _, body in rtnl.messages(data)]
                except rtnl.RtnlError as exc:
                    self._dropped(exc)
                    continue
                for cmd, attributes in events:
                    if nl80211.ifindex(attributes) == self.index:
                        self._event(cmd, attributes)
        except OSError as exc:
            self._log(f"network: {self.name}: radio events: {errname(exc)}")

    def _event(self, cmd: int, attributes: dict[int, bytes]) -> None:
        state = self._state
        if cmd == nl80211.CMD_NEW_SCAN_RESULTS and (state == "scanning" or self._roaming):
            self._timer = None
            self._results()
        elif cmd == nl80211.CMD_SCAN_ABORTED and state == "scanning":
            self._again()
        elif cmd == nl80211.CMD_CONNECT and state == "connecting":
            status = nl80211.status(attributes)
            if status:
                why = "no answer" if status == STATUS_TIMEOUT else f"status {status}"
                self._failed(f"the access point refused to associate ({why})")
            elif self._handshake is not None:
                self._state = "handshake"
                self._timer = self._kernel.clock() + HANDSHAKE_TIMEOUT
            else:
                self._opened()
        elif cmd == nl80211.CMD_DISCONNECT and state in ("handshake", "joined"):
            if state == "handshake":
                self._failed(self._key_failure())
                return
            by_ap = nl80211.ATTR_DISCONNECTED_BY_AP in attributes
            code = nl80211.reason(attributes)
            why = (
                f"disconnected by the access point, reason {code}"
                if by_ap
                else (f"lost it, reason {code}")
            )
            ssid = self._net.wifi[self._joined[0]].ssid if self._joined else "the network"
            self._log(f"network: {self.name}: left {ssid} ({why}); scanning")
            self._state = "scanning"
            self._closed()
            self._wait = FIRST_WAIT
            self._started = self._kernel.clock()
            self._scan()

    def _key_failure(self) -> str:
        hs = self._handshake
        ssid = self._net.wifi[self._target[0]].ssid if self._target else "the network"
        if hs is not None and hs.sent_2 and not hs.done:
            return f"{ssid} did not accept the key: is the passphrase right?"
        return f"{ssid}: no key handshake from the access point"

    # --- keys -----------------------------------------------------------------------------

    def _read_eapol(self) -> None:
        while True:
            try:
                frame = self._kernel.read(self._eapol, NETLINK_READ)
            except BlockingIOError:
                return
            except OSError as exc:
                self._log(f"network: {self.name}: EAPOL socket: {errname(exc)}")
                return
            hs = self._handshake
            # Message 1 may come before the connect event is read.
            if hs is None or self._state not in ("connecting", "handshake", "joined"):
                continue
            try:
                reply = hs.receive(frame)
            except wpa.WpaError as exc:
                self._dropped(exc)
                continue
            if reply is None:
                continue
            try:
                self._kernel.packet_send(self._eapol, self.index, reply, wpa.ETH_P_PAE, hs.peer)
            except OSError as exc:
                self._log(f"network: {self.name}: cannot send an EAPOL frame: {errname(exc)}")
                continue
            keys, hs.keys = hs.keys, []
            if keys and not self._install(hs.peer, keys):
                self._failed("the kernel refused the keys")
                return
            if keys and self._state in ("connecting", "handshake"):
                # A FullMAC driver (the Pi's brcmfmac) keeps the port itself and may refuse
                # this (said on the console); DHCP then tells whether the link works.
                self._request(
                    nl80211.authorize(self._family, self._next(), self.index, hs.peer),
                    "open the port",
                )
                self._opened()

    def _install(self, peer: bytes, keys: list[tuple[str, bytes, int, int, bytes]]) -> bool:
        for kind, key, idx, cipher, rsc in keys:
            message = nl80211.new_key(
                self._family,
                self._next(),
                self.index,
                key,
                idx,
                cipher,
                peer if kind == "pairwise" else None,
                rsc,
            )
            if self._request(message, f"install the {kind} key") is None:
                return False
        return True

    # --- outcomes -------------------------------------------------------------------------

    def _opened(self) -> None:
        assert self._target is not None
        index, bss, rsn = self._target
        self._state = "joined"
        self._joined = (index, bss)
        self._wait = FIRST_WAIT
        now = self._kernel.clock()
        kind = "WPA2" if rsn is not None else "open"
        self._log(
            f"network: {self.name}: joined {self._net.wifi[index].ssid} ({kind}) in "
            f"{now - self._asked:.2f} s"
        )
        step = self._timeline.step("network", f"wifi {self.name}")
        step.start, step.end = self._started, now
        self._timer = now + ROAM_EVERY if self._roamable() else None
        self._link(True)

    def _closed(self) -> None:
        if self._joined is not None:
            self._joined = None
            self._link(False)

    def _failed(self, why: str) -> None:
        if self._state in ("handshake", "connecting"):
            self._request(nl80211.disconnect(self._family, self._next(), self.index), "disconnect")
        self._closed()
        self._handshake = None
        self._state = "waiting"
        self._again(why)

    def _again(self, why: str = "", quiet: bool = False) -> None:
        """The next scan after a doubling wait (2 s up to retry_max)."""
        wait = self._wait
        self._wait = min(self._wait * 2, max(self._net.retry_max, FIRST_WAIT))
        self._state = "waiting"
        self._timer = self._kernel.clock() + wait
        if not quiet:
            self._log(
                f"network: {self.name}: {why or 'the scan failed'}; trying again in {wait:g} s"
            )

    def stop(self) -> None:
        """Leave the network (the access point hears it at once, not at a timeout)."""
        if self._state in ("joined", "handshake", "connecting"):
            self._request(nl80211.disconnect(self._family, self._next(), self.index), "leave")
            self._state = "off"


def _why(exc: Exception) -> str:
    return errname(exc) if isinstance(exc, OSError) else str(exc)
