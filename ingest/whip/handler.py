"""WHIP (RFC 9725) over aiohttp: the endpoint ``/whip/{base}/{room}`` and its sessions.

- ``POST`` an SDP offer with ``Authorization: Bearer <the room's stream key>``: ``201
  Created`` with the answer, ``Location`` (the session), ``ETag`` (its ICE session) and the
  configured ICE servers as ``Link`` headers. The key must open that very room.
- ``DELETE`` the session (same bearer key): the publish ends at once, ``200 OK``.
- ``PATCH`` the session: trickle ICE is supported and ICE restarts are not, so as RFC 9725
  section 4.3.1 asks, trickled candidates get ``204 No Content`` and a restart (``If-Match:
  *`` or new ICE credentials) gets ``422``; a stale ``If-Match`` gets ``412``, a missing one
  ``428``, another body type ``415``.
- ``OPTIONS`` on both, for CORS preflights and discovery (``Accept-Post``, ``Link``).

A POST is checked in the order that costs least: the offer itself (pure, starts nothing),
then aiortc's reading of it (binds no socket), then the key with the registry (which may
take the room over from an earlier publish), and only then are sockets bound for the
answer. A publish taken over while it negotiates gets ``409``.

Errors use the API's JSON envelope and are logged with the reason. Which key may publish,
and where the media goes, belongs to the registry; each session is its ``Publisher``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from aiohttp import web
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from multidict import CIMultiDict

from ingest.registry import LiveRegistry
from ingest.whip.sdp import NoUsableCodec, SdpError, parse_fragment, parse_offer
from ingest.whip.session import SessionClosed, Timeouts, WhipSession
from livebase.api.middleware import envelope

__all__ = ["WHIP", "WhipServer", "add_whip_routes"]

log = logging.getLogger("livebase.ingest.whip")

SDP: Final = "application/sdp"
SDPFRAG: Final = "application/trickle-ice-sdpfrag"
MAX_BODY: Final = 64 * 1024  # offers are a few kB; this is far more than any encoder sends
_ICE_URL = re.compile(r"^(stun|stuns|turn|turns):[^\s<>\"]+$")
_CORS: Final = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Post, Accept-Patch",
    "Access-Control-Max-Age": "86400",
}
_REFUSE_AIORTC = (ValueError, LookupError, OperationError, InvalidAccessError, InvalidStateError)


class WhipServer:
    """The live WHIP sessions of one app, by resource id."""

    def __init__(
        self,
        registry: Callable[[], LiveRegistry],
        ice_servers: Sequence[str] = (),
        timeouts: Timeouts | None = None,
    ) -> None:
        for url in ice_servers:
            if not _ICE_URL.match(url):
                raise ValueError(f"not a STUN or TURN URL: {url!r}")
        self._registry = registry
        self._links = [f'<{url}>; rel="ice-server"' for url in ice_servers]
        self._timeouts = timeouts or Timeouts()
        self._ids = itertools.count(1)
        self.sessions: dict[str, WhipSession] = {}

    async def close_all(self) -> None:
        """End every publish and close every peer connection (service shutdown)."""
        sessions = list(self.sessions.values())
        await asyncio.gather(*(s.aclose("the service is stopping") for s in sessions))

    # --- the endpoint ---------------------------------------------------------------------------

    async def post(self, request: web.Request) -> web.Response:
        base, room = request.match_info["base"], request.match_info["room"]
        peer = _peer(request)
        refuse = _Refusal(request, peer)
        key = _bearer(request)
        if not key:
            return refuse(401, "unauthenticated", "send the room's stream key as a Bearer token")
        if request.content_type != SDP:
            return refuse(415, "unsupported_media_type", f"the offer must be sent as {SDP}")
        body = await _body(request)
        if body is None:
            return refuse(413, "payload_too_large", f"an offer is at most {MAX_BODY} bytes")
        try:
            text = body.decode("utf-8")
            offer = parse_offer(text)
        except UnicodeDecodeError:
            return refuse(400, "invalid_sdp", "the offer is not UTF-8 text")
        except NoUsableCodec as exc:
            return refuse(422, "no_usable_codec", str(exc))
        except SdpError as exc:
            return refuse(400, "invalid_sdp", str(exc))
        session = WhipSession(
            next(self._ids),
            (base, room),
            peer,
            key,
            offer,
            timeouts=self._timeouts,
            on_closed=self._forget,
        )
        try:
            await session.apply_offer(text)
            sink = await self._registry().begin(key, "whip", peer, session, room=(base, room))
        except _REFUSE_AIORTC as exc:
            await session.pc.close()
            return refuse(400, "invalid_sdp", f"the offer cannot be used: {exc}")
        except BaseException:
            await session.pc.close()
            raise
        if sink is None:
            await session.pc.close()
            return refuse(401, "unauthenticated", f"the key does not open room {base}/{room}")
        self.sessions[session.resource_id] = session
        try:
            answer = await session.answer(sink)
        except SessionClosed as exc:
            self._forget(session)
            return refuse(409, "conflict", f"the publish ended while negotiating: {exc}")
        except BaseException:
            await session.aclose("the WHIP answer could not be made")
            raise
        log.info(
            "%s: WHIP publish answered (%d candidates offered)", session.label, offer.candidates
        )
        headers = self._headers(Accept_Patch=SDPFRAG)
        headers["Location"] = f"{request.rel_url.path.rstrip('/')}/{session.resource_id}"
        headers["ETag"] = session.etag
        return web.Response(status=201, body=answer.encode(), content_type=SDP, headers=headers)

    async def options_endpoint(self, request: web.Request) -> web.Response:
        headers = self._headers(Accept_Post=SDP)
        headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        return web.Response(status=204, headers=headers)

    # --- a session ------------------------------------------------------------------------------

    async def delete(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        await session.aclose("WHIP DELETE")
        return web.Response(status=200, headers=self._headers())

    async def patch(self, request: web.Request) -> web.Response:
        session = self._session(request)
        if isinstance(session, web.Response):
            return session
        refuse = _Refusal(request, session.peer)
        if request.content_type != SDPFRAG:
            return refuse(415, "unsupported_media_type", f"PATCH takes {SDPFRAG}", SDPFRAG)
        if_match = request.headers.get("If-Match", "").strip()
        if not if_match:
            return refuse(428, "precondition_required", "send If-Match with the session's ETag")
        if if_match == "*":
            return refuse(422, "ice_restart_unsupported", _NO_RESTART)
        body = await _body(request)
        if body is None:
            return refuse(413, "payload_too_large", f"a fragment is at most {MAX_BODY} bytes")
        try:
            fragment = parse_fragment(body.decode("utf-8"))
        except (UnicodeDecodeError, SdpError) as exc:
            return refuse(400, "invalid_sdp", f"the SDP fragment cannot be read: {exc}")
        if if_match != session.etag:
            return refuse(412, "precondition_failed", "If-Match names another ICE session")
        offer = session.offer
        if (fragment.ice_ufrag and fragment.ice_ufrag != offer.ice_ufrag) or (
            fragment.ice_pwd and fragment.ice_pwd != offer.ice_pwd
        ):
            return refuse(422, "ice_restart_unsupported", _NO_RESTART)
        added = await session.add_candidates(fragment)
        log.debug("%s: %d trickled candidates added", session.label, added)
        return web.Response(status=204, headers=self._headers())

    async def options_session(self, request: web.Request) -> web.Response:
        headers = self._headers(Accept_Patch=SDPFRAG)
        headers["Access-Control-Allow-Methods"] = "PATCH, DELETE, OPTIONS"
        return web.Response(status=204, headers=headers)

    def _session(self, request: web.Request) -> WhipSession | web.Response:
        """The session the request names, or the refusal to send."""
        refuse = _Refusal(request, _peer(request))
        session = self.sessions.get(request.match_info["resource"])
        room = (request.match_info["base"], request.match_info["room"])
        if session is None or session.room != room:
            return refuse(404, "not_found", f"no WHIP session at {request.path}")
        key = _bearer(request)
        if not key or not session.key_matches(key):
            return refuse(401, "unauthenticated", "send the session's stream key")
        return session

    def _forget(self, session: WhipSession) -> None:
        self.sessions.pop(session.resource_id, None)

    def _headers(self, **extra: str) -> CIMultiDict[str]:
        headers = CIMultiDict(_CORS)
        for name, value in extra.items():
            headers[name.replace("_", "-")] = value
        for link in self._links:
            headers.add("Link", link)
        return headers


_NO_RESTART: Final = "ICE restarts are not supported: DELETE this session and publish again"


class _Refusal:
    """A refused request: logged with its reason, answered with the JSON error envelope."""

    def __init__(self, request: web.Request, peer: str) -> None:
        self._request = request
        self._peer = peer

    def __call__(self, status: int, code: str, message: str, accept: str = "") -> web.Response:
        request = self._request
        log.warning(
            "WHIP %s %s from %s refused (%d): %s",
            request.method,
            request.path,
            self._peer,
            status,
            message,
        )
        response = envelope(status, code, message)
        response.headers.update(_CORS)
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="whip"'
        elif status == 415:
            response.headers["Accept-Patch" if accept else "Accept-Post"] = accept or SDP
        return response


def _bearer(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _peer(request: web.Request) -> str:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return request.remote or "unknown"


async def _body(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than ``MAX_BODY`` (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = bytearray()
    while chunk := await request.content.read(MAX_BODY + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


WHIP: Final = web.AppKey("whip", WhipServer)


def add_whip_routes(
    app: web.Application,
    registry: Callable[[], LiveRegistry],
    *,
    ice_servers: Sequence[str] = (),
    timeouts: Timeouts | None = None,
) -> None:
    """Serve WHIP on ``app``; ``registry`` is called per request, as the registry starts after
    the app. The sessions close when the app cleans up, or earlier with
    ``app[WHIP].close_all()``."""
    server = WhipServer(registry, ice_servers, timeouts)
    app[WHIP] = server
    endpoint, resource = "/whip/{base}/{room}", "/whip/{base}/{room}/{resource}"
    app.router.add_route("POST", endpoint, server.post)
    app.router.add_route("OPTIONS", endpoint, server.options_endpoint)
    app.router.add_route("DELETE", resource, server.delete)
    app.router.add_route("PATCH", resource, server.patch)
    app.router.add_route("OPTIONS", resource, server.options_session)

    async def sessions(app: web.Application) -> AsyncIterator[None]:
        yield
        await server.close_all()

    app.cleanup_ctx.append(sessions)
