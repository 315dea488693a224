"""A private LAN for a QEMU guest: a network namespace with a tap device, and a tiny DHCP server,
SNTP server and name server on the host end (run inside the namespace by `python lan.py`).
Nothing here touches the machine's real network: the namespace has only lo and the tap.

    with Lan(tmp_path, lease=20, time=2_000_000_000) as lan:
        qemu.run(plan, netns=lan.netns)       # plan with nic=lan.nic
        lan.log()                             # what the servers did, one line per packet
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

HOST = "10.99.0.1"  # the namespace's end of the tap: gateway, DNS and time server
GUEST = "10.99.0.50"  # the address the DHCP server gives
TAP = "pinit-tap0"
NAMES = ("time.test", "updates.test")  # what the name server knows: each is HOST
NTP_EPOCH = 2208988800


class Lan:
    def __init__(
        self,
        tmp: Path,
        lease: int = 3600,
        time: int = 0,
        sntp: bool = True,
        dhcp: bool = True,
        malformed: bool = False,
    ) -> None:
        self.netns = f"pinit-test-{uuid.uuid4().hex[:8]}"
        self.nic = f"tap,ifname={TAP},script=no,downscript=no"
        self._log = tmp / f"{self.netns}.log"
        self._args = [
            str(lease),
            str(time),
            "1" if sntp else "0",
            "1" if dhcp else "0",
            "1" if malformed else "0",
        ]
        self._server: subprocess.Popen[bytes] | None = None

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.netns, *args], check=True)

    def __enter__(self) -> Lan:
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        try:
            self._ip("link", "set", "lo", "up")
            self._ip("tuntap", "add", "dev", TAP, "mode", "tap")
            self._ip("addr", "add", f"{HOST}/24", "dev", TAP)
            self._ip("link", "set", TAP, "up")
            self._server = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, sys.executable, __file__, *self._args],
                stdout=self._log.open("wb"),
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def log(self) -> list[str]:
        return self._log.read_text().splitlines() if self._log.exists() else []

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


# --- the servers (inside the namespace) ---------------------------------------------------


def _options(data: bytes) -> dict[int, bytes]:
    found, i = {}, 0
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        found[data[i]] = data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return found


def _dhcp_reply(request: bytes, kind: int, lease: int) -> bytes:
    xid, chaddr = request[4:8], request[28:44]
    head = struct.pack(
        "!BBBB4sHH4s4s4s4s16s64s128s",
        2,
        1,
        6,
        0,
        xid,
        0,
        0x8000,
        request[12:16],
        socket.inet_aton(GUEST),
        socket.inet_aton(HOST),
        b"\0" * 4,
        chaddr,
        b"",
        b"",
    )
    host = socket.inet_aton(HOST)
    opts = [
        (53, bytes([kind])),
        (54, host),
        (51, struct.pack("!I", lease)),
        (58, struct.pack("!I", lease // 2)),
        (59, struct.pack("!I", lease * 7 // 8)),
        (1, socket.inet_aton("255.255.255.0")),
        (3, host),
        (6, host),
        (42, host),
    ]
    body = b"\x63\x82\x53\x63" + b"".join(bytes([c, len(v)]) + v for c, v in opts) + b"\xff"
    return head + body


def _malformed(mac: bytes) -> list[bytes]:
    """Ethernet frames to the guest that once stopped its DHCP client for good: an IPv4 header
    length past the packet's end, and a UDP datagram to port 68 longer than the packet."""
    src, dst = socket.inet_aton(HOST), socket.inet_aton(GUEST)
    ether = mac + b"\x02\x00\x00\x99\x00\x01" + b"\x08\x00"
    ihl = (
        struct.pack("!BBHHHBBH4s4s", 0x4F, 0, 40, 0, 0, 64, 17, 0, src, dst)
        + struct.pack("!HHHH", 67, 68, 20, 0)
        + b"\0" * 12
    )
    udp = (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 48, 0, 0, 64, 17, 0, src, dst)
        + struct.pack("!HHHH", 67, 68, 1500, 0)
        + b"\0" * 20
    )
    return [ether + ihl, ether + udp]


def _labels(raw: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(raw) and raw[i]:
        out.append(raw[i + 1 : i + 1 + raw[i]])
        i += 1 + raw[i]
    return out


def serve(lease: int, base: int, sntp: bool, answer_dhcp: bool, malformed: bool) -> None:
    say = lambda text: print(f"{time.monotonic():.1f} {text}", flush=True)  # noqa: E731
    dhcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, TAP.encode())
    dhcp.bind(("0.0.0.0", 67))
    socks = [dhcp]
    ntp = None
    if sntp:
        ntp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ntp.bind((HOST, 123))
        socks.append(ntp)
    names = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    names.bind((HOST, 53))
    socks.append(names)
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    raw.bind((TAP, 0))
    start = time.time()
    say("ready")
    while True:
        for sock in select.select(socks, [], [])[0]:
            data, peer = sock.recvfrom(2048)
            if sock is names:
                # One question, name labels from byte 12: each of NAMES is HOST, nothing else is.
                end = data.index(b"\0", 12) + 5
                name = b".".join(_labels(data[12 : end - 4])).decode()
                found = name in NAMES
                head = struct.pack(
                    "!HHHHHH",
                    struct.unpack("!H", data[:2])[0],
                    0x8180 if found else 0x8183,
                    1,
                    int(found),
                    0,
                    0,
                )
                answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(HOST)
                sock.sendto(head + data[12:end] + (answer if found else b""), peer)
                say(f"DNS {name} {'found' if found else 'NXDOMAIN'}")
                continue
            if sock is ntp:
                if len(data) < 48:
                    continue
                now = base + (time.time() - start) + NTP_EPOCH
                stamp = (int(now) << 32) | int((now % 1) * (1 << 32))
                reply = struct.pack(
                    "!BBbbII4sQQQQ",
                    0x24,
                    1,
                    6,
                    -20,
                    0,
                    0,
                    b"TEST",
                    stamp,
                    struct.unpack("!Q", data[40:48])[0],
                    stamp,
                    stamp,
                )
                sock.sendto(reply, peer)
                say(f"SNTP answered {peer[0]}")
                continue
            if not answer_dhcp:
                say("DHCP ignored")
                continue
            opts = _options(data[240:])
            kind = opts.get(53, b"\0")[0]
            hostname = opts.get(12, b"").decode()
            renewing = data[12:16] != b"\0\0\0\0"
            if kind == 1:
                sock.sendto(_dhcp_reply(data, 2, lease), ("255.255.255.255", 68))
                say(f"DHCP OFFER (hostname {hostname})")
            elif kind == 3:
                if malformed and renewing:  # what anyone on the LAN could send meanwhile
                    for frame in _malformed(data[28:34]) * 2:
                        raw.send(frame)
                    say("DHCP malformed frames sent")
                to = (GUEST, 68) if renewing else ("255.255.255.255", 68)
                sock.sendto(_dhcp_reply(data, 5, lease), to)
                say(f"DHCP ACK {'renew' if renewing else 'new'} (hostname {hostname})")
            elif kind == 7:
                say("DHCP RELEASE")


if __name__ == "__main__":
    if os.path.basename(sys.argv[0]) == "lan.py":
        serve(
            int(sys.argv[1]),
            int(sys.argv[2]),
            sys.argv[3] == "1",
            sys.argv[4] == "1",
            sys.argv[5] == "1",
        )
