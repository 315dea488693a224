"""Ed25519 verification against RFC 8032's vectors and signatures OpenSSL makes here."""

from __future__ import annotations

import subprocess
from pathlib import Path

from init.ed25519 import verify

# RFC 8032, section 7.1, TEST 1 and TEST 2.
VECTORS = [
    (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]


def test_rfc_8032_vectors_verify_and_any_changed_byte_does_not() -> None:
    for public, message, signature in VECTORS:
        pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
        assert verify(pub, msg, sig)
        assert not verify(pub, msg + b"x", sig)
        for at in (0, 31, 32, 63):
            bad = bytearray(sig)
            bad[at] ^= 1
            assert not verify(pub, msg, bytes(bad))
        assert not verify(pub[:31], msg, sig) and not verify(pub, msg, sig[:63])


def test_a_signature_openssl_makes_verifies(tmp_path: Path) -> None:
    key, message = tmp_path / "key.pem", tmp_path / "message"
    message.write_bytes(b"pinit update manifest\n" * 100)
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", key], check=True)
    der = subprocess.run(
        ["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    signature = subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", message],
        check=True,
        capture_output=True,
    ).stdout
    public = der[-32:]  # SubjectPublicKeyInfo: a fixed 12-byte prefix, then the key
    assert verify(public, message.read_bytes(), signature)
    assert not verify(public, message.read_bytes()[:-1], signature)
