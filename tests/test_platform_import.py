"""Douyin Compass exports through the API: matched to sessions, idempotent, all or nothing,
and counted as the platform's own source, never added to our events."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
from api_support import World
from openpyxl import Workbook
from platform_support import broadcast, count_events, session_of, theme_id
from rollup_support import row_count
from sqlalchemy import select

from analytics.periods import Period, totals
from analytics.platform.models import PlatformSession
from livebase.api.state import DB_SESSIONS

PATH = "/api/v1/bases/haifeng/imports/douyin-compass"
HEADER = "主播昵称,开播时间,直播时长,观看人次,观看人数,最高在线人数,人均观看时长,成交金额(元),成交订单数,成交人数,退款金额(元)"  # noqa: E501
ROWS = [
    'Haifeng Host,2025-05-01 20:00:00,1小时,900,500,120,60,"1,200.50",12,10,100',
    "陌生账号,2025-05-01 21:00:00,3600,100,80,30,40,300,3,3,0",
    "haifeng host,2025-05-01 09:00:00,7200,400,300,90,30,800,8,7,0",
]


def csv(rows: list[str] = ROWS, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


async def post(world: World, data: bytes, ctype: str = "text/csv", token: str = "haifeng.manager"):
    return await world.api.call(
        "POST", PATH, world.tokens[token], data=data, headers={"Content-Type": ctype}
    )


async def stored(world: World) -> list[tuple[Any, ...]]:
    async with world.api.app[DB_SESSIONS]() as db:
        rows = await db.scalars(select(PlatformSession).order_by(PlatformSession.started_at))
        return [(r.account, r.session_id, r.host_id, r.uv, r.gmv_fen, r.imported_at) for r in rows]


async def test_import_matches_sessions_and_is_idempotent(world: World) -> None:
    host = world.ids["haifeng.host"]
    gi = await theme_id(world, "gi-produce")
    planned = await session_of(world, "haifeng", host, gi, datetime(2025, 5, 1, 12, 10, tzinfo=UTC))
    status, report = await post(world, csv().encode("utf-8-sig"))
    assert status == 200, report
    assert (report["format"], report["encoding"], report["rows"]) == ("csv", "utf-8-sig", 3)
    assert (report["created"], report["matched_sessions"], report["external"]) == (3, 1, 2)
    first, stranger, morning = report["broadcasts"]
    assert (first["line"], first["session_id"], first["host_id"]) == (2, planned.id, host)
    assert (stranger["session_id"], stranger["host_id"]) == (None, None)
    assert (morning["session_id"], morning["host_id"]) == (None, host)  # host, but no session
    before = await stored(world)
    assert [(r[0], r[3], r[4]) for r in before] == [
        ("haifeng host", 300, 80_000),
        ("Haifeng Host", 500, 120_050),
        ("陌生账号", 80, 30_000),
    ]

    # The same export again, in GBK as Excel saves "CSV", changes nothing at all.
    status, again = await post(world, csv().encode("gbk"))
    assert status == 200, again
    assert (again["encoding"], again["created"], again["unchanged"]) == ("gbk", 0, 3)
    assert await stored(world) == before

    # Compass revised a figure: the broadcast is replaced, not added.
    revised = [ROWS[0].replace('"1,200.50"', "1300"), *ROWS[1:]]
    status, third = await post(world, csv(revised).encode())
    assert (status, third["updated"], third["unchanged"]) == (200, 1, 2)
    after = await stored(world)
    assert len(after) == 3 and after[1][4] == 130_000


async def test_xlsx_as_a_multipart_file(world: World) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(["haifeng host", datetime(2025, 5, 1, 20, 0), "1小时", 900, 500, 120, 60,
                  1200.5, 12, 10, 100])  # fmt: skip
    out = io.BytesIO()
    book.save(out)
    form = aiohttp.FormData()
    form.add_field("file", out.getvalue(), filename="直播数据.xlsx")
    status, report = await world.api.call("POST", PATH, world.tokens["admin"], data=form)
    assert status == 200, report
    assert (report["format"], report["encoding"], report["created"]) == ("xlsx", "xlsx", 1)
    assert (await stored(world))[0][3:5] == (500, 120_050)


async def test_platform_figures_are_a_source_of_their_own(world: World) -> None:
    host = world.ids["haifeng.host"]
    gi = await theme_id(world, "gi-produce")
    start = datetime(2025, 5, 1, 12, tzinfo=UTC)
    session = await session_of(world, "haifeng", host, gi, start)
    # Our player saw two viewers and our shop one order in the same broadcast.
    await count_events(world, broadcast(session, start, ["p1", "p2"], [("b1", 5000)]))
    status, _ = await post(world, csv().encode())
    assert status == 200
    q = "/api/v1/bases/haifeng/rankings?kind=hosts&date=2025-05-01&min_uv=1"
    _, ours = await world.api.call("GET", q, world.tokens["haifeng.manager"])
    _, douyin = await world.api.call("GET", q + "&source=douyin", world.tokens["haifeng.manager"])
    assert [(r["entity_id"], r["uv"], r["gmv_fen"]) for r in ours["rows"]] == [(host, 2, 5000)]
    # Douyin's two broadcasts of the host that day (evening and morning), summed; the stranger
    # is external and has no host to rank.
    (row,) = douyin["rows"]
    assert (row["entity_id"], row["uv"], row["gmv_fen"], row["orders"], row["buyers"]) == (
        host, 800, 200_050, 20, 17)  # fmt: skip
    assert (row["views"], row["refund_fen"], row["net_gmv_fen"]) == (1300, 10_000, 190_050)
    _, themes = await world.api.call(
        "GET", q.replace("hosts", "themes") + "&source=douyin", world.tokens["admin"]
    )
    assert [(r["entity_id"], r["uv"]) for r in themes["rows"]] == [(gi, 500)]  # the matched one


async def test_bad_files_store_nothing_and_name_every_problem(world: World) -> None:
    cases: list[tuple[bytes, str, list[str]]] = [
        (csv(header=HEADER.replace(",成交金额(元)", "")).encode(), "bad_file",
         ["line 1: 成交金额(元)"]),
        (csv([ROWS[0].replace("500", "五百"), ROWS[1].replace("2025-05-01 21:00:00", "5月1日"),
              ROWS[2].replace("800", "8.001")]).encode(), "bad_file",
         ["line 2: 观看人数", "line 3: 开播时间", "line 4: 成交金额(元)"]),
        (b"\xff\xfe" + csv().encode("utf-16-le"), "bad_file", ["file"]),
        (bytes(range(128, 256)) * 4, "bad_file", ["file"]),
        (b"", "bad_file", ["file"]),
    ]  # fmt: skip
    for data, code, fields in cases:
        status, body = await post(world, data)
        assert status == 422, body
        assert body["error"]["code"] == code
        assert [f["field"] for f in body["error"]["fields"]] == fields, body
    async with world.api.app[DB_SESSIONS]() as db:
        assert await row_count(db, PlatformSession) == 0


async def test_wrong_media_type_and_foreign_base(world: World) -> None:
    status, body = await post(world, b'{"a": 1}', "application/json")
    assert status == 415, body
    status, body = await world.api.call(
        "POST", PATH, world.tokens["luhe.manager"], data=csv().encode(),
        headers={"Content-Type": "text/csv"},
    )  # fmt: skip
    assert status == 404, body


async def test_the_nearest_session_by_actual_else_scheduled_start_wins(world: World) -> None:
    host = world.ids["haifeng.host"]
    at = datetime(2025, 5, 1, 12, tzinfo=UTC)  # 20:00 in Shanghai, the broadcast's start
    await session_of(world, "haifeng", host, None, at.replace(hour=11, minute=40))  # 20 min off
    near = await session_of(world, "haifeng", host, None, at.replace(minute=5))
    went_live = await session_of(world, "haifeng", host, None, at)  # scheduled right on time …
    path = f"/api/v1/bases/haifeng/sessions/{went_live.id}"
    status, _ = await world.api.call("PATCH", path, world.tokens["admin"], {"status": "live"})
    assert status == 200  # … but it actually started now, years later: not this broadcast
    status, report = await post(world, csv([ROWS[0]]).encode())
    assert status == 200, report
    assert report["broadcasts"][0]["session_id"] == near.id


async def test_a_base_day_counts_external_broadcasts_too(world: World) -> None:
    status, _ = await post(world, csv().encode())
    assert status == 200
    period = Period.of("day", date(2025, 5, 1), "Asia/Shanghai")
    async with world.api.app[DB_SESSIONS]() as db:
        base = await totals(db, "base", period, source="douyin")
        ours = await totals(db, "base", period)
    (row,) = base.to_dict("records")
    assert row["base_id"] == world.ids["haifeng.base"]
    assert (row["uv"], row["gmv_fen"], row["peak_concurrent"]) == (880, 230_050, 120)
    assert ours.empty  # no events: the platform's figures are not ours
