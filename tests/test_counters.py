"""Live counters: one contract for the in-process and the Redis store, and the API over them.

The Redis variant runs under a random key prefix of its own and deletes exactly its keys
afterwards (``bus_support``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from api_support import World
from bus_support import delete_prefix, new_prefix, redis_or_skip
from events_support import event, live_session, post_events

from analytics.aggregate import Accumulator
from analytics.constants import base_scope, session_scope
from analytics.directory import SessionInfo
from analytics.live import LiveCounters, MemoryCounters, epoch_ms, plan
from analytics.live_redis import RedisCounters
from analytics.pipeline import AnalyticsPipeline
from analytics.schemas import AnalyticsEvent, parse_event
from livebase.api.analytics_ctx import COUNTERS
from livebase.api.state import BUS, DB_SESSIONS, SETTINGS

NOW = datetime.now(UTC).replace(second=30, microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_now() -> None:
    """Presence expires by the wall clock (Redis TTLs too), so each test's NOW must be taken
    when the test runs, not when the module was collected minutes earlier."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


SESSIONS = {
    sid: SessionInfo(sid, 1, "haifeng", sid, f"studio-{sid}", 1, 1, "Asia/Shanghai")
    for sid in (11, 12)
}


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LiveCounters]:
    if request.param == "memory":
        yield MemoryCounters()
        return
    client = await redis_or_skip()
    prefix = new_prefix()
    yield RedisCounters(client, prefix=prefix)
    await delete_prefix(client, prefix)
    await client.aclose()


def ev(kind: str, session: int, at: datetime, **fields: Any) -> AnalyticsEvent:
    raw = {
        "type": kind, "event_id": uuid.uuid4().hex, "occurred_at": at, "base": "haifeng",
        "room": f"studio-{session}", "session_id": session, **fields,
    }  # fmt: skip
    return parse_event(raw, now=at)


def paid(session: int, at: datetime, order: str, fen: int, product: int | None = 1, **kw: Any):
    return ev(
        "order.paid", session, at, order_id=order, platform="douyin_shop", buyer_id=f"b{order}",
        amount_fen=fen, product_id=product, **kw,
    )  # fmt: skip


def viewing(minutes_ago: int, session: int, viewers: range) -> list[AnalyticsEvent]:
    at = NOW - timedelta(minutes=minutes_ago)
    return [
        ev("viewer.heartbeat", session, at, viewer_id=f"v{v}", watch_seconds=30) for v in viewers
    ]


def day() -> str:
    return NOW.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date().isoformat()


async def test_peak_gmv_and_orders_agree_with_the_reference(store: LiveCounters) -> None:
    events = [
        *viewing(3, 11, range(5)),  # 5 in the first minute
        *viewing(2, 11, range(2, 10)),  # 8 in the second: the peak
        *viewing(2, 12, range(3)),  # another room at the same time: the base adds them
        *viewing(0, 11, range(4)),
        paid(11, NOW, "o1", 1990, product=7),
        paid(11, NOW, "o1", 1990, product=7),  # the store reported it twice
        paid(11, NOW, "o2", 500, product=8),
        paid(11, NOW, "o3", 900, product=None),
        paid(12, NOW, "o4", 300, product=7),
        paid(11, NOW, "o5", 999, currency="USD"),  # another currency: set aside
    ]
    await store.apply(plan(events, SESSIONS))
    for scope, selected in (
        (session_scope(11), [e for e in events if e.session_id == 11]),
        (base_scope("haifeng", day()), events),
    ):
        snap = await store.snapshot(scope, epoch_ms(NOW))
        reference = Accumulator()
        for e in selected:
            reference.add(e)
        totals = reference.totals()
        assert snap.peak_concurrent_viewers == totals.peak_concurrent
        assert (snap.gmv_fen, snap.orders) == (totals.gmv_fen, totals.orders)
    session = await store.snapshot(session_scope(11), epoch_ms(NOW))
    assert session.peak_concurrent_viewers == 8
    assert session.concurrent_viewers == 4  # seen within the last 70 s
    assert [(p.product_id, p.gmv_fen, p.orders) for p in session.top_products] == [
        (7, 1990, 1),
        (8, 500, 1),
    ]
    whole = await store.snapshot(base_scope("haifeng", day()), epoch_ms(NOW))
    assert whole.peak_concurrent_viewers == 11
    best = whole.top_products[0]
    assert (best.product_id, best.gmv_fen, best.orders) == (7, 2290, 2)
    assert await store.rooms("haifeng") == {"studio-11": 11, "studio-12": 12}


async def test_applying_a_batch_twice_changes_nothing_but_the_version(store: LiveCounters) -> None:
    events = [*viewing(1, 11, range(6)), paid(11, NOW, "o1", 100)]
    update = plan(events, SESSIONS)
    await store.apply(update)
    first = await store.snapshot(session_scope(11), epoch_ms(NOW))
    await store.apply(update)
    again = await store.snapshot(session_scope(11), epoch_ms(NOW))
    assert again.version > first.version
    assert {**vars_of(again), "version": 0} == {**vars_of(first), "version": 0}


def vars_of(snap: Any) -> dict[str, Any]:
    return {name: getattr(snap, name) for name in snap.__slots__}


async def test_leaving_counts_and_an_older_beat_does_not_bring_a_viewer_back(
    store: LiveCounters,
) -> None:
    t = NOW - timedelta(seconds=20)
    await store.apply(plan([ev("viewer.joined", 11, t, viewer_id="a")], SESSIONS))
    await store.apply(plan([ev("viewer.joined", 11, t, viewer_id="b")], SESSIONS))
    left = ev("viewer.left", 11, t + timedelta(seconds=10), viewer_id="a", watch_seconds=10)
    await store.apply(plan([left], SESSIONS))
    late_beat = ev("viewer.heartbeat", 11, t + timedelta(seconds=5), viewer_id="a", watch_seconds=5)
    await store.apply(plan([late_beat], SESSIONS))
    snap = await store.snapshot(session_scope(11), epoch_ms(NOW))
    assert snap.concurrent_viewers == 1
    back = ev("viewer.joined", 11, t + timedelta(seconds=15), viewer_id="a")
    await store.apply(plan([back], SESSIONS))
    assert (await store.snapshot(session_scope(11), epoch_ms(NOW))).concurrent_viewers == 2
    # Nobody beats for longer than the presence window: nobody is watching any more.
    later = epoch_ms(NOW + timedelta(seconds=90))
    assert (await store.snapshot(session_scope(11), later)).concurrent_viewers == 0
    assert (await store.snapshot(session_scope(11), later)).peak_concurrent_viewers == 2


async def test_unknown_sessions_and_rooms(store: LiveCounters) -> None:
    await store.apply(plan(viewing(0, 99, range(3)), SESSIONS))
    assert await store.snapshot(session_scope(99)) == await store.snapshot("session:nothing")
    assert await store.rooms("haifeng") == {}
    assert await store.version(session_scope(99)) == 0


async def test_the_newest_session_of_a_room_wins(store: LiveCounters) -> None:
    older = SessionInfo(5, 1, "haifeng", 1, "studio-1", None, None, "Asia/Shanghai")
    newer = SessionInfo(6, 1, "haifeng", 1, "studio-1", None, None, "Asia/Shanghai")
    sessions = {5: older, 6: newer}
    await store.apply(plan(viewing(0, 6, range(1)), sessions))
    await store.apply(plan(viewing(0, 5, range(1)), sessions))
    assert await store.rooms("haifeng") == {"studio-1": 6}


# --- the API over a running pipeline -----------------------------------------------------------


@pytest.fixture
async def pipeline(world: World) -> AsyncIterator[AnalyticsPipeline]:
    app = world.api.app
    running = AnalyticsPipeline(app[BUS], app[DB_SESSIONS], app[COUNTERS], app[SETTINGS].data_dir)
    await running.start()
    yield running
    await running.stop()


async def wait_for(check: Any, seconds: float = 2.0) -> Any:
    """The first truthy result of ``check()`` within ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_counters_follow_posted_events_within_two_seconds(
    world: World, pipeline: AnalyticsPipeline
) -> None:
    api, admin = world.api, world.tokens["admin"]
    live = await live_session(world)
    events = [event("viewer.joined", live, viewer_id=f"v{i}") for i in range(3)]
    events.append(
        event("order.paid", live, order_id="o-1", platform="youzan", buyer_id="b", amount_fen=990)
    )
    assert (await post_events(api, admin, events))[0] == 202
    room_path = f"/api/v1/bases/haifeng/rooms/{live.room}/live"

    async def room() -> Any:
        status, body = await api.call("GET", room_path, world.tokens["haifeng.host"])
        assert status == 200, body
        return body if body["gmv_fen"] == 990 and body["concurrent_viewers"] == 3 else None

    body = await wait_for(room)
    assert body and body["session_id"] == live.id and body["peak_concurrent_viewers"] == 3
    status, base = await api.call("GET", "/api/v1/bases/haifeng/analytics/live", admin)
    assert status == 200
    assert (base["gmv_fen"], base["orders"], base["concurrent_viewers"]) == (990, 1, 3)
    assert [r["room"] for r in base["rooms"]] == [live.room]
    status, other = await api.call("GET", "/api/v1/bases/luhe/analytics/live", admin)
    assert (other["gmv_fen"], other["rooms"]) == (0, [])


async def test_server_sent_events_push_each_change(
    world: World, pipeline: AnalyticsPipeline
) -> None:
    api, token = world.api, world.tokens["haifeng.manager"]
    live = await live_session(world)
    resp = await api.client.get(
        f"/api/v1/bases/haifeng/rooms/{live.room}/live",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    )
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")

    async def next_live() -> dict[str, Any]:
        while True:
            line = await resp.content.readline()
            if line.startswith(b"data: "):
                return dict(orjson.loads(line[6:]))

    first = await asyncio.wait_for(next_live(), 2)
    assert first["gmv_fen"] == 0 and first["session_id"] is None
    order = event("order.paid", live, order_id="o", platform="youzan", buyer_id="b", amount_fen=5)
    loop = asyncio.get_running_loop()
    sent = loop.time()
    assert (await post_events(api, world.tokens["admin"], [order]))[0] == 202
    pushed = await asyncio.wait_for(next_live(), 2)
    assert pushed["gmv_fen"] == 5 and loop.time() - sent < 2
    resp.close()


async def test_a_host_sees_its_own_room_only(world: World) -> None:
    api = world.api
    status, rooms = await api.call("GET", "/api/v1/bases/haifeng/rooms", world.tokens["admin"])
    own = world.ids["haifeng.room"]
    other = next(r["slug"] for r in rooms["items"] if r["id"] != own)
    status, body = await api.call(
        "GET", f"/api/v1/bases/haifeng/rooms/{other}/live", world.tokens["haifeng.host"]
    )
    assert status == 404, body
    status, body = await api.call(
        "GET", "/api/v1/bases/haifeng/analytics/live", world.tokens["haifeng.host"]
    )
    assert status == 403
