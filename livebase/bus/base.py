"""The event bus interface: publish events to streams, consume them in consumer groups.

Semantics follow Redis Streams, and :class:`~livebase.bus.memory.InProcessBus` copies them:

* A stream is an append-only log; message ids are ``"<ms>-<seq>"`` and only ever grow.
* A consumer group keeps its own position. ``ensure_group`` creates it at the *start* of the
  stream ("0"), so events published before the group existed are still delivered; calling it
  again never moves an existing group.
* ``read`` hands each new message to exactly one consumer of the group and records it as
  pending for that consumer until ``ack``. Delivery is at-least-once: a consumer that dies
  before acknowledging leaves its messages pending, and another consumer takes them over with
  ``claim_stale`` once they have been idle long enough. Handlers must therefore be idempotent
  (``Event.id`` is the natural key for that).
* A restarted consumer gets its own unacknowledged messages back through ``claim_stale`` too.
* An entry that is not a valid event (written by a foreign producer, or corrupt) is never
  handed to a handler: it is logged as a warning naming the message id and acknowledged, so
  it cannot block the group. It stays in the stream for inspection until trimmed.
* A packed entry (:meth:`EventBus.publish_packed`) holds many events: each is one
  :class:`Delivery` with the entry's message id, and acknowledging that id acknowledges them
  all. An invalid event inside one is logged and left out; an entry with no valid event at all
  is treated as above.
* With ``maxlen`` the stream is trimmed approximately (like ``XADD MAXLEN ~``): at least the
  newest ``maxlen`` entries are kept, older ones go in batches.

Validation, encoding and decoding live here once; backends implement the small raw primitives
(``_append``, ``_read`` …) over their storage.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from livebase.bus.constants import FIELD_EVENT, FIELD_EVENTS
from livebase.bus.errors import BusClosedError, BusDecodeError
from livebase.bus.events import (
    Delivery,
    Event,
    check_documents,
    decode_event,
    decode_packed,
    encode_event,
)

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
MESSAGE_ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")


@dataclass(frozen=True, slots=True)
class RawEntry:
    """A stream entry as a backend returns it, before decoding."""

    message_id: str
    payload: bytes | None
    delivery_count: int
    #: A packed entry's array of events (``payload`` is then None).
    packed: bytes | None = None


def _skipped(stream: str, group: str, message_id: str, exc: Exception, what: str) -> None:
    log.warning("stream %r group %r: skipping %s %s: %s", stream, group, what, message_id, exc)


def check_name(kind: str, value: str) -> None:
    """Reject names that would be ambiguous as Redis keys or in logs."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"{kind} name {value!r} is invalid: use 1-200 letters, digits, '.', '_', ':' or '-',"
            " starting with a letter or digit"
        )


def parse_message_id(message_id: str) -> tuple[int, int]:
    """``"<ms>-<seq>"`` as a tuple that sorts like the id; raise ``ValueError`` otherwise."""
    if not isinstance(message_id, str) or not MESSAGE_ID_RE.match(message_id):
        raise ValueError(f"message id {message_id!r} is invalid: expected '<ms>-<seq>'")
    ms, seq = message_id.split("-")
    return int(ms), int(seq)


class EventBus(ABC):
    """Publish domain events and consume them in consumer groups (at-least-once)."""

    def __init__(self, *, maxlen: int | None = None) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be a positive number of entries, got {maxlen}")
        self.maxlen = maxlen
        self._closed = False

    async def publish(self, stream: str, event: Event) -> str:
        """Append ``event`` to ``stream``; return its message id."""
        (message_id,) = await self.publish_many(stream, [event])
        return message_id

    async def publish_many(self, stream: str, events: Iterable[Event]) -> list[str]:
        """Append ``events`` in order, all or none; return their message ids.

        Every event is encoded before anything is written, so one bad event publishes nothing.
        """
        self._check_open()
        check_name("stream", stream)
        payloads = [encode_event(event) for event in events]
        if not payloads:
            return []
        return await self._append(stream, payloads)

    async def publish_packed(self, stream: str, packed: bytes) -> str:
        """Append one packed entry: a JSON array of flat events (``events.FLAT_ENVELOPE``);
        return its message id.

        One ``XADD`` for a whole batch instead of one per event: Redis's share of ingest
        becomes a copy of bytes. Consumers get one :class:`Delivery` per event, all with the
        entry's message id, and acknowledge the entry once. Nothing is checked here (hot paths
        check their events themselves); consumers skip and log the events that are not valid.
        """
        self._check_open()
        check_name("stream", stream)
        (message_id,) = await self._append(stream, [packed], FIELD_EVENTS)
        return message_id

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create ``group`` at the start of ``stream`` (and the stream) unless it exists."""
        self._check_open()
        check_name("stream", stream)
        check_name("group", group)
        await self._ensure_group(stream, group)

    async def read(
        self, stream: str, group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        """Up to ``count`` messages never delivered to ``group`` before, now pending for
        ``consumer``.

        With ``block_ms`` > 0, wait up to that long for a first message; with 0 return at once.
        There is no wait-forever: a consumer loops, which also lets it notice shutdown.
        """
        raw = await self.read_entries(stream, group, consumer, count=count, block_ms=block_ms)
        return await self.decode_entries(stream, group, raw)

    async def read_entries(
        self, stream: str, group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[RawEntry]:
        """:meth:`read`, as the stream's entries, not decoded: for hot consumers that decode
        packed entries their own way and hand the rest to :meth:`decode_entries`."""
        self._check_open()
        self._check_consumer_args(stream, group, consumer, count)
        if block_ms < 0:
            raise ValueError(f"block_ms must be >= 0, got {block_ms}")
        return await self._read(stream, group, consumer, count, block_ms)

    async def ack(self, stream: str, group: str, message_ids: Iterable[str]) -> int:
        """Mark messages as processed; return how many were pending (others are ignored)."""
        self._check_open()
        check_name("stream", stream)
        check_name("group", group)
        ids = list(message_ids)
        for message_id in ids:
            parse_message_id(message_id)
        if not ids:
            return 0
        return await self._ack(stream, group, ids)

    async def claim_stale(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        """Take over up to ``count`` messages of ``group`` pending for at least ``min_idle_ms``
        (whichever consumer held them), oldest first; each one's ``delivery_count`` grows by 1.
        """
        raw = await self.claim_stale_entries(
            stream, group, consumer, min_idle_ms=min_idle_ms, count=count
        )
        return await self.decode_entries(stream, group, raw)

    async def claim_stale_entries(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[RawEntry]:
        """:meth:`claim_stale`, as the entries, not decoded (see :meth:`read_entries`)."""
        self._check_open()
        self._check_consumer_args(stream, group, consumer, count)
        if min_idle_ms < 0:
            raise ValueError(f"min_idle_ms must be >= 0, got {min_idle_ms}")
        return await self._claim(stream, group, consumer, min_idle_ms, count)

    async def pending_count(self, stream: str, group: str) -> int:
        """How many messages of ``group`` are delivered but not acknowledged."""
        self._check_open()
        check_name("stream", stream)
        check_name("group", group)
        return await self._pending_count(stream, group)

    async def close(self) -> None:
        """Release the bus's resources; later calls raise :class:`BusClosedError`."""
        if self._closed:
            return
        self._closed = True
        await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosedError(f"{type(self).__name__} is closed")

    @staticmethod
    def _check_consumer_args(stream: str, group: str, consumer: str, count: int) -> None:
        check_name("stream", stream)
        check_name("group", group)
        check_name("consumer", consumer)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")

    async def decode_entries(
        self, stream: str, group: str, raw: Sequence[RawEntry]
    ) -> list[Delivery]:
        """The deliveries of entries read with :meth:`read_entries` or
        :meth:`claim_stale_entries`, as :meth:`read` hands them out: invalid events are
        logged and left out, entries without a valid event logged and acknowledged."""
        deliveries: list[Delivery] = []
        rejected: list[str] = []
        for entry in raw:
            try:
                if entry.packed is not None:
                    found = self._unpack(stream, group, entry)
                    if not found:
                        raise BusDecodeError(f"message {entry.message_id}: no valid event in it")
                    deliveries.extend(found)
                    continue
                event = decode_event(entry.payload, entry.message_id)
            except BusDecodeError as exc:
                _skipped(stream, group, entry.message_id, exc, "and acknowledging message")
                rejected.append(entry.message_id)
                continue
            deliveries.append(Delivery(stream, entry.message_id, event, entry.delivery_count))
        if rejected:
            await self._ack(stream, group, rejected)
        return deliveries

    @staticmethod
    def _unpack(stream: str, group: str, entry: RawEntry) -> list[Delivery]:
        """The valid events of a packed entry; invalid ones are logged and left out (they are
        acknowledged with the rest of the entry)."""
        assert entry.packed is not None
        message_id, count = entry.message_id, entry.delivery_count
        deliveries: list[Delivery] = []
        for checked in check_documents(decode_packed(entry.packed, message_id), message_id):
            if isinstance(checked, BusDecodeError):
                _skipped(stream, group, message_id, checked, "an event of message")
                continue
            document, moment = checked
            deliveries.append(
                Delivery(stream, message_id, None, count, document=document, occurred_at=moment)
            )
        return deliveries

    @abstractmethod
    async def _append(
        self, stream: str, payloads: Sequence[bytes], field: str = FIELD_EVENT
    ) -> list[str]:
        """Append one entry per payload, each holding it under ``field``."""

    @abstractmethod
    async def _ensure_group(self, stream: str, group: str) -> None: ...

    @abstractmethod
    async def _read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[RawEntry]: ...

    @abstractmethod
    async def _ack(self, stream: str, group: str, message_ids: Sequence[str]) -> int: ...

    @abstractmethod
    async def _claim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[RawEntry]: ...

    @abstractmethod
    async def _pending_count(self, stream: str, group: str) -> int: ...

    @abstractmethod
    async def _close(self) -> None: ...
