"""Wiring: start the whole service (HTTP API, HLS and the ingest listeners) and stop it
cleanly, leaving no child process behind."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from analytics.pipeline import AnalyticsPipeline
from analytics.report.schedule import DailyReports
from ingest.destinations import destination_output
from ingest.outputs.hls import Rung
from ingest.pipeline import PipelineConfig
from ingest.process import kill_all
from ingest.registry import LiveRegistry
from ingest.rtmp import RtmpServer, RtmpServerConfig
from ingest.srt import SrtServer
from ingest.whip import WHIP, add_whip_routes
from livebase.api.analytics_ctx import COUNTERS
from livebase.api.app import create_app
from livebase.api.state import BUS, DB_SESSIONS
from livebase.seed import seed_catalogue
from livebase.settings import Settings

log = logging.getLogger("livebase")


@dataclass(slots=True)
class Running:
    app: web.Application
    http_url: str
    rtmp_url: str
    registry: LiveRegistry


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        data_dir=settings.data_dir.resolve(),
        ffmpeg=settings.ffmpeg_path(),
        segment_seconds=settings.hls_segment_seconds,
        window=settings.hls_window,
        ladder=tuple(
            Rung(r.name, r.height, r.video_kbps, r.audio_kbps) for r in settings.hls_ladder
        ),
        stats_seconds=settings.ingest_stats_seconds,
    )


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[Running]:
    """Run the API (migrated and seeded) and the ingest for the duration of the block."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    # WHIP is served by the API's HTTP server; the registry it needs exists only once the app
    # has started (it uses the app's database and bus), hence the late binding.
    live: list[LiveRegistry] = []
    add_whip_routes(app, lambda: live[0], ice_servers=settings.whip_ice_servers)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    registry: LiveRegistry | None = None
    analytics: AnalyticsPipeline | None = None
    reports: DailyReports | None = None
    rtmp: RtmpServer | None = None
    srt: SrtServer | None = None
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
        registry = LiveRegistry(
            app[DB_SESSIONS],
            app[BUS],
            pipeline_config(settings),
            functools.partial(destination_output, ffmpeg=settings.ffmpeg_path()),
            grace_seconds=settings.reconnect_grace_seconds,
            retention_days=settings.recording_retention_days,
        )
        await registry.start()
        live.append(registry)
        # Analytics consumers: live counters, rollups and the Parquet archive.
        analytics = AnalyticsPipeline(
            app[BUS],
            app[DB_SESSIONS],
            app[COUNTERS],
            settings.data_dir.resolve(),
            timedelta(hours=settings.analytics_lateness_hours),
        )
        await analytics.start()
        reports = DailyReports(app[DB_SESSIONS], settings.data_dir.resolve(), settings.report_hour)
        reports.start()
        rtmp = RtmpServer(
            registry, RtmpServerConfig(host=settings.listen_host, port=settings.rtmp_port)
        )
        await rtmp.start()
        srt = SrtServer(
            registry,
            settings.srt_port,
            host=settings.listen_host,
            ffmpeg=settings.ffmpeg_path(),
            sleep_after=settings.srt_sleep_after_seconds,
        )
        await srt.start()
        site = web.TCPSite(runner, settings.listen_host, settings.http_port)
        await site.start()
        http_url = f"http://{settings.listen_host}:{settings.http_port}"
        rtmp_url = f"rtmp://{settings.listen_host}:{rtmp.port}/live"
        log.info("HTTP API listening on %s (OpenAPI at %s/openapi.json)", http_url, http_url)
        log.info("RTMP ingest listening on %s", rtmp_url)
        log.info("SRT ingest listening on srt://%s:%s", settings.listen_host, srt.port)
        yield Running(app=app, http_url=http_url, rtmp_url=rtmp_url, registry=registry)
    finally:
        if rtmp is not None:
            await rtmp.stop()
        if srt is not None:
            await srt.stop()
        if reports is not None:
            await reports.stop()
        if analytics is not None:
            await analytics.stop()
        # WHIP publishes end before the pipelines they feed.
        await app[WHIP].close_all()
        if registry is not None:
            await registry.close()
        await kill_all()
        await runner.cleanup()


@contextlib.contextmanager
def stop_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM (Ctrl-C) while the block runs, so the caller can
    shut down in order instead of being interrupted wherever it is."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def serve(settings: Settings) -> None:
    with stop_signals() as stop:
        async with running_service(settings):
            # What start-up made lives as long as the process: freeze it out of the
            # collector's passes, which under load would walk it again and again (measured in
            # docs/benchmarks.md, analytics ingest).
            gc.freeze()
            await stop.wait()
            log.info("stopping")
