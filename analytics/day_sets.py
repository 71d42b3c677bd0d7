"""Distinct ids per scope and local day, counted once when the rollups are written.

A daily report needs the sizes of unions (viewers, buyers, clickers … of a host, theme or base
over a day); counting them from the session sets reads every member row of the day. Instead,
each session member, when it is first stored, also goes into the sets of its session, host,
theme and base for the local day (the base's time zone) of its first minute, a row inserted
once (``ON CONFLICT DO NOTHING``), and the day's counter of that set grows by the rows actually
inserted. A member both a clicker and a paying viewer of a scope's day is a
:data:`~analytics.models.CLICK_BUYER` too. The report then reads a few hundred counters.

The session sets stay the truth: :func:`rebuild_days` derives the day sets of whole local
days from them again (the recompute of an open day calls it; that of a sealed day derives
them column-wise, :mod:`analytics.day_sealed`).

A rebuild deletes a day's rows and writes them again while the live consumer may be storing
members of that same day (a recompute's local days reach a day either side of its UTC day,
where the consumer still counts). On PostgreSQL they exclude each other with a transaction
lock per local date (:func:`lock_days`): the consumer holds it shared for a batch's dates, a
rebuild exclusively. Otherwise a rebuild that began while a consumer's member was not yet
committed deletes the day without the member's rows, waits for the consumer's counter rows,
sees the member once committed and writes its rows again: a duplicate key fails the recompute.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.directory import SessionDirectory, SessionInfo
from analytics.inserts import bind_processor, insert_for, insert_new, table_of
from analytics.members import read_members
from analytics.models import CLICK_BUYER, DayCount, DayMember
from livebase.db.models import Base

#: A session set member: session id, kind, namespace, member id, first minute.
SessionMember = tuple[int, str, str, str, datetime]
#: A :class:`DayMember` row as a tuple, in :data:`COLUMNS` order.
DayRow = tuple[int, date, str, int, str, str, str]
COLUMNS = ("base_id", "day", "scope", "scope_id", "kind", "namespace", "member_id")
#: The kinds whose common members are click buyers, each with the other.
PAIRED = {"clicker": "paying_viewer", "paying_viewer": "clicker"}
CHUNK = 5_000


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_rows(
    members: Iterable[SessionMember],
    sessions: Mapping[int, SessionInfo],
    days: tuple[date, date] | None = None,
) -> set[DayRow]:
    """The day-set rows the session members give (those of ``days``, inclusive, if given)."""
    out: set[DayRow] = set()
    for session_id, kind, namespace, member_id, first in members:
        info = sessions.get(session_id)
        if info is None:
            continue
        day = first.astimezone(_zone(info.timezone)).date()
        if days is not None and not days[0] <= day <= days[1]:
            continue
        for scope, scope_id in (
            ("session", session_id),
            ("host", info.host_id or 0),
            ("theme", info.theme_id or 0),
            ("base", info.base_id),
        ):
            out.add((info.base_id, day, scope, scope_id, kind, namespace, member_id))
    return out


def click_buyers(rows: Iterable[DayRow]) -> set[DayRow]:
    """The click-buyer rows of a complete set of day rows (pure: for whole days)."""
    seen = {r for r in rows if r[4] in PAIRED}
    return {(*r[:4], CLICK_BUYER, *r[5:]) for r in seen if (*r[:4], PAIRED[r[4]], *r[5:]) in seen}


def span_days(start: datetime, end: datetime) -> list[date]:
    """The local dates, in any time zone, of ``[start, end)`` (UTC): a day either side."""
    first = start.date() - timedelta(days=1)
    return [first + timedelta(days=n) for n in range((end.date() - first).days + 1)]


def local_days(times: Iterable[tuple[str, datetime]]) -> set[date]:
    """Every local date from the earliest to the latest of ``times`` (zone, UTC time) of each
    zone: the days the members first seen at those times (in their minutes) can go into."""
    bounds: dict[str, tuple[datetime, datetime]] = {}
    for zone, at in times:
        low, high = bounds.get(zone, (at, at))
        bounds[zone] = (min(low, at), max(high, at))
    out: set[date] = set()
    for zone, (low, high) in bounds.items():
        first = low.replace(second=0, microsecond=0).astimezone(_zone(zone)).date()
        last = high.astimezone(_zone(zone)).date()
        out.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    return out


async def lock_days(db: AsyncSession, days: Iterable[date], *, shared: bool) -> None:
    """On PostgreSQL, hold the day-set lock of each of ``days`` until the transaction ends.

    Consumers hold it shared: they run side by side (two of them pairing a click with a
    payment also take :func:`_serialise`'s, after this one). A rebuild holds it exclusively:
    it waits for the consumers storing members of its days to commit, and they for it. In
    date order; the consumer (:func:`~analytics.rollup_store.apply_events`) and the recompute
    take it before any write, so that neither waits for it while holding rows the other may
    be waiting for. The one-key advisory lock space is the dates', the two-key one the pairs'.
    (SQLite writes one transaction at a time.)
    """
    if db.get_bind().dialect.name != "postgresql":
        return
    take = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    for day in sorted(set(days)):
        await db.execute(select(take(day.toordinal())))


async def add_session_members(
    db: AsyncSession, members: Sequence[SessionMember], sessions: Mapping[int, SessionInfo]
) -> None:
    """Put newly stored session members into their day sets; count the rows that are new.

    Beside a running rebuild, the caller holds the days' locks shared (:func:`lock_days`).
    """
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in sorted(day_rows(members, sessions))]
    new: list[DayRow] = [tuple(r) for r in await insert_new(db, table_of(DayMember), rows, COLUMNS)]
    pairs = [r for r in new if r[4] in PAIRED]
    if pairs:
        await _serialise(db, {(r[0], r[1]) for r in pairs})
        both = await _with_partner(db, pairs)
        rows = [dict(zip(COLUMNS, (*r[:4], CLICK_BUYER, *r[5:]), strict=True)) for r in both]
        new += [tuple(r) for r in await insert_new(db, table_of(DayMember), rows, COLUMNS)]
    await add_counts(db, Counter(r[:5] for r in new))


async def _serialise(db: AsyncSession, days: set[tuple[int, date]]) -> None:
    """On PostgreSQL, one transaction at a time looks for partners in a base's day.

    Two consumers storing a member's click and its payment at once would each miss the other's
    uncommitted row; a transaction lock per (base, day), taken in order, makes the second wait
    for the first to commit and then see its row. (SQLite writes one transaction at a time.)
    """
    if db.get_bind().dialect.name != "postgresql":
        return
    for base_id, day in sorted(days):
        await db.execute(select(func.pg_advisory_xact_lock(base_id, day.toordinal())))


async def _with_partner(db: AsyncSession, rows: Sequence[DayRow]) -> list[DayRow]:
    """The ``rows`` whose member is in the partner kind's set of the same scope and day."""
    wanted = {(*r[:4], PAIRED[r[4]], *r[5:]): r for r in rows}
    found: list[DayRow] = []
    ids = sorted({r[6] for r in rows})
    for start in range(0, len(ids), CHUNK):
        stored = await db.execute(
            select(*(DayMember.__table__.c[c] for c in COLUMNS)).where(
                DayMember.base_id.in_(sorted({r[0] for r in rows})),
                DayMember.day.in_(sorted({r[1] for r in rows})),
                DayMember.kind.in_(list(PAIRED)),
                DayMember.member_id.in_(ids[start : start + CHUNK]),
            )
        )
        found += [wanted[key] for key in (tuple(s) for s in stored) if key in wanted]
    return sorted(found)


async def add_counts(db: AsyncSession, counts: Mapping[tuple[Any, ...], int]) -> None:
    """Add ``counts`` (by base, day, scope, scope id and kind) to the day counters."""
    if not counts:
        return
    table = table_of(DayCount)
    rows = [
        {**dict(zip(COLUMNS[:5], key, strict=True)), "members": n}
        for key, n in sorted(counts.items())
    ]
    stmt = insert_for(db, table)
    await db.execute(
        stmt.on_conflict_do_update(
            index_elements=list(COLUMNS[:5]),
            set_={"members": table.c.members + stmt.excluded.members},
        ),
        rows,
    )


async def rebuild_days(db: AsyncSession, start: datetime, end: datetime) -> None:
    """Derive the day sets of every local day that ``[start, end)`` (UTC) touches again.

    Any time zone's local days of a UTC span lie within a day either side of its UTC dates
    (:func:`span_days`); they are rebuilt whole, from every session member first seen in them,
    under their exclusive locks (:func:`lock_days`).
    """
    dates = span_days(start, end)
    await lock_days(db, dates, shared=False)
    days = (dates[0], dates[-1])
    for model in (DayMember, DayCount):
        await db.execute(delete(model).where(model.day >= days[0], model.day <= days[1]))
    stored = await read_members(db, since=start - timedelta(days=2), until=end + timedelta(days=2))
    members: list[SessionMember] = list(
        zip(*(stored[c].to_pylist() for c in stored.column_names), strict=True)
    )
    sessions = await SessionDirectory().lookup(db, {m[0] for m in members})
    rows = day_rows(members, sessions, days)
    rows |= click_buyers(rows)
    await write_rows(db, rows)


async def forget_members_before(db: AsyncSession, horizon: datetime) -> None:
    """Drop the member rows of every base's local days that ended by ``horizon``; keep the
    counts.

    A day's member rows only tell whether a member joining it is new, and whether it is a
    click buyer; no event can join a day that ended before the prune's horizon (the prune's
    own assumption, :func:`~analytics.rollup_store.prune_horizon`), so its counters are final.
    Local day ``d`` ends at local midnight of ``d + 1``: the days before the horizon's local
    date have ended, the horizon's own has not.
    """
    bases: dict[date, list[int]] = {}
    for base_id, zone in await db.execute(select(Base.id, Base.timezone)):
        bases.setdefault(horizon.astimezone(_zone(zone)).date(), []).append(base_id)
    for until, ids in sorted(bases.items()):
        await db.execute(
            delete(DayMember).where(DayMember.base_id.in_(sorted(ids)), DayMember.day < until)
        )


async def write_rows(db: AsyncSession, rows: Iterable[DayRow]) -> None:
    """Insert day-set rows into days that hold none yet, and their counts.

    In key order, as plain tuples through the driver: a recompute writes a few rows per session
    member, and SQLAlchemy's per-row parameter handling would cost more than SQLite's insert.
    """
    ordered = sorted(rows)
    conn = await db.connection()
    dialect = conn.dialect
    table = table_of(DayMember)
    if dialect.paramstyle == "numeric_dollar":
        marks = ", ".join(f"${n}" for n in range(1, len(COLUMNS) + 1))
    else:
        marks = ", ".join("?" * len(COLUMNS))
    into = f"{dialect.identifier_preparer.format_table(table)} ({', '.join(COLUMNS)})"
    sql = f"INSERT INTO {into} VALUES ({marks})"  # noqa: S608 (names from our own metadata)
    as_day: Callable[[Any], Any] = bind_processor(table.c.day, dialect) or (lambda d: d)
    for start in range(0, len(ordered), CHUNK):
        chunk = [(b, as_day(d), *rest) for b, d, *rest in ordered[start : start + CHUNK]]
        await conn.exec_driver_sql(sql, chunk)
    await add_counts(db, Counter(r[:5] for r in ordered))
