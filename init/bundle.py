"""Update bundles, defined once: what `invoke bundle` writes and PID 1 checks before it writes
a byte of the other boot slot.

A bundle is one file:

    pinit-bundle-1\\n
    <length of the manifest in bytes, decimal>\\n
    <manifest: JSON, {"format": 1, "version": "...", "files": [{"path", "size", "sha256"}, ...]}>
    <Ed25519 signature of the manifest's bytes: 64 bytes>
    <each file's bytes, in the manifest's order>

The signature covers the manifest, the manifest names each file's SHA-256: a bundle whose
signature is not the configured key's, or any byte of which was changed, is refused whole.
Paths are relative to the boot folder (`config.txt`, `overlays/x.dtbo`): no `..`, no `/` first.
"""

from __future__ import annotations

from _sha256 import sha256

from init import jsontext
from init.ed25519 import verify
from init.errors import InitError
from init.frozen import frozen

MAGIC = b"pinit-bundle-1\n"
FORMAT = 1
SIGNATURE_BYTES = 64
MAX_MANIFEST = 1 << 20
# The largest bundle PID 1 takes, fetched or pushed: it checks a bundle whole, in memory (a boot
# folder: tens of MB).
MAX_SIZE = 256 << 20


class BundleError(InitError):
    """A bundle that is not whole, not signed by the configured key, or not well formed."""


@frozen
class Bundle:
    version: str
    files: tuple[tuple[str, bytes], ...]  # (path in the boot folder, contents)


def safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def manifest(version: str, files: list[tuple[str, bytes]]) -> bytes:
    """The manifest's bytes for `files`, as the builder signs them."""
    entries = [
        {"path": path, "sha256": sha256(data).hexdigest(), "size": len(data)}
        for path, data in files
    ]
    return jsontext.dumps({"files": entries, "format": FORMAT, "version": version}).encode()


def encode(manifest_bytes: bytes, signature: bytes, files: list[tuple[str, bytes]]) -> bytes:
    if len(signature) != SIGNATURE_BYTES:
        raise ValueError(f"an Ed25519 signature is {SIGNATURE_BYTES} bytes, not {len(signature)}")
    head = MAGIC + str(len(manifest_bytes)).encode() + b"\n" + manifest_bytes + signature
    return head + b"".join(data for _, data in files)


def decode(data: bytes, public_key: bytes) -> Bundle:
    """The bundle's files, once its signature and every file's hash are checked; BundleError
    says what is wrong with it otherwise."""
    if not data.startswith(MAGIC):
        raise BundleError("not a pinit bundle (it does not start with pinit-bundle-1)")
    line_end = data.find(b"\n", len(MAGIC))
    try:
        size = int(data[len(MAGIC) : line_end])
    except ValueError:
        size = -1
    if line_end < 0 or not 0 < size <= MAX_MANIFEST:
        raise BundleError("its manifest's length is not readable")
    start = line_end + 1
    manifest_bytes = data[start : start + size]
    signature = data[start + size : start + size + SIGNATURE_BYTES]
    if len(signature) != SIGNATURE_BYTES:
        raise BundleError("it ends before its signature: the file is cut short")
    if not verify(public_key, manifest_bytes, signature):
        raise BundleError(
            "its signature is not the update key's (signed by another key, or changed)"
        )
    try:
        doc = jsontext.loads(manifest_bytes)
        version = doc["version"] if isinstance(doc, dict) and doc.get("format") == FORMAT else 0
        entries = [(e["path"], e["size"], e["sha256"]) for e in doc["files"]]  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        version = 0
    if not isinstance(version, str):
        raise BundleError("its manifest is not format 1")
    at = start + size + SIGNATURE_BYTES
    files: list[tuple[str, bytes]] = []
    for path, length, digest in entries:
        if not isinstance(path, str) or not safe_path(path) or not isinstance(length, int):
            raise BundleError(f"its manifest names a path outside the boot folder: {path!r}")
        body = data[at : at + length]
        if len(body) != length:
            raise BundleError(f"{path}: cut short ({len(body)} of {length} bytes)")
        if sha256(body).hexdigest() != digest:
            raise BundleError(f"{path}: its SHA-256 is not the manifest's")
        files.append((path, body))
        at += length
    if at != len(data):
        raise BundleError(f"{len(data) - at} bytes after the last file")
    if not any(path == "config.txt" for path, _ in files):
        raise BundleError("it has no config.txt: not a boot folder")
    return Bundle(version, tuple(files))
