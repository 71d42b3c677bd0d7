"""Write yesterday's report of every base once a day, at ``report_hour`` in its time zone.

:func:`due` is the whole rule and is pure; :class:`DailyReports` applies it on a clock that
tests inject. A report whose files all exist is done, so running again (a restart, two
checks in the same hour) writes nothing, and a service started after the hour still writes
the day's missing reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.report import build_daily_report, render
from analytics.report.files import report_path, write_atomic
from analytics.report.i18n import Lang
from livebase.db.models import Base

log = logging.getLogger("analytics.report")
SCHEDULED_FORMATS = ("html", "xlsx", "json")


def due(now: datetime, bases: Sequence[tuple[str, str]], hour: int) -> list[tuple[str, date]]:
    """``(base, day)`` of each base whose local clock has passed ``hour``: its yesterday."""
    out = []
    for slug, timezone in bases:
        local = now.astimezone(ZoneInfo(timezone))
        if local.hour >= hour:
            out.append((slug, local.date() - timedelta(days=1)))
    return out


class DailyReports:
    """Writes the due reports under ``data_dir/reports``; owns its background task."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        data_dir: Path,
        hour: int,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        check_seconds: float = 60.0,
        lang: Lang = "zh",
    ) -> None:
        self._sessions = sessions
        self._data_dir = data_dir
        self._hour = hour
        self._clock = clock
        self._check_seconds = check_seconds
        self._lang: Lang = lang
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[Path]:
        """Write what is due and missing now; returns the files written."""
        now = self._clock()
        async with self._sessions() as db:
            bases = [(b.slug, b.timezone) for b in await db.scalars(select(Base).order_by(Base.id))]
        written: list[Path] = []
        for slug, day in due(now, bases, self._hour):
            paths = {f: report_path(self._data_dir, slug, day, f) for f in SCHEDULED_FORMATS}
            missing = {f: p for f, p in paths.items() if not p.exists()}
            if not missing:
                continue
            async with self._sessions() as db:
                report = await build_daily_report(db, day, base=slug, as_of=now)
            for fmt, path in missing.items():
                await asyncio.to_thread(write_atomic, path, render(report, fmt, self._lang).body)
                written.append(path)
            log.info("daily report of %s for %s written to %s", slug, day, paths["html"].parent)
        return written

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a bad day must not stop tomorrow's reports
                log.exception("daily reports: could not write")
            await asyncio.sleep(self._check_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="daily-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
