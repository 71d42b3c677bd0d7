"""``POST /api/v1/events``: analytics events in batches, checked and published to the bus.

The batch is all or nothing. Every problem is reported at once, each in the error envelope's
``fields`` as ``events.<index>.<field>``, and nothing of a refused batch is published: the
sender drops (or fixes) the named events and sends the rest again. Events are idempotent on
``event_id`` downstream, so resending a batch, or part of one, never counts anything twice.

When the bus is unreachable the answer is 503 with ``Retry-After``, and the sender keeps the
batch and retries: the service holds no events of its own that a crash could lose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from analytics.constants import MAX_BATCH_EVENTS, STREAM_ANALYTICS
from analytics.fastpath import (
    CheckedBatch,
    DecodedBody,
    Problem,
    check_batch,
    check_decoded,
    decode_body,
)
from livebase.api.analytics_ctx import DIRECTORY
from livebase.api.middleware import envelope
from livebase.api.routing import Context, Endpoint
from livebase.api.state import BUS
from livebase.bus import BusUnavailableError
from livebase.db.models import Role
from livebase.errors import FieldError, ValidationFailed

POSTERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})
RETRY_AFTER_SECONDS = 2

# The OpenAPI document shows the envelope every event shares; each type's own fields are in
# docs/metrics.md. Validation is analytics.fastpath's, not pydantic's, for speed.
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An analytics event (docs/metrics.md, 'Source events').",
    "required": ["type", "event_id", "occurred_at", "base", "room", "session_id"],
    "properties": {
        "type": {"type": "string", "examples": ["viewer.heartbeat", "order.paid"]},
        "version": {"type": "integer", "default": 1},
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "occurred_at": {"type": "string", "format": "date-time"},
        "base": {"type": "string"},
        "room": {"type": "string"},
        "session_id": {"type": "integer", "minimum": 1},
    },
}


class EventBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Annotated[Any, WithJsonSchema(EVENT_SCHEMA)]] = Field(
        max_length=MAX_BATCH_EVENTS,
        description=f"up to {MAX_BATCH_EVENTS} events; ids repeated within the batch count once",
    )


class EventBatchOut(BaseModel):
    accepted: int = Field(description="events published (repeats within the batch left out)")
    duplicates: int = Field(description="repeats of an event id earlier in the same batch")


async def _misplaced(ctx: Context, batch: CheckedBatch) -> list[Problem]:
    """Events whose session is not in the room they name, or not in the caller's base.

    Both answer alike, so a base manager cannot probe another base's sessions.
    """
    places = batch.places
    found = await ctx.request.app[DIRECTORY].lookup(ctx.db, {sid for sid, _, _ in places})
    principal = ctx.principal
    problems: list[Problem] = []
    for (session_id, base, room), indices in places.items():
        info = found.get(session_id)
        if (
            info is None
            or (info.base, info.room) != (base, room)
            or not principal.can_see_base(info.base_id)
        ):
            message = f"no session {session_id} in room {base}/{room} that this token may post to"
            problems.extend(Problem(index, "session_id", message) for index in indices)
    return problems


async def post_events(ctx: Context) -> Any:
    items: list[Any] = ctx.body.events
    lateness = timedelta(hours=ctx.settings.analytics_lateness_hours)
    now = datetime.now(UTC)
    if isinstance(ctx.body, DecodedBody):
        batch = check_decoded(ctx.body, now=now, lateness=lateness)
    else:
        batch = check_batch(items, now=now, lateness=lateness)
    problems = batch.problems + await _misplaced(ctx, batch)
    if problems:
        problems.sort(key=lambda p: p.index)
        bad = len({p.index for p in problems})
        raise ValidationFailed(
            f"{bad} of {len(items)} events are not valid; nothing was accepted",
            fields=[FieldError(f"events.{p.index}.{p.field}", p.message) for p in problems],
        )
    if batch.items:
        try:
            # One packed entry for the whole batch: one XADD, all or nothing.
            await ctx.request.app[BUS].publish_packed(STREAM_ANALYTICS, batch.packed())
        except BusUnavailableError:
            response = envelope(
                503,
                "bus_unavailable",
                "the event bus is unreachable; nothing was accepted, send the batch again later",
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
    return EventBatchOut(accepted=len(batch.items), duplicates=batch.duplicates)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/events",
        post_events,
        "Ingest a batch of analytics events (all or nothing; 503 means send it again)",
        "analytics",
        response=EventBatchOut,
        body=EventBatchIn,
        status=202,
        roles=POSTERS,
        errors=(400, 401, 403, 422, 503),
        decode=decode_body,
    ),
]
