"""Read rollups back as ``Totals`` per session and compare them with the reference."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.aggregate import Accumulator
from analytics.models import SUMS, MinuteRollup, SetMember
from analytics.schemas import AnalyticsEvent


async def minutes(db: AsyncSession, scope: str, scope_id: int) -> dict[Any, dict[str, int]]:
    rows = await db.scalars(
        select(MinuteRollup).where(MinuteRollup.scope == scope, MinuteRollup.scope_id == scope_id)
    )
    return {r.minute: {s: getattr(r, s) for s in SUMS} for r in rows}


async def figures(
    db: AsyncSession, scope: str, scope_id: int, sessions: list[int]
) -> dict[str, int]:
    """The counts a report would build: sums and PCU from minutes, distinct counts from sets."""
    by_minute = await minutes(db, scope, scope_id)
    out = {s: sum(m[s] for m in by_minute.values()) for s in SUMS}
    out["peak_concurrent"] = max((m["viewers"] for m in by_minute.values()), default=0)

    async def distinct(*kinds: str) -> set[tuple[str, str]]:
        rows = await db.execute(
            select(SetMember.namespace, SetMember.member_id).where(
                SetMember.session_id.in_(sessions), SetMember.kind.in_(kinds)
            )
        )
        return {tuple(r) for r in rows}  # type: ignore[misc]

    out["uv"] = len(await distinct("viewer"))
    out["buyers"] = len(await distinct("buyer"))
    out["clickers"] = len(clickers := await distinct("clicker"))
    out["click_buyers"] = len(clickers & await distinct("paying_viewer"))
    out["interacting_uv"] = len(await distinct("interacting"))
    del out["viewers"]
    return out


def reference(events: list[AnalyticsEvent]) -> dict[str, int]:
    acc = Accumulator()
    for event in events:
        acc.add(event)
    t = acc.totals()
    names = [s for s in SUMS if s != "viewers"]
    names += ["peak_concurrent", "uv", "buyers", "clickers", "click_buyers", "interacting_uv"]
    return {name: getattr(t, name) for name in names}


async def row_count(db: AsyncSession, model: Any) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)
