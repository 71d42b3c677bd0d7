"""API tokens: issued (shown once), listed without secrets, revoked.

Admins issue any token. A base manager issues merchant and host tokens for their own base.
"""

from __future__ import annotations

from sqlalchemy import select

from livebase.api import schemas as s
from livebase.api.routing import Context, Endpoint, parse_id
from livebase.api.state import TOKENS
from livebase.auth import issue_token
from livebase.db.models import ApiToken, Base, Host, Merchant, Role, utcnow
from livebase.errors import FieldError, Forbidden, NotFound, ValidationFailed

ISSUERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})


async def create_token(ctx: Context) -> s.TokenIssued:
    body: s.TokenCreate = ctx.body
    p = ctx.principal
    if not p.is_admin and body.role not in (Role.MERCHANT, Role.HOST):
        raise Forbidden("a base manager can issue merchant and host tokens only")
    base_id: int | None = None
    if body.role is not Role.ADMIN:
        if body.base is None:
            raise ValidationFailed(
                f"a {body.role.value} token needs a base", fields=[FieldError("base", "required")]
            )
        base = await ctx.db.scalar(select(Base).where(Base.slug == body.base))
        if base is None or not p.can_see_base(base.id):
            raise NotFound(f"no base {body.base!r}")
        base_id = base.id
    checks: tuple[tuple[str, type[Merchant | Host], bool], ...] = (
        ("merchant_id", Merchant, body.role is Role.MERCHANT),
        ("host_id", Host, body.role is Role.HOST),
    )
    for field, model, needed in checks:
        ref = getattr(body, field)
        if needed and ref is None:
            raise ValidationFailed(
                f"a {body.role.value} token needs {field}", fields=[FieldError(field, "required")]
            )
        if not needed and ref is not None:
            raise ValidationFailed(
                f"{field} does not apply to a {body.role.value} token",
                fields=[FieldError(field, "not allowed for this role")],
            )
        if ref is not None:
            owner_base = await ctx.db.scalar(select(model.base_id).where(model.id == ref))
            if owner_base is None or owner_base != base_id:
                raise ValidationFailed(
                    f"no {field.removesuffix('_id')} #{ref} in base {body.base!r}",
                    fields=[FieldError(field, "not found in this base")],
                )
    issued = await issue_token(
        ctx.db,
        body.role,
        base_id=base_id,
        merchant_id=body.merchant_id,
        host_id=body.host_id,
        name=body.name,
        expires_at=body.expires_at,
    )
    out = s.TokenOut.model_validate(issued.record)
    return s.TokenIssued(**out.model_dump(), token=issued.token)


def _visible(ctx: Context) -> list[object]:
    if ctx.principal.is_admin:
        return []
    return [ApiToken.base_id == ctx.principal.base_id, ApiToken.role != Role.BASE_MANAGER]


async def list_tokens(ctx: Context) -> s.Page[s.TokenOut]:
    stmt = select(ApiToken).where(*_visible(ctx)).order_by(ApiToken.id)  # type: ignore[arg-type]
    rows = await ctx.db.scalars(stmt)
    return s.Page[s.TokenOut](items=[s.TokenOut.model_validate(r) for r in rows], next_cursor=None)


async def revoke_token(ctx: Context) -> s.TokenOut:
    raw = ctx.path("token_id")
    stmt = select(ApiToken).where(
        ApiToken.id == (parse_id(raw) or -1),
        *_visible(ctx),  # type: ignore[arg-type]
    )
    row = await ctx.db.scalar(stmt)
    if row is None:
        raise NotFound(f"no token {raw!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        # Now, and again once committed: a call that read the token meanwhile keeps nothing.
        cache = ctx.request.app[TOKENS]
        cache.forget(row.token_hash)
        ctx.after_commit.append(lambda: cache.forget(row.token_hash))
    return s.TokenOut.model_validate(row)


P = "/api/v1/tokens"
ENDPOINTS = [
    Endpoint(
        "POST",
        P,
        create_token,
        "Issue an API token (shown once)",
        "tokens",
        response=s.TokenIssued,
        body=s.TokenCreate,
        status=201,
        roles=ISSUERS,
    ),
    Endpoint(
        "GET",
        P,
        list_tokens,
        "List tokens (never their secrets)",
        "tokens",
        response=s.Page[s.TokenOut],
        roles=ISSUERS,
    ),
    Endpoint(
        "DELETE",
        P + "/{token_id}",
        revoke_token,
        "Revoke a token",
        "tokens",
        response=s.TokenOut,
        roles=ISSUERS,
    ),
]
