"""The daily report of a base on a heavy day: it reads rollups only, so its time follows the
number of session-minutes and distinct ids, not the number of raw events.

Fills a fresh SQLite database (the embedded default; ``--database-url`` for another) with the
rollups of three days of base ``haifeng`` (the day, the day before and the same weekday a week
before, which the report compares with): ``--rooms`` rooms each on air ``--hours`` a day in
3-hour sessions, ``--viewers`` distinct viewers per session (and buyers, clickers and
interacting viewers in proportion), per-minute sums for every session, host, theme, base and
product, and the day sets and counters the consumer keeps (``analytics.day_sets``). Then it
times the report (median of ``--repeat`` builds, each followed by rendering HTML, XLSX and JSON)
at a normal day (``--viewers`` / 10) and at the heavy one.

The reference, measured in the same run on the same database, is the floor any report of
the day pays: one aggregate over the day's session-minutes plus one ``COUNT(DISTINCT)`` over
its viewer ids; the report's UV must equal that count. The goal is a report within 3 s
whatever the day's volume.

    .venv/bin/python benchmarks/report_bench.py [--rooms 6] [--hours 12] [--viewers 20000]
        [--repeat 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from analytics.day_sets import SessionMember, click_buyers, day_rows, write_rows
from analytics.directory import SessionInfo
from analytics.models import DayMember, MinuteRollup, SessionSpan, SetMember
from analytics.report import build_daily_report, render
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.db.models import (
    Base,
    Host,
    LiveSession,
    Merchant,
    Product,
    Room,
    SessionStatus,
    Theme,
)
from livebase.seed import seed_catalogue
from livebase.settings import load_settings

DAY = date(2025, 5, 1)
SESSION_HOURS = 3
CHUNK = 5_000


async def _insert(db: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        await db.execute(insert(model), rows[start : start + CHUNK])


async def fill(
    engine: AsyncEngine, base_slug: str, days: list[date], args: Any, viewers: int
) -> int:
    """Rollups of ``days``; returns how many raw events they stand for."""
    rng = random.Random(7)
    sessions = session_factory(engine)
    events = 0
    async with sessions() as db, db.begin():
        base = await db.scalar(select(Base).where(Base.slug == base_slug))
        assert base is not None
        await db.execute(text("UPDATE bases SET timezone = 'UTC' WHERE id = :b"), {"b": base.id})
        rooms = list(await db.scalars(select(Room).where(Room.base_id == base.id)))
        while len(rooms) < args.rooms:
            room = Room(
                base_id=base.id,
                slug=f"bench-{len(rooms)}-{viewers}",
                name_zh="压测",
                name_en="Bench",
            )
            db.add(room)
            await db.flush()
            rooms.append(room)
        themes = list(await db.scalars(select(Theme)))
        hosts = [Host(base_id=base.id, display_name=f"主播{i}") for i in range(args.rooms * 2)]
        merchant = Merchant(base_id=base.id, name="压测商家")
        db.add_all([*hosts, merchant])
        await db.flush()
        products = [
            Product(base_id=base.id, merchant_id=merchant.id, title_zh=f"商品{i}", price_fen=9_900)
            for i in range(30)
        ]
        db.add_all(products)
        await db.flush()
        for day in days:
            start_of_day = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                hours=8
            )
            minutes: list[dict[str, Any]] = []
            members: list[dict[str, Any]] = []
            infos: dict[int, SessionInfo] = {}
            spans: list[dict[str, Any]] = []
            for r, room in enumerate(rooms[: args.rooms]):
                for k in range(args.hours // SESSION_HOURS):
                    host = hosts[(r * 2 + k) % len(hosts)]
                    theme = themes[(r + k) % len(themes)]
                    start = start_of_day + timedelta(hours=k * SESSION_HOURS)
                    live = LiveSession(
                        base_id=base.id, room_id=room.id, host_id=host.id, theme_id=theme.id,
                        title=f"{day} {room.slug} #{k}", status=SessionStatus.ENDED,
                    )  # fmt: skip
                    db.add(live)
                    await db.flush()
                    infos[live.id] = SessionInfo(
                        live.id, base.id, base.slug, room.id, room.slug, host.id, theme.id, "UTC"
                    )
                    end = start + timedelta(hours=SESSION_HOURS)
                    spans.append({"session_id": live.id, "started_at": start, "ended_at": end,
                                  "first_event_at": start, "last_event_at": end})  # fmt: skip
                    count = SESSION_HOURS * 60
                    per_minute = viewers * 5 // count  # each viewer watches about 5 minutes
                    for m in range(count):
                        orders = rng.randrange(0, max(2, viewers // 2_000))
                        sums = {
                            "gmv_fen": orders * 9_900, "refund_fen": 0, "orders": orders,
                            "views": viewers // count, "viewer_seconds": per_minute * 60,
                            "viewers": per_minute, "impressions": per_minute * 3,
                            "clicks": per_minute // 10,
                        }  # fmt: skip
                        minute = start + timedelta(minutes=m)
                        events += sums["views"] + per_minute * 2 + orders + sums["clicks"]
                        for scope, scope_id in (("session", live.id), ("host", host.id),
                                                ("theme", theme.id)):  # fmt: skip
                            minutes.append({"scope": scope, "scope_id": scope_id,
                                            "minute": minute, **sums})  # fmt: skip
                        if orders:
                            product = products[rng.randrange(len(products))]
                            minutes.append({"scope": "product", "scope_id": product.id,
                                            "minute": minute, **sums})  # fmt: skip
                    for v in range(viewers):
                        first = start + timedelta(minutes=v * count // viewers)
                        who = f"{day}-{r}-{k}-{v}" if v % 3 else f"loyal-{v}"  # a third return
                        kinds = ["viewer"]
                        if v % 50 == 0:
                            kinds += ["buyer", "paying_viewer"]
                        if v % 10 == 0:
                            kinds.append("clicker")
                        if v % 7 == 0:
                            kinds.append("interacting")
                        for kind in kinds:
                            members.append({"session_id": live.id, "kind": kind,
                                            "namespace": "player", "member_id": who,
                                            "first_minute": first})  # fmt: skip
            # Host/theme/base rows of the same minute add up: merge before inserting.
            merged: dict[tuple[str, int, datetime], dict[str, Any]] = {}
            for row in minutes:
                key = (row["scope"], row["scope_id"], row["minute"])
                if key in merged:
                    for name, value in row.items():
                        if name not in ("scope", "scope_id", "minute"):
                            merged[key][name] += value
                else:
                    merged[key] = dict(row)
            await _insert(db, MinuteRollup, list(merged.values()))
            await _insert(db, SetMember, members)
            stored: list[SessionMember] = [
                (m["session_id"], m["kind"], m["namespace"], m["member_id"], m["first_minute"])
                for m in members
            ]
            day_sets = day_rows(stored, infos)
            await write_rows(db, day_sets | click_buyers(day_sets))
            await _insert(db, SessionSpan, spans)
    return events


async def median_seconds(run: Callable[[], Awaitable[int]], repeat: int) -> tuple[float, int]:
    """The median time of ``repeat`` runs, and what the last run returned."""
    times = []
    result = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def measure(url: str, args: Any, viewers: int) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
        async with sessions() as db, db.begin():
            await seed_catalogue(db, load_settings({"LIVEBASE_DATA_DIR": args.data_dir}))
        filled = time.perf_counter()
        events = await fill(
            engine,
            "haifeng",
            [DAY, DAY - timedelta(days=1), DAY - timedelta(days=7)],
            args,
            viewers,
        )
        filled = time.perf_counter() - filled

        async def report() -> int:
            async with sessions() as db:
                built = await build_daily_report(db, DAY, base="haifeng")
            for fmt in ("html", "xlsx", "json"):
                render(built, fmt)
            return int(built.figure("uv") or 0)

        async def floor() -> int:
            start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
            end = start + timedelta(days=1)
            async with sessions() as db:
                await db.execute(
                    select(func.sum(MinuteRollup.gmv_fen), func.max(MinuteRollup.viewers)).where(
                        MinuteRollup.scope == "session", MinuteRollup.minute >= start,
                        MinuteRollup.minute < end,
                    )
                )  # fmt: skip
                viewers_day = (
                    select(SetMember.namespace, SetMember.member_id)
                    .where(SetMember.kind == "viewer", SetMember.first_minute >= start,
                           SetMember.first_minute < end)
                    .distinct()
                    .subquery()
                )  # fmt: skip
                return int(await db.scalar(select(func.count()).select_from(viewers_day)) or 0)

        async with sessions() as db:
            rows = {
                "session-minutes": await db.scalar(
                    select(func.count())
                    .select_from(MinuteRollup)
                    .where(MinuteRollup.scope == "session")
                ),
                "id-set rows": await db.scalar(select(func.count()).select_from(SetMember)),
                "day-set rows": await db.scalar(select(func.count()).select_from(DayMember)),
            }
        report_s, uv = await median_seconds(report, args.repeat)
        floor_s, counted = await median_seconds(floor, args.repeat)
        return {
            "viewers/session": viewers,
            "events represented (3 days)": events,
            **rows,
            "fill s": filled,
            "report s": report_s,
            "floor s": floor_s,
            "report UV = COUNT(DISTINCT)": int(uv == counted),
        }
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--hours", type=int, default=12)
    parser.add_argument("--viewers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    results = []
    for viewers in (args.viewers // 10, args.viewers):
        with tempfile.TemporaryDirectory(prefix="livebase-report-bench-") as tmp:
            args.data_dir = tmp
            url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}"
            results.append(await measure(url, args, viewers))
    print(f"{'':32}{'normal day':>16}{'heavy day':>16}")
    for key in results[0]:
        cells = "".join(
            f"{r[key]:>16.3f}" if isinstance(r[key], float) else f"{r[key]:>16,}" for r in results
        )
        print(f"{key:32}{cells}")
    normal, heavy = results
    print(f"report / floor (heavy day): {heavy['report s'] / heavy['floor s']:.1f}x")
    events = "events represented (3 days)"
    print(
        f"heavy / normal report time: {heavy['report s'] / normal['report s']:.2f}x "
        f"for {heavy[events] / normal[events]:.1f}x the events"
    )
    verdict = "within" if heavy["report s"] <= 3 else "OVER"
    print(f"goal: heavy-day report {heavy['report s']:.2f} s, {verdict} the 3 s goal")


if __name__ == "__main__":
    asyncio.run(main())
