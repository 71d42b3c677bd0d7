"""API tokens and roles.

A principal is what a bearer token proves: a role and, below admin, the one base it belongs to
and, for merchants and hosts, the merchant or host it speaks for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase import credentials
from livebase.db.models import ApiToken, Role, utcnow
from livebase.errors import ApiError, Forbidden


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    role: Role
    base_id: int | None = None
    merchant_id: int | None = None
    host_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_see_base(self, base_id: int) -> bool:
        return self.is_admin or self.base_id == base_id

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"the {self.role.value} role may not do this")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    record: ApiToken


async def issue_token(
    db: AsyncSession,
    role: Role,
    *,
    base_id: int | None = None,
    merchant_id: int | None = None,
    host_id: int | None = None,
    name: str = "",
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Create a token; the caller shows ``token`` once, only its digest is kept."""
    if role is not Role.ADMIN and base_id is None:
        raise ValueError(f"a {role.value} token needs a base")
    if role is Role.MERCHANT and merchant_id is None:
        raise ValueError("a merchant token needs a merchant")
    if role is Role.HOST and host_id is None:
        raise ValueError("a host token needs a host")
    token = credentials.new_secret(credentials.TOKEN_PREFIX)
    record = ApiToken(
        token_hash=credentials.digest(token),
        prefix=token[:10],
        name=name,
        role=role,
        base_id=None if role is Role.ADMIN else base_id,
        merchant_id=merchant_id if role is Role.MERCHANT else None,
        host_id=host_id if role is Role.HOST else None,
        expires_at=expires_at,
    )
    db.add(record)
    await db.flush()
    return IssuedToken(token=token, record=record)


def bearer_from_header(header: str | None) -> str:
    if not header:
        raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
    return value.strip()


# How long this process trusts a token it has looked up. A revocation made through this
# process applies at once (``TokenCache.forget``); one made elsewhere within this time.
TOKEN_TTL = 2.0


@dataclass(frozen=True, slots=True)
class _Trusted:
    principal: Principal
    token_hash: str
    expires_at: datetime | None
    until: float  # time.monotonic() after which the database is asked again


class TokenCache:
    """Principals of valid tokens by digest, so that a burst of calls reads each token once.

    Only tokens found valid are kept (an unknown token is looked up every time, so guessing
    fills nothing). The key is the token's SHA-256 digest, not the token: a dictionary lookup
    by digest tells a timing observer nothing about the token. ``forget`` bumps a generation
    so that a lookup that read the row before a revocation committed does not put it back.
    """

    def __init__(self, ttl: float = TOKEN_TTL) -> None:
        self._ttl = ttl
        self._trusted: dict[str, _Trusted] = {}
        self.generation = 0

    def __repr__(self) -> str:
        return f"<TokenCache {len(self._trusted)} trusted>"

    def get(self, digest: str) -> _Trusted | None:
        entry = self._trusted.get(digest)
        if entry is None or entry.until < time.monotonic():
            return None
        return entry

    def put(self, digest: str, entry: _Trusted, generation: int) -> None:
        if generation != self.generation:
            return
        now = time.monotonic()
        if len(self._trusted) > 10_000:
            self._trusted = {k: v for k, v in self._trusted.items() if v.until >= now}
        self._trusted[digest] = _Trusted(
            entry.principal, entry.token_hash, entry.expires_at, now + self._ttl
        )

    def forget(self, digest: str) -> None:
        self.generation += 1
        self._trusted.pop(digest, None)


def _unexpired(principal: Principal, expires_at: datetime | None) -> Principal:
    if expires_at is not None and expires_at <= utcnow():
        raise Unauthenticated("this token has expired")
    return principal


async def authenticate(db: AsyncSession, token: str, cache: TokenCache | None = None) -> Principal:
    token_digest = credentials.digest(token)
    if cache is not None:
        trusted = cache.get(token_digest)
        # The same constant-time check as for a token read from the database.
        if trusted is not None and credentials.matches(token, trusted.token_hash):
            return _unexpired(trusted.principal, trusted.expires_at)
    generation = cache.generation if cache is not None else 0
    record = await db.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest))
    # The digest lookup already found it; compare again in constant time so the check
    # does not depend on how the database compares strings.
    if record is None or not credentials.matches(token, record.token_hash):
        raise Unauthenticated("unknown token")
    if record.revoked_at is not None:
        raise Unauthenticated("this token has been revoked")
    principal = Principal(
        token_id=record.id,
        role=record.role,
        base_id=record.base_id,
        merchant_id=record.merchant_id,
        host_id=record.host_id,
    )
    _unexpired(principal, record.expires_at)
    if cache is not None:
        trusted = _Trusted(principal, record.token_hash, record.expires_at, 0.0)
        cache.put(token_digest, trusted, generation)
    return principal
