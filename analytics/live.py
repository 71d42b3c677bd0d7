"""Live counters per session (a room's broadcast) and per base and local day.

What a dashboard shows while a room is on air: viewers watching now, the peak, paid GMV and
orders so far, and the best-selling products. :func:`plan` turns a batch of events into
set-like updates (:class:`CounterUpdate`) and a :class:`LiveCounters` store applies them;
:class:`MemoryCounters` here keeps them in the process (the embedded default),
:class:`~analytics.live_redis.RedisCounters` in Redis. One contract test suite runs on both.

Every update is idempotent, so the at-least-once bus needs no event-id bookkeeping here:
presence is a last-seen time per viewer, the peak is the largest per-minute viewer *set*, and
an order adds to GMV only the first time its ``(platform, order_id)`` joins the scope's set.
The figures follow ``docs/metrics.md``: the peak is PCU (distinct viewers per UTC minute, the
sessions of a base added up), and GMV is paid GMV in CNY.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from analytics.constants import (
    LIVE_TTL,
    MINUTE_SET_TTL,
    PRESENCE_WINDOW_MS,
    TOP_PRODUCTS,
    base_scope,
    session_scope,
)
from analytics.directory import SessionInfo
from analytics.fastpath import Checked
from analytics.schemas import AnalyticsEvent

VIEWER_TYPES = frozenset({"viewer.joined", "viewer.heartbeat", "viewer.left"})


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_day(moment: datetime, timezone: str) -> str:
    """The base's calendar day of ``moment``, ``YYYY-MM-DD``."""
    return moment.astimezone(_zone(timezone)).date().isoformat()


@dataclass(slots=True)
class ScopeUpdate:
    #: UTC minute (ms) → its viewers and their news, at most one per viewer: who watches now,
    #: and who was there in each minute. A news is one number, ``2 × ms seen + left``, so
    #: that "newer, or a leave at the same ms" is one comparison, and the columns go to the
    #: stores as they are.
    presence: dict[int, tuple[list[str], list[int]]] = field(default_factory=dict)
    #: ``(platform:order_id, amount_fen, product_id)`` of paid CNY orders.
    orders: list[tuple[str, int, int | None]] = field(default_factory=list)


@dataclass(slots=True)
class CounterUpdate:
    scopes: dict[str, ScopeUpdate] = field(default_factory=dict)
    #: base → room → the newest session seen in it.
    rooms: dict[str, dict[str, int]] = field(default_factory=dict)

    def scope(self, name: str) -> ScopeUpdate:
        found = self.scopes.get(name)
        if found is None:
            found = self.scopes[name] = ScopeUpdate()
        return found


def plan(events: Iterable[AnalyticsEvent], sessions: dict[int, SessionInfo]) -> CounterUpdate:
    """The counter updates of a batch; events of sessions not in ``sessions`` are left out."""
    return plan_checked([(e.type, e.occurred_at, e) for e in events], sessions)


class _Days:
    """:func:`local_day` by quarter hour: every zone's offset and change of offset today falls
    on a quarter hour, and a quarter whose two ends disagree is not remembered."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, str], str] = {}

    def __call__(self, moment: datetime, at_ms: int, timezone: str) -> tuple[str, bool]:
        """The day, and whether it is the day of the whole quarter hour of ``at_ms``."""
        key = (at_ms // _QUARTER_MS, timezone)
        day = self._known.get(key)
        if day is not None:
            return day, True
        day = local_day(moment, timezone)
        start = datetime.fromtimestamp(key[0] * _QUARTER_MS / 1000, UTC)
        end = start + timedelta(milliseconds=_QUARTER_MS - 1)
        whole = local_day(start, timezone) == local_day(end, timezone) == day
        if whole:
            self._known[key] = day
        return day, whole


_QUARTER_MS = 15 * 60_000


def plan_checked(events: Iterable[Checked], sessions: dict[int, SessionInfo]) -> CounterUpdate:
    """:func:`plan` of events checked by :func:`~analytics.fastpath.check_documents`.

    A viewer's news within one minute of one scope is folded into the newest (a leave wins a
    tie), which is what applying them one by one leaves behind: the stores then do a batch's
    work once per viewer and minute, not once per heartbeat. A UTC minute lies in one local
    day (zone offsets are whole quarter hours), so a session's fold serves its day's scope too.
    """
    update = CounterUpdate()
    scopes = update.scopes
    # session id → its place, or None when unknown
    places: dict[int, _Place | None] = {}
    days = _Days()
    # This loop runs once per event: the last event's session and place are kept at hand
    # (a batch's events mostly share one), and a viewer's news is one number (ScopeUpdate).
    session_id: int | None = None
    place: _Place | None = None
    for kind, when, checked in events:
        # A struct or a schema model: either has the fields of its type by name.
        event: Any = checked
        if event.session_id != session_id:
            session_id = event.session_id
            place = places.get(session_id, _UNSEEN)
            if place is _UNSEEN:
                place = places[session_id] = _place(update, sessions.get(session_id))
        if place is None:
            continue
        at = int(when.timestamp() * 1000)  # epoch_ms(when)
        quarter = at // _QUARTER_MS
        if quarter != place.quarter:
            day, whole = days(when, at, place.info.timezone)
            place.quarter = quarter if whole else -1
            place.day = base_scope(place.info.base, day)
            if place.day not in scopes:
                scopes[place.day] = ScopeUpdate()
        if kind in VIEWER_TYPES:
            minute = at - at % 60_000
            if minute != place.minute:
                place.minute = minute
                place.viewers = place.seen.setdefault(minute, {})
                place.days[minute] = place.day
            news = 2 * at + (kind == "viewer.left")
            viewer = f"{event.source}:{event.viewer_id}"
            if news > place.viewers.get(viewer, -1):
                place.viewers[viewer] = news
        elif kind == "order.paid" and event.version == 1 and event.currency == "CNY":
            order = (f"{event.platform}:{event.order_id}", event.amount_fen, event.product_id)
            scopes[place.own].orders.append(order)
            scopes[place.day].orders.append(order)
    for found in places.values():
        if found is None:
            continue
        own, prefix = scopes[found.own].presence, f"{found.info.session_id}|"
        for minute, viewers in found.seen.items():
            names, codes = list(viewers), list(viewers.values())
            own[minute] = (names, codes)
            theirs = scopes[found.days[minute]].presence
            if minute not in theirs:
                theirs[minute] = ([], [])
            theirs[minute][0].extend([prefix + name for name in names])
            theirs[minute][1].extend(codes)
    return update


@dataclass(slots=True)
class _Place:
    """A session's scopes in one :func:`plan_checked`, and its viewers' folded news."""

    info: SessionInfo
    own: str
    quarter: int = -1
    day: str = ""
    #: minute → viewer → 2 × ms + left, and the day scope of each minute
    seen: dict[int, dict[str, int]] = field(default_factory=dict)
    days: dict[int, str] = field(default_factory=dict)
    #: The minute of the last viewer event, and its viewers.
    minute: int = -1
    viewers: dict[str, int] = field(default_factory=dict)


_UNSEEN: Any = object()


def _place(update: CounterUpdate, info: SessionInfo | None) -> _Place | None:
    if info is None:
        return None
    rooms = update.rooms.setdefault(info.base, {})
    rooms[info.room] = max(rooms.get(info.room, 0), info.session_id)
    own = session_scope(info.session_id)
    update.scope(own)
    return _Place(info, own)


@dataclass(frozen=True, slots=True)
class ProductFigures:
    product_id: int
    gmv_fen: int
    orders: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    concurrent_viewers: int = 0
    peak_concurrent_viewers: int = 0
    gmv_fen: int = 0
    orders: int = 0
    top_products: tuple[ProductFigures, ...] = ()
    #: Grows with every update of the scope; a subscriber compares it to skip reads.
    version: int = 0


def top(products: dict[int, tuple[int, int]]) -> tuple[ProductFigures, ...]:
    """Best sellers by GMV, then orders, then the lower id (a stable order)."""
    ranked = sorted(products.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return tuple(ProductFigures(pid, gmv, n) for pid, (gmv, n) in ranked[:TOP_PRODUCTS])


class LiveCounters(ABC):
    """Where live counters are kept; every method is safe to call concurrently."""

    @abstractmethod
    async def apply(self, update: CounterUpdate) -> None: ...

    @abstractmethod
    async def snapshot(self, scope: str, at_ms: int | None = None) -> Snapshot:
        """The scope's figures, with viewers watching as of ``at_ms`` (now by default)."""

    @abstractmethod
    async def version(self, scope: str) -> int: ...

    @abstractmethod
    async def rooms(self, base: str) -> dict[str, int]:
        """Room slug → the newest session seen in it, for the base's rooms with events."""

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class _Scope:
    present: dict[str, int] = field(default_factory=dict)  # viewer → ms; negative: left then
    minutes: dict[int, set[str]] = field(default_factory=dict)
    peak: int = 0
    gmv_fen: int = 0
    orders: set[str] = field(default_factory=set)
    products: Counter[int] = field(default_factory=Counter)
    product_orders: Counter[int] = field(default_factory=Counter)
    version: int = 0
    touched_ms: int = 0


def apply_presence(present: dict[str, int], member: str, at: int, left: bool) -> None:
    """Keep the newest news of a viewer: seen at ``at``, or gone at ``at`` (stored negative).

    Shared rule of both stores (the Redis script does the same): an older event never
    overrides a newer one, so a redelivered heartbeat cannot bring back a viewer who left.
    """
    current = present.get(member)
    if current is None or at > abs(current) or (left and at == abs(current)):
        present[member] = -at if left else at


class MemoryCounters(LiveCounters):
    """Live counters in this process, for the embedded default (in-process bus)."""

    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}
        self._rooms: dict[str, dict[str, int]] = {}

    async def apply(self, update: CounterUpdate) -> None:
        now = now_ms()
        self._expire(now)
        for name, change in update.scopes.items():
            scope = self._scopes.setdefault(name, _Scope())
            for minute, (members, news) in change.presence.items():
                seen = scope.minutes.setdefault(minute, set())
                for member, code in zip(members, news, strict=True):
                    apply_presence(scope.present, member, code >> 1, code & 1 == 1)
                    seen.add(member)
                scope.peak = max(scope.peak, len(seen))
            cutoff = now - PRESENCE_WINDOW_MS
            scope.present = {m: t for m, t in scope.present.items() if abs(t) >= cutoff}
            old = now - int(MINUTE_SET_TTL.total_seconds() * 1000) - 60_000
            scope.minutes = {m: s for m, s in scope.minutes.items() if m >= old}
            for key, amount, product in change.orders:
                if key in scope.orders:
                    continue
                scope.orders.add(key)
                scope.gmv_fen += amount
                if product is not None:
                    scope.products[product] += amount
                    scope.product_orders[product] += 1
            scope.version += 1
            scope.touched_ms = now
        for base, rooms in update.rooms.items():
            known = self._rooms.setdefault(base, {})
            for room, session in rooms.items():
                known[room] = max(known.get(room, 0), session)

    def _expire(self, now: int) -> None:
        horizon = now - int(LIVE_TTL.total_seconds() * 1000)
        for name in [n for n, s in self._scopes.items() if s.touched_ms < horizon]:
            del self._scopes[name]

    async def snapshot(self, scope: str, at_ms: int | None = None) -> Snapshot:
        found = self._scopes.get(scope)
        if found is None:
            return Snapshot()
        cutoff = (now_ms() if at_ms is None else at_ms) - PRESENCE_WINDOW_MS
        products = {p: (gmv, found.product_orders[p]) for p, gmv in found.products.items()}
        return Snapshot(
            concurrent_viewers=sum(1 for t in found.present.values() if t >= cutoff),
            peak_concurrent_viewers=found.peak,
            gmv_fen=found.gmv_fen,
            orders=len(found.orders),
            top_products=top(products),
            version=found.version,
        )

    async def version(self, scope: str) -> int:
        found = self._scopes.get(scope)
        return 0 if found is None else found.version

    async def rooms(self, base: str) -> dict[str, int]:
        return dict(self._rooms.get(base, {}))
