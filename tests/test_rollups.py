"""Per-minute rollups: equal to the reference Accumulator, exactly once under redelivery and
crashes, late events in their own minute, and a day rebuilt from its Parquet archive."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from api_support import World
from events_support import LiveRef, live_session, post_events
from recompute_support import read_day
from rollup_support import figures, minutes, reference, row_count
from sqlalchemy import delete, update

from analytics.constants import GROUP_ARCHIVE, GROUP_ROLLUPS, STREAM_ANALYTICS
from analytics.consumer import Consumer
from analytics.directory import SessionDirectory
from analytics.models import MinuteRollup, PaidOrder, ProcessedEvent
from analytics.pipeline import ArchiveFeed, RollupFeed
from analytics.recompute import recompute_day
from analytics.schemas import AnalyticsEvent, parse_event, to_bus_event
from livebase.api.state import BUS, DB_SESSIONS, SETTINGS

LATENESS = timedelta(hours=24)


def raw(kind: str, where: LiveRef, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind, "event_id": uuid.uuid4().hex, "occurred_at": at.isoformat(),
        "base": where.base, "room": where.room, "session_id": where.id, **fields,
    }  # fmt: skip


def a_show(s: LiveRef, start: datetime, viewers: int, prefix: str = "") -> list[dict[str, Any]]:
    """A small broadcast: viewers come and go over four minutes, click, like, buy, refund."""
    out = [raw("stream.started", s, start)]
    for i in range(viewers):
        v = f"{prefix}v{i}"
        out.append(raw("viewer.joined", s, start + timedelta(seconds=5 + i), viewer_id=v))
        for beat in range(1, 1 + i % 4):
            at = start + timedelta(seconds=5 + i + 30 * beat)
            out.append(raw("viewer.heartbeat", s, at, viewer_id=v, watch_seconds=30))
        if i % 3 == 0:
            at = start + timedelta(seconds=100 + i)
            out.append(raw("product.clicked", s, at, viewer_id=v, source="player", product_id=7))
            out.append(raw("interaction.liked", s, at, viewer_id=v, count=2))
        if i % 6 == 0:
            out.append(raw(
                "order.paid", s, start + timedelta(seconds=150 + i), order_id=f"{s.id}-{i}",
                platform="douyin_shop", buyer_id=f"b{i}", amount_fen=1000 + i, product_id=7,
                viewer_id=v, viewer_source="player",
            ))  # fmt: skip
        out.append(raw("viewer.left", s, start + timedelta(seconds=200 + i), viewer_id=v,
                       watch_seconds=10))  # fmt: skip
    out.append(raw("product.impressed", s, start + timedelta(seconds=20), product_id=7, count=50))
    out.append(
        raw(
            "order.paid",
            s,
            start + timedelta(seconds=170),
            order_id=f"{s.id}-0",
            platform="douyin_shop",
            buyer_id="b0",
            amount_fen=1000,
        )
    )  # the same order again
    out.append(raw("order.refunded", s, start + timedelta(seconds=230), order_id=f"{s.id}-0",
                   refund_id=f"r{s.id}", platform="douyin_shop", amount_fen=400))  # fmt: skip
    out.append(raw("stream.ended", s, start + timedelta(seconds=240)))
    return out


def parsed(events: list[dict[str, Any]]) -> list[AnalyticsEvent]:
    return [parse_event(e) for e in events]


@pytest.fixture
async def scene(world: World) -> AsyncIterator[dict[str, Any]]:
    one = await live_session(world, "haifeng", room=0)
    two = await live_session(world, "haifeng", room=1)  # same host, same theme, same minutes
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    events = [*a_show(one, start, 13), *a_show(two, start, 5, prefix="x")]
    # A viewer who watches both rooms is one viewer of the base, but two (session, viewer) pairs.
    events.append(raw("viewer.joined", two, start + timedelta(seconds=10), viewer_id="v1"))
    app = world.api.app
    yield {"one": one, "two": two, "events": events, "start": start, "app": app}


def rollup_consumer(app: Any, **kw: Any) -> Consumer:
    feed = RollupFeed(SessionDirectory(), app[DB_SESSIONS], LATENESS)
    return Consumer(app[BUS], GROUP_ROLLUPS, feed, batch=kw.pop("batch", 100), **kw)


async def drain(consumer: Consumer) -> None:
    while await consumer.run_once():
        pass


async def check_against_reference(app: Any, scene: dict[str, Any]) -> None:
    one, two, events = scene["one"], scene["two"], parsed(scene["events"])
    async with app[DB_SESSIONS]() as db:
        for session in (one, two):
            mine = [e for e in events if e.session_id == session.id]
            got = await figures(db, "session", session.id, [session.id])
            assert got == reference(mine), session
        both = [one.id, two.id]
        for scope, scope_id in (("base", None), ("host", one.host_id), ("theme", one.theme_id)):
            base_id = scope_id if scope_id is not None else await _base_id(app, one)
            assert await figures(db, scope, base_id, both) == reference(events), scope
        product = await minutes(db, "product", 7)
        assert sum(m["clicks"] for m in product.values()) == sum(
            e.type == "product.clicked" for e in events
        )
        assert sum(m["impressions"] for m in product.values()) == 100


async def _base_id(app: Any, live: LiveRef) -> int:
    directory = SessionDirectory()
    async with app[DB_SESSIONS]() as db:
        return (await directory.lookup(db, [live.id]))[live.id].base_id


async def test_rollups_equal_the_reference_and_resending_changes_nothing(
    world: World, scene: dict[str, Any]
) -> None:
    app, admin = scene["app"], world.tokens["admin"]
    assert (await post_events(world.api, admin, scene["events"]))[0] == 202
    consumer = rollup_consumer(app)
    await drain(consumer)
    await check_against_reference(app, scene)
    # The sender retries the whole batch (it never saw the 202): nothing moves.
    assert (await post_events(world.api, admin, scene["events"]))[0] == 202
    await drain(consumer)
    await check_against_reference(app, scene)


@pytest.mark.parametrize("where", ["before commit", "after commit, before ack"])
async def test_a_crash_mid_batch_then_a_restart_gives_the_same_rollups(
    world: World, scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    app, events = scene["app"], scene["events"]
    # Several posts, so several bus entries (each post is one packed entry).
    for start in range(0, len(events), 37):
        chunk = events[start : start + 37]
        assert (await post_events(world.api, world.tokens["admin"], chunk))[0] == 202
    first = rollup_consumer(app, batch=1)
    assert await first.run_once()  # some batches go through
    import analytics.rollup_store as store

    if where == "before commit":
        real = store._add_minutes

        async def crash(db: Any, scope: str, sums: Any) -> None:
            await real(db, scope, sums)
            if scope == "theme":
                raise RuntimeError("killed mid-batch")

        monkeypatch.setattr(store, "_add_minutes", crash)
    else:

        async def crash_ack(*args: Any) -> int:
            raise RuntimeError("killed before the ack")

        monkeypatch.setattr(app[BUS], "ack", crash_ack)
    with pytest.raises(RuntimeError, match="killed"):
        await first.run_once()
    monkeypatch.undo()
    # A new process: its consumer takes over what the dead one left pending.
    restarted = rollup_consumer(app, claim_idle_ms=0)
    await drain(restarted)
    assert await app[BUS].pending_count(STREAM_ANALYTICS, GROUP_ROLLUPS) == 0
    await check_against_reference(app, scene)


async def test_late_events_land_in_their_minute_and_too_late_ones_are_dropped(
    world: World, scene: dict[str, Any]
) -> None:
    app, one = scene["app"], scene["one"]
    now = datetime.now(UTC)
    late = raw("viewer.joined", one, now - timedelta(hours=20), viewer_id="late")
    too_late = raw("viewer.joined", one, now - timedelta(hours=30), viewer_id="too-late")
    # Straight onto the bus, as a producer that skips the API could.
    await app[BUS].publish_many(STREAM_ANALYTICS, [to_bus_event(parse_event(late))])
    await app[BUS].publish_many(
        STREAM_ANALYTICS, [to_bus_event(parse_event(too_late, now=now - timedelta(hours=30)))]
    )
    await drain(rollup_consumer(app))
    async with app[DB_SESSIONS]() as db:
        got = await minutes(db, "session", one.id)
        assert await row_count(db, ProcessedEvent) == 1
    minute = parse_event(late).occurred_at.replace(second=0, microsecond=0)
    assert got == {minute: {**{k: 0 for k in got[minute]}, "views": 1, "viewers": 1}}


async def test_a_day_is_rebuilt_from_its_parquet_archive(
    world: World, scene: dict[str, Any]
) -> None:
    app = scene["app"]
    assert (await post_events(world.api, world.tokens["admin"], scene["events"]))[0] == 202
    data_dir = app[SETTINGS].data_dir
    archive = Consumer(app[BUS], GROUP_ARCHIVE, ArchiveFeed(data_dir), batch=1000)
    await drain(archive)
    # The archiver crashed after writing and was restarted: the same batch is written twice.
    await ArchiveFeed(data_dir)(
        [d for d in await _all(app)]  # a second copy of every message
    )
    day = scene["start"].date()
    assert len(read_day(data_dir, day)) == 2 * len(scene["events"])
    await drain(rollup_consumer(app))
    async with app[DB_SESSIONS]() as db:
        before = await minutes(db, "base", await _base_id(app, scene["one"]))
    # A bug doubled some figures and lost an order: the recompute puts them right.
    async with app[DB_SESSIONS]() as db, db.begin():
        await db.execute(update(MinuteRollup).values(views=MinuteRollup.views * 2))
        await db.execute(delete(PaidOrder).where(PaidOrder.order_id == f"{scene['one'].id}-6"))
    with pytest.raises(ValueError, match="lateness window"):
        await recompute_day(app[DB_SESSIONS], data_dir, day, lateness=LATENESS)
    done = await recompute_day(app[DB_SESSIONS], data_dir, day, lateness=LATENESS, force=True)
    assert (done.archived, done.counted, done.skipped) == (
        2 * len(scene["events"]),
        len(scene["events"]),
        0,
    )
    async with app[DB_SESSIONS]() as db:
        assert await minutes(db, "base", await _base_id(app, scene["one"])) == before
    await check_against_reference(app, scene)


async def _all(app: Any) -> list[Any]:
    bus = app[BUS]
    await bus.ensure_group(STREAM_ANALYTICS, "copy")
    return await bus.read(STREAM_ANALYTICS, "copy", "c", count=100_000)
