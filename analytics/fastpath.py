"""Batch validation for the hot paths, agreeing with :func:`~analytics.schemas.parse_event`.

Building the pydantic models for every event costs several times what the rest of ingest
does, so :func:`check_batch` (ingest) and :func:`check_documents` (consumers) first check the
whole batch against the msgspec restatement of the schemas (:mod:`analytics.structs`), then
do here what msgspec does not: string patterns, the shape of ``occurred_at``, the pair rule of
orders and the time bounds. Any event these checks do not accept outright goes through
``parse_event``, which has the last word and the exact error messages. The fast path may
therefore be stricter than the schemas (a timestamp as a number, say, takes the slow road) but
never looser; ``tests/analytics/test_fastpath.py`` holds the two together.

An accepted event leaves as the flat event the bus carries in a packed entry
(:data:`~livebase.bus.events.FLAT_ENVELOPE`): every field of its schema with its default,
unknown keys dropped.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Annotated, Any, Final, Union

import msgspec
import orjson

from analytics.constants import MAX_BATCH_EVENTS
from analytics.schemas import MAX_CLOCK_SKEW, AnalyticsEvent, EventSchemaError, parse_event
from analytics.structs import CURRENCY, SLUG, SOURCE, STRUCTS, AnyEvent, EventStruct
from livebase.bus.events import parse_times
from livebase.settings import SLUG_RE

Check = Callable[[Any], bool]
#: An accepted event as the bus carries it: a struct, or the schema's JSON dump of one that
#: took the slow road.
Item = EventStruct | dict[str, Any]

_slug = re.compile(SLUG_RE).fullmatch
_source = re.compile(r"[a-z][a-z0-9_]{0,31}").fullmatch
_currency = re.compile(r"[A-Z]{3}").fullmatch
# Only the plain RFC 3339 shape: every string of it means the same to fromisoformat and to
# pydantic. Other spellings pydantic may accept (unix times, "T"-less forms) take the slow road.
_encoder = msgspec.json.Encoder()


def _cached(match: Callable[[str], object]) -> Check:
    """A check of strings by ``match``, remembering the strings it passed: slugs, sources and
    currencies repeat across events, and a set lookup is several times cheaper than a match."""
    passed: set[str] = set()

    def check(value: Any) -> bool:
        if type(value) is not str:
            return False
        if value in passed:
            return True
        if match(value) is None:
            return False
        if len(passed) >= _MAX_REMEMBERED:
            passed.clear()
        passed.add(value)
        return True

    return check


_MAX_REMEMBERED = 10_000
_CHECKS: Final[dict[str, Check]] = {
    SLUG: _cached(_slug),
    SOURCE: _cached(_source),
    CURRENCY: _cached(_currency),
}


def _vouch(event: EventStruct, moment: datetime | None) -> bool:
    """Whether a struct msgspec accepted passes the checks msgspec leaves to us, ``moment``
    being its ``occurred_at`` by :func:`~livebase.bus.events.parse_times`; False when only
    ``parse_event`` can tell."""
    if moment is None:
        return False
    for name, kind in event.PATTERNS:
        value = getattr(event, name)
        # None passed msgspec only where the schema allows it.
        if value is not None and not _CHECKS[kind](value):
            return False
    return not (event.PAIRED and (event.viewer_id is None) != (event.viewer_source is None))  # type: ignore[attr-defined]


def _times(events: Sequence[EventStruct | None]) -> list[datetime | None]:
    return parse_times([None if e is None else e.occurred_at for e in events])


def _structs(items: Sequence[Any]) -> list[EventStruct | None]:
    """Each item as its struct, or None where msgspec refuses it."""
    try:
        found: list[EventStruct | None] = msgspec.convert(items, type=list[AnyEvent], strict=True)
        return found
    except msgspec.ValidationError:
        pass
    out: list[EventStruct | None] = []
    for item in items:
        try:
            out.append(msgspec.convert(item, type=AnyEvent, strict=True))
        except msgspec.ValidationError:
            out.append(None)
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with the event at ``index`` of the batch."""

    index: int
    field: str
    message: str


Place = tuple[int, str, str]  # session id, base, room


@dataclass(slots=True)
class CheckedBatch:
    #: The accepted events in batch order, and the index in the batch of each.
    items: list[Item] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    #: ``(session id, base, room)`` → the batch indices of the accepted events that claim it.
    places: dict[Place, list[int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: Repeats of an event id earlier in the same batch, dropped.
    duplicates: int = 0

    def payloads(self) -> list[bytes]:
        """Each accepted event encoded as a flat event."""
        return [_encoder.encode(item) for item in self.items]

    def packed(self) -> bytes:
        """The accepted events as one JSON array of flat events: a packed bus entry."""
        return _encoder.encode(self.items)


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
    batch = CheckedBatch()
    accepted, indices, places, seen = batch.items, batch.indices, batch.places, set()
    latest, earliest = now + max_skew, now - lateness
    events = _structs(items)
    for index, (raw, event, moment) in enumerate(zip(items, events, _times(events), strict=True)):
        item: Item
        if event is not None and moment is not None and moment <= latest and _vouch(event, moment):
            item, event_id, place = (
                event,
                event.event_id,
                (event.session_id, event.base, event.room),
            )
        else:
            try:
                checked = parse_event(raw, now=now, max_skew=max_skew)
            except EventSchemaError as exc:
                batch.problems.extend(Problem(index, f, m) for f, m in exc.errors)
                continue
            moment, event_id = checked.occurred_at, checked.event_id
            item, place = (
                checked.model_dump(mode="json"),
                (checked.session_id, checked.base, checked.room),
            )
        if moment < earliest:
            hours = lateness.total_seconds() / 3600
            message = f"older than the lateness window of {hours:g} h; it can no longer be counted"
            batch.problems.append(Problem(index, "occurred_at", message))
            continue
        if event_id in seen:
            batch.duplicates += 1
            continue
        seen.add(event_id)
        accepted.append(item)
        indices.append(index)
        found = places.get(place)
        if found is None:
            places[place] = [index]
        else:
            found.append(index)
    return batch


@dataclass(frozen=True, slots=True)
class DecodedBody:
    """A body of ``POST /api/v1/events`` that :func:`decode_body` read straight into structs,
    and its bytes for the general road."""

    events: list[EventStruct]
    raw: bytes


def decode_body(raw: bytes) -> DecodedBody | None:
    """The body's events read by msgspec in one pass, without orjson's dicts, when msgspec
    reads them as orjson (and the body model) would: on the terms of :func:`check_packed`,
    and an object of the one field ``events`` holding at most ``MAX_BATCH_EVENTS``; None
    otherwise, and the body takes the general road."""
    if not raw.isascii() or b"\\u" in raw:
        return None
    try:
        body = _decode_body(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return DecodedBody(body.events, raw)


def check_decoded(
    body: DecodedBody,
    *,
    now: datetime,
    lateness: timedelta,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> CheckedBatch:
    """:func:`check_batch` of a body :func:`decode_body` read: the batch is taken whole in a
    few sweeps when every event passes outright and no id repeats; otherwise it is the
    verdict of :func:`check_batch` on the events as orjson reads them, with its messages."""
    taken = _take_all(body.events, now=now, lateness=lateness, max_skew=max_skew)
    if taken is not None:
        return taken
    events = orjson.loads(body.raw)["events"]
    return check_batch(events, now=now, lateness=lateness, max_skew=max_skew)


_SESSION, _BASE, _ROOM, _ID = (attrgetter(n) for n in ("session_id", "base", "room", "event_id"))


def _take_all(
    events: list[EventStruct], *, now: datetime, lateness: timedelta, max_skew: timedelta
) -> CheckedBatch | None:
    """What :func:`check_batch` makes of ``events`` when it takes every one outright (the
    fast checks vouch, none too old, no repeated id), in sweeps over the whole batch rather
    than a step per event; None otherwise."""
    batch = CheckedBatch(items=list(events), indices=list(range(len(events))))
    if not events:
        return batch
    found = _times(events)
    if not all(found):
        return None
    moments: list[datetime] = found  # type: ignore[assignment]  # none is None
    if max(moments) > now + max_skew or min(moments) < now - lateness:
        return None
    if not _vouch_all(events) or len(set(map(_ID, events))) != len(events):
        return None
    columns = (list(map(_SESSION, events)), list(map(_BASE, events)), list(map(_ROOM, events)))
    if all(len(set(column)) == 1 for column in columns):
        batch.places[(columns[0][0], columns[1][0], columns[2][0])] = list(batch.indices)
        return batch
    for index, place in enumerate(zip(*columns, strict=True)):
        batch.places.setdefault(place, []).append(index)
    return batch


#: An event the consumers take: its type, when it happened, and its fields by attribute.
Checked = tuple[str, datetime, EventStruct | AnalyticsEvent]


def check_documents(
    documents: Sequence[dict[str, Any]],
    received: Sequence[datetime],
    moments: Sequence[datetime | None],
    *,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> list[Checked | EventSchemaError]:
    """Flat bus events as :func:`~analytics.schemas.from_bus_event` judges them, each against
    when the bus received it; the slow road's verdict where the fast checks cannot vouch.

    ``moments`` are their times as the bus's checks parsed them (``Delivery.occurred_at``).
    """
    out: list[Checked | EventSchemaError] = []
    events = _structs(documents)
    for raw, at, event, moment in zip(documents, received, events, moments, strict=True):
        if (
            event is not None
            and moment is not None
            and moment <= at + max_skew
            and _vouch(event, moment)
        ):
            out.append((raw["type"], moment, event))
            continue
        try:
            checked = parse_event(raw, now=at, max_skew=max_skew)
        except EventSchemaError as exc:
            out.append(exc)
            continue
        out.append((checked.type, checked.occurred_at, checked))
    return out


def check_packed(
    packed: bytes, received: datetime, *, max_skew: timedelta = MAX_CLOCK_SKEW
) -> list[Checked] | None:
    """The events of a packed entry as the bus and :func:`check_documents` together take
    them, when the fast checks vouch for every one; None when any needs the slow road or is
    not valid, which only the slow road may say.

    For the hot consumer of whole entries: no flat document and no
    :class:`~livebase.bus.Delivery` per event, patterns checked once per distinct value. What
    the fast checks vouch for also passes the bus's envelope checks (known type, id of 1-128
    characters, slug base, version 1, a time of the plain shape), so those need not run again.
    msgspec reads the bytes straight into structs where it reads them as orjson does: ASCII
    (orjson refuses invalid UTF-8 anywhere), no ``\\u`` escape (lone surrogates), no unknown
    field (msgspec would skip it unread: orjson refuses ``1e400`` there), and no integer beyond
    64 bits (orjson makes it a float); other entries are read by orjson, as the bus does.
    """
    events: Sequence[EventStruct] | None = None
    if packed.isascii() and b"\\u" not in packed:
        try:
            events = _decode_known(packed)
        except (msgspec.ValidationError, msgspec.DecodeError):
            events = None
    if events is None:
        try:
            events = msgspec.convert(orjson.loads(packed), type=list[AnyEvent], strict=True)
        except (orjson.JSONDecodeError, msgspec.ValidationError):
            return None
    if not events:
        return None
    found = _times(events)
    if not all(found):
        return None
    moments: list[datetime] = found  # type: ignore[assignment]  # none is None
    if max(moments) > received + max_skew or not _vouch_all(events):
        return None
    tags = map(_TAGS.__getitem__, map(type, events))
    return list(zip(tags, moments, events, strict=True))


#: Each struct's twin that refuses unknown fields (the same name, tag and checks).
_KNOWN_ONLY: Final[tuple[type[EventStruct], ...]] = tuple(
    types.new_class(kind.__name__, (kind,), {"forbid_unknown_fields": True})
    for kind in STRUCTS.values()
)
_decode_known = msgspec.json.Decoder(list[Union[_KNOWN_ONLY]]).decode  # type: ignore[valid-type]  # noqa: UP007


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[
        list[Union[_KNOWN_ONLY]],  # type: ignore[valid-type]  # noqa: UP007
        msgspec.Meta(max_length=MAX_BATCH_EVENTS),
    ]


_decode_body = msgspec.json.Decoder(_Body).decode
_TAGS: Final[dict[type[EventStruct], str]] = {
    kind: str(kind.__struct_config__.tag) for kind in (*STRUCTS.values(), *_KNOWN_ONLY)
}
_WIDEST = 2**64 - 1


def _wide_ints(kind: type[EventStruct]) -> tuple[str, ...]:
    """The integer fields of ``kind`` without an upper bound."""
    info = msgspec.inspect.type_info(kind)
    assert isinstance(info, msgspec.inspect.StructType)
    out = []
    for found in info.fields:
        types = (
            found.type.types if isinstance(found.type, msgspec.inspect.UnionType) else (found.type,)
        )
        if any(
            isinstance(t, msgspec.inspect.IntType) and t.le is None and t.lt is None for t in types
        ):
            out.append(found.name)
    return tuple(out)


_WIDE_INTS: Final = {kind: _wide_ints(kind) for kind in _TAGS}


def _vouch_all(events: Sequence[EventStruct]) -> bool:
    """:func:`_vouch` of every event (whose times are vouched for), one pattern check per
    distinct value."""
    kinds: set[type[EventStruct]] = set(map(type, events))
    for kind in kinds:
        same = events if len(kinds) == 1 else [e for e in events if type(e) is kind]
        for name, pattern in kind.PATTERNS:
            check = _CHECKS[pattern]
            for value in set(map(attrgetter(name), same)):
                if value is not None and not check(value):
                    return False
        for name in _WIDE_INTS[kind]:
            numbers = set(map(attrgetter(name), same))
            numbers.discard(None)
            if numbers and max(numbers) > _WIDEST:
                return False
        if kind.PAIRED and any(
            (e.viewer_id is None) != (e.viewer_source is None)  # type: ignore[attr-defined]
            for e in same
        ):
            return False
    return True
