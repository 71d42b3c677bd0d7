"""HLS for the base's own player, served from the data directory (public, like any player).

``/hls/{base}/{room}/live.m3u8`` redirects to the master playlist of the room's live session;
``/hls/{base}/{room}/{session}/…`` serves that session's playlists and segments, live and as
the replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from livebase.api.analytics_ctx import VIEWERS
from livebase.api.hls_viewers import count_playlist
from livebase.api.state import DB_SESSIONS, SETTINGS
from livebase.db.models import Base, LiveSession, Room, SessionStatus
from livebase.errors import NotFound

CONTENT_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}


def _headers(suffix: str) -> dict[str, str]:
    # Playlists change every segment; segments never change once written.
    cache = "no-cache" if suffix == ".m3u8" else "public, max-age=86400, immutable"
    return {
        "Content-Type": CONTENT_TYPES[suffix],
        "Cache-Control": cache,
        "Access-Control-Allow-Origin": "*",
    }


async def live_playlist(request: web.Request) -> web.StreamResponse:
    base_slug, room_slug = request.match_info["base"], request.match_info["room"]
    async with request.app[DB_SESSIONS]() as db:
        session_id = await db.scalar(
            select(LiveSession.id)
            .join(Room, Room.id == LiveSession.room_id)
            .join(Base, Base.id == Room.base_id)
            .where(
                Base.slug == base_slug,
                Room.slug == room_slug,
                LiveSession.status == SessionStatus.LIVE,
            )
            .order_by(LiveSession.started_at.desc())
            .limit(1)
        )
    if session_id is None:
        raise NotFound(f"room {base_slug}/{room_slug} is not live", code="not_live")
    raise web.HTTPFound(
        f"/hls/{base_slug}/{room_slug}/{session_id}/master.m3u8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


def _existing_file(root: Path, tail: str) -> Path | None:
    """The file ``tail`` names under ``root``, if it is an HLS file inside it."""
    root = root.resolve()
    path = Path(root, tail).resolve()
    if path.suffix in CONTENT_TYPES and path.is_relative_to(root) and path.is_file():
        return path
    return None


async def hls_file(request: web.Request) -> web.StreamResponse:
    tail = request.match_info["tail"]
    path = await asyncio.to_thread(_existing_file, request.app[SETTINGS].data_dir / "hls", tail)
    if path is None:
        raise NotFound(f"no HLS file {tail!r}")
    response = web.FileResponse(path, headers=_headers(path.suffix))
    if path.suffix == ".m3u8" and VIEWERS in request.app:
        # Players without heartbeats still count: playlist requests become viewer events.
        count_playlist(request.app[VIEWERS], request, tail, response)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hls/{base}/{room}/live.m3u8", live_playlist)
    app.router.add_get("/hls/{tail:.+}", hls_file)
