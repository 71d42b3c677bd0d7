"""Which live session, host and product an order is credited to. Pure: no I/O, no clock.

1. Tracking parameters in the product link (``lb_session``, ``lb_host``, ``lb_product``) win
   when ``lb_session`` names a session of the order's base (the caller checks that, since it
   needs the database): the session, ``lb_host`` if it is a host of the base (else the
   session's host) and ``lb_product`` if it is a product of the base (else the order's own).
2. Otherwise the pin of one of the order's products that was live when the order was placed;
   of several, the one pinned last.
3. Otherwise the pin of one of them that ended most recently, at most ``window`` before the
   order was placed.
4. Otherwise nobody: the order is stored without a session.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

TRACKING_SESSION, TRACKING_HOST, TRACKING_PRODUCT = "lb_session", "lb_host", "lb_product"
# Links carry our numeric ids, bare ("42") or with a short readable prefix ("ls-42").
_REF = re.compile(r"(?:[a-z]{1,8}-)?([1-9][0-9]{0,9})")
_MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class TrackingRefs:
    """The ids named by an order's tracking parameters, not yet checked against the base."""

    session_id: int | None = None
    host_id: int | None = None
    product_id: int | None = None


@dataclass(frozen=True, slots=True)
class CheckedTracking:
    """Tracking ids that the caller found in the order's base (None where not)."""

    session_id: int
    session_host_id: int | None
    host_id: int | None
    product_id: int | None


@dataclass(frozen=True, slots=True)
class PinSpan:
    """A pin as a time span; ``end`` is None while it is still pinned in a live session."""

    pin_id: int
    session_id: int
    host_id: int | None
    product_id: int
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Credit:
    session_id: int | None
    host_id: int | None
    product_id: int | None
    via: str  # "tracking", "pin" or "" (not credited)


def parse_ref(value: str | None) -> int | None:
    """Our id in a tracking value, or None for anything else (another system's reference)."""
    if value is None:
        return None
    match = _REF.fullmatch(value.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if number <= _MAX_ID else None


def tracking_refs(tracking: Mapping[str, str]) -> TrackingRefs:
    return TrackingRefs(
        session_id=parse_ref(tracking.get(TRACKING_SESSION)),
        host_id=parse_ref(tracking.get(TRACKING_HOST)),
        product_id=parse_ref(tracking.get(TRACKING_PRODUCT)),
    )


def pin_credit(
    placed_at: datetime,
    product_ids: Collection[int],
    spans: Iterable[PinSpan],
    window: timedelta,
) -> Credit | None:
    """The pin an order placed at ``placed_at`` for ``product_ids`` is credited to, if any."""
    candidates = [s for s in spans if s.product_id in product_ids and s.start <= placed_at]
    live = [s for s in candidates if s.end is None or s.end > placed_at]
    if live:
        best = max(live, key=lambda s: (s.start, s.pin_id))
        return Credit(best.session_id, best.host_id, best.product_id, "pin")
    recent = [s for s in candidates if s.end is not None and placed_at - window <= s.end]
    if recent:
        best = max(recent, key=lambda s: (s.end or s.start, s.pin_id))
        return Credit(best.session_id, best.host_id, best.product_id, "pin")
    return None


def credit(
    tracking: CheckedTracking | None,
    placed_at: datetime,
    product_ids: Collection[int],
    spans: Iterable[PinSpan],
    window: timedelta,
    main_product_id: int | None,
) -> Credit:
    """Apply the rules of the module docstring, in order."""
    if tracking is not None:
        host = tracking.host_id if tracking.host_id is not None else tracking.session_host_id
        product = tracking.product_id if tracking.product_id is not None else main_product_id
        return Credit(tracking.session_id, host, product, "tracking")
    by_pin = pin_credit(placed_at, product_ids, spans, window)
    if by_pin is not None:
        return by_pin
    return Credit(None, None, main_product_id, "")
