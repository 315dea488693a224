"""Ed25519 signature verification (RFC 8032, section 5.1.7), for update bundles.

PID 1 checks an update's signature before it writes a byte of the other boot slot, with the
public key built into its image. Verification only (the device never signs), in Python's own
integers: some hundred milliseconds on a Pi, once per update. Points are kept in extended
coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
"""

from __future__ import annotations

from _sha512 import sha512

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the group's order
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]


def _recover_x(y: int, sign: int) -> int | None:
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x


def _decode(data: bytes) -> Point | None:
    """The point a 32-byte encoding stands for; None for one that is not on the curve."""
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def _add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _times(scalar: int, p: Point) -> Point:
    q: Point = (0, 1, 1, 0)  # the neutral element
    while scalar:
        if scalar & 1:
            q = _add(q, p)
        p = _add(p, p)
        scalar >>= 1
    return q


def _same(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % P == 0 and (p[1] * q[2] - q[1] * p[2]) % P == 0


def _base() -> Point:
    y = 4 * pow(5, P - 2, P) % P
    x = _recover_x(y, 0) or 0
    return (x, y, 1, x * y % P)


_BASE = _base()


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` (64 bytes) is `public`'s (32 bytes) signature of `message`."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(sha512(signature[:32] + public + message).digest(), "little") % L
    return _same(_times(s, _BASE), _add(r, _times(h, a)))
