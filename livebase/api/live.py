"""Going live: room stream keys and ingest details, session lineups and product pins."""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy import CursorResult, Select, delete, insert, select, update

from livebase import golive, stream_keys
from livebase.api import schemas as s
from livebase.api.crud import PREFIX, flush_or_conflict, resolve_base, scope_filter
from livebase.api.resources import ROOMS, SESSIONS
from livebase.api.routing import Context, Endpoint, parse_id
from livebase.bus import Event
from livebase.db.models import (
    Base,
    GiClaimRecord,
    LineupItem,
    LiveSession,
    Pin,
    Product,
    Role,
    Room,
    SessionStatus,
    utcnow,
)
from livebase.errors import Conflict, FieldError, NotFound, ValidationFailed
from livebase.listings import store

MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})
LIVE_CREW = frozenset({Role.ADMIN, Role.BASE_MANAGER, Role.HOST})


async def _room(ctx: Context) -> tuple[str, Room]:
    base = await resolve_base(ctx)
    room: Room = await ROOMS.fetch(ctx, base, ctx.path("key"), ROOMS.read)
    return base.slug, room


async def rotate_key(ctx: Context) -> s.StreamKeyOut:
    base_slug, room = await _room(ctx)
    key = await stream_keys.rotate(ctx.db, room)
    kit = golive.kit(ctx.settings, base_slug, room.slug, key, room.stream_key_hint)
    return s.StreamKeyOut(**kit, stream_key=key)


async def revoke_key(ctx: Context) -> None:
    _, room = await _room(ctx)
    await stream_keys.revoke(ctx.db, room)


async def ingest_details(ctx: Context) -> s.GoLiveKit:
    base_slug, room = await _room(ctx)
    return s.GoLiveKit(**golive.kit(ctx.settings, base_slug, room.slug, None, room.stream_key_hint))


async def _session(ctx: Context, write: bool = False) -> tuple[str, LiveSession]:
    base = await resolve_base(ctx)
    rules = SESSIONS.write if write else SESSIONS.read
    session: LiveSession = await SESSIONS.fetch(ctx, base, ctx.path("key"), rules)
    return base.slug, session


async def _lineup_ids(ctx: Context, session_id: int) -> list[int]:
    rows = await ctx.db.scalars(
        select(LineupItem.product_id)
        .where(LineupItem.session_id == session_id)
        .order_by(LineupItem.position)
    )
    return list(rows)


async def get_lineup(ctx: Context) -> s.LineupOut:
    _, session = await _session(ctx)
    return s.LineupOut(session_id=session.id, product_ids=await _lineup_ids(ctx, session.id))


async def put_lineup(ctx: Context) -> s.LineupOut:
    _, session = await _session(ctx, write=True)
    wanted: list[int] = ctx.body.product_ids
    if len(set(wanted)) != len(wanted):
        raise ValidationFailed(
            "a product appears twice in the lineup",
            fields=[FieldError("product_ids", "duplicates")],
        )
    found = set(
        await ctx.db.scalars(
            select(Product.id).where(Product.id.in_(wanted), Product.base_id == session.base_id)
        )
    )
    missing = [pid for pid in wanted if pid not in found]
    if missing:
        raise ValidationFailed(
            "the lineup names products that are not in this base",
            fields=[FieldError("product_ids", f"unknown products: {missing}")],
        )
    await ctx.db.execute(delete(LineupItem).where(LineupItem.session_id == session.id))
    ctx.db.add_all(
        LineupItem(session_id=session.id, product_id=pid, position=i)
        for i, pid in enumerate(wanted)
    )
    await flush_or_conflict(ctx, "lineup")
    return s.LineupOut(session_id=session.id, product_ids=wanted)


async def list_pins(ctx: Context) -> s.Page[s.PinOut]:
    _, session = await _session(ctx)
    rows = await ctx.db.scalars(
        select(Pin).where(Pin.session_id == session.id).order_by(Pin.pinned_at, Pin.id)
    )
    return s.Page[s.PinOut](items=[s.PinOut.model_validate(r) for r in rows], next_cursor=None)


# Pins come in bursts while live, and on SQLite each statement is a round trip to the
# database thread: the pin endpoints read everything they need in one query (the session
# with its base, and the product through the lineup or the pin), then write.


def _in_session(ctx: Context, *columns: Any) -> Select[Any]:
    """The path's session, in a base the caller sees and within the caller's write scope."""
    session_id = parse_id(ctx.path("key")) or -1
    stmt = (
        select(Base.slug, LiveSession.id, LiveSession.base_id, LiveSession.status, *columns)
        .select_from(LiveSession)
        .join(Base, Base.id == LiveSession.base_id)
        .where(Base.slug == ctx.path("base"), LiveSession.id == session_id)
    )
    if not ctx.principal.is_admin:
        stmt = stmt.where(LiveSession.base_id == ctx.principal.base_id)
    scope = scope_filter(SESSIONS.write, ctx.principal)
    return stmt if scope is None else stmt.where(scope)


async def _not_found(ctx: Context) -> NoReturn:
    """The generic lookups raise the same errors as every other endpoint (no base, no
    session); they only run when the one query found nothing."""
    await _session(ctx, write=True)
    raise NotFound(f"no session {ctx.path('key')!r}")


async def create_pin(ctx: Context) -> s.PinOut:
    body: s.PinCreate = ctx.body
    stmt = (
        _in_session(ctx, LineupItem.product_id, Product.stock, GiClaimRecord)
        .outerjoin(
            LineupItem,
            (LineupItem.session_id == LiveSession.id) & (LineupItem.product_id == body.product_id),
        )
        .outerjoin(Product, Product.id == LineupItem.product_id)
        .outerjoin(GiClaimRecord, GiClaimRecord.product_id == Product.id)
    )
    row = (await ctx.db.execute(stmt)).first()
    if row is None:
        await _not_found(ctx)
    base_slug, session_id, base_id, status, in_lineup, stock, claim = row
    if status is not SessionStatus.LIVE:
        raise Conflict(
            f"products can be pinned only while the session is live (it is {status})",
            code="session_not_live",
        )
    if in_lineup is None:
        raise ValidationFailed(
            "the product is not in this session's lineup",
            fields=[FieldError("product_id", "not in the lineup")],
        )
    _check_pinnable(body.product_id, stock, claim)
    await ctx.writing()
    now = utcnow()
    # One product is pinned at a time: pinning another ends the current pin.
    await ctx.db.execute(
        update(Pin)
        .where(Pin.session_id == session_id, Pin.unpinned_at.is_(None))
        .values(unpinned_at=now)
        .execution_options(synchronize_session=False)
    )
    values = {
        "base_id": base_id,
        "session_id": session_id,
        "product_id": body.product_id,
        "pinned_at": now,
        "stream_offset_ms": body.stream_offset_ms,
    }
    pin_id = await ctx.db.scalar(insert(Pin).values(values).returning(Pin.id))
    assert pin_id is not None
    ctx.events.append(
        Event(
            type="pin.created",
            base=base_slug,
            data={"session_id": session_id, "product_id": body.product_id, "pin_id": pin_id},
        )
    )
    return s.PinOut(id=pin_id, unpinned_at=None, **values)


def _check_pinnable(product_id: int, stock: int, claim: GiClaimRecord | None) -> None:
    """Viewers buy what is pinned: it must be in stock and any GI claim must hold up."""
    if stock == 0:
        raise Conflict(
            f"product {product_id} is out of stock (every SKU has 0 left); restock it first",
            code="out_of_stock",
        )
    missing = store.gi_problems(store.claim_from(claim))
    if missing:
        raise ValidationFailed(
            f"product {product_id} claims a geographical indication that is incomplete; "
            "complete the claim before pinning it",
            fields=missing,
            code="gi_incomplete",
        )


async def unpin(ctx: Context) -> s.PinOut:
    raw = ctx.path("pin")
    stmt = _in_session(ctx, Pin).outerjoin(
        Pin, (Pin.session_id == LiveSession.id) & (Pin.id == (parse_id(raw) or -1))
    )
    row = (await ctx.db.execute(stmt)).first()
    if row is None:
        await _not_found(ctx)
    base_slug, session_id, _, _, pin = row
    if pin is None:
        raise NotFound(f"no pin {raw!r} in session {session_id}")
    out = s.PinOut.model_validate(pin)
    if out.unpinned_at is None:
        await ctx.writing()
        now = utcnow()
        ended = await ctx.db.execute(
            update(Pin)
            .where(Pin.id == out.id, Pin.unpinned_at.is_(None))
            .values(unpinned_at=now)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(ended, CursorResult)
        if ended.rowcount != 1:  # another call ended it meanwhile
            out.unpinned_at = await ctx.db.scalar(select(Pin.unpinned_at).where(Pin.id == out.id))
        else:
            out.unpinned_at = now
            ctx.events.append(
                Event(
                    type="pin.removed",
                    base=base_slug,
                    data={"session_id": session_id, "product_id": out.product_id, "pin_id": out.id},
                )
            )
    return out


ROOM = PREFIX + "/rooms/{key}"
SESSION = PREFIX + "/sessions/{key}"
ENDPOINTS = [
    Endpoint(
        "POST",
        ROOM + "/stream-key",
        rotate_key,
        "Rotate the room's stream key (the new key is shown once)",
        "rooms",
        response=s.StreamKeyOut,
        roles=LIVE_CREW,
    ),
    Endpoint(
        "DELETE",
        ROOM + "/stream-key",
        revoke_key,
        "Revoke the room's stream key (publishing is refused until rotated)",
        "rooms",
        status=204,
        roles=MANAGERS,
    ),
    Endpoint(
        "GET",
        ROOM + "/ingest",
        ingest_details,
        "What a host pastes into OBS for this room",
        "rooms",
        response=s.GoLiveKit,
        roles=LIVE_CREW,
    ),
    Endpoint(
        "GET",
        SESSION + "/lineup",
        get_lineup,
        "A session's product lineup",
        "sessions",
        response=s.LineupOut,
        roles=LIVE_CREW,
    ),
    Endpoint(
        "PUT",
        SESSION + "/lineup",
        put_lineup,
        "Replace a session's product lineup",
        "sessions",
        response=s.LineupOut,
        body=s.LineupIn,
        roles=LIVE_CREW,
    ),
    Endpoint(
        "GET",
        SESSION + "/pins",
        list_pins,
        "Pins of a session, in time order",
        "sessions",
        response=s.Page[s.PinOut],
        roles=LIVE_CREW,
    ),
    Endpoint(
        "POST",
        SESSION + "/pins",
        create_pin,
        "Pin a product of the lineup while live",
        "sessions",
        response=s.PinOut,
        body=s.PinCreate,
        status=201,
        roles=LIVE_CREW,
        errors=(400, 401, 403, 404, 409, 422),
    ),
    Endpoint(
        "POST",
        SESSION + "/pins/{pin}/unpin",
        unpin,
        "End a pin",
        "sessions",
        response=s.PinOut,
        roles=LIVE_CREW,
    ),
]
