"""A stand-in platform that counts: an RTMP server (Livebase's own ingest server code) that
accepts any stream name and counts the video frames each publish brings.

    python -m benchmarks.sink --port 5001 [--port 5002 ...] --events events.jsonl

One JSON line per event goes to ``--events``: ``first`` at a publish's first video frame
(``t`` is ``time.monotonic()``, which on Linux all processes share), ``end`` when the publish
ends, with its frame count. Lighter than one ``ffmpeg -listen`` per destination, and it can
take many publishes on one port, which is how nginx-rtmp's ``push`` sends many streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from ingest.flv import FlvError, parse_video_tag
from ingest.rtmp import RtmpServer, RtmpServerConfig
from ingest.rtmp.amf0 import AMFValue
from ingest.rtmp.chunk import Message
from ingest.rtmp.interfaces import PublishGrant, PublishRequest

__all__ = ["read_events"]

VIDEO = 9


class _Counter:
    def __init__(self, log: IO[str], port: int, stream: str) -> None:
        self.log, self.port, self.stream = log, port, stream
        self.frames = 0
        self.first: float | None = None

    def emit(self, event: str, **data: Any) -> None:
        record = {"ev": event, "port": self.port, "stream": self.stream, "t": time.monotonic()}
        self.log.write(json.dumps({**record, **data}) + "\n")
        self.log.flush()

    async def on_metadata(self, metadata: Mapping[str, AMFValue]) -> None:
        pass

    async def on_media(self, message: Message) -> None:
        if message.type_id != VIDEO:
            return
        try:
            info = parse_video_tag(message.payload)
        except FlvError:
            return
        # Pictures only, as ffprobe counts packets: not the sequence header, and not the
        # end-of-sequence tag ffmpeg sends when a publish ends (AVCPacketType 2).
        if info.packet_type not in ((1, 3) if info.enhanced else (1, -1)):
            return
        self.frames += 1
        if self.first is None:
            self.first = time.monotonic()
            self.emit("first")

    async def on_end(self, reason: str) -> None:
        self.emit("end", frames=self.frames, reason=reason)


class _Authority:
    def __init__(self, log: IO[str], port: int) -> None:
        self.log, self.port = log, port

    async def authorize_publish(self, request: PublishRequest) -> PublishGrant | None:
        stream = request.stream_key.partition("?")[0]
        counter = _Counter(self.log, self.port, stream)
        counter.emit("publish")
        return PublishGrant(sink=counter, label=stream)


async def _serve(ports: list[int], events: Path) -> None:
    with events.open("a", encoding="utf-8") as log:
        servers = [
            RtmpServer(_Authority(log, p), RtmpServerConfig(host="127.0.0.1", port=p))
            for p in ports
        ]
        for server in servers:
            await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for server in servers:
            await server.stop()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events written so far (a line still being written is left for the next read)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--events", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.events))


if __name__ == "__main__":
    main()
