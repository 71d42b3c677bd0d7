"""Typed application state keys (``web.AppKey``), shared by the app factory and handlers."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livebase.bus import EventBus
from livebase.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
DB_SESSIONS: web.AppKey[async_sessionmaker[AsyncSession]] = web.AppKey("db_sessions")
BUS = web.AppKey("bus", EventBus)
