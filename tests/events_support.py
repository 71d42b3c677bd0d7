"""Helpers for the analytics pipeline tests: live sessions to post events for, and events."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api_support import Api, World

_numbers = itertools.count(1)


@dataclass(frozen=True)
class LiveRef:
    """A live session and where it is."""

    id: int
    base: str
    room: str
    room_id: int
    host_id: int | None
    theme_id: int | None


async def live_session(
    world: World, base: str = "haifeng", *, room: int = 0, theme: str | None = "gi-produce"
) -> LiveRef:
    """A new session in ``base`` (in the base's first room unless ``room`` is its index),
    hosted by the base's host, on ``theme``, and live."""
    api, admin = world.api, world.tokens["admin"]
    status, rooms = await api.call("GET", f"/api/v1/bases/{base}/rooms", admin)
    assert status == 200, rooms
    chosen = sorted(rooms["items"], key=lambda r: r["id"])[room]
    theme_id = None
    if theme is not None:
        status, found = await api.call("GET", f"/api/v1/themes/{theme}", admin)
        assert status == 200, found
        theme_id = found["id"]
    body = {
        "room_id": chosen["id"],
        "host_id": world.ids[f"{base}.host"],
        "theme_id": theme_id,
        "title": f"场次 {next(_numbers)}",
    }
    status, session = await api.call("POST", f"/api/v1/bases/{base}/sessions", admin, body)
    assert status == 201, session
    path = f"/api/v1/bases/{base}/sessions/{session['id']}"
    status, session = await api.call("PATCH", path, admin, {"status": "live"})
    assert status == 200, session
    return LiveRef(session["id"], base, chosen["slug"], chosen["id"], session["host_id"], theme_id)


def event(kind: str, where: LiveRef, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A raw event as a producer would post it (``occurred_at`` now unless given)."""
    return {
        "type": kind,
        "event_id": uuid.uuid4().hex,
        "occurred_at": (at or datetime.now(UTC)).isoformat(),
        "base": where.base,
        "room": where.room,
        "session_id": where.id,
        **fields,
    }


async def post_events(api: Api, token: str, events: list[dict[str, Any]]) -> tuple[int, Any]:
    return await api.call("POST", "/api/v1/events", token, {"events": events})
