"""WHIP against the running service: HTTP behaviour (RFC 9725), refusals, and real publishers.

Real parts only: the service and its registry on real sockets, a WHIP app beside it, aiortc
as an OBS-like publisher (its offer stripped of candidates, as OBS 30.2+ sends it) and FFmpeg's
own WHIP muxer, with ffprobe checking what comes out.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import pytest
from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from media import FFMPEG, codecs, video_packets
from net import free_port, wait_until
from service_support import live_service, platform_listener

from ingest.whip import WHIP, Timeouts, WhipServer, add_whip_routes
from ingest.whip.sdp import parse_offer
from ingest.whip.session import SessionClosed, WhipSession
from livebase.api.middleware import error_middleware
from livebase.api.state import SETTINGS
from livebase.service import Running
from livebase.settings import Settings

STUN = "stun:stun.example.net:3478"


@dataclass
class Whip:
    svc: Running
    http: aiohttp.ClientSession
    settings: Settings
    url: str  # the WHIP endpoint of haifeng/studio-1
    key: str
    server: WhipServer
    token: str
    seen: list[WhipSession] = field(default_factory=list)

    def endpoint(self, base: str = "haifeng", room: str = "studio-1") -> str:
        return self.url.rsplit("/whip/", 1)[0] + f"/whip/{base}/{room}"

    def session(self, location: str) -> WhipSession:
        session = self.server.sessions[location.rsplit("/", 1)[1]]
        self.seen.append(session)
        return session

    async def stream_key(self, room: str) -> str:
        async with self.http.post(
            f"{self.svc.http_url}/api/v1/bases/haifeng/rooms/{room}/stream-key",
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            assert resp.status < 400, await resp.text()
            key: str = (await resp.json())["stream_key"]
            return key


def whip_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks of aiortc, aioice or the WHIP ingest."""
    left = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = code.co_filename if code is not None else ""
        ours = any(part in where for part in ("/aiortc/", "/aioice/", "/ingest/whip/"))
        if ours and task is not asyncio.current_task() and not task.done():
            left.append(task)
    return left


@pytest.fixture
async def whip(database_url: str, tmp_path: Path) -> AsyncIterator[Whip]:
    env = {"LIVEBASE_RECONNECT_GRACE_SECONDS": "2"}
    async with live_service(database_url, tmp_path, env) as live:
        svc, http, settings, token = live.svc, live.http, live.settings, live.token
        # The routes on an app of their own, as the service will mount them on its own app.
        app = web.Application(middlewares=[error_middleware])
        app[SETTINGS] = settings
        add_whip_routes(
            app, lambda: svc.registry, ice_servers=[STUN], timeouts=Timeouts(connect=4, media=5)
        )
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        whip = Whip(
            svc,
            http,
            settings,
            f"http://127.0.0.1:{port}/whip/haifeng/studio-1",
            "",
            app[WHIP],
            token,
        )
        whip.key = await whip.stream_key("studio-1")
        try:
            yield whip
        finally:
            await runner.cleanup()
        assert whip.server.sessions == {}
        assert all(s.pc.connectionState == "closed" for s in whip.seen)
        await wait_until(lambda: asyncio.sleep(0, whip_tasks()), lambda left: not left, within=5)


# --- an aiortc publisher, as OBS publishes -------------------------------------------------------


def strip_candidates(sdp: str) -> str:
    """An offer as OBS 30.2+ sends it: no candidates, no end-of-candidates, discard address."""
    lines = [
        line
        for line in sdp.splitlines()
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    ]
    text = "\r\n".join(lines) + "\r\n"
    text = re.sub(r"c=IN IP4 \S+", "c=IN IP4 0.0.0.0", text)
    return re.sub(r"m=(audio|video) \d+ ", r"m=\1 9 ", text)


async def publisher_offer(*, vp8_only: bool = False) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    if vp8_only:
        capabilities = RTCRtpSender.getCapabilities("video")
        assert capabilities is not None
        video.setCodecPreferences([c for c in capabilities.codecs if c.mimeType == "video/VP8"])
    await pc.setLocalDescription(await pc.createOffer())
    return pc, strip_candidates(pc.localDescription.sdp)


@dataclass
class Published:
    pc: RTCPeerConnection
    session: WhipSession
    location: str
    headers: Any


async def publish(whip: Whip, key: str | None = None) -> Published:
    pc, offer = await publisher_offer()
    assert "a=candidate" not in offer
    try:
        async with whip.http.post(
            whip.url,
            data=offer,
            headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {key or whip.key}",
            },
        ) as resp:
            assert resp.status == 201, await resp.text()
            answer = await resp.text()
            headers = resp.headers
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    except BaseException:
        await pc.close()
        raise
    location = headers["Location"]
    return Published(pc, whip.session(location), location, headers)


async def frames(session: WhipSession, video: int, audio: int) -> None:
    async def counts() -> tuple[int, int]:
        relay = session.relay
        return (relay.video_frames, relay.audio_frames) if relay else (0, 0)

    await wait_until(counts, lambda c: c[0] >= video and c[1] >= audio, within=20)


def error_of(body: dict[str, Any], status: int, code: str) -> str:
    assert set(body) == {"error"}
    error = body["error"]
    assert (error["status"], error["code"], error["fields"]) == (status, code, [])
    message: str = error["message"]
    assert message
    return message


# --- HTTP --------------------------------------------------------------------------------------


async def test_options_advertises_sdp_cors_and_ice_servers(whip: Whip) -> None:
    async with whip.http.options(whip.url) as resp:
        assert resp.status == 204
        assert resp.headers["Accept-Post"] == "application/sdp"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
        assert "Location" in resp.headers["Access-Control-Expose-Headers"]
        assert resp.headers.getall("Link") == [f'<{STUN}>; rel="ice-server"']
    async with whip.http.options(whip.url + "/any-session") as resp:
        assert resp.status == 204
        assert resp.headers["Accept-Patch"] == "application/trickle-ice-sdpfrag"
        assert "DELETE" in resp.headers["Access-Control-Allow-Methods"]


async def test_refusals_use_the_envelope_and_start_nothing(whip: Whip) -> None:
    pc, offer = await publisher_offer()
    _, vp8 = await publisher_offer(vp8_only=True)
    await pc.close()
    other_room = await whip.stream_key("studio-2")
    sdp = "application/sdp"
    cases: list[tuple[str, dict[str, str], bytes | str, int, str, str]] = [
        (whip.url, {"Content-Type": sdp}, offer, 401, "unauthenticated", "Bearer"),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": "Bearer lbk_wrong-key-000000000000"},
            offer,
            401,
            "unauthenticated",
            "does not open room haifeng/studio-1",
        ),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": f"Bearer {other_room}"},
            offer,
            401,
            "unauthenticated",
            "does not open room",
        ),
        (
            whip.url,
            {"Content-Type": "text/plain", "Authorization": f"Bearer {whip.key}"},
            offer,
            415,
            "unsupported_media_type",
            "application/sdp",
        ),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": f"Bearer {whip.key}"},
            '{"sdp": "v=0"}',
            400,
            "invalid_sdp",
            "not SDP",
        ),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": f"Bearer {whip.key}"},
            b"v=0\r\n\xff\xfe",
            400,
            "invalid_sdp",
            "UTF-8",
        ),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": f"Bearer {whip.key}"},
            vp8,
            422,
            "no_usable_codec",
            "offer H.264 with packetization-mode=1; offered vp8",
        ),
        (
            whip.url,
            {"Content-Type": sdp, "Authorization": f"Bearer {whip.key}"},
            "v=0\r\n" + "a=x\r\n" * 20000,
            413,
            "payload_too_large",
            "at most",
        ),
    ]
    for url, headers, body, status, code, message in cases:
        async with whip.http.post(url, data=body, headers=headers) as resp:
            assert resp.status == status, await resp.text()
            assert message in error_of(await resp.json(), status, code)
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            if status == 401:
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert whip.server.sessions == {} and whip.svc.registry.rooms == {}
    async with whip.http.delete(
        whip.url + "/no-such-session", headers={"Authorization": f"Bearer {whip.key}"}
    ) as resp:
        assert resp.status == 404
        error_of(await resp.json(), 404, "not_found")


# --- publishing --------------------------------------------------------------------------------


async def test_candidate_less_offer_connects_and_relays(whip: Whip) -> None:
    """OBS's case: aioice must learn the publisher from its checks (peer-reflexive)."""
    published = await publish(whip)
    try:
        headers = published.headers
        assert headers["Content-Type"] == "application/sdp"
        assert re.fullmatch(r"/whip/haifeng/studio-1/[\w-]{20,}", published.location)
        assert re.fullmatch(r'"[0-9a-f]{16}"', headers["ETag"])
        assert headers.getall("Link") == [f'<{STUN}>; rel="ice-server"']
        assert published.session.offer.candidates == 0
        await frames(published.session, video=30, audio=40)
        room = next(iter(whip.svc.registry.rooms.values()))
        assert room.protocol == "whip" and room.publisher is published.session
        assert room.pipeline.fanout.source.video_codec == "avc1"
        assert room.pipeline.fanout.source.audio_codec == "mp4a"
        index = whip.settings.data_dir / "hls" / room.session.hls_dir / "source" / "index.m3u8"
        await wait_until(
            lambda: asyncio.sleep(0, index.exists() and "#EXTINF" in index.read_text()),
            bool,
            within=20,
        )
        assert await asyncio.to_thread(codecs, index) == {"h264", "aac"}
    finally:
        await published.pc.close()


async def test_patch_trickles_and_refuses_restarts_as_rfc_9725_asks(whip: Whip) -> None:
    published = await publish(whip)
    try:
        session, url = published.session, whip.endpoint() + "/" + published.location.split("/")[-1]
        frag = "application/trickle-ice-sdpfrag"
        auth = {"Authorization": f"Bearer {whip.key}"}
        good = (
            f"a=ice-ufrag:{session.offer.ice_ufrag}\r\na=ice-pwd:{session.offer.ice_pwd}\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
            "a=candidate:1 1 udp 2122260223 192.0.2.77 61764 typ host\r\n"
            "a=candidate:2 1 tcp 1518280447 192.0.2.77 9 typ host tcptype active\r\n"
            "a=candidate:broken\r\na=end-of-candidates\r\n"
        )
        restart = good.replace(session.offer.ice_ufrag, "NEWU")
        cases = [
            ({**auth, "Content-Type": "text/plain", "If-Match": session.etag}, good, 415),
            ({**auth, "Content-Type": frag}, good, 428),
            ({**auth, "Content-Type": frag, "If-Match": '"stale"'}, good, 412),
            ({**auth, "Content-Type": frag, "If-Match": "*"}, restart, 422),
            ({**auth, "Content-Type": frag, "If-Match": session.etag}, restart, 422),
            ({**auth, "Content-Type": frag, "If-Match": session.etag}, "not a fragment", 400),
            ({"Content-Type": frag, "If-Match": session.etag}, good, 401),
            ({**auth, "Content-Type": frag, "If-Match": session.etag}, good, 204),
        ]
        for headers, body, status in cases:
            async with whip.http.patch(url, data=body, headers=headers) as resp:
                assert resp.status == status, (headers, await resp.text())
                if status == 204:
                    assert await resp.read() == b""
                elif status == 415:
                    assert resp.headers["Accept-Patch"] == frag
        await frames(session, video=10, audio=10)  # trickling did not disturb the publish
    finally:
        await published.pc.close()


async def test_delete_ends_the_publish_and_closes_the_peer_connection(whip: Whip) -> None:
    published = await publish(whip)
    try:
        await frames(published.session, video=5, audio=5)
        url = whip.endpoint() + "/" + published.location.split("/")[-1]
        async with whip.http.delete(url, headers={"Authorization": "Bearer nope"}) as resp:
            assert resp.status == 401
        async with whip.http.delete(
            whip.endpoint(room="studio-2") + "/" + published.location.split("/")[-1],
            headers={"Authorization": f"Bearer {whip.key}"},
        ) as resp:
            assert resp.status == 404, "a session is only reachable under its own room"
        async with whip.http.delete(url, headers={"Authorization": f"Bearer {whip.key}"}) as resp:
            assert resp.status == 200
        assert published.session.end_reason == "WHIP DELETE"
        assert published.session.pc.connectionState == "closed"
        assert whip.server.sessions == {}
        room = next(iter(whip.svc.registry.rooms.values()))
        assert room.publisher is None and room.grace is not None, "waiting for a reconnect"
        async with whip.http.delete(url, headers={"Authorization": f"Bearer {whip.key}"}) as resp:
            assert resp.status == 404
    finally:
        await published.pc.close()


async def test_a_new_publish_takes_over_and_closes_the_old_connection(whip: Whip) -> None:
    first = await publish(whip)
    second: Published | None = None
    try:
        await frames(first.session, video=5, audio=5)
        second = await publish(whip)
        await wait_until(
            lambda: asyncio.sleep(0, first.session.pc.connectionState), "closed".__eq__
        )
        assert first.session.end_reason == "taken over by a new publish"
        await frames(second.session, video=5, audio=5)
        room = next(iter(whip.svc.registry.rooms.values()))
        assert room.generation == 2 and room.publisher is second.session
    finally:
        await first.pc.close()
        if second is not None:
            await second.pc.close()


async def test_a_publisher_that_never_connects_times_out(whip: Whip) -> None:
    """aioice would wait for remote candidates forever; the session's timeout ends it."""
    pc, offer = await publisher_offer()
    await pc.close()  # the publisher vanishes after sending its offer
    async with whip.http.post(
        whip.url,
        data=offer,
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {whip.key}"},
    ) as resp:
        assert resp.status == 201
        session = whip.session(resp.headers["Location"])
    await wait_until(lambda: asyncio.sleep(0, session.end_reason), bool, within=10)
    assert session.end_reason == "no ICE/DTLS connection within 4 s"
    await wait_until(lambda: asyncio.sleep(0, whip.server.sessions), lambda s: not s)
    assert session.pc.connectionState == "closed"


async def test_the_publisher_hanging_up_ends_the_publish(whip: Whip) -> None:
    published = await publish(whip)
    await frames(published.session, video=5, audio=5)
    await published.pc.close()  # DTLS close_notify, as a publisher that quits sends
    await wait_until(lambda: asyncio.sleep(0, published.session.end_reason), bool, within=10)
    assert published.session.end_reason == "the publisher closed the connection"


async def test_close_all_ends_every_publish(whip: Whip) -> None:
    published = await publish(whip)
    try:
        await frames(published.session, video=5, audio=5)
        await whip.server.close_all()
        assert published.session.end_reason == "the service is stopping"
        assert published.session.pc.connectionState == "closed"
        assert whip.server.sessions == {}
    finally:
        await published.pc.close()


class RecordingSink:
    def __init__(self) -> None:
        self.ends: list[str] = []

    def push(self, kind: int, timestamp: int, payload: bytes) -> None:
        raise AssertionError("no media expected")

    async def on_end(self, reason: str) -> None:
        self.ends.append(reason)


async def test_a_session_taken_over_before_it_answers_tells_its_sink_once() -> None:
    pc, offer = await publisher_offer()
    await pc.close()
    session = WhipSession(1, ("haifeng", "studio-1"), "test", "key", parse_offer(offer))
    await session.apply_offer(offer)
    session.close("taken over by a new publish")
    sink = RecordingSink()
    with pytest.raises(SessionClosed):
        await session.answer(sink)
    assert sink.ends == ["taken over by a new publish"]
    assert session.pc.connectionState == "closed"


# --- FFmpeg's WHIP muxer -----------------------------------------------------------------------


async def ffmpeg_whip(whip: Whip, seconds: int, fps: int) -> asyncio.subprocess.Process:
    """FFmpeg's own WHIP muxer publishing H.264 + Opus to haifeng/studio-1 for ``seconds``."""
    return await asyncio.create_subprocess_exec(
        *(FFMPEG, "-hide_banner", "-loglevel", "warning", "-re"),
        *("-f", "lavfi", "-i", f"testsrc=size=640x360:rate={fps}"),
        *("-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds)),
        *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-profile:v", "baseline", "-bf", "0"),
        *("-g", "60", "-c:a", "libopus", "-ar", "48000", "-ac", "2"),
        *("-f", "whip", "-authorization", whip.key, whip.url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def ffmpeg_session(whip: Whip) -> WhipSession:
    session = await wait_until(
        lambda: asyncio.sleep(0, next(iter(whip.server.sessions.values()), None)),
        lambda s: s is not None,
        within=15,
    )
    assert session is not None
    whip.seen.append(session)
    return session


async def test_ffmpeg_publish_outlives_aioice_consent_expiry(
    whip: Whip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFmpeg's muxer answers no consent checks: with aioice checking every 0.2 s its consent
    would expire after about 1.2 s; the publish must go on until FFmpeg ends it."""
    monkeypatch.setattr(aioice.ice, "CONSENT_INTERVAL", 0.2)
    encoder = await ffmpeg_whip(whip, seconds=4, fps=30)
    try:
        session = await ffmpeg_session(whip)
        assert await asyncio.wait_for(encoder.wait(), 40) == 0
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()
    assert session.end_reason == "WHIP DELETE"
    assert session.relay is not None and session.relay.video_frames >= 4 * 30 - 3
    await wait_until(lambda: asyncio.sleep(0, whip.svc.registry.rooms), lambda r: not r, within=20)


async def test_ffmpeg_whip_muxer_publishes_to_hls_and_a_platform(
    whip: Whip, tmp_path: Path
) -> None:
    seconds, fps = 6, 30
    platform_port = free_port()
    relayed = tmp_path / "platform.flv"
    platform = platform_listener(platform_port, relayed)
    async with whip.http.get(
        f"{whip.svc.http_url}/api/v1/bases/haifeng/rooms/studio-1",
        headers={"Authorization": f"Bearer {whip.token}"},
    ) as resp:
        room_id = (await resp.json())["id"]
    async with whip.http.post(
        f"{whip.svc.http_url}/api/v1/bases/haifeng/destinations",
        json={
            "room_id": room_id,
            "name": "douyin",
            "platform": "douyin",
            "url": f"rtmp://127.0.0.1:{platform_port}/live/",
            "stream_key": "platform-key-0001",
        },
        headers={"Authorization": f"Bearer {whip.token}"},
    ) as resp:
        assert resp.status == 201, await resp.text()
    encoder = await ffmpeg_whip(whip, seconds, fps)
    try:
        session = await ffmpeg_session(whip)
        await frames(session, video=30, audio=30)
        # Bad requests for the same room meanwhile are refused and disturb nothing.
        _, vp8 = await publisher_offer(vp8_only=True)
        for key, body in ((whip.key, vp8), ("wrong", vp8), (whip.key, "not sdp")):
            async with whip.http.post(
                whip.url,
                data=body,
                headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
            ) as resp:
                assert resp.status in (400, 401, 422)
        assert list(whip.server.sessions.values()) == [session]
        assert await asyncio.wait_for(encoder.wait(), seconds + 30) == 0
    finally:
        if encoder.returncode is None:
            encoder.kill()
            await encoder.wait()
    assert session.end_reason == "WHIP DELETE", "FFmpeg deletes its session when it ends"
    room = next(iter(whip.svc.registry.rooms.values()))
    assert room.generation == 1, "the refused requests took nothing over"
    await wait_until(lambda: asyncio.sleep(0, whip.svc.registry.rooms), lambda r: not r, within=20)
    replay = whip.settings.data_dir / "hls" / room.session.hls_dir / "source" / "replay.m3u8"
    assert replay.read_text().rstrip().endswith("#EXT-X-ENDLIST")
    assert await asyncio.to_thread(codecs, replay) == {"h264", "aac"}
    recorded = await asyncio.to_thread(video_packets, replay)
    # The jitter buffer holds the last picture until a next one that never comes.
    assert seconds * fps - 3 <= recorded <= seconds * fps, recorded
    assert await asyncio.to_thread(platform.wait, 30) == 0
    assert await asyncio.to_thread(codecs, relayed) == {"h264", "aac"}
    assert await asyncio.to_thread(video_packets, relayed) == recorded
    stderr = (await encoder.stderr.read()).decode() if encoder.stderr else ""
    assert "Could not" not in stderr, stderr
