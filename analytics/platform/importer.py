"""Import a Douyin Compass export into a base: read, parse, match and store, all or nothing.

The API endpoint and ``livebase import douyin-compass`` both call :func:`import_douyin_compass`
inside one transaction: a file with any bad row raises :class:`ImportFailed` before anything
is written.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.platform import douyin_compass
from analytics.platform.douyin_compass import Problem, RowsRejected
from analytics.platform.store import Saved, save_figures
from livebase.db.models import Base
from livebase.listings import tables


class ImportFailed(ValueError):
    """Nothing was stored; ``problems`` has every reason, by line and column."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Imported:
    format: str
    encoding: str
    saved: Saved


async def import_douyin_compass(
    db: AsyncSession, base: Base, data: bytes, *, charset: str | None = None,
    now: datetime | None = None,
) -> Imported:  # fmt: skip
    try:
        sheet = await asyncio.to_thread(tables.read, data, None, charset)
    except tables.SheetError as exc:
        raise ImportFailed("the file cannot be read", [Problem(0, "(file)", str(exc))]) from exc
    try:
        figures = douyin_compass.parse(sheet, base.timezone, now=now)
    except RowsRejected as exc:
        lines = len({p.line for p in exc.problems})
        raise ImportFailed(
            f"{len(exc.problems)} problems on {lines} lines; nothing was imported", exc.problems
        ) from exc
    saved = await save_figures(db, base.id, figures, now=now)
    return Imported(tables.detect_format(data), sheet.encoding, saved)
