"""The aiohttp application: routes, middlewares, and the resources it owns (engine, bus)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from livebase import __version__
from livebase.api import (
    catalog,
    counters,
    events,
    hls,
    imports,
    live,
    pins_stream,
    player,
    products,
    rankings,
    reports,
    shops,
    tokens,
    webhooks,
)
from livebase.api.analytics_ctx import analytics_ctx
from livebase.api.middleware import Metrics, error_middleware
from livebase.api.openapi import build as build_openapi
from livebase.api.orders import shops_ctx
from livebase.api.pin_writer import pin_writer_ctx
from livebase.api.resources import SPECS
from livebase.api.routing import Endpoint, json_response, wrap
from livebase.api.state import (
    BUS,
    DB_SESSIONS,
    ENGINE,
    SETTINGS,
    TOKENS,
    WRITE_QUEUE,
    write_queue,
)
from livebase.auth import TokenCache
from livebase.bus import create_bus
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.settings import Settings

log = logging.getLogger("livebase.api")
OPENAPI = web.AppKey("openapi", dict)


def all_endpoints() -> list[Endpoint]:
    endpoints = [*catalog.ENDPOINTS, *tokens.ENDPOINTS, *live.ENDPOINTS]
    endpoints += [*events.ENDPOINTS, *counters.ENDPOINTS, *shops.ENDPOINTS]
    endpoints += [*rankings.ENDPOINTS, *imports.ENDPOINTS]
    endpoints += reports.ENDPOINTS
    for spec in SPECS:
        endpoints.extend(spec.endpoints())
    return endpoints


async def healthz(request: web.Request) -> web.Response:
    database = "ok"
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # a health check reports, it does not raise
        log.warning("health check: database unreachable: %s", exc)
        database = "unreachable"
    bus = type(request.app[BUS]).__name__
    status = "ok" if database == "ok" else "degraded"
    return json_response(
        {"status": status, "database": database, "bus": bus, "version": __version__},
        200 if status == "ok" else 503,
    )


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


def create_app(settings: Settings, *, migrate: bool = True) -> web.Application:
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_request_bytes,
        middlewares=[metrics.middleware(), error_middleware],
    )
    app[SETTINGS] = settings
    app[TOKENS] = TokenCache()
    app[WRITE_QUEUE] = write_queue(settings.effective_database_url)
    endpoints = all_endpoints()
    app[OPENAPI] = build_openapi(endpoints)

    async def database(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.effective_database_url)
        if migrate:
            await upgrade(engine)
        app[ENGINE] = engine
        app[DB_SESSIONS] = session_factory(engine)
        yield
        await engine.dispose()

    async def event_bus(app: web.Application) -> AsyncIterator[None]:
        async with create_bus(settings.redis_url) as bus:
            app[BUS] = bus
            yield

    app.cleanup_ctx.extend(
        [database, event_bus, analytics_ctx, shops_ctx, pins_stream.pins_ctx, pin_writer_ctx]
    )
    app.on_shutdown.append(pins_stream.on_shutdown)

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/openapi.json", openapi_json)
    for ep in endpoints:
        app.router.add_route(ep.method, ep.path, wrap(ep))
    hls.add_routes(app)
    products.add_routes(app)
    webhooks.add_routes(app)
    pins_stream.add_routes(app)
    player.add_routes(app)
    return app
