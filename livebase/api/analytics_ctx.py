"""Analytics state of the API process: typed app keys and the context that owns them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from analytics.directory import SessionDirectory

DIRECTORY = web.AppKey("analytics_directory", SessionDirectory)


async def analytics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the analytics helpers of the API; registered in ``app.cleanup_ctx``."""
    app[DIRECTORY] = SessionDirectory()
    yield
