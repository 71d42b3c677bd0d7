"""The running service for end-to-end tests: real sockets, a real database, an admin token,
and an ffmpeg RTMP listener standing in for a platform."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from media import FFMPEG
from net import free_port, free_udp_port

from ingest.process import live_children
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role
from livebase.service import Running, running_service
from livebase.settings import Settings, load_settings


@dataclass
class Live:
    svc: Running
    http: aiohttp.ClientSession
    token: str
    settings: Settings

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API as admin; any error status fails the test."""
        async with self.http.request(
            method,
            self.svc.http_url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            assert resp.status < 400, await resp.text()
            return await resp.json() if resp.status != 204 else None


@asynccontextmanager
async def live_service(
    database_url: str, tmp_path: Path, env: Mapping[str, str]
) -> AsyncIterator[Live]:
    """The service on free ports with one-second HLS segments and no ladder, plus ``env``;
    on the way out, checks that no child process outlived it."""
    settings = load_settings(
        {
            "LIVEBASE_DATA_DIR": str(tmp_path / "data"),
            "LIVEBASE_DATABASE_URL": database_url,
            "LIVEBASE_HTTP_PORT": str(free_port()),
            "LIVEBASE_RTMP_PORT": str(free_port()),
            "LIVEBASE_SRT_PORT": str(free_udp_port()),
            "LIVEBASE_HLS_SEGMENT_SECONDS": "1",
            **env,
        }
    )
    settings = settings.model_copy(update={"hls_ladder": ()})
    async with running_service(settings) as svc, aiohttp.ClientSession() as http:
        async with svc.app[DB_SESSIONS]() as db, db.begin():
            token = (await issue_token(db, Role.ADMIN)).token
        yield Live(svc, http, token, settings)
    assert live_children() == [], "a child process outlived the service"


def platform_listener(port: int, out: Path) -> subprocess.Popen[bytes]:
    """A stand-in platform: an RTMP server that records what it is sent."""
    return subprocess.Popen(
        [
            *(FFMPEG, "-hide_banner", "-loglevel", "error", "-listen", "1", "-timeout", "30"),
            *("-i", f"rtmp://127.0.0.1:{port}/live/platform-key-0001", "-c", "copy"),
            *("-f", "flv", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
