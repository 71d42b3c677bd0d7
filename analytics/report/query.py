"""Read one window of rollups (never raw events) for a daily report.

Everything comes from the rollup tables (``analytics_minutes``, the session sets of
:mod:`analytics.members`, ``analytics_sessions``) plus the names of sessions, rooms, hosts,
themes and products. Sums and per-minute concurrency are read per session and minute and
grouped here, so that a host's, theme's, room's or base's figure is exactly the sum of its
sessions' (and PCU adds rooms live at the same minute, as ``docs/metrics.md`` defines it).
Distinct counts of one base's local day are the day counters (``analytics_day_counts``,
:mod:`analytics.day_sets`); a city-wide day, which may cut across bases' days and counts a
viewer of two bases once, is the size of the unions of the sessions' id sets, read once per
window and counted here. Either way a member counts in the day of its first minute in the
session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.members import member_numbers, read_members
from analytics.models import CLICK_BUYER, SUMS, DayCount, MinuteRollup, SessionSpan
from livebase.db.models import (
    GiClaimRecord,
    Host,
    LiveSession,
    Product,
    RelayIncident,
    Room,
    SessionStatus,
    Theme,
)

#: Distinct counts of :class:`analytics.kpis.Totals` and the member kind each is a union of.
DISTINCT = {
    "uv": "viewer",
    "buyers": "buyer",
    "clickers": "clicker",
    "interacting_uv": "interacting",
}
STALE_LIVE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class SessionMeta:
    id: int
    title: str
    room_id: int
    room: str
    host_id: int | None
    host: str
    theme_id: int | None
    theme_zh: str
    theme_en: str
    live_now: bool


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open UTC interval ``[start, end)``; ``as_of`` ends sessions still on air."""

    start: datetime
    end: datetime
    as_of: datetime


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    # Column by column: building a frame from row objects inspects every row (several times
    # slower on a few hundred thousand rows).
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(dict(zip(columns, values, strict=True)))


async def members(db: AsyncSession, session_ids: Sequence[int], w: Window) -> pd.DataFrame:
    """The id-set rows of the window's sessions: ``session_id``, ``kind``, ``member``.

    One read per window; the unions per host, theme or base are counted from it
    (:func:`distinct_counts`). Reading the rows once and counting in memory costs a fraction of
    one ``COUNT(DISTINCT …)`` per grouping in SQLite.
    """
    found = await read_members(db, sessions=session_ids, since=w.start, until=w.end)
    frame = pd.DataFrame(
        {
            "session_id": found["session_id"].to_numpy(),
            "kind": found["kind"].to_numpy(zero_copy_only=False),
            # Members as small integers: the unions below then hash ints, not strings.
            "member": member_numbers(found)[0].to_numpy(),
        }
    )
    return frame.astype({"session_id": "int64", "kind": "category"})


#: Distinct counts per group, as :func:`distinct_counts` and :func:`day_counts` give them.
Distinct = dict[int, dict[str, int]]


async def day_counts(db: AsyncSession, base_id: int, day: date) -> dict[str, Distinct]:
    """The base's day counters: per scope (session, host, theme, base), per scope id."""
    field = {**{kind: name for name, kind in DISTINCT.items()}, CLICK_BUYER: "click_buyers"}
    rows = await (await db.connection()).execute(
        select(DayCount.scope, DayCount.scope_id, DayCount.kind, DayCount.members).where(
            DayCount.base_id == base_id, DayCount.day == day, DayCount.kind.in_(list(field))
        )
    )
    out: dict[str, Distinct] = {}
    for scope, scope_id, kind, members in rows:
        out.setdefault(scope, {}).setdefault(scope_id, {})[field[kind]] = int(members)
    return out


def distinct_counts(frame: pd.DataFrame, group_of: Mapping[int, int]) -> Distinct:
    """Sizes of the unions of the id sets per group (``group_of`` maps session to group)."""
    rows = frame.assign(g=frame["session_id"].map(group_of))
    out: Distinct = {}
    counted = rows[rows["kind"].isin(list(DISTINCT.values()))]
    sizes = (
        counted.drop_duplicates(["g", "kind", "member"])
        .groupby(["g", "kind"], observed=True)
        .size()
    )
    field = {kind: name for name, kind in DISTINCT.items()}
    pairs: dict[Any, Any] = sizes.to_dict()
    for (g, kind), size in pairs.items():
        out.setdefault(int(g), {})[field[str(kind)]] = int(size)
    clickers = rows.loc[rows["kind"] == "clicker", ["g", "member"]].drop_duplicates()
    paying = rows.loc[rows["kind"] == "paying_viewer", ["g", "member"]].drop_duplicates()
    both = clickers.merge(paying, on=["g", "member"]).groupby("g").size()
    for g, size in both.items():
        out.setdefault(int(g), {})["click_buyers"] = int(size)  # type: ignore[call-overload]
    return out


async def session_minutes(db: AsyncSession, base_ids: Sequence[int], w: Window) -> pd.DataFrame:
    """Every session minute of the bases in the window: ``session_id``, ``minute``, the sums."""
    table = MinuteRollup.__table__
    columns = [table.c.scope_id, table.c.minute, *(table.c[s] for s in SUMS)]
    rows = await (await db.connection()).execute(
        select(*columns)
        .join(LiveSession, LiveSession.id == MinuteRollup.scope_id)
        .where(
            MinuteRollup.scope == "session",
            MinuteRollup.minute >= w.start,
            MinuteRollup.minute < w.end,
            LiveSession.base_id.in_(base_ids),
        )
    )
    frame = _frame(rows.all(), ["session_id", "minute", *SUMS])
    return frame.astype({"session_id": "int64", **dict.fromkeys(SUMS, "int64")})


async def live_seconds(
    db: AsyncSession, base_ids: Sequence[int], w: Window
) -> dict[int, tuple[int, datetime | None, datetime | None]]:
    """Per session on air in the window: (seconds on air inside it, start, end or None).

    A session runs from its ``stream.started`` (else its first event) to its ``stream.ended``
    (else its last event, or ``as_of`` while it is still live), clipped to the window. A session
    marked live whose last event is more than :data:`STALE_LIVE` old was left behind (a crash):
    it ends at its last event rather than running on through every later day.
    """
    rows = await db.execute(
        select(SessionSpan, LiveSession.status)
        .join(LiveSession, LiveSession.id == SessionSpan.session_id)
        .where(
            LiveSession.base_id.in_(base_ids),
            func.coalesce(SessionSpan.started_at, SessionSpan.first_event_at) < w.end,
        )
    )
    out: dict[int, tuple[int, datetime | None, datetime | None]] = {}
    for span, status in rows:
        start = span.started_at or span.first_event_at
        end = span.ended_at
        if start is None:
            continue
        quiet = w.as_of - (span.last_event_at or start)
        if end is None and (status is not SessionStatus.LIVE or quiet > STALE_LIVE):
            end = span.last_event_at
        until = end if end is not None else w.as_of
        seconds = (min(until, w.end) - max(start, w.start)).total_seconds()
        if until > w.start:
            out[span.session_id] = (max(0, int(seconds)), start, end)
    return out


async def sessions(db: AsyncSession, ids: Sequence[int]) -> dict[int, SessionMeta]:
    rows = await db.execute(
        select(LiveSession, Room.slug, Host.display_name, Theme)
        .join(Room, Room.id == LiveSession.room_id)
        .outerjoin(Host, Host.id == LiveSession.host_id)
        .outerjoin(Theme, Theme.id == LiveSession.theme_id)
        .where(LiveSession.id.in_(sorted(ids)))
    )
    out = {}
    for s, room, host, theme in rows:
        out[s.id] = SessionMeta(
            s.id, s.title, s.room_id, room, s.host_id, host or "", s.theme_id,
            theme.name_zh if theme else "", theme.name_en if theme else "",
            s.status is SessionStatus.LIVE,
        )  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class ProductFigures:
    product_id: int
    title: str
    gi: str | None
    gmv_fen: int
    orders: int
    impressions: int
    clicks: int


async def products(db: AsyncSession, base_ids: Sequence[int], w: Window) -> list[ProductFigures]:
    """The bases' products with any figure in the window, from the product rollups."""
    sums = (
        select(
            MinuteRollup.scope_id.label("pid"),
            func.sum(MinuteRollup.gmv_fen).label("gmv"),
            func.sum(MinuteRollup.orders).label("orders"),
            func.sum(MinuteRollup.impressions).label("impressions"),
            func.sum(MinuteRollup.clicks).label("clicks"),
        )
        .where(
            MinuteRollup.scope == "product",
            MinuteRollup.minute >= w.start,
            MinuteRollup.minute < w.end,
        )
        .group_by(MinuteRollup.scope_id)
        .subquery()
    )
    rows = await db.execute(
        select(
            Product.id,
            Product.title_zh,
            GiClaimRecord.registered_name,
            GiClaimRecord.system,
            sums,
        )
        .join(sums, sums.c.pid == Product.id)
        .outerjoin(GiClaimRecord, GiClaimRecord.product_id == Product.id)
        .where(Product.base_id.in_(base_ids))
    )
    return [
        ProductFigures(
            pid,
            title,
            None if system is None else (name or str(system.value)),
            int(gmv),
            int(orders),
            int(imp),
            int(clicks),
        )
        for pid, title, name, system, _, gmv, orders, imp, clicks in rows
    ]


async def relay_incidents(db: AsyncSession, session_ids: Sequence[int]) -> list[RelayIncident]:
    rows = await db.scalars(
        select(RelayIncident)
        .where(RelayIncident.session_id.in_(sorted(session_ids)))
        .order_by(RelayIncident.session_id, RelayIncident.destination_id)
    )
    return list(rows)


async def host_history(
    db: AsyncSession, base_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[int]]:
    """Paid GMV of each session with any rollup in ``[start, end)``, per host."""
    rows = await db.execute(
        select(LiveSession.host_id, MinuteRollup.scope_id, func.sum(MinuteRollup.gmv_fen))
        .join(LiveSession, LiveSession.id == MinuteRollup.scope_id)
        .where(
            MinuteRollup.scope == "session",
            MinuteRollup.minute >= start,
            MinuteRollup.minute < end,
            LiveSession.base_id.in_(base_ids),
            LiveSession.host_id.is_not(None),  # so every host below is an int
        )
        .group_by(LiveSession.host_id, MinuteRollup.scope_id)
    )
    out: dict[int, list[int]] = {}
    for host, _session, gmv in rows:
        out.setdefault(int(host or 0), []).append(int(gmv or 0))
    return out
