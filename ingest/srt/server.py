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

The listener sleeps while no caller is connected: libsrt's receive thread polls its socket
every 10 ms whether or not anything arrives, about a quarter of a CPU second a minute spent on
nothing. So the server binds the UDP port itself, for its whole life, and while asleep only the
event loop watches that socket. A caller's first handshake packet wakes it: libsrt's listener
is opened on a duplicate of the socket (``srt_bind_acquire``), and libsrt's threads start.
The packet that woke it waits in the socket for libsrt to read; were it missed, callers repeat
the handshake every 250 ms. ``sleep_after`` seconds after the last connection ended
(or after a wake-up that brought none), the listener is closed and its threads end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import socket
from types import TracebackType

import imageio_ffmpeg

from ingest.srt.libsrt import LibSrt, Opt, SrtError, libsrt
from ingest.srt.publish import PublishRegistry, SrtPublish
from ingest.srt.streamid import AccessReject, StreamIdError, parse_stream_id
from ingest.srt.thread import SocketThread

__all__ = ["SrtServer"]

log = logging.getLogger("livebase.ingest.srt")

_HANDSHAKE_TIME = 5.0  # seconds a woken listener waits for its first caller, at least


def _literal_address(host: str, port: int) -> str:
    """The address to bind: a literal as is, a name resolved (this runs on a worker thread)."""
    host = host or "0.0.0.0"  # noqa: S104 (an empty host means every interface, as asyncio has it)
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return str(socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0])


def _udp_socket(host: str, port: int) -> socket.socket:
    """The port's UDP socket, bound for the server's life (on a worker thread: names resolve)."""
    address = _literal_address(host, port)
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 callers too
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class SrtServer:
    """SRT ingest on ``host``:``port`` (UDP); port 0 picks a free one, see ``port``.

    ``passphrase`` (10 to 79 characters) makes every caller encrypt with it; empty leaves
    encryption to the caller's choice off. ``latency_ms`` is the least receive latency (libsrt
    takes the larger of the two sides'); None keeps libsrt's 120 ms. A publish that sends
    nothing for ``idle_timeout`` seconds is ended; a caller whose key opens no room is
    disconnected after ``refusal_delay`` seconds. libsrt's listener is closed ``sleep_after``
    seconds after the last connection ended, and opened again by the next caller.
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
        sleep_after: float = 30.0,
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
        self._sleep_after = sleep_after
        self._lib: LibSrt | None = None
        self._udp: socket.socket | None = None  # bound from start to stop
        self._switch = asyncio.Lock()  # waking up, going to sleep and stopping, one at a time
        self._thread: SocketThread | None = None  # these three only while awake
        self._listener = -1
        self._accepting: asyncio.Task[None] | None = None
        self._waking: asyncio.Task[None] | None = None
        self._dozing: asyncio.Task[None] | None = None
        self._sleep_timer: asyncio.TimerHandle | None = None
        self._port = 0
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

    @property
    def awake(self) -> bool:
        """Whether libsrt's listener (and its threads) is open."""
        return self._thread is not None

    async def start(self) -> None:
        """Bind the port and wait, asleep, for callers; ``SrtUnavailable`` names the package
        to install when libsrt is missing."""
        if self._udp is not None:
            raise RuntimeError("SRT server already started")
        self._lib = libsrt()
        self._udp = await asyncio.to_thread(_udp_socket, self._host, self._requested_port)
        self._port = int(self._udp.getsockname()[1])
        self._stopping = False
        self._watch()
        log.info("SRT ingest listening on srt://%s:%d", self._host, self._port)

    # --- asleep: the event loop watches the port ------------------------------------------------

    def _watch(self) -> None:
        assert self._udp is not None
        asyncio.get_running_loop().add_reader(self._udp.fileno(), self._on_datagram)

    def _on_datagram(self) -> None:
        """A datagram waits on the sleeping port. It is left there for libsrt to read."""
        assert self._udp is not None
        asyncio.get_running_loop().remove_reader(self._udp.fileno())
        self._waking = asyncio.create_task(self._wake(), name="srt-wake")

    async def _wake(self) -> None:
        assert self._udp is not None and self._lib is not None
        async with self._switch:
            if self._stopping or self.awake:
                return
            thread = SocketThread("srt-listen")
            try:
                self._listener = await thread.call(
                    self._open, self._lib, os.dup(self._udp.fileno())
                )
            except OSError as exc:  # SrtError included
                thread.finish()
                log.error("SRT ingest could not open its listener: %s", exc)
                self._discard()  # or the same datagram would wake it again at once
                self._watch()
                return
            self._thread = thread
            self._accepting = asyncio.create_task(self._accept(self._lib), name="srt-accept")
            # A wake-up that brings no caller ends too, but not before a slow handshake can
            # have finished (libsrt's callers give up after 3 s).
            self._sleep_later(max(self._sleep_after, _HANDSHAKE_TIME))
            log.debug("SRT ingest: a datagram woke the listener")

    def _discard(self) -> None:
        assert self._udp is not None
        try:
            while True:
                self._udp.recv(2048)
        except OSError:
            return  # BlockingIOError: nothing left

    def _open(self, lib: LibSrt, udp_fd: int) -> int:
        """Create and configure the listener on a duplicate of the port's socket, which libsrt
        closes with it (on the listener's thread)."""
        lib.startup()
        sock = -1
        try:
            sock = lib.socket()
            if self._passphrase:
                lib.set_str(sock, Opt.PASSPHRASE, self._passphrase)
            if self._latency_ms is not None:
                lib.set_int(sock, Opt.LATENCY, self._latency_ms)
        except BaseException:
            os.close(udp_fd)
            if sock >= 0:
                lib.close(sock)
            lib.cleanup()
            raise
        try:
            try:
                lib.bind_acquire(sock, udp_fd)
            except BaseException:
                os.close(udp_fd)  # not libsrt's until bound
                raise
            lib.listen(sock, 16)
            lib.on_listen(sock, self._screen)
            return sock
        except BaseException:
            lib.close(sock)
            lib.cleanup()
            raise

    # --- awake: libsrt listens ----------------------------------------------------------------

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
        thread, listener = self._thread, self._listener
        while True:
            try:
                sock, peer = await thread.call(lib.accept, listener)
            except SrtError as exc:
                if not self._stopping and self._dozing is None:
                    log.error("SRT ingest stopped accepting: %s", exc)
                    # Asleep again, the next caller opens a new listener.
                    self._sleep_later(0)
                return
            if self._stopping or self._dozing is not None:
                # Connected in the instant the listener closed: its caller reconnects.
                await asyncio.to_thread(lib.close, sock)
                return
            self._cancel_sleep()
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
        if not self._tasks:
            self._sleep_later(self._sleep_after)

    # --- going to sleep -----------------------------------------------------------------------

    def _sleep_later(self, delay: float) -> None:
        self._cancel_sleep()
        if not self._stopping:
            loop = asyncio.get_running_loop()
            self._sleep_timer = loop.call_later(delay, self._sleep_now)

    def _cancel_sleep(self) -> None:
        if self._sleep_timer is not None:
            self._sleep_timer.cancel()
            self._sleep_timer = None

    def _sleep_now(self) -> None:
        self._sleep_timer = None
        if self.awake and not self._tasks and not self._stopping and self._dozing is None:
            # Set before any await, so a caller accepted from now on is turned away.
            self._dozing = asyncio.create_task(self._sleep(), name="srt-sleep")

    async def _sleep(self) -> None:
        try:
            async with self._switch:
                if self._stopping or not self.awake:
                    return
                await self._close_listener()
                await self._release_thread()
                self._watch()
                log.debug("SRT ingest: the listener sleeps")
        finally:
            self._dozing = None

    async def _close_listener(self) -> None:
        """Close libsrt's listener and end the accept loop; publishes keep their sockets."""
        assert self._lib is not None
        # srt_accept is blocked on the listener's thread; closing from another one wakes it.
        await asyncio.to_thread(self._lib.close, self._listener)
        if self._accepting is not None:
            await self._accepting
        self._accepting = None
        self._listener = -1

    async def _release_thread(self) -> None:
        """End the listener's thread with a last ``srt_cleanup``: when nothing else in the
        process uses libsrt, its threads end there and then."""
        thread, lib = self._thread, self._lib
        assert thread is not None and lib is not None
        thread.finish(lib.cleanup)
        await thread.join()
        self._thread = None

    # --- stopping -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop listening, end every publish (sinks get ``on_end``) and wait for them."""
        udp = self._udp
        if udp is None:
            return
        self._stopping = True
        self._cancel_sleep()
        async with self._switch:  # a wake-up or a sleep under way ends first
            asyncio.get_running_loop().remove_reader(udp.fileno())
            if self.awake:
                await self._close_listener()
        publishes = list(self._tasks.items())
        for publish in self._tasks.values():
            publish.close("the server is stopping")
        if publishes:
            await asyncio.wait([task for task, _ in publishes])
        for _, publish in publishes:
            await publish.wait_closed()
        if self.awake:
            await self._release_thread()
        for task in (self._waking, self._dozing):
            if task is not None:
                await task
        udp.close()
        self._udp = self._waking = None
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
