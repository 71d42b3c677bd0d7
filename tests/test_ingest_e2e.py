"""A host goes live over RTMP against the running service: relay, HLS, recording, events.

Real parts only: the service on real sockets, ffmpeg publishing as OBS does, an ffmpeg RTMP
listener standing in for a platform, ffprobe checking what comes out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from media import FFMPEG, ffprobe, make_flv, push_file, video_packets
from net import free_port, wait_until
from service_support import Live, live_service, platform_listener

from ingest.process import live_children
from livebase.api.state import BUS, DB_SESSIONS
from livebase.bus import STREAM_DOMAIN
from livebase.db.models import RelayIncident


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    env = {"LIVEBASE_RECONNECT_GRACE_SECONDS": "3", "LIVEBASE_INGEST_STATS_SECONDS": "1"}
    async with live_service(database_url, tmp_path, env) as live:
        yield live


def publish(url: str, flv: Path, *, realtime: bool = True) -> subprocess.Popen[bytes]:
    """ffmpeg pushing an H.264/AAC file over RTMP, as OBS does."""
    return push_file(flv, "flv", url, realtime=realtime)


def whip_publish(url: str, token: str) -> subprocess.Popen[bytes]:
    """FFmpeg's WHIP muxer: H.264 baseline without B-frames and Opus, as OBS sends them."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine",
         "-t", "6", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline",
         "-bf", "0", "-g", "30", "-c:a", "libopus", "-ar", "48000", "-ac", "2",
         "-f", "whip", "-authorization", token, url],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def test_rtmp_publish_relays_serves_hls_and_records(live: Live, tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=6, gop=30)
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    platform_port = free_port()
    relayed = tmp_path / "platform.flv"
    platform = platform_listener(platform_port, relayed)
    room = await live.api("GET", "/api/v1/bases/haifeng/rooms/studio-1")
    dest = await live.api(
        "POST",
        "/api/v1/bases/haifeng/destinations",
        {
            "room_id": room["id"],
            "name": "douyin",
            "platform": "douyin",
            "url": f"rtmp://127.0.0.1:{platform_port}/live/",
            "stream_key": "platform-key-0001",
        },
    )
    bus = live.svc.app[BUS]
    await bus.ensure_group(STREAM_DOMAIN, "test")
    encoder = publish(f"{live.svc.rtmp_url}/{key}", flv)
    try:
        sessions = await wait_until(
            lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
            lambda page: page["items"],
            within=15,
        )
        session = sessions["items"][0]
        master_url = f"{live.svc.http_url}/hls/haifeng/studio-1/{session['id']}/master.m3u8"
        async with live.http.get(
            f"{live.svc.http_url}/hls/haifeng/studio-1/live.m3u8", allow_redirects=False
        ) as resp:
            assert resp.status == 302 and resp.headers["Location"].endswith(
                f"/{session['id']}/master.m3u8"
            )
        index = master_url.replace("master.m3u8", "source/index.m3u8")

        async def playlist() -> str:
            async with live.http.get(index) as resp:
                return await resp.text() if resp.status == 200 else ""

        await wait_until(playlist, lambda text: "#EXTINF" in text, within=15)
        probed = await asyncio.to_thread(ffprobe, index)
        assert {s["codec_name"] for s in probed["streams"]} == {"h264", "aac"}
        assert not [c for c in live_children() if c.name.startswith("hls:")], "cut in process"
        state = await wait_until(
            lambda: live.api("GET", f"/api/v1/bases/haifeng/destinations/{dest['id']}"),
            lambda d: d["state"] == "live",
            within=15,
        )
        assert state["stream_key_hint"] == "…0001"
        assert await asyncio.to_thread(encoder.wait, 30) == 0
    finally:
        if encoder.poll() is None:
            encoder.kill()
    ended = await wait_until(
        lambda: live.api("GET", f"/api/v1/bases/haifeng/sessions/{session['id']}"),
        lambda s: s["status"] == "ended",
        within=20,
    )
    assert ended["ended_at"]
    assert await asyncio.to_thread(platform.wait, 30) == 0
    assert video_packets(relayed) == video_packets(flv), "the platform lost frames"
    replay = live.settings.data_dir / "hls/haifeng/studio-1" / str(session["id"]) / "source"
    text = (replay / "replay.m3u8").read_text()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert video_packets(replay / "replay.m3u8") == video_packets(flv), "the recording lost frames"
    events = [d.event for d in await bus.read(STREAM_DOMAIN, "test", "t", count=1000)]
    kinds = [e.type for e in events]
    assert kinds.index("stream.started") < kinds.index("stream.ended")
    stats = [e for e in events if e.type == "ingest.stats"]
    assert stats and stats[0].data["video_codec"] == "avc1" and stats[0].data["fps"] > 0
    assert any(e.type == "destination.state" and e.data["state"] == "live" for e in events)


async def test_wrong_key_is_refused_and_starts_nothing(live: Live, tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=1)
    await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key")
    encoder = publish(f"{live.svc.rtmp_url}/lbk_wrong-key-000000000000", flv, realtime=False)
    code = await asyncio.to_thread(encoder.wait, 30)
    assert code != 0
    assert encoder.stderr is not None and b"Publish denied" in encoder.stderr.read()
    page = await live.api("GET", "/api/v1/bases/haifeng/sessions")
    assert page["items"] == [] and live.svc.registry.rooms == {}


async def test_reconnect_within_grace_continues_the_session(live: Live, tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=3)
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    first = publish(f"{live.svc.rtmp_url}/{key}", flv)
    assert await asyncio.to_thread(first.wait, 30) == 0
    second = publish(f"{live.svc.rtmp_url}/{key}", flv)  # OBS reconnects with the same key
    assert await asyncio.to_thread(second.wait, 30) == 0
    sessions = (await live.api("GET", "/api/v1/bases/haifeng/sessions"))["items"]
    assert len(sessions) == 1, "the reconnect continued the same session"
    room = live.svc.registry.rooms.get(sessions[0]["room_id"])
    assert room is not None and room.generation == 2
    rendition = room.pipeline.renditions[0]
    await wait_until(
        lambda: asyncio.sleep(0, rendition.playlist.segments),
        lambda segs: any(s.discontinuity for s in segs),
        within=15,
    )


async def test_destinations_change_while_live(live: Live, tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "obs.flv", seconds=12, gop=30)
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    encoder = publish(f"{live.svc.rtmp_url}/{key}", flv)
    try:
        page = await wait_until(
            lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
            lambda p: p["items"],
            within=15,
        )
        session = page["items"][0]
        port = free_port()
        relayed = tmp_path / "late.flv"
        platform = platform_listener(port, relayed)
        dest = await live.api("POST", "/api/v1/bases/haifeng/destinations", {
            "session_id": session["id"], "name": "kuaishou", "platform": "kuaishou",
            "url": f"rtmp://127.0.0.1:{port}/live/", "stream_key": "platform-key-0001",
        })  # fmt: skip
        await wait_until(
            lambda: live.api("GET", f"/api/v1/bases/haifeng/destinations/{dest['id']}"),
            lambda d: d["state"] == "live",
            within=15,
        )
        await asyncio.sleep(2)
        await live.api("DELETE", f"/api/v1/bases/haifeng/destinations/{dest['id']}")
        assert await asyncio.to_thread(platform.wait, 30) == 0, "the relay was ended cleanly"
        frames = video_packets(relayed)
        assert 0 < frames < video_packets(flv), "relayed from the middle, and stopped on removal"
        room = live.svc.registry.rooms[session["room_id"]]
        assert not [n for n in room.pipeline.outputs if n.startswith("destination-")]
    finally:
        encoder.kill()
        await asyncio.to_thread(encoder.wait, 10)


async def test_a_crashed_hls_ffmpeg_is_restarted(live: Live, tmp_path: Path) -> None:
    # MP3 audio: ffmpeg cuts this source (H.264 + AAC is cut in process, with no child).
    flv = make_flv(tmp_path / "obs.flv", seconds=10, gop=30, audio="libmp3lame")
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    encoder = publish(f"{live.svc.rtmp_url}/{key}", flv)
    try:
        room = await wait_until(
            lambda: asyncio.sleep(0, next(iter(live.svc.registry.rooms.values()), None)),
            lambda r: r is not None and r.pipeline.renditions[0].playlist.segments,
            within=15,
        )
        assert room is not None
        hls = next(c for c in live_children() if c.name == "hls:hls")
        assert hls.pid is not None
        os.kill(hls.pid, signal.SIGKILL)
        rendition = room.pipeline.renditions[0]
        await wait_until(
            lambda: asyncio.sleep(0, rendition.playlist.segments),
            lambda segs: any(s.discontinuity for s in segs),
            within=20,
        )
        fresh = [c for c in live_children() if c.name == "hls:hls"]
        assert len(fresh) == 1 and fresh[0].pid != hls.pid, "exactly one ffmpeg, a new one"
    finally:
        encoder.kill()
        await asyncio.to_thread(encoder.wait, 10)


async def test_whip_publish_on_the_service_port(live: Live, tmp_path: Path) -> None:
    """FFmpeg's WHIP muxer, as OBS 30 publishes over WebRTC, to the URL of the go-live kit."""
    kit = await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key")
    whip_url = kit["whip"]["url"].replace(
        f"{live.settings.public_host}:{live.settings.http_port}", live.svc.http_url[7:]
    )
    encoder = whip_publish(whip_url, kit["whip"]["bearer_token"])
    try:
        page = await wait_until(
            lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
            lambda p: p["items"],
            within=20,
        )
        index = (
            f"{live.svc.http_url}/hls/haifeng/studio-1/{page['items'][0]['id']}/source/index.m3u8"
        )

        async def playlist() -> str:
            async with live.http.get(index) as resp:
                return await resp.text() if resp.status == 200 else ""

        await wait_until(playlist, lambda text: "#EXTINF" in text, within=20)
        probed = await asyncio.to_thread(ffprobe, index)
        assert {s["codec_name"] for s in probed["streams"]} == {"h264", "aac"}
    finally:
        await asyncio.to_thread(encoder.wait, 30)
        if encoder.poll() is None:
            encoder.kill()


async def test_a_broken_relay_is_kept_after_the_session(live: Live, tmp_path: Path) -> None:
    """The daily report names sessions whose relay broke: ingest keeps each break in
    ``relay_incidents``, though the destination's own state goes back to idle at the end."""
    flv = make_flv(tmp_path / "obs.flv", seconds=6, gop=30)
    room = await live.api("GET", "/api/v1/bases/haifeng/rooms/studio-1")
    dest = await live.api(
        "POST",
        "/api/v1/bases/haifeng/destinations",
        {
            "room_id": room["id"],
            "name": "douyin",
            "platform": "douyin",
            "url": f"rtmp://127.0.0.1:{free_port()}/live/",
            "stream_key": "platform-key-0002",
        },
    )  # fmt: skip  (nothing listens there: the platform is down)
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    encoder = publish(f"{live.svc.rtmp_url}/{key}", flv)
    try:
        page = await wait_until(
            lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
            lambda p: p["items"],
            within=15,
        )
        session_id = page["items"][0]["id"]

        async def incident() -> RelayIncident | None:
            async with live.svc.app[DB_SESSIONS]() as db:
                return await db.get(RelayIncident, (session_id, dest["id"]))

        found = await wait_until(incident, lambda i: i is not None and i.retries >= 1, within=20)
        assert found is not None and not found.failed and found.last_error
    finally:
        encoder.kill()
        await asyncio.to_thread(encoder.wait, 10)
    await wait_until(
        lambda: live.api("GET", f"/api/v1/bases/haifeng/sessions/{session_id}"),
        lambda s: s["status"] == "ended",
        within=20,
    )
    assert (await live.api("GET", f"/api/v1/bases/haifeng/destinations/{dest['id']}"))[
        "state"
    ] == "idle"
    assert await incident() is not None  # still there for the report
