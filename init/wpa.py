"""WPA2-Personal's keys and EAPOL-Key frames (IEEE 802.11-2016 12.7): the supplicant's side of
the 4-way and group-key handshakes, as pure functions over bytes. init/wifi.py sends and
receives the frames; the pairwise and group keys it gets here go to the kernel through nl80211.

The PMK is the PSK: PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 32), derived by the builder
(builder/config.py) so the passphrase is not on the card. The pairwise transient key (KCK | KEK | TK) is PRF-384 of the
PMK over both MAC addresses and nonces; frames carry an HMAC-SHA1-128 MIC under the KCK, and
the group key travels AES-key-wrapped (RFC 3394) under the KEK. Key descriptor version 2
(HMAC-SHA1 / AES), the one CCMP uses with AKM 00-0F-AC:2 (PSK).

A frame that does not parse raises WpaError; one whose MIC is wrong is refused by `check_mic`.
"""

from __future__ import annotations

import struct
from _sha1 import sha1

from init.errors import Malformed

ETH_P_PAE = 0x888E
EAPOL_KEY = 3
DESC_RSN = 2
# Key information bits.
VERSION_MASK = 0x0007
VERSION_AES = 2  # HMAC-SHA1-128 MIC, AES key wrap
PAIRWISE = 0x0008
INSTALL = 0x0040
ACK = 0x0080
MIC = 0x0100
SECURE = 0x0200
ERROR = 0x0400
REQUEST = 0x0800
ENCRYPTED = 0x1000

# Suites (OUI 00-0F-AC), as nl80211 numbers them: OUI << 8 | type.
CIPHER_TKIP = 0x000FAC02
CIPHER_CCMP = 0x000FAC04
AKM_PSK = 0x000FAC02
RSN_IE = 48
GTK_KDE = b"\x00\x0f\xac\x01"

EAPOL = struct.Struct(">BBH")  # version, type, body length
KEY = struct.Struct(">BHH8s32s16s8s8x16sH")  # the key descriptor up to its data


class WpaError(Malformed):
    """An EAPOL-Key frame or key data that does not fit its own lengths."""


# --- the keys -------------------------------------------------------------------------------


def hmac_sha1(key: bytes, message: bytes) -> bytes:
    if len(key) > 64:
        key = sha1(key).digest()
    key = key.ljust(64, b"\0")
    inner = sha1(bytes(b ^ 0x36 for b in key) + message).digest()
    return sha1(bytes(b ^ 0x5C for b in key) + inner).digest()


def prf(key: bytes, label: bytes, data: bytes, length: int) -> bytes:
    """IEEE 802.11's PRF-n (12.7.1.2) with HMAC-SHA1."""
    out = b""
    i = 0
    while len(out) < length:
        out += hmac_sha1(key, label + b"\0" + data + bytes([i]))
        i += 1
    return out[:length]


def ptk(pmk: bytes, aa: bytes, spa: bytes, anonce: bytes, snonce: bytes) -> bytes:
    """KCK (16) | KEK (16) | TK (16) for CCMP."""
    data = min(aa, spa) + max(aa, spa) + min(anonce, snonce) + max(anonce, snonce)
    return prf(pmk, b"Pairwise key expansion", data, 48)


def mic(kck: bytes, frame: bytes) -> bytes:
    return hmac_sha1(kck, frame)[:16]


# --- AES (FIPS 197), only as far as RFC 3394's key wrap needs it ---------------------------


def _tables() -> tuple[bytes, bytes]:
    sbox = bytearray(256)
    p = q = 1
    while True:  # p walks the multiplicative group by 3, q by its inverse
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ _rotl(q, 1) ^ _rotl(q, 2) ^ _rotl(q, 3) ^ _rotl(q, 4)
        sbox[p] = x ^ 0x63
        if p == 1:
            break
    sbox[0] = 0x63
    inverse = bytearray(256)
    for i, v in enumerate(sbox):
        inverse[v] = i
    return bytes(sbox), bytes(inverse)


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (8 - n))) & 0xFF


_SBOX, _INV = _tables()


def _xt(a: int) -> int:
    return ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1


def _mul(a: int, b: int) -> int:
    out = 0
    while b:
        if b & 1:
            out ^= a
        a = _xt(a)
        b >>= 1
    return out


def _expand(key: bytes) -> list[bytes]:
    nk = len(key) // 4
    if len(key) not in (16, 24, 32):
        raise WpaError(f"an AES key of {len(key)} bytes")
    rounds = nk + 6
    words = [key[4 * i : 4 * i + 4] for i in range(nk)]
    rcon = 1
    for i in range(nk, 4 * (rounds + 1)):
        t = words[i - 1]
        if i % nk == 0:
            t = bytes([_SBOX[t[1]] ^ rcon, _SBOX[t[2]], _SBOX[t[3]], _SBOX[t[0]]])
            rcon = _xt(rcon)
        elif nk > 6 and i % nk == 4:
            t = bytes(_SBOX[b] for b in t)
        words.append(bytes(a ^ b for a, b in zip(words[i - nk], t, strict=True)))
    return [b"".join(words[4 * r : 4 * r + 4]) for r in range(rounds + 1)]


def _add(state: bytes, key: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(state, key, strict=True))


def _mix(s: bytes, m: tuple[int, int, int, int]) -> bytes:
    """MixColumns (m = 2, 3, 1, 1) or its inverse (14, 11, 13, 9), column by column."""
    out = b""
    for c in range(4):
        a = s[4 * c : 4 * c + 4]
        out += bytes(
            _mul(a[i], m[0])
            ^ _mul(a[(i + 1) % 4], m[1])
            ^ _mul(a[(i + 2) % 4], m[2])
            ^ _mul(a[(i + 3) % 4], m[3])
            for i in range(4)
        )
    return out


def aes_encrypt(key: bytes, block: bytes) -> bytes:
    keys = _expand(key)
    s = _add(block, keys[0])
    for r in range(1, len(keys)):
        s = bytes(_SBOX[b] for b in s)
        s = bytes(s[(i + 4 * (i % 4)) % 16] for i in range(16))  # ShiftRows
        if r != len(keys) - 1:
            s = _mix(s, (2, 3, 1, 1))
        s = _add(s, keys[r])
    return s


def aes_decrypt(key: bytes, block: bytes) -> bytes:
    keys = _expand(key)
    s = block
    for r in range(len(keys) - 1, 0, -1):
        s = _add(s, keys[r])
        if r != len(keys) - 1:
            s = _mix(s, (14, 11, 13, 9))
        s = bytes(s[(i - 4 * (i % 4)) % 16] for i in range(16))  # InvShiftRows
        s = bytes(_INV[b] for b in s)
    return _add(s, keys[0])


IV = b"\xa6" * 8


def key_wrap(kek: bytes, data: bytes) -> bytes:
    """RFC 3394 section 2.2.1 (what an access point does; the tests play one)."""
    n = len(data) // 8
    a, r = IV, [data[8 * i : 8 * i + 8] for i in range(n)]
    for j in range(6):
        for i in range(n):
            b = aes_encrypt(kek, a + r[i])
            a = (int.from_bytes(b[:8], "big") ^ (n * j + i + 1)).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def key_unwrap(kek: bytes, data: bytes) -> bytes:
    """RFC 3394 section 2.2.2; raises WpaError when the integrity check fails."""
    if len(data) % 8 or len(data) < 24:
        raise WpaError(f"{len(data)} bytes of wrapped key data (a multiple of 8, at least 24)")
    n = len(data) // 8 - 1
    a, r = data[:8], [data[8 * i + 8 : 8 * i + 16] for i in range(n)]
    for j in range(5, -1, -1):
        for i in range(n - 1, -1, -1):
            t = (int.from_bytes(a, "big") ^ (n * j + i + 1)).to_bytes(8, "big")
            b = aes_decrypt(kek, t + r[i])
            a, r[i] = b[:8], b[8:]
    if a != IV:
        raise WpaError("the key data does not unwrap under this key (integrity check)")
    return b"".join(r)


# --- frames ---------------------------------------------------------------------------------


class KeyFrame:
    """An EAPOL-Key frame (RSN descriptor)."""

    def __init__(
        self,
        info: int,
        replay: bytes,
        nonce: bytes = b"\0" * 32,
        data: bytes = b"",
        key_length: int = 0,
        rsc: bytes = b"\0" * 8,
        mic: bytes = b"\0" * 16,
        version: int = 2,
    ) -> None:
        self.info = info
        self.replay = replay
        self.nonce = nonce
        self.data = data
        self.key_length = key_length
        self.rsc = rsc
        self.mic = mic
        self.version = version

    def pack(self, mic: bytes | None = None) -> bytes:
        body = KEY.pack(
            DESC_RSN,
            self.info,
            self.key_length,
            self.replay,
            self.nonce,
            b"\0" * 16,
            self.rsc,
            self.mic if mic is None else mic,
            len(self.data),
        )
        body += self.data
        return EAPOL.pack(self.version, EAPOL_KEY, len(body)) + body

    def signed(self, kck: bytes) -> bytes:
        """The frame with its MIC (computed over the frame with a zero MIC)."""
        self.mic = mic(kck, self.pack(b"\0" * 16))
        return self.pack()


def parse(frame: bytes) -> KeyFrame | None:
    """An EAPOL-Key frame of the RSN descriptor, or None for other EAPOL (EAP, start, logoff)."""
    if len(frame) < EAPOL.size:
        raise WpaError(f"a {len(frame)}-byte EAPOL frame")
    version, kind, length = EAPOL.unpack_from(frame)
    if kind != EAPOL_KEY:
        return None
    if length > len(frame) - EAPOL.size or length < KEY.size:
        raise WpaError(f"an EAPOL-Key body of {length} bytes in a {len(frame)}-byte frame")
    desc, info, key_length, replay, nonce, _, rsc, mac, data_len = KEY.unpack_from(
        frame, EAPOL.size
    )
    if desc != DESC_RSN:
        return None  # WPA1's descriptor 254: not offered
    if data_len > length - KEY.size:
        raise WpaError(f"{data_len} bytes of key data in a {length}-byte EAPOL-Key body")
    data = frame[EAPOL.size + KEY.size : EAPOL.size + KEY.size + data_len]
    return KeyFrame(info, replay, nonce, data, key_length, rsc, mac, version)


def check_mic(kck: bytes, frame: bytes) -> bool:
    """Whether the frame's MIC is right (compared over the frame as sent, MIC zeroed)."""
    at = EAPOL.size + KEY.size - 18
    if len(frame) < at + 16:
        return False
    zeroed = frame[:at] + b"\0" * 16 + frame[at + 16 :]
    want = mic(kck, zeroed)
    got = frame[at : at + 16]
    diff = 0
    for a, b in zip(want, got, strict=True):
        diff |= a ^ b
    return diff == 0


def rsn_ie(group: int, pairwise: int = CIPHER_CCMP, akm: int = AKM_PSK) -> bytes:
    """The RSN element a station sends: one group, one pairwise cipher, one AKM."""
    body = (
        struct.pack("<H", 1)
        + group.to_bytes(4, "big")
        + struct.pack("<H", 1)
        + pairwise.to_bytes(4, "big")
        + struct.pack("<H", 1)
        + akm.to_bytes(4, "big")
        + b"\0\0"
    )
    return bytes([RSN_IE, len(body)]) + body


class Rsn:
    """What an access point's RSN element offers."""

    def __init__(self, group: int, pairwise: tuple[int, ...], akms: tuple[int, ...]) -> None:
        self.group = group
        self.pairwise = pairwise
        self.akms = akms


def parse_rsn(body: bytes) -> Rsn:
    """The body of an RSN element (after its id and length)."""
    try:
        (version,) = struct.unpack_from("<H", body)
        if version != 1:
            raise WpaError(f"RSN version {version}")
        group = int.from_bytes(body[2:6], "big") if len(body) >= 6 else CIPHER_CCMP
        at = 6
        suites: list[tuple[int, ...]] = []
        for _ in range(2):
            if at + 2 > len(body):
                suites.append((CIPHER_CCMP,) if not suites else (AKM_PSK,))
                continue
            (count,) = struct.unpack_from("<H", body, at)
            at += 2
            if at + 4 * count > len(body):
                raise WpaError(f"{count} suites in a {len(body)}-byte RSN element")
            suites.append(
                tuple(
                    int.from_bytes(body[at + 4 * i : at + 4 * i + 4], "big") for i in range(count)
                )
            )
            at += 4 * count
    except struct.error as exc:
        raise WpaError(f"a {len(body)}-byte RSN element") from exc
    return Rsn(group, suites[0], suites[1])


def elements(data: bytes) -> list[tuple[int, bytes]]:
    """(id, body) of each information element; a truncated last one is left out (scan results
    of some drivers end that way)."""
    out = []
    at = 0
    while at + 2 <= len(data):
        kind, length = data[at], data[at + 1]
        if at + 2 + length > len(data):
            break
        out.append((kind, data[at + 2 : at + 2 + length]))
        at += 2 + length
    return out


def gtk_of(key_data: bytes) -> tuple[int, bytes]:
    """(key id, GTK) from the GTK KDE of unwrapped key data."""
    for kind, body in elements(key_data):
        if kind == 0xDD and body[:4] == GTK_KDE and len(body) >= 6 + 5:
            return body[4] & 0x03, body[6:]
        if kind == 0xDD and not body:
            break  # padding (0xdd 0x00 ...)
    raise WpaError("the key data carries no group key (GTK KDE)")
