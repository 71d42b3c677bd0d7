"""The SRT ingest server: one listening socket, one task (and socket thread) per caller.

Usage::

    server = SrtServer(registry, settings.srt_port, host=settings.listen_host,
                       ffmpeg=settings.ffmpeg_path())
    await server.start()
    ...
    await server.stop()

Callers are screened during the handshake, on a libsrt thread: a stream id that names no key
(or asks to play, ``m=request``) is refused with an SRT_REJX code the encoder shows, and so is
a caller beyond ``max_connections``. Whether the key opens a room is the registry's question,
which needs the database, so it is asked after the handshake; a refused caller is then
disconnected at once. Each publish runs on its own, so one bad caller never disturbs another.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
from types import TracebackType

import imageio_ffmpeg

from ingest.srt.libsrt import LibSrt, Opt, SrtError, libsrt
from ingest.srt.publish import PublishRegistry, SrtPublish
from ingest.srt.streamid import AccessReject, StreamIdError, parse_stream_id
from ingest.srt.thread import SocketThread

__all__ = ["SrtServer"]

log = logging.getLogger("livebase.ingest.srt")


def _literal_address(host: str, port: int) -> str:
    """The address to bind: a literal as is, a name resolved (this runs on a worker thread)."""
    host = host or "0.0.0.0"  # noqa: S104 (an empty host means every interface, as asyncio has it)
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])


class SrtServer:
    """SRT ingest on ``host``:``port`` (UDP); port 0 picks a free one, see ``port``.

    ``passphrase`` (10 to 79 characters) makes every caller encrypt with it; empty leaves
    encryption to the caller's choice off. ``latency_ms`` is the least receive latency (libsrt
    takes the larger of the two sides'); None keeps libsrt's 120 ms. A publish that sends
    nothing for ``idle_timeout`` seconds is ended; a caller whose key opens no room is
    disconnected after ``refusal_delay`` seconds.
    """

    def __init__(
        self,
        registry: PublishRegistry,
        port: int = 9000,
        *,
        host: str = "127.0.0.1",
        ffmpeg: str = "",
        passphrase: str = "",
        latency_ms: int | None = None,
        idle_timeout: float = 10.0,
        refusal_delay: float = 0.5,
        max_connections: int = 64,
    ) -> None:
        if passphrase and not 10 <= len(passphrase) <= 79:
            raise ValueError("the SRT passphrase must be 10 to 79 characters long")
        self._registry = registry
        self._host = host
        self._requested_port = port
        self._ffmpeg = ffmpeg or str(imageio_ffmpeg.get_ffmpeg_exe())
        self._passphrase = passphrase
        self._latency_ms = latency_ms
        self._idle_timeout = idle_timeout
        self._refusal_delay = refusal_delay
        self._max_connections = max_connections
        self._lib: LibSrt | None = None
        self._thread: SocketThread | None = None
        self._listener = -1
        self._port = 0
        self._accepting: asyncio.Task[None] | None = None
        self._tasks: dict[asyncio.Task[None], SrtPublish] = {}
        self._ids = itertools.count(1)
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound UDP port (useful with port 0)."""
        if not self._port:
            raise RuntimeError("SRT server is not started")
        return self._port

    @property
    def connections(self) -> list[SrtPublish]:
        return list(self._tasks.values())

    async def start(self) -> None:
        """Listen; ``SrtUnavailable`` names the package to install when libsrt is missing."""
        if self._thread is not None:
            raise RuntimeError("SRT server already started")
        self._lib = libsrt()
        self._thread = SocketThread("srt-listen")
        try:
            self._listener, self._port = await self._thread.call(self._open, self._lib)
        except BaseException:
            self._thread.finish()
            self._thread = None
            raise
        self._accepting = asyncio.create_task(self._accept(self._lib), name="srt-accept")
        log.info("SRT ingest listening on srt://%s:%d", self._host, self._port)

    def _open(self, lib: LibSrt) -> tuple[int, int]:
        """Create, configure and bind the listener (on the listener's thread)."""
        address = _literal_address(self._host, self._requested_port)
        lib.startup()
        sock = -1
        try:
            sock = lib.socket()
            if self._passphrase:
                lib.set_str(sock, Opt.PASSPHRASE, self._passphrase)
            if self._latency_ms is not None:
                lib.set_int(sock, Opt.LATENCY, self._latency_ms)
            lib.bind(sock, address, self._requested_port)
            lib.listen(sock, 16)
            lib.on_listen(sock, self._screen)
            return sock, lib.local_port(sock)
        except BaseException:
            if sock >= 0:
                lib.close(sock)
            lib.cleanup()
            raise

    def _screen(self, sock: int, peer: str, stream_id: str) -> int | None:
        """A caller in the handshake: None lets it in, a code refuses it. On a libsrt thread
        that serves every connection of the port, so nothing here may wait."""
        if self._stopping:
            return AccessReject.OVERLOAD
        if len(self._tasks) >= self._max_connections:
            log.warning("srt %s: refused: %d connections already", peer, len(self._tasks))
            return AccessReject.OVERLOAD
        try:
            parse_stream_id(stream_id)
        except StreamIdError as exc:
            log.warning("srt %s: refused in the handshake: %s", peer, exc)
            return exc.reject
        return None

    async def _accept(self, lib: LibSrt) -> None:
        assert self._thread is not None
        while True:
            try:
                sock, peer = await self._thread.call(lib.accept, self._listener)
            except SrtError as exc:
                if not self._stopping:
                    log.error("SRT ingest stopped accepting: %s", exc)
                return
            if self._stopping:
                await asyncio.to_thread(lib.close, sock)
                return
            publish = SrtPublish(
                lib,
                sock,
                peer,
                next(self._ids),
                self._registry,
                self._ffmpeg,
                idle_timeout=self._idle_timeout,
                refusal_delay=self._refusal_delay,
            )
            task = asyncio.create_task(publish.run(), name=f"srt {peer}")
            self._tasks[task] = publish
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("srt task %s crashed", task.get_name(), exc_info=task.exception())

    async def stop(self) -> None:
        """Stop listening, end every publish (sinks get ``on_end``) and wait for them."""
        thread, lib = self._thread, self._lib
        if thread is None or lib is None:
            return
        self._stopping = True
        # srt_accept is blocked on the listener's thread; closing from another one wakes it.
        await asyncio.to_thread(lib.close, self._listener)
        if self._accepting is not None:
            await self._accepting
        publishes = list(self._tasks.items())
        for publish in self._tasks.values():
            publish.close("the server is stopping")
        if publishes:
            await asyncio.wait([task for task, _ in publishes])
        for _, publish in publishes:
            await publish.wait_closed()
        thread.finish(lib.cleanup)
        await thread.join()
        self._thread = self._accepting = None
        self._port = 0

    async def __aenter__(self) -> SrtServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
