"""A day's rollups computed from its checked columns with group-bys, written in bulk.

The rules are those of :func:`~analytics.rollup.fold` and :mod:`analytics.rollup_store` (the
live consumer's code, which ``tests/test_recompute.py`` holds this module to): events of known
sessions only, each event id once (the first in archive order), each paid order and refund
once, a viewer present once per session minute, host, theme and base minutes the sums of their
sessions'. The caller has cleared the day (:func:`~analytics.rollup_store.clear_span`) in the
same transaction, so the day's minutes, presence, ledger, orders and refunds are all new;
what other days left (an order, a set member, a ledger entry under the same key) still wins,
as it does for the live consumer. Rows go in bulk (:func:`~analytics.inserts.bulk_insert`).

Strings are hashed once: the members an event names (source and viewer id, platform and buyer
id) and its type become small integers, which the group-bys and filters then work on; names
are put back only on the rows written.

A *sealed* day, one that ended before the prune's horizon, is written without the rows only
events still to come could need (:mod:`analytics.day_sealed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from analytics import packed
from analytics.day_sealed import Numbered, Seal, held_elsewhere, write_members
from analytics.day_sets import rebuild_days
from analytics.directory import SessionInfo
from analytics.inserts import bulk_insert
from analytics.members import MEMBERS
from analytics.models import (
    KINDS,
    SUMS,
    MinuteRollup,
    PaidOrder,
    Presence,
    ProcessedEvent,
    Refund,
    SetMember,
)
from analytics.rollup import CURRENCY, Span
from analytics.rollup_store import merge_spans

#: Unused member numbers allowed per row (see :func:`_member_codes`).
SPARSE: Final = 4
#: The UTC bounds of the day written.
Bounds = tuple[datetime, datetime]
#: Ids per ``IN (…)`` lookup.
LOOKUP: Final = 500
#: SQLite page cache while a day is written, KiB (see :func:`_page_cache`).
BULK_CACHE_KIB: Final = 1024 * 1024
VIEWER: Final = ("viewer.joined", "viewer.heartbeat", "viewer.left")
INTERACTION: Final = (
    "interaction.liked",
    "interaction.commented",
    "interaction.shared",
    "interaction.followed",
)
ON_AIR: Final = ("stream.started", "stream.ended", *VIEWER)
_KEYS: Final = ["scope_id", "minute"]
#: What a viewer's set memberships and presence are made of.
MEMBER_OF: Final = ["session_id", "minute", "viewer"]


class _ByType:
    """The counted events (:attr:`keep`: a row mask, None for all), taken by type: a small
    integer per type (one string hash per event in all, instead of one per event and take),
    and only the columns asked for (filtering all of a wide table costs more)."""

    def __init__(self, events: pa.Table, encoded: pa.DictionaryArray) -> None:
        """``encoded``: the ``type`` column, dictionary-encoded."""
        self.events = events
        self.keep: pa.Array | None = None
        self._codes = encoded.indices
        self._types = encoded.dictionary.to_pylist()

    def rows(self, columns: list[str]) -> pa.Table:
        """``columns`` of every counted event."""
        events = self.events.select(columns)
        return events if self.keep is None else events.filter(self.keep)

    def of(self, *kinds: str, columns: list[str] | None = None) -> pa.Table:
        """The counted events of ``kinds``: all their columns, or ``columns`` alone."""
        events = self.events if columns is None else self.events.select(columns)
        return events.filter(_both(self._in(kinds), self.keep))

    def _in(self, kinds: tuple[str, ...]) -> pa.Array:
        wanted = pa.array([n for n, t in enumerate(self._types) if t in kinds], pa.int32())
        return pc.is_in(self._codes, wanted)


def _is(types: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    """Which rows are of ``kind``, on the numbers of the dictionary-encoded ``types`` (comparing
    the column itself would decode every row to its text first)."""
    chunks = [
        pc.equal(chunk.indices, pc.index(chunk.dictionary, kind).as_py()) for chunk in types.chunks
    ]
    return pa.chunked_array(chunks, pa.bool_())


def _first_copies(events: pa.Table) -> pa.Array | None:
    """Which rows are the first (lowest ``pos``) of their event id; None if all are.

    Only rows whose id's fingerprint repeats (:func:`~analytics.packed.fingerprints`; the
    repeats, and the rare ids that share a fingerprint) are compared as strings: those ids
    numbered once, then their numbers' repeats found in ``pos`` order.
    """
    candidates = packed.repeated(packed.fingerprints(events["event_id"]))
    if candidates is None:
        return None
    rows = np.flatnonzero(candidates)
    ids = events["event_id"].take(pa.array(rows))
    numbers = pc.dictionary_encode(ids).combine_chunks().indices.to_numpy()
    order = np.argsort(events["pos"].to_numpy()[rows], kind="stable")
    repeat = pd.Series(numbers[order]).duplicated().to_numpy()
    if not repeat.any():
        return None
    first = np.ones(events.num_rows, dtype=bool)
    first[rows[order[repeat]]] = False
    return pa.array(first)


def _both(a: pa.Array | None, b: pa.Array | None) -> pa.Array | None:
    """Two row masks as one (None: every row)."""
    return b if a is None else a if b is None else pc.and_(a, b)


def _member_codes(events: pa.Table) -> tuple[pa.Table, pa.Array, pa.Array]:
    """``events`` with a member number per member it names (``viewer``: source and viewer
    id; ``buyer``: platform and buyer id; ``paying``: an order's viewer source and viewer id;
    null where it names none), and the namespace and member id of each number. Buyers and
    paying viewers are looked for in paid orders alone.

    Ids and namespaces are numbered apart, each string hashed once (joining the two into one
    key per row and hashing that took twice as long), and a member's number is its id's times
    the namespaces' count plus its namespace's. Numbers no member has are left unused, unless
    they would be more than :data:`SPARSE` per row: then the numbers in use are numbered again.
    """
    n = events.num_rows
    orders = _is(events["type"], "order.paid").combine_chunks()
    paid = events.filter(orders)
    m = paid.num_rows

    def numbered(*columns: pa.ChunkedArray) -> pa.DictionaryArray:
        chunks = [chunk for column in columns for chunk in column.chunks]
        return pc.dictionary_encode(pa.chunked_array(chunks, pa.string())).combine_chunks()

    ids = numbered(events["viewer_id"], paid["buyer_id"])
    spaces = numbered(events["source"], paid["platform"], paid["viewer_source"])
    width = len(spaces.dictionary)
    id_at = pc.cast(ids.indices, pa.int64())
    id_of = [id_at.slice(0, n), id_at.slice(n, m), id_at.slice(0, n).filter(orders)]
    numbers = [
        pc.add(
            pc.multiply(member_id, width), pc.cast(spaces.indices.slice(first, size), pa.int64())
        )
        for member_id, (first, size) in zip(id_of, ((0, n), (n, m), (n + m, m)), strict=True)
    ]
    if len(ids.dictionary) * width > SPARSE * (n + 2 * m + 256):
        renumbered = pc.dictionary_encode(pa.chunked_array(numbers, pa.int64())).combine_chunks()
        pairs = renumbered.dictionary.to_numpy()
        at = pc.cast(renumbered.indices, pa.int64())
        numbers = [at.slice(0, n), at.slice(n, m), at.slice(n + m, m)]
    else:
        pairs = np.arange(len(ids.dictionary) * width)
    events = events.append_column("viewer", numbers[0])
    for name, number in (("buyer", numbers[1]), ("paying", numbers[2])):
        events = events.append_column(
            name, pc.replace_with_mask(pa.nulls(n, pa.int64()), orders, number)
        )
    return (
        events,
        pc.take(spaces.dictionary, pairs % width),
        pc.take(ids.dictionary, pairs // width),
    )


def _firsts(rows: pa.Table, keys: list[str]) -> pa.Table:
    """The first row (lowest ``pos``) of each key."""
    first = rows.group_by(keys, use_threads=False).aggregate([("pos", "min")])
    return rows.filter(pc.is_in(rows["pos"], first["pos_min"]))


def _delta(scope_id: Any, minute: Any, **sums: Any) -> pa.Table:
    """Minute sums to add, already added up per (scope id, minute): columns ``scope_id``,
    ``minute`` and every sum (0 unless given); a row's sums are the given values or arrays."""
    n = len(scope_id)
    columns = {"scope_id": pc.cast(scope_id, pa.int64()), "minute": minute}
    for name, value in sums.items():
        columns[name] = (
            pa.repeat(pa.scalar(value, pa.int64()), n) if isinstance(value, int) else value
        )
    table = packed.sums(pa.table(columns), _KEYS, list(sums))
    zeros = pa.repeat(pa.scalar(0, pa.int64()), table.num_rows)
    added = {name: table[f"{name}_sum"] if name in sums else zeros for name in SUMS}
    return pa.table({"scope_id": table["scope_id"], "minute": table["minute"], **added})


def _add_up(deltas: list[pa.Table]) -> pa.Table:
    """Deltas summed per (scope id, minute); minutes whose sums are all 0 are left out."""
    table = packed.sums(pa.concat_tables(deltas), _KEYS, list(SUMS))
    table = table.rename_columns({f"{s}_sum": s for s in SUMS})
    total = table[SUMS[0]]
    for name in SUMS[1:]:
        total = pc.add(total, table[name])
    return table.filter(pc.greater(total, 0)).select([*_KEYS, *SUMS])


def _owners(sessions: pa.Table, known: dict[int, SessionInfo], attr: str) -> pa.Table:
    """Session minutes added up per host, theme or base (sessions without one left out)."""
    ids = sorted(known)
    owner_of = pa.array([getattr(known[i], attr) for i in ids], pa.int64())
    owner = pc.take(owner_of, pc.index_in(sessions["scope_id"], pa.array(ids, pa.int64())))
    mapped = sessions.set_column(0, "scope_id", owner).filter(pc.is_valid(owner))
    return _add_up([mapped]) if mapped.num_rows else mapped


async def _stored(
    db: AsyncSession, column: Any, key: str, values: list[str], *condition: Any
) -> set[tuple[Any, ...]]:
    """Rows of ``column``'s table among ``values`` of ``key`` (and ``condition``)."""
    table = column[0].table
    found: set[tuple[Any, ...]] = set()
    for first in range(0, len(values), LOOKUP):
        query = select(*column).where(table.c[key].in_(values[first : first + LOOKUP]), *condition)
        found.update(tuple(row) for row in await db.execute(query))
    return found


async def _insert_new(
    db: AsyncSession, model: type[Any], rows: pa.Table, keys: list[str], when: str, bounds: Bounds
) -> set[tuple[Any, ...]]:
    """Insert ``rows`` unless another row holds their ``keys``; return the keys among them
    that rows of other times (``when`` outside ``bounds``) already held.

    The day was cleared, so every row of the day's times in the table is one just stored:
    when they are as many as ``rows``, none was held elsewhere (the usual case, without a
    lookup); otherwise the rows' keys are looked up among the other times' rows.
    """
    await bulk_insert(db, model, rows, skip_existing=True)
    table = cast(Table, model.__table__)
    day = (table.c[when] >= bounds[0], table.c[when] < bounds[1])
    written = await db.scalar(select(func.count()).select_from(table).where(*day))
    if written == rows.num_rows:
        return set()
    values = pc.unique(rows[keys[-1]]).to_pylist()
    return await _stored(db, [table.c[k] for k in keys], keys[-1], values, ~(day[0] & day[1]))


async def _new_once(
    db: AsyncSession, model: type[Any], rows: pa.Table, key: str, columns: list[str], bounds: Bounds
) -> pa.Table:
    """Store the first row per (platform, ``key``) (its ``columns``) unless another day
    already stored one under that key; return the rows stored."""
    rows = _firsts(rows, ["platform", key])
    held = await _insert_new(db, model, rows.select(columns), ["platform", key], "minute", bounds)
    if not held:
        return rows
    pairs = zip(rows["platform"].to_pylist(), rows[key].to_pylist(), strict=True)
    return rows.filter(pa.array([pair not in held for pair in pairs], pa.bool_()))


async def _ledger(db: AsyncSession, events: pa.Table, bounds: Bounds) -> pa.Array:
    """Write the ledger of ``events`` (their ``event_id`` and ``occurred_at``); return the
    ids among them another day's ledger already holds."""
    held = await _insert_new(db, ProcessedEvent, events, ["event_id"], "occurred_at", bounds)
    return pa.array([row[0] for row in held], pa.string())


def _members(rows: pa.Table, kind: str, member: str) -> pa.Table:
    """Session-set members of ``kind``: the member numbers of column ``member`` of ``rows``."""
    rows = rows.filter(pc.is_valid(rows[member]))
    return pa.table(
        {
            "session_id": rows["session_id"],
            "kind": pa.repeat(pa.scalar(KINDS.index(kind), pa.int8()), rows.num_rows),
            "member": rows[member],
            "minute": rows["minute"],
        }
    )


def _set_members(parts: list[pa.Table], namespaces: pa.Array, ids: pa.Array) -> pa.Table:
    """Each distinct member of ``parts`` (:func:`_members`) with its first minute, as
    :data:`~analytics.members.MEMBERS` and its ``member`` number (of ``namespaces`` and
    ``ids``): grouped on numbers, named once grouped."""
    keys = ["session_id", "kind", "member"]
    found = packed.least(pa.concat_tables(parts), keys, "minute")
    named = pa.table(
        [
            found["session_id"],
            pc.take(pa.array(KINDS), found["kind"]),
            pc.take(namespaces, found["member"]),
            pc.take(ids, found["member"]),
            found["minute_min"],
        ],
        schema=MEMBERS,
    )
    return named.append_column("member", found["member"])


def _spans(on_air: pa.Table) -> dict[int, Span]:
    at, kind = on_air["occurred_at"], on_air["type"]
    bounds = pa.table(
        {
            "session_id": on_air["session_id"],
            "at": at,
            "started": pc.if_else(_is(kind, "stream.started"), at, None),
            "ended": pc.if_else(_is(kind, "stream.ended"), at, None),
        }
    )
    found = bounds.group_by("session_id", use_threads=False).aggregate(
        [("at", "min"), ("at", "max"), ("started", "min"), ("ended", "max")]
    )
    return {
        row["session_id"]: Span(row["started_min"], row["ended_max"], row["at_min"], row["at_max"])
        for row in found.to_pylist()
    }


@asynccontextmanager
async def _page_cache(db: AsyncSession) -> AsyncIterator[None]:
    """On SQLite, a page cache that holds the indexes being filled while the rows go in.

    A day's ledger, presence and set members are millions of index entries; with SQLite's
    default cache (2 MiB) the secondary indexes, filled in no particular order, spill pages
    to the WAL over and over. 256 MiB holds what a million events write; the 2 million set
    members of 3 million events spilled out of it, and went in a fifth faster with 1 GiB.
    Pages are only taken as needed, and given back with the connection's setting afterwards.
    """
    if db.get_bind().dialect.name != "sqlite":
        yield
        return
    before = int(await db.scalar(text("PRAGMA cache_size")) or 0)
    await db.execute(text(f"PRAGMA cache_size={-BULK_CACHE_KIB}"))
    try:
        yield
    finally:
        await db.execute(text(f"PRAGMA cache_size={before}"))


async def write_day(
    db: AsyncSession,
    events: pa.Table,
    known: dict[int, SessionInfo],
    start: datetime,
    end: datetime,
    seal: Seal | None,
) -> int:
    """Count the day's checked events into the cleared day; return how many were counted.

    A sealed day (``seal``, :func:`~analytics.day_sealed.seal_of`) is written as
    :mod:`analytics.day_sealed` says. Otherwise the ledger and presence rows are written
    too, and the day sets of the local days the day touches are derived again from the
    session sets (:func:`analytics.day_sets.rebuild_days`).
    """
    async with _page_cache(db):
        counted = await _write_day(db, events, known, start, end, seal)
        if seal is None:
            await rebuild_days(db, start, end)
        return counted


def _first_and_types(events: pa.Table) -> tuple[pa.Array | None, pa.DictionaryArray]:
    """:func:`_first_copies`, and the (dictionary-encoded) ``type`` column in one chunk
    (:class:`_ByType`)."""
    return _first_copies(events), events["type"].combine_chunks()


def _counting(events: pa.Table) -> tuple[pa.Table, pa.Array, pa.Array]:
    """The events with their minute and member numbers; the members' names."""
    return _member_codes(events.append_column("minute", _minute_of(events["occurred_at"])))


def _minute_of(at: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """UTC times floored to the minute: on the times without their zone (the same instants
    for UTC), where flooring in a named zone looks the zone up for every value, 9 times as
    long."""
    naive = pc.floor_temporal(at.cast(pa.timestamp("us")), unit="minute")
    return naive.cast(at.type)


def _minutes(
    by: _ByType, presence_rows: bool
) -> tuple[list[pa.Table], list[pa.Table], pa.Table, dict[int, Span]]:
    """The session and product minute sums of the events that are not orders, the viewers
    present per session minute (a row each if ``presence_rows``, else their count,
    ``viewer_count_distinct``), and the sessions' bounds."""
    every = by.rows(["type", "session_id", "minute", "watch_seconds", "count"])
    sessions = [
        _delta(
            every["session_id"],
            every["minute"],
            views=_is(every["type"], "viewer.joined"),
            viewer_seconds=every["watch_seconds"],
            impressions=every["count"],
            clicks=_is(every["type"], "product.clicked"),
        )
    ]
    shown = by.of(
        "product.impressed", "product.clicked", columns=["type", "product_id", "count", "minute"]
    )
    clicked = _is(shown["type"], "product.clicked")
    products = [
        _delta(shown["product_id"], shown["minute"], impressions=shown["count"], clicks=clicked)
    ]
    viewing = by.of(*VIEWER, columns=MEMBER_OF)
    if presence_rows:
        presence = packed.distinct(viewing, MEMBER_OF)
        sessions.append(_delta(presence["session_id"], presence["minute"], viewers=1))
    else:
        presence = packed.count_distinct(viewing, ["session_id", "minute"], "viewer")
        viewers = presence["viewer_count_distinct"]
        sessions.append(_delta(presence["session_id"], presence["minute"], viewers=viewers))
    spans = _spans(by.of(*ON_AIR, columns=["type", "session_id", "occurred_at"]))
    return sessions, products, presence, spans


def _viewer_members(by: _ByType, namespaces: pa.Array, ids: pa.Array) -> pa.Table:
    """The viewer, interacting and clicker members of the events, with their first minutes
    (:func:`_set_members`)."""
    return _set_members(
        [
            _members(by.of(*VIEWER, columns=MEMBER_OF), "viewer", "viewer"),
            _members(by.of(*INTERACTION, columns=MEMBER_OF), "interacting", "viewer"),
            _members(by.of("product.clicked", columns=MEMBER_OF), "clicker", "viewer"),
        ],
        namespaces,
        ids,
    )


def _order_members(paid: pa.Table, namespaces: pa.Array, ids: pa.Array) -> pa.Table:
    """The buyer and paying-viewer members of the paid orders counted, likewise."""
    parts = [_members(paid, "buyer", "buyer"), _members(paid, "paying_viewer", "paying")]
    return _set_members(parts, namespaces, ids)


async def _write_day(
    db: AsyncSession,
    events: pa.Table,
    known: dict[int, SessionInfo],
    start: datetime,
    end: datetime,
    seal: Seal | None,
) -> int:
    # The hashing and sorting below runs in two threads where it can: pyarrow and numpy
    # leave Python's lock while they hash and sort, so two cores share it.
    of_known = pc.is_in(events["session_id"], pa.array(list(known), pa.int64()))
    (first, types), (events, namespaces, ids) = await asyncio.gather(
        asyncio.to_thread(_first_and_types, events), asyncio.to_thread(_counting, events)
    )
    by = _ByType(events, types)
    keep = _both(None if pc.all(of_known).as_py() else of_known, first)
    if seal is None:
        ledger = events.select(["event_id", "occurred_at"])
        held = await _ledger(db, ledger if keep is None else ledger.filter(keep), (start, end))
    else:
        held = await held_elsewhere(db, start, end, seal)
    if len(held):
        keep = _both(keep, pc.invert(pc.is_in(events["event_id"], held)))
    by.keep = keep

    # The minutes need nothing from the database: they are counted while the orders are
    # looked up and stored (the only uses of ``db`` meanwhile). Should one part fail, the task
    # group cancels the others before the transaction ends.
    async with asyncio.TaskGroup() as group:
        minutes = group.create_task(asyncio.to_thread(_minutes, by, seal is None))
        viewers = group.create_task(asyncio.to_thread(_viewer_members, by, namespaces, ids))
        paid = by.of("order.paid")
        paid = paid.filter(pc.equal(paid["currency"], CURRENCY))
        columns = ["platform", "order_id", "session_id", "product_id", "amount_fen", "minute"]
        paid = await _new_once(db, PaidOrder, paid, "order_id", columns, (start, end))
        buyers = group.create_task(asyncio.to_thread(_order_members, paid, namespaces, ids))
        refunded = by.of("order.refunded")
        refunded = refunded.filter(pc.equal(refunded["currency"], CURRENCY))
        columns = ["platform", "refund_id", "session_id", "amount_fen", "minute"]
        refunds = await _new_once(db, Refund, refunded, "refund_id", columns, (start, end))
    sessions, products, presence, spans = minutes.result()
    members = pa.concat_tables([viewers.result(), buyers.result()])
    sessions.append(
        _delta(paid["session_id"], paid["minute"], gmv_fen=paid["amount_fen"], orders=1)
    )
    sold = paid.filter(pc.is_valid(paid["product_id"]))
    products.append(
        _delta(sold["product_id"], sold["minute"], gmv_fen=sold["amount_fen"], orders=1)
    )
    sessions.append(
        _delta(refunds["session_id"], refunds["minute"], refund_fen=refunds["amount_fen"])
    )
    by_session = _add_up(sessions)
    scopes = {"session": by_session, "product": _add_up(products)}
    for scope, attr in (("host", "host_id"), ("theme", "theme_id"), ("base", "base_id")):
        scopes[scope] = _owners(by_session, known, attr)

    async def store_minutes() -> None:
        for scope, table in scopes.items():
            rows = table.add_column(0, "scope", pa.repeat(pa.scalar(scope), table.num_rows))
            await bulk_insert(db, MinuteRollup, rows)
        await merge_spans(db, spans)

    if seal is None:
        viewer = presence["viewer"]
        named = presence.drop_columns("viewer").append_column("source", pc.take(namespaces, viewer))
        await bulk_insert(db, Presence, named.append_column("viewer_id", pc.take(ids, viewer)))
        await bulk_insert(db, SetMember, members.drop_columns("member"), skip_existing=True)
        await store_minutes()
    else:
        numbered = Numbered(members["member"], namespaces, ids)
        await write_members(
            db, members, numbered, list(known), start, end, seal.horizon, meanwhile=store_minutes
        )
    return int(by.rows(["type"]).num_rows)
