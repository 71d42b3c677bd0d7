"""Viewers counted from HLS playlist requests, for players that send no heartbeats.

A player fetches its playlist every segment (2 s), so requests are coalesced per session and
viewer: ``viewer.joined`` on the first request, ``viewer.heartbeat`` at most every
:data:`BEAT_SECONDS` carrying the seconds since the previous one, and ``viewer.left`` once
no request came for :data:`GONE_SECONDS`. :class:`ViewerTracker` is that rule, pure and
synchronous (the clock is an argument); :class:`ViewerFeed` publishes what it says, keeping
events in a bounded outbox while the bus is away.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from analytics.constants import STREAM_ANALYTICS
from analytics.schemas import MAX_WATCH_SECONDS, parse_event, to_bus_event
from livebase.bus import BusError, EventBus

log = logging.getLogger("analytics.viewers")
BEAT_SECONDS = 30
GONE_SECONDS = 60
SOURCE = "player"
OUTBOX_LIMIT = 100_000


@dataclass(slots=True)
class _Seen:
    base: str
    room: str
    last_seen: datetime
    last_beat: datetime


class ViewerTracker:
    def __init__(self) -> None:
        self._viewers: dict[tuple[int, str], _Seen] = {}
        self._events: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._viewers)

    def _emit(
        self, kind: str, key: tuple[int, str], seen: _Seen, at: datetime, **extra: Any
    ) -> None:
        self._events.append(
            {
                "type": kind,
                "event_id": uuid.uuid4().hex,
                "occurred_at": at,
                "base": seen.base,
                "room": seen.room,
                "session_id": key[0],
                "viewer_id": key[1],
                "source": SOURCE,
                **extra,
            }
        )

    def seen(self, base: str, room: str, session_id: int, viewer_id: str, now: datetime) -> None:
        key = (session_id, viewer_id)
        found = self._viewers.get(key)
        if found is None:
            found = self._viewers[key] = _Seen(base, room, now, now)
            self._emit("viewer.joined", key, found, now)
            return
        found.last_seen = max(found.last_seen, now)
        elapsed = int((now - found.last_beat).total_seconds())
        if elapsed >= BEAT_SECONDS:
            watched = min(elapsed, MAX_WATCH_SECONDS)
            self._emit("viewer.heartbeat", key, found, now, watch_seconds=watched)
            found.last_beat = now

    def sweep(self, now: datetime) -> None:
        """Viewers with no request for :data:`GONE_SECONDS` have left (at their last request)."""
        for key, found in list(self._viewers.items()):
            if (now - found.last_seen).total_seconds() > GONE_SECONDS:
                watched = int((found.last_seen - found.last_beat).total_seconds())
                watched = max(0, min(watched, MAX_WATCH_SECONDS))
                self._emit("viewer.left", key, found, found.last_seen, watch_seconds=watched)
                del self._viewers[key]

    def drain(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events


class ViewerFeed:
    """Publishes the tracker's events every ``interval`` seconds; owns its task."""

    def __init__(self, bus: EventBus, *, interval: float = 1.0) -> None:
        self.tracker = ViewerTracker()
        self._bus = bus
        self._interval = interval
        self._outbox: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hls-viewers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None
        await self.flush(datetime.now(UTC))

    async def flush(self, now: datetime) -> None:
        self.tracker.sweep(now)
        self._outbox.extend(self.tracker.drain())
        overflow = len(self._outbox) - OUTBOX_LIMIT
        if overflow > 0:
            # A long bus outage: keep the newest; viewer counts are estimates anyway.
            for _ in range(overflow):
                self._outbox.popleft()
            self.dropped += overflow
            log.warning("HLS viewers: bus away too long, %d viewer events dropped", overflow)
        if not self._outbox:
            return
        batch = list(self._outbox)
        events = [to_bus_event(parse_event(raw, now=now)) for raw in batch]
        try:
            await self._bus.publish_many(STREAM_ANALYTICS, events)
        except BusError as exc:
            log.warning("HLS viewers: cannot publish %d events yet: %s", len(batch), exc)
            return
        for _ in batch:
            self._outbox.popleft()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush(datetime.now(UTC))
