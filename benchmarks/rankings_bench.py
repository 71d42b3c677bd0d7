"""Rankings from rollups at volume: a base's day and week, against the scan they cannot avoid.

Builds a database (SQLite in a temporary directory, or ``--database-url``) holding one busy
week of one base: ``--hosts`` hosts with ``--sessions`` sessions each per day, 4 hours on air,
per-minute rollup rows, and viewer sets of ``--viewers`` distinct viewers a day (each watching
two sessions on average), plus buyers and clickers, and the day sets and counters the rollup
consumer derives from them (``analytics.day_sets``). Then it times
``analytics.leaderboard.ranking`` (current and previous period, totals, score) for the day and
for the week, and, as the reference in the same run, the one query any exact ranking needs:
``COUNT(*)`` of the distinct (session, kind, viewer) members of the period, which reads every
member row. It prints medians of ``--repeat`` runs and the ratios.

    python -m benchmarks.rankings_bench [--viewers 100000] [--database-url URL]
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

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.day_sets import SessionMember, click_buyers, day_rows, write_rows
from analytics.directory import SessionInfo
from analytics.leaderboard import ranking
from analytics.models import MinuteRollup, SessionSpan, SetMember
from analytics.periods import Period, PeriodKind
from benchmarks.report import loadavg
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.db.models import Base, Host, LiveSession, Room
from livebase.seed import seed_catalogue
from livebase.settings import load_settings

DAY = date(2025, 5, 1)
ZONE = "Asia/Shanghai"


async def build(db: AsyncSession, args: argparse.Namespace) -> int:
    base = await db.scalar(select(Base).where(Base.slug == "haifeng"))
    assert base is not None
    room = await db.scalar(select(Room).where(Room.base_id == base.id))
    assert room is not None
    hosts = [Host(base_id=base.id, display_name=f"主播 {i}") for i in range(args.hosts)]
    db.add_all(hosts)
    await db.flush()
    rng = random.Random(7)
    week = Period.of("week", DAY, ZONE)
    for day in range(7):
        local_start = week.start + timedelta(days=day, hours=11)  # 19:00 in Shanghai
        sessions = [
            LiveSession(base_id=base.id, room_id=room.id, host_id=h.id, title="bench")
            for h in hosts
            for _ in range(args.sessions)
        ]
        db.add_all(sessions)
        await db.flush()
        minutes, spans, members = [], [], []
        for s in sessions:
            spans.append({"session_id": s.id, "started_at": local_start,
                          "ended_at": local_start + timedelta(hours=4),
                          "first_event_at": local_start,
                          "last_event_at": local_start + timedelta(hours=4)})  # fmt: skip
            for m in range(240):
                minutes.append({"scope": "session", "scope_id": s.id,
                                "minute": local_start + timedelta(minutes=m),
                                "gmv_fen": rng.randrange(0, 20_000), "refund_fen": 0,
                                "orders": rng.randrange(0, 3), "views": rng.randrange(0, 80),
                                "viewer_seconds": rng.randrange(0, 9000),
                                "viewers": rng.randrange(0, 400), "impressions": 0,
                                "clicks": rng.randrange(0, 10)})  # fmt: skip
        for v in range(args.viewers * 2):
            s = sessions[rng.randrange(len(sessions))]
            viewer = f"v{rng.randrange(args.viewers * 3)}"
            members.append(("viewer", "player", viewer, s.id))
            if v % 40 == 0:
                members.append(("buyer", "douyin_shop", f"b{viewer}", s.id))
            if v % 10 == 0:
                members.append(("clicker", "player", viewer, s.id))
        rows = {
            (sid, kind, ns, mid): {"session_id": sid, "kind": kind, "namespace": ns,
                                   "member_id": mid, "first_minute": local_start}
            for kind, ns, mid, sid in members
        }  # fmt: skip
        for table, batch in ((MinuteRollup, minutes), (SessionSpan, spans),
                             (SetMember, list(rows.values()))):  # fmt: skip
            for start in range(0, len(batch), 5000):
                await db.execute(insert(table), batch[start : start + 5000])
        infos = {
            s.id: SessionInfo(s.id, base.id, base.slug, room.id, room.slug, s.host_id, None, ZONE)
            for s in sessions
        }
        stored: list[SessionMember] = [
            (sid, kind, ns, mid, local_start) for sid, kind, ns, mid in rows
        ]
        day_sets = day_rows(stored, infos)
        await write_rows(db, day_sets | click_buyers(day_sets))
    return base.id


async def median_seconds(repeat: int, run: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        settings = load_settings({"LIVEBASE_DATA_DIR": tmp, "LIVEBASE_DATABASE_URL": url})
        engine = create_engine(url)
        try:
            await upgrade(engine)
            sessions = session_factory(engine)
            started = time.perf_counter()
            async with sessions() as db, db.begin():
                await seed_catalogue(db, settings)
                base_id = await build(db, args)
            print(f"built a week in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
            async with sessions() as db:
                count = await db.scalar(select(func.count()).select_from(SetMember))
                print(f"member rows: {count:,}; load average before: {loadavg()}")
                kinds: tuple[PeriodKind, ...] = ("day", "week")
                for kind in kinds:
                    period = Period.of(kind, DAY, ZONE)

                    async def rank(period: Period = period) -> Any:
                        return await ranking(db, "host", period, base_id=base_id)

                    async def scan(period: Period = period) -> Any:
                        inner = (
                            select(SetMember.session_id, SetMember.kind, SetMember.member_id)
                            .distinct()
                            .where(
                                SetMember.first_minute >= period.start,
                                SetMember.first_minute < period.end,
                            )
                            .subquery()
                        )
                        return await db.scalar(select(func.count()).select_from(inner))

                    table = await rank()
                    ours = await median_seconds(args.repeat, rank)
                    reference = await median_seconds(args.repeat, scan)
                    print(
                        f"{kind}: ranking of {len(table)} hosts {ours * 1000:,.0f} ms; member "
                        f"scan {reference * 1000:,.0f} ms; ratio {ours / reference:.2f}"
                    )
            print(f"load average after: {loadavg()}; at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        finally:
            await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=2, help="per host and day")
    parser.add_argument("--viewers", type=int, default=100_000, help="distinct per day")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default="")
    asyncio.run(main(parser.parse_args()))
