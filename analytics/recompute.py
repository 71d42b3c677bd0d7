"""Rebuild one UTC day's rollups from the Parquet archive (after a fix to the counting rules).

In one transaction: everything the day's events had contributed is removed (minute sums,
presence, the ledger, orders, refunds, set members first seen that day), then the archived
events are counted again by the live consumer's rules, column-wise: the archive is read in
Parquet batches and checked on columns (:mod:`analytics.day_columns`), and the rollups come
from group-bys and go to the database in bulk (:mod:`analytics.day_rollups`). Session bounds
are kept: they merge by minimum and maximum, so counting again cannot move them. The day
sets of the local days the UTC day touches are derived from the session sets again.

A *sealed* day, one that ended before the prune's horizon
(:func:`~analytics.day_sealed.seal_of`), can receive no event any more: it is written
without ledger and presence rows, and with day-set counters alone where the local day is
sealed too (:mod:`analytics.day_sealed`). The readers see the same figures either way.

A day still inside the lateness window may yet receive events the archive has not written,
so it is refused unless ``force`` is given (with the consumers stopped). The local days a day
touches reach into days the consumers still count: the recompute holds their day-set locks
(:func:`~analytics.day_sets.lock_days`) from its start, so a consumer storing members of those
days waits for it to commit, and it for the consumers already storing some.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.archive import day_bounds
from analytics.day_columns import read_checked
from analytics.day_rollups import write_day
from analytics.day_sealed import seal_of
from analytics.day_sets import lock_days, span_days
from analytics.directory import SessionDirectory
from analytics.rollup_store import clear_span


def _reusing_pool() -> None:
    """Make jemalloc Arrow's allocator for the process, where this pyarrow has it.

    A recompute allocates and frees gigabytes of columns in a few seconds. mimalloc, Arrow's
    default, hands freed pages back to the kernel within milliseconds and then faults in fresh
    zeroed ones: at 2 million events that was 2.9 s of system time against jemalloc's 1.5 s,
    which keeps freed pages for reuse (``docs/benchmarks.md``, "Recompute"). Buffers already
    allocated keep the pool they came from.
    """
    if "jemalloc" in pa.supported_memory_backends():
        pa.set_memory_pool(pa.jemalloc_memory_pool())


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
    now = datetime.now(UTC)
    if not force and end + lateness > now:
        raise ValueError(
            f"{day} can still receive events (lateness window {lateness}); stop the consumers"
            " and pass force=True to recompute it anyway"
        )
    _reusing_pool()
    # pyarrow and the checks block: off the event loop.
    day_columns = await asyncio.to_thread(read_checked, data_dir, day, lateness)
    events = day_columns.events
    async with db() as session, session.begin():
        # Before any row: it waits for the consumers storing members of those days, holding
        # nothing they could wait for in turn.
        await lock_days(session, span_days(start, end), shared=False)
        ids = pc.unique(events["session_id"]).to_pylist()
        known = await SessionDirectory().lookup(session, ids)
        await clear_span(session, start, end)
        counted = await write_day(session, events, known, start, end, seal_of(end, now, lateness))
    return Recomputed(day, day_columns.archived, counted, day_columns.skipped)
