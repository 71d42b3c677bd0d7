"""The live counters read whole entries (``parse_entries``): they must take exactly what the
bus's deliveries through ``parse_checked`` take, with the same warnings, on the in-process bus
and on Redis.

The Redis variant runs under a key prefix of its own (``bus_support``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from bus_support import BUS_KINDS, bus_of_kind

from analytics.consumer import parse_checked, parse_entries
from analytics.fastpath import check_packed
from livebase.bus import Event, EventBus

STREAM = "analytics"
NOW = datetime.now(UTC).replace(microsecond=250000)


@pytest.fixture(params=BUS_KINDS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    async with bus_of_kind(request.param) as on_kind:
        yield on_kind


def flat(n: int, kind: str = "viewer.heartbeat", **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"viewer_id": f"v{n}", "source": "player", "watch_seconds": 30}
    if kind == "viewer.joined":
        fields = {"viewer_id": f"v{n}"}
    elif kind == "order.paid":
        fields = {
            "order_id": f"o{n}", "platform": "youzan", "buyer_id": "b", "amount_fen": 990,
            "product_id": 3, "viewer_id": f"v{n}", "viewer_source": "douyin",
        }  # fmt: skip
    elif kind == "interaction.liked":
        fields = {"viewer_id": f"v{n}", "count": 2}
    at = NOW - timedelta(seconds=n % 50)
    event = {
        "type": kind, "version": 1, "event_id": f"e-{n}", "base": "haifeng",
        "occurred_at": at.isoformat(), "room": "studio-1", "session_id": 7, **fields,
    }  # fmt: skip
    return {**event, **changes}


def packed(*events: Any) -> bytes:
    return orjson.dumps(list(events))


ODD: list[Any] = [
    None, True, 0, -1, 1.0, 2**63, "", "x", "Bad Slug", "a" * 129, "CNY", "cny", [], {},
    "2025-05-01 11:59:00+00:00", "2025-05-01T11:59:00", "1e400", "ü", "\u0000",
]  # fmt: skip
KINDS = ["viewer.heartbeat", "viewer.joined", "order.paid", "interaction.liked"]


def mutated(rng: random.Random, n: int) -> dict[str, Any]:
    event = flat(n, rng.choice(KINDS))
    name = rng.choice([*event, "extra"])
    choice = rng.randrange(3)
    if choice == 0:
        event.pop(name, None)
    else:
        event[name] = rng.choice(ODD)
    return event


SPECIAL: list[bytes] = [
    packed(*(flat(n, KINDS[n % 4]) for n in range(40))),
    packed(flat(1), flat(2, room="Bad Slug"), flat(3)),
    packed(flat(1), flat(2, type="Not A Type"), flat(3, event_id="")),
    packed(flat(1, viewer_id="观众-1"), flat(2)),  # not ASCII: read by orjson
    packed(flat(1), flat(2, viewer_id="v\u0001")),  # an escape
    packed(flat(1), flat(2, occurred_at=(NOW + timedelta(hours=1)).isoformat())),  # future
    packed(flat(1, session_id=2**64 - 1), flat(2)),
    packed(flat(1), flat(2, extra=1)).replace(b'"extra":1', b'"extra":18446744073709551616'),
    packed(flat(1), flat(2, viewer_id_=1)).replace(b'"viewer_id_":1', b'"viewer_id":"w"'),
    packed(flat(1)).replace(b'"session_id":7', b'"session_id":18446744073709551616'),
    packed(flat(1)).replace(b'"room"', b'"x":1e400,"room"'),
    packed(flat(1)).replace(b'"room"', b'"x":"\xff","room"'),
    packed(flat(1)).replace(b'"viewer_id":"v1"', b'"viewer_id":"v\\ud800"'),
    packed(flat(1)).replace(b'"viewer_id":"v1"', b'"viewer_id":"v\\u00e9"'),
    b"[]",
    b"[not json",
    b'{"a": 1}',
    b"[1, 2]",
]


def same(result: list[Any]) -> list[tuple[str, datetime, str]]:
    return [(kind, moment, repr(event)) for kind, moment, event in result]


async def test_entries_are_taken_as_their_deliveries_are(
    bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(5)
    payloads = [*SPECIAL]
    payloads += [packed(*(mutated(rng, n) for n in range(i, i + 20))) for i in range(0, 600, 20)]
    await bus.ensure_group(STREAM, "deliveries")
    await bus.ensure_group(STREAM, "entries")
    single = Event(type="viewer.joined", base="haifeng", occurred_at=NOW, data=flat(9))
    await bus.publish(STREAM, single)
    for payload in payloads:
        await bus.publish_packed(STREAM, payload)
    caplog.set_level(logging.WARNING)
    count = len(payloads) + 1
    by_deliveries = parse_checked(await bus.read(STREAM, "deliveries", "c", count=count), "x")
    road = sorted(r.getMessage().replace("deliveries", "entries") for r in caplog.records)
    caplog.clear()
    entries = await bus.read_entries(STREAM, "entries", "c", count=count)
    by_entries = await parse_entries(bus, STREAM, "entries", entries, "x")
    assert same(by_entries) == same(by_deliveries)
    assert sorted(r.getMessage() for r in caplog.records) == road
    assert len(by_entries) > 150
    # Entries without a valid event were acknowledged on both roads alike.
    assert await bus.pending_count(STREAM, "entries") == await bus.pending_count(
        STREAM, "deliveries"
    )


def test_only_entries_every_event_of_which_is_vouched_for_take_the_fast_road() -> None:
    assert check_packed(SPECIAL[0], NOW) is not None
    assert check_packed(SPECIAL[3], NOW) is not None  # orjson's reading of it
    for slow in (1, 2, 5, 9, 11, 12, 14, 15, 16, 17):
        assert check_packed(SPECIAL[slow], NOW) is None, slow
