"""Typed application state keys (``web.AppKey``), shared by the app factory and handlers."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livebase.auth import TokenCache
from livebase.bus import EventBus
from livebase.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB_SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("db_sessions")
BUS = web.AppKey("bus", EventBus)
TOKENS = web.AppKey("token_cache", TokenCache)

# On SQLite, the lock of this process's short write transactions; None on PostgreSQL.
WRITE_QUEUE: web.AppKey[asyncio.Lock | None] = web.AppKey("write_queue")


def write_queue(database_url: str) -> asyncio.Lock | None:
    return asyncio.Lock() if database_url.startswith("sqlite") else None


class WriteTurn:
    """A call's place in this process's queue of SQLite writers, from its first write to its
    commit.

    SQLite has one writer at a time, and a writer waiting for the lock sleeps and polls inside
    SQLite (the busy handler backs off up to 100 ms a try), so a burst of writes (pins while
    live) becomes a convoy. A handler that calls ``Context.writing()`` before its first write
    waits here instead, and gets the lock in arrival order; its reads before that run
    alongside other calls. Only for transactions that wait on nothing outside the database
    between their first write and their commit. On PostgreSQL there is no queue.
    """

    __slots__ = ("_held", "_lock")

    def __init__(self, lock: asyncio.Lock | None) -> None:
        self._lock = lock
        self._held = False

    async def take(self) -> None:
        if self._lock is not None and not self._held:
            await self._lock.acquire()
            self._held = True

    def release(self) -> None:
        if self._lock is not None and self._held:
            self._held = False
            self._lock.release()
