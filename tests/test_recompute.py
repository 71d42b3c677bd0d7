"""The column-wise recompute of a day gives exactly the tables the live consumer's code gives."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import World
from events_support import LiveRef, live_session
from recompute_support import Day, count_per_event, figures, open_day_rows, tables
from sqlalchemy import delete, func, select

from analytics.archive import day_bounds
from analytics.day_sets import add_session_members, rebuild_days
from analytics.directory import SessionDirectory
from analytics.models import (
    DayCount,
    DayMember,
    MinuteRollup,
    PaidOrder,
    Presence,
    ProcessedEvent,
    SessionSpan,
    SetMember,
)
from analytics.recompute import recompute_day
from analytics.rollup_store import PRUNE_MARGIN, apply_events, clear_span, prune_horizon
from analytics.schemas import parse_event
from livebase.api.state import DB_SESSIONS, SETTINGS

LATENESS = timedelta(hours=24)
S = timedelta(seconds=1)


def a_show(day: Day, s: LiveRef, t: datetime, tag: str) -> None:
    """Every event type for one session, with repeats of orders, refunds and rows."""
    day.add("stream.started", s, t)
    for i in range(12):
        v, at = f"v{i}", t + 7 * i * S + 1234 * i * timedelta(microseconds=1)
        src = {"source": "douyin"} if i % 3 == 0 else {}
        day.add("viewer.joined", s, at, viewer_id=v, **src)
        for beat in range(i % 4):
            day.add("viewer.heartbeat", s, at + 30 * (beat + 1) * S, viewer_id=v,
                    watch_seconds=30, **src)  # fmt: skip
        day.add("viewer.left", s, at + 140 * S, viewer_id=v, watch_seconds=i % 2 * 10, **src)
        if i % 4 == 1:
            day.add("interaction.liked", s, at + 50 * S, viewer_id=v, count=3)
            day.add("interaction.commented", s, at + 51 * S, viewer_id=v, text="好")
            day.add("product.clicked", s, at + 52 * S, viewer_id=v, product_id=7 + i % 2)
        if i % 5 == 2:
            day.add("interaction.shared", s, at + 53 * S, viewer_id=v, source="kuaishou")
            day.add("interaction.followed", s, at + 54 * S, viewer_id=v)
    day.add("product.impressed", s, t + 20 * S, product_id=7, count=5)
    day.add("product.impressed", s, t + 21 * S, product_id=8, viewer_id="v1")
    order = {"platform": "douyin_shop", "amount_fen": 1990, "buyer_id": "b1"}
    day.add("order.created", s, t + 60 * S, order_id=f"{tag}-1", **order)
    day.add("order.paid", s, t + 61 * S, order_id=f"{tag}-1", product_id=7, viewer_id="v1",
            viewer_source="player", **order)  # fmt: skip
    day.again()
    # The same order under another event id, a minute later: counted once, in its first minute.
    day.add("order.paid", s, t + 125 * S, order_id=f"{tag}-1", **order)
    day.add("order.paid", s, t + 62 * S, order_id=f"{tag}-2", platform="youzan", buyer_id="b1",
            amount_fen=0, quantity=2)  # fmt: skip
    day.add("order.paid", s, t + 63 * S, order_id=f"{tag}-3", currency="USD", **order)
    refund = {"order_id": f"{tag}-1", "platform": "douyin_shop", "refund_id": f"r{tag}"}
    day.add("order.refunded", s, t + 180 * S, amount_fen=500, **refund)
    day.add("order.refunded", s, t + 240 * S, amount_fen=500, **refund)
    day.add("order.refunded", s, t + 241 * S, amount_fen=9, currency="USD",
            **{**refund, "refund_id": f"u{tag}"})  # fmt: skip
    day.add("stream.ended", s, t + 300 * S)


def not_counted(day: Day, s: LiveRef, t: datetime, lateness: timedelta = LATENESS) -> int:
    """Rows the recompute must skip; returns how many."""
    bad: list[tuple[str, dict[str, Any]]] = [
        ("viewer.joined", {}),  # no viewer_id
        ("viewer.heartbeat", {"viewer_id": "v1", "watch_seconds": 301}),
        ("viewer.heartbeat", {"viewer_id": "v1", "watch_seconds": 30.0}),
        ("interaction.liked", {"viewer_id": "v1", "count": True}),
        ("viewer.joined", {"viewer_id": "v1", "source": "Douyin"}),
        ("viewer.joined", {"viewer_id": "", "source": "player"}),
        ("order.paid", {"order_id": "x", "platform": "youzan", "buyer_id": "b",
                        "amount_fen": 19.9}),
        ("order.paid", {"order_id": "x", "platform": "youzan", "buyer_id": "b", "amount_fen": 1,
                        "viewer_id": "v1"}),
        ("order.refunded", {"order_id": "x", "refund_id": "y", "platform": "youzan",
                            "amount_fen": 0}),
        ("viewer.waved", {"viewer_id": "v1"}),
    ]  # fmt: skip
    for kind, data in bad:
        day.add(kind, s, t, **data)
    day.add("viewer.joined", None, t, room="Bad Room", session_id=s.id, viewer_id="v1")
    day.add("viewer.joined", None, t, room=s.room, session_id=str(s.id), viewer_id="v1")
    day.add("viewer.joined", s, t, version=2, viewer_id="v1")
    day.add("viewer.joined", s, t, viewer_id="v1", event_id="clash")
    day.rows[-1]["data"] = day.rows[-1]["data"][:-1] + ',"event_id":"other"}'
    day.add("viewer.joined", s, t, viewer_id="late", delay=lateness + S)
    day.add("viewer.joined", s, t, viewer_id="future", delay=-6 * 60 * S)
    return len(bad) + 6


async def other_days(db: Any, s: LiveRef, day: date, taken: str, taken_after: str) -> None:
    """What other days left: an order, a set member (and its day sets) and a ledger entry
    under today's keys, and a ledger entry of the next day under another of today's ids."""
    before = day_bounds(day)[0] - timedelta(hours=1)
    after = day_bounds(day)[1] + timedelta(hours=1)
    db.add_all(
        [
            PaidOrder(platform="douyin_shop", order_id="a-1", session_id=s.id, product_id=7,
                      amount_fen=1990, minute=before),
            SetMember(session_id=s.id, kind="viewer", namespace="player", member_id="v2",
                      first_minute=before),
            ProcessedEvent(event_id=taken, occurred_at=before),
            ProcessedEvent(event_id=taken_after, occurred_at=after),
        ]
    )  # fmt: skip
    known = await SessionDirectory().lookup(db, [s.id])
    await add_session_members(db, [(s.id, "viewer", "player", "v2", before)], known)


#: (days ago, lateness, force) per case; see the test.
CASES = {
    "open": (1, LATENESS, True),
    "sealed": (3, LATENESS, False),
    "half-sealed": (2, None, False),
}


def after_prune(found: dict[str, list[Any]], horizon: datetime) -> dict[str, list[Any]]:
    """``found`` (:func:`tables`) as the prune at ``horizon`` leaves it, day-set rows aside."""
    out = {name: rows for name, rows in found.items() if name != DayMember.__tablename__}
    for model in (Presence, ProcessedEvent):
        out[model.__tablename__] = [r for r in found[model.__tablename__] if r[1] >= horizon]
    return out


@pytest.mark.parametrize("case", list(CASES))
async def test_the_column_wise_recompute_gives_the_live_consumers_figures(
    world: World, tmp_path: Path, case: str
) -> None:
    """Open: a day inside the lateness window, recomputed with the consumers stopped, gives
    every table as the live consumer's code. Sealed: a day past the prune's horizon gives them
    as the prune leaves them, and the day sets' counters but no member rows of local days past
    the horizon too. Half-sealed: a sealed UTC day whose next local day (Asia/Shanghai, where
    the third session is on air) is still open, which keeps its member rows. In every case the
    daily reports and the rankings show the same figures."""
    app = world.api.app
    sessions = [
        await live_session(world, "haifeng", room=0),
        await live_session(world, "haifeng", room=1, theme=None),
        await live_session(world, "luhe", room=0, theme="culture-tourism-wellness"),
    ]
    gone = LiveRef(999_999, "haifeng", sessions[0].room, sessions[0].room_id, None, None)
    now = datetime.now(UTC)
    days_ago, lateness, force = CASES[case]
    day = (now - timedelta(days=days_ago)).date()
    day_start, day_end = day_bounds(day)
    if lateness is None:  # the prune's horizon 8 hours after the day, 8 before Shanghai's
        lateness = now - (day_end + timedelta(hours=8)) - PRUNE_MARGIN
    horizon = prune_horizon(now, lateness)
    start = day_start + timedelta(hours=10)  # 18:00 in Shanghai
    built = Day()
    for n, (s, tag) in enumerate(zip(sessions, "abc", strict=True)):
        a_show(built, s, start + n * 90 * S + n // 2 * timedelta(hours=10), tag)
    built.add("viewer.joined", sessions[1], start + 9 * S, viewer_id="v1")  # in two sessions
    built.add("viewer.joined", gone, start, viewer_id="v1")  # a session that does not exist
    # At midnight in Shanghai: the first minute of the next local day, not the last of this.
    midnight = day_start + timedelta(hours=16)
    built.add("viewer.joined", sessions[0], midnight, viewer_id="v-midnight")
    built.add("order.paid", sessions[0], midnight, order_id="midnight", platform="youzan",
              buyer_id="b-midnight", amount_fen=700)  # fmt: skip
    skipped = not_counted(built, sessions[0], start + 30 * S, lateness)
    built.again(5)
    first = built.rows[8]["event_id"]
    # An event id sent again with other content: the first one counts.
    built.add("viewer.joined", sessions[2], start + 400 * S, viewer_id="v99", event_id=first)
    taken = built.add("viewer.joined", sessions[2], start + 401 * S, viewer_id="v98")
    taken_after = built.add("viewer.joined", sessions[2], start + 402 * S, viewer_id="v97")
    built.write(app[SETTINGS].data_dir, day)

    db = app[DB_SESSIONS]
    async with db() as session, session.begin():
        await other_days(session, sessions[0], day, taken, taken_after)
    async with db() as session, session.begin():
        await clear_span(session, day_start, day_end)
        counted, skipped_before = await count_per_event(
            session, app[SETTINGS].data_dir, day, lateness
        )
    local_days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    async with db() as session:
        expected = await tables(session)
        expected_open = await open_day_rows(session, horizon)
        shown = await figures(session, local_days, now)
    assert skipped_before == skipped
    assert all(expected.values()), [name for name, rows in expected.items() if not rows]
    async with db() as session, session.begin():
        await session.execute(delete(SessionSpan))
        await clear_span(session, day_start, day_end)
        assert await session.scalar(select(func.count()).select_from(MinuteRollup)) == 0

    done = await recompute_day(db, app[SETTINGS].data_dir, day, lateness=lateness, force=force)

    async with db() as session:
        got = await tables(session)
        assert await figures(session, local_days, now) == shown
    assert (done.archived, done.counted, done.skipped) == (len(built.rows), counted, skipped)
    if case != "open":
        assert got[DayMember.__tablename__] == expected_open
        assert bool(expected_open) == (case == "half-sealed")
        expected, got = after_prune(expected, horizon), after_prune(got, horizon)
    for name, rows in expected.items():
        assert got[name] == rows, (name, set(got[name]) - set(rows), set(rows) - set(got[name]))


@pytest.mark.parametrize("case", ["open", "half-sealed"])
async def test_a_recompute_waits_for_a_consumer_storing_members_of_a_local_day_it_rebuilds(
    world: World, database_url: str, case: str
) -> None:
    """The recompute of a UTC day rebuilds the next local day (Shanghai's), which the live
    consumer is still counting: a consumer's new member of that day, not yet committed when
    the recompute starts, is counted once it is, and the recompute keeps the counters the
    sizes of the unions of the session sets."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs two writing transactions at once")
    app = world.api.app
    s = await live_session(world, "haifeng", room=0)
    # Another session of the base, so that the recompute does not wait for its bounds.
    other = await live_session(world, "haifeng", room=1)
    now = datetime.now(UTC)
    days_ago, lateness, force = CASES[case]
    day = (now - timedelta(days=days_ago)).date()
    day_start, day_end = day_bounds(day)
    if lateness is None:  # as in the test above: the next local day still open
        lateness = now - (day_end + timedelta(hours=8)) - PRUNE_MARGIN
    built = Day()
    a_show(built, s, day_start + timedelta(hours=10), "a")
    built.write(app[SETTINGS].data_dir, day)
    db = app[DB_SESSIONS]

    async def store(viewer: str, before_commit: asyncio.Event | None) -> None:
        raw = {"type": "viewer.joined", "event_id": f"next-{viewer}", "base": other.base,
               "room": other.room, "session_id": other.id, "viewer_id": viewer,
               "occurred_at": (day_end + timedelta(hours=2)).isoformat()}  # fmt: skip
        event = parse_event(raw, now=now, max_skew=timedelta(days=1))
        async with db() as session, session.begin():
            known = await SessionDirectory().lookup(session, [other.id])
            await apply_events(session, [event], known)
            if before_commit is not None:
                await before_commit.wait()

    await store("v8", None)
    release = asyncio.Event()
    consumer = asyncio.create_task(store("v9", release))
    await asyncio.sleep(0.3)  # v9 is stored, not committed
    recompute = asyncio.create_task(
        recompute_day(db, app[SETTINGS].data_dir, day, lateness=lateness, force=force)
    )
    await asyncio.sleep(0.5)
    assert not recompute.done()
    release.set()
    await asyncio.gather(consumer, recompute)

    async def counts() -> list[tuple[Any, ...]]:
        async with db() as session:
            return (await tables(session))[DayCount.__tablename__]

    after = await counts()
    base = world.ids["haifeng.base"]
    assert (base, day + timedelta(days=1), "base", base, "viewer", 2) in after  # v8, v9
    async with db() as session, session.begin():
        await rebuild_days(session, day_start, day_end)
    assert await counts() == after


async def test_a_day_without_archive_is_cleared(world: World) -> None:
    app = world.api.app
    s = await live_session(world, "haifeng", room=0)
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    built = Day()
    a_show(built, s, day_bounds(day)[0] + timedelta(hours=1), "a")
    built.write(app[SETTINGS].data_dir, day)
    db = app[DB_SESSIONS]
    await recompute_day(db, app[SETTINGS].data_dir, day, lateness=LATENESS)
    async with db() as session:
        assert (await tables(session))["analytics_minutes"]
    for path in (app[SETTINGS].data_dir / "events" / day.isoformat()).iterdir():
        path.unlink()
    done = await recompute_day(db, app[SETTINGS].data_dir, day, lateness=LATENESS)
    assert (done.archived, done.counted, done.skipped) == (0, 0, 0)
    async with db() as session:
        left = await tables(session)
    assert not left["analytics_minutes"] and not left["analytics_processed_events"]
    assert left["analytics_sessions"]  # bounds stay: they only ever widen
