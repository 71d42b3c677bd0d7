"""Fold a batch of events into rollup changes: pure, so the consumer and a recompute share it.

:func:`fold` does what needs no database: per-minute sums, the candidate members of each id set,
presence, orders, refunds and session bounds. Whether an order, a refund or a presence is new
is the database's answer (:mod:`analytics.rollup_store` inserts them once, unique), so their
sums are added there. The rules are :class:`~analytics.aggregate.Accumulator`'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from analytics.aggregate import minute_of
from analytics.schemas import (
    AnalyticsEvent,
    CommentedV1,
    FollowedV1,
    LikedV1,
    OrderPaidV1,
    OrderRefundedV1,
    ProductClickedV1,
    ProductImpressedV1,
    SharedV1,
    StreamEndedV1,
    StreamStartedV1,
    ViewerHeartbeatV1,
    ViewerJoinedV1,
    ViewerLeftV1,
)

CURRENCY = "CNY"
_VIEWER = (ViewerJoinedV1, ViewerHeartbeatV1, ViewerLeftV1)
_INTERACTION = (LikedV1, CommentedV1, SharedV1, FollowedV1)
_ON_AIR = (StreamStartedV1, StreamEndedV1, *_VIEWER)

MinuteKey = tuple[int, datetime]  # (session or product id, minute)
MemberKey = tuple[int, str, str, str]  # (session, kind, namespace, member id)


@dataclass(frozen=True, slots=True)
class OrderRow:
    session_id: int
    product_id: int | None
    amount_fen: int
    minute: datetime
    buyer: tuple[str, str]
    paying_viewer: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class RefundRow:
    session_id: int
    amount_fen: int
    minute: datetime


@dataclass(slots=True)
class Span:
    started_at: datetime | None = None
    ended_at: datetime | None = None
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


@dataclass(slots=True)
class Fold:
    sessions: dict[MinuteKey, Counter[str]] = field(default_factory=dict)
    products: dict[MinuteKey, Counter[str]] = field(default_factory=dict)
    presence: set[tuple[int, datetime, str, str]] = field(default_factory=set)
    members: dict[MemberKey, datetime] = field(default_factory=dict)
    orders: dict[tuple[str, str], OrderRow] = field(default_factory=dict)
    refunds: dict[tuple[str, str], RefundRow] = field(default_factory=dict)
    spans: dict[int, Span] = field(default_factory=dict)
    #: Events not counted, by reason (another currency), for monitoring.
    ignored: Counter[str] = field(default_factory=Counter)

    def add(self, table: dict[MinuteKey, Counter[str]], key: MinuteKey, **sums: int) -> None:
        table.setdefault(key, Counter()).update(sums)

    def member(self, session: int, kind: str, who: tuple[str, str], minute: datetime) -> None:
        key = (session, kind, *who)
        self.members[key] = min(minute, self.members.get(key, minute))


def fold(events: Iterable[AnalyticsEvent]) -> Fold:
    """The changes of events already deduplicated by id (the first of each id is kept)."""
    out = Fold()
    for event in events:
        session, at = event.session_id, event.occurred_at
        minute = minute_of(at)
        if isinstance(event, _ON_AIR):
            span = out.spans.setdefault(session, Span())
            span.first_event_at = _min(span.first_event_at, at)
            span.last_event_at = _max(span.last_event_at, at)
            if isinstance(event, StreamStartedV1):
                span.started_at = _min(span.started_at, at)
            elif isinstance(event, StreamEndedV1):
                span.ended_at = _max(span.ended_at, at)
        if isinstance(event, _VIEWER):
            out.presence.add((session, minute, event.source, event.viewer_id))
            out.member(session, "viewer", event.viewer_key, minute)
            if isinstance(event, ViewerJoinedV1):
                out.add(out.sessions, (session, minute), views=1)
            else:
                out.add(out.sessions, (session, minute), viewer_seconds=event.watch_seconds)
        elif isinstance(event, _INTERACTION):
            out.member(session, "interacting", event.viewer_key, minute)
        elif isinstance(event, ProductImpressedV1):
            out.add(out.sessions, (session, minute), impressions=event.count)
            out.add(out.products, (event.product_id, minute), impressions=event.count)
        elif isinstance(event, ProductClickedV1):
            out.add(out.sessions, (session, minute), clicks=1)
            out.add(out.products, (event.product_id, minute), clicks=1)
            out.member(session, "clicker", event.viewer_key, minute)
        elif isinstance(event, OrderPaidV1):
            if event.currency != CURRENCY:
                out.ignored[f"currency {event.currency}"] += 1
                continue
            viewer = None
            if event.viewer_id is not None and event.viewer_source is not None:
                viewer = (event.viewer_source, event.viewer_id)
            row = OrderRow(
                session, event.product_id, event.amount_fen, minute, event.buyer_key, viewer
            )
            out.orders.setdefault((event.platform, event.order_id), row)
        elif isinstance(event, OrderRefundedV1):
            if event.currency != CURRENCY:
                out.ignored[f"currency {event.currency}"] += 1
                continue
            refund = RefundRow(session, event.amount_fen, minute)
            out.refunds.setdefault((event.platform, event.refund_id), refund)
    return out
