"""Who requested an HLS playlist: a cookie, or else a keyed hash of address and user agent.

The raw address is never stored or published: the id is an HMAC under a key that lives only
in this process, so it cannot be turned back into an address. The cookie carries the same id,
so a player that keeps cookies stays one viewer, and one that does not is still recognised by
its hash. (Behind several API processes a cookie-less player counts once per process.)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from aiohttp import web

from analytics.viewers import ViewerFeed
from livebase.settings import SLUG_RE

COOKIE = "lb_viewer"
COOKIE_RE = re.compile(r"[0-9a-f]{32}")
SLUG = re.compile(SLUG_RE)
_KEY = secrets.token_bytes(32)


def viewer_id(request: web.Request) -> tuple[str, bool]:
    """The viewer's id, and whether the cookie still has to be set."""
    cookie = request.cookies.get(COOKIE, "")
    if COOKIE_RE.fullmatch(cookie):
        return cookie, False
    who = f"{request.remote}|{request.headers.get('User-Agent', '')}".encode()
    return hmac.new(_KEY, who, hashlib.sha256).hexdigest()[:32], True


def count_playlist(
    feed: ViewerFeed, request: web.Request, tail: str, response: web.StreamResponse
) -> None:
    """Note a request for ``<base>/<room>/<session>/….m3u8``; set the viewer cookie if new."""
    parts = tail.split("/")
    if len(parts) < 4 or not parts[2].isdigit() or not all(SLUG.match(p) for p in parts[:2]):
        return
    ident, new = viewer_id(request)
    feed.tracker.seen(parts[0], parts[1], int(parts[2]), ident, datetime.now(UTC))
    if new:
        response.set_cookie(COOKIE, ident, max_age=365 * 86400, path="/hls", samesite="Lax")
