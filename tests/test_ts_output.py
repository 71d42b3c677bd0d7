"""The source rendition cut in process (H.264 + AAC), or by ffmpeg for other codecs."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from media import codecs, make_flv, video_packets
from test_hls_output import FFMPEG, publish_file, wait_for

from ingest.fanout import Fanout
from ingest.flv import TAG_AUDIO, TAG_VIDEO, iter_tags
from ingest.hls import DateRange
from ingest.outputs.base import OutputState
from ingest.outputs.hls import Rendition
from ingest.outputs.ts_hls import SourceHlsOutput
from ingest.process import live_children


def ffmpeg_children() -> list[str]:
    return [c.name for c in live_children() if c.name.startswith("hls:")]


async def test_h264_aac_is_cut_in_process_across_a_reconnect(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "in.flv", seconds=5, gop=30)
    fan = Fanout()
    start = datetime.now(UTC)
    pin = DateRange("pin-1", start, attributes={"X-PRODUCT-ID": 7})
    rendition = Rendition(tmp_path / "source", start, window=3, dateranges=lambda: [pin])
    out = SourceHlsOutput("t", fan.attach("hls"), FFMPEG, rendition, segment_seconds=1)
    out.start()
    try:
        await publish_file(fan, flv.read_bytes())
        await wait_for(lambda: len(rendition.playlist.segments) >= 3)
        assert out.state is OutputState.LIVE and out.mux is not None
        assert not ffmpeg_children(), "no ffmpeg for H.264 + AAC"
        await publish_file(fan, flv.read_bytes())  # the encoder reconnects
        await out.finish()
    finally:
        await out.stop()
    rendition.end()
    segments = rendition.playlist.segments
    names = [s.uri for s in segments]
    assert names == [f"seg_{i:05d}.ts" for i in range(len(names))]
    assert [s.discontinuity for s in segments].count(True) == 1
    restart = next(i for i, s in enumerate(segments) if s.discontinuity)
    assert segments[restart].started_at > segments[restart - 1].started_at
    assert abs(sum(s.duration for s in segments) - 10) < 0.2
    replay = tmp_path / "source" / "replay.m3u8"
    text = replay.read_text()
    assert "X-PRODUCT-ID=7" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert codecs(replay) == {"h264", "aac"}
    assert video_packets(replay) == 2 * video_packets(flv), "every frame of both publishes"


async def test_other_codecs_still_go_through_ffmpeg_and_back(tmp_path: Path) -> None:
    """H.264 + MP3 needs ffmpeg; the next publish in H.264 + AAC is muxed in process."""
    mp3 = make_flv(tmp_path / "mp3.flv", seconds=4, gop=30, audio="libmp3lame")
    aac = make_flv(tmp_path / "aac.flv", seconds=4, gop=30)
    fan = Fanout()
    rendition = Rendition(tmp_path / "source", datetime.now(UTC), window=3, dateranges=list)
    out = SourceHlsOutput("t", fan.attach("hls"), FFMPEG, rendition, segment_seconds=1)
    out.start()
    try:
        await publish_file(fan, mp3.read_bytes(), realtime=0.002)
        await wait_for(lambda: ffmpeg_children() == ["hls:t"])
        await wait_for(lambda: rendition.playlist.segments)
        await publish_file(fan, aac.read_bytes())
        await wait_for(lambda: out.mux is not None and not ffmpeg_children())
        await out.finish()
    finally:
        await out.stop()
    segments = rendition.playlist.segments
    assert [s.discontinuity for s in segments].count(True) == 1
    switched = next(i for i, s in enumerate(segments) if s.discontinuity)
    assert codecs(rendition.dir / segments[0].uri) == {"h264", "mp3"}
    after = segments[switched:]
    assert codecs(rendition.dir / after[-1].uri) == {"h264", "aac"}
    assert sum(video_packets(rendition.dir / s.uri) for s in after) == video_packets(aac)


async def test_audio_that_starts_late_is_added_to_the_segment_being_cut(tmp_path: Path) -> None:
    """An SRT caller's AAC config shows up after the video (ffmpeg's FLV first carries an
    empty AAC header): the first segment is cut again with audio, nothing lost."""
    flv = make_flv(tmp_path / "in.flv", seconds=5, gop=30)
    fan = Fanout()
    rendition = Rendition(tmp_path / "source", datetime.now(UTC), window=3, dateranges=list)
    out = SourceHlsOutput("t", fan.attach("hls"), FFMPEG, rendition, segment_seconds=2)
    out.start()
    fan.begin_publish()
    audio_header = None
    for tag in iter_tags(flv.read_bytes()):
        if tag.tag_type == TAG_AUDIO and tag.payload[1] == 0:
            audio_header = tag.payload
            fan.push(TAG_AUDIO, tag.timestamp, b"\xaf\x00")
        elif tag.tag_type == TAG_AUDIO and tag.timestamp < 1500:
            continue
        else:
            if tag.tag_type == TAG_AUDIO and audio_header is not None:
                fan.push(TAG_AUDIO, tag.timestamp, audio_header)
                audio_header = None
            fan.push(tag.tag_type, tag.timestamp, tag.payload)
        await asyncio.sleep(0)
    try:
        await out.finish()
    finally:
        await out.stop()
    segments = rendition.playlist.segments
    assert len(segments) == 3 and not any(s.discontinuity for s in segments)
    assert all(codecs(rendition.dir / s.uri) == {"h264", "aac"} for s in segments)
    assert sum(video_packets(rendition.dir / s.uri) for s in segments) == video_packets(flv)


async def test_a_frame_that_cannot_be_muxed_restarts_at_the_next_keyframe(tmp_path: Path) -> None:
    flv = make_flv(tmp_path / "in.flv", seconds=6, gop=30)
    fan = Fanout()
    rendition = Rendition(tmp_path / "source", datetime.now(UTC), window=3, dateranges=list)
    seen: list[OutputState] = []  # RETRYING lasts only the 0.05 s backoff: record it
    out = SourceHlsOutput(
        "t", fan.attach("hls"), FFMPEG, rendition, segment_seconds=1,
        on_state=lambda o: seen.append(o.state),
    )  # fmt: skip
    out.backoff.initial = 0.05
    out.start()
    fan.begin_publish()
    broken = False
    try:
        for tag in iter_tags(flv.read_bytes()):
            fan.push(tag.tag_type, tag.timestamp, tag.payload)
            if tag.tag_type == TAG_VIDEO and tag.timestamp >= 2000 and not broken:
                # A NAL unit length that runs past its frame.
                bad = b"\x27\x01\x00\x00\x00\x00\x00\x01\x00\x41"
                fan.push(TAG_VIDEO, tag.timestamp + 1, bad)
                await wait_for(lambda: OutputState.RETRYING in seen)
                broken = True
            await asyncio.sleep(0.003)
        await wait_for(lambda: out.state is OutputState.LIVE)
        await out.finish()
    finally:
        await out.stop()
    segments = rendition.playlist.segments
    assert [s.discontinuity for s in segments].count(True) == 1
    assert codecs(rendition.dir / segments[-1].uri) == {"h264", "aac"}
