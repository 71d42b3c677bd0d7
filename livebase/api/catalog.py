"""Bases and themes: the city's catalogue, above the per-base entities."""

from __future__ import annotations

from sqlalchemy import select

from livebase.api import schemas as s
from livebase.api.crud import flush_or_conflict, resolve_base
from livebase.api.routing import Context, Endpoint
from livebase.db.models import Base, Role, Theme
from livebase.errors import NotFound

ADMIN = frozenset({Role.ADMIN})
MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})


async def list_bases(ctx: Context) -> s.Page[s.BaseOut]:
    stmt = select(Base).order_by(Base.id)
    if not ctx.principal.is_admin:
        stmt = stmt.where(Base.id == ctx.principal.base_id)
    rows = await ctx.db.scalars(stmt)
    return s.Page[s.BaseOut](items=[s.BaseOut.model_validate(r) for r in rows], next_cursor=None)


async def create_base(ctx: Context) -> s.BaseOut:
    row = Base(**ctx.body.model_dump())
    ctx.db.add(row)
    await flush_or_conflict(ctx, "base")
    return s.BaseOut.model_validate(row)


async def get_base(ctx: Context) -> s.BaseOut:
    return s.BaseOut.model_validate(await resolve_base(ctx))


async def update_base(ctx: Context) -> s.BaseOut:
    row = await resolve_base(ctx)
    for name, value in ctx.body.model_dump(exclude_unset=True).items():
        setattr(row, name, value)
    await flush_or_conflict(ctx, "base")
    return s.BaseOut.model_validate(row)


async def delete_base(ctx: Context) -> None:
    row = await resolve_base(ctx)
    await ctx.db.delete(row)
    await flush_or_conflict(ctx, "base")


async def list_themes(ctx: Context) -> s.Page[s.ThemeOut]:
    rows = await ctx.db.scalars(select(Theme).order_by(Theme.id))
    return s.Page[s.ThemeOut](items=[s.ThemeOut.model_validate(r) for r in rows], next_cursor=None)


async def _theme(ctx: Context) -> Theme:
    slug = ctx.path("theme")
    row = await ctx.db.scalar(select(Theme).where(Theme.slug == slug))
    if row is None:
        raise NotFound(f"no theme {slug!r}")
    return row


async def create_theme(ctx: Context) -> s.ThemeOut:
    row = Theme(**ctx.body.model_dump())
    ctx.db.add(row)
    await flush_or_conflict(ctx, "theme")
    return s.ThemeOut.model_validate(row)


async def get_theme(ctx: Context) -> s.ThemeOut:
    return s.ThemeOut.model_validate(await _theme(ctx))


async def update_theme(ctx: Context) -> s.ThemeOut:
    row = await _theme(ctx)
    for name, value in ctx.body.model_dump(exclude_unset=True).items():
        setattr(row, name, value)
    await flush_or_conflict(ctx, "theme")
    return s.ThemeOut.model_validate(row)


async def delete_theme(ctx: Context) -> None:
    await ctx.db.delete(await _theme(ctx))
    await flush_or_conflict(ctx, "theme")


B = "/api/v1/bases"
T = "/api/v1/themes"
WRITE_ERRORS = (400, 401, 403, 404, 409, 422)

ENDPOINTS = [
    Endpoint(
        "GET",
        B,
        list_bases,
        "List the bases the caller can see",
        "bases",
        response=s.Page[s.BaseOut],
    ),
    Endpoint(
        "POST",
        B,
        create_base,
        "Create a base",
        "bases",
        response=s.BaseOut,
        body=s.BaseCreate,
        status=201,
        roles=ADMIN,
        errors=WRITE_ERRORS,
    ),
    Endpoint("GET", B + "/{base}", get_base, "Get a base", "bases", response=s.BaseOut),
    Endpoint(
        "PATCH",
        B + "/{base}",
        update_base,
        "Update a base",
        "bases",
        response=s.BaseOut,
        body=s.BaseUpdate,
        roles=MANAGERS,
        errors=WRITE_ERRORS,
    ),
    Endpoint(
        "DELETE",
        B + "/{base}",
        delete_base,
        "Delete a base and everything in it",
        "bases",
        status=204,
        roles=ADMIN,
        errors=(401, 403, 404, 409),
    ),
    Endpoint("GET", T, list_themes, "List themes", "themes", response=s.Page[s.ThemeOut]),
    Endpoint(
        "POST",
        T,
        create_theme,
        "Create a theme",
        "themes",
        response=s.ThemeOut,
        body=s.ThemeCreate,
        status=201,
        roles=ADMIN,
        errors=WRITE_ERRORS,
    ),
    Endpoint("GET", T + "/{theme}", get_theme, "Get a theme", "themes", response=s.ThemeOut),
    Endpoint(
        "PATCH",
        T + "/{theme}",
        update_theme,
        "Update a theme",
        "themes",
        response=s.ThemeOut,
        body=s.ThemeUpdate,
        roles=ADMIN,
        errors=WRITE_ERRORS,
    ),
    Endpoint(
        "DELETE",
        T + "/{theme}",
        delete_theme,
        "Delete a theme",
        "themes",
        status=204,
        roles=ADMIN,
        errors=(401, 403, 404, 409),
    ),
]
