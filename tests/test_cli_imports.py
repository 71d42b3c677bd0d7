"""``livebase import douyin-compass``, run as a real process on a fresh data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIVEBASE = [str(Path(sys.executable).parent / "livebase")]
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
