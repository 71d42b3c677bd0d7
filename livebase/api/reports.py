"""Daily reports over HTTP: a base's (admin and its manager) and the city's (admin).

``?format=json`` (the default) answers the report as built, money in fen; ``html`` is the page
to open in a browser; ``csv`` and ``xlsx`` download as files. Without ``?date=`` the report is
of yesterday in the base's time zone, the day the scheduled report covers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import Field, field_validator

from analytics.report import CITY_TIMEZONE, build_daily_report, render
from analytics.report.files import parse_day
from livebase.api.crud import resolve_base
from livebase.api.routing import Context, Endpoint
from livebase.api.schemas import Strict
from livebase.db.models import Role

MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})
ADMIN = frozenset({Role.ADMIN})


class DailyQuery(Strict):
    date: str | None = Field(
        default=None, description="the local day, YYYY-MM-DD (default: yesterday there)"
    )
    format: Literal["json", "html", "csv", "xlsx"] = "json"
    lang: Literal["zh", "en"] = Field(default="zh", description="language of html, csv, xlsx")

    @field_validator("date")
    @classmethod
    def _a_day(cls, value: str | None) -> str | None:
        if value is not None:
            parse_day(value)
        return value


def _day(query: DailyQuery, timezone: str) -> date:
    if query.date is not None:
        return parse_day(query.date)
    return datetime.now(UTC).astimezone(ZoneInfo(timezone)).date() - timedelta(days=1)


async def _respond(ctx: Context, base: str | None, timezone: str) -> web.Response:
    query: DailyQuery = ctx.query
    report = await build_daily_report(ctx.db, _day(query, timezone), base=base)
    rendered = render(report, query.format, query.lang)
    name = f"{base or 'city'}-{report.date}.{rendered.extension}"
    disposition = "inline" if query.format in ("json", "html") else "attachment"
    return web.Response(
        body=rendered.body,
        headers={
            "Content-Type": rendered.content_type,
            "Content-Disposition": f'{disposition}; filename="{name}"',
        },
    )


async def base_daily(ctx: Context) -> web.Response:
    base = await resolve_base(ctx)
    return await _respond(ctx, base.slug, base.timezone)


async def city_daily(ctx: Context) -> web.Response:
    return await _respond(ctx, None, CITY_TIMEZONE)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/v1/bases/{base}/reports/daily",
        base_daily,
        "A base's daily report (JSON, HTML, CSV or XLSX)",
        "reports",
        query=DailyQuery,
        roles=MANAGERS,
    ),
    Endpoint(
        "GET",
        "/api/v1/reports/daily",
        city_daily,
        "The city-wide daily report, every base together (JSON, HTML, CSV or XLSX)",
        "reports",
        query=DailyQuery,
        roles=ADMIN,
    ),
]
