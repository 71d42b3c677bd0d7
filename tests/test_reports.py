"""Daily reports: the hand-checked day gives exactly its figures in every format.

The day of ``kpi_day_support`` is loaded into the rollups (``report_support``); the report
reads only those. Base ``haifeng`` is put on UTC so that the local day is the dataset's UTC day,
except where the test is about the time zone.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import orjson
import pytest
from api_support import World
from kpi_day_support import AS_OF, BASE, EVENTS, HOST_1, HOST_2, HOST_3
from report_support import DAY, LoadedDay, at, load_day, roll_up

from analytics.report import UnknownBase, build_daily_report, render
from analytics.report.model import HEADLINE, DailyReport
from analytics.schemas import parse_event
from livebase.api.state import DB_SESSIONS
from livebase.db.models import Destination, DestinationProtocol, RelayIncident


async def report_of(world: World, day: date = DAY, base: str | None = "haifeng") -> DailyReport:
    async with world.api.app[DB_SESSIONS]() as db:
        return await build_daily_report(db, day, base=base, as_of=AS_OF)


@pytest.fixture
async def loaded(world: World) -> LoadedDay:
    return await load_day(world.api.app[DB_SESSIONS])


def kpis(expected: Any) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(expected).items() if k in HEADLINE}


async def test_json_has_the_hand_checked_figures(world: World, loaded: LoadedDay) -> None:
    body = orjson.loads(render(await report_of(world), "json").body)
    assert (body["base"], body["date"], body["timezone"], body["has_data"]) == (
        "haifeng", "2025-05-01", "UTC", True,
    )  # fmt: skip
    assert body["window_start"] == "2025-05-01T00:00:00+00:00"
    assert {h["name"]: h["value"] for h in body["headline"]} == kpis(BASE)
    # Nothing the day before: sums were 0, ratios undefined.
    gmv = body["headline"][0]
    assert gmv["vs_previous_day"] == {"previous": 0, "change": 77_600, "change_pct": None}
    pcu = next(h for h in body["headline"] if h["name"] == "pcu")
    assert pcu["vs_previous_day"] == {"previous": None, "change": None, "change_pct": None}

    hosts = {row["host"]: row for row in body["hosts"]}
    for name, expected in (("阿梅", HOST_1), ("阿海", HOST_2), ("阿山", HOST_3)):
        for field in ("gmv_fen", "refund_fen", "net_gmv_fen", "orders", "buyers", "views", "uv",
                      "uv_value_fen", "gpm_fen", "view_to_buy_rate"):  # fmt: skip
            assert hosts[name][field] == getattr(expected, field), (name, field)
        assert hosts[name]["rank"] is None and hosts[name]["score"] is None
    # Every host has fewer than 100 viewers: listed beside, not ranked (docs/metrics.md).
    assert hosts["阿梅"]["unranked_reason"] == "below minimum exposure: 4 UV < 100"
    assert hosts["阿山"]["unranked_reason"] == "no viewers"
    assert [r["host"] for r in body["hosts"]] == ["阿梅", "阿海", "阿山"]  # by UV
    themes = {row["theme_en"]: row for row in body["themes"]}
    crafts = themes["Live + arts and crafts"]
    # Hosts 2 and 3: 12,800 + 5,000 paid, 5,000 refunded; viewers v5, v2.
    assert (crafts["gmv_fen"], crafts["net_gmv_fen"], crafts["uv"], crafts["buyers"]) == (
        17_800, 12_800, 2, 2,
    )  # fmt: skip
    sessions = {s["title"]: s for s in body["sessions"]}
    assert [s["title"] for s in body["sessions"]] == ["S11", "S21", "S22", "S12", "S31", "S32"]
    s11 = sessions["S11"]
    assert (s11["kpis"]["gmv_fen"], s11["kpis"]["refund_fen"], s11["kpis"]["uv"]) == (
        29_800, 14_900, 2,
    )  # fmt: skip
    assert (s11["live_seconds"], s11["kpis"]["pcu"]) == (1_800, 2)
    assert sessions["S32"]["ended_at"] is None and sessions["S32"]["live_seconds"] == 1_800
    assert sessions["S22"]["kpis"]["pcu"] == 0  # live, nobody watching
    products = {p["title"]: p for p in body["products"]}
    assert (products["陆河青梅"]["impressions"], products["陆河青梅"]["clicks"]) == (10, 3)
    assert products["陆河青梅"]["click_through_rate"] == 0.3
    assert [p["title"] for p in body["gi_products"]] == ["陆河青梅"]
    charts = body["charts"]
    studio = {s["label"]: s for s in charts["viewers_by_room"]}
    # 10:00-10:04 bucket: studio-1 (S11) has 2 present, studio-2 (S21) 2.
    assert dict(map(tuple, studio["studio-1"]["points"]))[600] == 2
    assert sorted(v for *_, v in charts["gmv_by_theme"]) == [17_800, 59_800]
    assert body["anomalies"] == []


async def test_the_day_is_the_bases_local_day(world: World) -> None:
    await load_day(world.api.app[DB_SESSIONS], timezone="Asia/Shanghai")
    first = await report_of(world)
    # 2025-05-01 in Shanghai is 04-30 16:00 to 05-01 16:00 UTC: S11, S21 and S22 only.
    assert first.window_start == "2025-04-30T16:00:00+00:00"
    assert [s.title for s in first.sessions] == ["S11", "S21", "S22"]
    assert (first.figure("gmv_fen"), first.figure("refund_fen"), first.figure("buyers")) == (
        9_900 + 19_900 + 12_800, 5_000, 3,
    )  # fmt: skip
    assert first.figure("uv") == 3
    second = await report_of(world, DAY + timedelta(days=1))
    # S11 was off air by then, but o-1's refund (r-2, 04:30 local) counts in S11 that day.
    assert [s.title for s in second.sessions] == ["S12", "S31", "S32", "S11"]
    assert second.figure("gmv_fen") == 30_000 + 5_000
    assert second.figure("refund_fen") == 9_900 + 5_000
    # The previous day of the second is the first.
    gmv = second.headline[0]
    assert gmv.vs_previous_day.previous == 42_600
    assert gmv.vs_previous_day.change == 35_000 - 42_600


async def test_against_the_same_weekday_last_week(world: World, loaded: LoadedDay) -> None:
    # Orders and refunds are counted once per id: last week's have ids of their own.
    s11 = [
        e.model_copy(
            update={k: f"{getattr(e, k)}-w" for k in ("order_id", "refund_id") if hasattr(e, k)}
        )
        for e in EVENTS
        if e.session_id == 11
    ]
    await roll_up(world.api.app[DB_SESSIONS], loaded, s11, shift=timedelta(days=-7))
    report = await report_of(world)
    gmv = report.headline[0].vs_last_week
    assert (gmv.previous, gmv.change, gmv.change_pct) == (29_800, 47_800, 47_800 / 29_800)
    assert report.headline[0].vs_previous_day.previous == 0


async def test_a_date_without_data_is_an_explicit_no_data_report(
    world: World, loaded: LoadedDay
) -> None:
    report = await report_of(world, date(2025, 6, 1))
    assert not report.has_data and report.headline == [] and report.sessions == []
    assert orjson.loads(render(report, "json").body)["has_data"] is False
    assert "本日无数据" in render(report, "html").body.decode()
    assert "No data" in render(report, "html", "en").body.decode()
    assert "无数据" in render(report, "csv").body.decode("utf-8-sig")
    book = openpyxl.load_workbook(io.BytesIO(render(report, "xlsx").body))
    assert book.sheetnames == ["report"]


async def test_unknown_base(world: World) -> None:
    with pytest.raises(UnknownBase, match="no base 'nowhere'"):
        await report_of(world, base="nowhere")


async def test_csv_and_xlsx_show_the_figures_in_yuan(world: World, loaded: LoadedDay) -> None:
    report = await report_of(world)
    text = render(report, "csv", "en").body.decode("utf-8-sig")
    sections: dict[str, list[list[str]]] = {}
    current = ""
    for row in csv.reader(io.StringIO(text)):
        if len(row) == 1 and row[0].startswith("["):
            current = row[0].strip("[]")
            sections[current] = []
        elif row:
            sections[current].append(row)
    assert list(sections) == ["report", "summary", "hosts", "themes", "sessions", "products",
                              "gi_products", "anomalies", "timeline"]  # fmt: skip
    summary = {r[0]: r[1:] for r in sections["summary"][1:]}
    assert summary["GMV (yuan)"][0] == "776.00"
    assert summary["Refunds (yuan)"][0] == "199.00"
    assert summary["Net GMV (yuan)"][0] == "577.00"
    assert summary["Orders"][0] == "5"
    assert summary["Unique viewers (UV)"][0] == "5"
    assert summary["UV value (yuan)"][0] == "155.20"
    assert summary["GPM (per 1,000 views) (yuan)"][0] == "97000.00"
    assert summary["View-to-buy conversion"][0] == "0.8"
    assert summary["Average concurrent (ACU)"][0] == repr(345 / 12_600)

    book = openpyxl.load_workbook(io.BytesIO(render(report, "xlsx").body))
    assert book.sheetnames == list(sections)
    sheet = book["summary"]
    rows = {r[0]: r[1:] for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert Decimal(str(rows["成交金额（元）"][0])) == Decimal("776.00")
    assert Decimal(str(rows["UV 价值（元）"][0])) == Decimal("155.20")
    assert rows["观看人数 (UV)"][0] == 5
    assert rows["互动率"][0] == pytest.approx(0.6)
    assert sheet["B2"].number_format == "#,##0.00"
    hosts = list(book["hosts"].iter_rows(values_only=True))
    assert hosts[0][0] == "主播" and [r[0] for r in hosts[1:]] == ["阿梅", "阿海", "阿山"]
    assert Decimal(str(hosts[1][3])) == Decimal("598.00")  # host 1's GMV
    sessions = list(book["sessions"].iter_rows(values_only=True))
    assert [r[1] for r in sessions[1:]] == ["S11", "S21", "S22", "S12", "S31", "S32"]


async def test_html_shows_the_figures(world: World, loaded: LoadedDay) -> None:
    report = await report_of(world)
    page = render(report, "html").body.decode()
    assert page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page
    assert "¥776.00" in page and "¥577.00" in page and "80.00%" in page
    assert "<svg" in page and "@media print" in page and "max-width:600px" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "阿梅" in page and "陆河青梅" in page
    english = render(report, "html", "en").body.decode()
    assert "Host ranking" in english and "¥776.00" in english


async def test_anomalies_order_spike_and_failed_relay(world: World, loaded: LoadedDay) -> None:
    sessions = world.api.app[DB_SESSIONS]
    # Twelve orders in three minutes of S21 from two buyers.
    spike = [
        parse_event(
            {
                "type": "order.paid",
                "event_id": f"spike-{i}",
                "occurred_at": at(f"10:2{i % 3}:00").isoformat(),
                "base": "haifeng",
                "room": "studio-2",
                "session_id": 21,
                "order_id": f"spike-{i}",
                "platform": "youzan",
                "buyer_id": f"whale{i % 2}",
                "amount_fen": 100,
            },
            now=AS_OF,
        )
        for i in range(12)
    ]
    await roll_up(sessions, loaded, spike)
    async with sessions() as db, db.begin():
        dest = Destination(
            base_id=loaded.base_id, session_id=loaded.sessions[11], name="抖音",
            protocol=DestinationProtocol.RTMP, url="rtmp://127.0.0.1/live",
        )  # fmt: skip
        db.add(dest)
        await db.flush()
        db.add(
            RelayIncident(
                session_id=loaded.sessions[11], destination_id=dest.id, base_id=loaded.base_id,
                retries=1, failed=True, last_error="the platform refused the stream key",
                first_at=at("10:05:00"), last_at=at("10:06:00"),
            )
        )  # fmt: skip
    report = await report_of(world)
    kinds = {a.kind: a for a in report.anomalies}
    assert set(kinds) == {"order_spike", "relay_failed"}
    assert kinds["order_spike"].subject == "S21"
    assert kinds["order_spike"].figures == {"orders": 12, "buyers": 3}  # b4 and two whales
    assert "refused" in kinds["relay_failed"].message_en
    assert "推流" in kinds["relay_failed"].message_zh


async def test_city_wide_adds_up_the_bases(world: World, loaded: LoadedDay) -> None:
    report = await report_of(world, base=None)
    assert (report.scope, report.base, report.timezone) == ("city", None, "Asia/Shanghai")
    assert report.has_data and report.figure("gmv_fen") == 9_900 + 19_900 + 12_800


async def test_a_session_left_live_does_not_run_on_for_ever(
    world: World, loaded: LoadedDay
) -> None:
    async with world.api.app[DB_SESSIONS]() as db:
        # S32 started 21:00 and is still marked live: the next morning it is on air since
        # midnight…
        next_day = await build_daily_report(db, DAY + timedelta(days=1), base="haifeng",
                                            as_of=at("21:00") + timedelta(hours=15))  # fmt: skip
        assert [(s.title, s.live_seconds) for s in next_day.sessions] == [("S32", 12 * 3600)]
        # …but a week later, with no event for days, it was left behind: it ended at its
        # last event and later days have no data.
        later = await build_daily_report(db, DAY + timedelta(days=5), base="haifeng",
                                         as_of=AS_OF + timedelta(days=7))  # fmt: skip
        assert not later.has_data
