"""Where report files go, how a day is named, and writing them so no reader sees half a file."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import date
from pathlib import Path

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_day(value: str) -> date:
    """A calendar day written ``YYYY-MM-DD``; ``ValueError`` naming the problem otherwise."""
    if not _DAY.fullmatch(value):
        raise ValueError(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-05-01")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date of the calendar ({exc})") from None


def report_path(data_dir: Path, base: str, day: date, extension: str) -> Path:
    """``data_dir/reports/<base>/<YYYY-MM-DD>.<extension>``."""
    return data_dir / "reports" / base / f"{day.isoformat()}.{extension}"


def write_atomic(path: Path, body: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
