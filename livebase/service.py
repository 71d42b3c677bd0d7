"""Wiring: start the whole service (HTTP API and ingest listeners) and stop it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from livebase.api.app import create_app
from livebase.api.state import DB_SESSIONS
from livebase.seed import seed_catalogue
from livebase.settings import Settings

log = logging.getLogger("livebase")


@dataclass(slots=True)
class Running:
    app: web.Application
    http_url: str


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Running]:
    """Run the API on its port (migrated and seeded) for the duration of the block."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        async with app[DB_SESSIONS]() as db, db.begin():
            report = await seed_catalogue(db, settings)
        if report.bases or report.rooms or report.themes:
            log.info(
                "created %d bases, %d rooms and %d themes from the configuration",
                report.bases,
                report.rooms,
                report.themes,
            )
        site = web.TCPSite(runner, settings.listen_host, settings.http_port)
        await site.start()
        url = f"http://{settings.listen_host}:{settings.http_port}"
        log.info("HTTP API listening on %s (OpenAPI at %s/openapi.json)", url, url)
        yield Running(app=app, http_url=url)
    finally:
        await runner.cleanup()


async def wait_for_stop_signal() -> None:
    """Return on SIGINT or SIGTERM (Ctrl-C), so the caller can shut down in order."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve(settings: Settings) -> None:
    async with running_service(settings):
        await wait_for_stop_signal()
        log.info("stopping")
