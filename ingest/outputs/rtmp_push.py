"""Relay a live session to a platform over RTMP or RTMPS, as nginx-rtmp's ``push`` does.

No ffmpeg and no transcoding: the feed's tags already are RTMP message bodies, so relaying is
chunking. A connection lasts as long as the session: an encoder reconnect (a ``NewSource``)
only brings new codec headers, which follow in the feed, so the platform never sees the stream
end. Stream keys are secrets: only their last four characters reach logs, exceptions and
``last_error``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from asyncio import StreamReader, StreamWriter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from ingest.fanout import Feed, NewSource, Tag
from ingest.flv import TAG_AUDIO, TAG_SCRIPT, TAG_VIDEO
from ingest.outputs.base import Output, OutputError, PermanentOutputError, StateListener
from ingest.rtmp import messages as msg
from ingest.rtmp.amf0 import AMFError, AMFValue, encode
from ingest.rtmp.chunk import ChunkError, ChunkReader, ChunkWriter, Message, MessageType
from ingest.rtmp.handshake import ClientHandshake, HandshakeError
from ingest.rtmp.messages import Command, CommandError
from livebase.credentials import mask_secrets

__all__ = ["PushTarget", "RtmpPushOutput", "parse_push_target"]

log = logging.getLogger("livebase.ingest.rtmp_push")

DEFAULT_PORTS: Final = {"rtmp": 1935, "rtmps": 443}
FLASH_VER: Final = "FMLE/3.0 (compatible; Livebase)"
CHUNK_SIZE: Final = 4096  # what OBS and ffmpeg announce; fewer chunk headers for the platform
MAX_BATCH: Final = 256 * 1024  # a long backlog goes out in pieces, each one drained
# Unsent bytes above which tags queue and the pump awaits the platform (with a stall timeout);
# below it, writing needs no await at all.
BACKLOG: Final = 256 * 1024
# Chunk streams as ffmpeg uses them, the pattern platforms see most: commands on 3, publish on
# 8, audio and data on 4, video on 6.
CSID_COMMAND: Final = 3
CSID_PUBLISH: Final = 8
CSID_MEDIA: Final = {TAG_AUDIO: 4, TAG_SCRIPT: 4, TAG_VIDEO: 6}
_SET_DATA_FRAME: Final = encode("@setDataFrame")
_ON_METADATA: Final = encode("onMetaData")


@dataclass(frozen=True, slots=True)
class PushTarget:
    scheme: str  # "rtmp" or "rtmps"
    host: str
    port: int
    app: str  # may end in "?query": vhost and token schemes put one there
    stream: str = field(repr=False)  # the publish name: the key, maybe with "?query"; secret
    tc_url: str

    @property
    def masked_key(self) -> str:
        """The last four characters of the key (not of its query); short keys not even those."""
        name = self.stream.partition("?")[0]
        return "…" + name[-4:] if len(name) >= 12 else "…"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        # The app may carry a token in its query too.
        return mask_secrets(f"{self.scheme}://{host}:{self.port}/{self.app}/{self.masked_key}")

    def scrub(self, text: str) -> str:
        """`text` (a platform's error description) with the key masked wherever it appears."""
        for secret in (self.stream, self.stream.partition("?")[0]):
            if len(secret) >= 4:
                text = text.replace(secret, self.masked_key)
        return mask_secrets(text)


def parse_push_target(url: str, stream_key: str = "") -> PushTarget:
    """Where to publish, from a platform's push URL and key. With an empty key the URL's last
    path segment (and its query) is the key. Errors never quote the key."""
    url, key = url.strip(), stream_key.strip().lstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("push URL is not a valid URL (check the host and port)") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"push URL must start with rtmp:// or rtmps://, not {scheme or '?'}://")
    if not parts.hostname:
        raise ValueError("push URL has no host")
    path, query = "/".join(filter(None, parts.path.split("/"))), parts.query
    if key:
        app = path
    elif "/" in path:
        app, _, key = path.rpartition("/")
        key, query = (f"{key}?{query}" if query else key), ""
    else:
        raise ValueError("no stream key: give one, or end the push URL with APP/KEY")
    if not app:
        raise ValueError("push URL has no application path (expected rtmp://host/app/)")
    if not key.isprintable() or " " in key:
        raise ValueError("stream key contains spaces or control characters (a paste accident?)")
    if query:
        app = f"{app}?{query}"
    netloc = parts.netloc.rpartition("@")[2]  # RTMP has no userinfo; never send it in tcUrl
    tc_url = f"{scheme}://{netloc}/{app}"
    return PushTarget(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], app, key, tc_url)


def _info(command: Command) -> dict[str, AMFValue]:
    info = command.argument(0)
    return info if isinstance(info, dict) else {}


class _Link:
    """One connection to the platform. Once the handshake is done, a task reads whatever the
    platform sends (replies, acks, pings) for as long as the connection lives; replies go to
    a queue, and the task's own failure ends up there too, so no wait can outlive it."""

    def __init__(
        self, target: PushTarget, reader: StreamReader, writer: StreamWriter, io_timeout: float
    ) -> None:
        self.target = target
        self.reader = reader
        self.writer = writer
        self.io_timeout = io_timeout
        self.out = ChunkWriter()
        self.incoming = ChunkReader()
        self.acks = msg.AckCounter(0)  # until the platform asks for acknowledgements
        self.replies: asyncio.Queue[Command | OutputError] = asyncio.Queue()
        self.live = False
        self.ending = False  # our side is closed; what the platform still sends is read
        self.stream_id = 0
        self.base: int | None = None  # the feed's timestamp that is time 0 here
        self.pending = bytearray()  # encoded by direct delivery, written after the callback
        self.task: asyncio.Task[None] | None = None

    def media(self, tag: Tag, timestamp: int) -> bytes:
        payload = tag.payload
        if tag.kind == TAG_SCRIPT and payload.startswith(_ON_METADATA):
            payload = _SET_DATA_FRAME + payload  # the fanout stores it stripped
        message = Message(tag.kind, self.stream_id, timestamp, payload)
        return self.out.write(message, CSID_MEDIA[tag.kind])

    def send(self, message: Message, chunk_stream: int | None = None) -> None:
        if not (self.ending or self.writer.is_closing()):
            self.writer.write(self.out.write(message, chunk_stream))

    def backed_up(self) -> bool:
        return len(self.pending) + self.writer.transport.get_write_buffer_size() > BACKLOG

    def write_soon(self, data: bytes) -> None:
        """Write ``data`` once the current callback is over: the tags of one ingest read then
        leave in one system call (and wake the platform's side once)."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending += data

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, bytearray()
            if not (self.ending or self.writer.is_closing()):
                self.writer.write(pending)

    async def drain(self) -> None:
        try:
            async with asyncio.timeout(self.io_timeout):
                await self.writer.drain()
        except TimeoutError:
            stalled = f"{self.target} took nothing for {self.io_timeout:g} s"
            raise OutputError(f"destination stalled: {stalled}") from None
        except OSError as exc:
            raise OutputError(f"connection to {self.target} lost: {exc}") from None

    async def handshake(self) -> None:
        loop = asyncio.get_running_loop()
        shake = ClientHandshake(clock_ms=lambda: int(loop.time() * 1000))
        self.writer.write(shake.start())
        try:
            async with asyncio.timeout(self.io_timeout):
                while not shake.done:
                    data = await self.reader.read(1 << 16)
                    if not data:
                        raise OutputError(f"{self.target} closed the connection in the handshake")
                    self.writer.write(shake.feed(data))
        except TimeoutError:
            raise OutputError(
                f"{self.target} did not complete the handshake within {self.io_timeout:g} s "
                f"({shake.state.value}, {shake.received} bytes received)"
            ) from None
        except HandshakeError as exc:
            raise OutputError(f"{self.target}: {exc}") from None
        self.task = asyncio.create_task(
            self._read(shake.leftover), name=f"rtmp-push-read {self.target}"
        )
        # Its failure is raised where it matters; retrieving it keeps asyncio from logging it.
        self.task.add_done_callback(lambda task: task.cancelled() or task.exception())

    async def _read(self, data: bytes) -> None:
        try:
            while True:
                if data:
                    self._received(data)
                data = await self.reader.read(1 << 16)
                if not data:
                    raise OutputError(f"{self.target} closed the connection")
        except (ChunkError, AMFError, ValueError) as exc:
            error = OutputError(f"protocol error from {self.target}: {exc}")
        except OSError as exc:  # a reset, or a TLS error
            error = OutputError(f"connection to {self.target} lost: {exc}")
        except OutputError as exc:
            error = exc
        self.replies.put_nowait(error)
        raise error

    def _received(self, data: bytes) -> None:
        ack = self.acks.received(len(data))
        if ack is not None:
            self.send(msg.acknowledgement(ack))
        for message in self.incoming.feed(data):
            kind = message.type_id
            if kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
                try:
                    command = msg.parse_command(message)
                except CommandError as exc:
                    # ffmpeg's listener sends a bare "onFCPublish"; no reply we wait for is so
                    # short, and platforms add such notes freely.
                    log.debug("%s: ignoring a command: %s", self.target, exc)
                    continue
                if not self.live:
                    self.replies.put_nowait(command)
                elif command.name == "onStatus" and _info(command).get("level") == "error":
                    # Publishing was accepted once, so the next attempt shows if this is final.
                    error = self.describe(_info(command))
                    raise OutputError(f"{self.target} ended the publish: {error}")
            elif kind == MessageType.USER_CONTROL:
                event, value = msg.parse_user_control(message)
                if event == msg.UserControl.PING_REQUEST:
                    self.send(msg.ping_response(value))
            elif kind == MessageType.WINDOW_ACK_SIZE:
                self.acks.window = msg.parse_u32(message)
            # Set Chunk Size and Abort were applied by the chunk reader. Set Peer Bandwidth is
            # only recorded by librtmp (OBS) and ffmpeg, and TCP already limits what is unacked.

    def describe(self, info: dict[str, AMFValue]) -> str:
        text = str(info.get("description") or "no description")[:200]
        return self.target.scrub(f"{info.get('code') or 'no code'}: {text}")

    async def publish(self) -> None:
        target = self.target
        connect: dict[str, AMFValue] = {"app": target.app, "type": "nonprivate"}
        connect |= {"flashVer": FLASH_VER, "swfUrl": target.tc_url, "tcUrl": target.tc_url}
        self.send(msg.command("connect", 1.0, connect), CSID_COMMAND)
        await self._answer("connect", 1.0)
        self.send(msg.set_chunk_size(CHUNK_SIZE))
        self.out.chunk_size = CHUNK_SIZE
        self.send(msg.command("releaseStream", 2.0, None, target.stream), CSID_COMMAND)
        self.send(msg.command("FCPublish", 3.0, None, target.stream), CSID_COMMAND)
        self.send(msg.command("createStream", 4.0, None), CSID_COMMAND)
        stream_id = (await self._answer("createStream", 4.0)).argument(0)
        if not isinstance(stream_id, float) or not 0 <= stream_id < 2**32:
            raise OutputError(f"{target} answered createStream with no stream id")
        self.stream_id = int(stream_id)
        publish = msg.command("publish", 5.0, None, target.stream, "live", stream_id=self.stream_id)
        self.send(publish, CSID_PUBLISH)
        await self._answer("publish", 5.0, status=msg.Status.PUBLISH_START)
        self.live = True

    async def _answer(self, what: str, transaction_id: float, status: str = "") -> Command:
        """The `_result` to `transaction_id`, or with `status` the onStatus with that code.
        Replies to releaseStream and FCPublish, onBWDone and the like are skipped: servers
        differ in which of them they send."""
        try:
            async with asyncio.timeout(self.io_timeout):
                while True:
                    reply = await self.replies.get()
                    if isinstance(reply, OutputError):
                        raise reply
                    info = _info(reply)
                    mine = reply.transaction_id == transaction_id
                    level = info.get("level") if reply.name == "onStatus" else None
                    if level == "error" or (reply.name == "_error" and mine):
                        error = f"{self.target} refused {what}: {self.describe(info)}"
                        raise PermanentOutputError(error)
                    if status and reply.name == "onStatus" and info.get("code") == status:
                        return reply
                    if not status and reply.name == "_result" and mine:
                        return reply
        except TimeoutError:
            silent = f"{self.target} did not answer {what} within {self.io_timeout:g} s"
            raise OutputError(silent) from None

    async def close(self, *, graceful: bool) -> None:
        try:
            if graceful and self.task is not None and not self.task.done():
                self.flush()  # media already taken goes before the goodbye
                if self.live:
                    # As OBS and ffmpeg do on stop, so the platform ends the live at once.
                    stream, stream_id = self.target.stream, float(self.stream_id)
                    self.send(msg.command("FCUnpublish", 6.0, None, stream), CSID_COMMAND)
                    self.send(msg.command("deleteStream", 7.0, None, stream_id), CSID_COMMAND)
                # Half-close and read on until the platform closes too: a socket closed with
                # its acks unread sends a reset, which makes the platform discard whatever it
                # has not read yet, i.e. the end of the stream. TLS cannot half-close; its
                # close_notify follows the data and the ssl module bounds the shutdown.
                self.ending = True
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                else:
                    self.writer.close()
                await asyncio.wait([self.task], timeout=self.io_timeout)
        finally:
            if self.task is not None:
                self.task.cancel()
            # Only a transport we have not closed: aborting one that closed after flushing
            # raises inside asyncio.
            if not self.writer.transport.is_closing():
                self.writer.transport.abort()


class RtmpPushOutput(Output):
    """Publishes the feed to ``url`` + ``stream_key`` and keeps the connection for the session.

    A URL that cannot be a push target raises ``ValueError`` here (``parse_push_target``
    checks one ahead of time). Refusals (``_error`` to connect, an ``onStatus`` of level
    "error") raise ``PermanentOutputError``; anything else (unreachable, no answer or no data
    taken for ``io_timeout`` seconds, closed) raises ``OutputError`` and is retried. A retry
    restarts the feed with the codec headers from ``init_tags`` (the fanout's
    ``source.init_tags``), or without it the ones this output last relayed. ``ssl_context``
    replaces the default, verifying one for rtmps://.
    """

    kind = "rtmp-push"

    def __init__(
        self,
        name: str,
        feed: Feed,
        url: str,
        stream_key: str,
        on_state: StateListener | None = None,
        *,
        connect_timeout: float = 10,
        io_timeout: float = 15,
        init_tags: Callable[[], list[Tag]] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(name, feed, on_state)
        self.target = parse_push_target(url, stream_key)
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self._init_tags = init_tags
        self._ssl_context = ssl_context
        self._headers: dict[int, Tag] = {}
        self.connections = 0

    async def session(self) -> None:
        init = self._init_tags() if self._init_tags else list(self._headers.values())
        if self.connections and init:
            # A retry: the backlog is stale and may start mid-GOP. Without init_tags and before
            # anything was relayed, the feed still holds the headers it was attached with.
            self.feed.restart(init)
        self.connections += 1
        link = await self._open()
        graceful = False
        try:
            await link.handshake()
            await link.publish()
            log.info("%s %s: publishing to %s", self.kind, self.name, self.target)
            self.went_live()
            await self._relay(link)
            graceful = True  # the stream ended
        except asyncio.CancelledError:
            graceful = True
            raise
        finally:
            await link.close(graceful=graceful)

    async def _open(self) -> _Link:
        target = self.target
        tls = target.scheme == "rtmps"
        context = (self._ssl_context or ssl.create_default_context()) if tls else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    target.host, target.port, ssl=context, limit=1 << 16
                )
        except TimeoutError:
            late = f"connecting to {target} timed out after {self.connect_timeout:g} s"
            raise OutputError(late) from None
        except OSError as exc:
            raise OutputError(f"cannot connect to {target}: {exc}") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # librtmp does this too: each command waits on its reply, and media is batched.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Link(target, reader, writer, self.io_timeout)

    async def _relay(self, link: _Link) -> None:
        assert link.task is not None
        pump = asyncio.create_task(self._pump(link), name=f"rtmp-push-pump {self.name}")
        try:
            done, _ = await asyncio.wait((pump, link.task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.feed.stop_direct()
            pump.cancel()
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        if pump not in done:
            raise OutputError(f"connection to {self.target} ended")

    async def _pump(self, link: _Link) -> None:
        """Relay the feed until the stream ends (return) or the link breaks (raise): what is
        queued in batches, then, once caught up, each tag as it comes (``_deliver``)."""
        deliver = functools.partial(self._deliver, link)
        while True:
            batch, item, ended = bytearray(), await self.feed.get(), False
            while True:
                if isinstance(item, Tag):
                    batch += self._encode(link, item)
                elif isinstance(item, NewSource):
                    self._headers.clear()  # the new encoder's headers follow in the feed
                else:  # the end of the stream: what is queued goes out, then the goodbye
                    ended = True
                    break
                following = self.feed.get_nowait() if len(batch) < MAX_BATCH else None
                if following is None:
                    break
                item = following
            link.flush()  # what was delivered directly goes first
            if not link.writer.is_closing():
                link.writer.write(batch)
            if ended or link.backed_up():
                await link.drain()
            if ended:
                return
            self.feed.deliver_directly(deliver)

    def _deliver(self, link: _Link, tag: Tag) -> bool:
        if link.writer.is_closing() or link.backed_up():
            return False  # queued: the pump drains the link, and notices a stall
        link.write_soon(self._encode(link, tag))
        return True

    def _encode(self, link: _Link, tag: Tag) -> bytes:
        # Each connection's clock starts at its first media tag, as a fresh OBS publish does;
        # headers queued before it go at time 0.
        if tag.header:
            self._headers[tag.kind] = tag
        elif link.base is None:
            link.base = tag.timestamp
        base = link.base
        return link.media(tag, 0 if base is None else max(tag.timestamp - base, 0))
