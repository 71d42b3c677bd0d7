"""Declared endpoints: one list feeds both the aiohttp router and the OpenAPI document.

Each endpoint names its query and body models; the wrapper parses and validates them,
authenticates the caller, opens one database transaction and serialises the response model.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from livebase.api.state import BUS, DB_SESSIONS, SETTINGS, TOKENS, WRITE_QUEUE, WriteTurn
from livebase.auth import Principal, authenticate, bearer_from_header
from livebase.bus import STREAM_DOMAIN, Event
from livebase.db.models import Role
from livebase.errors import BadRequest, FieldError, UnsupportedMedia, ValidationFailed
from livebase.settings import Settings


@dataclass(slots=True)
class Context:
    request: web.Request
    db: AsyncSession
    principal: Principal
    query: Any
    body: Any
    turn: WriteTurn = field(default_factory=lambda: WriteTurn(None))
    events: list[Event] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.request.app[SETTINGS]

    async def writing(self) -> None:
        """Call before the first write of a short transaction (see ``WriteTurn``)."""
        await self.turn.take()

    def path(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Context], Awaitable[Any]]
ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class FileBody:
    """A file sent as the raw body (one of ``media_types``) or as a multipart form's ``file``.

    The handler reads it itself (``livebase.api.products.read_file``), after its own checks;
    the endpoint names it so the OpenAPI document can describe the request body.
    """

    media_types: tuple[str, ...]
    max_bytes: int
    description: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    response: Any = None
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    file: FileBody | None = None
    status: int = 200
    roles: frozenset[Role] = ALL_ROLES
    errors: Sequence[int] = field(default=(400, 401, 403, 404, 422))
    #: A faster reading of the raw JSON body for a hot endpoint, tried before the general one;
    #: it returns None for any body it cannot vouch reads as the general road reads it (the
    #: handler then gets ``body``'s model as usual).
    decode: Callable[[bytes], Any] | None = None


def field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        out.append(FieldError(field=loc, message=err["msg"]))
    return out


async def _parse_body(
    request: web.Request, model: type[BaseModel], decode: Callable[[bytes], Any] | None = None
) -> Any:
    ctype = request.content_type
    if ctype != "application/json":
        raise UnsupportedMedia(f"send the body as application/json, not {ctype or 'nothing'}")
    try:
        raw = await request.read()
    except ConnectionResetError as exc:  # the caller hung up mid-body; nobody reads the answer
        raise BadRequest("the body was cut short", code="malformed_json") from exc
    if decode is not None and (decoded := decode(raw)) is not None:
        return decoded
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object")
    # JSON can carry NUL only escaped, so a body without the escape holds none: one scan of
    # the bytes instead of a walk over every string of a large body.
    nul: list[FieldError] = []
    if b"\\u0000" in raw:
        nul = [FieldError(p, "must not contain NUL characters") for p in _nul_paths(data, "")]
    if nul:
        # PostgreSQL text cannot hold NUL, and no field of ours needs it.
        raise ValidationFailed("the body is not valid", fields=nul)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("the body is not valid", fields=field_errors(exc)) from exc


def _nul_paths(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [path or "(body)"] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nul_paths(v, f"{path}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nul_paths(v, f"{path}.{i}")]
    return []


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise BadRequest(f"query parameter {key!r} is given more than once", code="bad_query")
        raw[key] = values[0]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise BadRequest(
            "the query parameters are not valid", fields=field_errors(exc), code="bad_query"
        ) from exc


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def wrap(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        if any("\x00" in v for v in request.query.values()):
            raise BadRequest("query parameters must not contain NUL characters", code="bad_query")
        query = _parse_query(request, endpoint.query) if endpoint.query else None
        if endpoint.query is None and request.query:
            raise BadRequest(
                f"this endpoint takes no query parameters (got {', '.join(request.query)})",
                code="bad_query",
            )
        token = bearer_from_header(request.headers.get("Authorization"))
        turn = WriteTurn(request.app[WRITE_QUEUE])
        try:
            async with request.app[DB_SESSIONS]() as db, db.begin():
                principal = await authenticate(db, token, request.app[TOKENS])
                principal.require(*endpoint.roles)
                body = (
                    await _parse_body(request, endpoint.body, endpoint.decode)
                    if endpoint.body
                    else None
                )
                ctx = Context(request, db, principal, query, body, turn)
                result = await endpoint.handler(ctx)
        finally:
            turn.release()
        for done in ctx.after_commit:
            done()
        # Events go out only once the change they describe is committed.
        if ctx.events:
            await request.app[BUS].publish_many(STREAM_DOMAIN, ctx.events)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None:
            return web.Response(status=204)
        return json_response(_dump(result), endpoint.status)

    handler.__name__ = endpoint.handler.__name__
    return handler


MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database


def parse_id(raw: str) -> int | None:
    """A path id, or None when ``raw`` cannot be one (callers answer 404)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_ID else None


# --- keyset pagination ------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
            raise ValueError(after)
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise BadRequest(
            "the pagination cursor is not valid; use next_cursor from the previous page",
            code="invalid_cursor",
        ) from exc
