"""Assemble one local calendar day's report for a base, or for the whole city.

The day is cut in the base's time zone (city-wide: :data:`CITY_TIMEZONE`). Every figure is
read from the rollups (:mod:`analytics.report.query`) and every KPI goes through
:mod:`analytics.kpis`, the rankings through :mod:`analytics.ranking`: the same code as the
live counters and the API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.kpis import TOTALS_FIELDS, KPIs, Totals, compute_kpis, peak_concurrent_frame
from analytics.models import SUMS
from analytics.ranking import rank_entities
from analytics.report import anomalies, query
from analytics.report.model import (
    HEADLINE,
    Charts,
    Compared,
    DailyReport,
    Headline,
    ProductRow,
    Series,
    SessionRow,
)
from analytics.report.query import SessionMeta, Window
from livebase.db.models import Base

CITY_TIMEZONE = "Asia/Shanghai"  #: the day of a city-wide report (Shanwei's)
BUCKET_MINUTES = 5  #: chart resolution
TOP_PRODUCTS = 10
MIN_UV = 100  #: ranking's minimum exposure (docs/metrics.md)


class UnknownBase(LookupError):
    """No base has this slug."""


def day_window(day: date, timezone: str, as_of: datetime) -> Window:
    """The local day ``[00:00, next 00:00)`` in UTC; right across a DST change too."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return Window(start, end, as_of)


@dataclass(slots=True)
class Period:
    """One window's rollups, read once and grouped as asked."""

    minutes: pd.DataFrame
    live: dict[int, tuple[int, datetime | None, datetime | None]]
    meta: dict[int, SessionMeta]
    #: A base's day: its day counters per scope (query.day_counts); else None.
    counted: dict[str, query.Distinct] | None
    #: A city-wide day: the window's id-set rows (query.members); else None.
    members: pd.DataFrame | None
    cache: dict[str, dict[int, Totals]] = dataclasses.field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.meta

    def key(self, group: str, session_id: int) -> int:
        if group == "session":
            return session_id
        meta = self.meta[session_id]
        value = {"host": meta.host_id, "theme": meta.theme_id}.get(group)
        return value or 0

    def totals(self, group: str) -> dict[int, Totals]:
        """:class:`Totals` per ``group`` key (0: "all", or no host / theme)."""
        if group not in self.cache:
            self.cache[group] = self._totals(group)
        return self.cache[group]

    def _totals(self, group: str) -> dict[int, Totals]:
        keys = {s: self.key(group, s) for s in self.meta}
        frame = self.minutes.assign(g=self.minutes["session_id"].map(keys))
        sums = frame.groupby("g")[list(SUMS)].sum() if not frame.empty else pd.DataFrame()
        peaks = (
            peak_concurrent_frame(frame.rename(columns={"viewers": "present"}), ["g"])
            if not frame.empty
            else pd.Series(dtype="Int64")
        )
        live: dict[int, int] = {}
        for session_id, (seconds, _, _) in self.live.items():
            if session_id in keys:
                live[keys[session_id]] = live.get(keys[session_id], 0) + seconds
        distinct = self._distinct(group, keys)
        out: dict[int, Totals] = {}
        for g in sorted(set(keys.values())):
            row: Any = sums.loc[g] if g in sums.index else None
            counts = distinct.get(g, {})
            out[g] = Totals(
                **{s: int(row[s]) if row is not None else 0 for s in SUMS if s != "viewers"},
                buyers=counts.get("buyers", 0),
                uv=counts.get("uv", 0),
                clickers=counts.get("clickers", 0),
                click_buyers=counts.get("click_buyers", 0),
                interacting_uv=counts.get("interacting_uv", 0),
                live_seconds=live.get(g, 0),
                peak_concurrent=int(peaks.get(g, 0)),
            )
        return out

    def _distinct(self, group: str, keys: Mapping[int, int]) -> query.Distinct:
        if self.counted is None:
            assert self.members is not None
            return query.distinct_counts(self.members, keys)
        if group == "all":  # the one base's
            base = list(self.counted.get("base", {}).values())
            return {0: base[0]} if base else {}
        return self.counted.get(group, {})


async def read_period(
    db: AsyncSession, base_ids: Sequence[int], w: Window, day: date | None
) -> Period:
    """The window's rollups; ``day`` is the local day of the one base in ``base_ids``, whose
    distinct counts are read from its day counters (None: a city-wide window)."""
    minutes = await query.session_minutes(db, base_ids, w)
    live = await query.live_seconds(db, base_ids, w)
    # Viewer events also leave minute rows, so these are all the sessions with figures.
    ids = set(minutes["session_id"].tolist()) | set(live)
    meta = await query.sessions(db, list(ids))
    if day is not None:
        (base_id,) = base_ids
        return Period(minutes, live, meta, await query.day_counts(db, base_id, day), None)
    return Period(minutes, live, meta, None, await query.members(db, list(ids), w))


def _all(period: Period) -> KPIs:
    return compute_kpis(period.totals("all").get(0, Totals()))


def _headline(now: KPIs, before: KPIs, week: KPIs) -> list[Headline]:
    out = []
    for name in HEADLINE:
        value = getattr(now, name)
        out.append(
            Headline(
                name,
                value,
                Compared.of(value, getattr(before, name)),
                Compared.of(value, getattr(week, name)),
            )
        )
    return out


def _plain(value: Any) -> Any:
    """A pandas or numpy scalar as a JSON-ready Python value (``<NA>`` as None)."""
    if value is pd.NA or value is None:
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _ranking(
    now: Period, before: Period, group: str, names: Mapping[int, dict[str, str]]
) -> list[dict[str, Any]]:
    def frame(period: Period) -> pd.DataFrame:
        rows = [
            {group: g, **dataclasses.asdict(t)} for g, t in period.totals(group).items() if g != 0
        ]
        return pd.DataFrame(rows, columns=[group, *TOTALS_FIELDS])

    current = frame(now)
    if current.empty:
        return []
    previous = frame(before)
    table = rank_entities(
        current, previous if not previous.empty else None, entity=group, min_uv=MIN_UV
    )
    rows = []
    for record in table.to_dict("records"):
        row: dict[str, Any] = {str(k): _plain(v) for k, v in record.items()}
        key = row.pop(group)
        rows.append({f"{group}_id": key, **names.get(key, {}), **row})
    return rows


def _local(moment: datetime | None, timezone: str) -> str | None:
    return None if moment is None else moment.astimezone(ZoneInfo(timezone)).isoformat()


def _sessions(period: Period, timezone: str) -> list[SessionRow]:
    rows = []
    totals = period.totals("session")
    for session_id, meta in period.meta.items():
        _, start, end = period.live.get(session_id, (0, None, None))
        kpis = dataclasses.asdict(compute_kpis(totals[session_id]))
        rows.append(
            SessionRow(
                session_id, meta.title, meta.room, meta.host, meta.theme_zh,
                _local(start, timezone), _local(end, timezone),
                totals[session_id].live_seconds, {k: kpis[k] for k in HEADLINE},
            )
        )  # fmt: skip
    return sorted(rows, key=lambda r: (r.started_at or "~", r.session_id))


def _products(found: Sequence[query.ProductFigures]) -> tuple[list[ProductRow], list[ProductRow]]:
    rows = sorted(
        (
            ProductRow(
                p.product_id,
                p.title,
                p.gi,
                p.gmv_fen,
                p.orders,
                p.impressions,
                p.clicks,
                compute_kpis(Totals(impressions=p.impressions, clicks=p.clicks)).click_through_rate,
            )
            for p in found
        ),
        key=lambda r: (-r.gmv_fen, -r.orders, r.product_id),
    )
    return rows[:TOP_PRODUCTS], [r for r in rows if r.gi is not None]


def _charts(period: Period, w: Window) -> Charts:
    """Every bucket of the day for every room: 0 viewers when off air, GMV carried forward."""
    frame = period.minutes
    rooms = {s: m.room for s, m in period.meta.items()}
    day_minutes = int((w.end - w.start).total_seconds() // 60)
    buckets = range(0, day_minutes, BUCKET_MINUTES)
    viewers: list[Series] = []
    gmv: list[Series] = []
    if not frame.empty:
        offset = (frame["minute"] - pd.Timestamp(w.start)).dt.total_seconds() // 60
        frame = frame.assign(
            room=frame["session_id"].map(rooms),
            bucket=(offset // BUCKET_MINUTES * BUCKET_MINUTES).astype(int),
        )
        for room, rows in frame.groupby("room", sort=True):
            per_minute = rows.groupby("minute").agg(v=("viewers", "sum"), b=("bucket", "first"))
            peak: dict[Any, Any] = per_minute.groupby("b")["v"].max().to_dict()
            viewers.append(Series(str(room), [(b, int(peak.get(b, 0))) for b in buckets]))
            sold: dict[Any, Any] = rows.groupby("bucket")["gmv_fen"].sum().to_dict()
            so_far, points = 0, []
            for b in buckets:
                so_far += int(sold.get(b, 0))
                points.append((b, so_far))
            gmv.append(Series(str(room), points))
    themes = period.totals("theme")
    names = {m.theme_id or 0: (m.theme_zh, m.theme_en) for m in period.meta.values()}
    by_theme = sorted(
        ((*names.get(t, ("", "")), v.gmv_fen) for t, v in themes.items()),
        key=lambda x: (-x[2], x[0]),
    )
    return Charts(BUCKET_MINUTES, day_minutes, viewers, gmv, by_theme)


async def build_daily_report(
    db: AsyncSession, day: date, *, base: str | None, as_of: datetime | None = None
) -> DailyReport:
    """The report of ``day`` for the base ``base`` (a slug), or city-wide when None.

    ``as_of`` (default now) is the report time: a session still live ends there.
    Raises :class:`UnknownBase` for a slug that is no base.
    """
    now = datetime.now(UTC) if as_of is None else as_of
    if base is None:
        bases = list(await db.scalars(select(Base).order_by(Base.id)))
        scope: tuple[str, str | None, str, str, str] = (
            "city", None, "汕尾市", "Shanwei", CITY_TIMEZONE,
        )  # fmt: skip
    else:
        found = await db.scalar(select(Base).where(Base.slug == base))
        if found is None:
            raise UnknownBase(f"no base {base!r}")
        bases = [found]
        scope = ("base", found.slug, found.name_zh, found.name_en, found.timezone)
    timezone = scope[4]
    base_ids = [b.id for b in bases]
    w = day_window(day, timezone, now)
    report = DailyReport(
        *scope[:4], day.isoformat(), timezone, w.start.isoformat(), w.end.isoformat(),
        now.isoformat(), has_data=False,
    )  # fmt: skip

    async def period(local_day: date) -> Period:
        w = day_window(local_day, timezone, now)
        return await read_period(db, base_ids, w, None if base is None else local_day)

    current = await period(day)
    if current.empty:
        return report
    before = await period(day - timedelta(days=1))
    week = await period(day - timedelta(days=7))
    metas = {**before.meta, **current.meta}
    host_names = {m.host_id or 0: {"host": m.host} for m in metas.values()}
    theme_names = {
        m.theme_id or 0: {"theme_zh": m.theme_zh, "theme_en": m.theme_en} for m in metas.values()
    }
    products, gi_products = _products(await query.products(db, base_ids, w))
    titles = {s: m.title for s, m in current.meta.items()}
    session_buyers = {s: t.buyers for s, t in current.totals("session").items()}
    today: dict[int, list[int]] = {}
    for s, t in current.totals("session").items():
        host_id = current.meta[s].host_id
        if host_id is not None:
            today.setdefault(host_id, []).append(t.gmv_fen)
    history = await query.host_history(
        db, base_ids, w.start - timedelta(days=anomalies.HISTORY_DAYS), w.start
    )
    found_anomalies = [
        *anomalies.order_spikes(current.minutes, session_buyers, titles, timezone),
        *anomalies.relay_problems(await query.relay_incidents(db, list(current.meta)), titles),
        *anomalies.hosts_below_usual(today, history, {k: v["host"] for k, v in host_names.items()}),
    ]
    return dataclasses.replace(
        report,
        has_data=True,
        headline=_headline(_all(current), _all(before), _all(week)),
        hosts=_ranking(current, before, "host", host_names),
        themes=_ranking(current, before, "theme", theme_names),
        sessions=_sessions(current, timezone),
        products=products,
        gi_products=gi_products,
        charts=_charts(current, w),
        anomalies=found_anomalies,
    )
