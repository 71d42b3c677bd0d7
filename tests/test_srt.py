"""SRT ingest against real peers on 127.0.0.1: ffmpeg publishing MPEG-TS as OBS and Larix do,
bare libsrt callers for what ffmpeg will not do, the running service with its real registry
and database, and a fake registry (``srt_support.Registry``) where only the server is tested.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from media import ffprobe, make_flv, video_packets
from net import wait_until
from service_support import Live, live_service
from srt_support import Caller, Registry, child_command_lines, finished, publish

from ingest.flv import TAG_VIDEO
from ingest.process import live_children
from ingest.srt import SrtError, SrtServer
from ingest.srt.streamid import AccessReject

KEY = "lbk_9f8e7d6c5b4a39210fed"
OTHER = "lbk_0a1b2c3d4e5f6a7b8c9d"


# --- against the running service ----------------------------------------------------------


@pytest.fixture
async def live(database_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    env = {"LIVEBASE_RECONNECT_GRACE_SECONDS": "2"}
    async with live_service(database_url, tmp_path, env) as live:
        yield live


async def test_srt_publish_goes_live_with_hls_and_a_recording(live: Live, tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "larix.flv", seconds=4, gop=30)
    key = (await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key"))["stream_key"]
    registry = live.svc.registry
    async with SrtServer(registry, 0, ffmpeg=live.settings.ffmpeg_path()) as srt:
        encoder = publish(srt.port, f"#!::r=live/{key},m=publish", flv)
        try:
            page = await wait_until(
                lambda: live.api("GET", "/api/v1/bases/haifeng/sessions?status=live"),
                lambda page: page["items"],
                within=15,
            )
            session = page["items"][0]
            room = registry.rooms[session["room_id"]]
            assert room.protocol == "srt" and room.publisher is not None
            assert room.publisher.peer.startswith("127.0.0.1:")
            lines = child_command_lines()
            assert lines and not any(key.encode() in line for line in lines)
            index = f"{live.svc.http_url}/hls/haifeng/studio-1/{session['id']}/source/index.m3u8"

            async def playlist() -> str:
                async with live.http.get(index) as resp:
                    return await resp.text() if resp.status == 200 else ""

            await wait_until(playlist, lambda text: "#EXTINF" in text, within=20)
            probed = await asyncio.to_thread(ffprobe, index)
            assert {s["codec_name"] for s in probed["streams"]} == {"h264", "aac"}
            assert await asyncio.to_thread(finished, encoder) == 0
        finally:
            if encoder.poll() is None:
                encoder.kill()
        ended = await wait_until(
            lambda: live.api("GET", f"/api/v1/bases/haifeng/sessions/{session['id']}"),
            lambda s: s["status"] == "ended",
            within=20,
        )
        assert ended["ended_at"]
    replay = live.settings.data_dir / "hls/haifeng/studio-1" / str(session["id"]) / "source"
    # An SRT caller that stops drops what the listener has not played out yet (its latency,
    # 120 ms here): all but the last few frames arrive.
    assert video_packets(replay / "replay.m3u8") >= video_packets(flv) - 8


async def test_wrong_key_is_refused_and_starts_nothing(
    live: Live, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    flv = make_flv(tmp_path / "obs.flv", seconds=2)
    await live.api("POST", "/api/v1/bases/haifeng/rooms/studio-1/stream-key")
    wrong = "lbk_wrong-key-00000000xyzw"
    async with SrtServer(live.svc.registry, 0) as srt:
        encoder = publish(srt.port, f"live/{wrong}", flv)
        assert await asyncio.to_thread(finished, encoder, 10) != 0, "the encoder was cut off"
    page = await live.api("GET", "/api/v1/bases/haifeng/sessions")
    assert page["items"] == [] and live.svc.registry.rooms == {}
    assert "opens no room" in caplog.text and "…xyzw" in caplog.text
    assert wrong not in caplog.text


# --- the server alone, with a fake registry ------------------------------------------------


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SrtServer, Registry]]:
    options = getattr(request, "param", {})
    registry = Registry({KEY, OTHER})
    async with SrtServer(registry, 0, idle_timeout=1.5, **options) as srt:
        yield srt, registry
    assert live_children() == []


async def connected(port: int, stream_id: str) -> Caller:
    caller = Caller(port, stream_id)
    await asyncio.to_thread(caller.connect)
    return caller


@pytest.mark.parametrize(
    ("stream_id", "reject"),
    [
        (f"#!::r=live/{KEY},m=request", AccessReject.BAD_MODE),
        (f"#!::r=live/{KEY},t=file", AccessReject.NOTSUP_MEDIA),
        ("", AccessReject.BAD_REQUEST),
        (f"rtmp/app/{KEY}", AccessReject.BAD_REQUEST),
    ],
)
async def test_bad_stream_ids_are_refused_in_the_handshake(
    server: tuple[SrtServer, Registry], stream_id: str, reject: int
) -> None:
    srt, registry = server
    caller = Caller(srt.port, stream_id)
    try:
        with pytest.raises(SrtError) as caught:
            await asyncio.to_thread(caller.connect)
        assert caught.value.reject == reject
    finally:
        caller.close()
    assert registry.begins == []


async def test_an_unknown_key_is_disconnected_at_once(
    server: tuple[SrtServer, Registry], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    srt, registry = server
    caller = await connected(srt.port, "live/lbk_not-a-room-key-9876")
    try:
        assert await asyncio.to_thread(caller.broken_within, 2.0)
    finally:
        caller.close()
    assert registry.begins == [("lbk_not-a-room-key-9876", "srt", registry.begins[0][2], None)]
    assert "…9876" in caplog.text and "not-a-room-key" not in caplog.text


async def test_room_named_in_the_stream_id_is_passed_on(server: tuple[SrtServer, Registry]) -> None:
    srt, registry = server
    caller = await connected(srt.port, f"#!::r=haifeng/studio-1,s={KEY},m=publish")
    try:
        await wait_until(lambda: asyncio.sleep(0, registry.begins), bool, within=5)
        assert registry.begins[0][3] == ("haifeng", "studio-1")
    finally:
        caller.close()


async def test_a_silent_caller_is_ended_and_disturbs_no_other(
    server: tuple[SrtServer, Registry], tmp_path: Path
) -> None:
    srt, registry = server
    flv = make_flv(tmp_path / "obs.flv", seconds=3, gop=30)
    silent = await connected(srt.port, KEY)
    encoder = publish(srt.port, f"#!::r=live/{OTHER},m=publish", flv)
    stray = Caller(srt.port, "live/lbk_wrong-wrong-wrong")
    try:
        # Not SRT at all, and a caller with a wrong key, while both publishes run.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for size in (1, 16, 1500):
                udp.sendto(b"\xff" * size, ("127.0.0.1", srt.port))
        await asyncio.to_thread(stray.connect)
        await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(KEY)), bool, within=5)
        sink = registry.sinks[KEY][0]
        async with asyncio.timeout(10):
            await sink.ended.wait()
        assert sink.ends == ["no data for 1.5 s"] and sink.tags == []
        assert await asyncio.to_thread(silent.broken_within, 2.0)
        await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(OTHER)), bool, within=5)
        assert not any(OTHER.encode() in line for line in child_command_lines())
        assert await asyncio.to_thread(finished, encoder) == 0
        other = registry.sinks[OTHER][0]
        async with asyncio.timeout(10):
            await other.ended.wait()
        # All but what the listener had not played out when the caller left.
        assert other.count(TAG_VIDEO) >= 90 - 8
        assert other.ends[0].startswith("the connection ended")
    finally:
        for caller in (silent, stray):
            caller.close()
        if encoder.poll() is None:
            encoder.kill()


async def test_a_new_publish_takes_over(server: tuple[SrtServer, Registry]) -> None:
    srt, registry = server
    first = await connected(srt.port, KEY)
    second: Caller | None = None
    try:
        await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(KEY)), bool, within=5)
        second = await connected(srt.port, f"live/{KEY}")
        sink = registry.sinks[KEY][0]
        async with asyncio.timeout(5):
            await sink.ended.wait()
        assert sink.ends == ["taken over by a new publish"]
        assert await asyncio.to_thread(first.broken_within, 2.0)
        assert len(srt.connections) == 1
    finally:
        first.close()
        if second is not None:
            second.close()


@pytest.mark.parametrize("server", [{"max_connections": 1}], indirect=True)
async def test_callers_beyond_the_limit_are_refused(server: tuple[SrtServer, Registry]) -> None:
    srt, _ = server
    first = await connected(srt.port, KEY)
    extra = Caller(srt.port, OTHER)
    try:
        await wait_until(lambda: asyncio.sleep(0, srt.connections), bool, within=5)
        with pytest.raises(SrtError) as caught:
            await asyncio.to_thread(extra.connect)
        assert caught.value.reject == AccessReject.OVERLOAD
    finally:
        first.close()
        extra.close()


async def test_stop_ends_every_publish_and_its_ffmpeg(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    registry = Registry({KEY})
    srt = SrtServer(registry, 0)
    await srt.start()
    caller = await connected(srt.port, KEY)
    try:
        await wait_until(lambda: asyncio.sleep(0, live_children()), bool, within=5)
        await srt.stop()
        assert registry.sinks[KEY][0].ends == ["the server is stopping"]
        assert live_children() == [] and srt.connections == []
        assert await asyncio.to_thread(caller.broken_within, 2.0)
    finally:
        caller.close()
        await srt.stop()


async def test_a_passphrase_on_the_server_is_required(tmp_path: Path) -> None:
    registry = Registry({KEY})
    async with SrtServer(registry, 0, passphrase="correct-horse-battery") as srt:
        for passphrase, reject in (("", 11), ("wrong-horse-battery", 10)):
            caller = Caller(srt.port, KEY, passphrase)
            try:
                with pytest.raises(SrtError) as caught:
                    await asyncio.to_thread(caller.connect)
                assert caught.value.reject == reject  # SRT_REJ_UNSECURE, SRT_REJ_BADSECRET
            finally:
                caller.close()
        caller = Caller(srt.port, KEY, "correct-horse-battery")
        try:
            await asyncio.to_thread(caller.connect)
            await wait_until(lambda: asyncio.sleep(0, registry.sinks.get(KEY)), bool, within=5)
        finally:
            caller.close()
