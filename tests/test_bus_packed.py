"""Packed entries (many flat events in one stream entry), alike on the in-process bus and Redis.

The Redis variant runs under a key prefix of its own (``bus_support``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from bus_support import BUS_KINDS, bus_of_kind

from livebase.bus import Event, EventBus

STREAM, GROUP = "analytics", "counters"


@pytest.fixture(params=BUS_KINDS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    async with bus_of_kind(request.param) as on_kind:
        yield on_kind


def flat(n: int, **changes: Any) -> dict[str, Any]:
    at = datetime(2025, 5, 1, 16, 0, n, 250000, tzinfo=timezone(timedelta(hours=8)))
    event = {
        "type": "viewer.joined", "version": 1, "event_id": f"e-{n}", "base": "haifeng",
        "occurred_at": at.isoformat(), "room": "studio-1", "session_id": 7, "viewer_id": f"v{n}",
    }  # fmt: skip
    return {**event, **changes}


def as_event(n: int) -> Event:
    return Event(
        type="viewer.joined",
        id=f"e-{n}",
        base="haifeng",
        occurred_at=datetime(2025, 5, 1, 8, 0, n, 250000, tzinfo=UTC),
        data={"room": "studio-1", "session_id": 7, "viewer_id": f"v{n}"},
    )


async def test_a_packed_entry_is_one_delivery_per_event_under_one_id(bus: EventBus) -> None:
    await bus.ensure_group(STREAM, GROUP)
    single = await bus.publish(STREAM, as_event(0))
    packed = await bus.publish_packed(STREAM, orjson.dumps([flat(1), flat(2), flat(3)]))
    got = await bus.read(STREAM, GROUP, "c1")
    assert [d.message_id for d in got] == [single, packed, packed, packed]
    assert [d.event for d in got] == [as_event(n) for n in range(4)]
    assert [d.document for d in got[1:]] == [flat(1), flat(2), flat(3)]
    assert got[0].document is None  # an entry of its own: no flat document
    # Pending and acknowledged as entries: the packed one once, for all its events.
    assert await bus.pending_count(STREAM, GROUP) == 2
    assert await bus.ack(STREAM, GROUP, [packed]) == 1
    assert await bus.pending_count(STREAM, GROUP) == 1


async def test_a_claimed_packed_entry_comes_back_whole(bus: EventBus) -> None:
    await bus.ensure_group(STREAM, GROUP)
    packed = await bus.publish_packed(STREAM, orjson.dumps([flat(1), flat(2)]))
    assert len(await bus.read(STREAM, GROUP, "dies")) == 2
    again = await bus.claim_stale(STREAM, GROUP, "takes-over", min_idle_ms=0)
    assert [(d.message_id, d.delivery_count) for d in again] == [(packed, 2), (packed, 2)]
    assert [d.event for d in again] == [as_event(1), as_event(2)]


async def test_bad_events_of_a_packed_entry_are_left_out_and_named(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="livebase.bus")
    await bus.ensure_group(STREAM, GROUP)
    bad = [
        flat(9, type="Not A Type"),
        flat(9, event_id=""),
        {k: v for k, v in flat(9).items() if k != "event_id"},
        flat(9, occurred_at="2025-05-01T16:00:00"),  # no zone
        flat(9, version=0),
        "not an object",
    ]
    packed = await bus.publish_packed(STREAM, orjson.dumps([flat(1), *bad, flat(2)]))
    got = await bus.read(STREAM, GROUP, "c1")
    assert [d.event for d in got] == [as_event(1), as_event(2)]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(bad)
    for index, warning in enumerate(warnings, start=1):
        assert f"message {packed} event {index}" in warning
    # Spellings pydantic takes that the fast checks leave to it are still taken.
    await bus.publish_packed(STREAM, orjson.dumps([flat(3, occurred_at="2025-05-01 08:00:03.25Z")]))
    (late,) = await bus.read(STREAM, GROUP, "c1")
    assert late.event == as_event(3)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"[not json", "packed payload is not JSON"),
        (b'{"a": 1}', "packed payload is a JSON dict, not an array"),
        (b"[1, 2]", "no valid event in it"),
    ],
)
async def test_a_packed_entry_without_valid_events_is_acknowledged_and_skipped(
    bus: EventBus, caplog: pytest.LogCaptureFixture, payload: bytes, why: str
) -> None:
    caplog.set_level(logging.WARNING, logger="livebase.bus")
    await bus.ensure_group(STREAM, GROUP)
    bad = await bus.publish_packed(STREAM, payload)
    assert await bus.read(STREAM, GROUP, "c1") == []
    assert await bus.pending_count(STREAM, GROUP) == 0
    messages = [r.getMessage() for r in caplog.records]
    (warning,) = [m for m in messages if "skipping and acknowledging" in m]
    assert f"message {bad}" in warning and why in warning


async def test_entries_read_whole_decode_to_what_read_hands_out(bus: EventBus) -> None:
    await bus.ensure_group(STREAM, GROUP)
    await bus.ensure_group(STREAM, "other")
    single = await bus.publish(STREAM, as_event(0))
    payload = orjson.dumps([flat(1), flat(2, type="Not A Type"), flat(3)])
    packed = await bus.publish_packed(STREAM, payload)
    entries = await bus.read_entries(STREAM, GROUP, "c1")
    assert [(e.message_id, e.packed, e.delivery_count) for e in entries] == [
        (single, None, 1),
        (packed, payload, 1),
    ]
    decoded = await bus.decode_entries(STREAM, GROUP, entries)
    assert decoded == await bus.read(STREAM, "other", "c1")
    assert [d.event for d in decoded] == [as_event(0), as_event(1), as_event(3)]
    again = await bus.claim_stale_entries(STREAM, GROUP, "takes-over", min_idle_ms=0)
    assert [(e.message_id, e.packed, e.delivery_count) for e in again] == [
        (single, None, 2),
        (packed, payload, 2),
    ]
