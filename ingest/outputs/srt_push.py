"""Relay a live session to a platform over SRT, streams copied (no transcoding).

ffmpeg remuxes the feed (FLV on its stdin) to MPEG-TS on its stdout; we send that TS over a
libsrt caller socket, seven TS packets (1316 bytes) per message, the live-mode payload every
SRT receiver expects. ffmpeg could call the platform itself, but the stream id and passphrase
would then be on its command line, visible to every user of the machine in ``ps``, and
ffmpeg's ``-/option file`` form does not reach protocol options. So the socket is ours, and
the secrets go to libsrt through ``srt_setsockflag`` only; logs, exceptions and
``last_error`` show at most their last four characters.

A connection lasts the session. An encoder reconnect (a ``NewSource``) that brings the same
codec headers continues on it; new headers (another resolution, another codec) start a new
connection, as the platform would see from an encoder.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import time
from collections.abc import Callable

import ffmpeg
import imageio_ffmpeg

from ingest.fanout import EndOfStream, Feed, NewSource, Tag
from ingest.ffmpeg_args import compile_args
from ingest.flv import TAG_SCRIPT, encode_tag, file_header
from ingest.outputs.base import Output, OutputError, PermanentOutputError, StateListener
from ingest.process import ChildProcess
from ingest.srt.libsrt import (
    SRT_LIVE_PAYLOAD,
    LibSrt,
    Opt,
    RejectReason,
    SrtError,
    SrtUnavailable,
    libsrt,
)
from ingest.srt.streamid import AccessReject
from ingest.srt.target import SrtTarget, parse_srt_target
from ingest.srt.thread import SocketThread

__all__ = ["SrtPushOutput", "SrtTarget", "parse_srt_target", "ts_args"]

log = logging.getLogger("livebase.ingest.srt_push")

# Refusals a retry cannot change: the platform's configuration and ours disagree.
_PERMANENT: dict[int, str] = {
    RejectReason.BADSECRET: "wrong passphrase",
    RejectReason.UNSECURE: "one side has a passphrase and the other has none",
    RejectReason.RESOURCE: "refused by the platform (SRT listeners answer so when they do not "
    "accept the stream id)",
    RejectReason.PEER: "refused by the platform",
    RejectReason.VERSION: "the platform needs a newer SRT version",
    RejectReason.MESSAGEAPI: "the platform is not in live mode",
    RejectReason.CONGESTION: "the platform is not in live mode",
    RejectReason.FILTER: "packet filter settings differ",
    RejectReason.ROGUE: "the platform did not understand the handshake",
}
# Access-control refusals that may pass: overloaded, resource busy or locked for now.
_TRANSIENT_ACCESS = frozenset({AccessReject.OVERLOAD, AccessReject.CONFLICT, AccessReject.LOCKED})


def ts_args(ffmpeg_bin: str) -> list[str]:
    """The feed's FLV on stdin to MPEG-TS on stdout, streams copied."""
    src = ffmpeg.input("pipe:0", f="flv", protocol_whitelist="pipe")
    out = ffmpeg.output(src["v:0?"], src["a:0?"], "pipe:1", c="copy", f="mpegts", flush_packets=1)
    return compile_args(out, ffmpeg_bin)


def _send_all(lib: LibSrt, sock: int, data: bytes) -> None:
    for start in range(0, len(data), SRT_LIVE_PAYLOAD):
        lib.send(sock, data[start : start + SRT_LIVE_PAYLOAD])


def _linger(lib: LibSrt, sock: int, latency_ms: int, within: float) -> None:
    """Wait until the platform acknowledged everything, and then for its receive latency:
    it plays packets out that long after they were sent, and a close drops what it has not
    played yet. Runs on the socket's thread."""
    deadline = time.monotonic() + within
    try:
        while lib.unsent(sock) and time.monotonic() < deadline:
            time.sleep(0.01)
    except SrtError:
        return  # the connection is gone: nothing left to wait for
    time.sleep(min(latency_ms / 1000 + 0.05, max(deadline - time.monotonic(), 0)))


class SrtPushOutput(Output):
    """Publishes the feed to ``url`` (+ ``stream_key``, the stream id if given).

    A URL that cannot be a target raises ``ValueError`` here (``parse_srt_target`` checks one
    ahead of time). A refusal that retrying cannot change (wrong passphrase, stream id not
    accepted) raises ``PermanentOutputError``; an unreachable or silent platform, a lost
    connection or one that takes nothing for ``io_timeout`` seconds raises ``OutputError``.
    """

    kind = "srt-push"

    def __init__(
        self,
        name: str,
        feed: Feed,
        url: str,
        stream_key: str,
        on_state: StateListener | None = None,
        *,
        ffmpeg_bin: str = "",
        connect_timeout: float = 5.0,
        io_timeout: float = 10.0,
        init_tags: Callable[[], list[Tag]] | None = None,
    ) -> None:
        super().__init__(name, feed, on_state)
        self.target = parse_srt_target(url, stream_key)
        self.ffmpeg_bin = ffmpeg_bin or str(imageio_ffmpeg.get_ffmpeg_exe())
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self._init_tags = init_tags
        self._headers: dict[int, Tag] = {}
        self._carried: list[Tag] = []  # a new source's headers, taken from the feed already
        self.child: ChildProcess | None = None
        self.connections = 0
        self.sent = 0  # TS bytes handed to libsrt

    async def session(self) -> None:
        init = self._init_tags() if self._init_tags else list(self._headers.values())
        if self.connections and init and not self._carried:
            # A retry: the backlog is stale and may start mid-GOP. (After new codec headers
            # it is not: the new source's stream follows them in the feed.)
            self.feed.restart(init)
        try:
            lib = libsrt()
        except SrtUnavailable as exc:
            raise PermanentOutputError(str(exc)) from None
        # New codec headers end a connection and start the next at once, within the session:
        # the base class takes a session that returns while finishing for the end.
        while await self._connection(lib):
            pass

    async def _connection(self, lib: LibSrt) -> bool:
        """One connection's life; True when new codec headers need another."""
        self.connections += 1
        address = await self._resolve()
        thread = SocketThread(f"srt-push {self.name}")
        sock, started = -1, False
        try:
            await thread.call(lib.startup)
            started = True
            sock, latency = await thread.call(self._connect, lib, address)
            self.child = child = ChildProcess(
                ts_args(self.ffmpeg_bin), name=f"srt-push:{self.name}", stdin=True, stdout=True
            )
            await child.start()
            log.info("%s %s: publishing to %s", self.kind, self.name, self.target)
            self.went_live()
            return await self._relay(thread, lib, sock, child, latency)
        finally:
            await self.close()
            closing: list[Callable[[], object]] = []
            if sock >= 0:
                closing.append(lambda: lib.close(sock))
            if started:
                closing.append(lib.cleanup)
            thread.finish(*closing)
            await thread.join()

    async def _resolve(self) -> str:
        target = self.target
        try:
            async with asyncio.timeout(self.connect_timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    target.host,
                    target.port,
                    type=socket.SOCK_DGRAM,
                )
        except TimeoutError:
            raise OutputError(f"resolving {target} timed out") from None
        except OSError as exc:
            raise OutputError(f"cannot resolve {target}: {exc}") from None
        return str(infos[0][4][0])

    def _connect(self, lib: LibSrt, address: str) -> tuple[int, int]:
        """A connected caller socket and the latency the platform plays out with. Runs on
        the socket's thread; the secrets go to libsrt only."""
        target = self.target
        sock = lib.socket()
        try:
            timeout_ms = target.connect_timeout_ms or int(self.connect_timeout * 1000)
            lib.set_int(sock, Opt.CONNTIMEO, timeout_ms)
            lib.set_int(sock, Opt.SNDTIMEO, int(self.io_timeout * 1000))
            if target.stream_id:
                lib.set_str(sock, Opt.STREAMID, target.stream_id)
            if target.passphrase:
                lib.set_str(sock, Opt.PASSPHRASE, target.passphrase)
            if target.pbkeylen is not None:
                lib.set_int(sock, Opt.PBKEYLEN, target.pbkeylen)
            if target.latency_ms is not None:
                lib.set_int(sock, Opt.LATENCY, target.latency_ms)
            lib.connect(sock, address, target.port)
            return sock, lib.get_int(sock, Opt.PEERLATENCY)
        except SrtError as exc:
            lib.close(sock)
            raise self._refusal(lib, exc) from None
        except BaseException:
            lib.close(sock)
            raise

    def _refusal(self, lib: LibSrt, exc: SrtError) -> OutputError:
        target, reject = self.target, exc.reject
        if reject is None or reject == RejectReason.TIMEOUT:
            return OutputError(f"cannot connect to {target}: {target.scrub(str(exc))}")
        if reject in _PERMANENT:
            return PermanentOutputError(f"{target} refused the connection: {_PERMANENT[reject]}")
        if 1400 <= reject < 1500 and reject not in _TRANSIENT_ACCESS:
            why = lib.reject_text(reject)
            return PermanentOutputError(f"{target} refused the stream id: {why}")
        return OutputError(f"{target} refused the connection: {lib.reject_text(reject)}")

    async def _relay(
        self, thread: SocketThread, lib: LibSrt, sock: int, child: ChildProcess, latency: int
    ) -> bool:
        pump = asyncio.create_task(self._pump(child), name=f"srt-push-pump {self.name}")
        send = asyncio.create_task(
            self._send(thread, lib, sock, child, latency), name=f"srt-push-send {self.name}"
        )
        try:
            done, _ = await asyncio.wait((pump, send), return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                # The end of the stream, or of this source: the tail goes out first.
                reconnect = not pump.result()
                await send
                return reconnect
            send.result()
            detail = " | ".join(child.last_error_lines[-2:]) or "no message"
            raise OutputError(f"ffmpeg stopped remuxing: {detail}")
        finally:
            for task in (pump, send):
                task.cancel()
            await asyncio.gather(pump, send, return_exceptions=True)

    async def _pump(self, child: ChildProcess) -> bool:
        """The feed into ffmpeg as FLV, until the end of the stream (True) or new codec
        headers that need a new connection (False); then ffmpeg's stdin is closed, so it
        writes out what it holds. Raises if ffmpeg stops reading."""
        stdin = child.stdin
        stdin.write(file_header())
        written: dict[int, bytes] = {}
        carried, self._carried = collections.deque(self._carried), []
        fresh: list[Tag] = []  # the headers since the last new source
        base: int | None = None  # each connection's clock starts at its first media tag
        while True:
            item = carried.popleft() if carried else await self.feed.get()
            if isinstance(item, EndOfStream):
                stdin.close()
                return True
            if isinstance(item, NewSource):
                fresh = []  # what matters is whether the headers that follow differ
                continue
            if item.header:
                self._headers[item.kind] = item
                fresh.append(item)
                if item.kind in written:
                    if item.kind != TAG_SCRIPT and written[item.kind] != item.payload:
                        log.info("%s %s: new codec headers; reconnecting", self.kind, self.name)
                        self._carried = list({tag.kind: tag for tag in fresh}.values())
                        stdin.close()
                        return False
                    continue
                written[item.kind] = item.payload
                # ffmpeg reads a script tag as metadata only at time 0.
                ts = 0 if base is None or item.kind == TAG_SCRIPT else item.timestamp - base
            else:
                if base is None:
                    base = item.timestamp
                ts = item.timestamp - base
            stdin.write(encode_tag(item.kind, max(ts, 0), item.payload))
            await self._drain(child)

    async def _drain(self, child: ChildProcess) -> None:
        # Longer than a send may block, so a stalled platform is reported as such first.
        within = 2 * self.io_timeout
        try:
            async with asyncio.timeout(within):
                await child.stdin.drain()
        except TimeoutError:
            raise OutputError(f"ffmpeg took no data for {within:g} s") from None
        except (ConnectionResetError, BrokenPipeError):
            detail = " | ".join(child.last_error_lines[-2:]) or "no message"
            raise OutputError(f"ffmpeg stopped reading its input: {detail}") from None

    async def _send(
        self, thread: SocketThread, lib: LibSrt, sock: int, child: ChildProcess, latency: int
    ) -> None:
        """ffmpeg's TS to the platform in 1316-byte messages, until ffmpeg ends."""
        pending = bytearray()
        while data := await child.stdout.read(1 << 16):
            pending += data
            whole = len(pending) - len(pending) % SRT_LIVE_PAYLOAD
            if whole:
                chunk = bytes(pending[:whole])
                del pending[:whole]
                await self._transmit(thread, lib, sock, chunk)
        if pending:
            await self._transmit(thread, lib, sock, bytes(pending))
        await thread.call(_linger, lib, sock, latency, self.io_timeout)

    async def _transmit(self, thread: SocketThread, lib: LibSrt, sock: int, data: bytes) -> None:
        try:
            await thread.call(_send_all, lib, sock, data)
        except SrtError as exc:
            if exc.timed_out:
                stalled = f"{self.target} took nothing for {self.io_timeout:g} s"
                raise OutputError(f"destination stalled: {stalled}") from None
            lost = self.target.scrub(str(exc))
            raise OutputError(f"connection to {self.target} lost: {lost}") from None
        self.sent += len(data)

    async def close(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                await child.stop(grace=2)
