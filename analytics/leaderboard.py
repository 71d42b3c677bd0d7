"""A period's ranking of hosts or themes, with names, against the period before.

Reads the totals of both periods (:mod:`analytics.periods`) and ranks them with
:func:`analytics.ranking.rank_entities`; a base's ranking shrinks toward the base, the city's
toward the city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.periods import Entity, Period, totals
from analytics.ranking import rank_entities
from livebase.db.models import Base, Host, Theme


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    name_en: str | None
    base: str | None  #: the host's base slug (themes are city-wide)


async def names(db: AsyncSession, entity: Entity, ids: list[int]) -> dict[int, Name]:
    if entity == "host":
        rows = await db.execute(
            select(Host.id, Host.display_name, Base.slug)
            .join(Base, Base.id == Host.base_id)
            .where(Host.id.in_(ids))
        )
        return {i: Name(name, None, slug) for i, name, slug in rows}
    themes = await db.execute(
        select(Theme.id, Theme.name_zh, Theme.name_en).where(Theme.id.in_(ids))
    )
    return {i: Name(zh, en, None) for i, zh, en in themes}


async def ranking(
    db: AsyncSession,
    entity: Entity,
    period: Period,
    *,
    base_id: int | None = None,
    source: str = "events",
    min_uv: int = 100,
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """:func:`rank_entities`'s table for the period (empty when nobody has figures in it)."""
    current = await totals(db, entity, period, base_id=base_id, source=source, as_of=as_of)
    if current.empty:
        return pd.DataFrame()
    previous = await totals(
        db, entity, period.previous(), base_id=base_id, source=source, as_of=as_of
    )
    key = f"{entity}_id"
    return rank_entities(
        current, previous if not previous.empty else None, entity=key, min_uv=min_uv
    )
