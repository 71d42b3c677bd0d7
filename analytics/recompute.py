"""Rebuild one UTC day's rollups from the Parquet archive (after a fix to the counting rules).

In one transaction: everything the day's events had contributed is removed (minute sums,
presence, the ledger, orders, refunds, set members first seen that day), then the archived
events are counted again through the same code as the live consumer. Session bounds are kept:
they merge by minimum and maximum, so counting again cannot move them.

A day still inside the lateness window may yet receive events the archive has not written,
so it is refused unless ``force`` is given (with the consumers stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.archive import day_bounds, read_day
from analytics.directory import SessionDirectory
from analytics.rollup_store import apply_events, clear_span
from analytics.schemas import AnalyticsEvent, EventSchemaError, from_bus_event

BATCH = 2_000


@dataclass(frozen=True, slots=True)
class Recomputed:
    day: date
    archived: int  #: rows read, repeats included
    counted: int  #: distinct events counted
    skipped: int  #: rows that are not valid events, or arrived past the lateness window


async def recompute_day(
    db: async_sessionmaker[AsyncSession],
    data_dir: Path,
    day: date,
    *,
    lateness: timedelta,
    force: bool = False,
) -> Recomputed:
    start, end = day_bounds(day)
    if not force and end + lateness > datetime.now(UTC):
        raise ValueError(
            f"{day} can still receive events (lateness window {lateness}); stop the consumers"
            " and pass force=True to recompute it anyway"
        )
    rows = read_day(data_dir, day)
    events: list[AnalyticsEvent] = []
    skipped = 0
    for bus_event, received in rows:
        try:
            event = from_bus_event(bus_event, now=received)
        except EventSchemaError:
            skipped += 1
            continue
        if event.occurred_at < received - lateness:
            skipped += 1
            continue
        events.append(event)
    directory = SessionDirectory()
    counted = 0
    async with db() as session, session.begin():
        await clear_span(session, start, end)
        for first in range(0, len(events), BATCH):
            chunk = events[first : first + BATCH]
            known = await directory.lookup(session, {e.session_id for e in chunk})
            counted += (await apply_events(session, chunk, known)).counted
    return Recomputed(day, len(rows), counted, skipped)
