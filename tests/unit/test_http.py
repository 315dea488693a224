"""The update source's HTTP/1.0 GET, as bytes."""

from __future__ import annotations

import pytest

from init import http


def test_a_url_is_a_host_name_or_ipv4_address_a_port_and_a_path() -> None:
    assert http.parse_url("http://10.99.0.1:8080/a/b.bundle") == (
        "10.99.0.1",
        8080,
        "10.99.0.1:8080",
        "/a/b.bundle",
    )
    assert http.parse_url("http://192.168.1.2") == ("192.168.1.2", 80, "192.168.1.2", "/")
    assert http.parse_url("http://updates.test/app.bundle") == (
        "updates.test",
        80,
        "updates.test",
        "/app.bundle",
    )
    for bad, problem in [
        ("https://10.0.0.1/x", "https is not fetched"),
        ("ftp://x", "expected http://HOST"),
        ("http://10.0.0.1:0/", "port 0 is out of range"),
        ("http://10.0.0.1:http/", "port 'http' is not a number"),
        ("http://10.0.0.300/", "'10.0.0.300' is not an IPv4 address"),
        ("http://user@updates.test/", "neither an IPv4 address nor a host name"),
        ("http:///x", "no host"),
    ]:
        with pytest.raises(ValueError, match=problem):
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


def test_a_pushed_request_head_comes_whole_or_not_at_all() -> None:
    head = b"PUT /update HTTP/1.1\r\nHost: pi\r\nContent-Length: 5\r\n\r\nab"
    assert http.request_head(head[:20]) is None  # more to come
    assert http.request_head(head) == (
        "PUT",
        "/update",
        {"host": "pi", "content-length": "5"},
        b"ab",
    )
    for bad, problem in [
        (b"hello\r\n\r\n", "not an HTTP/1.x request line"),
        (b"PUT update HTTP/1.1\r\n\r\n", "not an HTTP/1.x request line"),
        (b"x" * (http.HEAD_MAX + 1), "no end of the request's head"),
    ]:
        with pytest.raises(http.HttpError, match=problem):
            http.request_head(bad)


def test_an_answer_is_a_status_and_one_line_that_ends_the_connection() -> None:
    data = http.answer(413, "too large")
    assert data.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"Content-Length: 10\r\nConnection: close\r\n\r\ntoo large\n" in data
    assert http.answer(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
