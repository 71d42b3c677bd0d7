"""Douyin Compass exports: headers as the tools write them, values in their formats, and a
report of every bad cell by line; nothing comes out of a file with any problem."""

from __future__ import annotations

import codecs
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from analytics.platform.douyin_compass import (
    RowsRejected,
    parse,
    parse_count,
    parse_seconds,
    parse_time,
    parse_yuan,
)
from livebase.listings import tables

ZONE = "Asia/Shanghai"
HEADER = ("主播昵称,直播间ID,开播时间,下播时间,直播时长,观看人次,观看人数,最高在线人数,"
          "平均在线人数,人均观看时长,商品曝光次数,商品点击次数,成交金额（元）,成交订单数,"
          "成交人数,退款金额（元）,千次观看成交金额,流量来源")  # fmt: skip
ROWS = [
    "陆河青梅小妹,7361000000000000001,2025-05-01 20:00:00,2025-05-01 22:30:00,2小时30分,"
    '"12,345",3456,280,96.5,1分30秒,5000,420,"12,345.60",38,35,199.9,3575.2,自然流量',
    "海丰茶哥,,2025/05/01 09:05,,01:00:00,800,1.2万,60,20,45,0,30,980,4,4,-,12.3,付费",
]


def sheet(text: str, encoding: str = "utf-8-sig") -> tables.Sheet:
    return tables.read(text.encode(encoding))


def test_values_in_compass_formats() -> None:
    assert parse_yuan("12,345.60") == 1_234_560
    assert parse_yuan("¥980") == 98_000
    assert parse_yuan("1.2万") == 1_200_000
    assert parse_count("1.2万") == 12_000 and parse_count("3,456") == 3456
    assert parse_seconds("2小时30分") == 9000
    assert parse_seconds("1分30秒") == 90 and parse_seconds("01:00:00") == 3600
    assert parse_seconds("96.5") == 97  # half up
    at = parse_time("2025/05/01 09:05", ZoneInfo(ZONE))
    assert at.astimezone(UTC) == datetime(2025, 5, 1, 1, 5, tzinfo=UTC)

    def local(text: str) -> datetime:
        return parse_time(text, ZoneInfo(ZONE))

    bad_values = [
        ("12.345", parse_yuan), ("-3", parse_count), ("1.5", parse_count),
        ("abc", parse_seconds), ("2025-02-30 10:00", local), ("0001-01-01 00:00", local),
        ("99999999999", parse_count), ("2000000000000", parse_yuan), ("400天", parse_seconds),
        ("99999999", parse_seconds),
    ]  # fmt: skip
    for bad, parser in bad_values:
        with pytest.raises(ValueError):
            parser(bad)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gbk"])
def test_a_real_shaped_export_in_each_encoding(encoding: str) -> None:
    s = sheet("\r\n".join([HEADER, *ROWS]) + "\r\n", encoding)
    first, second = parse(s, ZONE)
    assert first.row_key == "id:7361000000000000001" and first.line == 2
    assert first.started_at == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert (first.live_seconds, first.views, first.uv, first.peak_concurrent) == (
        9000, 12345, 3456, 280)  # fmt: skip
    assert first.viewer_seconds == 90 * 3456  # 人均观看时长 × 观看人数
    assert (first.impressions, first.clicks, first.orders, first.buyers) == (5000, 420, 38, 35)
    assert (first.gmv_fen, first.refund_fen) == (1_234_560, 19_990)
    assert second.row_key.startswith("at:") and second.uv == 12_000
    assert second.refund_fen == 0  # "-" in an optional column
    assert second.live_seconds == 3600 and second.viewer_seconds == 45 * 12_000


def test_live_time_from_the_end_and_watch_time_from_the_average_concurrency() -> None:
    s = sheet("主播昵称,开播时间,下播时间,观看人数,平均在线人数,成交金额\r\n"
              "甲,2025-05-01 20:00,2025-05-01 21:30,100,12.5,0\r\n")  # fmt: skip
    (fig,) = parse(s, ZONE)
    assert fig.live_seconds == 5400 and fig.viewer_seconds == 67_500


def test_every_bad_cell_is_reported_by_line_and_nothing_comes_out() -> None:
    s = sheet("\r\n".join([
        HEADER,
        ROWS[0],
        ROWS[0].replace("3456", "三千"),                       # line 3: count
        ROWS[1].replace("2025/05/01 09:05", "明天"),            # line 4: time
        ROWS[1].replace("980", "9.801"),                       # line 5: money
        ROWS[0],                                               # line 6: line 2 again
        ",,2025-05-01 20:00,,,,10,,,,,,5,,,,,",                # line 7: no account
    ]))  # fmt: skip
    with pytest.raises(RowsRejected) as caught:
        parse(s, ZONE)
    got = [(p.line, p.column) for p in caught.value.problems]
    assert got == [(3, "观看人数"), (4, "开播时间"), (5, "成交金额（元）"), (6, "(row)"),
                   (7, "主播昵称")]  # fmt: skip
    messages = " | ".join(p.message for p in caught.value.problems)
    assert "'三千' is not a number" in messages and "same broadcast as line 2" in messages


def test_missing_and_repeated_columns_are_named() -> None:
    s = sheet("直播间,开播时间,观看人数,观看人数\r\n甲,2025-05-01 20:00,1,1\r\n")
    with pytest.raises(RowsRejected) as caught:
        parse(s, ZONE)
    got = [(p.line, p.column) for p in caught.value.problems]
    assert got == [(1, "观看人数"), (1, "成交金额(元)")]
    assert "missing column" in caught.value.problems[1].message


def test_future_broadcasts_and_empty_files_are_refused() -> None:
    s = sheet("主播昵称,开播时间,观看人数,成交金额\r\n甲,2099-01-01 20:00,1,0\r\n")
    with pytest.raises(RowsRejected, match="1 problems"):
        parse(s, ZONE)
    with pytest.raises(RowsRejected) as caught:
        parse(sheet("主播昵称,开播时间,观看人数,成交金额\r\n"), ZONE)
    assert caught.value.problems[0].message == "has no rows below the header"


def test_xlsx_cells_keep_their_types() -> None:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["主播昵称", "开播时间", "观看人数", "成交金额(元)", "直播时长"])
    ws.append(["甲", datetime(2025, 5, 1, 20, 0), 1200, 3456.78, 5400])
    out = io.BytesIO()
    book.save(out)
    (fig,) = parse(tables.read(out.getvalue()), ZONE)
    assert fig.started_at == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert (fig.uv, fig.gmv_fen, fig.live_seconds) == (1200, 345_678, 5400)


def test_utf16_text_is_refused_as_a_file_problem() -> None:
    with pytest.raises(tables.SheetError, match="UTF-16"):
        tables.read(codecs.BOM_UTF16_LE + "主播昵称".encode("utf-16-le"))
