"""The event schemas of :mod:`analytics.schemas` restated as msgspec structs, for hot paths.

msgspec checks a whole batch of events against these in C, about a tenth of what building the
pydantic models costs, and encodes them back as fast. They restate the schemas exactly, with
two things left to :mod:`analytics.fastpath`, which runs after msgspec: string patterns
(slugs, sources, currencies; msgspec would run a regular expression per value, the fast path
remembers the values it has passed) and ``occurred_at``, kept as the string it came as so the
fast path can hold it to the one RFC 3339 shape that means the same to pydantic and to Python.
``tests/analytics/test_fastpath.py`` checks that every schema is restated field by field.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Final, Literal

import msgspec

from analytics.schemas import MAX_WATCH_SECONDS

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
PositiveId = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[int, msgspec.Meta(ge=1)]
Fen = Annotated[int, msgspec.Meta(ge=0)]

#: Names of the pattern-checked fields, by kind of pattern.
SLUG: Final = "slug"
SOURCE: Final = "source"
CURRENCY: Final = "currency"


class EventStruct(msgspec.Struct, tag_field="type", kw_only=True, gc=False):
    """Fields every event has; ``type`` is the msgspec tag.

    Untracked by the garbage collector (``gc=False``: fields are strings and numbers, so no
    cycle can pass through one): a batch makes a thousand, which would otherwise set off
    collections that walk them all.
    """

    #: ``(field, pattern kind)`` of the fields :mod:`analytics.fastpath` checks itself.
    PATTERNS: ClassVar[tuple[tuple[str, str], ...]] = (("base", SLUG), ("room", SLUG))
    #: Orders: viewer_id and viewer_source go together.
    PAIRED: ClassVar[bool] = False

    event_id: Id
    occurred_at: str
    base: str
    room: str
    session_id: PositiveId
    version: Literal[1] = 1


class _Viewer(EventStruct, kw_only=True):
    PATTERNS = (*EventStruct.PATTERNS, ("source", SOURCE))

    viewer_id: Id
    source: str = "player"


class StreamStarted(EventStruct, tag="stream.started", kw_only=True):
    PATTERNS = (*EventStruct.PATTERNS, ("theme", SLUG))

    host_id: PositiveId | None = None
    theme: str | None = None


class StreamEnded(EventStruct, tag="stream.ended", kw_only=True):
    pass


class ViewerJoined(_Viewer, tag="viewer.joined", kw_only=True):
    pass


class ViewerHeartbeat(_Viewer, tag="viewer.heartbeat", kw_only=True):
    watch_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_WATCH_SECONDS)]


class ViewerLeft(_Viewer, tag="viewer.left", kw_only=True):
    watch_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_WATCH_SECONDS)]


class Liked(_Viewer, tag="interaction.liked", kw_only=True):
    count: Count = 1


class Commented(_Viewer, tag="interaction.commented", kw_only=True):
    pass


class Shared(_Viewer, tag="interaction.shared", kw_only=True):
    pass


class Followed(_Viewer, tag="interaction.followed", kw_only=True):
    pass


class ProductImpressed(EventStruct, tag="product.impressed", kw_only=True):
    PATTERNS = (*EventStruct.PATTERNS, ("source", SOURCE))

    product_id: PositiveId
    count: Count = 1
    viewer_id: Id | None = None
    source: str = "player"


class ProductClicked(_Viewer, tag="product.clicked", kw_only=True):
    product_id: PositiveId


class _Order(EventStruct, kw_only=True):
    PATTERNS = (
        *EventStruct.PATTERNS,
        ("platform", SOURCE),
        ("currency", CURRENCY),
        ("viewer_source", SOURCE),
    )
    PAIRED = True

    order_id: Id
    platform: str
    buyer_id: Id
    product_id: PositiveId | None = None
    quantity: Count = 1
    amount_fen: Fen
    currency: str = "CNY"
    viewer_id: Id | None = None
    viewer_source: str | None = None


class OrderCreated(_Order, tag="order.created", kw_only=True):
    pass


class OrderPaid(_Order, tag="order.paid", kw_only=True):
    pass


class OrderRefunded(EventStruct, tag="order.refunded", kw_only=True):
    PATTERNS = (*EventStruct.PATTERNS, ("platform", SOURCE), ("currency", CURRENCY))

    order_id: Id
    refund_id: Id
    platform: str
    amount_fen: PositiveId
    currency: str = "CNY"


AnyEvent = (
    StreamStarted
    | StreamEnded
    | ViewerJoined
    | ViewerHeartbeat
    | ViewerLeft
    | Liked
    | Commented
    | Shared
    | Followed
    | ProductImpressed
    | ProductClicked
    | OrderCreated
    | OrderPaid
    | OrderRefunded
)

#: ``(type, version) -> struct``, as :data:`analytics.schemas.SCHEMAS`.
STRUCTS: Final[dict[tuple[str, int], type[EventStruct]]] = {
    (str(t.__struct_config__.tag), 1): t for t in AnyEvent.__args__
}
