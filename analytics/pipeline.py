"""The analytics consumers of one process, started and stopped together by the service.

Each is a consumer group on the analytics stream: live counters, per-minute rollups in the
database, and the Parquet archive of raw events. Every process running the pipeline joins
the same groups, so the work is shared and a crashed process's batches are taken over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.archive import write_batch_async
from analytics.constants import GROUP_ARCHIVE, GROUP_COUNTERS, GROUP_ROLLUPS, STREAM_ANALYTICS
from analytics.consumer import (
    Consumer,
    ConsumerLoop,
    EntryConsumer,
    parse_deliveries,
    parse_entries,
    received_at,
)
from analytics.directory import SessionDirectory
from analytics.live import LiveCounters, plan_checked
from analytics.rollup_store import apply_events, forget_before, prune_horizon
from livebase.bus import Delivery, EventBus, RawEntry

log = logging.getLogger("analytics.pipeline")


_event, _session_id = itemgetter(2), attrgetter("session_id")


@dataclass(slots=True)
class CounterFeed:
    """Handler of the live-counters group: entries → :func:`~analytics.live.plan` → store.

    It takes the stream's entries whole (:class:`~analytics.consumer.EntryConsumer`): the
    counters are the hot consumer, and a delivery per event cost more than the counting.
    """

    bus: EventBus
    counters: LiveCounters
    directory: SessionDirectory
    db: async_sessionmaker[AsyncSession]

    async def __call__(self, entries: Sequence[RawEntry]) -> None:
        events = await parse_entries(
            self.bus, STREAM_ANALYTICS, GROUP_COUNTERS, entries, "live counters"
        )
        if not events:
            return
        ids = set(map(_session_id, map(_event, events)))  # sweeps in C: once per event
        sessions = self.directory.cached(ids)
        if sessions is None:
            async with self.db() as db:
                sessions = await self.directory.lookup(db, ids)
        await self.counters.apply(plan_checked(events, sessions))


@dataclass(slots=True)
class RollupFeed:
    """Handler of the rollups group: one transaction per batch, ledger and sums together."""

    directory: SessionDirectory
    db: async_sessionmaker[AsyncSession]
    lateness: timedelta

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        events = []
        for delivery, event in parse_deliveries(deliveries, "rollups"):
            # Judged against when the bus took it, so a backlog after an outage still counts.
            if event.occurred_at < received_at(delivery) - self.lateness:
                log.warning("rollups: %s event %s is past the lateness window", event.type,
                            event.event_id)  # fmt: skip
                continue
            events.append(event)
        if not events:
            return
        async with self.db() as db, db.begin():
            sessions = await self.directory.lookup(db, {e.session_id for e in events})
            unknown = {e.session_id for e in events} - sessions.keys()
            if unknown:
                log.warning("rollups: events of unknown sessions %s left out", sorted(unknown))
            await apply_events(db, events, sessions)


@dataclass(slots=True)
class ArchiveFeed:
    data_dir: Path

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        await write_batch_async(self.data_dir, [(d, received_at(d)) for d in deliveries])


@dataclass(slots=True)
class AnalyticsPipeline:
    bus: EventBus
    db: async_sessionmaker[AsyncSession]
    counters: LiveCounters
    data_dir: Path
    lateness: timedelta = timedelta(hours=24)
    directory: SessionDirectory = field(default_factory=SessionDirectory)
    consumers: list[ConsumerLoop[Any]] = field(default_factory=list)
    _pruner: asyncio.Task[None] | None = None

    def build(self) -> list[ConsumerLoop[Any]]:
        # Batches count stream entries; a packed entry of the ingest holds up to
        # MAX_BATCH_EVENTS events, so these stay well under a million events each.
        return [
            # Counters are near real time: short waits.
            EntryConsumer(
                self.bus,
                GROUP_COUNTERS,
                CounterFeed(self.bus, self.counters, self.directory, self.db),
                batch=100,
                block_ms=200,
            ),
            Consumer(
                self.bus,
                GROUP_ROLLUPS,
                RollupFeed(self.directory, self.db, self.lateness),
                batch=50,
            ),
            Consumer(
                self.bus,
                GROUP_ARCHIVE,
                ArchiveFeed(self.data_dir),
                batch=200,
                pause_seconds=10.0,
            ),
        ]

    async def start(self) -> None:
        self.consumers = self.build()
        for consumer in self.consumers:
            consumer.start()
        self._pruner = asyncio.create_task(self._prune(), name="analytics-prune")

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.wait([self._pruner])
            self._pruner = None
        for consumer in self.consumers:
            await consumer.stop()
        self.consumers = []

    async def _prune(self, every: float = 3600.0) -> None:
        while True:
            horizon = prune_horizon(datetime.now(UTC), self.lateness)
            try:
                async with self.db() as db, db.begin():
                    await forget_before(db, horizon)
            except Exception:
                log.exception("could not prune the rollup ledger")
            await asyncio.sleep(every)
