"""Helpers for rankings and platform-import tests: sessions of any host and theme, and a way
to count events into the rollups for days long past (the ingest endpoint refuses those)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from api_support import World
from events_support import LiveRef

from analytics.directory import SessionDirectory
from analytics.rollup_store import apply_events
from analytics.schemas import parse_event
from livebase.api.state import DB_SESSIONS


async def new_host(world: World, base: str, name: str) -> int:
    status, host = await world.api.call(
        "POST", f"/api/v1/bases/{base}/hosts", world.tokens["admin"], {"display_name": name}
    )
    assert status == 201, host
    return int(host["id"])


async def theme_id(world: World, slug: str) -> int:
    status, theme = await world.api.call("GET", f"/api/v1/themes/{slug}", world.tokens["admin"])
    assert status == 200, theme
    return int(theme["id"])


async def session_of(
    world: World, base: str, host_id: int, theme: int | None, start: datetime | None = None
) -> LiveRef:
    """A planned session of ``host_id`` on ``theme`` in the base's first room."""
    api, admin = world.api, world.tokens["admin"]
    status, rooms = await api.call("GET", f"/api/v1/bases/{base}/rooms", admin)
    assert status == 200, rooms
    room = sorted(rooms["items"], key=lambda r: r["id"])[0]
    body: dict[str, Any] = {"room_id": room["id"], "host_id": host_id, "theme_id": theme,
                            "title": f"场次 {uuid.uuid4().hex[:6]}"}  # fmt: skip
    if start is not None:
        body["scheduled_start"] = start.isoformat()
    status, session = await api.call("POST", f"/api/v1/bases/{base}/sessions", admin, body)
    assert status == 201, session
    return LiveRef(session["id"], base, room["slug"], room["id"], host_id, theme)


def _event(kind: str, s: LiveRef, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": uuid.uuid4().hex, "occurred_at": at.isoformat(),
            "base": s.base, "room": s.room, "session_id": s.id, **fields}  # fmt: skip


def broadcast(
    s: LiveRef, start: datetime, viewers: list[str], orders: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    """An hour on air: each viewer joins, and each ``(buyer, amount_fen)`` pays an order."""
    out = [_event("stream.started", s, start)]
    for i, viewer in enumerate(viewers):
        out.append(_event("viewer.joined", s, start + timedelta(minutes=1, seconds=i),
                          viewer_id=viewer))  # fmt: skip
    for i, (buyer, amount) in enumerate(orders):
        out.append(_event("order.paid", s, start + timedelta(minutes=10 + i),
                          order_id=f"{s.id}-{i}", platform="douyin_shop", buyer_id=buyer,
                          amount_fen=amount))  # fmt: skip
    out.append(_event("stream.ended", s, start + timedelta(hours=1)))
    return out


async def count_events(world: World, events: list[dict[str, Any]]) -> None:
    """Into the rollups, as the rollup consumer does (same store, same transaction rules)."""
    parsed = [parse_event(e) for e in events]
    async with world.api.app[DB_SESSIONS]() as db, db.begin():
        sessions = await SessionDirectory().lookup(db, {e.session_id for e in parsed})
        await apply_events(db, parsed, sessions)
