"""``GET /live/{base}/{room}/pins``: the product pinned in a room, pushed to its viewers (SSE).

Public, like the player it feeds. The first event is the current pin (or ``null``), then one
event per change. Events are ``event: pin`` with ``data`` the product card (id, titles,
price, first image, GI badge) or ``null``.

One hub per process follows the bus (``pin.created``, ``pin.removed``, ``session.*`` on the
``domain`` stream, in a consumer group of its own so that every process sees every event),
reads the room's card once per change and hands it to every viewer of that room: the
database sees one query per change, not one per viewer. A slow viewer only ever gets the
latest card (older ones are replaced, not queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livebase.api.state import BUS, DB_SESSIONS
from livebase.bus import STREAM_DOMAIN, BusError, Event, EventBus
from livebase.db.models import Base, LiveSession, Pin, Product, Room, SessionStatus, utcnow
from livebase.errors import NotFound
from livebase.listings import store

log = logging.getLogger("livebase.api.pins")
PATH = "/live/{base}/{room}/pins"
HEARTBEAT_SECONDS = 15.0
WATCHED = frozenset({"pin.created", "pin.removed", "session.live", "session.ended"})
RoomKey = tuple[str, str]


def frame(card: dict[str, Any] | None) -> bytes:
    return b"event: pin\ndata: " + orjson.dumps(card) + b"\n\n"


def product_card(pin: Pin, product: Product) -> dict[str, Any]:
    claim = store.claim_of(product)
    badge = None
    if claim is not None and not store.gi_problems(claim) and product.gi is not None:
        badge = {
            "system": product.gi.system.value,
            "registered_name": product.gi.registered_name,
            "registration_number": product.gi.registration_number,
        }
    return {
        "pin_id": pin.id,
        "session_id": pin.session_id,
        "pinned_at": pin.pinned_at.isoformat(),
        "product": {
            "id": product.id,
            "title_zh": product.title_zh,
            "title_en": product.title_en,
            "price_fen": product.price_fen,
            "currency": product.currency,
            "image": product.images[0].url if product.images else None,
            "gi": badge,
        },
    }


async def current_card(db: AsyncSession, room_id: int) -> dict[str, Any] | None:
    pin = await db.scalar(
        select(Pin)
        .join(LiveSession, LiveSession.id == Pin.session_id)
        .where(
            LiveSession.room_id == room_id,
            LiveSession.status == SessionStatus.LIVE,
            Pin.unpinned_at.is_(None),
        )
        .order_by(Pin.pinned_at.desc(), Pin.id.desc())
        .limit(1)
    )
    if pin is None:
        return None
    product = await db.get(Product, pin.product_id)
    return None if product is None else product_card(pin, product)


@dataclass(eq=False)
class Viewer:
    latest: bytes
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, data: bytes) -> None:
        self.latest = data
        self.changed.set()


@dataclass
class RoomFeed:
    room_id: int
    frame: bytes | None = None  # None: not read since the last change
    version: int = 0
    viewers: set[Viewer] = field(default_factory=set)


class PinHub:
    """The one follower of pin events in this process, and the viewers it feeds."""

    def __init__(self, bus: EventBus, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._bus = bus
        self._sessions = sessions
        # A group per process start: each process must see every event, not a share of them.
        self._group = f"pins-sse-{uuid.uuid4().hex[:12]}"
        self._rooms: dict[RoomKey, RoomFeed] = {}
        # Sessions seen in events and their room: pins come in bursts while live, and the
        # room of a session is settled once it is live.
        self._session_rooms: dict[int, RoomKey] = {}
        self._since = utcnow() - timedelta(seconds=5)
        self._task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def start(self) -> None:
        await self._bus.ensure_group(STREAM_DOMAIN, self._group)
        self._task = asyncio.create_task(self._follow(), name="pins-sse-follow")

    def end_streams(self) -> None:
        self.closed.set()
        for feed in self._rooms.values():
            for viewer in feed.viewers:
                viewer.changed.set()

    async def close(self) -> None:
        self.end_streams()
        if self._task is not None:
            self._task.cancel()
            # wait() does not re-raise the task's cancellation, and still lets ours through.
            await asyncio.wait([self._task])
            self._task = None

    async def _follow(self) -> None:
        while True:
            try:
                deliveries = await self._bus.read(
                    STREAM_DOMAIN, self._group, "hub", count=500, block_ms=1000
                )
            except BusError as exc:
                log.warning("pins feed: cannot read the bus (%s); retrying in 1 s", exc)
                await asyncio.sleep(1.0)
                continue
            for delivery in deliveries:
                try:
                    await self._apply(delivery.event)
                except Exception:  # one bad event must not stop the feed for every viewer
                    log.exception("pins feed: event %s could not be applied", delivery.event.id)
            if deliveries:
                with contextlib.suppress(BusError):
                    await self._bus.ack(
                        STREAM_DOMAIN, self._group, [d.message_id for d in deliveries]
                    )

    async def _apply(self, event: Event) -> None:
        # Events from before this process started are history its viewers read afresh.
        if event.type not in WATCHED or event.occurred_at < self._since:
            return
        session_id = event.data.get("session_id")
        if not isinstance(session_id, int):
            return
        if event.type.startswith("session."):
            self._session_rooms.pop(session_id, None)  # it may have moved before going live
        async with self._sessions() as db:
            key = self._session_rooms.get(session_id)
            if key is None:
                row = (
                    await db.execute(
                        select(Base.slug, Room.slug)
                        .join(Room, Room.base_id == Base.id)
                        .join(LiveSession, LiveSession.room_id == Room.id)
                        .where(LiveSession.id == session_id)
                    )
                ).first()
                if row is None:
                    return
                key = self._session_rooms[session_id] = (row[0], row[1])
            feed = self._rooms.get(key)
            if feed is None:
                return  # nobody watches this room here
            shown = feed.frame
            feed.version += 1
            feed.frame = None
            if not feed.viewers:
                return
            feed.frame = frame(await current_card(db, feed.room_id))
        if feed.frame == shown:
            return  # the viewers have this card already (a session going live without a pin)
        for viewer in feed.viewers:
            viewer.offer(feed.frame)

    async def subscribe(self, key: RoomKey, room_id: int) -> Viewer:
        feed = self._rooms.setdefault(key, RoomFeed(room_id))
        viewer = Viewer(b"")
        feed.viewers.add(viewer)
        if feed.frame is None:
            version = feed.version
            async with self._sessions() as db:
                data = frame(await current_card(db, room_id))
            if feed.version == version:  # no change was applied while we read
                feed.frame = data
            else:
                data = feed.frame or data
            viewer.latest = data
        else:
            viewer.latest = feed.frame
        return viewer

    def unsubscribe(self, key: RoomKey, viewer: Viewer) -> None:
        feed = self._rooms.get(key)
        if feed is not None:
            feed.viewers.discard(viewer)

    def viewer_count(self) -> int:
        return sum(len(feed.viewers) for feed in self._rooms.values())


PINS = web.AppKey("pin_hub", PinHub)


async def pins_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the hub and its bus follower; registered in ``app.cleanup_ctx``."""
    hub = PinHub(app[BUS], app[DB_SESSIONS])
    await hub.start()
    app[PINS] = hub
    yield
    await hub.close()


async def on_shutdown(app: web.Application) -> None:
    """End every open stream, so that stopping the server does not wait for viewers."""
    if PINS in app:
        app[PINS].end_streams()


async def _room(request: web.Request) -> tuple[RoomKey, int]:
    base_slug, room_slug = request.match_info["base"], request.match_info["room"]
    async with request.app[DB_SESSIONS]() as db:
        room_id = await db.scalar(
            select(Room.id)
            .join(Base, Base.id == Room.base_id)
            .where(Base.slug == base_slug, Room.slug == room_slug)
        )
    if room_id is None:
        raise NotFound(f"no room {room_slug!r} in base {base_slug!r}")
    return (base_slug, room_slug), room_id


async def stream(request: web.Request) -> web.StreamResponse:
    key, room_id = await _room(request)
    hub = request.app[PINS]
    viewer = await hub.subscribe(key, room_id)
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a buffering proxy would hold events back
                "Access-Control-Allow-Origin": "*",
            }
        )
        await response.prepare(request)
        await response.write(b"retry: 1000\n\n")
        while not hub.closed.is_set():
            if viewer.changed.is_set() or viewer.latest:
                viewer.changed.clear()
                data, viewer.latest = viewer.latest, b""
                if data:
                    await response.write(data)
                continue
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    await viewer.changed.wait()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:
        pass  # the viewer left; nothing to answer
    finally:
        hub.unsubscribe(key, viewer)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, stream)
