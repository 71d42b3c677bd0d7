"""Versioned schemas of the events analytics consumes, and their mapping to bus events.

Every event is one pydantic model per ``(type, version)``; :data:`AnalyticsEvent` is their
union, discriminated on both. :func:`parse_event` is the one way in from outside: it names the
offending field in every error (:class:`EventSchemaError`) and refuses times from the future.

A new meaning gets a new version (a new model) and the old one stays, so rollups can replay old
events. Unknown extra keys are ignored, as on the bus, so that a producer may add an optional
field without a version bump.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeAlias, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from livebase.bus import Event
from livebase.settings import SLUG_RE

#: How far ahead of the consumer's clock an event may claim to have happened (clock skew
#: between producers); anything later is refused rather than silently counted in a future minute.
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)

#: Longest span one heartbeat or leave may report; producers beat every 30 s, so more than this
#: means a broken player or a replayed backlog, which would inflate watch time.
MAX_WATCH_SECONDS: Final = 300

Id = Annotated[str, Field(min_length=1, max_length=128)]
Slug = Annotated[str, Field(pattern=SLUG_RE)]
#: Where a viewer was seen: ``player`` (the base's own player) or a platform (``douyin``,
#: ``kuaishou``, ``channels`` …). Viewer ids are only unique within one source.
Source = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
PositiveId = Annotated[StrictInt, Field(ge=1)]
# Strict ints: a float such as 19.9 or a bool must never be taken for a count of fen.
Fen = Annotated[StrictInt, Field(ge=0)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

ENVELOPE_FIELDS: Final = frozenset({"type", "version", "event_id", "occurred_at", "base"})


class EventSchemaError(ValueError):
    """An event does not match its schema; ``errors`` holds ``(field, message)`` pairs."""

    def __init__(self, where: str, errors: list[tuple[str, str]]) -> None:
        self.errors = tuple(errors)
        super().__init__(f"{where}: " + "; ".join(f"{f}: {m}" for f, m in errors))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(field for field, _ in self.errors)


class _EventBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Id
    occurred_at: datetime
    base: Slug
    room: Slug
    session_id: PositiveId

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        # A naive time cannot be placed in a minute bucket without guessing the base's zone.
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must be timezone-aware (a naive time has no defined minute)")
        return value.astimezone(UTC)


class _ViewerFields(_EventBase):
    viewer_id: Id
    source: Source = "player"

    @property
    def viewer_key(self) -> tuple[str, str]:
        """The identity UV counts: ids from two sources are two viewers."""
        return (self.source, self.viewer_id)


class StreamStartedV1(_EventBase):
    type: Literal["stream.started"] = "stream.started"
    version: Literal[1] = 1
    host_id: PositiveId | None = None
    theme: Slug | None = None


class StreamEndedV1(_EventBase):
    type: Literal["stream.ended"] = "stream.ended"
    version: Literal[1] = 1


class ViewerJoinedV1(_ViewerFields):
    type: Literal["viewer.joined"] = "viewer.joined"
    version: Literal[1] = 1


class ViewerHeartbeatV1(_ViewerFields):
    type: Literal["viewer.heartbeat"] = "viewer.heartbeat"
    version: Literal[1] = 1
    #: Seconds watched since this viewer's previous join or heartbeat.
    watch_seconds: Annotated[StrictInt, Field(ge=1, le=MAX_WATCH_SECONDS)]


class ViewerLeftV1(_ViewerFields):
    type: Literal["viewer.left"] = "viewer.left"
    version: Literal[1] = 1
    #: Seconds watched since the previous join or heartbeat (0 when it just beat).
    watch_seconds: Annotated[StrictInt, Field(ge=0, le=MAX_WATCH_SECONDS)]


class LikedV1(_ViewerFields):
    type: Literal["interaction.liked"] = "interaction.liked"
    version: Literal[1] = 1
    #: Platforms report taps in batches.
    count: Annotated[StrictInt, Field(ge=1)] = 1


class CommentedV1(_ViewerFields):
    type: Literal["interaction.commented"] = "interaction.commented"
    version: Literal[1] = 1


class SharedV1(_ViewerFields):
    type: Literal["interaction.shared"] = "interaction.shared"
    version: Literal[1] = 1


class FollowedV1(_ViewerFields):
    type: Literal["interaction.followed"] = "interaction.followed"
    version: Literal[1] = 1


class ProductImpressedV1(_EventBase):
    """A product card shown; platform data may report several at once without viewer ids."""

    type: Literal["product.impressed"] = "product.impressed"
    version: Literal[1] = 1
    product_id: PositiveId
    count: Annotated[StrictInt, Field(ge=1)] = 1
    viewer_id: Id | None = None
    source: Source = "player"


class ProductClickedV1(_ViewerFields):
    type: Literal["product.clicked"] = "product.clicked"
    version: Literal[1] = 1
    product_id: PositiveId


class _OrderFields(_EventBase):
    order_id: Id
    #: The store platform (``douyin_shop``, ``youzan``, ``shopify`` …); ids are scoped by it.
    platform: Source
    buyer_id: Id
    product_id: PositiveId | None = None
    quantity: Annotated[StrictInt, Field(ge=1)] = 1
    amount_fen: Fen
    currency: Currency = "CNY"
    #: The viewer who placed the order, when the checkout link carried it (own player) or the
    #: platform's buyer is its viewer; click-to-buy conversion needs it.
    viewer_id: Id | None = None
    viewer_source: Source | None = None

    @model_validator(mode="after")
    def _viewer_pair(self) -> _OrderFields:
        if (self.viewer_id is None) != (self.viewer_source is None):
            raise ValueError("viewer_id and viewer_source go together (both or neither)")
        return self

    @property
    def buyer_key(self) -> tuple[str, str]:
        return (self.platform, self.buyer_id)


class OrderCreatedV1(_OrderFields):
    type: Literal["order.created"] = "order.created"
    version: Literal[1] = 1


class OrderPaidV1(_OrderFields):
    type: Literal["order.paid"] = "order.paid"
    version: Literal[1] = 1


class OrderRefundedV1(_EventBase):
    """Money returned on an order; ``session_id`` is the original order's session."""

    type: Literal["order.refunded"] = "order.refunded"
    version: Literal[1] = 1
    order_id: Id
    refund_id: Id
    platform: Source
    amount_fen: Annotated[StrictInt, Field(ge=1)]
    currency: Currency = "CNY"


EVENT_MODELS: Final[tuple[type[_EventBase], ...]] = (
    StreamStartedV1,
    StreamEndedV1,
    ViewerJoinedV1,
    ViewerHeartbeatV1,
    ViewerLeftV1,
    LikedV1,
    CommentedV1,
    SharedV1,
    FollowedV1,
    ProductImpressedV1,
    ProductClickedV1,
    OrderCreatedV1,
    OrderPaidV1,
    OrderRefundedV1,
)


def _key(model: type[_EventBase]) -> tuple[str, int]:
    fields = model.model_fields
    return (fields["type"].default, fields["version"].default)


#: ``(type, version) -> model``, the registry :func:`parse_event` dispatches on.
SCHEMAS: Final[dict[tuple[str, int], type[_EventBase]]] = {_key(m): m for m in EVENT_MODELS}
EVENT_TYPES: Final = frozenset(t for t, _ in SCHEMAS)


def _tag(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return f"{value.get('type')}@{value.get('version', 1)}"
    return f"{getattr(value, 'type', None)}@{getattr(value, 'version', None)}"


AnalyticsEvent: TypeAlias = Annotated[
    Annotated[StreamStartedV1, Tag("stream.started@1")]
    | Annotated[StreamEndedV1, Tag("stream.ended@1")]
    | Annotated[ViewerJoinedV1, Tag("viewer.joined@1")]
    | Annotated[ViewerHeartbeatV1, Tag("viewer.heartbeat@1")]
    | Annotated[ViewerLeftV1, Tag("viewer.left@1")]
    | Annotated[LikedV1, Tag("interaction.liked@1")]
    | Annotated[CommentedV1, Tag("interaction.commented@1")]
    | Annotated[SharedV1, Tag("interaction.shared@1")]
    | Annotated[FollowedV1, Tag("interaction.followed@1")]
    | Annotated[ProductImpressedV1, Tag("product.impressed@1")]
    | Annotated[ProductClickedV1, Tag("product.clicked@1")]
    | Annotated[OrderCreatedV1, Tag("order.created@1")]
    | Annotated[OrderPaidV1, Tag("order.paid@1")]
    | Annotated[OrderRefundedV1, Tag("order.refunded@1")],
    Discriminator(_tag),
]
"""Any analytics event; for embedding in other models. Prefer :func:`parse_event` for input."""

ANALYTICS_EVENT_ADAPTER: Final[TypeAdapter[AnalyticsEvent]] = TypeAdapter(AnalyticsEvent)


def _field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in err["loc"]) or "(event)", err["msg"]) for err in exc.errors()]


def parse_event(
    raw: Mapping[str, Any], *, now: datetime | None = None, max_skew: timedelta = MAX_CLOCK_SKEW
) -> AnalyticsEvent:
    """Validate one decoded event (``version`` defaults to 1); raise :class:`EventSchemaError`.

    ``now`` is the consumer's clock (UTC now by default); events dated more than ``max_skew``
    after it are refused.
    """
    if not isinstance(raw, Mapping):
        raise EventSchemaError(
            "event", [("(event)", f"expected an object, not {type(raw).__name__}")]
        )
    kind, version = raw.get("type"), raw.get("version", 1)
    ident = raw.get("event_id") or "(no event_id)"
    where = f"{kind or 'untyped'} event {ident}"
    if kind is None:
        raise EventSchemaError(where, [("type", "Field required")])
    if not isinstance(kind, str) or kind not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise EventSchemaError(where, [("type", f"unknown event type {kind!r} (known: {known})")])
    model = SCHEMAS.get((kind, version)) if type(version) is int else None
    if model is None:
        known = ", ".join(str(v) for t, v in sorted(SCHEMAS) if t == kind)
        problem = f"unknown version {version!r} (known: {known})"
        raise EventSchemaError(where, [("version", problem)])
    where = f"{kind} v{version} event {ident}"
    try:
        event = cast(AnalyticsEvent, model.model_validate(raw))
    except ValidationError as exc:
        raise EventSchemaError(where, _field_errors(exc)) from None
    now = datetime.now(UTC) if now is None else now
    if event.occurred_at > now + max_skew:
        ahead = (event.occurred_at - now).total_seconds()
        allowed = max_skew.total_seconds()
        problem = f"{ahead:.0f} s in the future (allowed skew {allowed:.0f} s)"
        raise EventSchemaError(where, [("occurred_at", problem)])
    return event


def to_bus_event(event: AnalyticsEvent) -> Event:
    """The bus envelope carries id, type, time, base and version; everything else is ``data``."""
    data = event.model_dump(mode="json", exclude=set(ENVELOPE_FIELDS))
    return Event(
        type=event.type,
        id=event.event_id,
        occurred_at=event.occurred_at,
        base=event.base,
        version=event.version,
        data=data,
    )


def from_bus_event(
    event: Event, *, now: datetime | None = None, max_skew: timedelta = MAX_CLOCK_SKEW
) -> AnalyticsEvent:
    """Inverse of :func:`to_bus_event`, with every check of :func:`parse_event`."""
    clash = sorted(ENVELOPE_FIELDS & event.data.keys())
    if clash:
        raise EventSchemaError(
            f"{event.type} event {event.id}",
            [(f"data.{name}", "belongs to the envelope, not to data") for name in clash],
        )
    raw = {
        **event.data,
        "type": event.type,
        "version": event.version,
        "event_id": event.id,
        "occurred_at": event.occurred_at,
        "base": event.base,
    }
    return parse_event(raw, now=now, max_skew=max_skew)
