"""The service on the event loop ``livebase serve`` runs it on (uvloop, when installed).

The rest of the suite runs on asyncio's own loop; this runs one whole relay on the loop
``livebase.eventloop`` picks: an ffmpeg publish over RTMP, relayed to a platform (an ffmpeg
RTMP listener) and recorded as HLS, child processes and all. The database is SQLite only:
the loop, not the database, is under test here.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
from media import FFMPEG, codecs, make_flv
from net import free_port, free_udp_port, wait_until

from ingest.process import live_children
from livebase import eventloop
from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role
from livebase.service import running_service
from livebase.settings import load_settings


def video_frames(path: Path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return int(out.stdout.split()[0])


def ffmpeg(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def relay(tmp_path: Path, flv: Path) -> tuple[Path, Path]:
    """Publish ``flv`` once; the platform's recording and the session's HLS recording."""
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
    settings = load_settings(
        {
            "LIVEBASE_DATA_DIR": str(tmp_path / "data"),
            "LIVEBASE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
            "LIVEBASE_HTTP_PORT": str(free_port()),
            "LIVEBASE_RTMP_PORT": str(free_port()),
            "LIVEBASE_SRT_PORT": str(free_udp_port()),
            "LIVEBASE_RECONNECT_GRACE_SECONDS": "1",
            "LIVEBASE_HLS_SEGMENT_SECONDS": "1",
        }
    ).model_copy(update={"hls_ladder": ()})
    platform_port = free_port()
    relayed = tmp_path / "platform.flv"
    platform = ffmpeg("-listen", "1", "-timeout", "30", "-i",
                      f"rtmp://127.0.0.1:{platform_port}/live/platform-key-0001",
                      "-c", "copy", "-f", "flv", str(relayed))  # fmt: skip
    try:
        async with running_service(settings) as svc, aiohttp.ClientSession() as http:
            async with svc.app[DB_SESSIONS]() as db, db.begin():
                token = (await issue_token(db, Role.ADMIN)).token

            async def api(method: str, path: str, body: Any = None) -> Any:
                async with http.request(
                    method,
                    svc.http_url + path,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    assert resp.status < 400, await resp.text()
                    return await resp.json()

            rooms = "/api/v1/bases/haifeng/rooms/studio-1"
            key = (await api("POST", f"{rooms}/stream-key"))["stream_key"]
            room = await api("GET", rooms)
            destination = {
                "room_id": room["id"],
                "name": "douyin",
                "url": f"rtmp://127.0.0.1:{platform_port}/live/",
                "stream_key": "platform-key-0001",
            }
            await api("POST", "/api/v1/bases/haifeng/destinations", destination)
            encoder = ffmpeg(
                "-re", "-i", str(flv), "-c", "copy", "-f", "flv", f"{svc.rtmp_url}/{key}"
            )
            try:
                assert await asyncio.to_thread(encoder.wait, 30) == 0
            finally:
                if encoder.poll() is None:
                    encoder.kill()
            sessions = f"/api/v1/bases/haifeng/sessions?room_id={room['id']}&status=ended"
            ended = await wait_until(lambda: api("GET", sessions), lambda p: p["items"], within=20)
            session_id = ended["items"][0]["id"]
            assert await asyncio.to_thread(platform.wait, 30) == 0
        assert live_children() == [], "a child process outlived the service"
    finally:
        if platform.poll() is None:
            platform.kill()
            platform.wait()
    hls = settings.data_dir / "hls/haifeng/studio-1" / str(session_id) / "source/replay.m3u8"
    return relayed, hls


def test_a_relay_runs_on_the_loop_livebase_serve_uses(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=4, gop=30)
    relayed, hls = eventloop.run(relay(tmp_path, flv))
    assert video_frames(relayed) == video_frames(flv), "the platform lost frames"
    assert hls.read_text().rstrip().endswith("#EXT-X-ENDLIST")
    assert video_frames(hls) == video_frames(flv), "the recording lost frames"
    assert codecs(relayed) == codecs(hls) == {"h264", "aac"}
