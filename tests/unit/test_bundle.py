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
