"""The RTMP/RTMPS push output against real peers on 127.0.0.1: an ffmpeg RTMP listener, our own
ingest server (plain, behind a TLS terminator, refusing, kicking, stalling), a black hole, and a
platform scripted from the pure protocol modules for what our server never sends."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from media import codecs, make_flv

from ingest.fanout import Fanout, Tag
from ingest.flv import TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO, FlvTag, iter_tags, parse_video_tag
from ingest.outputs.base import Backoff, OutputState
from ingest.outputs.rtmp_push import FLASH_VER, RtmpPushOutput, parse_push_target
from ingest.rtmp import messages as msg
from ingest.rtmp.amf0 import AMFValue, decode_all
from ingest.rtmp.chunk import ChunkReader, ChunkWriter, Message, MessageType
from ingest.rtmp.handshake import ServerHandshake
from ingest.rtmp.interfaces import PublishGrant, PublishRequest
from ingest.rtmp.server import RtmpServer, RtmpServerConfig

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
KEY = "live_9f8e7d6c5b4a3921"
SERVER = RtmpServerConfig(host="127.0.0.1", port=0, idle_timeout=10.0, refusal_delay=0.05)


@dataclass
class Sink:
    metadata: list[dict[str, AMFValue]] = field(default_factory=list)
    media: list[Message] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    block: asyncio.Event | None = None  # set: stop taking media after the first message
    delay: float = 0.0  # a slow platform: seconds per message

    async def on_metadata(self, metadata: Any) -> None:
        self.metadata.append(dict(metadata))

    async def on_media(self, message: Message) -> None:
        self.media.append(message)
        if self.block is not None:
            await self.block.wait()
        if self.delay:
            await asyncio.sleep(self.delay)

    async def on_end(self, reason: str) -> None:
        self.ends.append(reason)


@dataclass
class Authority:
    decide: Callable[[PublishRequest], Sink | None]
    requests: list[PublishRequest] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)

    async def authorize_publish(self, request: PublishRequest) -> PublishGrant | None:
        self.requests.append(request)
        sink = self.decide(request)
        if sink is not None:
            self.sinks.append(sink)
            return PublishGrant(sink)
        return None


def grant_all(request: PublishRequest) -> Sink:
    return Sink()


@asynccontextmanager
async def ingest_server(authority: Authority, port: int = 0) -> AsyncIterator[RtmpServer]:
    server = RtmpServer(authority, replace(SERVER, port=port))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def running(out: RtmpPushOutput) -> AsyncIterator[RtmpPushOutput]:
    out.backoff = Backoff(initial=0.05, maximum=0.2)
    out.start()
    try:
        yield out
    finally:
        await out.stop()


async def wait_for(predicate: Callable[[], object], limit: float = 20) -> None:
    async with asyncio.timeout(limit):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flv(tmp_path_factory.mktemp("media") / "in.flv", seconds=4)


def flv_tags(flv: Path) -> list[FlvTag]:
    return list(iter_tags(flv.read_bytes()))


def publish(fan: Fanout, flv: Path) -> list[Tag]:
    """One publish of the file; returns what a feed passes on: the headers, then everything
    from the first keyframe."""
    fan.begin_publish()
    pushed = (fan.push(t.tag_type, t.timestamp, t.payload) for t in flv_tags(flv))
    tags = [tag for tag in pushed if tag is not None]
    start = next(i for i, tag in enumerate(tags) if tag.keyframe)
    return [tag for tag in tags[:start] if tag.header] + tags[start:]


def as_sent(tags: list[Tag]) -> list[tuple[int, int, bytes]]:
    """What the platform should receive: the connection's clock starts at its first media tag,
    headers before it go at time 0."""
    base: int | None = None
    sent = []
    for tag in tags:
        if base is None and not tag.header:
            base = tag.timestamp
        sent.append((tag.kind, 0 if base is None else max(tag.timestamp - base, 0), tag.payload))
    return sent


def received(sink: Sink) -> list[tuple[int, int, bytes]]:
    return [(m.type_id, m.timestamp, m.payload) for m in sink.media]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def count(path: Path, stream: str, entry: str) -> int:
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-count_frames", "-count_packets"),
            *("-select_streams", stream, "-show_entries", f"stream={entry}", "-of", "csv=p=0"),
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        (
            "rtmp://push.example.com/live/",
            "KEY0123456789",
            ("push.example.com", 1935, "live", "KEY0123456789", "rtmp://push.example.com/live"),
        ),
        ("rtmps://h:443/app/", "k", ("h", 443, "app", "k", "rtmps://h:443/app")),
        ("rtmps://h/app", "k", ("h", 443, "app", "k", "rtmps://h/app")),
        ("rtmp://h/live/KEY", "", ("h", 1935, "live", "KEY", "rtmp://h/live")),
        (
            "rtmp://h/live/KEY?sign=a&t=1",
            "",
            ("h", 1935, "live", "KEY?sign=a&t=1", "rtmp://h/live"),
        ),
        (
            "  RTMP://Push.Example:1936/a/b/ ",
            "/stream-1?expire=9&sign=x\n",
            (
                "push.example",
                1936,
                "a/b",
                "stream-1?expire=9&sign=x",
                "rtmp://Push.Example:1936/a/b",
            ),
        ),
        ("rtmp://[::1]/live", "k", ("::1", 1935, "live", "k", "rtmp://[::1]/live")),
        ("rtmp://h/app?vhost=v", "k", ("h", 1935, "app?vhost=v", "k", "rtmp://h/app?vhost=v")),
        ("rtmp://u:pw@h/live/", "k", ("h", 1935, "live", "k", "rtmp://h/live")),
        ("rtmp://h//a//b/KEY", "", ("h", 1935, "a/b", "KEY", "rtmp://h/a/b")),
    ],
)
def test_push_targets_as_platforms_write_them(
    url: str, key: str, expected: tuple[str, int, str, str, str]
) -> None:
    target = parse_push_target(url, key)
    assert (target.host, target.port, target.app, target.stream, target.tc_url) == expected
    assert target.scheme == url.strip().partition(":")[0].lower()


@pytest.mark.parametrize(
    ("url", "key", "error"),
    [
        ("http://h/live/", KEY, "must start with rtmp:// or rtmps://, not http://"),
        ("rtmp:///live/", KEY, "push URL has no host"),
        (f"rtmp://h:99999/live/{KEY}", "", "not a valid URL"),
        ("rtmp://h", KEY, "no application path"),
        (f"rtmp://h/{KEY}", "", "no stream key"),
        ("rtmp://h/live/", "", "no stream key"),
        ("rtmp://h/live/", f"{KEY} copy", "spaces or control characters"),
    ],
)
def test_bad_push_targets_are_explained_without_the_key(url: str, key: str, error: str) -> None:
    with pytest.raises(ValueError, match=error) as caught:
        parse_push_target(url, key)
    assert KEY not in str(caught.value)


def test_the_key_is_masked_in_names_and_platform_messages() -> None:
    target = parse_push_target("rtmp://h/live", f"{KEY}?sign=0123456789abcdef")
    assert str(target) == "rtmp://h:1935/live/…3921"
    assert KEY not in repr(target) and "0123456789abcdef" not in repr(target)
    assert target.scrub(f"stream {KEY} busy") == "stream …3921 busy"
    assert str(parse_push_target("rtmp://h/live", "short")) == "rtmp://h:1935/live/…"


async def test_relay_into_an_ffmpeg_listener_loses_no_frame(flv: Path, tmp_path: Path) -> None:
    port, out_flv = free_port(), tmp_path / "out.flv"
    listener = await asyncio.create_subprocess_exec(
        *(FFMPEG, "-hide_banner", "-nostdin", "-v", "error", "-listen", "1", "-timeout", "30"),
        *("-i", f"rtmp://127.0.0.1:{port}/live/{KEY}", "-c", "copy", "-f", "flv", str(out_flv)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        fan = Fanout()
        out = RtmpPushOutput("ff", fan.attach("ff"), f"rtmp://127.0.0.1:{port}/live/", KEY)
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)  # retried until ffmpeg listens
            publish(fan, flv)
            await wait_for(lambda: out.feed.queued_bytes == 0)
        async with asyncio.timeout(30):
            _, stderr = await listener.communicate()
        assert listener.returncode == 0, stderr.decode(errors="replace")
    finally:
        if listener.returncode is None:
            listener.kill()
            await listener.wait()
    assert codecs(out_flv) == {"h264", "aac"}
    assert count(out_flv, "v:0", "nb_read_frames") == count(flv, "v:0", "nb_read_frames") == 120
    # The one audio frame ahead of the first keyframe is the feed's to drop (outputs start on a
    # keyframe), not the relay's.
    assert out.feed.dropped == 1
    audio = count(flv, "a:0", "nb_read_packets")
    assert count(out_flv, "a:0", "nb_read_packets") == audio - out.feed.dropped


async def test_relay_into_our_server_delivers_exactly_what_was_sent(
    flv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    authority = Authority(grant_all)
    async with ingest_server(authority) as server:
        fan = Fanout()
        url = f"rtmp://127.0.0.1:{server.port}/live"
        out = RtmpPushOutput("ours", fan.attach("ours"), url, f"{KEY}?sign=s3cr3t-token")
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            sent = publish(fan, flv)
            (sink,) = authority.sinks
            await wait_for(lambda: len(sink.media) >= len(sent))
        await wait_for(lambda: sink.ends)
    assert received(sink) == as_sent(sent)
    assert sink.metadata[0]["width"] == 320.0  # @setDataFrame was put back for the server
    assert sink.ends == ["encoder sent FCUnpublish"]  # stop says goodbye, as OBS does
    (request,) = authority.requests
    assert (request.app, request.stream_key, request.query) == ("live", KEY, "sign=s3cr3t-token")
    assert (request.tc_url, request.encoder) == (url, FLASH_VER)
    assert KEY not in caplog.text and "s3cr3t" not in caplog.text


async def test_finishing_relays_everything_queued_then_says_goodbye(flv: Path) -> None:
    authority = Authority(grant_all)
    async with ingest_server(authority) as server:
        fan = Fanout()
        out = RtmpPushOutput("fin", fan.attach("fin"), f"rtmp://127.0.0.1:{server.port}/live", KEY)
        out.start()
        try:
            sent = publish(fan, flv)  # all queued while the output is still connecting
            await asyncio.wait_for(out.finish(within=10), 15)
        finally:
            await out.stop()
        (sink,) = authority.sinks
        await wait_for(lambda: sink.ends)
    assert received(sink) == as_sent(sent)
    assert sink.ends == ["encoder sent FCUnpublish"] and out.connections == 1
    assert out.state is OutputState.STOPPED


async def test_a_stop_right_after_a_burst_loses_nothing_to_a_slow_platform() -> None:
    # Megabytes still in flight when the stop comes, and the platform acking as it reads: a
    # socket closed with those acks unread would reset, and the platform would lose the tail.
    authority = Authority(lambda request: Sink(delay=0.002))
    frames = [b"\x17\x01\x00\x00\x00" + bytes([n % 256]) * 40_000 for n in range(300)]
    async with ingest_server(authority) as server:
        fan = Fanout()
        url = f"rtmp://127.0.0.1:{server.port}/live"
        out = RtmpPushOutput("burst", fan.attach("burst", max_bytes=1 << 26), url, KEY)
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            fan.begin_publish()
            for n, frame in enumerate(frames):
                fan.push(TAG_VIDEO, n * 33, frame)
            await wait_for(lambda: out.feed.queued_bytes == 0)
        (sink,) = authority.sinks
        await wait_for(lambda: sink.ends)
    assert [m.payload for m in sink.media] == frames
    assert sink.ends == ["encoder sent FCUnpublish"]


async def test_a_refused_key_fails_for_good_and_names_the_code_not_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    states: list[OutputState] = []
    authority = Authority(lambda request: None)
    async with ingest_server(authority) as server:
        url = f"rtmp://127.0.0.1:{server.port}/live/{KEY}"
        out = RtmpPushOutput("no", Fanout().attach("no"), url, "", lambda o: states.append(o.state))
        async with running(out):
            await wait_for(lambda: out.state is OutputState.FAILED, 10)
            await asyncio.sleep(0.3)  # no retry follows
            error = out.last_error
    assert len(authority.requests) == 1
    assert states == [OutputState.FAILED, OutputState.STOPPED]
    assert "NetStream.Publish.Denied" in error and "…3921" in error
    assert "refused publish" in error and KEY not in error
    assert KEY not in caplog.text


async def test_a_black_hole_is_detected_within_the_timeout() -> None:
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepted, and never a byte back

    hole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        port = hole.sockets[0].getsockname()[1]
        out = RtmpPushOutput(
            "bh", Fanout().attach("bh"), f"rtmp://127.0.0.1:{port}/live", KEY, io_timeout=0.5
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with running(out):
            await wait_for(lambda: out.state is OutputState.RETRYING, 5)
            elapsed, error = loop.time() - started, out.last_error
    finally:
        for writer in held:
            writer.close()
        hole.close()
        await hole.wait_closed()
    assert elapsed < 2.0
    assert "did not complete the handshake within 0.5 s" in error
    assert KEY not in error


async def test_a_destination_that_stops_reading_mid_stream_is_a_stall() -> None:
    blocked = asyncio.Event()
    authority = Authority(lambda request: Sink(block=blocked))
    big = b"\x17\x01\x00\x00\x00" + bytes(200_000)  # an H.264 keyframe as far as anyone checks
    try:
        async with ingest_server(authority) as server:
            fan = Fanout()
            url = f"rtmp://127.0.0.1:{server.port}/live"
            out = RtmpPushOutput("st", fan.attach("st"), url, KEY, io_timeout=0.5)
            async with running(out):
                await wait_for(lambda: out.state is OutputState.LIVE)
                fan.begin_publish()
                async with asyncio.timeout(30):
                    for frame in range(100_000):
                        if out.state is OutputState.RETRYING:
                            error = out.last_error
                            break
                        fan.push(TAG_VIDEO, frame * 33, big)
                        await asyncio.sleep(0.01)
    finally:
        blocked.set()
    assert error.startswith("destination stalled: rtmp://127.0.0.1:")
    assert "took nothing for 0.5 s" in error


def self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@asynccontextmanager
async def tls_terminator(cert: bytes, key: bytes, tmp: Path, port: int) -> AsyncIterator[int]:
    """TLS in front of a plain RTMP port, as platforms run stunnel or a load balancer in front
    of nginx-rtmp for RTMPS."""
    (tmp / "cert.pem").write_bytes(cert)
    (tmp / "key.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    pipes: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with suppress(ConnectionError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        for task in (pipe(reader, up_writer), pipe(up_reader, writer)):
            pipes.add(asyncio.create_task(task))

    server = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


async def test_rtmps_through_a_tls_terminator(flv: Path, tmp_path: Path) -> None:
    cert, key = self_signed()
    authority = Authority(grant_all)
    async with (
        ingest_server(authority) as server,
        tls_terminator(cert, key, tmp_path, server.port) as tls_port,
    ):
        url = f"rtmps://127.0.0.1:{tls_port}/live/"
        untrusted = RtmpPushOutput("untrusted", Fanout().attach("u"), url, KEY)
        async with running(untrusted):
            await wait_for(lambda: untrusted.state is OutputState.RETRYING)
            assert "CERTIFICATE_VERIFY_FAILED" in untrusted.last_error

        fan = Fanout()
        trust = ssl.create_default_context(cadata=cert.decode())
        out = RtmpPushOutput("tls", fan.attach("tls"), url, KEY, ssl_context=trust)
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            sent = publish(fan, flv)
            (sink,) = authority.sinks
            await wait_for(lambda: len(sink.media) >= len(sent))
    assert received(sink) == as_sent(sent)
    assert authority.requests[0].tc_url == f"rtmps://127.0.0.1:{tls_port}/live"


async def test_an_encoder_reconnect_keeps_the_one_platform_connection(flv: Path) -> None:
    states: list[OutputState] = []
    authority = Authority(grant_all)
    async with ingest_server(authority) as server:
        fan = Fanout()
        url = f"rtmp://127.0.0.1:{server.port}/live"
        out = RtmpPushOutput("ns", fan.attach("ns"), url, KEY, lambda o: states.append(o.state))
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            first = publish(fan, flv)
            second = publish(fan, flv)  # the encoder reconnected: a NewSource, new headers
            (sink,) = authority.sinks
            await wait_for(lambda: len(sink.media) >= len(first) + len(second))
            assert out.state is OutputState.LIVE
    assert len(authority.requests) == 1 and out.connections == 1
    assert states == [OutputState.LIVE, OutputState.STOPPED]
    assert received(sink) == as_sent(first + second)
    assert len(sink.metadata) == 2  # each publish's onMetaData went through
    stamps = [m.timestamp for m in sink.media if m.type_id == TAG_VIDEO]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("use_init_tags", [True, False], ids=["init_tags", "remembered"])
async def test_after_a_kick_the_new_connection_starts_with_headers_and_a_keyframe(
    flv: Path, use_init_tags: bool
) -> None:
    authority = Authority(grant_all)
    tags = flv_tags(flv)
    half = len(tags) // 2
    async with ingest_server(authority) as server:
        fan = Fanout()
        init = fan.source.init_tags if use_init_tags else None
        url = f"rtmp://127.0.0.1:{server.port}/live"
        out = RtmpPushOutput("k", fan.attach("k"), url, KEY, init_tags=init)
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            fan.begin_publish()
            for tag in tags[:half]:
                fan.push(tag.tag_type, tag.timestamp, tag.payload)
            last = tags[half - 1].payload
            await wait_for(lambda: last in [m.payload for m in authority.sinks[0].media])
            authority.requests[0].publisher.close("kicked by the test")
            await wait_for(lambda: len(authority.sinks) == 2)
            await wait_for(lambda: out.state is OutputState.LIVE)
            for tag in tags[half:]:
                fan.push(tag.tag_type, tag.timestamp, tag.payload)
            end = tags[-1].payload
            await wait_for(lambda: end in [m.payload for m in authority.sinks[1].media])
    assert out.connections == 2
    media = authority.sinks[1].media
    assert [m.type_id for m in media[:3]] == [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO]
    assert parse_video_tag(media[1].payload).is_sequence_header
    first_video = next(m for m in media[3:] if m.type_id == TAG_VIDEO)
    assert parse_video_tag(first_video.payload).is_keyframe
    assert first_video.timestamp == 0  # each connection's clock starts at its first frame


@pytest.mark.parametrize("use_init_tags", [True, False], ids=["init_tags", "remembered"])
async def test_attempts_that_fail_before_the_first_connection_keep_the_headers(
    flv: Path, use_init_tags: bool
) -> None:
    tags, fan, port = flv_tags(flv), Fanout(), free_port()
    fan.begin_publish()
    for tag in tags[:10]:  # the encoder is live before the platform output starts
        fan.push(tag.tag_type, tag.timestamp, tag.payload)
    init = fan.source.init_tags if use_init_tags else None
    url = f"rtmp://127.0.0.1:{port}/live"
    out = RtmpPushOutput("late", fan.attach("late"), url, KEY, init_tags=init)
    authority = Authority(grant_all)
    async with running(out):
        await wait_for(lambda: out.connections >= 2)  # refused, then retried
        async with ingest_server(authority, port) as server:
            await wait_for(lambda: out.state is OutputState.LIVE)
            for tag in tags[10:]:
                fan.push(tag.tag_type, tag.timestamp, tag.payload)
            end = tags[-1].payload
            await wait_for(lambda: end in [m.payload for m in authority.sinks[0].media])
            assert server.port == port
    media = authority.sinks[0].media
    assert [m.type_id for m in media[:3]] == [TAG_SCRIPT, TAG_VIDEO, TAG_AUDIO]
    assert parse_video_tag(media[1].payload).is_sequence_header


@dataclass
class Platform:
    """An ingest scripted from the pure modules, for what our server never does: a tiny ack
    window, a ping, its own small chunk size; it records what the client sends back."""

    ping: int = 0x5EED
    seen: list[Message] = field(default_factory=list)
    connections: int = 0
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        handshake, incoming, out = ServerHandshake(), ChunkReader(), ChunkWriter()
        while not handshake.done:
            writer.write(handshake.feed(await reader.read(65536)))
        data = handshake.leftover
        while True:
            for message in incoming.feed(data):
                self.seen.append(message)
                if message.type_id != MessageType.COMMAND_AMF0:
                    continue
                command = msg.parse_command(message)
                replies: list[Message] = []
                if command.name == "connect":
                    replies = [msg.window_ack_size(100), msg.set_chunk_size(50)]
                    replies += [msg.set_peer_bandwidth(100), msg.connect_result(1.0)]
                    replies.append(
                        Message(MessageType.USER_CONTROL, 0, 0, struct.pack(">HI", 6, self.ping))
                    )
                elif command.name == "createStream":
                    replies = [msg.create_stream_result(command.transaction_id, 7)]
                elif command.name == "publish":
                    replies = [msg.on_status(7, "status", msg.Status.PUBLISH_START, "Go.")]
                for reply in replies:
                    writer.write(out.write(reply))
                    if reply.type_id == MessageType.SET_CHUNK_SIZE:
                        out.chunk_size = 50
            if not (data := await reader.read(65536)):
                break
        writer.close()
        self.ended.set()

    def of_type(self, type_id: int) -> list[Message]:
        return [m for m in self.seen if m.type_id == type_id]


async def test_platform_control_messages_are_answered(flv: Path) -> None:
    platform = Platform()
    server = await asyncio.start_server(platform, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        fan = Fanout()
        out = RtmpPushOutput("p", fan.attach("p"), f"rtmp://127.0.0.1:{port}/app/", KEY)
        async with running(out):
            await wait_for(lambda: out.state is OutputState.LIVE)
            sent = publish(fan, flv)
            await wait_for(
                lambda: len(platform.of_type(TAG_VIDEO)) >= sum(t.kind == TAG_VIDEO for t in sent)
            )
        await wait_for(platform.ended.is_set, 5)
    finally:
        server.close()
        await server.wait_closed()
    assert msg.parse_user_control(platform.of_type(MessageType.USER_CONTROL)[0]) == (
        msg.UserControl.PING_RESPONSE,
        platform.ping,
    )
    (ack, *_) = platform.of_type(MessageType.ACKNOWLEDGEMENT)
    assert msg.parse_u32(ack) >= 100
    (chunk_size,) = platform.of_type(MessageType.SET_CHUNK_SIZE)
    assert msg.parse_u32(chunk_size) == 4096
    media = [m for m in platform.seen if m.type_id in (TAG_AUDIO, TAG_VIDEO)]
    assert {m.stream_id for m in media} == {7}
    data = platform.of_type(TAG_SCRIPT)[0]
    assert decode_all(data.payload)[:2] == ["@setDataFrame", "onMetaData"]
    names = [msg.parse_command(m).name for m in platform.of_type(MessageType.COMMAND_AMF0)]
    assert names[:5] == ["connect", "releaseStream", "FCPublish", "createStream", "publish"]
    assert names[5:] == ["FCUnpublish", "deleteStream"]
    assert platform.connections == 1
