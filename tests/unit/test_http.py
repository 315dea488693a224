"""The update source's HTTP/1.0 GET, as bytes."""

from __future__ import annotations

import pytest

from init import http


def test_a_url_is_an_ipv4_address_a_port_and_a_path() -> None:
    assert http.parse_url("http://10.99.0.1:8080/a/b.bundle") == (
        bytes([10, 99, 0, 1]),
        8080,
        "10.99.0.1:8080",
        "/a/b.bundle",
    )
    assert http.parse_url("http://192.168.1.2") == (bytes([192, 168, 1, 2]), 80, "192.168.1.2", "/")
    for bad in ("https://10.0.0.1/x", "http://updates.example/x", "http://10.0.0.1:0/", "ftp://x"):
        with pytest.raises(ValueError):
            http.parse_url(bad)


def test_the_request_is_conditional_on_the_last_answer() -> None:
    assert http.request("10.0.0.1", "/x") == (
        b"GET /x HTTP/1.0\r\nHost: 10.0.0.1\r\nUser-Agent: pinit\r\n\r\n"
    )
    since = "Mon, 07 Dec 2026 09:00:00 GMT"
    assert f"If-Modified-Since: {since}\r\n".encode() in http.request("h", "/x", since)


def test_a_response_is_its_status_headers_and_body() -> None:
    data = b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nLast-Modified: X\r\n\r\nabc"
    assert http.response(data) == (200, {"content-length": "3", "last-modified": "X"}, b"abc")
    assert http.response(b"HTTP/1.1 304 Not Modified\r\n\r\n")[0] == 304
    for bad, problem in [
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n", "inside its headers"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
        (data[:-1], "ends after 2 of 3 bytes"),
    ]:
        with pytest.raises(http.HttpError, match=problem):
            http.response(bad)
