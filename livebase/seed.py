"""Make the database hold the bases, rooms and themes declared in the settings (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.db.models import Base, Room, Theme
from livebase.settings import Settings


@dataclass(slots=True)
class SeedReport:
    bases: int = 0
    rooms: int = 0
    themes: int = 0


async def seed_catalogue(db: AsyncSession, settings: Settings) -> SeedReport:
    """Create what is missing and refresh names; never deletes what the config no longer lists."""
    report = SeedReport()
    for theme_cfg in settings.themes:
        theme = await db.scalar(select(Theme).where(Theme.slug == theme_cfg.slug))
        if theme is None:
            db.add(Theme(**theme_cfg.model_dump()))
            report.themes += 1
        else:
            theme.name_zh, theme.name_en = theme_cfg.name_zh, theme_cfg.name_en
    for base_cfg in settings.bases:
        base = await db.scalar(select(Base).where(Base.slug == base_cfg.slug))
        if base is None:
            base = Base(slug=base_cfg.slug)
            db.add(base)
            report.bases += 1
        base.name_zh, base.name_en = base_cfg.name_zh, base_cfg.name_en
        base.timezone = base_cfg.timezone
        await db.flush()
        for room_cfg in base_cfg.rooms:
            room = await db.scalar(
                select(Room).where(Room.base_id == base.id, Room.slug == room_cfg.slug)
            )
            if room is None:
                room = Room(base_id=base.id, slug=room_cfg.slug)
                db.add(room)
                report.rooms += 1
            room.name_zh, room.name_en = room_cfg.name_zh, room_cfg.name_en
    await db.flush()
    return report
