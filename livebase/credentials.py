"""Random secrets (API tokens, room stream keys): generation, digests, masking.

Secrets are 256-bit random strings, so a plain SHA-256 digest is a safe way to store them and
lets us find the owner by digest; the final comparison is constant time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_PREFIX = "lbt_"  # noqa: S105 (a public marker, not a secret)
STREAM_KEY_PREFIX = "lbk_"


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)


def mask(secret: str, keep: int = 4) -> str:
    """A log- and UI-safe form: the prefix and last ``keep`` characters only."""
    if len(secret) <= keep * 2:
        return "…"
    head = secret[: secret.index("_") + 1] if "_" in secret[:8] else ""
    return f"{head}…{secret[-keep:]}"


# Anything that looks like a key in a URL's query or in the last segment of its path is shown
# by its last 4 characters.
_SECRET_QUERY = re.compile(r"((?:passphrase|streamid|key|token|sign)=)([^&\s\"']+)", re.I)
_SECRET_PATH = re.compile(r"((?:rtmps?|srt)://[^/\s]+/[^\s\"'?]*/)([^/\s\"'?]{8,})")


def mask_secrets(text: str) -> str:
    """``text`` (a URL, a log line, an ffmpeg message) with stream keys and passphrases masked."""
    text = _SECRET_QUERY.sub(lambda m: m.group(1) + "…" + m.group(2)[-4:], text)
    return _SECRET_PATH.sub(lambda m: m.group(1) + "…" + m.group(2)[-4:], text)
