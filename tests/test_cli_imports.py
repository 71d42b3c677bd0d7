"""``livebase import douyin-compass``, run as a real process on a fresh data directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestServer
from channels_support import APPID, SECRET, Clock, FakeChannels

LIVEBASE = [str(Path(sys.executable).parent / "livebase")]
LIVE = {
    "start_time": 1_746_100_800, "live_duration": 3600,
    "summary": {"new_watch_uv": 700, "max_online_watch_uv": 90,
                "average_watch_seconds_per_audience": 50},
    "ec": {"total_gmv": 88_800, "total_pay_pv": 9, "total_pay_uv": 8},
}  # fmt: skip
EXPORT = (
    "主播昵称,开播时间,观看人数,成交金额(元)\r\n"
    "海丰茶哥,2025-05-01 20:00:00,1200,3456.78\r\n"
    "陆河青梅小妹,2025-05-01 21:00:00,800,99\r\n"
)


def run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEBASE_")}
    env |= {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    return subprocess.run(
        [*LIVEBASE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_import_then_again_changes_nothing(tmp_path: Path) -> None:
    export = tmp_path / "直播数据.csv"
    export.write_bytes(EXPORT.encode("gbk"))
    first = run(["import", "douyin-compass", "--base", "haifeng", str(export)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "(csv, gbk): 2 broadcasts, 2 new, 0 updated, 0 unchanged" in first.stderr
    assert "0 matched to sessions, 2 external" in first.stderr
    again = run(["import", "douyin-compass", "--base", "haifeng", str(export)], tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 broadcasts, 0 new, 0 updated, 2 unchanged" in again.stderr


def test_bad_rows_and_bases_are_reported(tmp_path: Path) -> None:
    export = tmp_path / "bad.csv"
    export.write_text(EXPORT.replace("1200", "很多").replace("21:00:00", "晚上"), "utf-8")
    result = run(["import", "douyin-compass", "--base", "haifeng", str(export)], tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "2 problems on 2 lines; nothing was imported" in result.stderr
    assert "line 2, 观看人数: '很多' is not a number" in result.stderr
    assert "line 3, 开播时间" in result.stderr
    result = run(["import", "douyin-compass", "--base", "atlantis", str(export)], tmp_path)
    assert result.returncode == 1 and "no base 'atlantis'" in result.stderr
    result = run(["import", "douyin-compass", "--base", "haifeng", "missing.csv"], tmp_path)
    assert result.returncode == 1 and "cannot read missing.csv" in result.stderr


async def test_channels_fetches_then_stores_all_or_nothing(tmp_path: Path) -> None:
    platform = FakeChannels(Clock(), lives={"export/live-1": LIVE}, quota_per_minute=1)
    server = TestServer(platform.app())
    await server.start_server()
    api = str(server.make_url("")).rstrip("/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEBASE_", "WECHAT_"))}
    env |= {"LIVEBASE_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    args = ["import", "channels", "--base", "haifeng", "--account", "海丰茶哥", "--api", api]

    async def run_async(extra: list[str], secrets: bool = True) -> tuple[int, str]:
        creds = {"WECHAT_CHANNELS_APPID": APPID, "WECHAT_CHANNELS_SECRET": SECRET}
        proc = await asyncio.create_subprocess_exec(
            *LIVEBASE, *args, *extra, env=env | (creds if secrets else {}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None
        return proc.returncode, stderr.decode()

    try:
        code, out = await run_async(["export/live-1"])
        assert code == 0, out
        assert "WeChat Channels: 1 broadcasts, 1 new" in out and "1 external" in out
        # The quota of one call a minute is spent: 45009, and nothing is stored.
        code, out = await run_async(["export/live-1"])
        assert code == 1 and "error 45009" in out and "nothing was stored" in out
        assert SECRET not in out
        code, out = await run_async(["export/live-1"], secrets=False)
        assert code == 1 and "set WECHAT_CHANNELS_APPID and WECHAT_CHANNELS_SECRET" in out
    finally:
        await server.close()
    assert platform.answers == [0, 45009]
