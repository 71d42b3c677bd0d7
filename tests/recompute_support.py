"""A day of archive rows of every kind, the per-event count of it, the rollup tables and the
figures the readers (daily reports, rankings) show from them."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from events_support import LiveRef
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.archive import SCHEMA, day_dir
from analytics.directory import SessionDirectory
from analytics.leaderboard import ranking
from analytics.members import read_members
from analytics.models import (
    DayCount,
    DayMember,
    MinuteRollup,
    PaidOrder,
    Presence,
    ProcessedEvent,
    Refund,
    SessionSpan,
    SetMember,
)
from analytics.periods import CITY_TIMEZONE, Period
from analytics.report.build import build_daily_report
from analytics.rollup_store import apply_events
from analytics.schemas import AnalyticsEvent, EventSchemaError, from_bus_event
from livebase.bus import Event
from livebase.db.models import Base

TABLES = (
    MinuteRollup,
    Presence,
    ProcessedEvent,
    PaidOrder,
    Refund,
    SetMember,
    SessionSpan,
    DayMember,
    DayCount,
)


def read_day(data_dir: Path, day: date) -> list[tuple[Event, datetime]]:
    """Every archived event of ``day`` with when it was received, repeats included."""
    out: list[tuple[Event, datetime]] = []
    for path in sorted(day_dir(data_dir, day).glob("*.parquet")):
        for row in pq.read_table(path, schema=SCHEMA).to_pylist():
            event = Event(
                type=row["type"],
                id=row["event_id"],
                occurred_at=row["occurred_at"],
                base=row["base"],
                version=row["version"],
                data=orjson.loads(row["data"]),
            )
            out.append((event, row["received_at"]))
    return out


async def count_per_event(
    db: AsyncSession, data_dir: Path, day: date, lateness: timedelta
) -> tuple[int, int]:
    """The day's archive through the live consumer's code, event by event, into ``db``'s
    transaction: ``(counted, skipped)``, as ``recompute_day`` reports them."""
    events: list[AnalyticsEvent] = []
    skipped = 0
    for bus_event, received in read_day(data_dir, day):
        try:
            event = from_bus_event(bus_event, now=received)
        except EventSchemaError:
            skipped += 1
            continue
        if event.occurred_at < received - lateness:
            skipped += 1
            continue
        events.append(event)
    known = await SessionDirectory().lookup(db, {e.session_id for e in events})
    return (await apply_events(db, events, known)).counted, skipped


async def tables(db: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every rollup table, sorted; the session sets' members as
    :func:`~analytics.members.read_members` gives them, rows and blocks alike."""
    out = {}
    for model in TABLES:
        if model is SetMember:
            found = await read_members(db)
            members = zip(*(found[c].to_pylist() for c in found.column_names), strict=True)
            out[model.__tablename__] = sorted(members, key=repr)
            continue
        rows = (await db.scalars(select(model))).all()
        names = [c.key for c in model.__table__.columns]  # type: ignore[attr-defined]
        out[model.__tablename__] = sorted(
            (tuple(getattr(r, n) for n in names) for r in rows), key=repr
        )
    return out


async def open_day_rows(db: AsyncSession, horizon: datetime) -> list[tuple[Any, ...]]:
    """The day-set member rows of local days that end after ``horizon`` (still open)."""
    zones = {b: zone for b, zone in await db.execute(select(Base.id, Base.timezone))}
    rows = (await tables(db))[DayMember.__tablename__]

    def end(base_id: int, day: date) -> datetime:
        return datetime.combine(day + timedelta(days=1), time(0), ZoneInfo(zones[base_id]))

    return [r for r in rows if end(r[0], r[1]) > horizon]


async def figures(db: AsyncSession, days: list[date], as_of: datetime) -> dict[str, Any]:
    """What the readers show for the local ``days`` (and their weeks): the daily report of
    every base and of the city, and the host and theme rankings of every base and the city."""
    out: dict[str, Any] = {}
    bases = [tuple(row) for row in await db.execute(select(Base.id, Base.slug, Base.timezone))]
    for day in days:
        for base_id, slug, zone in [*bases, (None, None, CITY_TIMEZONE)]:
            report = await build_daily_report(db, day, base=slug, as_of=as_of)
            out[f"report {slug} {day}"] = dataclasses.asdict(report)
            for kind in ("day", "week"):
                for entity in ("host", "theme"):
                    period = Period.of(kind, day, zone)  # type: ignore[arg-type]
                    found = await ranking(
                        db, entity, period, base_id=base_id, min_uv=1, as_of=as_of
                    )  # type: ignore[arg-type]
                    out[f"{entity}s {slug} {kind} {day}"] = found.to_json(orient="records")
    return out


class Day:
    """Archive rows of one day, written as Parquet files the way the archive writes them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._n = 0

    def add(
        self,
        kind: str,
        where: LiveRef | None,
        at: datetime,
        *,
        delay: timedelta = timedelta(seconds=2),
        event_id: str | None = None,
        version: int = 1,
        **data: Any,
    ) -> str:
        self._n += 1
        event_id = event_id or f"e{self._n}"
        if where is not None:
            data = {"room": where.room, "session_id": where.id, **data}
        self.rows.append(
            {
                "event_id": event_id,
                "type": kind,
                "version": version,
                "occurred_at": at,
                "base": where.base if where is not None else "haifeng",
                "data": orjson.dumps(data).decode(),
                "received_at": at + delay,
            }
        )
        return event_id

    def again(self, index: int = -1) -> None:
        """The row at ``index`` written once more, as redelivery leaves it."""
        self.rows.append(dict(self.rows[index]))

    def write(self, data_dir: Path, day: date, files: int = 3) -> None:
        folder = day_dir(data_dir, day)
        folder.mkdir(parents=True, exist_ok=True)
        size = -(-len(self.rows) // files)
        for part in range(files):
            rows = self.rows[part * size : (part + 1) * size]
            table = pa.Table.from_pylist(rows, schema=SCHEMA)
            pq.write_table(table, folder / f"part-{part:03d}.parquet", compression="zstd")
