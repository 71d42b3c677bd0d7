"""WeChat Channels (视频号) live data: the 直播大屏 ``getlivedata`` API → :class:`PlatformFigures`.

The documented flow (developers.weixin.qq.com, 视频号助手 API):

* ``GET /cgi-bin/token?grant_type=client_credential&appid=…&secret=…`` answers
  ``{"access_token", "expires_in"}`` (at most 7,200 s); every other call carries it as
  ``?access_token=``. Fetching a new token ends the old one, so one holder fetches and shares it.
* ``POST /channels/livedashboard/getlivedata`` with ``{"export_id": …}`` (a broadcast's unique
  id) answers ``errcode`` 0 and ``live_dashboard_data`` (``live_dashboard_data.summary``:
  ``new_watch_uv``, ``max_online_watch_uv``, ``average_watch_seconds_per_audience`` …;
  ``start_time``, ``live_duration``) and ``live_ec_data_summary`` (``total_gmv`` in fen,
  ``total_pay_pv``, ``total_pay_uv``, ``total_clk_pv``, ``total_exp_pv``, ``refund_amount`` in
  fen …). Those two may come as objects or as JSON text; both are read.
* Errors are ``{"errcode", "errmsg"}`` with HTTP 200. 40001 (token invalid or not the latest)
  and 42001 (token expired) are answered by fetching a new token and retrying once; 45009 (the
  API's quota for now is used up) raises :class:`RateLimited`, for the caller to try later; -1
  (system busy) raises :class:`ChannelsError` like any other code.

The access token is never logged; errors name the code and the platform's message only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import orjson

from analytics.platform.figures import PlatformFigures

PLATFORM: Final = "channels"
DEFAULT_API: Final = "https://api.weixin.qq.com"
TOKEN_ERRORS: Final = frozenset({40001, 42001, 40014})
RATE_LIMITED: Final = 45009
#: Renew this long before the token's stated expiry, so a call never carries a dying token.
EXPIRY_MARGIN_S: Final = 300


class ChannelsError(RuntimeError):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat Channels error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class RateLimited(ChannelsError):
    """45009: the call quota is used up for now; try again later."""


@dataclass(frozen=True, slots=True)
class Credentials:
    appid: str
    secret: str

    def __repr__(self) -> str:  # the secret never reaches a log through repr()
        return f"Credentials(appid={self.appid!r}, secret='…')"


class ChannelsClient:
    """Calls the Channels API with a cached access token, renewed before it expires."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        credentials: Credentials,
        *,
        api: str = DEFAULT_API,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._api = api.rstrip("/")
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def _json(self, response: aiohttp.ClientResponse) -> dict[str, Any]:
        if response.status != 200:
            raise ChannelsError(-1, f"HTTP {response.status}")
        try:
            data = orjson.loads(await response.read())
        except orjson.JSONDecodeError as exc:
            raise ChannelsError(-1, "the answer is not JSON") from exc
        if not isinstance(data, dict):
            raise ChannelsError(-1, "the answer is not a JSON object")
        code = data.get("errcode", 0)
        if code:
            message = str(data.get("errmsg", ""))
            raise (RateLimited if code == RATE_LIMITED else ChannelsError)(int(code), message)
        return data

    async def token(self, *, renew: bool = False) -> str:
        async with self._lock:
            if renew or self._token is None or self._clock() >= self._expires_at:
                params = {
                    "grant_type": "client_credential",
                    "appid": self._credentials.appid,
                    "secret": self._credentials.secret,
                }
                async with self._http.get(f"{self._api}/cgi-bin/token", params=params) as resp:
                    data = await self._json(resp)
                token, expires = data.get("access_token"), data.get("expires_in")
                if not isinstance(token, str) or not isinstance(expires, int):
                    raise ChannelsError(-1, "the token answer lacks access_token or expires_in")
                self._token = token
                self._expires_at = self._clock() + max(0, expires - EXPIRY_MARGIN_S)
            return self._token

    async def call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path``; a rejected token is renewed and the call made once more."""
        token = await self.token()
        try:
            return await self._post(path, body, token)
        except ChannelsError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
        return await self._post(path, body, await self.token(renew=True))

    async def _post(self, path: str, body: Mapping[str, Any], token: str) -> dict[str, Any]:
        async with self._http.post(
            f"{self._api}{path}", params={"access_token": token}, data=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        ) as resp:  # fmt: skip
            return await self._json(resp)

    async def live_figures(self, export_id: str, account: str = "") -> PlatformFigures:
        """One broadcast's figures; ``account`` (the host's name) is what matching compares."""
        data = await self.call("/channels/livedashboard/getlivedata", {"export_id": export_id})
        try:
            return to_figures(export_id, data, account)
        except (ValueError, OverflowError, OSError) as exc:  # absurd numbers or times
            raise ChannelsError(-1, f"the live data cannot be read: {exc}") from exc


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes) and value:
        value = orjson.loads(value)
    return value if isinstance(value, dict) else {}


def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name) or 0
    if isinstance(value, str):
        value = int(value) if value.isdigit() else 0
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def to_figures(export_id: str, data: Mapping[str, Any], account: str = "") -> PlatformFigures:
    """Our figures from a ``getlivedata`` answer (documented field names only)."""
    dashboard = _object(data.get("live_dashboard_data"))
    summary = _object(_object(dashboard.get("live_dashboard_data")).get("summary"))
    ec = _object(data.get("live_ec_data_summary"))
    start = _count(dashboard, "start_time")
    uv = _count(summary, "new_watch_uv") or _count(ec, "cumulative_audience_count")
    avg_watch = _count(summary, "average_watch_seconds_per_audience") or _count(
        ec, "average_watch_seconds_per_audience"
    )
    return PlatformFigures(
        platform=PLATFORM,
        row_key=f"id:{export_id}"[:160],
        account=account or export_id[:200],
        started_at=datetime.fromtimestamp(start, UTC),
        uv=uv,
        peak_concurrent=_count(summary, "max_online_watch_uv"),
        viewer_seconds=avg_watch * uv,
        live_seconds=_count(dashboard, "live_duration"),
        impressions=_count(ec, "total_exp_pv"),
        clicks=_count(ec, "total_clk_pv"),
        gmv_fen=_count(ec, "total_gmv"),
        orders=_count(ec, "total_pay_pv"),
        buyers=_count(ec, "total_pay_uv"),
        refund_fen=_count(ec, "refund_amount"),
    )
