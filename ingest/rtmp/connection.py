"""One RTMP connection: handshake, command exchange, publish authorisation and media forwarding.

Each connection runs in its own task and every failure ends only that connection, with one log
line saying why. The protocol work is delegated to the pure modules; this file owns the socket,
the timeouts and the order of events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NoReturn, cast

from ingest.flv import strip_set_data_frame

from . import messages as msg
from .amf0 import AMFError, AMFValue, decode_all
from .chunk import MAX_MESSAGE_SIZE, ChunkError, ChunkReader, ChunkWriter, Message, MessageType
from .handshake import HandshakeError, ServerHandshake
from .interfaces import PublishAuthority, PublishGrant, PublishRequest
from .messages import Command, CommandError, Status
from .streamkey import BadStreamName, mask_key, split_publish_target

__all__ = ["ConnectionSettings", "RtmpConnection"]

log = logging.getLogger("ingest.rtmp")

_MEDIA: Final = (MessageType.AUDIO, MessageType.VIDEO)
_COMMANDS: Final = (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3)
_UNPUBLISH: Final = ("FCUnpublish", "deleteStream", "closeStream")
_PLAY: Final = ("play", "play2")
_SEND_BACKLOG: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    apps: frozenset[str] = frozenset({"live"})
    handshake_timeout: float = 10.0
    idle_timeout: float = 30.0
    publish_timeout: float = 20.0  # from accept until publishing, so idle sockets cannot camp
    refusal_delay: float = 1.0  # before refusing a key, to slow down guessing
    chunk_size: int = 4096  # what OBS uses; fewer chunk headers for everyone
    window_ack_size: int = 2_500_000
    max_message_size: int = MAX_MESSAGE_SIZE
    read_size: int = 256 * 1024
    # While media flows, read at most this often. An encoder's stream arrives in over a hundred
    # small pieces a second; each wake-up costs more than the bytes it brings, so waiting lets
    # the kernel gather them: fewer reads here, and fewer, larger writes to every output.
    # 100 ms (≈ 75 KB at 6 Mbit/s, well inside the socket's buffer) halved the relay's CPU
    # against 40 ms; it adds at most a tenth of a second to a relay that platforms buffer
    # for seconds. Longer waits save a little more but put more of an encoder's last
    # moments at risk when it resets the connection after its last frame.
    media_read_interval: float = 0.1


class _Closed(Exception):
    """Ends the connection normally; the message is the reason for logs and `on_end`."""


class _SinkFailed(Exception):
    """The core's sink raised; the cause is logged with its traceback."""


def _display_app(app: str) -> str:
    # An app name can be a pasted stream key; echo only what looks like a real app name.
    return app if len(app) <= 16 and app.isprintable() else mask_key(app)


class RtmpConnection:
    """Implements `Publisher` for the core: `close()` ends it from anywhere."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        connection_id: int,
        peer: str,
        authority: PublishAuthority,
        settings: ConnectionSettings,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._id = connection_id
        self._peer = peer
        self._authority = authority
        self._settings = settings
        self._tag = f"rtmp #{connection_id} {peer}"
        self._chunks = ChunkReader(max_message_size=settings.max_message_size)
        self._out = ChunkWriter()
        self._acks = msg.AckCounter(settings.window_ack_size)
        self._connect: dict[str, AMFValue] | None = None
        self._next_stream_id = 1
        self._grant: PublishGrant | None = None
        self._published = False
        self._dropped = 0
        self._close_reason: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._expired: str | None = None  # why the watchdog ended the connection
        self._last_data = self._publish_deadline = 0.0
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def connection_id(self) -> int:
        return self._id

    @property
    def peer(self) -> str:
        return self._peer

    @property
    def publishing(self) -> bool:
        return self._grant is not None

    @property
    def bytes_received(self) -> int:
        return self._acks.total

    def __repr__(self) -> str:
        return f"<RtmpConnection {self._tag}>"

    def close(self, reason: str) -> None:
        if self._close_reason is None:
            self._close_reason = reason
        task = self._task
        # From inside our own task (a sink reacting to a message) the loop sees the reason
        # after the current message; from anywhere else, interrupt whatever we await.
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()

    def start(self) -> asyncio.Task[None]:
        """Run the connection in its own task, so one slow or broken peer stalls nobody else."""
        task = asyncio.create_task(self._run(), name=f"rtmp-{self._id}")
        task.add_done_callback(self._release)
        self._task = task
        return task

    def _release(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never reaches its own cleanup.
        if not self._writer.is_closing():
            self._writer.transport.abort()

    async def _run(self) -> None:
        graceful = False
        reason = "connection closed"
        try:
            leftover = await self._handshake()
            reason = await self._serve(leftover)
            graceful = True
        except _Closed as exc:
            reason, graceful = str(exc), True
        except _SinkFailed as exc:
            reason = "media sink failed"
            log.error("%s: %s", self._tag, reason, exc_info=exc.__cause__)
        except (HandshakeError, ChunkError, CommandError, ValueError) as exc:
            reason = f"protocol error: {exc}"
            log.warning("%s: %s", self._tag, reason)
        except TimeoutError as exc:
            reason = str(exc) or "timed out"
            log.warning("%s: %s", self._tag, reason)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            reason = f"connection lost: {exc or type(exc).__name__}"
            log.info("%s: %s", self._tag, reason)
        except asyncio.CancelledError:
            if self._expired is not None and self._close_reason is None:
                # Our own watchdog's cancellation: a timeout like any other, not a shutdown.
                reason = self._expired
                log.warning("%s: %s", self._tag, reason)
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            else:
                reason = self._close_reason or "server shutting down"
                log.info("%s: closed: %s", self._tag, reason)
                raise
        finally:
            await self._end_publish(reason)
            self._shutdown(graceful)

    async def _handshake(self) -> bytes:
        handshake = ServerHandshake(clock_ms=self._clock_ms)
        try:
            async with asyncio.timeout(self._settings.handshake_timeout):
                while not handshake.done:
                    data = await self._reader.read(4096)
                    if not data:
                        raise _Closed("closed during the handshake")
                    reply = handshake.feed(data)
                    if reply:
                        self._writer.write(reply)
        except TimeoutError:
            raise TimeoutError(
                f"handshake timed out after {self._settings.handshake_timeout:g} s "
                f"({handshake.state.value}, {handshake.received} bytes buffered)"
            ) from None
        return handshake.leftover

    def _clock_ms(self) -> int:
        return int(asyncio.get_running_loop().time() * 1000)

    async def _serve(self, leftover: bytes) -> str:
        loop = asyncio.get_running_loop()
        self._publish_deadline = loop.time() + self._settings.publish_timeout
        self._last_data = loop.time()
        self._watchdog = loop.call_at(self._deadline()[0], self._watch)
        # The writer's transport is the socket's, which reads too.
        transport = cast(asyncio.Transport, self._writer.transport)
        read_size = self._settings.read_size
        interval = self._settings.media_read_interval
        data = leftover
        try:
            while True:
                if self._close_reason is not None:
                    raise _Closed(self._close_reason)
                if data:
                    ack = self._acks.received(len(data))
                    if ack is not None:
                        self._send(msg.acknowledgement(ack))
                    for message in self._chunks.feed(data):
                        await self._dispatch(message)
                        if self._close_reason is not None:
                            raise _Closed(self._close_reason)
                    # We only send acks and replies: waiting for the encoder to read them is
                    # needed only if it stops reading.
                    if transport.get_write_buffer_size() > _SEND_BACKLOG:
                        await self._drain()
                    if self._grant is not None and len(data) < read_size:
                        # The bytes wait in the kernel, not in the stream reader: a reader
                        # holding data raises a reset before handing it over, and an encoder
                        # that stops may well reset the connection right after its last frame.
                        transport.pause_reading()
                        try:
                            await asyncio.sleep(interval)
                        finally:
                            transport.resume_reading()
                data = await self._reader.read(read_size)
                self._last_data = loop.time()
                if not data:
                    return "encoder closed the connection"
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()

    def _deadline(self) -> tuple[float, str]:
        """When silence ends the connection, and what to say then."""
        idle = self._last_data + self._settings.idle_timeout
        if not self._published and self._publish_deadline < idle:
            return self._publish_deadline, (
                f"did not publish within {self._settings.publish_timeout:g} s"
            )
        return idle, f"no data for {self._settings.idle_timeout:g} s; closing"

    def _watch(self) -> None:
        # One timer per connection, moved on only when it fires, instead of a timeout armed
        # and cancelled around every read: at 6 Mbit/s that is over a hundred a second.
        loop = asyncio.get_running_loop()
        deadline, reason = self._deadline()
        if loop.time() < deadline:
            self._watchdog = loop.call_at(deadline, self._watch)
        elif self._task is not None and not self._task.done():
            self._expired = reason
            self._task.cancel()

    async def _dispatch(self, message: Message) -> None:
        type_id = message.type_id
        if type_id in _MEDIA:
            await self._forward(message)
        elif type_id == MessageType.DATA_AMF0:
            await self._data(message)
        elif type_id in _COMMANDS:
            await self._command(msg.parse_command(message))
        elif type_id == MessageType.USER_CONTROL:
            event, value = msg.parse_user_control(message)
            if event == msg.UserControl.PING_REQUEST:
                self._send(msg.ping_response(value))
        elif type_id == MessageType.WINDOW_ACK_SIZE:
            self._acks.window = msg.parse_u32(message)
        elif type_id == MessageType.AGGREGATE:
            for sub in msg.split_aggregate(message):
                if sub.type_id in _MEDIA or sub.type_id == MessageType.DATA_AMF0:
                    await self._dispatch(sub)
        # Acknowledgements, Set Peer Bandwidth and AMF3 data/shared objects need no action;
        # Set Chunk Size and Abort were applied by the chunk reader.

    async def _forward(self, message: Message) -> None:
        grant = self._grant
        if grant is None:
            self._dropped += 1
            if self._dropped == 1:
                log.info("%s: dropping media sent before publishing was granted", self._tag)
            return
        try:
            await grant.sink.on_media(message)
        except Exception as exc:
            raise _SinkFailed from exc

    async def _data(self, message: Message) -> None:
        payload = strip_set_data_frame(message.payload)
        if self._grant is not None:
            try:
                values = decode_all(payload)
            except AMFError as exc:
                # A broken metadata blob is the encoder's bug, not a reason to stop the stream.
                log.warning("%s: dropping malformed data message: %s", self._tag, exc)
                return
            if len(values) >= 2 and values[0] == "onMetaData" and isinstance(values[1], Mapping):
                try:
                    await self._grant.sink.on_metadata(values[1])
                except Exception as exc:
                    raise _SinkFailed from exc
        await self._forward(Message(message.type_id, message.stream_id, message.timestamp, payload))

    async def _command(self, command: Command) -> None:
        name = command.name
        if name == "connect":
            self._on_connect(command)
        elif self._connect is None:
            raise CommandError(f"'{name}' before 'connect'")
        elif name in ("releaseStream", "FCPublish"):
            if command.transaction_id:
                self._send(msg.empty_result(command.transaction_id))
        elif name == "createStream":
            self._send(msg.create_stream_result(command.transaction_id, self._next_stream_id))
            self._next_stream_id += 1
        elif name == "publish":
            await self._on_publish(command)
        elif name in _UNPUBLISH:
            await self._end_publish(f"encoder sent {name}")
        elif name in _PLAY:
            self._send(
                msg.on_status(
                    command.stream_id, "error", Status.PLAY_FAILED, "This server only ingests."
                )
            )
            raise _Closed(f"refused '{name}': this server only accepts publishing")
        else:
            log.debug("%s: ignoring command %r", self._tag, name)

    def _on_connect(self, command: Command) -> None:
        if self._connect is not None:
            raise CommandError("second 'connect' on one connection")
        if not isinstance(command.command_object, dict):
            raise CommandError("'connect' without a command object")
        self._connect = command.command_object
        encoding = self._connect.get("objectEncoding", 0.0)
        chunk_size = self._settings.chunk_size
        self._send(msg.window_ack_size(self._settings.window_ack_size))
        self._send(msg.set_peer_bandwidth(self._settings.window_ack_size))
        self._send(msg.set_chunk_size(chunk_size))
        self._out.chunk_size = chunk_size
        encoding = encoding if isinstance(encoding, float) else 0.0
        self._send(msg.connect_result(command.transaction_id, encoding))

    def _connect_str(self, key: str) -> str:
        value = (self._connect or {}).get(key)
        return value if isinstance(value, str) else ""

    async def _on_publish(self, command: Command) -> None:
        stream_id = command.stream_id
        if self._published:
            await self._refuse(stream_id, Status.PUBLISH_BAD_NAME, "Already publishing.")
        name = command.argument(0)
        app = self._connect_str("app")
        try:
            path = split_publish_target(app, name if isinstance(name, str) else "")
        except BadStreamName as exc:
            await self._refuse(stream_id, Status.PUBLISH_BAD_NAME, f"Bad stream name: {exc}.")
        masked = mask_key(path.key)
        if path.app not in self._settings.apps:
            await self._refuse(
                stream_id,
                Status.PUBLISH_BAD_NAME,
                f"Unknown application '{_display_app(path.app)}'.",
            )
        request = PublishRequest(
            app=path.app,
            stream_key=path.key,
            peer=self._peer,
            publisher=self,
            query=path.query,
            tc_url=self._connect_str("tcUrl"),
            encoder=self._connect_str("flashVer"),
        )
        try:
            grant = await self._authority.authorize_publish(request)
        except Exception:
            log.exception("%s: publish authority failed for key %s", self._tag, masked)
            await self._refuse(stream_id, "NetStream.Failed", "Server error; try again.")
        if grant is None:
            await asyncio.sleep(self._settings.refusal_delay)
            await self._refuse(
                stream_id, Status.PUBLISH_DENIED, "Publish denied: unknown or revoked stream key."
            )
        self._grant = grant
        self._published = True
        self._send(msg.stream_begin(stream_id))
        self._send(msg.on_status(stream_id, "status", Status.PUBLISH_START, "Publishing."))
        log.info("%s: publishing %s/%s as %s", self._tag, path.app, masked, grant.label or "-")

    async def _refuse(self, stream_id: int, code: str, description: str) -> NoReturn:
        self._send(msg.on_status(stream_id, "error", code, description))
        await self._drain()
        log.warning("%s: publish refused (%s): %s", self._tag, code, description)
        raise _Closed(f"publish refused: {description}")

    async def _end_publish(self, reason: str) -> None:
        grant, self._grant = self._grant, None
        if grant is None:
            return
        log.info("%s: publish ended: %s", self._tag, reason)
        try:
            await grant.sink.on_end(reason)
        except Exception:
            log.exception("%s: media sink failed in on_end", self._tag)

    def _send(self, message: Message) -> None:
        if not self._writer.is_closing():
            self._writer.write(self._out.write(message))

    async def _drain(self) -> None:
        # A peer that stops reading must not park us forever on a full send buffer.
        async with asyncio.timeout(self._settings.idle_timeout):
            await self._writer.drain()

    def _shutdown(self, graceful: bool) -> None:
        if graceful:
            self._writer.close()  # flushes a final onStatus before the FIN
        else:
            self._writer.transport.abort()
