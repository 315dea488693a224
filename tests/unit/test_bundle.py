"""Update bundles: written and signed by the builder (OpenSSL), checked as PID 1 checks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import update
from hostkit.errors import BuildError
from init import bundle


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, bytes]:
    private, public = update.keygen(tmp_path / "keys")
    assert private.stat().st_mode & 0o777 == 0o600
    return private, public.read_bytes()


def boot_folder(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    (boot / "overlays").mkdir(parents=True)
    (boot / "config.txt").write_text("arm_64bit=1\n")
    (boot / "initramfs.lz4").write_bytes(bytes(range(256)) * 40)
    (boot / "overlays" / "x.dtbo").write_bytes(b"\xd0\x0d\xfe\xed")
    return boot


def signed(private: Path, manifest: bytes, files: list[tuple[str, bytes]]) -> bytes:
    return bundle.encode(manifest, update.sign(private, manifest), files)


def test_a_bundle_of_a_boot_folder_checks_out_on_the_device(keys, tmp_path: Path) -> None:
    private, public = keys
    out = update.write_bundle(boot_folder(tmp_path), private, tmp_path / "u.bundle", "v2")
    got = bundle.decode(out.read_bytes(), public)
    assert got.version == "v2"
    assert [p for p, _ in got.files] == ["config.txt", "initramfs.lz4", "overlays/x.dtbo"]
    assert dict(got.files)["overlays/x.dtbo"] == b"\xd0\x0d\xfe\xed"


def test_a_changed_byte_another_key_or_a_cut_is_refused_whole(keys, tmp_path: Path) -> None:
    private, public = keys
    data = update.write_bundle(boot_folder(tmp_path), private, tmp_path / "u.bundle", "v2")
    data = data.read_bytes()
    other = update.public_key(update.keygen(tmp_path / "other")[0])
    last = bytearray(data)
    last[-1] ^= 1
    inside = bytearray(data)
    inside[data.index(b'"version"') + 12] ^= 1  # the manifest
    for bad, problem in [
        (bytes(last), "overlays/x.dtbo: its SHA-256 is not the manifest's"),
        (bytes(inside), "signature is not the update key's"),
        (data[:-1], "cut short"),
        (data[:40], "cut short"),
        (data + b"x", "1 bytes after the last file"),
        (b"PK\x03\x04" + data, "not a pinit bundle"),
    ]:
        with pytest.raises(bundle.BundleError, match=problem):
            bundle.decode(bad, public)
    with pytest.raises(bundle.BundleError, match="signature"):
        bundle.decode(data, other)


@pytest.mark.parametrize("path", ["../cmdline.txt", "/config.txt", "a//b", "./x"])
def test_a_signed_path_outside_the_boot_folder_is_refused(keys, path: str) -> None:
    private, public = keys
    files = [("config.txt", b"x"), (path, b"y")]
    with pytest.raises(bundle.BundleError, match="outside the boot folder"):
        bundle.decode(signed(private, bundle.manifest("v", files), files), public)


def test_keygen_keeps_an_existing_key(keys, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="exists"):
        update.keygen(tmp_path / "keys")


def test_a_bundle_is_pushed_whole_and_a_refusal_is_one_line(tmp_path: Path) -> None:
    """`invoke update --to`: an HTTP server on this machine's loopback plays the device."""
    import http.server
    import threading

    got: list[bytes] = []

    class Device(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append(self.path.encode() + b" " + body)
            status = 202 if body.startswith(b"pinit-bundle-1") else 413
            text = b"in the inbox\n" if status == 202 else b"too large\n"
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Device)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    to = f"127.0.0.1:{server.server_address[1]}"
    good, bad = tmp_path / "good.bundle", tmp_path / "bad.bundle"
    good.write_bytes(b"pinit-bundle-1\n" + bytes(100_000))
    bad.write_bytes(b"x")
    try:
        assert update.push(good, to) == "202 Accepted: in the inbox"
        assert got == [b"/update " + good.read_bytes()]
        with pytest.raises(BuildError, match=f"{to} refused .*bad.bundle: 413 .*: too large$"):
            update.push(bad, to)
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(BuildError, match=f"{to}: cannot push .*: Connection refused") as refused:
        update.push(good, to)
    assert refused.value.hint and "[update] listen" in refused.value.hint
    with pytest.raises(BuildError, match="expected HOST or HOST:PORT"):
        update.push(good, "device:port")
