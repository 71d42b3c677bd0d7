"""Independent signature implementations for the tests, sharing no code with signatures.py.

``openssl_digest`` runs the openssl command line; ``hand_hmac_sha256`` builds HMAC from
hashlib alone as RFC 2104 defines it (no ``hmac`` module).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

OPENSSL = shutil.which("openssl")


def hand_hmac_sha256(key: bytes, message: bytes) -> bytes:
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).digest()


def openssl_digest(algorithm: str, data: bytes, hmac_key: str | None = None) -> bytes:
    """Raw digest from `openssl dgst -<algorithm> [-hmac key] -binary`."""
    assert OPENSSL is not None
    command = [OPENSSL, "dgst", f"-{algorithm}", "-binary"]
    if hmac_key is not None:
        command[3:3] = ["-hmac", hmac_key]
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout
