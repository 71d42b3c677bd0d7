"""A WeChat Channels API (视频号助手) on 127.0.0.1 that behaves as its documentation says.

- ``GET /cgi-bin/token?grant_type=client_credential&appid&secret`` issues an access token
  valid ``expires_in`` seconds (7,200). A new token ends the previous one, which stays usable
  for 5 minutes of overlap. Wrong appid: 40013; wrong secret: 40001; wrong grant_type: 40002.
- ``POST /channels/livedashboard/getlivedata?access_token`` with ``{"export_id"}``: an unknown
  or superseded token is 40001, an expired one 42001; more calls in a minute than the quota is
  45009; an unknown export_id is 40097 (invalid args). The answer carries
  ``live_dashboard_data`` and ``live_ec_data_summary`` as JSON text, as the document types them.
- Errors are HTTP 200 with ``{"errcode", "errmsg"}``.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APPID = "wx5f3c0a9b1d2e4f60"
SECRET = "channels-app-secret-8c1d7e2f9a"
OVERLAP_S = 300


@dataclass
class Clock:
    now: float = 1_746_100_000.0

    def __call__(self) -> float:
        return self.now


def error(code: int, message: str) -> web.Response:
    return web.json_response({"errcode": code, "errmsg": f"{message} rid: 6650a1b2-0c0d0e0f"})


@dataclass
class FakeChannels:
    clock: Clock
    lives: dict[str, dict[str, Any]] = field(default_factory=dict)
    expires_in: int = 7200
    quota_per_minute: int = 100
    tokens: dict[str, float] = field(default_factory=dict)  # token -> valid until
    token_fetches: int = 0
    answers: list[int] = field(default_factory=list)  # errcode of every getlivedata call
    superseded: set[str] = field(default_factory=set)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _calls: list[float] = field(default_factory=list)

    def expire_all(self) -> None:
        """The platform ended every token early (it may: the doc says to handle 42001)."""
        self.tokens = {t: self.clock() - 1 for t in self.tokens}

    async def token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential":
            return error(40002, "invalid grant_type")
        if q.get("appid") != APPID:
            return error(40013, "invalid appid")
        if q.get("secret") != SECRET:
            return error(40001, "invalid credential, access_token is invalid or not latest")
        now = self.clock()
        self.tokens = {t: min(until, now + OVERLAP_S) for t, until in self.tokens.items()}
        self.superseded |= set(self.tokens)
        token = f"86_{next(self._numbers):04d}_ACCESSTOKEN"
        self.tokens[token] = now + self.expires_in
        self.token_fetches += 1
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    async def getlivedata(self, request: web.Request) -> web.Response:
        answer = self._check(request, await request.json())
        self.answers.append(answer[0])
        if answer[0]:
            return error(*answer)
        live = self.lives[(await request.json())["export_id"]]
        return web.json_response({
            "errcode": 0, "errmsg": "ok", "trace_id": "trace-1",
            "live_dashboard_data": json.dumps({
                "live_dashboard_data": {"summary": live["summary"]},
                "live_duration": live["live_duration"], "start_time": live["start_time"]}),
            "live_ec_data_summary": json.dumps(live["ec"]),
        })  # fmt: skip

    def _check(self, request: web.Request, body: Any) -> tuple[int, str]:
        now = self.clock()
        token = request.query.get("access_token", "")
        until = self.tokens.get(token)
        if until is None:
            return 40001, "invalid credential, access_token is invalid or not latest"
        if now >= until and token in self.superseded:
            return 40001, "invalid credential, access_token is invalid or not latest"
        if now >= until:
            return 42001, "access_token expired"
        self._calls = [t for t in self._calls if t > now - 60]
        if len(self._calls) >= self.quota_per_minute:
            return 45009, "reach max api minute quota limit"
        self._calls.append(now)
        if not isinstance(body, dict) or body.get("export_id") not in self.lives:
            return 40097, "invalid args"
        return 0, "ok"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/channels/livedashboard/getlivedata", self.getlivedata)
        return app
