"""In-process event bus: the embedded default when no Redis is configured.

It mirrors the Redis Streams semantics described in :mod:`livebase.bus.base` for consumers in
the same process and event loop: entries are stored encoded (so later mutation of a published
event changes nothing and bad events fail exactly as with Redis), ids are ``"<ms>-<seq>"``,
each group has a last-delivered id and a pending-entries list ordered by id. Nothing survives
the process; with ``maxlen`` unset the log grows without bound.

Message ids and idle times come from ``clock`` (wall-clock milliseconds) so tests can advance
time without sleeping; ``block_ms`` waits use the event loop's own clock. Every operation runs
without awaiting in between, so on one event loop each is atomic.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from livebase.bus.base import EventBus, RawEntry, check_name, parse_message_id
from livebase.bus.constants import FIELD_EVENT, FIELD_EVENTS
from livebase.bus.errors import NoSuchGroupError

Clock = Callable[[], int]
MessageId = tuple[int, int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _format(message_id: MessageId) -> str:
    return f"{message_id[0]}-{message_id[1]}"


def _entry(message_id: MessageId, fields: Mapping[str, bytes], delivery_count: int) -> RawEntry:
    packed = fields.get(FIELD_EVENTS)
    payload = None if packed is not None else fields.get(FIELD_EVENT)
    return RawEntry(_format(message_id), payload, delivery_count, packed)


@dataclass(slots=True)
class _Pending:
    consumer: str
    delivered_at_ms: int
    delivery_count: int


@dataclass(slots=True)
class _Group:
    last_delivered: MessageId = (0, 0)
    # Insertion order is id order: new deliveries always have ids above every pending one,
    # and claims update entries in place.
    pending: dict[MessageId, _Pending] = field(default_factory=dict)


@dataclass(slots=True)
class _Stream:
    ids: list[MessageId] = field(default_factory=list)
    fields: list[Mapping[str, bytes]] = field(default_factory=list)
    last_id: MessageId = (0, 0)
    groups: dict[str, _Group] = field(default_factory=dict)
    # Replaced on every append; a reader waits on the one current when it found nothing new,
    # so it cannot miss an append that happens between its check and its wait.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def lookup(self, message_id: MessageId) -> Mapping[str, bytes] | None:
        index = bisect_left(self.ids, message_id)
        if index < len(self.ids) and self.ids[index] == message_id:
            return self.fields[index]
        return None


class InProcessBus(EventBus):
    """Event bus held in memory, for a single process."""

    def __init__(self, *, maxlen: int | None = None, clock: Clock = wall_clock_ms) -> None:
        super().__init__(maxlen=maxlen)
        self._clock = clock
        self._streams: dict[str, _Stream] = {}

    def append_raw(self, stream: str, fields: Mapping[str, bytes]) -> str:
        """Append an entry without encoding, as a foreign producer could write to Redis.

        Meant for tests and tooling that need entries the bus itself would never write.
        """
        self._check_open()
        check_name("stream", stream)
        return self._append_fields(self._streams.setdefault(stream, _Stream()), [fields])[0]

    async def _append(
        self, stream: str, payloads: Sequence[bytes], field: str = FIELD_EVENT
    ) -> list[str]:
        state = self._streams.setdefault(stream, _Stream())
        return self._append_fields(state, [{field: payload} for payload in payloads])

    def _append_fields(self, state: _Stream, entries: Sequence[Mapping[str, bytes]]) -> list[str]:
        ids: list[str] = []
        for fields in entries:
            now = self._clock()
            ms, seq = state.last_id
            # Same rule as Redis: if the clock stalls or steps back, keep the last ms and count
            # up the sequence so ids still only grow.
            state.last_id = (now, 0) if now > ms else (ms, seq + 1)
            state.ids.append(state.last_id)
            state.fields.append(dict(fields))
            ids.append(_format(state.last_id))
        self._trim(state)
        state.wakeup.set()
        state.wakeup = asyncio.Event()
        return ids

    def _trim(self, state: _Stream) -> None:
        if self.maxlen is None:
            return
        # Trimming in batches keeps appends cheap, like Redis's approximate MAXLEN ~.
        slack = max(1, self.maxlen // 10)
        excess = len(state.ids) - self.maxlen
        if excess >= slack:
            del state.ids[:excess]
            del state.fields[:excess]

    async def _ensure_group(self, stream: str, group: str) -> None:
        self._streams.setdefault(stream, _Stream()).groups.setdefault(group, _Group())

    def _group(self, stream: str, group: str) -> tuple[_Stream, _Group]:
        state = self._streams.get(stream)
        if state is None or group not in state.groups:
            raise NoSuchGroupError(f"no consumer group {group!r} on stream {stream!r}")
        return state, state.groups[group]

    async def _read(
        self, stream: str, group: str, consumer: str, count: int, block_ms: int
    ) -> list[RawEntry]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            self._check_open()
            state, group_state = self._group(stream, group)
            entries = self._take_new(state, group_state, consumer, count)
            remaining = deadline - loop.time()
            if entries or remaining <= 0:
                return entries
            try:
                async with asyncio.timeout(remaining):
                    await state.wakeup.wait()
            except TimeoutError:
                pass

    def _take_new(
        self, state: _Stream, group_state: _Group, consumer: str, count: int
    ) -> list[RawEntry]:
        start = bisect_right(state.ids, group_state.last_delivered)
        now = self._clock()
        entries: list[RawEntry] = []
        for index in range(start, min(start + count, len(state.ids))):
            message_id = state.ids[index]
            group_state.pending[message_id] = _Pending(consumer, now, 1)
            group_state.last_delivered = message_id
            entries.append(_entry(message_id, state.fields[index], 1))
        return entries

    async def _ack(self, stream: str, group: str, message_ids: Sequence[str]) -> int:
        state = self._streams.get(stream)
        group_state = state.groups.get(group) if state is not None else None
        if group_state is None:
            return 0  # XACK answers 0, not an error, for an unknown group
        return sum(
            group_state.pending.pop(parse_message_id(message_id), None) is not None
            for message_id in message_ids
        )

    async def _claim(
        self, stream: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[RawEntry]:
        state, group_state = self._group(stream, group)
        now = self._clock()
        entries: list[RawEntry] = []
        for message_id, pending in list(group_state.pending.items()):
            if len(entries) >= count:
                break
            if now - pending.delivered_at_ms < min_idle_ms:
                continue
            fields = state.lookup(message_id)
            if fields is None:
                # Trimmed away while pending: XAUTOCLAIM drops such entries from the PEL too.
                del group_state.pending[message_id]
                continue
            pending.consumer = consumer
            pending.delivered_at_ms = now
            pending.delivery_count += 1
            entries.append(_entry(message_id, fields, pending.delivery_count))
        return entries

    async def _pending_count(self, stream: str, group: str) -> int:
        return len(self._group(stream, group)[1].pending)

    async def _close(self) -> None:
        # Wake blocked readers so they see the bus is closed instead of waiting out block_ms.
        for state in self._streams.values():
            state.wakeup.set()
        self._streams.clear()
