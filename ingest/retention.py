"""Recording retention: a session's recording (its HLS directory) is kept for the configured
number of days after it was last written, then removed. Live sessions are never touched."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Collection
from pathlib import Path

__all__ = ["prune_recordings"]

log = logging.getLogger("livebase.ingest.retention")


def _last_write(session_dir: Path) -> float:
    return max((p.stat().st_mtime for p in session_dir.rglob("*") if p.is_file()), default=0.0)


def prune_recordings(
    hls_root: Path, keep_days: float, live: Collection[Path] = (), now: float | None = None
) -> list[Path]:
    """Remove ``hls_root/<base>/<room>/<session>`` directories older than ``keep_days``.

    Returns what was removed. ``live`` lists session directories in use, kept whatever their
    age; anything that is not a session directory (a stray file, a non-numeric name) is left.
    """
    cutoff = (time.time() if now is None else now) - keep_days * 86_400
    keep = {p.resolve() for p in live}
    removed = []
    for session_dir in sorted(hls_root.glob("*/*/*")):
        if not session_dir.is_dir() or not session_dir.name.isdigit():
            continue
        if session_dir.resolve() in keep or _last_write(session_dir) >= cutoff:
            continue
        shutil.rmtree(session_dir)
        removed.append(session_dir)
        log.info("removed recording %s (older than %g days)", session_dir, keep_days)
    return removed
