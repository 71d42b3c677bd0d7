"""The HTML report rendered by a real headless browser (Chromium): it loads from a file with
nothing else, and the text a person reads is there."""

from __future__ import annotations

import asyncio
from pathlib import Path

from api_support import World
from kpi_day_support import AS_OF
from report_support import DAY, chromium, load_day

from analytics.report import build_daily_report, render
from livebase.api.state import DB_SESSIONS

PNG = b"\x89PNG\r\n\x1a\n"


async def test_chromium_renders_the_report(world: World, tmp_path: Path) -> None:
    await load_day(world.api.app[DB_SESSIONS])
    async with world.api.app[DB_SESSIONS]() as db:
        report = await build_daily_report(db, DAY, base="haifeng", as_of=AS_OF)
    page = tmp_path / "report.html"
    page.write_bytes(render(report, "html").body)
    shot = tmp_path / "report.png"
    profile = tmp_path / "profile"
    size = "--window-size=1280,2000"
    await asyncio.to_thread(chromium, profile, f"--screenshot={shot}", size, page.as_uri())
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 20_000
    dom = await asyncio.to_thread(chromium, profile, "--dump-dom", page.as_uri())
    text = dom.stdout.decode()
    # The headline GMV, a host, a chart and the no-script rule, as the browser built them.
    assert '<div class="value">¥776.00</div>' in text
    assert "阿梅" in text and "主播排行" in text and "<svg" in text
    assert "<script" not in text
