"""Day sets and counters: each distinct id once per scope and local day, counted as stored.

The counters must equal the sizes of the unions of the session sets, cut at the base's local
midnight, however the events arrive (one at a time, repeated, in one batch), and the migration
that derives them from the session sets must give the same rows.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from api_support import World
from events_support import LiveRef, live_session
from recompute_support import figures
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.day_sets import rebuild_days
from analytics.directory import SessionDirectory
from analytics.models import DayCount, DayMember
from analytics.rollup_store import PRUNE_MARGIN, apply_events, forget_before, prune_horizon
from analytics.schemas import AnalyticsEvent, parse_event
from livebase.api.state import DB_SESSIONS
from livebase.db.migrate import alembic_config, upgrade

# 2025-05-01 00:00 in Asia/Shanghai (the seeded bases' zone) is 2025-04-30 16:00 UTC.
MIDNIGHT = datetime(2025, 4, 30, 16, tzinfo=UTC)
DAY, EVE = date(2025, 5, 1), date(2025, 4, 30)
M = timedelta(minutes=1)


def raw(kind: str, where: LiveRef, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind, "event_id": uuid.uuid4().hex, "occurred_at": at.isoformat(),
        "base": where.base, "room": where.room, "session_id": where.id, **fields,
    }  # fmt: skip


def paid(where: LiveRef, at: datetime, order: str, viewer: str) -> dict[str, Any]:
    return raw("order.paid", where, at, order_id=order, platform="douyin_shop",
               buyer_id=f"b-{viewer}", amount_fen=1000, viewer_id=viewer,
               viewer_source="player")  # fmt: skip


def a_day(a: LiveRef, b: LiveRef) -> list[AnalyticsEvent]:
    """Two sessions of one host and base, on two themes, across local midnight."""
    now = MIDNIGHT + timedelta(days=2)
    rows = [
        raw("viewer.joined", a, MIDNIGHT - M, viewer_id="v0"),  # the eve, in a
        raw("viewer.joined", a, MIDNIGHT + M, viewer_id="v0"),  # already in a: the eve only
        raw("viewer.joined", b, MIDNIGHT + M, viewer_id="v0"),  # new in b: the day
        raw("viewer.joined", a, MIDNIGHT + 2 * M, viewer_id="v1"),
        raw("viewer.joined", b, MIDNIGHT + 3 * M, viewer_id="v1"),
        raw("viewer.joined", b, MIDNIGHT + 3 * M, viewer_id="v2"),
        # v1 clicks in a and pays in b: a click buyer of the host and base, of neither session.
        raw("product.clicked", a, MIDNIGHT + 4 * M, viewer_id="v1", product_id=7),
        paid(b, MIDNIGHT + 5 * M, "o1", "v1"),
        # v2 clicks and pays in b, twice: one click buyer.
        raw("product.clicked", b, MIDNIGHT + 6 * M, viewer_id="v2", product_id=7),
        paid(b, MIDNIGHT + 7 * M, "o2", "v2"),
        paid(b, MIDNIGHT + 8 * M, "o3", "v2"),
    ]
    return [parse_event(r, now=now, max_skew=timedelta(days=3)) for r in rows]


async def count(db: async_sessionmaker[AsyncSession], events: list[AnalyticsEvent], n: int) -> None:
    """Count ``events`` through the consumer's store, ``n`` per transaction."""
    for start in range(0, len(events), n):
        batch = events[start : start + n]
        async with db() as session, session.begin():
            known = await SessionDirectory().lookup(session, {e.session_id for e in batch})
            await apply_events(session, batch, known)


async def day_tables(db: async_sessionmaker[AsyncSession]) -> tuple[set[Any], dict[Any, int]]:
    async with db() as session:
        members = {tuple(r) for r in await session.execute(select(*DayMember.__table__.c))}
        counts = {
            (r.day, r.scope, r.scope_id, r.kind): r.members
            for r in await session.scalars(select(DayCount))
        }
    return members, counts


async def two_sessions(world: World) -> tuple[LiveRef, LiveRef]:
    return (
        await live_session(world, "haifeng", room=0),
        await live_session(world, "haifeng", room=1, theme="culture-tourism-wellness"),
    )


async def test_counters_are_the_sizes_of_the_local_days_unions(world: World) -> None:
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    events = a_day(a, b)
    await count(db, events, 1)
    await count(db, events, 1)  # redelivered: nothing counts twice
    members, counts = await day_tables(db)
    host, base = a.host_id, world.ids["haifeng.base"]
    assert host is not None and a.theme_id is not None and b.theme_id is not None
    expected = {
        (EVE, "session", a.id, "viewer"): 1,
        (EVE, "host", host, "viewer"): 1,
        (EVE, "theme", a.theme_id, "viewer"): 1,
        (EVE, "base", base, "viewer"): 1,
        (DAY, "session", a.id, "viewer"): 1,  # v1
        (DAY, "session", a.id, "clicker"): 1,
        (DAY, "session", b.id, "viewer"): 3,
        (DAY, "session", b.id, "clicker"): 1,
        (DAY, "session", b.id, "buyer"): 2,
        (DAY, "session", b.id, "paying_viewer"): 2,
        (DAY, "session", b.id, "click_buyer"): 1,  # v2
        (DAY, "theme", a.theme_id, "viewer"): 1,
        (DAY, "theme", a.theme_id, "clicker"): 1,
        (DAY, "theme", b.theme_id, "viewer"): 3,
        (DAY, "theme", b.theme_id, "clicker"): 1,
        (DAY, "theme", b.theme_id, "buyer"): 2,
        (DAY, "theme", b.theme_id, "paying_viewer"): 2,
        (DAY, "theme", b.theme_id, "click_buyer"): 1,
    }
    for scope, scope_id in (("host", host), ("base", base)):
        expected |= {
            (DAY, scope, scope_id, "viewer"): 3,  # v0 (from b), v1, v2
            (DAY, scope, scope_id, "clicker"): 2,
            (DAY, scope, scope_id, "buyer"): 2,
            (DAY, scope, scope_id, "paying_viewer"): 2,
            (DAY, scope, scope_id, "click_buyer"): 2,  # v1 and v2
        }
    assert counts == expected
    assert len(members) == sum(expected.values())


async def test_one_batch_gives_the_same_rows(world: World) -> None:
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    await count(db, a_day(a, b), 1)
    one_by_one = await day_tables(db)
    async with db() as session, session.begin():
        for table in (
            "analytics_members",
            "analytics_processed_events",
            "analytics_orders",
            "analytics_presence",
            "analytics_day_members",
            "analytics_day_counts",
        ):
            await session.execute(delete(DayMember.metadata.tables[table]))  # fmt: skip
    await count(db, a_day(a, b), 100)
    assert await day_tables(db) == one_by_one


async def test_the_prune_drops_the_member_rows_of_ended_local_days_and_keeps_their_counts(
    world: World,
) -> None:
    """The prune drops the member rows of a local day (Shanghai's) that ended before its
    horizon: the counters, the reports and the rankings stay; the day still open keeps its
    rows, and a member joining it again is still known."""
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    await count(db, a_day(a, b), 3)
    members, counts = await day_tables(db)
    assert {m[1] for m in members} == {EVE, DAY}
    as_of = MIDNIGHT + timedelta(days=3)
    async with db() as session:
        shown = await figures(session, [EVE, DAY], as_of)

    lateness = timedelta(hours=24)
    # The horizon an hour into the day: the eve has ended, the day has not.
    now = MIDNIGHT + timedelta(hours=1) + lateness + PRUNE_MARGIN
    async with db() as session, session.begin():
        await forget_before(session, prune_horizon(now, lateness))
    assert await day_tables(db) == ({m for m in members if m[1] == DAY}, counts)
    async with db() as session:
        assert await figures(session, [EVE, DAY], as_of) == shown
    # v2, of session b, joins a: new to a and its theme, known to the host and the base.
    again = raw("viewer.joined", a, MIDNIGHT + 9 * M, viewer_id="v2")
    await count(db, [parse_event(again, now=as_of, max_skew=timedelta(days=3))], 1)
    assert a.theme_id is not None
    assert (await day_tables(db))[1] == counts | {
        (DAY, "session", a.id, "viewer"): 2,
        (DAY, "theme", a.theme_id, "viewer"): 2,
    }

    # A second before the day's end (local midnight) it keeps its rows; from then on not.
    day_end = MIDNIGHT + timedelta(days=1)
    for horizon, left in ((day_end - timedelta(seconds=1), True), (day_end, False)):
        async with db() as session, session.begin():
            await forget_before(session, horizon)
        rows, _ = await day_tables(db)
        assert bool(rows) == left, horizon


async def test_the_migration_derives_the_day_sets_of_what_was_counted(world: World) -> None:
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    await count(db, a_day(a, b), 3)
    counted = await day_tables(db)
    engine = db.kw["bind"]

    def down(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "a002")

    async with engine.begin() as conn:
        await conn.run_sync(down)
    await upgrade(engine)
    assert await day_tables(db) == counted


async def test_a_click_and_its_payment_in_two_racing_transactions_make_one_click_buyer(
    world: World, database_url: str
) -> None:
    """Two consumers store v1's click (session a) and its payment (session b) at once, each
    looking for the other's row of the same day: the per-day lock makes the payment wait until
    the click commits, and then find it. (SQLite writes one transaction at a time.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs two writing transactions at once")
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    now, skew = MIDNIGHT + timedelta(days=2), timedelta(days=3)
    clicked = raw("product.clicked", a, MIDNIGHT + 4 * M, viewer_id="v1", product_id=7)
    click = parse_event(clicked, now=now, max_skew=skew)
    payment = parse_event(paid(b, MIDNIGHT + 5 * M, "o1", "v1"), now=now, max_skew=skew)

    async def store(event: AnalyticsEvent, before_commit: asyncio.Event | None) -> None:
        async with db() as session, session.begin():
            known = await SessionDirectory().lookup(session, {event.session_id})
            await apply_events(session, [event], known)
            if before_commit is not None:
                await before_commit.wait()

    release = asyncio.Event()
    first = asyncio.create_task(store(click, release))
    await asyncio.sleep(0.3)  # the click is stored, not committed
    second = asyncio.create_task(store(payment, None))
    await asyncio.sleep(0.5)  # without the lock the payment would commit now, seeing no click
    release.set()
    await asyncio.gather(first, second)
    _, counts = await day_tables(db)
    host, base = a.host_id, world.ids["haifeng.base"]
    for scope, scope_id in (("host", host), ("base", base)):
        assert counts.get((DAY, scope, scope_id, "click_buyer")) == 1, (scope, counts)


@pytest.mark.parametrize("first", ["consumer", "rebuild"])
async def test_a_rebuild_and_a_consumer_storing_a_member_of_the_same_day_both_count_it(
    world: World, database_url: str, first: str
) -> None:
    """A rebuild of the day sets (a recompute's) and a consumer storing a new member of the
    same day, in transactions open at once: whichever began first, the other waits for it to
    commit, and the counters end as the sizes of the unions of the session sets. (Without
    the wait, a rebuild after an uncommitted member missed its rows in its delete, saw the
    member once it committed, and wrote its rows again.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs two writing transactions at once")
    a, b = await two_sessions(world)
    db = world.api.app[DB_SESSIONS]
    await count(db, a_day(a, b), 100)
    joined = raw("viewer.joined", a, MIDNIGHT + 9 * M, viewer_id="v9")
    event = parse_event(joined, now=MIDNIGHT + timedelta(days=2), max_skew=timedelta(days=3))
    whole_day = (MIDNIGHT, MIDNIGHT + timedelta(days=1))

    async def store(session: AsyncSession) -> None:
        known = await SessionDirectory().lookup(session, {event.session_id})
        await apply_events(session, [event], known)

    async def rebuild(session: AsyncSession) -> None:
        await rebuild_days(session, *whole_day)

    async def run(step: Any, before_commit: asyncio.Event | None) -> None:
        async with db() as session, session.begin():
            await step(session)
            if before_commit is not None:
                await before_commit.wait()

    steps = {"consumer": store, "rebuild": rebuild}
    release = asyncio.Event()
    holder = asyncio.create_task(run(steps.pop(first), release))
    await asyncio.sleep(0.3)  # the first step is done, not committed
    second = asyncio.create_task(run(*steps.values(), None))
    await asyncio.sleep(0.5)  # the second runs into the first's rows, or waits for it
    assert not second.done()
    release.set()
    await asyncio.gather(holder, second)
    live = await day_tables(db)
    async with db() as session, session.begin():
        await rebuild_days(session, *whole_day)
    assert await day_tables(db) == live
    assert live[1][(DAY, "base", world.ids["haifeng.base"], "viewer")] == 4  # v0, v1, v2, v9
