"""Apply a batch to the rollup tables in the caller's transaction, exactly once per event id.

The ledger of processed event ids is written in the same transaction as the sums: a batch
redelivered after a crash finds its ids there and counts nothing twice; a batch whose
transaction died left no ids and is counted in full. Orders, refunds and presence are unique
rows too, so an order reported twice under two event ids still counts once.

Inserts use ``INSERT … ON CONFLICT`` on both SQLite and PostgreSQL, with ``RETURNING`` to learn
which rows are new. Rows are written in key order so that two consumers on PostgreSQL lock
them in the same order and cannot deadlock.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.day_sets import add_session_members, forget_members_before, local_days, lock_days
from analytics.directory import SessionInfo
from analytics.inserts import insert_for, insert_new, table_of
from analytics.members import held_in_blocks
from analytics.models import (
    SUMS,
    MemberBlock,
    MinuteRollup,
    PaidOrder,
    Presence,
    ProcessedEvent,
    Refund,
    SessionSpan,
    SetMember,
)
from analytics.rollup import Fold, MinuteKey, Span, fold
from analytics.schemas import AnalyticsEvent

log = logging.getLogger("analytics.rollups")
#: How long past the lateness window a minute's ledger and presence rows are kept.
PRUNE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Applied:
    counted: int  #: events counted for the first time
    repeated: int  #: events already counted before (redelivered or resent)


def _bound(db: AsyncSession, a: Any, b: Any, *, lowest: bool) -> ColumnElement[Any]:
    # min()/max() of two values in SQLite, least()/greatest() in PostgreSQL; NULL means unknown.
    pg = db.get_bind().dialect.name == "postgresql"
    pick = (func.least if lowest else func.greatest) if pg else (func.min if lowest else func.max)
    return pick(func.coalesce(a, b), func.coalesce(b, a))


async def _add_minutes(db: AsyncSession, scope: str, sums: dict[MinuteKey, Counter[str]]) -> None:
    table = table_of(MinuteRollup)
    rows = [
        {"scope": scope, "scope_id": key[0], "minute": key[1], **{s: c.get(s, 0) for s in SUMS}}
        for key, c in sorted(sums.items())
        if any(c.values())
    ]
    if not rows:
        return
    stmt = insert_for(db, table)
    changes = {s: table.c[s] + stmt.excluded[s] for s in SUMS}
    upsert = stmt.on_conflict_do_update(
        index_elements=["scope", "scope_id", "minute"], set_=changes
    )
    await db.execute(upsert, rows)


def _rollup_to(
    sums: dict[MinuteKey, Counter[str]], sessions: dict[int, SessionInfo], attr: str
) -> dict[MinuteKey, Counter[str]]:
    """Session minutes added up per host, theme or base (sessions without one are left out)."""
    out: dict[MinuteKey, Counter[str]] = {}
    for (session, minute), counts in sums.items():
        owner = getattr(sessions[session], attr)
        if owner is not None:
            out.setdefault((owner, minute), Counter()).update(counts)
    return out


async def apply_events(
    db: AsyncSession, events: Iterable[AnalyticsEvent], sessions: dict[int, SessionInfo]
) -> Applied:
    """Count the events of known sessions that were never counted before."""
    unique: dict[str, AnalyticsEvent] = {}
    for event in events:
        if event.session_id in sessions:
            unique.setdefault(event.event_id, event)
    # First: the day sets the batch's members can join may be under a rebuild.
    moments = ((sessions[e.session_id].timezone, e.occurred_at) for e in unique.values())
    await lock_days(db, local_days(moments), shared=True)
    ledger = [{"event_id": i, "occurred_at": e.occurred_at} for i, e in sorted(unique.items())]
    new = {row[0] for row in await insert_new(db, table_of(ProcessedEvent), ledger, ["event_id"])}
    changes = fold(e for i, e in unique.items() if i in new)
    await _apply_fold(db, changes, sessions)
    return Applied(counted=len(new), repeated=len(unique) - len(new))


async def _apply_fold(db: AsyncSession, f: Fold, sessions: dict[int, SessionInfo]) -> None:
    presence = [
        {"session_id": s, "minute": m, "source": src, "viewer_id": v}
        for s, m, src, v in sorted(f.presence)
    ]
    for session, minute in await insert_new(
        db, table_of(Presence), presence, ["session_id", "minute"]
    ):
        f.add(f.sessions, (session, minute), viewers=1)

    orders = [
        {"platform": p, "order_id": o, "session_id": r.session_id, "product_id": r.product_id,
         "amount_fen": r.amount_fen, "minute": r.minute}
        for (p, o), r in sorted(f.orders.items())
    ]  # fmt: skip
    for platform, order_id in await insert_new(
        db, table_of(PaidOrder), orders, ["platform", "order_id"]
    ):
        row = f.orders[(platform, order_id)]
        f.add(f.sessions, (row.session_id, row.minute), gmv_fen=row.amount_fen, orders=1)
        if row.product_id is not None:
            f.add(f.products, (row.product_id, row.minute), gmv_fen=row.amount_fen, orders=1)
        f.member(row.session_id, "buyer", row.buyer, row.minute)
        if row.paying_viewer is not None:
            f.member(row.session_id, "paying_viewer", row.paying_viewer, row.minute)

    refunds = [
        {"platform": p, "refund_id": r, "session_id": row.session_id,
         "amount_fen": row.amount_fen, "minute": row.minute}
        for (p, r), row in sorted(f.refunds.items())
    ]  # fmt: skip
    for platform, refund_id in await insert_new(
        db, table_of(Refund), refunds, ["platform", "refund_id"]
    ):
        refund = f.refunds[(platform, refund_id)]
        f.add(f.sessions, (refund.session_id, refund.minute), refund_fen=refund.amount_fen)

    # A session whose earlier day was sealed and recomputed holds that day's members in blocks.
    held = await held_in_blocks(db, list(f.members))
    members = [
        {"session_id": s, "kind": k, "namespace": n, "member_id": m, "first_minute": first}
        for (s, k, n, m), first in sorted(f.members.items())
        if (s, k, n, m) not in held
    ]
    stored = await insert_new(
        db, table_of(SetMember), members,
        ["session_id", "kind", "namespace", "member_id", "first_minute"],
    )  # fmt: skip
    await add_session_members(db, stored, sessions)

    await _add_minutes(db, "session", f.sessions)
    for scope, attr in (("host", "host_id"), ("theme", "theme_id"), ("base", "base_id")):
        await _add_minutes(db, scope, _rollup_to(f.sessions, sessions, attr))
    await _add_minutes(db, "product", f.products)
    await merge_spans(db, f.spans)


async def merge_spans(db: AsyncSession, spans: dict[int, Span]) -> None:
    """Widen the stored bounds of sessions to take in ``spans``."""
    if not spans:
        return
    table = table_of(SessionSpan)
    rows = [
        {"session_id": s, "started_at": sp.started_at, "ended_at": sp.ended_at,
         "first_event_at": sp.first_event_at, "last_event_at": sp.last_event_at}
        for s, sp in sorted(spans.items())
    ]  # fmt: skip
    stmt = insert_for(db, table).values(rows)
    changes = {
        name: _bound(db, table.c[name], stmt.excluded[name], lowest=lowest)
        for name, lowest in (
            ("started_at", True),
            ("ended_at", False),
            ("first_event_at", True),
            ("last_event_at", False),
        )
    }
    await db.execute(stmt.on_conflict_do_update(index_elements=["session_id"], set_=changes))


def prune_horizon(now: datetime, lateness: timedelta) -> datetime:
    """The time before which :func:`forget_before` may drop a minute's rows: no event of an
    earlier minute is taken any more (ingest refuses it past ``lateness``), and the margin
    leaves time for a batch read before that to be counted."""
    return now - lateness - PRUNE_MARGIN


async def forget_before(db: AsyncSession, horizon: datetime) -> None:
    """Drop the ledger, presence and day-set member rows no event inside the lateness window
    can need (the day counters stay)."""
    await db.execute(delete(ProcessedEvent).where(ProcessedEvent.occurred_at < horizon))
    await db.execute(delete(Presence).where(Presence.minute < horizon))
    await forget_members_before(db, horizon)


async def clear_span(db: AsyncSession, start: datetime, end: datetime) -> None:
    """Remove what events of ``[start, end)`` (whole UTC days) contributed, before counting
    them again.

    The day sets are left: they span local days, and the recompute derives the days it touches
    again from the session sets once the span is counted (:mod:`analytics.day_sets`).
    """
    await db.execute(
        delete(MinuteRollup).where(MinuteRollup.minute >= start, MinuteRollup.minute < end)
    )
    await db.execute(delete(Presence).where(Presence.minute >= start, Presence.minute < end))
    await db.execute(
        delete(ProcessedEvent).where(
            ProcessedEvent.occurred_at >= start, ProcessedEvent.occurred_at < end
        )
    )
    await db.execute(delete(PaidOrder).where(PaidOrder.minute >= start, PaidOrder.minute < end))
    await db.execute(delete(Refund).where(Refund.minute >= start, Refund.minute < end))
    await db.execute(
        delete(SetMember).where(SetMember.first_minute >= start, SetMember.first_minute < end)
    )
    await db.execute(
        delete(MemberBlock).where(MemberBlock.day >= start.date(), MemberBlock.day < end.date())
    )
