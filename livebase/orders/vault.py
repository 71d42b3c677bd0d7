"""Shop credentials encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256, timestamped).

The key comes from the ``secret_key`` setting (``LIVEBASE_SECRET_KEY``) through HKDF, or, when
that is empty, from ``<data_dir>/secret.key``: 32 random bytes generated on first use and
written with mode 0600 before any byte of key material goes into it. Losing the key loses the
stored credentials (they are re-entered); it never loses orders.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE = "secret.key"
_INFO = b"livebase shop credentials v1"


class VaultError(RuntimeError):
    """The stored credentials cannot be decrypted: another key, or a damaged value."""


def _derive(secret: bytes) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO)
    return base64.urlsafe_b64encode(kdf.derive(secret))


def _key_file(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    material = secrets.token_bytes(32)
    # O_EXCL: two processes starting at once must not each write a key of their own.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(material)
    return material


class Vault:
    """Encrypts and decrypts a mapping of credential fields (names to secret strings)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the vault needs at least 32 bytes of key material")
        self._fernet = Fernet(_derive(secret))

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path) -> Vault:
        if secret_key:
            return cls(secret_key.encode("utf-8"))
        return cls(_key_file(data_dir))

    def __repr__(self) -> str:
        return "<Vault>"

    def seal(self, fields: Mapping[str, str]) -> str:
        return self._fernet.encrypt(orjson.dumps(dict(fields))).decode("ascii")

    def open(self, token: str) -> dict[str, str]:
        try:
            raw = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise VaultError(
                "the shop credentials cannot be decrypted with this service's secret key; "
                "was LIVEBASE_SECRET_KEY or the key file changed?"
            ) from exc
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise VaultError("the stored shop credentials are damaged")
        return {str(k): str(v) for k, v in data.items()}
