"""PID 1's update source against the recording fake kernel: what it decides and says. The
writing of slots and the commit on real FAT partitions: tests/qemu/test_update.py."""

from __future__ import annotations

import errno

from init.config import Update
from init.update import Updater, booted_from
from tests.fakes import FakeKernel
from tests.unit.test_network import dns_reply

KEY = "/etc/pinit/update.pub"


def updater(fake: FakeKernel, words: dict[str, str], healthy: bool = False):
    said: list[str] = []
    asked: list[str] = []
    config = Update(key=KEY, check_every=1, healthy_after=3, deadline=10)
    source = Updater(fake, "/", config, words, said.append, asked.append, lambda s, n: healthy)
    return source, said, asked


def test_the_slot_and_the_tryboot_flag_come_from_the_firmware_or_the_harness() -> None:
    fake = FakeKernel(
        files={
            "/proc/device-tree/chosen/bootloader/partition": (3).to_bytes(4, "big"),
            "/proc/device-tree/chosen/bootloader/tryboot": (1).to_bytes(4, "big"),
        }
    )
    assert booted_from(fake, "/", {}) == (3, True)
    assert booted_from(FakeKernel(), "/", {"pinit.boot_partition": "2"}) == (2, False)
    assert booted_from(FakeKernel(), "/", {}) == (None, False)


def test_a_bundle_that_is_not_signed_is_set_aside_with_one_line() -> None:
    fake = FakeKernel(files={KEY: bytes(32), "/data/update/new.bundle": b"pinit-bundle-1\n5\n"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    source.tick(fake.clock())
    assert said == [
        "update: /data/update/new.bundle refused: it ends before its signature: "
        "the file is cut short"
    ]
    assert "/data/update/new.refused" in fake.files and asked == []
    source.tick(fake.clock() + 5)
    assert len(said) == 1  # nothing more to look at


def test_a_tried_slot_that_never_becomes_healthy_is_given_up_at_its_deadline() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said, asked = updater(fake, {"pinit.boot_partition": "3", "pinit.tryboot": "1"})
    assert said[0].startswith("update: trying slot 3: kept once every service has run 3 s")
    start = fake.clock()
    source.tick(start + 9)
    assert asked == []
    assert source.due() is not None and source.due() <= start + 10
    source.tick(start + 10)
    assert said[-1] == "update: slot 3 not healthy after 10 s: rebooting into slot 2"
    assert asked == ["reboot"]
    assert source.due() is None  # decided: nothing more until the reboot


def test_a_boot_from_outside_the_slots_turns_updates_off() -> None:
    fake = FakeKernel(files={KEY: bytes(32), "/data/update/new.bundle": b"x"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "1"})
    source.tick(fake.clock() + 5)
    assert said == ["update: booted from partition 1, not an A/B slot: updates are off"]
    assert source.due() is None and "/data/update/new.bundle" in fake.files


# --- [update] url with a host name: resolved through the network's name servers -------------

URL = "http://updates.test:8080/app.bundle"
NAME_SERVER = b"\x0a\0\0\x01"


def turns(fake: FakeKernel, source: Updater, until: float, limit: int = 1000) -> None:
    """The loop as run() turns it, but at most `limit` times: a source that spins (always
    ready, never due later) fails here instead of hanging the test."""
    for _ in range(limit):
        if fake.now >= until:
            return
        source.tick(fake.now)
        due = source.due()
        timeout = min(due - fake.now if due is not None else until, until - fake.now)
        for fd in fake.select(source.fds(), max(timeout, 0.0)):
            source.ready(fd)
    raise AssertionError(f"the loop spins at {fake.now:.3f} s")


def fetching(fake: FakeKernel, name_servers: list[bytes]):
    said: list[str] = []
    config = Update(key=KEY, check_every=1, url=URL, fetch_every=10)
    source = Updater(
        fake,
        "/",
        config,
        {"pinit.boot_partition": "2"},
        said.append,
        lambda action: None,
        lambda s, n: False,
        name_servers=lambda: tuple(name_servers),
    )
    return source, said


def test_a_url_host_name_is_resolved_then_kept_until_a_fetch_fails() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    answers = {"updates.test": b"\x0a\0\0\x07"}
    fake.sntp_server = lambda query: [(0.01, dns_reply(query, *answers.values()))]
    fake.tcp_server = lambda request: [(0.01, b"HTTP/1.0 200 OK\r\n\r\nnot a bundle")]
    name_servers: list[bytes] = []
    source, said = fetching(fake, name_servers)
    turns(fake, source, 5.0)
    assert said == ["update: cannot resolve updates.test yet: no name server"]
    name_servers.append(NAME_SERVER)  # the lease came
    turns(fake, source, 15.0)
    assert said[1:] == [
        "update: updates.test is 10.0.0.7",
        f"update: {URL} refused: not a pinit bundle (it does not start with pinit-bundle-1)",
    ]
    assert any("udp_socket 10.0.0.1:53" in line for line in fake.transcript)
    assert not any(what.startswith("tcp ") for what in fake.fds.values())  # closed when whole
    sent = b"".join(fake.sent.values())
    assert sent.startswith(b"GET /app.bundle HTTP/1.0\r\nHost: updates.test:8080\r\n")

    def asked() -> int:
        return sum("udp_socket 10.0.0.1:53" in line for line in fake.transcript)

    turns(fake, source, 25.0)
    assert asked() == 1  # the address is kept while fetches work
    fake.fail("tcp_socket", errno.ECONNREFUSED)
    turns(fake, source, 35.0)
    assert said[-1] == f"update: cannot fetch {URL}: ECONNREFUSED (Connection refused)"
    fake.heal("tcp_socket")
    answers.clear()  # the name is gone: NXDOMAIN
    fake.sntp_server = lambda query: [(0.01, dns_reply(query, rcode=3))]
    turns(fake, source, 45.0)
    assert asked() == 2  # a failed fetch: the name is resolved again
    assert said[-1] == f"update: cannot fetch {URL}: updates.test: no such name"
    turns(fake, source, 55.0)
    assert asked() == 3  # ... and again at the next fetch


def test_a_name_server_that_does_not_answer_is_one_line_and_the_next_is_asked() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said = fetching(fake, [NAME_SERVER, b"\x0a\0\0\x02"])
    turns(fake, source, 15.0)
    assert said == [
        f"update: cannot fetch {URL}: no answer from name server 10.0.0.1 for updates.test",
        f"update: cannot fetch {URL}: no answer from name server 10.0.0.2 for updates.test",
    ]
    assert not any("tcp_socket" in line for line in fake.transcript)


# --- [update] listen: a bundle pushed with HTTP PUT ------------------------------------------

BODY = b"pinit-bundle-1\n5\n" + b"x" * 3000  # not signed: the inbox's check refuses it


def pushing(fake: FakeKernel):
    said: list[str] = []
    config = Update(key=KEY, check_every=60, listen=8080)
    fake.paths.add("/data/update")
    source = Updater(
        fake, "/", config, {"pinit.boot_partition": "2"}, said.append, print, lambda s, n: False
    )
    return source, said


def put(body: bytes, length: int | None = None, head: str = "PUT /update HTTP/1.1") -> bytes:
    size = len(body) if length is None else length
    return f"{head}\r\nHost: pi\r\nContent-Length: {size}\r\n\r\n".encode()


def answers(fake: FakeKernel) -> list[str]:
    """The status line of each answer the init wrote to a client, in order."""
    return [data.split(b"\r\n", 1)[0].decode() for fd, data in sorted(fake.sent.items())]


def test_a_pushed_bundle_streams_into_the_inbox_and_is_checked_there() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said = pushing(fake)
    fake.client(2.0, (0.0, put(BODY) + BODY[:1000]), (0.5, BODY[1000:2000]), (1.0, BODY[2000:]))
    turns(fake, source, 5.0)
    assert said[:2] == [
        "update: listening on port 8080 for pushed bundles",
        f"update: pushed from 10.0.0.2: {len(BODY)} bytes into /data/update/pushed-1.bundle",
    ]
    assert answers(fake) == ["HTTP/1.1 202 Accepted"]
    writes = [line for line in fake.transcript if "write /data/update/.pushing" in line]
    assert len(writes) == 3  # written as it came, never held whole
    # The inbox's check, at once (not at the next check_every): refused, set aside whole.
    assert said[2].startswith("update: /data/update/pushed-1.bundle refused: ")
    assert fake.files["/data/update/pushed-1.refused"] == BODY
    assert "/data/update/.pushing" not in fake.paths


def test_what_is_not_a_whole_bundle_put_to_update_is_refused_with_its_status() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    fake.free = 2000
    source, said = pushing(fake)
    fake.client(1.0, (0.0, b"hello\r\n\r\n"))
    fake.client(1.0, (0.0, put(b"", 10, "GET /update HTTP/1.1")))
    fake.client(1.0, (0.0, put(b"", 10, "PUT /other HTTP/1.1")))
    fake.client(1.0, (0.0, b"PUT /update HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"))
    fake.client(1.0, (0.0, put(BODY)), (0.1, BODY))  # sent whole, read and dropped
    fake.client(1.0, (0.0, put(BODY[:1500]) + BODY[:500]))  # closes after 500 of 1500 bytes
    turns(fake, source, 10.0)
    assert answers(fake) == [
        "HTTP/1.1 400 Bad Request",
        "HTTP/1.1 405 Method Not Allowed",
        "HTTP/1.1 404 Not Found",
        "HTTP/1.1 411 Length Required",
        "HTTP/1.1 413 Content Too Large",
        "HTTP/1.1 400 Bad Request",
    ]
    assert said[1:] == [
        "update: push from 10.0.0.2 refused (400): not an HTTP/1.x request line: 'hello'",
        "update: push from 10.0.0.2 refused (405): GET /update: expected PUT /update",
        "update: push from 10.0.0.2 refused (404): PUT /other: expected PUT /update",
        "update: push from 10.0.0.2 refused (411): no Content-Length: say the bundle's size first",
        f"update: push from 10.0.0.2 refused (413): {len(BODY)} bytes, room for 2000",
        "update: push from 10.0.0.2 refused (400): cut short after 500 of 1500 bytes",
    ]
    assert not [p for p in fake.paths if p.startswith("/data/update/")]  # nothing left behind
    # The refused body is read and dropped before the connection closes: a client that sent it
    # anyway then reads the answer (closing with unread bytes would reset the connection).
    too_large = sorted(fake.sent)[4]
    lines = [line.split(None, 1)[1] for line in fake.transcript]
    drained = lines.index(f"read {too_large} -> {BODY!r}")
    assert drained < lines.index(f"close {too_large}")


def test_a_client_that_stalls_is_dropped_and_only_then_is_the_next_one_taken() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said = pushing(fake)
    fake.client(1.0, (0.0, put(BODY) + BODY[:100]), close=False)
    fake.client(2.0, (0.0, put(BODY)), (0.1, BODY))
    turns(fake, source, 60.0)
    assert said[1:3] == [
        f"update: push from 10.0.0.2 dropped: nothing for 30 s after 100 of {len(BODY)} bytes",
        f"update: pushed from 10.0.0.2: {len(BODY)} bytes into /data/update/pushed-1.bundle",
    ]
    accepted = [line for line in fake.transcript if "tcp_accept ->" in line]
    assert float(accepted[1].split()[0]) >= 31.0  # the second waited in the kernel's backlog


def test_a_client_that_asks_to_continue_is_told_to_before_it_sends_the_body() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    source, said = pushing(fake)
    head = put(BODY).replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n")
    fake.client(1.0, (0.0, head), (0.5, BODY))
    turns(fake, source, 3.0)
    (sent,) = fake.sent.values()
    assert sent.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n")


def test_a_client_that_cannot_be_taken_is_one_line_and_a_pause_not_a_spin() -> None:
    fake = FakeKernel(files={KEY: bytes(32)})
    fake.fail("tcp_accept", errno.EMFILE)
    source, said = pushing(fake)
    fake.client(1.0, (0.0, put(BODY)), (0.1, BODY))
    turns(fake, source, 3.5)
    assert said[1:] == ["update: cannot take a pushing client: EMFILE (Too many open files)"] * 3
    # a try a second: at 1.0, 2.0 and 3.0
    fake.heal("tcp_accept")
    turns(fake, source, 6.0)
    assert said[4].startswith("update: pushed from 10.0.0.2")  # the client waited, and is taken


# --- a try that never began: a power cut before the reboot, a panic before PID 1 -------------

TRYING = "/data/update/.trying"


def test_the_tried_boot_records_that_its_try_began() -> None:
    fake = FakeKernel(files={KEY: bytes(32), TRYING: b"v2 3"})
    updater(fake, {"pinit.boot_partition": "3", "pinit.tryboot": "1"})
    assert fake.files[TRYING] == b"v2 3 started"


def test_a_try_that_began_and_fell_back_is_given_up() -> None:
    fake = FakeKernel(files={KEY: bytes(32), TRYING: b"v2 3 started"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    source.tick(fake.clock())
    assert said == ["update: version v2 was not kept: slot 2 runs on"]
    assert fake.files["/data/update/.failed"] == b"v2\n" and TRYING not in fake.files
    assert asked == []


def test_a_written_slot_whose_try_never_began_is_tried_once_more_then_given_up() -> None:
    fake = FakeKernel(files={KEY: bytes(32), TRYING: b"v2 3"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    assert said == [
        "update: version v2 in slot 3 was written but never tried (a power cut before the "
        "reboot, or a panic before PID 1): trying it once more"
    ]
    assert fake.files[TRYING] == b"v2 3 again"
    assert source.due() is not None and source.due() <= fake.clock()
    source.tick(fake.clock())
    assert asked == ["tryboot"] and source.due() is None
    # The second try never began either: given up, and the old slot runs on.
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    source.tick(fake.clock())
    assert said == [
        "update: version v2 was not kept: slot 3 never started its try twice (no tryboot "
        "flag, or its kernel panics); slot 2 runs on"
    ]
    assert asked == [] and TRYING not in fake.files
    assert fake.files["/data/update/.failed"] == b"v2\n"


def test_a_written_slot_whose_bundle_is_still_there_is_written_again() -> None:
    """Cut after .trying reached the card but before the bundle was deleted: the bundle is
    checked and written again, as any bundle in the inbox."""
    fake = FakeKernel(files={KEY: bytes(32), TRYING: b"v2 3", "/data/update/u.bundle": b"x"})
    source, said, asked = updater(fake, {"pinit.boot_partition": "2"})
    assert said == ["update: version v2 was written, not tried: writing it again"]
    assert TRYING not in fake.files
    source.tick(fake.clock())
    assert said[-1].startswith("update: /data/update/u.bundle refused")  # b"x": not a bundle
    assert asked == []
