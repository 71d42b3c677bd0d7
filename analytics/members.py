"""The session sets' members, whether stored a row each or packed in the blocks of sealed days.

The live consumer stores a session-set member as a row (:class:`~analytics.models.SetMember`,
looked up by key as events arrive). A recompute of a sealed day (:mod:`analytics.day_sealed`)
stores the members first seen that day as a :class:`~analytics.models.MemberBlock` per
session and kind instead: no event can reach that day any more, nobody looks its members up
one by one, and packing millions of them costs a fraction of inserting as many indexed rows.

Every reader goes through :func:`read_members`, which gives rows and blocks as one table. A
member is stored once either way: a recompute clears the day's rows and blocks before it
writes either, and stores only the members no other day holds; the live consumer leaves out
the members a block of the session holds (:func:`held_in_blocks`), should an event of a session
whose earlier day is sealed still arrive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.models import KINDS, MemberBlock, SetMember

TIME: Final = pa.timestamp("us", tz="UTC")
#: A session-set member: the columns of :class:`~analytics.models.SetMember`.
MEMBERS: Final = pa.schema(
    [
        ("session_id", pa.int64()),
        ("kind", pa.string()),
        ("namespace", pa.string()),
        ("member_id", pa.string()),
        ("first_minute", TIME),
    ]
)
#: The key of a member.
MEMBER: Final = MEMBERS.names[:4]
#: What a block's payload holds; its session and kind are the block's key.
PACKED: Final = pa.schema([MEMBERS.field(n) for n in ("namespace", "member_id", "first_minute")])
#: Between namespace and member id in one key (a namespace is a slug: it has none).
SEPARATOR: Final = "\x1f"
#: Blocks: compressed Arrow IPC (member ids repeat a lot across a session's sets).
_WRITE: Final = pa.ipc.IpcWriteOptions(compression="zstd")


def pack(members: pa.Table) -> bytes:
    """A block's payload: ``members`` (:data:`PACKED` columns) as an Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, PACKED, options=_WRITE) as writer:
        writer.write_table(members.select(PACKED.names).cast(PACKED))
    return bytes(sink.getvalue().to_pybytes())


def unpack(payload: bytes) -> pa.Table:
    """A block's members (:data:`PACKED`); a payload that does not hold them is refused."""
    table = pa.ipc.open_stream(payload).read_all()
    if not table.schema.equals(PACKED):
        raise ValueError(f"a member block holds {table.schema}, not {PACKED}")
    return table


def _table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(MEMBERS)
    return pa.table(
        [pa.array(values, field.type) for field, values in zip(MEMBERS, columns, strict=True)],
        schema=MEMBERS,
    )


def _placed(block: pa.Table, session_id: int, kind: str) -> pa.Table:
    n = block.num_rows
    return pa.table(
        [
            pa.repeat(pa.scalar(session_id, pa.int64()), n),
            pa.repeat(pa.scalar(kind), n),
            *block.columns,
        ],
        schema=MEMBERS,
    )


def _runs(members: pa.Table) -> list[tuple[int, str, int, int]] | None:
    """(session id, kind, first row, rows) of each run of rows of one session and kind;
    None if a session's kind comes in more than one run."""
    session = members["session_id"].to_numpy()
    kind = pc.index_in(members["kind"], pa.array(KINDS)).to_numpy(zero_copy_only=False)
    change = (session[1:] != session[:-1]) | (kind[1:] != kind[:-1])
    starts = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)
    ends = np.append(starts[1:], len(session))
    keys = list(zip(session[starts].tolist(), kind[starts].tolist(), strict=True))
    if len(set(keys)) != len(keys):
        return None
    return [
        (s, KINDS[k], int(a), int(b - a))
        for (s, k), a, b in zip(keys, starts.tolist(), ends.tolist(), strict=True)
    ]


def block_rows(day: date, members: pa.Table) -> list[dict[str, Any]]:
    """The :class:`~analytics.models.MemberBlock` rows of ``members`` (:data:`MEMBERS`
    columns), all first seen on UTC ``day``: a block per session and kind."""
    if members.num_rows == 0:
        return []
    members = members.select(MEMBERS.names).cast(MEMBERS)
    runs = _runs(members)
    if runs is None:  # a session's kind in more than one run: sorted first, on numbers
        kind = pc.index_in(members["kind"], pa.array(KINDS))
        order = pa.table({"s": members["session_id"], "k": kind})
        members = members.take(pc.sort_indices(order, [("s", "ascending"), ("k", "ascending")]))
        runs = _runs(members)
        assert runs is not None
    rows = []
    for session_id, kind, first, n in runs:
        rows.append(
            {"day": day, "session_id": session_id, "kind": kind, "members": n,
             "payload": pack(members.slice(first, n))}
        )  # fmt: skip
    return rows


async def write_blocks(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store blocks (:func:`block_rows`)."""
    if rows:
        await db.execute(insert(MemberBlock), rows)


async def read_members(
    db: AsyncSession,
    *,
    sessions: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kinds: Sequence[str] | None = None,
) -> pa.Table:
    """The members (:data:`MEMBERS`) of ``sessions`` (all if None) first seen in
    ``[since, until)`` (unbounded where None), of ``kinds`` (all if None), rows and blocks."""
    where: list[Any] = []
    block_where: list[Any] = []
    if sessions is not None:
        ids = sorted(set(sessions))
        where.append(SetMember.session_id.in_(ids))
        block_where.append(MemberBlock.session_id.in_(ids))
    if since is not None:
        where.append(SetMember.first_minute >= since)
        block_where.append(MemberBlock.day >= since.astimezone(UTC).date())
    if until is not None:
        where.append(SetMember.first_minute < until)
        last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
        block_where.append(MemberBlock.day <= last)
    if kinds is not None:
        where.append(SetMember.kind.in_(list(kinds)))
        block_where.append(MemberBlock.kind.in_(list(kinds)))
    conn = await db.connection()
    # On the connection (Core), not the ORM session: no ORM row processing for plain columns.
    rows = await conn.execute(
        select(*(SetMember.__table__.c[n] for n in MEMBERS.names)).where(*where)
    )
    parts = [_table(rows.all())]
    blocks = await conn.execute(
        select(MemberBlock.session_id, MemberBlock.kind, MemberBlock.payload).where(*block_where)
    )
    for session_id, kind, payload in blocks:
        parts.append(_placed(unpack(payload), session_id, kind))
    found = pa.concat_tables(parts)
    if len(parts) > 1 and (since is not None or until is not None):
        first = found["first_minute"]
        keep = pc.and_(
            pc.greater_equal(first, pa.scalar(since or datetime.min.replace(tzinfo=UTC), TIME)),
            pc.less(first, pa.scalar(until or datetime.max.replace(tzinfo=UTC), TIME)),
        )
        found = found.filter(keep)
    return found


async def has_blocks(db: AsyncSession, *, since: datetime, until: datetime) -> bool:
    """Whether a block may hold members first seen in ``[since, until)``."""
    last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
    query = select(MemberBlock.day).where(
        MemberBlock.day >= since.astimezone(UTC).date(), MemberBlock.day <= last
    )
    return (await db.execute(query.limit(1))).first() is not None


async def held_in_blocks(
    db: AsyncSession, members: Sequence[tuple[int, str, str, str]]
) -> set[tuple[int, str, str, str]]:
    """Which of ``members`` (session id, kind, namespace, member id) a block holds."""
    sessions = sorted({m[0] for m in members})
    if not sessions:
        return set()
    conn = await db.connection()
    blocks = await conn.execute(
        select(MemberBlock.session_id, MemberBlock.kind, MemberBlock.payload).where(
            MemberBlock.session_id.in_(sessions)
        )
    )
    wanted = set(members)
    ids = pa.array(sorted({m[3] for m in members}), pa.string())
    held: set[tuple[int, str, str, str]] = set()
    for session_id, kind, payload in blocks:
        # A block holds a session's members of a day (170,000 viewers, say), a batch a few
        # hundred: the block's rows whose id the batch names are found by pyarrow, and only
        # those become Python tuples (every member as a tuple took 28 ms a batch for such a
        # block, this 4 ms; a batch of sessions without blocks, 0.5 ms).
        block = unpack(payload)
        block = block.filter(pc.is_in(block["member_id"], ids))
        pairs = zip(block["namespace"].to_pylist(), block["member_id"].to_pylist(), strict=True)
        held.update(k for k in ((session_id, kind, n, m) for n, m in pairs) if k in wanted)
    return held


def member_numbers(members: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array]:
    """A small integer per distinct (namespace, member id) of ``members``, for each row, and
    the namespace and member id of each integer: unions and distinct counts then hash
    integers, not strings."""
    key = pc.binary_join_element_wise(members["namespace"], members["member_id"], SEPARATOR)
    encoded = pc.dictionary_encode(key).combine_chunks()
    return encoded.indices, *names_of(encoded.dictionary)


def names_of(keys: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The namespaces and member ids of member keys (namespace, :data:`SEPARATOR`, id)."""
    parts = pc.split_pattern(keys, SEPARATOR, max_splits=1)
    return pc.list_element(parts, 0), pc.list_element(parts, 1)
