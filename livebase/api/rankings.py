"""Rankings of hosts and themes for a day or a week, per base and city-wide.

The score, the minimum-exposure rule and the comparison with the previous period are
:mod:`analytics.ranking`'s (``docs/metrics.md``, "Rankings"); this module reads a period's
totals, ranks them and answers with names beside ids.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import BaseModel, Field

from analytics.leaderboard import names, ranking
from analytics.periods import CITY_TIMEZONE, Entity, Period
from analytics.ranking import COMPARED_COLUMNS
from livebase.api.crud import resolve_base
from livebase.api.routing import Context, Endpoint
from livebase.api.schemas import Strict
from livebase.db.models import Role

MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})
ADMINS = frozenset({Role.ADMIN})
ENTITY: dict[str, Entity] = {"hosts": "host", "themes": "theme"}


class RankingQuery(Strict):
    kind: Literal["hosts", "themes"] = Field(default="hosts", description="rank hosts or themes")
    period: Literal["day", "week"] = Field(
        default="day", description="a local day, or the Monday-to-Sunday week holding `date`"
    )
    date: dt.date | None = Field(
        default=None,
        ge=dt.date(2000, 1, 1),
        le=dt.date(2999, 12, 31),
        description="YYYY-MM-DD in the base's time zone; today when left out",
    )
    source: Literal["events", "douyin", "channels"] = Field(
        default="events",
        description="events: our own rollups; douyin or channels: the platform's imported figures",
    )
    min_uv: int = Field(default=100, ge=1, le=10_000_000, description="minimum exposure, in UV")


class Change(BaseModel):
    previous: float | None
    change: float | None
    change_pct: float | None = Field(description="change / previous, a fraction")


class RankingRow(BaseModel):
    rank: int | None
    entity_id: int
    name: str
    name_en: str | None
    base: str | None = Field(description="the host's base (themes are city-wide)")
    score: float | None = Field(description="expected paid GMV per viewer, fen (shrunk)")
    unranked_reason: str | None
    gmv_fen: int
    refund_fen: int
    net_gmv_fen: int
    orders: int
    buyers: int
    views: int
    uv: int
    uv_value_fen: int | None
    gpm_fen: int | None
    view_to_buy_rate: float | None
    rank_prev: int | None
    rank_change: int | None = Field(description="rank_prev - rank: positive is a climb")
    changes: dict[str, Change] = Field(
        description="against the previous period: " + ", ".join(COMPARED_COLUMNS)
    )


class PeriodOut(BaseModel):
    kind: str
    first_day: dt.date
    start: dt.datetime
    end: dt.datetime


class RankingOut(BaseModel):
    kind: str
    base: str | None
    source: str
    timezone: str
    min_uv: int
    period: PeriodOut
    previous: PeriodOut
    rows: list[RankingRow]


def _value(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def _period(p: Period) -> PeriodOut:
    return PeriodOut(kind=p.kind, first_day=p.first_day, start=p.start, end=p.end)


async def _answer(ctx: Context, base_id: int | None, slug: str | None, zone: str) -> RankingOut:
    query: RankingQuery = ctx.query
    entity = ENTITY[query.kind]
    day = query.date or dt.datetime.now(ZoneInfo(zone)).date()
    period = Period.of(query.period, day, zone)
    table = await ranking(
        ctx.db, entity, period, base_id=base_id, source=query.source, min_uv=query.min_uv
    )
    key = f"{entity}_id"
    rows: list[RankingRow] = []
    if not table.empty:
        found = await names(ctx.db, entity, [int(i) for i in table[key]])
        for record in table.to_dict("records"):
            r = {k: _value(v) for k, v in record.items()}
            who = found.get(r[key])
            rows.append(RankingRow(
                entity_id=r[key], name=who.name if who else f"#{r[key]}",
                name_en=who.name_en if who else None, base=who.base if who else None,
                changes={c: Change(previous=r[f"{c}_prev"], change=r[f"{c}_change"],
                                   change_pct=r[f"{c}_change_pct"]) for c in COMPARED_COLUMNS},
                **{f: r[f] for f in RankingRow.model_fields if f in r},
            ))  # fmt: skip
    return RankingOut(
        kind=query.kind, base=slug, source=query.source, timezone=zone, min_uv=query.min_uv,
        period=_period(period), previous=_period(period.previous()), rows=rows,
    )  # fmt: skip


async def base_rankings(ctx: Context) -> RankingOut:
    base = await resolve_base(ctx)
    return await _answer(ctx, base.id, base.slug, base.timezone)


async def city_rankings(ctx: Context) -> RankingOut:
    return await _answer(ctx, None, None, CITY_TIMEZONE)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/bases/{base}/rankings", base_rankings,
             "Hosts or themes of the base ranked for a day or week, with raw figures and the "
             "change against the previous period", "analytics", response=RankingOut,
             query=RankingQuery, roles=MANAGERS),
    Endpoint("GET", "/api/v1/rankings", city_rankings,
             "Hosts or themes of the whole city ranked for a day or week (Asia/Shanghai days)",
             "analytics", response=RankingOut, query=RankingQuery, roles=ADMINS),
]  # fmt: skip
