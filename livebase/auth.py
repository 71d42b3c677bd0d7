"""API tokens and roles.

A principal is what a bearer token proves: a role and, below admin, the one base it belongs to
and, for merchants and hosts, the merchant or host it speaks for.
"""

from __future__ import annotations

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


async def authenticate(db: AsyncSession, token: str) -> Principal:
    record = await db.scalar(
        select(ApiToken).where(ApiToken.token_hash == credentials.digest(token))
    )
    # The digest lookup already found it; compare again in constant time so the check
    # does not depend on how the database compares strings.
    if record is None or not credentials.matches(token, record.token_hash):
        raise Unauthenticated("unknown token")
    if record.revoked_at is not None:
        raise Unauthenticated("this token has been revoked")
    if record.expires_at is not None and record.expires_at <= utcnow():
        raise Unauthenticated("this token has expired")
    return Principal(
        token_id=record.id,
        role=record.role,
        base_id=record.base_id,
        merchant_id=record.merchant_id,
        host_id=record.host_id,
    )
