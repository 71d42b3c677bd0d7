"""The daily report schedule, on an injected clock: due at the hour of each base's time zone,
written once, and the missing files of a day written by a later run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
from api_support import World
from report_support import load_day

from analytics.report.schedule import DailyReports, due
from livebase.api.state import DB_SESSIONS, SETTINGS

BASES = [("haifeng", "UTC"), ("luhe", "Asia/Shanghai")]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_due_is_yesterday_once_the_local_hour_has_come() -> None:
    may1, apr30 = date(2025, 5, 1), date(2025, 4, 30)
    # 22:59 UTC is 06:59 the next morning in Shanghai: not yet there; 23:00 is 07:00: due.
    assert due(utc("2025-05-01T22:59"), BASES, 7) == [("haifeng", apr30)]
    assert due(utc("2025-05-01T23:00"), BASES, 7) == [("haifeng", apr30), ("luhe", may1)]
    assert due(utc("2025-05-02T06:59"), BASES, 7) == [("luhe", may1)]
    assert due(utc("2025-05-02T07:00"), BASES, 7) == [("haifeng", may1), ("luhe", may1)]
    # Past midnight in Shanghai nothing is due there until 07:00 comes again.
    assert due(utc("2025-05-02T16:00"), BASES, 7) == [("haifeng", may1)]
    assert due(utc("2025-05-02T16:00"), BASES, 0) == [("haifeng", may1), ("luhe", date(2025, 5, 2))]


def clock_at(moments: list[datetime]) -> Callable[[], datetime]:
    return lambda: moments[0]


async def test_reports_are_written_at_the_hour_once(world: World) -> None:
    app = world.api.app
    await load_day(app[DB_SESSIONS])  # haifeng on UTC
    data_dir: Path = app[SETTINGS].data_dir
    now = [utc("2025-05-02T06:59")]
    reports = DailyReports(app[DB_SESSIONS], data_dir, 7, clock=clock_at(now))
    # 06:59 in haifeng (UTC); 14:59 in the other bases, whose 2025-05-01 report is due.
    first = await reports.run_once()
    assert {p.relative_to(data_dir).parts[1] for p in first} == {"luhe", "city-crafts"}
    assert not (data_dir / "reports" / "haifeng").exists()
    now[0] = utc("2025-05-02T07:00")
    written = await reports.run_once()
    folder = data_dir / "reports" / "haifeng"
    assert sorted(written) == [folder / f"2025-05-01.{ext}" for ext in ("html", "json", "xlsx")]
    body = orjson.loads((folder / "2025-05-01.json").read_bytes())
    assert body["headline"][0]["value"] == 77_600
    assert "¥776.00" in (folder / "2025-05-01.html").read_text(encoding="utf-8")
    # Idempotent: nothing is rewritten within the day…
    before = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    now[0] = utc("2025-05-02T09:00")
    assert await reports.run_once() == []
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # …but a missing file is written again, and only it.
    (folder / "2025-05-01.xlsx").unlink()
    assert await reports.run_once() == [folder / "2025-05-01.xlsx"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left
