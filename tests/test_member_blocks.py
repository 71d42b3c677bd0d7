"""The members of a sealed day live in blocks, and every reader sees them as rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from api_support import World
from events_support import live_session
from recompute_support import Day
from sqlalchemy import func, select
from test_recompute import LATENESS, a_show

from analytics.archive import day_bounds
from analytics.directory import SessionDirectory
from analytics.members import MEMBERS, block_rows, pack, read_members, unpack
from analytics.models import DayCount, MemberBlock, SetMember
from analytics.recompute import recompute_day
from analytics.rollup_store import apply_events, clear_span
from analytics.schemas import parse_event
from livebase.api.state import DB_SESSIONS, SETTINGS
from livebase.db.models import Base


async def test_a_sealed_day_stores_its_members_in_blocks_and_a_later_event_adds_only_new_ones(
    world: World,
) -> None:
    """After the recompute of a sealed day its members are blocks, not rows, and read as
    before; a later event of the same session naming a member a block holds stores nothing
    and counts nobody new in its day, while a member no day holds is stored and counted."""
    app = world.api.app
    s = await live_session(world, "haifeng", room=0)
    now = datetime.now(UTC)
    day = (now - timedelta(days=3)).date()
    start = day_bounds(day)[0]
    built = Day()
    a_show(built, s, start + timedelta(hours=1), "a")
    built.write(app[SETTINGS].data_dir, day)
    db = app[DB_SESSIONS]
    await recompute_day(db, app[SETTINGS].data_dir, day, lateness=LATENESS)

    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(SetMember)) == 0
        blocks = (await session.execute(select(MemberBlock.kind, MemberBlock.members))).all()
        found = await read_members(session, sessions=[s.id])
    assert dict(blocks) == {"viewer": 12, "interacting": 7, "clicker": 3, "buyer": 2,
                            "paying_viewer": 1}  # fmt: skip
    assert found.num_rows == 25
    assert {m["member_id"] for m in found.to_pylist() if m["kind"] == "viewer"} == {
        f"v{i}" for i in range(12)
    }

    later = now - timedelta(hours=1)
    events = [
        parse_event(
            {
                "type": "viewer.joined",
                "event_id": f"later-{v}",
                "base": s.base,
                "room": s.room,
                "session_id": s.id,
                "viewer_id": v,
                "occurred_at": later.isoformat(),
                **src,
            },
            now=now,
        )
        for v, src in (("v1", {}), ("v0", {"source": "douyin"}), ("v-new", {}))
    ]
    async with db() as session, session.begin():
        known = await SessionDirectory().lookup(session, [s.id])
        await apply_events(session, events, known)
    async with db() as session:
        rows = (await session.execute(select(SetMember.member_id))).scalars().all()
        zone = await session.scalar(select(Base.timezone).where(Base.slug == s.base))
        local_day = later.astimezone(ZoneInfo(str(zone))).date()
        counted = await session.scalar(
            select(DayCount.members).where(
                DayCount.day == local_day, DayCount.scope == "session", DayCount.kind == "viewer"
            )
        )
        viewers = await read_members(session, sessions=[s.id], kinds=["viewer"])
    assert rows == ["v-new"]
    assert counted == 1
    assert viewers.num_rows == 13


async def test_clearing_a_day_drops_its_blocks_alone(world: World) -> None:
    app = world.api.app
    db = app[DB_SESSIONS]
    days = [(datetime.now(UTC) - timedelta(days=n)).date() for n in (4, 3)]
    for n, day in enumerate(days):
        s = await live_session(world, "haifeng", room=n)
        built = Day()
        a_show(built, s, day_bounds(day)[0] + timedelta(hours=1), f"d{n}")
        built.write(app[SETTINGS].data_dir, day)
        await recompute_day(db, app[SETTINGS].data_dir, day, lateness=LATENESS)
    async with db() as session:
        assert set((await session.execute(select(MemberBlock.day))).scalars()) == set(days)
        assert (await read_members(session, kinds=["viewer"])).num_rows == 24
    async with db() as session, session.begin():
        await clear_span(session, *day_bounds(days[0]))
    async with db() as session:
        assert set((await session.execute(select(MemberBlock.day))).scalars()) == {days[1]}
        assert (await read_members(session, kinds=["viewer"])).num_rows == 12


def test_a_block_round_trips_and_a_foreign_payload_is_refused() -> None:
    members = pa.table(
        {
            "namespace": ["player", "douyin"],
            "member_id": ["v1", "v2"],
            "first_minute": pa.array(
                [datetime(2026, 11, 1, 8, 0, tzinfo=UTC)] * 2, MEMBERS.field("first_minute").type
            ),
        }
    )
    assert unpack(pack(members)).equals(members.cast(unpack(pack(members)).schema))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, pa.schema([("x", pa.int64())])) as writer:
        writer.write_table(pa.table({"x": [1]}))
    with pytest.raises(ValueError, match="a member block holds"):
        unpack(sink.getvalue().to_pybytes())


def test_members_in_any_order_make_one_block_per_session_and_kind() -> None:
    minute = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    rows = [(s, k, "player", f"v{s}{k}{i}", minute) for s in (2, 1) for k in ("viewer", "buyer")
            for i in range(3)]  # fmt: skip
    grouped = pa.table(list(zip(*rows, strict=True)), schema=MEMBERS)
    shuffled = grouped.take(pa.array([5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6]))
    for members in (grouped, shuffled):
        blocks = block_rows(datetime(2026, 11, 1).date(), members)
        found = {(b["session_id"], b["kind"]): unpack(b["payload"]) for b in blocks}
        assert sorted(found) == [(1, "buyer"), (1, "viewer"), (2, "buyer"), (2, "viewer")]
        for (s, k), block in found.items():
            assert sorted(block["member_id"].to_pylist()) == [f"v{s}{k}{i}" for i in range(3)]
            assert block.num_rows == next(b["members"] for b in blocks
                                          if (b["session_id"], b["kind"]) == (s, k))  # fmt: skip
