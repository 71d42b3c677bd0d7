"""The HLS output with a real ffmpeg: segments, playlists, a reconnect, the replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from media import codecs, ffprobe, make_flv

from ingest.fanout import Fanout
from ingest.flv import iter_tags
from ingest.hls import DateRange
from ingest.outputs.base import OutputState
from ingest.outputs.hls import HlsOutput, LadderOutput, Rendition, Rung
from ingest.process import live_children
from livebase.settings import Settings

FFMPEG = Settings().ffmpeg_path()


async def publish_file(fan: Fanout, flv: bytes, realtime: float = 0.0) -> None:
    fan.begin_publish()
    for tag in iter_tags(flv):
        fan.push(tag.tag_type, tag.timestamp, tag.payload)
        if realtime:
            await asyncio.sleep(realtime)
        else:
            await asyncio.sleep(0)


async def wait_for(predicate: object, limit: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_source_rendition_reconnect_and_replay(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "in.flv", seconds=5).read_bytes()
    fan = Fanout()
    start = datetime.now(UTC)
    pin = DateRange("pin-1", start, attributes={"X-PRODUCT-ID": 7})
    rendition = Rendition(tmp_path / "source", start, window=3, dateranges=lambda: [pin])
    out = HlsOutput("t", fan.attach("hls"), FFMPEG, rendition, segment_seconds=1)
    out.start()
    try:
        await publish_file(fan, flv)
        await wait_for(lambda: len(rendition.playlist.segments) >= 3)
        await publish_file(fan, flv)  # the encoder reconnects
        await wait_for(lambda: any(s.discontinuity for s in rendition.playlist.segments))
        assert out.state is OutputState.LIVE
    finally:
        await out.stop()
        rendition.end()
    assert not [c for c in live_children() if c.name.startswith("hls:")]
    segments = rendition.playlist.segments
    names = [s.uri for s in segments]
    assert names == sorted(set(names)), "numbering carries on across the restart"
    assert sum(s.discontinuity for s in segments) == 1
    replay = (tmp_path / "source" / "replay.m3u8").read_text()
    assert "#EXT-X-DISCONTINUITY" in replay and "X-PRODUCT-ID=7" in replay
    assert replay.rstrip().endswith("#EXT-X-ENDLIST")
    live = (tmp_path / "source" / "index.m3u8").read_text()
    assert live.count("#EXTINF") == 3
    first = tmp_path / "source" / names[0]
    assert codecs(first) == {"h264", "aac"}
    assert codecs(tmp_path / "source" / "replay.m3u8") == {"h264", "aac"}
    video = next(s for s in ffprobe(first)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 240)


async def test_ladder_encodes_each_rung(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "in.flv", seconds=4, size="640x360").read_bytes()
    fan = Fanout()
    start = datetime.now(UTC)
    rungs = [Rung("240p", 240, 400), Rung("144p", 144, 200)]
    renditions = [Rendition(tmp_path / r.name, start, 3, list) for r in rungs]
    out = LadderOutput("t", fan.attach("ladder"), FFMPEG, rungs, renditions, 1)
    out.start()
    try:
        await publish_file(fan, flv)
        await wait_for(lambda: all(len(r.playlist.segments) >= 2 for r in renditions), 60)
    finally:
        await out.stop()
    for rung, rendition in zip(rungs, renditions, strict=True):
        video = next(
            s
            for s in ffprobe(rendition.dir / rendition.playlist.segments[0].uri)["streams"]
            if s["codec_type"] == "video"
        )
        assert video["codec_name"] == "h264" and video["height"] == rung.height
