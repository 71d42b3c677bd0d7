"""Helpers for the SRT tests: a fake registry made of plain records (it follows
``LiveRegistry.begin``: a known key gets a sink, a second publish takes over the first), bare
SRT callers made with the libsrt binding for what ffmpeg will not do (connect and send
nothing), ffmpeg publishing over SRT, and a look at child processes' command lines."""

from __future__ import annotations

import asyncio
import ctypes
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media import push_file

from ingest.process import live_children
from ingest.srt.libsrt import Opt, SrtError, libsrt


@dataclass
class Sink:
    label: str = "haifeng/studio-1"
    tags: list[tuple[int, int, bytes]] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, kind: int, timestamp: int, payload: bytes) -> None:
        self.tags.append((kind, timestamp, payload))

    async def on_end(self, reason: str) -> None:
        self.ends.append(reason)
        self.ended.set()

    def count(self, kind: int) -> int:
        return sum(1 for k, _, _ in self.tags if k == kind)


@dataclass
class Registry:
    keys: set[str]
    begins: list[tuple[str, str, str, tuple[str, str] | None]] = field(default_factory=list)
    sinks: dict[str, list[Sink]] = field(default_factory=dict)
    publishers: dict[str, Any] = field(default_factory=dict)

    async def begin(
        self,
        key: str,
        protocol: str,
        peer: str,
        publisher: Any = None,
        *,
        room: tuple[str, str] | None = None,
    ) -> Sink | None:
        self.begins.append((key, protocol, peer, room))
        if key not in self.keys:
            return None
        if (old := self.publishers.get(key)) is not None:
            old.close("taken over by a new publish")
        self.publishers[key] = publisher
        sink = Sink()
        self.sinks.setdefault(key, []).append(sink)
        return sink


class Caller:
    """A bare SRT caller on 127.0.0.1. Its calls block: use them through ``asyncio.to_thread``."""

    def __init__(self, port: int, stream_id: str, passphrase: str = "") -> None:
        self.lib = libsrt()
        self.lib.startup()
        self.sock = self.lib.socket()
        self.lib.set_int(self.sock, Opt.CONNTIMEO, 3000)
        self.lib.set_int(self.sock, Opt.RCVTIMEO, 100)
        if stream_id:
            self.lib.set_str(self.sock, Opt.STREAMID, stream_id)
        if passphrase:
            self.lib.set_str(self.sock, Opt.PASSPHRASE, passphrase)
        self.port = port
        self.closed = False

    def connect(self) -> None:
        self.lib.connect(self.sock, "127.0.0.1", self.port)

    def send(self, data: bytes) -> None:
        for start in range(0, len(data), 1316):
            self.lib.send(self.sock, data[start : start + 1316])

    def broken_within(self, seconds: float) -> bool:
        """Whether the server ends the connection within ``seconds``."""
        raw = ctypes.create_string_buffer(1500)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.lib.recv(self.sock, raw)
            except SrtError:
                return True
        return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.lib.close(self.sock)
            self.lib.cleanup()


def publish(port: int, stream_id: str, flv: Path, *, realtime: bool = True) -> Any:
    """ffmpeg sending H.264/AAC in MPEG-TS over SRT, as OBS's SRT output does."""
    url = f"srt://127.0.0.1:{port}?streamid={stream_id}&connect_timeout=3000"
    return push_file(flv, "mpegts", url, realtime=realtime)


def finished(process: Any, within: float = 30) -> int:
    try:
        return int(process.wait(within))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def child_command_lines() -> list[bytes]:
    """The command lines of our running children, as ``ps`` shows them to any user."""
    lines = []
    for child in live_children():
        if child.pid is not None:
            lines.append(Path(f"/proc/{child.pid}/cmdline").read_bytes())
    return lines
