"""Analytics state of the API process: typed app keys and the context that owns them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from analytics.directory import SessionDirectory
from analytics.live import LiveCounters, MemoryCounters
from analytics.live_redis import RedisCounters
from analytics.viewers import ViewerFeed
from livebase.api.state import BUS, SETTINGS

DIRECTORY = web.AppKey("analytics_directory", SessionDirectory)
COUNTERS = web.AppKey("analytics_counters", LiveCounters)
VIEWERS = web.AppKey("analytics_hls_viewers", ViewerFeed)


async def analytics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the analytics helpers of the API; registered in ``app.cleanup_ctx``.

    The counters live in Redis when the bus does, so every process sees the same figures;
    on the embedded default they live here, beside the in-process bus and its consumers.
    """
    settings = app[SETTINGS]
    app[DIRECTORY] = SessionDirectory()
    counters = RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
    app[COUNTERS] = counters
    viewers = app[VIEWERS] = ViewerFeed(app[BUS])
    viewers.start()
    yield
    await viewers.stop()
    await counters.close()
