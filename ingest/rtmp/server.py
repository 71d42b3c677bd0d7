"""The asyncio RTMP ingest server: owns the listening socket and one task per connection.

Usage::

    server = RtmpServer(authority, RtmpServerConfig(port=settings.rtmp_port))
    await server.start()
    ...
    await server.stop()

Everything about a publish beyond the protocol (is the key valid, where does media go, what
happens on a takeover) is asked of the `PublishAuthority` the core provides.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from dataclasses import dataclass, field
from types import TracebackType

from .chunk import MAX_MESSAGE_SIZE
from .connection import ConnectionSettings, RtmpConnection
from .interfaces import PublishAuthority

__all__ = ["RtmpServer", "RtmpServerConfig"]

log = logging.getLogger("ingest.rtmp")


@dataclass(frozen=True, slots=True)
class RtmpServerConfig:
    host: str | None = None  # None listens on every interface, IPv4 and IPv6
    port: int = 1935  # 0 picks a free port; read it back from `RtmpServer.port`
    apps: frozenset[str] = field(default_factory=lambda: frozenset({"live"}))
    handshake_timeout: float = 10.0
    idle_timeout: float = 30.0
    publish_timeout: float = 20.0
    refusal_delay: float = 1.0
    max_connections: int = 256
    max_message_size: int = MAX_MESSAGE_SIZE
    chunk_size: int = 4096
    window_ack_size: int = 2_500_000

    def connection_settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            apps=self.apps,
            handshake_timeout=self.handshake_timeout,
            idle_timeout=self.idle_timeout,
            publish_timeout=self.publish_timeout,
            refusal_delay=self.refusal_delay,
            chunk_size=self.chunk_size,
            window_ack_size=self.window_ack_size,
            max_message_size=self.max_message_size,
        )


def _format_peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


class RtmpServer:
    def __init__(self, authority: PublishAuthority, config: RtmpServerConfig | None = None) -> None:
        self._authority = authority
        self._config = config or RtmpServerConfig()
        self._settings = self._config.connection_settings()
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[None], RtmpConnection] = {}
        self._ids = itertools.count(1)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("RTMP server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def connections(self) -> list[RtmpConnection]:
        return list(self._tasks.values())

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("RTMP server already started")
        self._server = await asyncio.start_server(
            self._accept, self._config.host, self._config.port, reuse_address=True
        )
        addresses = ", ".join(_format_peer(s.getsockname()) for s in self._server.sockets)
        log.info("RTMP ingest listening on %s", addresses)

    async def stop(self) -> None:
        """Stop listening, end every connection (sinks get `on_end`) and wait for them."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            self._tasks[task].close("server shutting down")
        if tasks:
            await asyncio.wait(tasks)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> RtmpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _format_peer(writer.get_extra_info("peername"))
        if self._server is None or len(self._tasks) >= self._config.max_connections:
            log.warning("rtmp %s: refused: %d connections already", peer, len(self._tasks))
            writer.transport.abort()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Commands are tiny and a publisher waits on each reply.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = RtmpConnection(
            reader,
            writer,
            connection_id=next(self._ids),
            peer=peer,
            authority=self._authority,
            settings=self._settings,
        )
        task = connection.start()
        self._tasks[task] = connection
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("rtmp task %s crashed", task.get_name(), exc_info=task.exception())
