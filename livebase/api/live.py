"""Going live: room stream keys and ingest details, session lineups and product pins."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import delete, select

from livebase import golive, stream_keys
from livebase.api import schemas as s
from livebase.api.crud import PREFIX, flush_or_conflict, resolve_base, scope_filter
from livebase.api.pin_writer import PIN_WRITER, PinJob
from livebase.api.resources import ROOMS, SESSIONS
from livebase.api.routing import Context, Endpoint, parse_id
from livebase.api.state import DB_SESSIONS
from livebase.db.models import LineupItem, LiveSession, Pin, Product, Role, Room
from livebase.errors import FieldError, NotFound, ValidationFailed

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


# Pins come in bursts while live: the pin endpoints check the call and hand it to the
# process's pin writer (``livebase.api.pin_writer``), which applies the pins waiting in one
# transaction.


def _job(ctx: Context, **what: Any) -> PinJob:
    scope_filter(SESSIONS.write, ctx.principal)  # a role that may not write sessions: 403
    session_id = parse_id(ctx.path("key")) or -1
    return PinJob(ctx.principal, ctx.path("base"), session_id, **what)


async def _submit(ctx: Context, job: PinJob) -> s.PinOut:
    # The call has only read (its token, when not cached): end its transaction, so that the
    # calls waiting for the writer hold no database connection the writer needs.
    await ctx.db.commit()
    pin = await ctx.request.app[PIN_WRITER].submit(job)
    if pin is None:
        # The generic lookups raise the same errors as every other endpoint (no base, no
        # session); they only run when the writer found no such session for the caller, in
        # a transaction of their own (the call's has ended).
        async with ctx.request.app[DB_SESSIONS]() as db:
            await _session(replace(ctx, db=db), write=True)
        raise NotFound(f"no session {ctx.path('key')!r}")
    return pin


async def create_pin(ctx: Context) -> s.PinOut:
    body: s.PinCreate = ctx.body
    job = _job(ctx, product_id=body.product_id, stream_offset_ms=body.stream_offset_ms)
    return await _submit(ctx, job)


async def unpin(ctx: Context) -> s.PinOut:
    raw = ctx.path("pin")
    return await _submit(ctx, _job(ctx, pin_id=parse_id(raw) or -1, pin_raw=raw))


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
