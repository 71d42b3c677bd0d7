"""One SRT publish: the caller's MPEG-TS, remuxed to FLV by ffmpeg, into the room's pipeline.

The socket's blocking calls run on its own thread (``SocketThread``); the TS it receives goes
to an ffmpeg that copies the streams into FLV (no transcoding), and the FLV tags ffmpeg writes
go to the sink the registry granted, as RTMP media does. The stream key never reaches ffmpeg:
the stream id is read from the socket here, and ffmpeg only ever sees pipes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import time
from collections.abc import Callable
from typing import Protocol

import ffmpeg

from ingest.ffmpeg_args import compile_args
from ingest.flv import FlvError
from ingest.flv_reader import FlvReader
from ingest.process import ChildProcess
from ingest.rtmp.interfaces import Publisher
from ingest.srt.libsrt import SRT_LIVE_MAX_PAYLOAD, LibSrt, Opt, SrtError
from ingest.srt.streamid import StreamIdError, parse_stream_id
from ingest.srt.thread import SocketThread
from livebase.credentials import mask

__all__ = ["PublishRegistry", "SrtPublish", "SrtSink", "remux_args"]

log = logging.getLogger("livebase.ingest.srt")

RECEIVE_TIMEOUT_MS = 250  # how long one receive call waits, so a close is noticed soon
BATCH_BYTES = 64 * 1024  # TS handed to ffmpeg at once; fewer loop wake-ups than per message
BATCH_SECONDS = 0.02
FLUSH_SECONDS = 5.0  # after the caller leaves, how long ffmpeg may take to write the tail


class SrtSink(Protocol):
    """Where a publish's media goes (the registry's ``IngestSink``)."""

    @property
    def label(self) -> str: ...

    def push(self, kind: int, timestamp: int, payload: bytes) -> None: ...

    async def on_end(self, reason: str) -> None: ...


class PublishRegistry(Protocol):
    """What the SRT server needs from the core: ``LiveRegistry.begin``."""

    async def begin(
        self,
        key: str,
        protocol: str,
        peer: str,
        publisher: Publisher | None = None,
        *,
        room: tuple[str, str] | None = None,
    ) -> SrtSink | None: ...


def remux_args(ffmpeg_bin: str) -> list[str]:
    """MPEG-TS on stdin to FLV on stdout, streams copied: the first video and audio only, so
    SCTE-35, KLV or teletext some encoders add cannot stop the FLV muxer."""
    src = ffmpeg.input("pipe:0", f="mpegts", protocol_whitelist="pipe")
    out = ffmpeg.output(
        src["v:0?"],
        src["a:0?"],
        "pipe:1",
        c="copy",
        f="flv",
        flvflags="no_duration_filesize",
        flush_packets=1,  # a tag as soon as it is muxed, not when 32 KiB have gathered
    )
    return compile_args(out, ffmpeg_bin)


def _receive_batch(lib: LibSrt, sock: int, buffer: ctypes.Array[ctypes.c_char]) -> bytes:
    """What arrives within ~20 ms of the first message (b"" if nothing came in one timeout).
    Runs on the socket's thread."""
    first = lib.recv(sock, buffer)
    if not first:
        return b""
    batch, deadline = bytearray(first), time.monotonic() + BATCH_SECONDS
    while len(batch) < BATCH_BYTES and time.monotonic() < deadline:
        try:
            message = lib.recv(sock, buffer)
        except SrtError:
            break  # what came is delivered; the next call reports the error again
        if not message:
            break
        batch += message
    return bytes(batch)


class SrtPublish:
    """An accepted SRT caller, from its stream id to the end of its publish."""

    def __init__(
        self,
        lib: LibSrt,
        sock: int,
        peer: str,
        connection_id: int,
        registry: PublishRegistry,
        ffmpeg_bin: str,
        *,
        idle_timeout: float = 10.0,
        refusal_delay: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lib = lib
        self._sock = sock
        self._peer = peer
        self._id = connection_id
        self._registry = registry
        self._ffmpeg = ffmpeg_bin
        self._idle_timeout = idle_timeout
        self._refusal_delay = refusal_delay
        self._clock = clock
        self._thread = SocketThread(f"srt-{connection_id}")
        self._closing = asyncio.Event()
        self._close_reason = ""
        self.child: ChildProcess | None = None
        self.received = 0  # TS bytes, for tests and stats

    @property
    def connection_id(self) -> int:
        return self._id

    @property
    def peer(self) -> str:
        return self._peer

    async def wait_closed(self) -> None:
        """Wait until the socket is closed (after ``run`` returned)."""
        await self._thread.join()

    def close(self, reason: str) -> None:
        """End the publish soon (a takeover, the server stopping). Never blocks."""
        if not self._closing.is_set():
            self._close_reason = reason
            self._closing.set()

    async def run(self) -> None:
        try:
            try:
                stream_id = await self._thread.call(self._lib.get_str, self._sock, Opt.STREAMID)
                await self._thread.call(
                    self._lib.set_int, self._sock, Opt.RCVTIMEO, RECEIVE_TIMEOUT_MS
                )
                target = parse_stream_id(stream_id)
            except (SrtError, StreamIdError) as exc:
                log.warning("srt %s: closed: %s", self._peer, exc)
                return
            sink = await self._registry.begin(target.key, "srt", self._peer, self, room=target.room)
            if sink is None:
                log.info(
                    "srt %s: closed: the stream key %s opens no room", self._peer, mask(target.key)
                )
                # A caller closed on within milliseconds of its handshake can miss the
                # shutdown and wait out its 5 s peer-idle timeout; the pause also slows down
                # anyone guessing keys.
                await asyncio.sleep(self._refusal_delay)
                return
            reason = "the publish ended"
            try:
                reason = await self._relay(sink)
            finally:
                await sink.on_end(reason)
        finally:
            self._thread.finish(lambda: self._lib.close(self._sock))

    async def _relay(self, sink: SrtSink) -> str:
        """Media until the caller leaves, goes quiet or is closed; the reason it ended."""
        log.info("srt %s: publishing to %s", self._peer, sink.label)
        self.child = child = ChildProcess(
            remux_args(self._ffmpeg), name=f"srt-remux:{sink.label}", stdin=True, stdout=True
        )
        await child.start()
        receive = asyncio.create_task(self._receive(child), name=f"srt-receive {self._peer}")
        tags = asyncio.create_task(self._tags(child, sink), name=f"srt-tags {self._peer}")
        closing = asyncio.create_task(self._closing.wait())
        try:
            done, _ = await asyncio.wait(
                (receive, tags, closing), return_when=asyncio.FIRST_COMPLETED
            )
            if closing in done:
                reason = self._close_reason
            elif receive in done:
                reason = receive.result()
                # The caller left: let ffmpeg write out what it holds.
                with contextlib.suppress(OSError):
                    child.stdin.close()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_SECONDS):
                        await asyncio.shield(tags)
            else:
                reason = tags.result()
            log.info("srt %s: publish to %s ended: %s", self._peer, sink.label, reason)
            return reason
        finally:
            for task in (receive, tags, closing):
                task.cancel()
            await asyncio.gather(receive, tags, closing, return_exceptions=True)
            await child.stop(grace=2)

    async def _receive(self, child: ChildProcess) -> str:
        """The caller's TS into ffmpeg's stdin; returns why it stopped."""
        buffer = ctypes.create_string_buffer(SRT_LIVE_MAX_PAYLOAD + 44)  # any payload size
        last = self._clock()
        while True:
            try:
                data = await self._thread.call(_receive_batch, self._lib, self._sock, buffer)
            except SrtError as exc:
                return f"the connection ended ({exc})"
            now = self._clock()
            if not data:
                if now - last >= self._idle_timeout:
                    return f"no data for {self._idle_timeout:g} s"
                continue
            last = now
            self.received += len(data)
            stdin = child.stdin
            if stdin.is_closing():
                return "ffmpeg stopped reading"
            stdin.write(data)
            try:
                async with asyncio.timeout(self._idle_timeout):
                    await stdin.drain()
            except TimeoutError:
                return f"ffmpeg took no data for {self._idle_timeout:g} s"
            except (ConnectionResetError, BrokenPipeError):
                return "ffmpeg stopped reading"

    async def _tags(self, child: ChildProcess, sink: SrtSink) -> str:
        """ffmpeg's FLV into the sink; returns why it stopped."""
        reader = FlvReader()
        try:
            while data := await child.stdout.read(1 << 16):
                for tag in reader.feed(data):
                    sink.push(tag.tag_type, tag.timestamp, tag.payload)
            code = await child.wait()
            if code != 0:
                detail = " | ".join(child.last_error_lines[-2:]) or "no message"
                return f"ffmpeg could not remux the stream (exit {code}): {detail}"
            reader.end()
        except FlvError as exc:
            return f"ffmpeg wrote malformed FLV: {exc}"
        return "the stream ended"
