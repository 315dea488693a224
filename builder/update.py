"""Signed update bundles on the build side: `invoke keygen` and `invoke bundle`.

The key pair is Ed25519, made and used by the machine's OpenSSL: the private key stays on the
build machine (PEM, mode 0600), the public key (its 32 raw bytes, `update.pub`) is what an
image's `[update] key` names and PID 1 checks bundles with. The bundle's format is
init/bundle.py's: one definition for the writer here and the reader on the device.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.run import log, run
from init import bundle

PUBLIC_DER_PREFIX = bytes.fromhex("302a300506032b6570032100")  # SubjectPublicKeyInfo, Ed25519
PUBLIC_NAME = "update.pub"
PRIVATE_NAME = "update.key"


def keygen(folder: Path) -> tuple[Path, Path]:
    """A new key pair in `folder`; refuses to replace one (its bundles would not verify)."""
    private, public = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    for path in (private, public):
        if path.exists():
            raise BuildError(
                f"{path}: exists; devices built with its key accept only its bundles",
                hint="keep it, or choose another --out folder for a new key pair",
            )
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        pem = Path(tmp) / PRIVATE_NAME
        run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", pem], quiet=True)
        write_atomic(public, public_key(pem))
        write_atomic(private, pem.read_bytes(), mode=0o600)
    log(f"wrote {private} (keep it secret) and {public} (name it in [update] key)")
    return private, public


def public_key(private: Path) -> bytes:
    der = run(
        ["openssl", "pkey", "-in", private, "-pubout", "-outform", "DER"], capture=True, quiet=True
    ).stdout
    if not der.startswith(PUBLIC_DER_PREFIX) or len(der) != len(PUBLIC_DER_PREFIX) + 32:
        raise BuildError(f"{private}: not an Ed25519 private key", hint="make one: invoke keygen")
    return der[len(PUBLIC_DER_PREFIX) :]


def read_public_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != 32:
        raise BuildError(
            f"{path}: {len(data)} bytes, not an Ed25519 public key (32 bytes)",
            hint=f"name the {PUBLIC_NAME} that invoke keygen wrote",
        )
    return data


def boot_files(boot: Path) -> list[tuple[str, bytes]]:
    files = sorted(p for p in boot.rglob("*") if p.is_file())
    if not (boot / "config.txt").is_file():
        raise BuildError(f"{boot}: no config.txt: not a boot folder", hint="run invoke image first")
    return [(p.relative_to(boot).as_posix(), p.read_bytes()) for p in files]


def sign(private: Path, message: bytes) -> bytes:
    """The Ed25519 signature of `message` (OpenSSL reads it whole from a file, not a pipe)."""
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(message)
        tmp.flush()
        return run(
            ["openssl", "pkeyutl", "-sign", "-inkey", private, "-rawin", "-in", tmp.name],
            capture=True,
            quiet=True,
        ).stdout


def write_bundle(boot: Path, private: Path, out: Path, version: str) -> Path:
    """Sign `boot` (a built boot folder) into the bundle `out`; checked back with the public
    key before it is written, as the device will check it."""
    files = boot_files(boot)
    manifest = bundle.manifest(version, files)
    data = bundle.encode(manifest, sign(private, manifest), files)
    bundle.decode(data, public_key(private))  # what PID 1 will do
    write_atomic(out, data)
    log(f"wrote {out}: {len(files)} files of {boot}, version {version!r}, {len(data)} bytes")
    return out
