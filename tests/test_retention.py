from __future__ import annotations

import os
import time
from pathlib import Path

from ingest.retention import prune_recordings

DAY = 86_400


def recording(root: Path, session: str, age_days: float) -> Path:
    d = root / "haifeng" / "studio-1" / session
    (d / "source").mkdir(parents=True)
    for name in ("source/seg_00000.ts", "source/replay.m3u8", "master.m3u8"):
        f = d / name
        f.write_text("x")
        stamp = time.time() - age_days * DAY
        os.utime(f, (stamp, stamp))
    return d


def test_old_recordings_go_recent_and_live_ones_stay(tmp_path: Path) -> None:
    old = recording(tmp_path, "1", 40)
    recent = recording(tmp_path, "2", 3)
    live_old = recording(tmp_path, "3", 40)
    stray = tmp_path / "haifeng" / "studio-1" / "notes"
    stray.mkdir()
    removed = prune_recordings(tmp_path, 30, live=[live_old])
    assert removed == [old] and not old.exists()
    assert recent.exists() and live_old.exists() and stray.exists()


def test_a_recording_touched_recently_is_kept(tmp_path: Path) -> None:
    d = recording(tmp_path, "7", 40)
    (d / "source" / "replay.m3u8").write_text("#EXTM3U\n")  # written today
    assert prune_recordings(tmp_path, 30) == [] and d.exists()


def test_an_empty_root_is_fine(tmp_path: Path) -> None:
    assert prune_recordings(tmp_path / "missing", 30) == []
