"""Fold events into :class:`~analytics.kpis.Totals`: the reference for every counter.

:class:`Accumulator` is the exact, in-memory definition of how each event moves each count:
live counters use it as is, and the rollup consumer's stored sums and sets must agree with it
(its tests replay the same events through both). It is deliberately plain: exact sets, no
sketches, since a base's day is at most a few hundred thousand viewers.

The bus delivers at least once and stores may report an order twice, so everything is
deduplicated: events by ``event_id``, paid orders by ``(platform, order_id)``, refunds by
``(platform, refund_id)``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from typing import TypeVar

from analytics.kpis import Totals, peak_concurrent_viewers
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

K = TypeVar("K", bound=Hashable)
ViewerKey = tuple[str, str]

_VIEWER_EVENTS = (ViewerJoinedV1, ViewerHeartbeatV1, ViewerLeftV1)
_INTERACTIONS = (LikedV1, CommentedV1, SharedV1, FollowedV1)
_LIVE_EVENTS = (StreamStartedV1, StreamEndedV1, *_VIEWER_EVENTS)


def minute_of(moment: datetime) -> datetime:
    """The UTC minute bucket an event falls in."""
    return moment.replace(second=0, microsecond=0)


class Accumulator:
    """The totals of one scope; feed it that scope's events in any order."""

    def __init__(self, currency: str = "CNY") -> None:
        self.currency = currency
        #: Events not counted, by reason (duplicates, another currency), for monitoring.
        self.ignored: Counter[str] = Counter()
        self._event_ids: set[str] = set()
        self._paid: dict[tuple[str, str], int] = {}
        self._refunds: dict[tuple[str, str], int] = {}
        self._buyers: set[tuple[str, str]] = set()
        self._paying_viewers: set[ViewerKey] = set()
        self._viewers: set[ViewerKey] = set()
        self._clickers: set[ViewerKey] = set()
        self._interacting: set[ViewerKey] = set()
        # (session, viewer) pairs per minute: a viewer in two rooms at once counts in both.
        self._present: defaultdict[datetime, set[tuple[int, ViewerKey]]] = defaultdict(set)
        self._started: dict[int, datetime] = {}
        self._ended: dict[int, datetime] = {}
        self._first_seen: dict[int, datetime] = {}
        self._last_seen: dict[int, datetime] = {}
        self.views = 0
        self.viewer_seconds = 0
        self.impressions = 0
        self.clicks = 0

    def add(self, event: AnalyticsEvent) -> None:
        if event.event_id in self._event_ids:
            self.ignored["duplicate event"] += 1
            return
        self._event_ids.add(event.event_id)
        session, at = event.session_id, event.occurred_at
        if isinstance(event, _LIVE_EVENTS):
            # Only what happens on air bounds live time: orders and refunds of a session can
            # arrive days after it ended.
            self._first_seen[session] = min(at, self._first_seen.get(session, at))
            self._last_seen[session] = max(at, self._last_seen.get(session, at))

        if isinstance(event, _VIEWER_EVENTS):
            self._viewers.add(event.viewer_key)
            self._present[minute_of(at)].add((session, event.viewer_key))
            if isinstance(event, ViewerJoinedV1):
                self.views += 1
            else:
                self.viewer_seconds += event.watch_seconds
        elif isinstance(event, _INTERACTIONS):
            self._interacting.add(event.viewer_key)
        elif isinstance(event, ProductImpressedV1):
            self.impressions += event.count
        elif isinstance(event, ProductClickedV1):
            self.clicks += 1
            self._clickers.add(event.viewer_key)
        elif isinstance(event, OrderPaidV1):
            self._add_paid(event)
        elif isinstance(event, OrderRefundedV1):
            self._add_refund(event)
        elif isinstance(event, StreamStartedV1):
            self._started[session] = at
        elif isinstance(event, StreamEndedV1):
            self._ended[session] = at
        # order.created is not counted: GMV is paid GMV.

    def _add_paid(self, event: OrderPaidV1) -> None:
        if event.currency != self.currency:
            self.ignored[f"currency {event.currency}"] += 1
            return
        key = (event.platform, event.order_id)
        if key in self._paid:
            self.ignored["duplicate order"] += 1
            return
        self._paid[key] = event.amount_fen
        self._buyers.add(event.buyer_key)
        if event.viewer_id is not None and event.viewer_source is not None:
            self._paying_viewers.add((event.viewer_source, event.viewer_id))

    def _add_refund(self, event: OrderRefundedV1) -> None:
        if event.currency != self.currency:
            self.ignored[f"currency {event.currency}"] += 1
            return
        key = (event.platform, event.refund_id)
        if key in self._refunds:
            self.ignored["duplicate refund"] += 1
            return
        self._refunds[key] = event.amount_fen

    def presence(self) -> list[tuple[datetime, int]]:
        """``(minute, viewers present)`` samples, oldest first."""
        return [(minute, len(pairs)) for minute, pairs in sorted(self._present.items())]

    def live_seconds(self, as_of: datetime | None = None) -> int:
        """Live time of every session seen, in whole seconds.

        A session runs from ``stream.started`` to ``stream.ended``. Where one is missing, as
        when a scope starts or ends mid-session, its first or last event stands in; a session
        still live ends at ``as_of`` when given.
        """
        total = 0
        for session, first in self._first_seen.items():
            start = self._started.get(session, first)
            end = self._ended.get(session)
            if end is None:
                end = as_of if as_of is not None else self._last_seen[session]
            total += max(0, int((end - start).total_seconds()))
        return total

    def totals(self, as_of: datetime | None = None) -> Totals:
        return Totals(
            gmv_fen=sum(self._paid.values()),
            refund_fen=sum(self._refunds.values()),
            orders=len(self._paid),
            buyers=len(self._buyers),
            views=self.views,
            uv=len(self._viewers),
            viewer_seconds=self.viewer_seconds,
            live_seconds=self.live_seconds(as_of),
            peak_concurrent=peak_concurrent_viewers(self.presence()),
            impressions=self.impressions,
            clicks=self.clicks,
            clickers=len(self._clickers),
            click_buyers=len(self._clickers & self._paying_viewers),
            interacting_uv=len(self._interacting),
        )


def totals_by(
    events: Iterable[AnalyticsEvent],
    key: Callable[[AnalyticsEvent], K | None],
    *,
    as_of: datetime | None = None,
    currency: str = "CNY",
) -> dict[K, Totals]:
    """Totals per scope, ``key`` naming each event's scope (None leaves it out)."""
    scopes: dict[K, Accumulator] = {}
    for event in events:
        scope = key(event)
        if scope is not None:
            scopes.setdefault(scope, Accumulator(currency)).add(event)
    return {scope: acc.totals(as_of) for scope, acc in scopes.items()}
