"""Live counters of a base's day and of a room's broadcast: a snapshot, or a stream of them.

``GET`` answers the JSON snapshot. With ``Accept: text/event-stream`` (what a browser's
``EventSource`` sends) the same URL streams Server-Sent Events instead: a ``live`` event with
the same JSON whenever it changes (checked twice a second), a comment line as keep-alive, and
the end of the stream after :data:`STREAM_SECONDS`, when the client reconnects and its token is
checked again. One URL and one role rule per scope serve both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

from analytics.constants import base_scope, session_scope
from analytics.live import LiveCounters, Snapshot, local_day
from livebase.api.analytics_ctx import COUNTERS
from livebase.api.crud import resolve_base
from livebase.api.resources import ROOMS
from livebase.api.routing import Context, Endpoint
from livebase.db.models import Role

log = logging.getLogger("livebase.api.counters")
MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})
ROOM_VIEWERS = frozenset({Role.ADMIN, Role.BASE_MANAGER, Role.HOST})
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
STREAM_SECONDS = 3600.0


class ProductLive(BaseModel):
    product_id: int
    gmv_fen: int
    orders: int


class Figures(BaseModel):
    concurrent_viewers: int
    peak_concurrent_viewers: int
    gmv_fen: int
    orders: int
    top_products: list[ProductLive]


class RoomLive(Figures):
    room: str
    session_id: int | None


class BaseLive(Figures):
    base: str
    day: str
    rooms: list[RoomLive]


def _figures(snap: Snapshot) -> dict[str, Any]:
    return {
        "concurrent_viewers": snap.concurrent_viewers,
        "peak_concurrent_viewers": snap.peak_concurrent_viewers,
        "gmv_fen": snap.gmv_fen,
        "orders": snap.orders,
        "top_products": [ProductLive(**asdict(p)) for p in snap.top_products],
    }


async def _room(counters: LiveCounters, base: str, room: str) -> RoomLive:
    session = (await counters.rooms(base)).get(room)
    snap = Snapshot() if session is None else await counters.snapshot(session_scope(session))
    return RoomLive(room=room, session_id=session, **_figures(snap))


class LiveStream(web.StreamResponse):
    """Server-Sent Events of ``read()``'s JSON whenever it changes.

    The streaming runs in :meth:`prepare`, which aiohttp calls after the handler returned:
    by then the request's database transaction is closed, so a subscriber holds no connection.
    """

    def __init__(self, read: Callable[[], Awaitable[bytes]]) -> None:
        super().__init__(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # proxies must pass events on at once
            }
        )
        self._read = read

    async def prepare(self, request: web.BaseRequest) -> Any:
        writer = await super().prepare(request)
        loop = asyncio.get_running_loop()
        start = last_write = loop.time()
        last = b""
        try:
            await self.write(b"retry: 2000\n\n")
            while loop.time() - start < STREAM_SECONDS:
                try:
                    payload = await self._read()
                except Exception as exc:  # Redis away: keep the stream, try again next tick
                    log.warning("live stream: cannot read counters: %s", exc)
                    payload = last
                if payload != last:
                    await self.write(b"event: live\ndata: " + payload + b"\n\n")
                    last, last_write = payload, loop.time()
                elif loop.time() - last_write >= KEEPALIVE_SECONDS:
                    await self.write(b": keep-alive\n\n")
                    last_write = loop.time()
                await asyncio.sleep(POLL_SECONDS)
        except ConnectionResetError:
            pass  # the subscriber went away
        return writer


def _wants_stream(ctx: Context) -> bool:
    return "text/event-stream" in ctx.request.headers.get("Accept", "")


async def base_live(ctx: Context) -> Any:
    base = await resolve_base(ctx)
    counters = ctx.request.app[COUNTERS]
    slug, zone = base.slug, base.timezone

    async def read() -> BaseLive:
        day = local_day(datetime.now(UTC), zone)
        snap = await counters.snapshot(base_scope(slug, day))
        rooms = [await _room(counters, slug, room) for room in sorted(await counters.rooms(slug))]
        return BaseLive(base=slug, day=day, rooms=rooms, **_figures(snap))

    if _wants_stream(ctx):
        return LiveStream(lambda: _json(read))
    return await read()


async def room_live(ctx: Context) -> Any:
    base = await resolve_base(ctx)
    room = await ROOMS.fetch(ctx, base, ctx.path("key"), ROOMS.read)
    counters = ctx.request.app[COUNTERS]
    slug, room_slug = base.slug, room.slug

    async def read() -> RoomLive:
        return await _room(counters, slug, room_slug)

    if _wants_stream(ctx):
        return LiveStream(lambda: _json(read))
    return await read()


async def _json(read: Callable[[], Awaitable[BaseModel]]) -> bytes:
    return orjson.dumps((await read()).model_dump(mode="json"))


STREAM_NOTE = "; send Accept: text/event-stream for Server-Sent Events"
ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/bases/{base}/analytics/live",
        base_live,
        "Live counters of the base's day and its rooms" + STREAM_NOTE,
        "analytics",
        response=BaseLive,
        roles=MANAGERS,
    ),
    Endpoint(
        "GET",
        "/api/v1/bases/{base}/rooms/{key}/live",
        room_live,
        "Live counters of the room's broadcast" + STREAM_NOTE,
        "analytics",
        response=RoomLive,
        roles=ROOM_VIEWERS,
    ),
]
