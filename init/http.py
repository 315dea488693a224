"""HTTP/1.x as bytes, just enough for update bundles: the URL PID 1 fetches from and its
request (a GET, conditional on the last fetch's Last-Modified) and response (init/fetch.py);
the head of a request that pushes a bundle and PID 1's answer to it (init/push.py). Pure
functions; the sources of the loop send and receive. Plain http: a bundle is signed, so its
transport need not be.
"""

from __future__ import annotations

from init import inet
from init.errors import Malformed
from init.validate import is_hostname

PUSH_PATH = "/update"  # where a bundle is pushed (`invoke update --to`, init/push.py)
HEAD_MAX = 8192  # bytes of a request's head (its request line and headers)
REASONS = {
    100: "Continue",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
}


class HttpError(Malformed):
    """A message that is not HTTP/1.x: no status or request line, or headers without their
    end."""


def parse_url(url: str) -> tuple[str, int, str, str]:
    """(host: a name or an IPv4 address, port, host and port as written, path) of
    http://HOST[:PORT]/PATH; ValueError saying what is wrong for anything else."""
    if url.startswith("https://"):
        raise ValueError("https is not fetched: PID 1 speaks plain http")
    if not url.startswith("http://"):
        raise ValueError("expected http://HOST[:PORT]/PATH")
    netloc, slash, path = url[len("http://") :].partition("/")
    host, colon, port_text = netloc.partition(":")
    if colon and not (port_text.isdigit() and port_text.isascii()):
        raise ValueError(f"port {port_text!r} is not a number")
    port = int(port_text) if colon else 80
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range (1 to 65535)")
    if not host:
        raise ValueError("no host")
    if host.rpartition(".")[2].isdigit():  # a name's last label is never a number
        try:
            inet.pack(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 address") from None
    elif not is_hostname(host):
        raise ValueError(f"{host!r} is neither an IPv4 address nor a host name")
    return host, port, netloc, "/" + path if slash else "/"


def request(host: str, path: str, since: str = "") -> bytes:
    lines = [f"GET {path} HTTP/1.0", f"Host: {host}", "User-Agent: pinit"]
    if since:
        lines.append(f"If-Modified-Since: {since}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _headers(lines: list[str]) -> dict[str, str]:
    """Header lines as a dict with lower-case names."""
    headers = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


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
    headers = _headers(lines[1:])
    length = headers.get("content-length", "")
    if length.isdigit() and len(body) < int(length):
        raise HttpError(f"the body ends after {len(body)} of {length} bytes")
    return int(code), headers, body


def request_head(data: bytes) -> tuple[str, str, dict[str, str], bytes] | None:
    """(method, path, headers with lower-case names, the body's first bytes) of a request whose
    head has come whole; None while it has not (and is shorter than HEAD_MAX)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        if len(data) > HEAD_MAX:
            raise HttpError(f"no end of the request's head in its first {HEAD_MAX} bytes")
        return None
    lines = head.decode("latin-1").split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3 or not words[2].startswith("HTTP/1.") or not words[1].startswith("/"):
        raise HttpError(f"not an HTTP/1.x request line: {lines[0][:60]!r}")
    return words[0], words[1], _headers(lines[1:]), body


def answer(status: int, text: str = "") -> bytes:
    """PID 1's answer to a pushed request: a status and one line of text; the connection ends
    after it (a 100 Continue is only a status line, and the request goes on)."""
    line = f"HTTP/1.1 {status} {REASONS[status]}\r\n"
    if status == 100:
        return (line + "\r\n").encode("latin-1")
    body = (text + "\n").encode()
    head = f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return (line + head).encode("latin-1") + body
