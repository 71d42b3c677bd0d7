"""The recompute of a sealed day: a UTC day that ended before the prune's horizon.

Ingest refuses an event older than the lateness window, and the prune
(:func:`~analytics.rollup_store.forget_before`) drops the ledger and presence rows of the
minutes before its horizon (:func:`~analytics.rollup_store.prune_horizon`): no event can reach
a day that ended before it any more, and the rows only such events could need are dropped
anyway. So the recompute of a sealed day writes

* no ledger rows: the day's event ids are told apart in the archive itself, and against the
  ids the ledger still holds for other days (another day's event under the same id, counted
  first, as the live consumer would have found it);
* no presence rows: a minute's ``viewers`` is the number of distinct viewers the group-by
  finds in it;
* the session-set members the day adds, packed in a block per session and kind
  (:func:`~analytics.members.write_blocks`): week rankings and city-wide reports count unions
  of them across days and bases, and they tell a later day's members from this day's; nobody
  looks them up one by one any more, so they need no indexed row each;
* the day sets (:mod:`analytics.day_sets`) of the local days the UTC day touches, derived
  column-wise from the session sets: the counters alone for a local day that ended before the
  horizon too, as the prune leaves it (its member rows only tell whether a member joining the
  day is new, or a click buyer, and no event can ask that any more), the counters and the
  member rows, as the live consumer leaves them, for a local day still open.

This leans on what the prune leans on: that the rollup consumer counts an event within the
prune's margin of the lateness window after it happened.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics import packed
from analytics.day_sets import COLUMNS, add_counts, lock_days, write_rows
from analytics.directory import SessionDirectory, SessionInfo
from analytics.members import (
    MEMBER,
    MEMBERS,
    block_rows,
    member_numbers,
    read_members,
    write_blocks,
)
from analytics.models import CLICK_BUYER, DAY_SCOPES, KINDS, DayCount, DayMember, ProcessedEvent
from analytics.rollup_store import PRUNE_MARGIN, prune_horizon
from livebase.db.models import Base

#: A (base id, local day) whose day sets are derived again, and its UTC bounds.
Days = dict[tuple[int, date], tuple[datetime, datetime]]


@dataclass(frozen=True, slots=True)
class Seal:
    """What a sealed day is written against."""

    horizon: datetime  #: the prune's: a local day that ended before it is sealed too
    #: Only an event that happened before this (the day's end, the lateness window and the
    #: prune's margin) can have been received, and counted, before one of the day's events.
    ledger_until: datetime


def seal_of(end: datetime, now: datetime, lateness: timedelta) -> Seal | None:
    """The seal of a day that ends at ``end``, None while it can still receive events."""
    horizon = prune_horizon(now, lateness)
    if end > horizon:
        return None
    return Seal(horizon, end + lateness + PRUNE_MARGIN)


async def held_elsewhere(db: AsyncSession, start: datetime, end: datetime, seal: Seal) -> pa.Array:
    """The ids the ledger holds for events of other days than ``[start, end)``, which the
    day's events under those ids must not count again.

    The ledger keeps only the minutes after the prune's horizon: of a day sealed long ago
    this reads nothing; of a day just sealed, the ids of the lateness window after it.
    """
    when = ProcessedEvent.occurred_at
    outside = or_(when < start, and_(when >= end, when < seal.ledger_until))
    rows = await (await db.connection()).execute(select(ProcessedEvent.event_id).where(outside))
    return pa.array([row[0] for row in rows], pa.string())


@dataclass(frozen=True, slots=True)
class Numbered:
    """Members' numbers (a row each) and the namespace and member id of each number."""

    numbers: pa.Array | pa.ChunkedArray
    namespaces: pa.Array
    ids: pa.Array


async def write_members(
    db: AsyncSession,
    members: pa.Table,
    numbered: Numbered,
    sessions: list[int],
    start: datetime,
    end: datetime,
    horizon: datetime,
    *,
    meanwhile: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Store the day's session-set members that no other day holds (``members``: one row
    per :data:`~analytics.members.MEMBER` with its ``first_minute``, numbered as
    ``numbered`` says) in blocks (:func:`~analytics.members.write_blocks`), then derive the
    day sets it touches; ``meanwhile`` runs while the blocks and day sets are worked out (the
    database is its alone then)."""
    members = members.select(MEMBERS.names).cast(MEMBERS)
    # What is left of the day's sessions is other days': their members keep their first minute.
    stored = await read_members(db, sessions=sessions)
    if stored.num_rows:
        members = members.append_column("number", numbered.numbers)
        members = members.join(stored.select(MEMBER), keys=MEMBER, join_type="left anti")
        numbered = Numbered(members["number"], numbered.namespaces, numbered.ids)
        members = members.select(MEMBERS.names)
    await _derive_days(db, members, numbered, start, end, horizon, meanwhile)


def _midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


async def _touched(db: AsyncSession, start: datetime, end: datetime) -> Days:
    """Each base's local days that ``[start, end)`` (UTC) overlaps, with their UTC bounds."""
    days: Days = {}
    for base_id, zone in await db.execute(select(Base.id, Base.timezone)):
        for moment in (start, end - timedelta(microseconds=1)):
            day = moment.astimezone(ZoneInfo(zone)).date()
            days[(base_id, day)] = (_midnight(day, zone), _midnight(day + timedelta(days=1), zone))
    return days


#: Member kinds by number in :func:`_placed` rows; click buyers last (:func:`_day_rows`).
_KINDS: Final = pa.array([*KINDS, CLICK_BUYER])
_CLICKER: Final = KINDS.index("clicker")
#: The day scopes, in the two halves counted side by side.
_HALVES: Final = (DAY_SCOPES[:2], DAY_SCOPES[2:])
_PAYING: Final = KINDS.index("paying_viewer")


def _day_key(base_id: Any, day: Any) -> Any:
    """One integer per (base id, local day), of columns."""
    return pc.add(pc.multiply(base_id, 1 << 32), pc.cast(pc.cast(day, pa.int32()), pa.int64()))


def _day_keys(days: Any) -> pa.Array:
    """:func:`_day_key` of (base id, local day) pairs."""
    return pa.array([b << 32 | (d - date(1970, 1, 1)).days for b, d in days], pa.int64())


async def _derive_days(
    db: AsyncSession,
    new: pa.Table,
    numbered: Numbered,
    start: datetime,
    end: datetime,
    horizon: datetime,
    meanwhile: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Store the day's new members in blocks and derive the touched day sets again from them
    and the stored members of the rest of those local days; member rows for the local days
    still open only, which the live consumer may be writing to: under the days' exclusive
    locks. The blocks are packed beside the day sets' placement, the counts of the sealed
    days' scopes in two halves side by side (pyarrow and numpy leave Python's lock)."""
    days = await _touched(db, start, end)
    await lock_days(db, {day for _, day in days}, shared=False)
    for base_id, day in sorted(days):
        for model in (DayMember, DayCount):
            await db.execute(delete(model).where(model.base_id == base_id, model.day == day))
    low = min(since for since, _ in days.values())
    high = max(until for _, until in days.values())
    before = await read_members(db, since=low, until=start)
    around = pa.concat_tables([before, await read_members(db, since=end, until=high)])
    members = pa.concat_tables([new.cast(MEMBERS), around])
    if around.num_rows:  # numbered again, with the stored members of the local days
        numbered = Numbered(*member_numbers(members))
    found = await SessionDirectory().lookup(db, pc.unique(members["session_id"]).to_pylist())
    still_open = _day_keys(key for key, (_, until) in days.items() if until > horizon)

    async def worked_out() -> tuple[list[dict[str, Any]], pa.Table, list[dict[Any, int]]]:
        blocks, placed = await asyncio.gather(
            asyncio.to_thread(block_rows, start.date(), new),
            asyncio.to_thread(_placed, members, numbered.numbers, found, days),
        )
        is_open = pc.is_in(placed["key"], still_open)
        sealed = placed.filter(pc.invert(is_open))
        halves = await asyncio.gather(
            *(asyncio.to_thread(_day_counts, sealed, scopes) for scopes in _HALVES)
        )
        return blocks, placed.filter(is_open), list(halves)

    async with asyncio.TaskGroup() as group:
        work = group.create_task(worked_out())
        group.create_task(meanwhile())
    blocks, still, halves = work.result()
    rows = _day_rows(still, numbered.namespaces, numbered.ids)
    await write_blocks(db, blocks)
    await write_rows(db, zip(*(rows[c].to_pylist() for c in COLUMNS), strict=True))
    await add_counts(db, {key: n for half in halves for key, n in half.items()})


def _local_days(first: pa.ChunkedArray, zones: list[str], zone_at: pa.Array) -> pa.Array:
    """The local date of each ``first`` minute in the zone ``zones[zone_at]``, worked out once
    per distinct (zone, minute)."""
    minutes = pc.unique(first)
    local = [m.astimezone(ZoneInfo(z)).date() for z in zones for m in minutes.to_pylist()]
    at = pc.add(
        pc.multiply(pc.cast(zone_at, pa.int64()), len(minutes)),
        pc.cast(pc.index_in(first, minutes), pa.int64()),
    )
    return pc.take(pa.array(local, pa.date32()), at)


def _placed(
    members: pa.Table,
    numbers: pa.Array | pa.ChunkedArray,
    found: dict[int, SessionInfo],
    days: Days,
) -> pa.Table:
    """The session members of ``days``, each with its base, local day (and ``key``, the two as
    :func:`_day_key`), the ids of its scopes (a column per :data:`~analytics.models.DAY_SCOPES`;
    a missing host or theme is 0), its kind's number in :data:`_KINDS` and its ``member``
    number (``numbers``), as :func:`~analytics.day_sets.day_rows` places them; members of
    sessions not ``found`` left out."""
    ids = sorted(found)
    at = pc.index_in(members["session_id"], pa.array(ids, pa.int64()))
    known = pc.is_valid(at)
    columns = {
        "session": members["session_id"],
        "kind": pc.cast(pc.index_in(members["kind"], _KINDS), pa.int8()),
        "member": numbers,
        "first_minute": members["first_minute"],
    }
    if not pc.all(known).as_py():
        columns = {name: pc.filter(values, known) for name, values in columns.items()}
        at = pc.filter(at, known)
    info = [found[i] for i in ids]
    zones = sorted({i.timezone for i in info})

    def per_row(values: list[int]) -> pa.Array:
        return pc.take(pa.array(values, pa.int64()), at)

    base = per_row([i.base_id for i in info])
    day = _local_days(
        columns.pop("first_minute"), zones, per_row([zones.index(i.timezone) for i in info])
    )
    placed = pa.table(
        {
            "base_id": base,
            "day": day,
            "key": _day_key(base, day),
            "host": per_row([i.host_id or 0 for i in info]),
            "theme": per_row([i.theme_id or 0 for i in info]),
            "base": base,
            **columns,
        }
    )
    return placed.filter(pc.is_in(placed["key"], _day_keys(days)))


def _day_rows(placed: pa.Table, namespaces: pa.Array, ids: pa.Array) -> pa.Table:
    """The distinct day-set rows (:data:`~analytics.day_sets.COLUMNS`) of :func:`_placed`
    members, click buyers included: :func:`~analytics.day_sets.day_rows` and
    :func:`~analytics.day_sets.click_buyers` on columns; the members' names are
    ``namespaces`` and ``ids`` by member number."""
    n = placed.num_rows
    keys = ["base_id", "day", "scope", "scope_id", "member"]
    parts = [
        pa.table(
            {
                "base_id": placed["base_id"],
                "day": placed["day"],
                "scope": pa.repeat(pa.scalar(number, pa.int8()), n),
                "scope_id": placed[scope],
                "member": placed["member"],
                "kind": placed["kind"],
            }
        )
        for number, scope in enumerate(DAY_SCOPES)
    ]
    rows = pa.concat_tables(parts)
    rows = packed.distinct(rows, [*keys, "kind"])
    # A member both a clicker and a paying viewer of a scope's day is a click buyer of it.
    clickers = rows.filter(pc.equal(rows["kind"], _CLICKER)).select(keys)
    paying = rows.filter(pc.equal(rows["kind"], _PAYING)).select(keys)
    both = clickers.join(paying, keys=keys, join_type="left semi")
    both = both.append_column("kind", pa.repeat(pa.scalar(len(KINDS), pa.int8()), both.num_rows))
    rows = pa.concat_tables([rows.select([*keys, "kind"]), both])
    return pa.table(
        {
            "base_id": rows["base_id"],
            "day": rows["day"],
            "scope": pc.take(pa.array(DAY_SCOPES), rows["scope"]),
            "scope_id": rows["scope_id"],
            "kind": pc.take(_KINDS, rows["kind"]),
            "namespace": pc.take(namespaces, rows["member"]),
            "member_id": pc.take(ids, rows["member"]),
        }
    )


def _day_counts(placed: pa.Table, scopes: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
    """What :func:`_day_rows` would count per base, day, scope, scope id and kind, for
    ``scopes``, without making the rows: distinct members counted per scope, on numbers."""
    paired = placed.filter(pc.is_in(placed["kind"], pa.array([_CLICKER, _PAYING], pa.int8())))
    kinds = _KINDS.to_pylist()
    counts: dict[tuple[Any, ...], int] = {}
    for scope in scopes:
        keys = ["base_id", "day", scope]
        found = packed.count_distinct(placed, [*keys, "kind"], "member")
        # Click buyers: members in both kinds of the scope's day.
        both_kinds = packed.count_distinct(paired, [*keys, "member"], "kind")
        both = both_kinds.filter(pc.equal(both_kinds["kind_count_distinct"], 2))
        both = both.group_by(keys, use_threads=False).aggregate([("member", "count")])
        for table, kind, n in (
            (found, [kinds[k] for k in found["kind"].to_pylist()], found["member_count_distinct"]),
            (both, [CLICK_BUYER] * both.num_rows, both["member_count"]),
        ):
            rows = zip(table["base_id"].to_pylist(), table["day"].to_pylist(),
                       table[scope].to_pylist(), kind, n.to_pylist(), strict=True)  # fmt: skip
            for base_id, day, scope_id, k, count in rows:
                counts[(base_id, day, scope, scope_id, k)] = count
    return counts
