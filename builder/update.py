"""Signed update bundles on the build side: `invoke keygen`, `invoke bundle`, and `invoke update
--to HOST`, which pushes a bundle to a device that listens for one (`[update] listen`).

The key pair is Ed25519, made and used by the machine's OpenSSL: the private key stays on the
build machine (PEM, mode 0600), the public key (its 32 raw bytes, `update.pub`) is what an
image's `[update] key` names and PID 1 checks bundles with. The bundle's format is
init/bundle.py's: one definition for the writer here and the reader on the device.
"""

from __future__ import annotations

import tempfile
from http.client import HTTPConnection, HTTPException, HTTPResponse, RemoteDisconnected
from pathlib import Path

from hostkit.errors import BuildError
from hostkit.output import write_atomic
from hostkit.run import log, run
from init import bundle
from init.http import PUSH_PATH

PUBLIC_DER_PREFIX = bytes.fromhex("302a300506032b6570032100")  # SubjectPublicKeyInfo, Ed25519
PUBLIC_NAME = "update.pub"
PRIVATE_NAME = "update.key"
PUSH_PORT = 8080  # `invoke update --to HOST` without a port: the port docs/config.md suggests
PUSH_HINT = (
    "is the device up and reachable, with [update] listen = PORT in its pinit.toml? "
    f"Give that port: --to HOST:PORT (default {PUSH_PORT})"
)


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


def push(bundle_file: Path, to: str, timeout: float = 60.0) -> str:
    """PUT `bundle_file` to the device `to` (HOST or HOST:PORT: its `[update] listen`), as
    gokrazy's `gok update` does; the device's answer (202: the bundle is in its inbox, checked
    next). BuildError when the device cannot be reached or refuses the bundle."""
    host, colon, port_text = to.rpartition(":") if ":" in to else (to, "", "")
    if not host or colon and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise BuildError(f"--to {to}: expected HOST or HOST:PORT", hint=PUSH_HINT)
    port = int(port_text) if colon else PUSH_PORT
    where = f"{host}:{port}"
    try:
        size = bundle_file.stat().st_size
    except OSError as exc:
        raise BuildError(
            f"{bundle_file}: {exc.strerror}", hint="invoke bundle writes one"
        ) from None
    log(f"pushing {bundle_file} ({size} bytes) to {where}")
    connection = HTTPConnection(host, port, timeout=timeout)
    try:
        connection.connect()
        answer = _put(connection, bundle_file, size)
        text = answer.read().decode(errors="replace").strip()
    except (OSError, HTTPException) as exc:
        raise BuildError(f"{where}: cannot push {bundle_file}: {_why(exc)}", PUSH_HINT) from None
    finally:
        connection.close()
    if answer.status != 202:
        raise BuildError(
            f"{where} refused {bundle_file}: {answer.status} {answer.reason}: {text}",
            hint="the device's console says the same (pinit: update: push from ...)",
        )
    return f"{answer.status} {answer.reason}: {text}"


def _put(connection: HTTPConnection, bundle_file: Path, size: int) -> HTTPResponse:
    """The PUT, the body streamed from the file; the answer even when the device stopped
    reading the body (it refused it: the answer says why)."""
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    try:
        with bundle_file.open("rb") as body:
            connection.request("PUT", PUSH_PATH, body=body, headers=headers)
    except OSError as exc:  # EPIPE, ECONNRESET: perhaps with an answer waiting
        try:
            return connection.getresponse()
        except (OSError, HTTPException):
            raise exc from None
    return connection.getresponse()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, RemoteDisconnected):
        return "the connection ended without an answer (is PID 1 listening on that port?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"
