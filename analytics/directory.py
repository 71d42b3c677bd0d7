"""Which base, room, host and theme a live session belongs to, cached for the hot paths.

Events name their session by id; ingest checks the id against the room the event claims, and
the consumers need the session's host, theme and base to roll it up. Both look sessions up in
batches here, so a batch of a thousand events costs at most one query, usually none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import Base, LiveSession, Room

MAX_DB_ID = 2**31 - 1  # ids are 32-bit in the database; a larger one cannot exist


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: int
    base_id: int
    base: str
    room_id: int
    room: str
    host_id: int | None
    theme_id: int | None
    timezone: str


class SessionDirectory:
    """A time-limited cache of :class:`SessionInfo` in front of the database.

    Only found sessions are cached: a session created a moment ago must be found on the next
    batch. ``ttl`` bounds how long a change (a session handed to another host) goes unseen.
    """

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: dict[int, tuple[float, SessionInfo]] = {}

    def cached(self, session_ids: Iterable[int]) -> dict[int, SessionInfo] | None:
        """:meth:`lookup` when every one of ``session_ids`` is in the cache, without a
        database session; None when one is not."""
        now = self._clock()
        found: dict[int, SessionInfo] = {}
        for session_id in set(session_ids):
            cached = self._cache.get(session_id)
            if cached is None or cached[0] <= now:
                return None
            found[session_id] = cached[1]
        return found

    async def lookup(self, db: AsyncSession, session_ids: Iterable[int]) -> dict[int, SessionInfo]:
        """The sessions among ``session_ids`` that exist; missing ones are left out."""
        now = self._clock()
        found: dict[int, SessionInfo] = {}
        missing: set[int] = set()
        for session_id in set(session_ids):
            cached = self._cache.get(session_id)
            if cached is not None and cached[0] > now:
                found[session_id] = cached[1]
            elif 1 <= session_id <= MAX_DB_ID:
                missing.add(session_id)
        if missing:
            rows = await db.execute(
                select(
                    LiveSession.id,
                    LiveSession.base_id,
                    Base.slug,
                    LiveSession.room_id,
                    Room.slug,
                    LiveSession.host_id,
                    LiveSession.theme_id,
                    Base.timezone,
                )
                .join(Room, Room.id == LiveSession.room_id)
                .join(Base, Base.id == LiveSession.base_id)
                .where(LiveSession.id.in_(sorted(missing)))
            )
            if len(self._cache) + len(missing) > self._max_entries:
                self._cache.clear()
            for row in rows:
                info = SessionInfo(*row)
                found[info.session_id] = info
                self._cache[info.session_id] = (now + self._ttl, info)
        return found
