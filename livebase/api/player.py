"""The base's own player: pages that play a room's HLS and show the pinned product card.

Public, like the playlists and the pin stream they read (viewers are anonymous):

- ``/watch/{base}/{room}``: the live stream; the card follows ``/live/{base}/{room}/pins``.
- ``/watch/{base}/{room}/sessions/{session}``: the recording; the card follows the
  ``EXT-X-DATERANGE`` pins of its playlist, with the products' cards from
  ``…/sessions/{session}/cards``.
- ``/static/…``: the page's script and style, and the vendored hls.js.

The pages are one template filled with escaped values; everything a viewer sees of a product
is set as text by ``player.js`` (never as HTML), and a Content-Security-Policy allows no
script but ours.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from string import Template

from aiohttp import web
from sqlalchemy import select

from livebase.api.pins_stream import PATH as PINS_PATH
from livebase.api.pins_stream import product_card
from livebase.api.routing import json_response, parse_id
from livebase.api.state import DB_SESSIONS, SETTINGS
from livebase.db.models import Base, LiveSession, Pin, Product, Room
from livebase.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGE = Template((STATIC_DIR / "player" / "watch.html").read_text(encoding="utf-8"))
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", "": "text/plain"}  # "": LICENSE
RECORDING = "source/replay.m3u8"  # the source rendition keeps every segment
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # Listing images are the merchant's own URLs (http or https) or uploads served here.
        "img-src 'self' http: https:",
        # hls.js feeds the video through MediaSource (blob:) and runs its demuxer in a worker.
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)


async def _room(request: web.Request) -> tuple[str, str, Room]:
    base_slug, room_slug = request.match_info["base"], request.match_info["room"]
    async with request.app[DB_SESSIONS]() as db:
        room = await db.scalar(
            select(Room)
            .join(Base, Base.id == Room.base_id)
            .where(Base.slug == base_slug, Room.slug == room_slug)
        )
    if room is None:
        raise NotFound(f"no room {room_slug!r} in base {base_slug!r}")
    return base_slug, room_slug, room


async def _session(request: web.Request, room: Room) -> LiveSession:
    raw = request.match_info["session"]
    session_id = parse_id(raw)
    session = None
    if session_id is not None:
        async with request.app[DB_SESSIONS]() as db:
            session = await db.scalar(
                select(LiveSession).where(
                    LiveSession.id == session_id, LiveSession.room_id == room.id
                )
            )
    if session is None:
        raise NotFound(f"no session {raw!r} in room {room.slug!r}")
    return session


def _page(
    *, mode: str, title: str, heading: str, src: str, pins: str = "", cards: str = ""
) -> web.Response:
    values = {"mode": mode, "title": title, "heading": heading, "src": src}
    values |= {"pins": pins, "cards": cards}
    body = PAGE.substitute({k: html.escape(v, quote=True) for k, v in values.items()})
    return web.Response(
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


async def live_page(request: web.Request) -> web.Response:
    base_slug, room_slug, room = await _room(request)
    return _page(
        mode="live",
        title=f"{room.name_zh} · 直播",
        heading=room.name_zh,
        src=f"/hls/{base_slug}/{room_slug}/live.m3u8",
        pins=PINS_PATH.format(base=base_slug, room=room_slug),
    )


async def replay_page(request: web.Request) -> web.Response:
    base_slug, room_slug, room = await _room(request)
    session = await _session(request, room)
    recording = request.app[SETTINGS].data_dir / "hls" / base_slug / room_slug / str(session.id)
    if not await asyncio.to_thread((recording / RECORDING).is_file):
        raise NotFound(f"session {session.id} has no recording", code="no_recording")
    watch = f"/watch/{base_slug}/{room_slug}/sessions/{session.id}"
    return _page(
        mode="replay",
        title=f"{session.title} · 回放",
        heading=session.title,
        src=f"/hls/{base_slug}/{room_slug}/{session.id}/{RECORDING}",
        cards=f"{watch}/cards",
    )


async def session_cards(request: web.Request) -> web.Response:
    """The product card of every pin of a session, by the ``EXT-X-DATERANGE`` id of the pin."""
    _, _, room = await _room(request)
    session = await _session(request, room)
    async with request.app[DB_SESSIONS]() as db:
        rows = await db.execute(
            select(Pin, Product)
            .join(Product, Product.id == Pin.product_id)
            .where(Pin.session_id == session.id)
            .order_by(Pin.pinned_at, Pin.id)
        )
        cards = {f"pin-{pin.id}": product_card(pin, product) for pin, product in rows.all()}
    response = json_response({"session_id": session.id, "cards": cards})
    response.headers["Cache-Control"] = "no-cache"
    return response


def _static_file(tail: str) -> Path | None:
    """The script, style or licence ``tail`` names under the static directory, if any."""
    root = STATIC_DIR
    path = Path(root, tail).resolve()
    if path.suffix in STATIC_TYPES and path.is_relative_to(root) and path.is_file():
        return path
    return None


async def static_file(request: web.Request) -> web.StreamResponse:
    tail = request.match_info["tail"]
    path = await asyncio.to_thread(_static_file, tail)
    if path is None:
        raise NotFound(f"no file {tail!r}")
    headers = {
        "Content-Type": f"{STATIC_TYPES[path.suffix]}; charset=utf-8",
        # Not versioned in their URLs: a short life, so that an upgrade reaches viewers soon.
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    return web.FileResponse(path, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/watch/{base}/{room}", live_page)
    app.router.add_get("/watch/{base}/{room}/sessions/{session}", replay_page)
    app.router.add_get("/watch/{base}/{room}/sessions/{session}/cards", session_cards)
    app.router.add_get("/static/{tail:.+}", static_file)
