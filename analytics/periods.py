"""Totals per host, theme or base over a local day or week, from the rollups or a platform.

A day is cut at midnight in the base's time zone; a week runs Monday to Sunday. City-wide
figures are cut in :data:`CITY_TIMEZONE`, the zone every base of the city keeps.

``source="events"`` reads our own rollups: sums from the sessions' minutes, distinct counts as
the size of the union of the sessions' id sets (a member counts in the period of its first
minute in a session; a base's own day reads those sizes from the day counters of
:mod:`analytics.day_sets`), PCU from the summed minute samples, live time from the sessions' spans
clipped to the period. Each session counts for the host and theme it has now.
A platform (``"douyin"``, ``"channels"``) reads ``analytics_platform_sessions``: its broadcasts
that started in the period, summed; platforms give no id sets, so UV and buyers of several
broadcasts are sums (an upper bound) and PCU is the highest broadcast's. The two sources are
never added together (``docs/imports.md`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.kpis import TOTALS_FIELDS
from analytics.members import has_blocks, member_numbers, read_members
from analytics.models import CLICK_BUYER, SUMS, DayCount, MinuteRollup, SessionSpan, SetMember
from analytics.platform.figures import FIGURES, PLATFORMS
from analytics.platform.models import PlatformSession
from livebase.db.models import Base, LiveSession, SessionStatus

CITY_TIMEZONE: Final = "Asia/Shanghai"
SOURCES: Final = ("events", *PLATFORMS)
#: What totals are grouped by: rankings use hosts and themes; a base's own figures are "base".
Scope = Literal["host", "theme", "base"]
Entity = Literal["host", "theme"]
PeriodKind = Literal["day", "week"]
_MEMBER_TOTALS: Final = {
    "viewer": "uv",
    "buyer": "buyers",
    "clicker": "clickers",
    "interacting": "interacting_uv",
}


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    first_day: date  #: the local date the period starts on
    timezone: str
    start: datetime  #: UTC, inclusive
    end: datetime  #: UTC, exclusive

    @classmethod
    def of(cls, kind: PeriodKind, day: date, timezone: str) -> Period:
        first = day - timedelta(days=day.weekday()) if kind == "week" else day
        length = timedelta(days=7 if kind == "week" else 1)
        zone = ZoneInfo(timezone)

        def midnight(d: date) -> datetime:
            return datetime.combine(d, time(0), zone).astimezone(UTC)

        return cls(kind, first, timezone, midnight(first), midnight(first + length))

    def previous(self) -> Period:
        return Period.of(self.kind, self.first_day - timedelta(days=1), self.timezone)


def _empty(entity: Scope) -> pd.DataFrame:
    return pd.DataFrame({f"{entity}_id": pd.Series(dtype="int64"),
                         **{f: pd.Series(dtype="int64") for f in TOTALS_FIELDS}})  # fmt: skip


async def totals(
    db: AsyncSession,
    entity: Scope,
    period: Period,
    *,
    base_id: int | None = None,
    source: str = "events",
    as_of: datetime | None = None,
) -> pd.DataFrame:
    """A row per host, theme or base with figures: ``<entity>_id`` + the Totals fields."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    if source == "events":
        return await _event_totals(db, entity, period, base_id, as_of or datetime.now(UTC))
    return await _platform_totals(db, entity, period, base_id, source)


async def _platform_totals(
    db: AsyncSession, entity: Scope, period: Period, base_id: int | None, platform: str
) -> pd.DataFrame:
    owner = getattr(PlatformSession, f"{entity}_id")
    where = [
        PlatformSession.platform == platform,
        PlatformSession.started_at >= period.start,
        PlatformSession.started_at < period.end,
        owner.is_not(None),
    ]
    if base_id is not None:
        where.append(PlatformSession.base_id == base_id)
    columns = [
        (func.max if name == "peak_concurrent" else func.sum)(getattr(PlatformSession, name))
        for name in FIGURES
    ]
    rows = (await db.execute(select(owner, *columns).where(*where).group_by(owner))).all()
    if not rows:
        return _empty(entity)
    frame = pd.DataFrame([tuple(r) for r in rows], columns=[f"{entity}_id", *FIGURES])
    for name in TOTALS_FIELDS:
        if name not in frame:
            frame[name] = 0  # no clickers or click buyers: platforms give no id sets
    return frame[[f"{entity}_id", *TOTALS_FIELDS]].astype("int64")


async def _event_totals(
    db: AsyncSession, entity: Scope, period: Period, base_id: int | None, as_of: datetime
) -> pd.DataFrame:
    owner = getattr(LiveSession, f"{entity}_id")
    scope: list[ColumnElement[bool]] = [owner.is_not(None)]
    # Members are found through their time index, not session by session (a base's sessions
    # go back years): "base_id + 0" keeps SQLite's planner off the sessions' base index, its
    # documented way to disqualify an index; 4x faster on a busy day (docs/benchmarks.md).
    member_scope = list(scope)
    if base_id is not None:
        scope.append(LiveSession.base_id == base_id)
        member_scope.append(LiveSession.base_id + 0 == base_id)
    key = f"{entity}_id"

    minutes = await db.execute(
        select(owner, MinuteRollup.minute, *(func.sum(getattr(MinuteRollup, s)) for s in SUMS))
        .join(LiveSession, LiveSession.id == MinuteRollup.scope_id)
        .where(MinuteRollup.scope == "session", MinuteRollup.minute >= period.start,
               MinuteRollup.minute < period.end, *scope)
        .group_by(owner, MinuteRollup.minute)
    )  # fmt: skip
    by_minute = pd.DataFrame([tuple(r) for r in minutes], columns=[key, "minute", *SUMS])
    grouped = by_minute.groupby(key)
    out = grouped[[s for s in SUMS if s != "viewers"]].sum()
    out["peak_concurrent"] = grouped["viewers"].max()

    counted = await _day_counts(db, entity, period, base_id)
    if counted is None:
        counted = await _union_counts(db, owner, period, scope, member_scope)
    for (who, name), count in counted.items():
        out.loc[who, name] = count
    out["live_seconds"] = await _live_seconds(db, owner, period, scope, as_of)
    out = out.reindex(columns=[s for s in TOTALS_FIELDS]).fillna(0).astype("int64")
    out.index.name = key
    return out.reset_index()


async def _day_counts(
    db: AsyncSession, entity: Scope, period: Period, base_id: int | None
) -> dict[tuple[int, str], int] | None:
    """A base's day in its own time zone: the day counters (:mod:`analytics.day_sets`) per
    owner and Totals field; None for a week, or a day the counters are not cut for."""
    if period.kind != "day" or base_id is None:
        return None
    zone = await db.scalar(select(Base.timezone).where(Base.id == base_id))
    if zone != period.timezone:
        return None
    fields = {**_MEMBER_TOTALS, CLICK_BUYER: "click_buyers"}
    rows = await db.execute(
        select(DayCount.scope_id, DayCount.kind, DayCount.members).where(
            DayCount.base_id == base_id,
            DayCount.day == period.first_day,
            DayCount.scope == entity,
            DayCount.scope_id != 0,  # sessions without a host or theme
            DayCount.kind.in_(list(fields)),
        )
    )
    return {(who, fields[kind]): int(count) for who, kind, count in rows}


async def _union_counts(
    db: AsyncSession, owner: Any, period: Period, scope: list[Any], member_scope: list[Any]
) -> dict[tuple[int, str], int]:
    """Sizes of the unions of the sessions' id sets per owner and Totals field (click buyers:
    members both clickers and paying viewers of the owner's sessions). In SQL while the
    period's members are all rows; with blocks of sealed days among them
    (:mod:`analytics.members`), all are read and counted here."""
    if not await has_blocks(db, since=period.start, until=period.end):
        return await _counted_in_sql(db, owner, period, member_scope)
    rows = await db.execute(select(LiveSession.id, owner).where(*scope))
    owners: dict[int, int] = {sid: who for sid, who in rows}
    found = await read_members(db, since=period.start, until=period.end)
    ids = pa.array(sorted(owners), pa.int64())
    at = pc.index_in(found["session_id"], ids)
    found = found.filter(pc.is_valid(at))
    owned = pc.take(pa.array([owners[i] for i in ids.to_pylist()], pa.int64()), at.drop_null())
    sets = pa.table({"owner": owned, "kind": found["kind"], "member": member_numbers(found)[0]})
    sets = sets.group_by(["owner", "kind", "member"], use_threads=False).aggregate([])
    sizes = sets.group_by(["owner", "kind"], use_threads=False).aggregate([("member", "count")])
    out = {
        (who, _MEMBER_TOTALS[kind]): n
        for who, kind, n in zip(*(sizes[c].to_pylist() for c in sizes.column_names), strict=True)
        if kind in _MEMBER_TOTALS
    }
    paired = sets.filter(pc.is_in(sets["kind"], pa.array(["clicker", "paying_viewer"])))
    kinds = paired.group_by(["owner", "member"], use_threads=False).aggregate([("kind", "count")])
    both = kinds.filter(pc.equal(kinds["kind_count"], 2))
    both = both.group_by("owner", use_threads=False).aggregate([("member", "count")])
    for who, n in zip(both["owner"].to_pylist(), both["member_count"].to_pylist(), strict=True):
        out[(who, "click_buyers")] = n
    return out


async def _counted_in_sql(
    db: AsyncSession, owner: Any, period: Period, scope: list[Any]
) -> dict[tuple[int, str], int]:
    """:func:`_union_counts` where every member of the period is a row: counted in SQL."""
    member = (SetMember.namespace, SetMember.member_id)
    in_period = [SetMember.first_minute >= period.start, SetMember.first_minute < period.end]
    distinct_members = (
        select(owner.label("owner"), SetMember.kind, *member)
        .distinct()
        .join(LiveSession, LiveSession.id == SetMember.session_id)
        .where(*in_period, *scope)
        .subquery()
    )
    counts = await db.execute(
        select(distinct_members.c.owner, distinct_members.c.kind, func.count()).group_by(
            distinct_members.c.owner, distinct_members.c.kind
        )
    )
    out = {(who, _MEMBER_TOTALS[kind]): n for who, kind, n in counts if kind in _MEMBER_TOTALS}
    for who, n in (await _click_buyers(db, owner, in_period, scope)).items():
        out[(who, "click_buyers")] = n
    return out


async def _click_buyers(
    db: AsyncSession, owner: Any, in_period: list[Any], scope: list[Any]
) -> dict[int, int]:
    def kind(name: str) -> Any:
        return (
            select(owner.label("owner"), SetMember.namespace, SetMember.member_id)
            .distinct()
            .join(LiveSession, LiveSession.id == SetMember.session_id)
            .where(SetMember.kind == name, *in_period, *scope)
            .subquery()
        )

    clickers, payers = kind("clicker"), kind("paying_viewer")
    rows = await db.execute(
        select(clickers.c.owner, func.count(distinct(clickers.c.member_id)))
        .join(payers, (payers.c.owner == clickers.c.owner)
              & (payers.c.namespace == clickers.c.namespace)
              & (payers.c.member_id == clickers.c.member_id))
        .group_by(clickers.c.owner)
    )  # fmt: skip
    return {who: count for who, count in rows}


async def _live_seconds(
    db: AsyncSession, owner: Any, period: Period, scope: list[Any], as_of: datetime
) -> pd.Series[int]:
    rows = await db.execute(
        select(owner, LiveSession.status, SessionSpan.started_at, SessionSpan.ended_at,
               SessionSpan.first_event_at, SessionSpan.last_event_at)
        .join(LiveSession, LiveSession.id == SessionSpan.session_id)
        .where(func.coalesce(SessionSpan.started_at, SessionSpan.first_event_at) < period.end,
               *scope)
    )  # fmt: skip
    seconds: dict[int, int] = {}
    for who, status, started, ended, first, last in rows:
        begin = started or first
        finish = ended or (as_of if status == SessionStatus.LIVE else last)
        if begin is None or finish is None:
            continue
        overlap = min(finish, period.end) - max(begin, period.start)
        if overlap > timedelta(0):
            seconds[who] = seconds.get(who, 0) + int(overlap.total_seconds())
    return pd.Series(seconds, dtype="int64")
