"""``POST /api/v1/events``: checked, deduplicated within the batch, published all or nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_support import World
from events_support import LiveRef, event, live_session, post_events

from analytics.constants import MAX_BATCH_EVENTS, STREAM_ANALYTICS
from analytics.schemas import parse_event, to_bus_event
from livebase.api.state import BUS
from livebase.bus import BusUnavailableError, EventBus


@pytest.fixture(autouse=True)
def _no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


async def published(bus: EventBus) -> list[Any]:
    await bus.ensure_group(STREAM_ANALYTICS, "test-reader")
    deliveries = await bus.read(STREAM_ANALYTICS, "test-reader", "t", count=10_000)
    return [d.event for d in deliveries]


@pytest.fixture
async def live(world: World) -> LiveRef:
    return await live_session(world)


def batch_of(live: LiveRef) -> list[dict[str, Any]]:
    return [
        event("viewer.joined", live, viewer_id="v1"),
        event("viewer.heartbeat", live, viewer_id="v1", watch_seconds=30),
        event("product.clicked", live, viewer_id="v1", source="douyin", product_id=7),
        event(
            "order.paid", live, order_id="o-1", platform="douyin_shop", buyer_id="b-1",
            amount_fen=1990, product_id=7, viewer_id="v1", viewer_source="douyin",
        ),
        event("interaction.liked", live, viewer_id="v2", count=3, extra_key="ignored"),
    ]  # fmt: skip


async def test_a_valid_batch_is_published_as_the_schemas_map_it(
    world: World, live: LiveRef
) -> None:
    events = batch_of(live)
    status, body = await post_events(world.api, world.tokens["admin"], events)
    assert (status, body) == (202, {"accepted": 5, "duplicates": 0})
    got = await published(world.api.app[BUS])
    now = datetime.now(UTC)
    assert got == [to_bus_event(parse_event(raw, now=now)) for raw in events]


async def test_repeats_within_a_batch_count_once(world: World, live: LiveRef) -> None:
    events = batch_of(live)
    status, body = await post_events(world.api, world.tokens["admin"], [*events, *events[:2]])
    assert (status, body) == (202, {"accepted": 5, "duplicates": 2})
    assert [e.id for e in await published(world.api.app[BUS])] == [e["event_id"] for e in events]


async def test_a_base_manager_posts_for_its_own_base_only(world: World) -> None:
    own, other = await live_session(world, "haifeng"), await live_session(world, "luhe")
    token = world.tokens["haifeng.manager"]
    status, body = await post_events(world.api, token, batch_of(own))
    assert status == 202, body
    status, body = await post_events(world.api, token, [*batch_of(own), *batch_of(other)])
    assert status == 422
    assert {f["field"] for f in body["error"]["fields"]} == {
        f"events.{i}.session_id" for i in range(5, 10)
    }
    # The luhe manager's view of a haifeng session is that of a session that does not exist.
    missing = LiveRef(999_999, "haifeng", own.room, own.room_id, None, None)
    answers = []
    for target in (own, missing):
        status, body = await post_events(world.api, world.tokens["luhe.manager"], batch_of(target))
        assert status == 422
        messages = [f["message"] for f in body["error"]["fields"]]
        answers.append([m.replace(f"session {target.id} ", "session N ") for m in messages])
    assert answers[0] == answers[1]
    assert len(await published(world.api.app[BUS])) == 5


@pytest.mark.parametrize("role", ["haifeng.merchant", "haifeng.host"])
async def test_merchants_and_hosts_may_not_post(world: World, live: LiveRef, role: str) -> None:
    status, body = await post_events(world.api, world.tokens[role], batch_of(live))
    assert status == 403 and body["error"]["code"] == "forbidden"
    assert await published(world.api.app[BUS]) == []


async def test_unknown_rooms_and_sessions_are_named(world: World, live: LiveRef) -> None:
    other_room = await live_session(world, "haifeng", room=1)
    events = [
        event("viewer.joined", live, viewer_id="ok"),
        {**event("viewer.joined", live, viewer_id="v"), "room": "no-such-room"},
        {**event("viewer.joined", live, viewer_id="v"), "session_id": other_room.id},
        {**event("viewer.joined", live, viewer_id="v"), "session_id": 2**31},
        {**event("viewer.joined", live, viewer_id="v"), "base": "luhe"},
    ]
    status, body = await post_events(world.api, world.tokens["admin"], events)
    assert status == 422
    fields = body["error"]["fields"]
    assert [f["field"] for f in fields] == [f"events.{i}.session_id" for i in range(1, 5)]
    assert "haifeng/no-such-room" in fields[0]["message"]
    assert body["error"]["message"] == "4 of 5 events are not valid; nothing was accepted"
    assert await published(world.api.app[BUS]) == []


def _bad_events(live: LiveRef) -> list[tuple[Any, set[str]]]:
    now = datetime.now(UTC)
    ok = event("viewer.heartbeat", live, viewer_id="v", watch_seconds=30)
    order = event(
        "order.paid", live, order_id="o", platform="douyin_shop", buyer_id="b", amount_fen=100
    )
    return [
        ("not an object", {"(event)"}),
        ({**ok, "type": "viewer.teleported"}, {"type"}),
        ({k: v for k, v in ok.items() if k != "type"}, {"type"}),
        ({**ok, "version": 2}, {"version"}),
        ({**ok, "version": True}, {"version"}),
        ({**ok, "event_id": ""}, {"event_id"}),
        ({**ok, "occurred_at": "2025-05-01T12:00:00"}, {"occurred_at"}),
        ({**ok, "occurred_at": "yesterday"}, {"occurred_at"}),
        ({**ok, "occurred_at": (now + timedelta(minutes=10)).isoformat()}, {"occurred_at"}),
        ({**ok, "occurred_at": (now - timedelta(hours=25)).isoformat()}, {"occurred_at"}),
        ({**ok, "watch_seconds": 301}, {"watch_seconds"}),
        ({**ok, "watch_seconds": 30.0}, {"watch_seconds"}),
        ({**ok, "watch_seconds": True}, {"watch_seconds"}),
        ({**ok, "session_id": "12"}, {"session_id"}),
        ({**ok, "base": "Bad Base"}, {"base"}),
        ({**ok, "source": None}, {"source"}),
        ({**order, "amount_fen": -1}, {"amount_fen"}),
        ({**order, "amount_fen": 19.9}, {"amount_fen"}),
        ({**order, "currency": "cny"}, {"currency"}),
        ({**order, "viewer_id": "v"}, {"(event)"}),
        ({k: v for k, v in order.items() if k != "buyer_id"}, {"buyer_id"}),
    ]


async def test_malformed_events_are_each_named_and_nothing_is_published(
    world: World, live: LiveRef
) -> None:
    cases = _bad_events(live)
    good = event("viewer.joined", live, viewer_id="fine")
    status, body = await post_events(
        world.api, world.tokens["admin"], [good, *[c for c, _ in cases]]
    )
    assert status == 422, body
    err = body["error"]
    assert set(err) == {"status", "code", "message", "fields"} and err["code"] == "validation_error"
    by_index: dict[int, set[str]] = {}
    for f in err["fields"]:
        _, index, name = f["field"].split(".", 2)
        by_index.setdefault(int(index), set()).add(name)
        assert f["message"]
    assert by_index == {i + 1: fields for i, (_, fields) in enumerate(cases)}
    assert await published(world.api.app[BUS]) == []


async def test_the_late_and_future_messages_say_why(world: World, live: LiveRef) -> None:
    now = datetime.now(UTC)
    late = event("viewer.joined", live, at=now - timedelta(hours=30), viewer_id="v")
    future = event("viewer.joined", live, at=now + timedelta(hours=1), viewer_id="v")
    status, body = await post_events(world.api, world.tokens["admin"], [late, future])
    assert status == 422
    late_msg, future_msg = (f["message"] for f in body["error"]["fields"])
    assert "lateness window of 24 h" in late_msg
    assert "in the future" in future_msg


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"events": "nope"}, 422),
        ({"events": [], "extra": 1}, 422),
        ({}, 422),
        ([], 422),
    ],
)
async def test_bad_bodies(world: World, body: Any, status: int) -> None:
    got, payload = await world.api.call("POST", "/api/v1/events", world.tokens["admin"], body)
    assert got == status and payload["error"]["status"] == status


async def test_too_many_events(world: World, live: LiveRef) -> None:
    one = event("viewer.joined", live, viewer_id="v")
    events = [{**one, "event_id": str(i)} for i in range(MAX_BATCH_EVENTS + 1)]
    status, body = await post_events(world.api, world.tokens["admin"], events)
    assert status in (413, 422), body
    assert await published(world.api.app[BUS]) == []


async def test_an_empty_batch_is_accepted(world: World) -> None:
    status, body = await post_events(world.api, world.tokens["haifeng.manager"], [])
    assert (status, body) == (202, {"accepted": 0, "duplicates": 0})


async def test_bus_down_answers_503_with_retry_after(
    world: World, live: LiveRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = world.api.app[BUS]

    async def unreachable(stream: str, packed: bytes) -> str:
        raise BusUnavailableError("Redis unavailable: connection refused")

    monkeypatch.setattr(bus, "publish_packed", unreachable)
    resp = await world.api.client.post(
        "/api/v1/events",
        json={"events": batch_of(live)},
        headers={"Authorization": f"Bearer {world.tokens['admin']}"},
    )
    assert resp.status == 503 and resp.headers["Retry-After"] == "2"
    assert (await resp.json())["error"]["code"] == "bus_unavailable"
