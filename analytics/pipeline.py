"""The analytics consumers of one process, started and stopped together by the service.

Each is a consumer group on the analytics stream: live counters, per-minute rollups in the
database, and the Parquet archive of raw events. Every process running the pipeline joins
the same groups, so the work is shared and a crashed process's batches are taken over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.constants import GROUP_COUNTERS
from analytics.consumer import Consumer, parse_deliveries
from analytics.directory import SessionDirectory
from analytics.live import LiveCounters, plan
from livebase.bus import Delivery, EventBus


@dataclass(slots=True)
class CounterFeed:
    """Handler of the live-counters group: events → :func:`~analytics.live.plan` → store."""

    counters: LiveCounters
    directory: SessionDirectory
    db: async_sessionmaker[AsyncSession]

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        events = [event for _, event in parse_deliveries(deliveries, "live counters")]
        if not events:
            return
        async with self.db() as db:
            sessions = await self.directory.lookup(db, {e.session_id for e in events})
        await self.counters.apply(plan(events, sessions))


@dataclass(slots=True)
class AnalyticsPipeline:
    bus: EventBus
    db: async_sessionmaker[AsyncSession]
    counters: LiveCounters
    directory: SessionDirectory = field(default_factory=SessionDirectory)
    consumers: list[Consumer] = field(default_factory=list)

    def build(self) -> list[Consumer]:
        feed = CounterFeed(self.counters, self.directory, self.db)
        # Counters are near real time: small batches, short waits.
        return [Consumer(self.bus, GROUP_COUNTERS, feed, batch=1000, block_ms=200)]

    async def start(self) -> None:
        self.consumers = self.build()
        for consumer in self.consumers:
            consumer.start()

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        self.consumers = []
