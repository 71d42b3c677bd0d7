"""The one writer of shop orders per database: deliveries queue here and commit in batches.

A request (a webhook, a pull) hands its parsed delivery to :meth:`OrderWriter.submit` and
waits. The writer takes every delivery waiting, applies them in one transaction
(:func:`livebase.orders.intake.apply_batch`), commits, announces the batch's news, and only
then answers each request: an answer means stored, so a process that dies after answering
has lost nothing, and one that dies before has answered nothing (the platform sends again and
the receipt, rolled back with the rest, lets it in).

Batching is what makes the intake fast: the statements of a transaction do not grow with its
deliveries, so while one batch commits the next one gathers, and the busier the intake the
larger (and cheaper per order) its batches. An idle writer applies a lone delivery at once.
One writer also means one order of locks: on SQLite it replaces a convoy in SQLite's busy
handler; on PostgreSQL it keeps the deliveries of one process from queueing on each other's
SKU row locks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livebase.batching import BatchWriter, Committed
from livebase.db.models import WebhookReceipt, utcnow
from livebase.errors import Conflict
from livebase.orders.intake import Delivery, Outcome, apply_batch
from livebase.orders.model import IntakeResult, OrderNews

log = logging.getLogger("livebase.orders")
MAX_BATCH = 500
INSERT_ATTEMPTS = 3
PRUNE_EVERY = 3600.0  # seconds between deletions of old webhook receipts
Announce = Callable[[list[OrderNews]], Awaitable[None]]


class OrderWriter(BatchWriter[Delivery, IntakeResult | None]):
    """Owns the intake's write transactions; start with :meth:`run` as a task, one per app.

    :meth:`submit` stores a delivery and gives its result once committed, None for a replay;
    a refused delivery raises its ApiError.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        window: timedelta,
        announce: Announce,
        *,
        receipts_kept: timedelta = timedelta(days=7),
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(max_batch=max_batch, log=log, what="order")
        self._sessions = sessions
        self._window = window
        self._announce = announce
        self._receipts_kept = receipts_kept
        self._pruned_at: float | None = None

    async def _after_drain(self) -> None:
        if self._pruned_at is None or time.monotonic() - self._pruned_at > PRUNE_EVERY:
            await self._prune_quietly()

    async def prune(self) -> int:
        """Delete the receipts of deliveries older than a platform retries; how many went.

        A delivery older than that which comes again is taken in as new, which only matters
        for a delivery that creates an order (an update is idempotent): that order is known
        by its platform id and is not created twice.
        """
        self._pruned_at = time.monotonic()
        before = utcnow() - self._receipts_kept
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                delete(WebhookReceipt).where(WebhookReceipt.received_at < before)
            )
        assert isinstance(result, CursorResult)
        return result.rowcount

    async def _prune_quietly(self) -> None:
        try:
            gone = await self.prune()
        except Exception as exc:  # the next hour tries again; deliveries go on meanwhile
            log.warning("could not delete old webhook receipts: %r", exc)
        else:
            if gone:
                log.info("deleted %d webhook receipts older than %s", gone, self._receipts_kept)

    async def _commit(self, deliveries: Sequence[Delivery]) -> Committed[IntakeResult | None]:
        outcomes = await self._store(deliveries)
        news = [n for o in outcomes if isinstance(o, IntakeResult) for n in o.news]
        if not news:
            return Committed(outcomes)
        announcing = frozenset(
            i for i, o in enumerate(outcomes) if isinstance(o, IntakeResult) and o.news
        )
        return Committed(outcomes, lambda: self._announce(news), announcing)

    async def _store(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        for attempt in range(1, INSERT_ATTEMPTS + 1):
            try:
                async with self._sessions() as db, db.begin():
                    return await apply_batch(db, deliveries, self._window)
            except IntegrityError as exc:
                # Another process inserted one of the batch's new orders first; the next
                # attempt sees it and advances it instead.
                if attempt == INSERT_ATTEMPTS:
                    raise Conflict(
                        "the order was changed by another delivery at the same time; send it again",
                        code="concurrent_delivery",
                    ) from exc
                log.info("order batch raced another writer (attempt %d); retrying", attempt)
        raise AssertionError("unreachable")
