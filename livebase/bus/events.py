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
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event handed to one consumer of a group; acknowledge it with ``message_id``.

    ``delivery_count`` is 1 on the first delivery and grows each time the message is claimed
    by another consumer, so a handler can spot a message that keeps failing.
    """

    stream: str
    message_id: str
    event: Event
    delivery_count: int


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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise BusDecodeError(f"{where}: not a valid event ({problems})") from None
