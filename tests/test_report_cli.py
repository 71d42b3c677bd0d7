"""``livebase report daily`` as a person runs it: the file it writes, and clear errors."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import orjson
import pytest
from report_support import load_day

from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.seed import seed_catalogue
from livebase.settings import load_settings

LIVEBASE = [str(Path(sys.executable).parent / "livebase")]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBASE_")}
    return clean | {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}


async def livebase(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [*LIVEBASE, *args], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


async def test_writes_the_report_of_the_hand_checked_day(
    env: dict[str, str], tmp_path: Path
) -> None:
    settings = load_settings({"LIVEBASE_DATA_DIR": env["LIVEBASE_DATA_DIR"]})
    settings.data_dir.mkdir(parents=True)
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as db, db.begin():
            await seed_catalogue(db, settings)
        await load_day(sessions)
    finally:
        await engine.dispose()
    out = tmp_path / "out" / "haifeng.json"
    base = ["report", "daily", "--base", "haifeng", "--date", "2025-05-01"]
    done = await livebase(env, *base, "--format", "json", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "wrote the json report of haifeng for 2025-05-01" in done.stderr
    body = orjson.loads(out.read_bytes())
    # The command applies the configuration, where haifeng is on Asia/Shanghai: its 1 May is
    # S11, S21 and S22 (tests/test_reports.py): 42,600 paid less r-1's 5,000.
    assert body["timezone"] == "Asia/Shanghai"
    assert {h["name"]: h["value"] for h in body["headline"]}["net_gmv_fen"] == 37_600
    xlsx = tmp_path / "haifeng.xlsx"
    done = await livebase(env, *base, "--format", "xlsx", "--lang", "en", "--out", str(xlsx))
    assert done.returncode == 0, done.stderr
    summary = openpyxl.load_workbook(xlsx)["summary"]
    assert (summary["A2"].value, summary["B2"].value) == ("GMV (yuan)", 426)
    html = tmp_path / "city.html"
    city = ["report", "daily", "--city", "--date", "2025-06-01", "--format", "html"]
    done = await livebase(env, *city, "--out", str(html))
    assert done.returncode == 0 and "no data for that day" in done.stderr
    assert "本日无数据" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--base", "atlantis", "--date", "2025-05-01"], 1, "no base 'atlantis'"),
        (["--base", "haifeng", "--date", "2025-5-1"], 2, "write it as YYYY-MM-DD"),
        (["--base", "haifeng", "--date", "2025-02-30"], 2, "not a date of the calendar"),
        (["--date", "2025-05-01"], 2, "one of the arguments --base --city is required"),
        (["--base", "haifeng", "--city", "--date", "2025-05-01"], 2, "not allowed with"),
    ],
)
async def test_errors_are_clear(
    env: dict[str, str], tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "r.html"
    done = await livebase(env, "report", "daily", *args, "--format", "html", "--out", str(out))
    assert done.returncode == code and message in done.stderr, done.stderr
    assert done.stdout == "" and not out.exists()


async def test_an_unwritable_path_is_named(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "r.json"
    args = ["--base", "haifeng", "--date", "2025-05-01", "--format", "json", "--out", str(out)]
    done = await livebase(env, "report", "daily", *args)
    assert done.returncode == 1 and f"cannot write {out}" in done.stderr, done.stderr
    done = await livebase(env, "report", "daily", *args[:4], "--format", "pdf", "--out", "x")
    assert done.returncode == 2 and "invalid choice: 'pdf'" in done.stderr
