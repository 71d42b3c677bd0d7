"""Domain events and their wire format.

An event is encoded once, at publish time, as one JSON object (orjson)::

    {"id": "...", "type": "order.created", "occurred_at": "2025-05-01T08:00:00.123456+00:00",
     "base": "haifeng", "version": 1, "data": {...}}

``data`` must be plain JSON (``None``, ``bool``, ``int`` within 64 bits, finite ``float``,
``str``, ``list`` and ``dict`` with ``str`` keys), so that what a consumer decodes equals what
was published. Values that JSON would silently change (tuples, NaN, datetimes, sets …) are
refused with :class:`BusEncodeError` rather than altered. Unknown top-level keys written by a
newer producer are ignored on decode; a change of meaning belongs in ``version``.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from livebase.bus.constants import FIELD_EVENT
from livebase.bus.errors import BusDecodeError, BusEncodeError
from livebase.settings import SLUG_RE

EVENT_TYPE_RE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


def _new_id() -> str:
    return uuid.uuid4().hex


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One domain event, e.g. ``Event(type="stream.started", base="haifeng", data={...})``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str = Field(pattern=EVENT_TYPE_RE, max_length=100)
    id: str = Field(default_factory=_new_id, min_length=1, max_length=128)
    occurred_at: datetime = Field(default_factory=_utc_now)
    base: str | None = Field(default=None, pattern=SLUG_RE)
    version: int = Field(default=1, ge=1)
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        # A naive time is ambiguous across bases in different zones; normalising to UTC also
        # makes a decoded event compare equal to the published one.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (UTC recommended)")
        return value.astimezone(UTC)


#: An event of a packed entry, flat: the envelope's keys (:data:`FLAT_ENVELOPE`, the event id
#: as ``event_id``) beside the keys of ``data``, values as JSON holds them.
Document = dict[str, Any]

#: The keys of a flat event that are the envelope; every other key belongs to ``data``.
FLAT_ENVELOPE: Final = frozenset({"type", "version", "event_id", "occurred_at", "base"})


class Delivery:
    """An event handed to one consumer of a group; acknowledge it with ``message_id``.

    ``delivery_count`` is 1 on the first delivery and grows each time the message is claimed
    by another consumer, so a handler can spot a message that keeps failing. The events of a
    packed entry share its message id, and for them ``document`` is the flat event as the
    entry holds it (already checked by :func:`check_documents`); their :class:`Event` is built
    only when ``event`` is first read, which hot consumers never do.
    """

    __slots__ = ("_event", "delivery_count", "document", "message_id", "occurred_at", "stream")

    def __init__(
        self,
        stream: str,
        message_id: str,
        event: Event | None,
        delivery_count: int,
        *,
        document: Document | None = None,
        occurred_at: datetime | None = None,
    ) -> None:
        if event is None and document is None:
            raise ValueError("a delivery needs its event or its flat document")
        self.stream = stream
        self.message_id = message_id
        self.delivery_count = delivery_count
        self.document = document
        #: The document's ``occurred_at`` in UTC when the bus's checks parsed it (else None).
        self.occurred_at = occurred_at
        self._event = event

    @property
    def event(self) -> Event:
        if self._event is None:
            assert self.document is not None
            self._event = _event_of(self.document)
        return self._event

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Delivery):
            return NotImplemented
        mine = (self.stream, self.message_id, self.delivery_count, self.event)
        return mine == (other.stream, other.message_id, other.delivery_count, other.event)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Delivery(stream={self.stream!r}, message_id={self.message_id!r}, "
            f"event={self.event!r}, delivery_count={self.delivery_count})"
        )


def _check_json(value: object, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise BusEncodeError(f"{path}: integer {value} does not fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BusEncodeError(f"{path}: {value} is not a finite number")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BusEncodeError(f"{path}: key {key!r} is not a string")
            _check_json(item, f"{path}[{key!r}]")
        return
    hint = " (use a list)" if isinstance(value, tuple) else ""
    raise BusEncodeError(f"{path}: {type(value).__name__} is not plain JSON{hint}")


def encode_event(event: Event) -> bytes:
    """Serialise ``event``; raise :class:`BusEncodeError` naming the bad value."""
    try:
        _check_json(event.data, "data")
    except BusEncodeError as exc:
        raise BusEncodeError(f"event {event.id} ({event.type}): {exc}") from None
    document = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "base": event.base,
        "version": event.version,
        "data": event.data,
    }
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError as exc:
        # What the walk above cannot see, e.g. a lone surrogate that is not valid UTF-8.
        raise BusEncodeError(f"event {event.id} ({event.type}): {exc}") from None


def decode_event(payload: bytes | None, message_id: str = "?") -> Event:
    """Parse an entry written by :func:`encode_event`; raise :class:`BusDecodeError` if not."""
    where = f"message {message_id}"
    if payload is None:
        raise BusDecodeError(f"{where}: no {FIELD_EVENT!r} field")
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BusDecodeError(f"{where}: payload is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BusDecodeError(f"{where}: payload is a JSON {type(raw).__name__}, not an object")
    try:
        return Event.model_validate(raw)
    except ValidationError as exc:
        raise BusDecodeError(f"{where}: not a valid event ({_problems(exc)})") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )


_type_ok = re.compile(EVENT_TYPE_RE).fullmatch
_slug_ok = re.compile(SLUG_RE).fullmatch
# Only the plain RFC 3339 shape, which means the same to fromisoformat and to pydantic; any
# other spelling pydantic may accept goes to Event.model_validate.
_RFC3339 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)
_one_time = re.compile(_RFC3339).fullmatch
# The same shape as byte patterns with every digit written 9: a batch is checked by mapping
# its digits to 9 and looking the results up, far cheaper than a regular expression per value.
_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_SHAPES: Final = frozenset(
    b"9999-99-99T99:99:99" + fraction + zone
    for fraction in (b"", *(b"." + b"9" * n for n in range(1, 7)))
    for zone in (b"Z", b"+99:99", b"-99:99")
)
_MAX_REMEMBERED = 10_000
_known_types: set[str] = set()
_known_bases: set[str] = set()


def _remember(known: set[str], value: str) -> None:
    if len(known) >= _MAX_REMEMBERED:
        known.clear()
    known.add(value)


def _utc(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def parse_times(values: Sequence[Any]) -> list[datetime | None]:
    """Each value as an aware UTC datetime when it is a string of the plain RFC 3339 shape
    (``2025-05-01T08:00:00.25+08:00``), which means the same to ``fromisoformat`` and to
    pydantic; None otherwise (pydantic may still take another spelling).
    """
    if values and all(type(v) is str for v in values):
        try:
            shapes = "\n".join(values).encode("ascii").translate(_NINES).split(b"\n")
        except UnicodeEncodeError:
            shapes = []
        if len(shapes) == len(values) and _SHAPES.issuperset(shapes):
            return [_utc(v) for v in values]
    return [_utc(v) if type(v) is str and _one_time(v) is not None else None for v in values]


def _vouched(raw: Document, moment: datetime | None) -> bool:
    """Whether ``raw``'s envelope passes as :class:`Event` would pass it (False: ask pydantic),
    ``moment`` being its ``occurred_at`` by :func:`parse_times`."""
    kind, ident, base, version = (
        raw.get("type"),
        raw.get("event_id"),
        raw.get("base"),
        raw.get("version", 1),
    )
    if moment is None or type(version) is not int or version < 1:
        return False
    if type(kind) is not str or kind not in _known_types:
        if type(kind) is not str or len(kind) > 100 or _type_ok(kind) is None:
            return False
        _remember(_known_types, kind)
    if type(ident) is not str or not 1 <= len(ident) <= 128:
        return False
    if base is not None and (type(base) is not str or base not in _known_bases):
        if type(base) is not str or _slug_ok(base) is None:
            return False
        _remember(_known_bases, base)
    return True


def _nested(raw: Document) -> dict[str, Any]:
    return {
        "id": raw.get("event_id"),
        "type": raw.get("type"),
        "occurred_at": raw.get("occurred_at"),
        "base": raw.get("base"),
        "version": raw.get("version", 1),
        "data": {k: v for k, v in raw.items() if k not in FLAT_ENVELOPE},
    }


def _event_of(raw: Document) -> Event:
    """The event of a flat document that :func:`check_documents` passed."""
    (moment,) = parse_times([raw.get("occurred_at")])
    if _vouched(raw, moment):
        fields = _nested(raw)
        fields["occurred_at"] = moment
        return Event.model_construct(**fields)
    return Event.model_validate(_nested(raw))


def check_documents(
    items: Sequence[Any], message_id: str
) -> list[tuple[Document, datetime | None] | BusDecodeError]:
    """The flat events of a packed entry, each checked as :func:`decode_event` checks an entry
    of its own (its id is required) with its time if the fast checks parsed it, or the error
    saying why it is not a valid event."""
    times = parse_times([item.get("occurred_at") if type(item) is dict else None for item in items])
    out: list[tuple[Document, datetime | None] | BusDecodeError] = []
    for index, (raw, moment) in enumerate(zip(items, times, strict=True)):
        where = f"message {message_id} event {index}"
        if not isinstance(raw, dict):
            out.append(BusDecodeError(f"{where}: a JSON {type(raw).__name__}, not an object"))
            continue
        if not _vouched(raw, moment):
            try:
                Event.model_validate(_nested(raw))
            except ValidationError as exc:
                out.append(BusDecodeError(f"{where}: not a valid event ({_problems(exc)})"))
                continue
            moment = None
        out.append((raw, moment))
    return out


def decode_packed(payload: bytes, message_id: str = "?") -> list[Any]:
    """The items of a packed entry (a JSON array of flat events); raise
    :class:`BusDecodeError` when the entry as a whole is not one. The items still need
    :func:`check_documents`."""
    try:
        items = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BusDecodeError(f"message {message_id}: packed payload is not JSON ({exc})") from None
    if not isinstance(items, list):
        kind = type(items).__name__
        raise BusDecodeError(f"message {message_id}: packed payload is a JSON {kind}, not an array")
    return items
