"""The RTMP server on 127.0.0.1 with real ffmpeg publishers and hostile raw sockets.

The core's authority and sinks are fakes made of callables, as the core is not written yet.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from ingest.flv import (
    encode_tag,
    file_header,
    message_to_tag,
    parse_audio_tag,
    parse_video_tag,
)
from ingest.rtmp import messages as msg
from ingest.rtmp.amf0 import AMFValue, decode_all
from ingest.rtmp.chunk import ChunkReader, ChunkWriter, Message
from ingest.rtmp.handshake import HANDSHAKE_SIZE
from ingest.rtmp.interfaces import Publisher, PublishGrant, PublishRequest
from ingest.rtmp.server import RtmpServer, RtmpServerConfig

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
KEY = "abcd1234"
CONFIG = RtmpServerConfig(
    host="127.0.0.1",
    port=0,
    handshake_timeout=0.5,
    idle_timeout=5.0,
    publish_timeout=3.0,
    refusal_delay=0.05,
)
H264 = ("-c:v", "libx264", "-g", "60", "-c:a", "aac")


@dataclass
class Sink:
    metadata: list[dict[str, AMFValue]] = field(default_factory=list)
    media: list[Message] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    on_message: Callable[[Message], Any] | None = None

    async def on_metadata(self, metadata: Any) -> None:
        self.metadata.append(dict(metadata))

    async def on_media(self, message: Message) -> None:
        if self.on_message is not None:
            await self.on_message(message)
        self.media.append(message)
        self.flowing.set()

    async def on_end(self, reason: str) -> None:
        self.ends.append(reason)
        self.ended.set()

    def of_type(self, type_id: int) -> list[Message]:
        return [m for m in self.media if m.type_id == type_id]


@dataclass
class Authority:
    """Grants whatever `decide` returns a sink for; records every request."""

    decide: Callable[[PublishRequest], Sink | None]
    requests: list[PublishRequest] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    granted: asyncio.Event = field(default_factory=asyncio.Event)

    async def authorize_publish(self, request: PublishRequest) -> PublishGrant | None:
        self.requests.append(request)
        sink = self.decide(request)
        if sink is None:
            return None
        self.sinks.append(sink)
        self.granted.set()
        return PublishGrant(sink, label=f"room-{len(self.sinks)}")


def key_is(key: str) -> Callable[[PublishRequest], Sink | None]:
    return lambda request: Sink() if request.stream_key == key else None


@asynccontextmanager
async def serving(authority: Authority, **overrides: Any) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(authority, replace(CONFIG, **overrides))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def ffmpeg_publish(
    url: str,
    *,
    seconds: float = 2,
    codec: Sequence[str] = H264,
    extra: Sequence[str] = (),
    realtime: bool = False,
) -> tuple[int, str]:
    re = ("-re",) if realtime else ()
    proc = await asyncio.create_subprocess_exec(
        FFMPEG,
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        *(*re, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"),
        *(*re, "-f", "lavfi", "-i", "sine"),
        *("-t", str(seconds), *codec, *extra, "-f", "flv", url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode(errors="replace")


def decoded_video_frames(path: Path) -> int:
    result = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framecrc", "-"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith(b"#"))


class RawClient:
    """Just enough of an RTMP client to misbehave precisely."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.chunks = ChunkWriter()
        self.incoming = ChunkReader()

    @classmethod
    async def connect(cls, server: RtmpServer, handshake: bool = True) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        client = cls(reader, writer)
        if handshake:
            writer.write(b"\x03" + bytes(HANDSHAKE_SIZE))
            s0s1s2 = await reader.readexactly(1 + 2 * HANDSHAKE_SIZE)
            writer.write(s0s1s2[1 : 1 + HANDSHAKE_SIZE])
        return client

    def send(self, *messages: Message, chunk_stream_id: int = 3) -> None:
        for message in messages:
            self.writer.write(self.chunks.write(message, chunk_stream_id))

    async def until_closed(self) -> list[Message]:
        """Every message the server sent before it closed the connection."""
        received: list[Message] = []
        async with asyncio.timeout(5):
            # A reset counts as closed: the server aborts connections that broke the protocol.
            with suppress(ConnectionResetError):
                while data := await self.reader.read(65536):
                    received += self.incoming.feed(data)
        self.writer.close()
        return received

    async def raw_until_closed(self) -> bytes:
        received = bytearray()
        async with asyncio.timeout(5):
            with suppress(ConnectionResetError):
                while data := await self.reader.read(65536):
                    received += data
        self.writer.close()
        return bytes(received)

    def publish(self, app: str, name: str) -> None:
        self.send(msg.command("connect", 1.0, {"app": app, "tcUrl": f"rtmp://x/{app}"}))
        self.send(msg.command("createStream", 2.0, None))
        self.send(msg.command("publish", 0.0, None, name, "live", stream_id=1))


def statuses(messages: list[Message]) -> list[tuple[str, str, str]]:
    found = []
    for message in messages:
        if message.type_id == 20:
            values = decode_all(message.payload)
            info = values[3] if len(values) > 3 else None
            if values[0] == "onStatus" and isinstance(info, dict):
                found.append((str(info["level"]), str(info["code"]), str(info["description"])))
    return found


def rtmp_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "ingest.rtmp")


@pytest.fixture(autouse=True)
def _capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ingest.rtmp")


async def test_correct_key_publishes_and_the_media_makes_a_playable_flv(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        port = server.port
        code, stderr = await ffmpeg_publish(f"rtmp://127.0.0.1:{port}/live/{KEY}")
        assert code == 0, stderr
        (sink,) = authority.sinks
        await asyncio.wait_for(sink.ended.wait(), 5)
    (request,) = authority.requests
    assert (request.app, request.stream_key, request.query) == ("live", KEY, "")
    assert request.peer.startswith("127.0.0.1:")
    assert request.encoder.startswith("FMLE/3.0 (compatible; Lavf")
    assert request.tc_url == f"rtmp://127.0.0.1:{port}/live"
    assert sink.ends == ["encoder sent FCUnpublish"]
    assert sink.metadata[0]["width"] == 320.0 and sink.metadata[0]["videocodecid"] == 7.0

    video = [parse_video_tag(m.payload) for m in sink.of_type(9)]
    assert video[0].codec == "avc1" and video[0].is_sequence_header
    assert any(v.is_keyframe for v in video)
    assert len(video) == 62
    audio = [parse_audio_tag(m.payload) for m in sink.of_type(8)]
    assert audio[0].codec == "mp4a" and audio[0].is_sequence_header
    (data,) = sink.of_type(18)
    assert decode_all(data.payload)[0] == "onMetaData"  # @setDataFrame stripped
    stamps = [m.timestamp for m in sink.of_type(9)]
    assert stamps == sorted(stamps)

    path = tmp_path / "out.flv"
    tags = [message_to_tag(m) for m in sink.media]
    path.write_bytes(file_header() + b"".join(t for t in tags if t is not None))
    assert decoded_video_frames(path) == 60
    assert KEY not in rtmp_log(caplog)
    assert "publishing live/… as room-1" in rtmp_log(caplog)


@pytest.mark.parametrize(
    ("url_tail", "extra", "query"),
    [
        # OBS with the whole URL as "Server" and an empty "Stream Key" field.
        ("live", ("-rtmp_app", f"live/{KEY}", "-rtmp_playpath", ""), ""),
        (f"live/{KEY}?token=t1", (), "token=t1"),
    ],
)
async def test_key_in_app_or_with_a_query_string(
    url_tail: str, extra: tuple[str, ...], query: str
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        url = f"rtmp://127.0.0.1:{server.port}/{url_tail}"
        code, stderr = await ffmpeg_publish(url, seconds=0.5, extra=extra)
        assert code == 0, stderr
        await asyncio.wait_for(authority.sinks[0].ended.wait(), 5)
    (request,) = authority.requests
    assert (request.app, request.stream_key, request.query) == ("live", KEY, query)
    assert authority.sinks[0].of_type(9)


async def test_enhanced_rtmp_hevc_passes_through() -> None:
    authority = Authority(key_is(KEY))
    hevc = ("-c:v", "libx265", "-x265-params", "log-level=error", "-g", "30", "-c:a", "aac")
    async with serving(authority) as server:
        url = f"rtmp://127.0.0.1:{server.port}/live/{KEY}"
        code, stderr = await ffmpeg_publish(url, seconds=1, codec=hevc)
        assert code == 0, stderr
        await asyncio.wait_for(authority.sinks[0].ended.wait(), 5)
    video = [parse_video_tag(m.payload) for m in authority.sinks[0].of_type(9)]
    assert video[0].codec == "hvc1" and video[0].enhanced and video[0].is_sequence_header
    assert sum(v.is_keyframe for v in video) == 1


async def test_wrong_key_is_refused_and_nothing_reaches_a_sink(
    caplog: pytest.LogCaptureFixture,
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        code, stderr = await ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/live/wrongkey999")
    assert code != 0
    assert "Server error: Publish denied: unknown or revoked stream key." in stderr
    assert len(authority.requests) == 1 and authority.sinks == []
    log = rtmp_log(caplog)
    assert "publish refused (NetStream.Publish.Denied)" in log
    assert "wrongkey999" not in log


async def test_unknown_app_is_refused_without_asking_the_authority() -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        code, stderr = await ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/other/{KEY}")
    assert code != 0
    assert "Server error: Unknown application 'other'." in stderr
    assert authority.requests == []


@pytest.mark.parametrize(
    ("send", "reply_size", "log_line"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, "unsupported RTMP version 0x47 in C0"),
        (b"\x03" + bytes(700), 0, "handshake timed out after 0.5 s (waiting for C0+C1, 701 bytes"),
        (b"", 0, "handshake timed out after 0.5 s (waiting for C0+C1, 0 bytes"),
        (b"\x03" + bytes(1536), 3073, "handshake timed out after 0.5 s (waiting for C2, 0 bytes"),
        (b"\x03" + bytes(3072) + b"\xff" * 64, 3073, "fmt 3 chunk on new chunk stream 63"),
    ],
)
async def test_garbage_and_stalled_handshakes_are_dropped_while_a_publish_flows(
    send: bytes, reply_size: int, log_line: str, caplog: pytest.LogCaptureFixture
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        url = f"rtmp://127.0.0.1:{server.port}/live/{KEY}"
        publish = asyncio.create_task(ffmpeg_publish(url, seconds=2, realtime=True))
        try:
            await asyncio.wait_for(authority.granted.wait(), 10)
            sink = authority.sinks[0]
            bad = await RawClient.connect(server, handshake=False)
            bad.writer.write(send)
            assert len(await bad.raw_until_closed()) == reply_size
            at_close = len(sink.media)
            code, stderr = await publish
            # The encoder's end, not the server's shutdown, ends the publish: so the sink has
            # everything (media is read every few milliseconds, not byte by byte).
            await asyncio.wait_for(sink.ended.wait(), 5)
            assert len(sink.media) > at_close
        finally:
            publish.cancel()
            with suppress(asyncio.CancelledError):
                await publish
    assert code == 0, stderr
    assert len(sink.of_type(9)) == 62
    assert log_line in rtmp_log(caplog)


@pytest.mark.parametrize(
    ("messages", "log_line"),
    [
        ([msg.set_chunk_size(0x7FFFFFFF)], "Set Chunk Size refused: chunk size 2147483647 out of"),
        ([Message(20, 0, 0, b"\x02\x00\x07connect\x42")], "malformed command: unknown AMF0 type"),
        ([msg.command("publish", 0.0, None, KEY)], "protocol error: 'publish' before 'connect'"),
        (
            [Message(9, 1, 0, b"\x17")] * 3 + [msg.command("connect", 1.0, "x")],
            "'connect' without a command object",
        ),
    ],
)
async def test_protocol_violations_close_only_that_connection(
    messages: list[Message], log_line: str, caplog: pytest.LogCaptureFixture
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        client = await RawClient.connect(server)
        client.send(*messages)
        await client.until_closed()
    assert log_line in rtmp_log(caplog)
    assert authority.requests == []


@pytest.mark.parametrize(
    ("app", "name", "expected"),
    [
        ("live", "", ("error", "NetStream.Publish.BadName", "missing stream key")),
        ("live", "a b", ("error", "NetStream.Publish.BadName", "spaces or control characters")),
        ("live/x/y", KEY, ("error", "NetStream.Publish.BadName", "expected APP/KEY")),
    ],
)
async def test_bad_names_get_bad_name_status(
    app: str, name: str, expected: tuple[str, str, str]
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        client = await RawClient.connect(server)
        client.publish(app, name)
        (status,) = statuses(await client.until_closed())
    assert status[:2] == expected[:2] and expected[2] in status[2]
    assert authority.requests == []


async def test_authority_failure_is_a_server_error_for_that_publisher_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(request: PublishRequest) -> Sink | None:
        raise RuntimeError("database is down")

    async with serving(Authority(explode)) as server:
        client = await RawClient.connect(server)
        client.publish("live", KEY)
        assert statuses(await client.until_closed()) == [
            ("error", "NetStream.Failed", "Server error; try again.")
        ]
    assert "publish authority failed for key …" in rtmp_log(caplog)


async def test_play_is_refused() -> None:
    async with serving(Authority(key_is(KEY))) as server:
        client = await RawClient.connect(server)
        client.send(msg.command("connect", 1.0, {"app": "live"}))
        client.send(msg.command("play", 0.0, None, KEY, stream_id=1))
        assert statuses(await client.until_closed()) == [
            ("error", "NetStream.Play.Failed", "This server only ingests.")
        ]


async def test_connection_that_never_publishes_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(Authority(key_is(KEY)), publish_timeout=0.3) as server:
        client = await RawClient.connect(server)
        client.send(msg.command("connect", 1.0, {"app": "live"}))
        replies = await client.until_closed()
    assert [m.type_id for m in replies] == [5, 6, 1, 20]  # ack window, bandwidth, chunk, _result
    assert "did not publish within 0.3 s" in rtmp_log(caplog)


async def test_slow_sink_does_not_hold_back_another_publisher() -> None:
    release = asyncio.Event()

    async def stall(message: Message) -> None:
        await release.wait()

    def decide(request: PublishRequest) -> Sink | None:
        return Sink(on_message=stall) if request.stream_key == "slow-key" else Sink()

    authority = Authority(decide)
    async with serving(authority, idle_timeout=30.0) as server:
        base = f"rtmp://127.0.0.1:{server.port}/live/"
        slow = asyncio.create_task(ffmpeg_publish(base + "slow-key", seconds=1))
        try:
            await asyncio.wait_for(authority.granted.wait(), 10)
            code, stderr = await ffmpeg_publish(base + "fast-key", seconds=1)
            assert code == 0, stderr
            fast_sink = authority.sinks[1]
            await asyncio.wait_for(fast_sink.ended.wait(), 5)
            assert len(fast_sink.of_type(9)) == 32
            assert authority.sinks[0].media == []
            release.set()
            assert (await slow)[0] == 0
            await asyncio.wait_for(authority.sinks[0].ended.wait(), 5)
            assert len(authority.sinks[0].of_type(9)) == 32
        finally:
            release.set()
            slow.cancel()
            with suppress(asyncio.CancelledError):
                await slow


async def test_authority_can_close_a_live_publisher_for_a_takeover() -> None:
    live: dict[str, Publisher] = {}

    def decide(request: PublishRequest) -> Sink | None:
        previous = live.get(request.stream_key)
        if previous is not None:
            previous.close("taken over by a new publisher")
        live[request.stream_key] = request.publisher
        return Sink()

    authority = Authority(decide)
    async with serving(authority) as server:
        url = f"rtmp://127.0.0.1:{server.port}/live/{KEY}"
        first = asyncio.create_task(ffmpeg_publish(url, seconds=5, realtime=True))
        try:
            await asyncio.wait_for(authority.granted.wait(), 10)
            await asyncio.wait_for(authority.sinks[0].flowing.wait(), 10)
            code, stderr = await ffmpeg_publish(url, seconds=0.5)
            assert code == 0, stderr
            first_sink = authority.sinks[0]
            await asyncio.wait_for(first_sink.ended.wait(), 5)
            assert first_sink.ends == ["taken over by a new publisher"]
            assert (await first)[0] != 0
        finally:
            first.cancel()
            with suppress(asyncio.CancelledError):
                await first
    assert authority.sinks[1].of_type(9)


async def test_failing_sink_ends_its_publish_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def explode(message: Message) -> None:
        raise RuntimeError("disk full")

    authority = Authority(lambda request: Sink(on_message=explode))
    async with serving(authority) as server:
        # ffmpeg may or may not notice the close before it has sent everything.
        await ffmpeg_publish(f"rtmp://127.0.0.1:{server.port}/live/{KEY}", seconds=1)
        await asyncio.wait_for(authority.sinks[0].ended.wait(), 5)
    assert authority.sinks[0].ends == ["media sink failed"]
    assert authority.sinks[0].media == []
    assert "media sink failed" in rtmp_log(caplog)


async def test_stop_ends_live_publishes_and_frees_the_port() -> None:
    authority = Authority(key_is(KEY))
    server = RtmpServer(authority, CONFIG)
    await server.start()
    port = server.port
    url = f"rtmp://127.0.0.1:{port}/live/{KEY}"
    publish = asyncio.create_task(ffmpeg_publish(url, seconds=10, realtime=True))
    try:
        await asyncio.wait_for(authority.granted.wait(), 10)
        await asyncio.wait_for(authority.sinks[0].flowing.wait(), 10)
        await server.stop()
        assert authority.sinks[0].ends == ["server shutting down"]
        assert server.connections == []
        code, _ = await publish
        assert code != 0
        with pytest.raises(RuntimeError, match="not started"):
            _ = server.port
        again = RtmpServer(authority, replace(CONFIG, port=port))
        await again.start()
        await again.stop()
    finally:
        publish.cancel()
        with suppress(asyncio.CancelledError):
            await publish
        await server.stop()


async def test_connection_limit(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(Authority(key_is(KEY)), max_connections=1) as server:
        first = await RawClient.connect(server)
        second = await RawClient.connect(server, handshake=False)
        assert await second.until_closed() == []
        first.writer.close()
    assert "refused: 1 connections already" in rtmp_log(caplog)


async def published(server: RtmpServer) -> RawClient:
    """A raw client that has connected and been granted `live/KEY`."""
    client = await RawClient.connect(server)
    client.publish("live", KEY)
    seen: list[Message] = []
    async with asyncio.timeout(5):
        while not any(s[1] == "NetStream.Publish.Start" for s in statuses(seen)):
            data = await client.reader.read(65536)
            assert data, "closed before the publish started"
            seen += client.incoming.feed(data)
    return client


async def test_malformed_metadata_is_dropped_and_media_keeps_flowing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        client = await published(server)
        client.send(Message(18, 1, 0, b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData\x08\x00"))
        client.send(Message(9, 1, 40, b"\x17\x01\x00\x00\x00frame"), chunk_stream_id=6)
        sink = authority.sinks[0]
        await asyncio.wait_for(sink.flowing.wait(), 5)
        client.writer.close()
        await asyncio.wait_for(sink.ended.wait(), 5)
    assert sink.media == [Message(9, 1, 40, b"\x17\x01\x00\x00\x00frame")]
    assert sink.metadata == []
    assert "dropping malformed data message: truncated ECMA array count" in rtmp_log(caplog)


def encode_tags(*tags: tuple[int, int, bytes]) -> bytes:
    return b"".join(encode_tag(*tag) for tag in tags)


async def test_ping_window_ack_and_aggregate_messages() -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority, window_ack_size=1000) as server:
        client = await published(server)
        client.send(Message(4, 0, 0, b"\x00\x06\x00\x00\x30\x39"), chunk_stream_id=2)
        frames = encode_tags(
            (9, 100, b"\x27\x01\x00\x00\x00" + bytes(1200)), (8, 120, b"\xaf\x01a")
        )
        client.send(Message(22, 1, 5000, frames), chunk_stream_id=6)
        sink = authority.sinks[0]
        replies: list[Message] = []
        async with asyncio.timeout(5):
            while not (len(sink.media) == 2 and {m.type_id for m in replies} >= {3, 4}):
                replies += client.incoming.feed(await client.reader.read(65536))
        client.writer.close()
    assert Message(4, 0, 0, b"\x00\x07\x00\x00\x30\x39") in replies  # ping response
    (ack,) = [m for m in replies if m.type_id == 3]
    assert int.from_bytes(ack.payload, "big") >= 1000
    assert [(m.type_id, m.timestamp) for m in sink.media] == [(9, 5000), (8, 5020)]


async def test_publisher_closed_from_its_own_sink() -> None:
    requests: list[PublishRequest] = []

    async def close_on_first(message: Message) -> None:
        requests[0].publisher.close("quota exceeded")

    def decide(request: PublishRequest) -> Sink:
        requests.append(request)
        return Sink(on_message=close_on_first)

    authority = Authority(decide)
    async with serving(authority) as server:
        client = await published(server)
        client.send(*[Message(9, 1, t, b"\x27\x01\x00\x00\x00") for t in (0, 33, 66)])
        await client.until_closed()
    sink = authority.sinks[0]
    assert sink.ends == ["quota exceeded"]
    assert len(sink.media) == 1  # nothing after the close was forwarded


async def test_silent_publisher_hits_the_idle_timeout(caplog: pytest.LogCaptureFixture) -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority, idle_timeout=0.3) as server:
        client = await published(server)
        await client.until_closed()
    assert authority.sinks[0].ends == ["no data for 0.3 s; closing"]
    assert "no data for 0.3 s; closing" in rtmp_log(caplog)


async def test_second_publish_on_one_connection_is_refused() -> None:
    authority = Authority(key_is(KEY))
    async with serving(authority) as server:
        client = await published(server)
        client.send(msg.command("publish", 0.0, None, KEY, "live", stream_id=1))
        replies = await client.until_closed()
    assert statuses(replies) == [("error", "NetStream.Publish.BadName", "Already publishing.")]
    assert authority.sinks[0].ends == ["publish refused: Already publishing."]
