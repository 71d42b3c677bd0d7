"""One contract for every event bus: the in-process bus and Redis Streams must behave alike.

The Redis variant uses ``LIVEBASE_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). It is
skipped when that Redis cannot be reached, except under ``CI=true`` where that is a failure.
Each test writes under its own random key prefix and deletes exactly those keys afterwards;
the database is never flushed because other runs may share it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from bus_support import REDIS_URL, delete_prefix, new_prefix, redis_or_skip

from livebase.bus import (
    BusClosedError,
    BusDecodeError,
    BusEncodeError,
    BusUnavailableError,
    Event,
    EventBus,
    InProcessBus,
    NoSuchGroupError,
    RedisStreamsBus,
    create_bus,
    decode_event,
)
from livebase.bus.base import parse_message_id
from livebase.bus.constants import FIELD_EVENT

STREAM = "domain"
GROUP = "projector"
# Idle threshold for claims: long enough that a fresh delivery is never "stale" by accident.
IDLE_MS = 100


class FakeClock:
    def __init__(self, now_ms: int = 1_746_086_400_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@dataclass
class Harness:
    kind: str
    bus: EventBus
    new_bus: Callable[..., EventBus]
    # Make at least this many milliseconds of idle time pass, as seen by the bus.
    advance: Callable[[int], Awaitable[None]]
    # Write a stream entry that did not come from the bus (a foreign or corrupt producer).
    inject_raw: Callable[[str, dict[str, bytes]], Awaitable[str]]
    extra: list[EventBus] = field(default_factory=list)


@pytest.fixture(params=["memory", "redis"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "memory":
        clock = FakeClock()

        async def advance(ms: int) -> None:
            clock.now_ms += ms

        def new_memory_bus(**kwargs: Any) -> EventBus:
            return InProcessBus(clock=clock, **kwargs)

        memory_bus = InProcessBus(clock=clock)

        async def inject_memory(stream: str, fields: dict[str, bytes]) -> str:
            return memory_bus.append_raw(stream, fields)

        harness = Harness("memory", memory_bus, new_memory_bus, advance, inject_memory)
        yield harness
        for bus in [harness.bus, *harness.extra]:
            await bus.close()
        return

    client = await redis_or_skip()
    prefix = new_prefix()

    async def sleep(ms: int) -> None:
        await asyncio.sleep(ms / 1000 + 0.02)

    def new_redis_bus(**kwargs: Any) -> EventBus:
        return RedisStreamsBus(REDIS_URL, key_prefix=prefix, **kwargs)

    async def inject_redis(stream: str, fields: dict[str, bytes]) -> str:
        message_id = await client.xadd(prefix + stream, fields)  # type: ignore[arg-type]
        return message_id.decode() if isinstance(message_id, bytes) else str(message_id)

    harness = Harness("redis", new_redis_bus(), new_redis_bus, sleep, inject_redis)
    try:
        yield harness
    finally:
        for bus in [harness.bus, *harness.extra]:
            await bus.close()
        await delete_prefix(client, prefix)
        await client.aclose()


def order(n: int) -> Event:
    return Event(type="order.created", base="haifeng", data={"order_no": f"HF{n:05d}", "n": n})


def orders(count: int) -> list[Event]:
    return [order(n) for n in range(count)]


async def test_roundtrip_preserves_the_event_exactly(h: Harness) -> None:
    event = Event(
        type="stream.started",
        base="luhe",
        version=2,
        occurred_at=datetime(2025, 5, 1, 16, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        data={
            "title": "青梅果园直播 🍃",
            "price_fen": 1990,
            "ratio": 0.25,
            "tags": ["gi-produce", None, True, False],
            "nested": {"min": -(2**63), "max": 2**64 - 1, "empty": {}, "list": []},
        },
    )
    await h.bus.ensure_group(STREAM, GROUP)
    message_id = await h.bus.publish(STREAM, event)

    (delivery,) = await h.bus.read(STREAM, GROUP, "c1")

    assert delivery.message_id == message_id
    assert delivery.stream == STREAM
    assert delivery.delivery_count == 1
    assert delivery.event == event
    assert delivery.event.occurred_at.tzinfo is UTC
    assert delivery.event.occurred_at == datetime(2025, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)


async def test_read_without_new_messages_returns_empty(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    assert await h.bus.read(STREAM, GROUP, "c1") == []


async def test_consumers_of_one_group_split_the_messages(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    ids = await h.bus.publish_many(STREAM, orders(10))

    seen: dict[str, list[str]] = {"a": [], "b": []}
    while True:
        batch_a = await h.bus.read(STREAM, GROUP, "a", count=3)
        batch_b = await h.bus.read(STREAM, GROUP, "b", count=3)
        seen["a"] += [d.message_id for d in batch_a]
        seen["b"] += [d.message_id for d in batch_b]
        if not batch_a and not batch_b:
            break

    assert seen["a"] and seen["b"]
    assert sorted(seen["a"] + seen["b"], key=parse_message_id) == ids
    assert await h.bus.pending_count(STREAM, GROUP) == 10


async def test_concurrent_blocked_consumers_each_get_a_message_once(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)

    async def consume(name: str) -> list[str]:
        got: list[str] = []
        while batch := await h.bus.read(STREAM, GROUP, name, count=2, block_ms=300):
            got += [d.message_id for d in batch]
        return got

    consumers = [asyncio.create_task(consume(f"c{n}")) for n in range(3)]
    await asyncio.sleep(0.05)
    ids: list[str] = []
    for chunk in range(5):
        ids += await h.bus.publish_many(STREAM, orders(4))
        await asyncio.sleep(0.01 * chunk)
    results = await asyncio.gather(*consumers)

    delivered = [message_id for result in results for message_id in result]
    assert sorted(delivered, key=parse_message_id) == ids


async def test_every_group_gets_every_message(h: Harness) -> None:
    for group in ("projector", "notifier"):
        await h.bus.ensure_group(STREAM, group)
    events = orders(5)
    await h.bus.publish_many(STREAM, events)

    for group in ("projector", "notifier"):
        got = await h.bus.read(STREAM, group, "c1")
        assert [d.event for d in got] == events


async def test_ack_removes_from_pending(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    await h.bus.publish_many(STREAM, orders(3))
    got = await h.bus.read(STREAM, GROUP, "c1")
    assert await h.bus.pending_count(STREAM, GROUP) == 3

    assert await h.bus.ack(STREAM, GROUP, [got[0].message_id, got[1].message_id]) == 2
    assert await h.bus.pending_count(STREAM, GROUP) == 1
    assert await h.bus.ack(STREAM, GROUP, [got[0].message_id]) == 0
    assert await h.bus.ack(STREAM, GROUP, []) == 0
    assert await h.bus.ack(STREAM, GROUP, [got[2].message_id]) == 1
    assert await h.bus.pending_count(STREAM, GROUP) == 0
    await h.advance(IDLE_MS)
    assert await h.bus.claim_stale(STREAM, GROUP, "c2", min_idle_ms=IDLE_MS) == []


async def test_consumer_dying_before_ack_hands_its_messages_to_another(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    events = orders(3)
    ids = await h.bus.publish_many(STREAM, events)
    received: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

    async def doomed_worker() -> None:
        batch = await h.bus.read(STREAM, GROUP, "doomed", count=10)
        received.set_result([d.message_id for d in batch])
        await asyncio.Event().wait()  # handling never finishes: the worker dies here
        await h.bus.ack(STREAM, GROUP, [d.message_id for d in batch])

    worker = asyncio.create_task(doomed_worker())
    assert await received == ids
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker

    assert await h.bus.pending_count(STREAM, GROUP) == 3
    assert await h.bus.read(STREAM, GROUP, "survivor") == []
    assert await h.bus.claim_stale(STREAM, GROUP, "survivor", min_idle_ms=60_000) == []

    await h.advance(IDLE_MS)
    claimed = await h.bus.claim_stale(STREAM, GROUP, "survivor", min_idle_ms=IDLE_MS)

    assert [d.message_id for d in claimed] == ids
    assert [d.event for d in claimed] == events
    assert [d.delivery_count for d in claimed] == [2, 2, 2]
    assert await h.bus.ack(STREAM, GROUP, [d.message_id for d in claimed]) == 3
    assert await h.bus.pending_count(STREAM, GROUP) == 0


async def test_claim_respects_count_and_redelivery_count_grows(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    ids = await h.bus.publish_many(STREAM, orders(3))
    await h.bus.read(STREAM, GROUP, "c1")

    counts: list[list[int]] = []
    for consumer in ("c2", "c3"):
        await h.advance(IDLE_MS)
        claimed = await h.bus.claim_stale(STREAM, GROUP, consumer, min_idle_ms=IDLE_MS, count=2)
        assert [d.message_id for d in claimed] == ids[:2]
        counts.append([d.delivery_count for d in claimed])

    assert counts == [[2, 2], [3, 3]]
    await h.advance(IDLE_MS)
    rest = await h.bus.claim_stale(STREAM, GROUP, "c4", min_idle_ms=IDLE_MS)
    assert [(d.message_id, d.delivery_count) for d in rest] == [
        (ids[0], 4),
        (ids[1], 4),
        (ids[2], 2),
    ]


async def test_blocking_read_returns_when_a_message_arrives(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    reader = asyncio.create_task(h.bus.read(STREAM, GROUP, "c1", block_ms=10_000))
    await asyncio.sleep(0.1)
    assert not reader.done()

    message_id = await h.bus.publish(STREAM, order(1))

    got = await asyncio.wait_for(reader, timeout=5)
    assert [d.message_id for d in got] == [message_id]


async def test_blocking_read_times_out_empty(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await h.bus.read(STREAM, GROUP, "c1", block_ms=150) == []
    assert loop.time() - started >= 0.1


async def test_long_block_is_sliced_without_losing_the_wait(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("livebase.bus.redis_streams.BLOCK_SLICE_MS", 50)
    await h.bus.ensure_group(STREAM, GROUP)
    reader = asyncio.create_task(h.bus.read(STREAM, GROUP, "c1", block_ms=3_000))
    await asyncio.sleep(0.3)
    assert not reader.done()
    await h.bus.publish(STREAM, order(1))
    assert len(await asyncio.wait_for(reader, timeout=5)) == 1


async def test_cancelled_blocking_read_propagates_cancellation(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    reader = asyncio.create_task(h.bus.read(STREAM, GROUP, "c1", block_ms=10_000))
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    # The bus stays usable after a reader was cancelled mid-wait.
    await h.bus.publish(STREAM, order(1))
    assert len(await h.bus.read(STREAM, GROUP, "c1")) == 1


async def test_publish_many_keeps_order_and_ids_grow(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    events = orders(50)
    ids = await h.bus.publish_many(STREAM, events)
    last = order(50)
    ids.append(await h.bus.publish(STREAM, last))

    assert len(set(ids)) == 51
    assert [parse_message_id(i) for i in ids] == sorted(parse_message_id(i) for i in ids)
    got = await h.bus.read(STREAM, GROUP, "c1")
    assert [d.event for d in got] == [*events, last]
    assert [d.message_id for d in got] == ids
    assert await h.bus.publish_many(STREAM, []) == []


async def test_ensure_group_is_idempotent_and_keeps_its_position(h: Harness) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    await h.bus.ensure_group(STREAM, GROUP)
    await h.bus.publish_many(STREAM, orders(2))
    assert len(await h.bus.read(STREAM, GROUP, "c1")) == 2

    await h.bus.ensure_group(STREAM, GROUP)
    new_id = await h.bus.publish(STREAM, order(2))

    assert [d.message_id for d in await h.bus.read(STREAM, GROUP, "c1")] == [new_id]
    assert await h.bus.pending_count(STREAM, GROUP) == 3


async def test_group_created_after_publishing_sees_earlier_messages(h: Harness) -> None:
    events = orders(3)
    await h.bus.publish_many(STREAM, events)
    await h.bus.ensure_group(STREAM, "late")
    assert [d.event for d in await h.bus.read(STREAM, "late", "c1")] == events


async def test_corrupt_entries_are_logged_acked_and_skipped(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="livebase.bus")
    await h.bus.ensure_group(STREAM, GROUP)
    first = await h.bus.publish(STREAM, order(1))
    bad = [
        await h.inject_raw(STREAM, {FIELD_EVENT: b"{not json"}),
        await h.inject_raw(STREAM, {"payload": b"{}"}),
        await h.inject_raw(STREAM, {FIELD_EVENT: orjson.dumps({"type": "Not A Type"})}),
        await h.inject_raw(STREAM, {FIELD_EVENT: b"[1, 2]"}),
    ]
    last = await h.bus.publish(STREAM, order(2))

    got = await h.bus.read(STREAM, GROUP, "c1")

    assert [d.message_id for d in got] == [first, last]
    assert await h.bus.pending_count(STREAM, GROUP) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    for message_id, warning in zip(bad, warnings, strict=True):
        assert f"message {message_id}" in warning
        assert "skipping and acknowledging" in warning
    assert "not JSON" in warnings[0]
    assert f"no {FIELD_EVENT!r} field" in warnings[1]
    assert "type" in warnings[2]
    assert "not an object" in warnings[3]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"sizes": {"S", "M"}}, r"data\['sizes'\]: set is not plain JSON"),
        ({"item": object()}, r"data\['item'\]: object is not plain JSON"),
        ({"at": datetime(2025, 1, 1, tzinfo=UTC)}, r"data\['at'\]: datetime is not plain"),
        ({"rating": float("nan")}, r"data\['rating'\]: nan is not a finite number"),
        ({"skus": [1, (2, 3)]}, r"data\['skus'\]\[1\]: tuple is not plain JSON \(use a list\)"),
        ({"by_id": {7: "x"}}, r"data\['by_id'\]: key 7 is not a string"),
        ({"n": 2**64}, r"data\['n'\]: integer \d+ does not fit in 64 bits"),
        ({"name": "\ud800"}, r"str is not valid UTF-8"),
    ],
)
async def test_unserialisable_event_is_refused_and_nothing_is_published(
    h: Harness, data: dict[str, Any], problem: str
) -> None:
    await h.bus.ensure_group(STREAM, GROUP)
    bad = Event(type="order.created", data=data)

    with pytest.raises(BusEncodeError, match=rf"event {bad.id} \(order.created\): {problem}"):
        await h.bus.publish(STREAM, bad)
    with pytest.raises(BusEncodeError):
        await h.bus.publish_many(STREAM, [order(1), bad, order(2)])

    assert await h.bus.read(STREAM, GROUP, "c1") == []


async def test_unknown_group_is_a_clear_error(h: Harness) -> None:
    await h.bus.publish(STREAM, order(1))
    for stream in (STREAM, "never-written"):
        with pytest.raises(NoSuchGroupError, match="no consumer group 'ghost'"):
            await h.bus.read(stream, "ghost", "c1")
        with pytest.raises(NoSuchGroupError):
            await h.bus.pending_count(stream, "ghost")
        with pytest.raises(NoSuchGroupError):
            await h.bus.claim_stale(stream, "ghost", "c1", min_idle_ms=0)
        assert await h.bus.ack(stream, "ghost", ["1-0"]) == 0


async def test_bad_arguments_are_refused(h: Harness) -> None:
    with pytest.raises(ValueError, match="stream name 'bad stream' is invalid"):
        await h.bus.publish("bad stream", order(1))
    with pytest.raises(ValueError, match="group name '' is invalid"):
        await h.bus.ensure_group(STREAM, "")
    await h.bus.ensure_group(STREAM, GROUP)
    with pytest.raises(ValueError, match="message id 'abc' is invalid"):
        await h.bus.ack(STREAM, GROUP, ["abc"])
    with pytest.raises(ValueError, match="count must be >= 1"):
        await h.bus.read(STREAM, GROUP, "c1", count=0)
    with pytest.raises(ValueError, match="block_ms must be >= 0"):
        await h.bus.read(STREAM, GROUP, "c1", block_ms=-1)
    with pytest.raises(ValueError, match="min_idle_ms must be >= 0"):
        await h.bus.claim_stale(STREAM, GROUP, "c1", min_idle_ms=-5)
    with pytest.raises(ValueError, match="maxlen must be a positive"):
        h.new_bus(maxlen=0)


async def test_maxlen_trims_old_entries(h: Harness) -> None:
    bus = h.new_bus(maxlen=10)
    h.extra.append(bus)
    await bus.ensure_group(STREAM, GROUP)
    ids = [await bus.publish(STREAM, order(n)) for n in range(300)]

    got = await bus.read(STREAM, GROUP, "c1", count=1000)

    assert 10 <= len(got) < 300
    assert [d.message_id for d in got] == ids[-len(got) :]


async def test_closed_bus_refuses_work(h: Harness) -> None:
    await h.bus.close()
    await h.bus.close()
    with pytest.raises(BusClosedError):
        await h.bus.publish(STREAM, order(1))
    with pytest.raises(BusClosedError):
        await h.bus.read(STREAM, GROUP, "c1")


# Backend-specific and pure checks.


async def test_memory_close_wakes_blocked_readers() -> None:
    bus = InProcessBus()
    await bus.ensure_group(STREAM, GROUP)
    reader = asyncio.create_task(bus.read(STREAM, GROUP, "c1", block_ms=10_000))
    await asyncio.sleep(0.05)
    await bus.close()
    with pytest.raises(BusClosedError):
        await asyncio.wait_for(reader, timeout=2)


async def test_memory_ids_grow_when_the_clock_stalls_or_steps_back() -> None:
    clock = FakeClock(5_000)
    bus = InProcessBus(clock=clock)
    first = await bus.publish(STREAM, order(1))
    second = await bus.publish(STREAM, order(2))
    clock.now_ms = 4_000
    third = await bus.publish(STREAM, order(3))
    clock.now_ms = 6_000
    fourth = await bus.publish(STREAM, order(4))
    assert [first, second, third, fourth] == ["5000-0", "5000-1", "5000-2", "6000-0"]


async def test_redis_bus_leaves_a_caller_owned_client_open() -> None:
    client = await redis_or_skip()
    bus = RedisStreamsBus(client, key_prefix=new_prefix())
    await bus.close()
    assert await client.ping()
    await client.aclose()


async def test_create_bus_picks_the_backend() -> None:
    memory = create_bus("")
    redis_bus = create_bus(REDIS_URL, key_prefix="livebase-test:x:", maxlen=5)
    assert isinstance(memory, InProcessBus)
    assert isinstance(redis_bus, RedisStreamsBus)
    assert redis_bus.key("domain") == "livebase-test:x:domain"
    assert redis_bus.maxlen == 5
    await memory.close()
    await redis_bus.close()


def test_event_requires_an_aware_time_and_a_dotted_type() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Event(type="pin.created", occurred_at=datetime(2025, 5, 1, 8, 0))
    with pytest.raises(ValueError, match="type"):
        Event(type="Pin Created")
    with pytest.raises(ValueError, match="base"):
        Event(type="pin.created", base="Not A Slug")
    event = Event(type="viewer.heartbeat")
    assert event.occurred_at.tzinfo is UTC
    assert len(event.id) == 32
    assert event.id != Event(type="viewer.heartbeat").id


def test_decode_event_names_the_message() -> None:
    with pytest.raises(BusDecodeError, match=r"message 7-1: payload is not JSON"):
        decode_event(b"\x00garbage", "7-1")
    with pytest.raises(BusDecodeError, match=r"message 7-2: not a valid event \(type: Field"):
        decode_event(b'{"data": {}}', "7-2")


async def test_unreachable_redis_is_a_bus_error() -> None:
    bus = RedisStreamsBus("redis://127.0.0.1:1/0")
    with pytest.raises(BusUnavailableError, match="Redis unavailable for stream 'domain'"):
        await bus.publish(STREAM, order(1))
    await bus.close()
