"""A consumer-group loop over the analytics stream: read a batch, handle it, acknowledge it.

Delivery is at least once, so handlers are idempotent on event ids. A batch the handler fails
on stays pending: this consumer retries it first, and if the process dies another consumer (or
this one restarted) claims it with ``claim_stale`` once it has been idle long enough. Bus
outages and a lost consumer group (a Redis restarted empty) are waited out, never fatal.
:meth:`Consumer.run_once` is one step of the loop, for tests and tools (like arq's burst mode).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from analytics.constants import STREAM_ANALYTICS
from analytics.fastpath import Checked, check_documents, check_packed
from analytics.schemas import AnalyticsEvent, EventSchemaError, from_bus_event
from livebase.bus import BusError, Delivery, EventBus, NoSuchGroupError, RawEntry
from livebase.bus.base import parse_message_id

log = logging.getLogger("analytics.consumer")
T = TypeVar("T", Delivery, RawEntry)


def received_at(delivery: Delivery | RawEntry) -> datetime:
    """When the bus accepted the message: its id starts with the append time in ms."""
    ms, _ = parse_message_id(delivery.message_id)
    return datetime.fromtimestamp(ms / 1000, UTC)


def parse_deliveries(
    deliveries: Sequence[Delivery], what: str
) -> list[tuple[Delivery, AnalyticsEvent]]:
    """The analytics events among ``deliveries``; others are logged and left out.

    Times are judged against when the bus accepted each event, not against now, so that a
    backlog (after an outage) is not refused as "in the future" or too old.
    """
    parsed = []
    for delivery in deliveries:
        try:
            event = from_bus_event(delivery.event, now=received_at(delivery))
        except EventSchemaError as exc:
            log.warning("%s: skipping message %s: %s", what, delivery.message_id, exc)
            continue
        parsed.append((delivery, event))
    return parsed


def parse_checked(deliveries: Sequence[Delivery], what: str) -> list[Checked]:
    """:func:`parse_deliveries` for hot consumers, without a pydantic model per event where
    :func:`~analytics.fastpath.check_documents` can vouch for the event (those of packed
    entries); events of entries of their own take the full road."""
    flat: list[dict[str, Any]] = []
    received: list[datetime] = []
    moments: list[datetime | None] = []
    single: list[Delivery] = []
    times: dict[str, datetime] = {}  # the events of a packed entry share its message id
    for delivery in deliveries:
        if delivery.document is None:
            single.append(delivery)
            continue
        at = times.get(delivery.message_id)
        if at is None:
            at = times[delivery.message_id] = received_at(delivery)
        flat.append(delivery.document)
        received.append(at)
        moments.append(delivery.occurred_at)
    out: list[Checked] = [(e.type, e.occurred_at, e) for _, e in parse_deliveries(single, what)]
    for document, verdict in zip(flat, check_documents(flat, received, moments), strict=True):
        if isinstance(verdict, EventSchemaError):
            log.warning("%s: skipping event %s: %s", what, document.get("event_id"), verdict)
            continue
        out.append(verdict)
    return out


class ConsumerLoop(ABC, Generic[T]):
    """The loop of one consumer of ``group``: :class:`Consumer` hands its handler the batch's
    deliveries, :class:`EntryConsumer` the stream's entries undecoded."""

    def __init__(
        self,
        bus: EventBus,
        group: str,
        handler: Callable[[Sequence[T]], Awaitable[None]],
        *,
        stream: str = STREAM_ANALYTICS,
        name: str | None = None,
        batch: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        retry_seconds: float = 1.0,
        pause_seconds: float = 0.0,
    ) -> None:
        self.bus, self.group, self.stream = bus, group, stream
        self.name = name or f"{group}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._handler: Callable[[Sequence[T]], Awaitable[None]] = handler
        self._batch, self._block_ms = batch, block_ms
        self._claim_idle_ms, self._retry_seconds = claim_idle_ms, retry_seconds
        # After a batch that was not full, wait this long so the next one is bigger (the
        # archive writes one file per batch and should not write one per second).
        self._pause_seconds = pause_seconds
        self._retry: list[T] = []
        # Handled but not acknowledged (the bus went away in between): acknowledged first thing
        # next time, rather than handled again once claim_stale finds them idle.
        self._to_ack: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = False

    @abstractmethod
    async def _claim(self) -> list[T]:
        """Messages idle long enough at other consumers (or at a dead self), taken over."""

    @abstractmethod
    async def _take(self, block_ms: int) -> list[T]:
        """New messages, waiting up to ``block_ms`` for a first one."""

    async def run_once(self, block_ms: int = 0) -> int:
        """Handle one batch (a failed one again first); return how many messages it held."""
        if not self._ready:
            await self.bus.ensure_group(self.stream, self.group)
            self._ready = True
        if self._to_ack:
            await self.bus.ack(self.stream, self.group, self._to_ack)
            self._to_ack = []
        deliveries = self._retry or await self._claim()
        if not deliveries:
            deliveries = await self._take(block_ms)
        if not deliveries:
            return 0
        self._retry = list(deliveries)
        await self._handler(deliveries)
        self._retry = []
        # The events of a packed entry share its id: acknowledge each entry once.
        self._to_ack = list(dict.fromkeys(d.message_id for d in deliveries))
        await self.bus.ack(self.stream, self.group, self._to_ack)
        self._to_ack = []
        return len(deliveries)

    async def run(self) -> None:
        while True:
            try:
                handled = await self.run_once(self._block_ms)
                if handled < self._batch and self._pause_seconds:
                    await asyncio.sleep(self._pause_seconds)
            except NoSuchGroupError:
                # Redis restarted without its data: the group (and the stream) must be made again.
                log.warning(
                    "%s: consumer group %s is gone; creating it again", self.name, self.group
                )
                self._ready = False
                self._retry, self._to_ack = [], []
                await asyncio.sleep(self._retry_seconds)
            except BusError as exc:
                log.warning("%s: bus unavailable (%s); retrying", self.name, exc)
                self._ready = False
                await asyncio.sleep(self._retry_seconds)
            except Exception:
                log.exception("%s: could not handle a batch; it stays pending", self.name)
                await asyncio.sleep(self._retry_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        # wait() leaves the task's own cancellation inside it; ours still reaches us.
        await asyncio.wait([self._task])
        self._task = None


class Consumer(ConsumerLoop[Delivery]):
    """A consumer whose handler takes the batch's deliveries, one per event."""

    async def _claim(self) -> list[Delivery]:
        return await self.bus.claim_stale(
            self.stream, self.group, self.name, min_idle_ms=self._claim_idle_ms, count=self._batch
        )

    async def _take(self, block_ms: int) -> list[Delivery]:
        return await self.bus.read(
            self.stream, self.group, self.name, count=self._batch, block_ms=block_ms
        )


class EntryConsumer(ConsumerLoop[RawEntry]):
    """A consumer loop whose handler takes the stream's entries as read, undecoded (see
    :func:`parse_entries`): a packed entry is one item, not one delivery per event."""

    async def _claim(self) -> list[RawEntry]:
        return await self.bus.claim_stale_entries(
            self.stream, self.group, self.name, min_idle_ms=self._claim_idle_ms, count=self._batch
        )

    async def _take(self, block_ms: int) -> list[RawEntry]:
        return await self.bus.read_entries(
            self.stream, self.group, self.name, count=self._batch, block_ms=block_ms
        )


async def parse_entries(
    bus: EventBus, stream: str, group: str, entries: Sequence[RawEntry], what: str
) -> list[Checked]:
    """:func:`parse_checked` of the entries' deliveries, in order, without the deliveries:
    a packed entry whose every event :func:`~analytics.fastpath.check_packed` vouches for is
    taken as it says; any other entry is decoded by the bus and goes through
    :func:`parse_checked`, with the same warnings as on that road."""
    out: list[Checked] = []
    for entry in entries:
        checked = None
        if entry.packed is not None:
            checked = check_packed(entry.packed, received_at(entry))
        if checked is None:
            checked = parse_checked(await bus.decode_entries(stream, group, [entry]), what)
        out.extend(checked)
    return out
