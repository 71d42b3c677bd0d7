"""Batch validation for the ingest hot path, agreeing with :func:`~analytics.schemas.parse_event`.

Building the pydantic models for every event costs about ten times what the rest of ingest
does, so :func:`check_batch` first tries plain checks driven by the table below, which is a
restatement of the schemas. Any event the fast checks do not accept outright goes through
``parse_event``, which has the last word and the exact error messages. The fast path may
therefore be stricter than the schemas (a timestamp as a number, say, takes the slow road) but
never looser; ``tests/analytics/test_fastpath.py`` holds the two together.

The output is what :func:`~analytics.schemas.to_bus_event` would make: the envelope plus
``data`` holding every non-envelope field with its default, and unknown keys dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from analytics.schemas import (
    ENVELOPE_FIELDS,
    MAX_CLOCK_SKEW,
    MAX_WATCH_SECONDS,
    EventSchemaError,
    parse_event,
)
from livebase.settings import SLUG_RE

Check = Callable[[Any], bool]

_slug = re.compile(SLUG_RE).fullmatch
_source = re.compile(r"[a-z][a-z0-9_]{0,31}").fullmatch
_currency = re.compile(r"[A-Z]{3}").fullmatch
# Only the plain RFC 3339 shape: every string of it means the same to fromisoformat and to
# pydantic. Other spellings pydantic may accept (unix times, "T"-less forms) take the slow road.
_rfc3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
).fullmatch


def _id(value: Any) -> bool:
    return type(value) is str and 1 <= len(value) <= 128


def _slug_ok(value: Any) -> bool:
    return type(value) is str and _slug(value) is not None


def _source_ok(value: Any) -> bool:
    return type(value) is str and _source(value) is not None


def _currency_ok(value: Any) -> bool:
    return type(value) is str and _currency(value) is not None


def _int(low: int, high: int | None = None) -> Check:
    def check(value: Any) -> bool:
        return type(value) is int and value >= low and (high is None or value <= high)

    return check


_positive = _int(1)
REQUIRED: Final = object()

# (field, check, default): REQUIRED, or the default; a default of None also admits null.
Spec = tuple[tuple[str, Check, object], ...]
_SESSION: Spec = (("room", _slug_ok, REQUIRED), ("session_id", _positive, REQUIRED))
_VIEWER: Spec = (*_SESSION, ("viewer_id", _id, REQUIRED), ("source", _source_ok, "player"))
_ORDER: Spec = (
    *_SESSION,
    ("order_id", _id, REQUIRED),
    ("platform", _source_ok, REQUIRED),
    ("buyer_id", _id, REQUIRED),
    ("product_id", _positive, None),
    ("quantity", _positive, 1),
    ("amount_fen", _int(0), REQUIRED),
    ("currency", _currency_ok, "CNY"),
    ("viewer_id", _id, None),
    ("viewer_source", _source_ok, None),
)

#: ``(type, version) -> fields``: the schemas of :mod:`analytics.schemas`, restated.
SPECS: Final[dict[tuple[str, int], Spec]] = {
    ("stream.started", 1): (*_SESSION, ("host_id", _positive, None), ("theme", _slug_ok, None)),
    ("stream.ended", 1): _SESSION,
    ("viewer.joined", 1): _VIEWER,
    ("viewer.heartbeat", 1): (*_VIEWER, ("watch_seconds", _int(1, MAX_WATCH_SECONDS), REQUIRED)),
    ("viewer.left", 1): (*_VIEWER, ("watch_seconds", _int(0, MAX_WATCH_SECONDS), REQUIRED)),
    ("interaction.liked", 1): (*_VIEWER, ("count", _positive, 1)),
    ("interaction.commented", 1): _VIEWER,
    ("interaction.shared", 1): _VIEWER,
    ("interaction.followed", 1): _VIEWER,
    ("product.impressed", 1): (
        *_SESSION,
        ("product_id", _positive, REQUIRED),
        ("count", _positive, 1),
        ("viewer_id", _id, None),
        ("source", _source_ok, "player"),
    ),
    ("product.clicked", 1): (*_VIEWER, ("product_id", _positive, REQUIRED)),
    ("order.created", 1): _ORDER,
    ("order.paid", 1): _ORDER,
    ("order.refunded", 1): (
        *_SESSION,
        ("order_id", _id, REQUIRED),
        ("refund_id", _id, REQUIRED),
        ("platform", _source_ok, REQUIRED),
        ("amount_fen", _positive, REQUIRED),
        ("currency", _currency_ok, "CNY"),
    ),
}
_PAIRED: Final = frozenset({"order.created", "order.paid"})


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """A valid event, as the bus envelope and ``data`` of :func:`to_bus_event`."""

    index: int
    event_id: str
    type: str
    version: int
    occurred_at: datetime
    base: str
    data: dict[str, Any]

    @property
    def room(self) -> str:
        return str(self.data["room"])

    @property
    def session_id(self) -> int:
        return int(self.data["session_id"])

    def payload(self) -> bytes:
        """The bus entry, byte for byte what ``encode_event(to_bus_event(...))`` writes."""
        return orjson.dumps(
            {
                "id": self.event_id,
                "type": self.type,
                "occurred_at": self.occurred_at,
                "base": self.base,
                "version": self.version,
                "data": self.data,
            }
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with the event at ``index`` of the batch."""

    index: int
    field: str
    message: str


@dataclass(slots=True)
class CheckedBatch:
    events: list[CheckedEvent]
    problems: list[Problem]
    #: Repeats of an event id earlier in the same batch, dropped.
    duplicates: int = 0


def _fast(raw: Any) -> tuple[str, str, int, datetime, str, dict[str, Any]] | None:
    """The checked event, or None when only ``parse_event`` can tell."""
    if type(raw) is not dict:
        return None
    kind = raw.get("type")
    version = raw.get("version", 1)
    if type(version) is not int or type(kind) is not str:
        return None
    spec = SPECS.get((kind, version))
    event_id, base, when = raw.get("event_id"), raw.get("base"), raw.get("occurred_at")
    if spec is None or not _id(event_id) or not _slug_ok(base):
        return None
    if type(when) is not str or _rfc3339(when) is None:
        return None
    try:
        moment = datetime.fromisoformat(when).astimezone(UTC)
    except ValueError:
        return None
    data: dict[str, Any] = {}
    for name, check, default in spec:
        value = raw.get(name, default)
        if value is REQUIRED:
            return None
        if not (value is None and default is None) and not check(value):
            return None
        data[name] = value
    if kind in _PAIRED and (data["viewer_id"] is None) != (data["viewer_source"] is None):
        return None
    return kind, str(event_id), version, moment, str(base), data


def _slow(raw: Any, now: datetime, skew: timedelta) -> tuple[str, str, int, datetime, str, Any]:
    event = parse_event(raw, now=now, max_skew=skew)
    data = event.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))
    return event.type, event.event_id, event.version, event.occurred_at, event.base, data


def check_batch(
    items: Sequence[Any],
    *,
    now: datetime,
    lateness: timedelta,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> CheckedBatch:
    """Check every item; collect every problem, keyed by the item's index.

    Events older than ``lateness`` (against ``now``) are refused: no rollup may change
    after the lateness window, so they could not be counted anyway.
    """
    batch = CheckedBatch([], [])
    latest, earliest = now + max_skew, now - lateness
    seen: set[str] = set()
    for index, raw in enumerate(items):
        fast = _fast(raw)
        if fast is not None and fast[3] <= latest:
            kind, event_id, version, moment, base, data = fast
        else:
            try:
                kind, event_id, version, moment, base, data = _slow(raw, now, max_skew)
            except EventSchemaError as exc:
                batch.problems.extend(Problem(index, f, m) for f, m in exc.errors)
                continue
        if moment < earliest:
            hours = lateness.total_seconds() / 3600
            message = f"older than the lateness window of {hours:g} h; it can no longer be counted"
            batch.problems.append(Problem(index, "occurred_at", message))
            continue
        if event_id in seen:
            batch.duplicates += 1
            continue
        seen.add(event_id)
        batch.events.append(CheckedEvent(index, event_id, kind, version, moment, base, data))
    return batch
