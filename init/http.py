"""HTTP/1.0 GET as bytes, just enough to fetch an update bundle (init/update.py): the URL, the
request (conditional on the last fetch's Last-Modified) and the response. Pure functions; the
update source sends and receives. Plain http: a bundle is signed, so its transport need not be.
"""

from __future__ import annotations

from init.errors import Malformed


class HttpError(Malformed):
    """A response that is not HTTP/1.x: no status line, or headers without their end."""


def parse_url(url: str) -> tuple[bytes, int, str, str]:
    """(IPv4 address, port, host as written, path) of http://A.B.C.D[:port]/path; ValueError
    for anything else (https, a host name: there is no name to resolve before the network)."""
    if not url.startswith("http://"):
        raise ValueError("expected http://ADDRESS[:PORT]/PATH")
    host, slash, path = url[len("http://") :].partition("/")
    name, colon, port_text = host.partition(":")
    port = int(port_text) if colon else 80
    parts = name.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"{name!r} is not an IPv4 address")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return bytes(int(p) for p in parts), port, host, "/" + path if slash else "/"


def request(host: str, path: str, since: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.0", f"Host: {host}", "User-Agent: pinit"]
    if since:
        lines.append(f"If-Modified-Since: {since}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of a whole response."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise HttpError("the response ends inside its headers")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise HttpError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length", "")
    if length.isdigit() and len(body) < int(length):
        raise HttpError(f"the body ends after {len(body)} of {length} bytes")
    return int(code), headers, body
