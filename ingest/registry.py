"""The one owner of live rooms: which publish feeds which live session's pipeline.

Every ingest (RTMP, SRT, WHIP) asks the registry to start a publish for a stream key; the
registry alone decides, and alone changes the map of live rooms (under a per-room lock):

- a wrong, revoked or empty key is refused before anything starts;
- a new publish for a room that is already publishing takes over at once (the old connection
  is closed: OBS reconnecting after a network drop must never be locked out);
- a publish that drops leaves its session waiting ``reconnect_grace_seconds``: a publish
  within it continues the same session, pipeline, relays and HLS (with a discontinuity);
  after it, the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ingest.hls import DateRange
from ingest.pipeline import DestinationSpec, OutputFactory, Pipeline, PipelineConfig, SessionInfo
from ingest.retention import prune_recordings
from ingest.rtmp.chunk import Message
from ingest.rtmp.interfaces import Publisher, PublishGrant, PublishRequest
from livebase import stream_keys
from livebase.bus import STREAM_DOMAIN, Event, EventBus
from livebase.credentials import mask
from livebase.db.models import (
    Destination,
    Host,
    LiveSession,
    Pin,
    Product,
    RelayIncident,
    Room,
    SessionStatus,
)

__all__ = ["IngestSink", "LiveRegistry", "LiveRoom"]

log = logging.getLogger("livebase.ingest")
CONSUMER_GROUP = "ingest"


@dataclass(slots=True)
class LiveRoom:
    ref: stream_keys.RoomRef
    session: SessionInfo
    pipeline: Pipeline
    protocol: str
    generation: int = 0
    publisher: Publisher | None = None
    grace: asyncio.Task[None] | None = None
    pins: list[DateRange] = field(default_factory=list)


class IngestSink:
    """What an ingest connection feeds: media into the room's pipeline, then the end."""

    def __init__(self, registry: LiveRegistry, room: LiveRoom, generation: int) -> None:
        self._registry = registry
        self._room = room
        self._generation = generation

    @property
    def label(self) -> str:
        return f"{self._room.ref.base_slug}/{self._room.ref.room_slug}"

    @property
    def current(self) -> bool:
        return self._room.generation == self._generation

    async def on_metadata(self, metadata: Any) -> None:
        """Metadata also arrives in order as a data message; nothing to do here."""

    async def on_media(self, message: Message) -> None:
        if self.current:
            self._room.pipeline.push(message.type_id, message.timestamp, message.payload)

    def push(self, kind: int, timestamp: int, payload: bytes) -> None:
        if self.current:
            self._room.pipeline.push(kind, timestamp, payload)

    async def on_end(self, reason: str) -> None:
        await self._registry.publish_ended(self._room, self._generation, reason)


class LiveRegistry:
    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        bus: EventBus,
        config: PipelineConfig,
        destination_output: OutputFactory,
        *,
        grace_seconds: float = 30.0,
        retention_days: float = 30.0,
    ) -> None:
        self._db = db
        self._bus = bus
        self._config = config
        self._destination_output = destination_output
        self._grace_seconds = grace_seconds
        self._retention_days = retention_days
        self.rooms: dict[int, LiveRoom] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self._outbox: asyncio.Queue[Event] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._bus.ensure_group(STREAM_DOMAIN, CONSUMER_GROUP)
        self._tasks = [
            asyncio.create_task(self._deliver(), name="ingest-outbox"),
            asyncio.create_task(self._follow(), name="ingest-follow"),
            asyncio.create_task(self._retention(), name="ingest-retention"),
        ]

    async def close(self) -> None:
        for room_id in list(self.rooms):
            await self._end_session(room_id, "the service is stopping")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while not self._outbox.empty():
            await self._deliver_one(self._outbox.get_nowait())

    # --- publishing ---------------------------------------------------------------------------

    async def authorize_publish(self, request: PublishRequest) -> PublishGrant | None:
        """The RTMP server's question: may this key publish, and where does the media go."""
        sink = await self.begin(request.stream_key, "rtmp", request.peer, request.publisher)
        return None if sink is None else PublishGrant(sink=sink, label=sink.label)

    async def begin(
        self,
        key: str,
        protocol: str,
        peer: str,
        publisher: Publisher | None = None,
        *,
        room: tuple[str, str] | None = None,
    ) -> IngestSink | None:
        """Start (or resume, or take over) the publish of the room whose key is ``key``;
        None when the key opens no room, or not the ``room`` (base, room slugs) named."""
        async with self._db() as db:
            ref = await stream_keys.room_for_key(db, key)
        if ref is not None and room is not None and room != (ref.base_slug, ref.room_slug):
            ref = None
        if ref is None:
            log.warning(
                "%s publish from %s refused: unknown or revoked stream key %s",
                protocol,
                peer,
                mask(key) if key else "(empty)",
            )
            return None
        async with self._locks.setdefault(ref.room_id, asyncio.Lock()):
            live = self.rooms.get(ref.room_id)
            if live is None:
                live = await self._open_session(ref, protocol)
                self.rooms[ref.room_id] = live
                self._emit(
                    "stream.started", live.ref, live.session, {"protocol": protocol, "peer": peer}
                )
            else:
                if live.grace is not None:
                    live.grace.cancel()
                    live.grace = None
                if live.publisher is not None:
                    log.info(
                        "room %s/%s: a new %s publish from %s takes over",
                        ref.base_slug,
                        ref.room_slug,
                        protocol,
                        peer,
                    )
                    live.publisher.close("taken over by a new publish")
                self._emit(
                    "stream.resumed", live.ref, live.session, {"protocol": protocol, "peer": peer}
                )
            live.generation += 1
            live.publisher = publisher
            live.protocol = protocol
            live.pipeline.begin_publish()
            return IngestSink(self, live, live.generation)

    async def publish_ended(self, room: LiveRoom, generation: int, reason: str) -> None:
        async with self._locks.setdefault(room.ref.room_id, asyncio.Lock()):
            if room.generation != generation or self.rooms.get(room.ref.room_id) is not room:
                return  # a takeover already replaced this publish
            room.publisher = None
            log.info(
                "room %s/%s: publish ended (%s); waiting %.0f s for a reconnect",
                room.ref.base_slug,
                room.ref.room_slug,
                reason,
                self._grace_seconds,
            )
            room.grace = asyncio.create_task(self._grace_then_end(room, generation))

    async def _grace_then_end(self, room: LiveRoom, generation: int) -> None:
        await asyncio.sleep(self._grace_seconds)
        async with self._locks.setdefault(room.ref.room_id, asyncio.Lock()):
            if room.generation != generation or room.publisher is not None:
                return
            room.grace = None
        await self._end_session(room.ref.room_id, "the publish did not come back")

    async def _end_session(self, room_id: int, reason: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is None:
            return
        if room.grace is not None and room.grace is not asyncio.current_task():
            room.grace.cancel()
        if room.publisher is not None:
            room.publisher.close(reason)
        await room.pipeline.stop()
        async with self._db() as db, db.begin():
            session = await db.get(LiveSession, room.session.session_id)
            if session is not None and session.status is SessionStatus.LIVE:
                session.status = SessionStatus.ENDED
                session.ended_at = datetime.now(UTC)
            await db.execute(
                update(Destination)
                .where(
                    or_(
                        Destination.session_id == room.session.session_id,
                        Destination.room_id == room_id,
                    )
                )
                .values(state="idle", state_changed_at=datetime.now(UTC))
            )
        self._emit("stream.ended", room.ref, room.session, {"reason": reason})
        log.info("session %s ended: %s", room.session.session_id, reason)

    # --- sessions and destinations in the database --------------------------------------------

    async def _open_session(self, ref: stream_keys.RoomRef, protocol: str) -> LiveRoom:
        now = datetime.now(UTC)
        async with self._db() as db, db.begin():
            session = await db.scalar(
                select(LiveSession)
                .where(
                    LiveSession.room_id == ref.room_id, LiveSession.status == SessionStatus.PLANNED
                )
                .order_by(
                    LiveSession.scheduled_start.is_(None),
                    LiveSession.scheduled_start,
                    LiveSession.id,
                )
                .limit(1)
            )
            if session is None:
                room = await db.get(Room, ref.room_id)
                host_id = await db.scalar(
                    select(Host.id).where(Host.room_id == ref.room_id).order_by(Host.id).limit(1)
                )
                session = LiveSession(
                    base_id=ref.base_id,
                    room_id=ref.room_id,
                    host_id=host_id,
                    title=f"{room.name_zh if room else ref.room_slug} {now:%Y-%m-%d %H:%M}",
                )
                db.add(session)
            session.status = SessionStatus.LIVE
            session.started_at = now
            await db.flush()
            info = SessionInfo(session.id, ref.base_slug, ref.room_slug, now)
            specs = await self._destinations(db, session.id, ref.room_id)
        pins: list[DateRange] = []
        pipeline = Pipeline(
            info,
            self._config,
            self._destination_output,
            lambda kind, data: self._emit(kind, ref, info, data),
            pins=lambda: pins,
        )
        pipeline.start(specs)
        return LiveRoom(ref, info, pipeline, protocol, pins=pins)

    @staticmethod
    async def _destinations(
        db: AsyncSession, session_id: int, room_id: int
    ) -> list[DestinationSpec]:
        rows = await db.scalars(
            select(Destination)
            .where(
                or_(Destination.session_id == session_id, Destination.room_id == room_id),
                Destination.enabled.is_(True),
            )
            .order_by(Destination.id)
        )
        return [DestinationSpec(d.id, d.name, d.protocol.value, d.url, d.stream_key) for d in rows]

    async def refresh(self, room: LiveRoom) -> None:
        async with self._db() as db:
            specs = await self._destinations(db, room.session.session_id, room.ref.room_id)
            pins = await db.execute(
                select(Pin, Product.title_zh)
                .join(Product, Product.id == Pin.product_id)
                .where(Pin.session_id == room.session.session_id)
                .order_by(Pin.pinned_at)
            )
            room.pins[:] = [
                DateRange(
                    f"pin-{pin.id}",
                    pin.pinned_at,
                    pin.unpinned_at,
                    attributes={"X-PRODUCT-ID": pin.product_id, "X-TITLE": title},
                )
                for pin, title in pins.all()
            ]
        await room.pipeline.set_destinations(specs)

    async def _follow(self) -> None:
        """Follow the API's changes to destinations and pins of live sessions."""
        consumer = f"ingest-{id(self)}"
        while True:
            deliveries = await self._bus.read(
                STREAM_DOMAIN, CONSUMER_GROUP, consumer, count=100, block_ms=1000
            )
            touched: set[int] = set()
            for delivery in deliveries:
                event = delivery.event
                if event.type.startswith(("destination.", "pin.")):
                    for room in self.rooms.values():
                        if event.data.get("session_id") == room.session.session_id or (
                            event.data.get("room_id") == room.ref.room_id
                        ):
                            touched.add(room.ref.room_id)
            for room_id in touched:
                if (live := self.rooms.get(room_id)) is not None:
                    try:
                        await self.refresh(live)
                    except Exception:
                        log.exception("could not apply changes to room %s", room_id)
            if deliveries:
                await self._bus.ack(
                    STREAM_DOMAIN, CONSUMER_GROUP, [d.message_id for d in deliveries]
                )

    async def _retention(self, every: float = 3600.0) -> None:
        """Remove old recordings now and then; never a live session's."""
        while True:
            live = [room.pipeline.root for room in self.rooms.values()]
            try:
                await asyncio.to_thread(
                    prune_recordings, self._config.data_dir / "hls", self._retention_days, live
                )
            except OSError as exc:
                log.warning("recording retention failed: %s", exc)
            await asyncio.sleep(every)

    # --- events -------------------------------------------------------------------------------

    def _emit(
        self, kind: str, ref: stream_keys.RoomRef, session: SessionInfo, data: dict[str, Any]
    ) -> None:
        payload = {"session_id": session.session_id, "room": ref.room_slug, **data}
        self._outbox.put_nowait(Event(type=kind, base=ref.base_slug, data=payload))

    async def _deliver(self) -> None:
        while True:
            event = await self._outbox.get()
            try:
                await self._deliver_one(event)
            except Exception:
                log.exception("could not deliver a %s event", event.type)

    async def _deliver_one(self, event: Event) -> None:
        data = event.data
        if event.type == "destination.state":
            async with self._db() as db, db.begin():
                await db.execute(
                    update(Destination)
                    .where(Destination.id == data["destination_id"])
                    .values(
                        state=data["state"],
                        last_error=data["error"][:500],
                        state_changed_at=datetime.now(UTC),
                    )
                )
                if data["state"] in ("retrying", "failed"):
                    await _record_incident(db, data)
        await self._bus.publish(STREAM_DOMAIN, event)


async def _record_incident(db: AsyncSession, data: dict[str, Any]) -> None:
    """Keep a relay break past the session's end (the daily report lists them).

    One row per session and destination; events are delivered one at a time by a single
    task, so reading then writing the row cannot race.
    """
    now = datetime.now(UTC)
    dest = await db.get(Destination, data["destination_id"])
    if dest is None:
        return
    key = (data["session_id"], dest.id)
    incident = await db.get(RelayIncident, key)
    if incident is None:
        incident = RelayIncident(
            session_id=key[0], destination_id=key[1], base_id=dest.base_id, retries=0,
            failed=False, first_at=now,
        )  # fmt: skip
        db.add(incident)
    if data["state"] == "failed":
        incident.failed = True
    else:
        incident.retries += 1
    incident.last_error = data["error"][:500]
    incident.last_at = now
