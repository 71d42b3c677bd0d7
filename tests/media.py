"""Test media made on the spot with the bundled ffmpeg, and ffprobe to check what comes out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ingest.flv import TAG_AUDIO, TAG_VIDEO, iter_tags
from ingest.ts import TsSegmenter, is_aac_header, is_avc_header
from livebase.settings import Settings

FFMPEG = Settings().ffmpeg_path()


def make_flv(
    path: Path,
    seconds: float = 5,
    size: str = "320x240",
    rate: int = 30,
    gop: int = 30,
    audio: str = "aac",
) -> Path:
    """An H.264 + AAC FLV like OBS sends: keyframe every ``gop`` frames (``audio``: another
    encoder, e.g. ``libmp3lame``)."""
    subprocess.run(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate={rate}",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            str(gop),
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            audio,
            "-b:a",
            "64k",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path


def ffprobe(target: str | Path) -> dict[str, Any]:
    """Streams and format of a file or URL, as ffprobe reports them."""
    probe = shutil.which("ffprobe")
    if probe is None:
        raise RuntimeError("ffprobe is not installed; scripts/setup.sh --test installs it")
    out = subprocess.run(
        [probe, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(target)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def codecs(target: str | Path) -> set[str]:
    return {s["codec_name"] for s in ffprobe(target)["streams"]}


def make_segments(directory: Path, seconds: float = 8, segment_seconds: float = 2) -> list[str]:
    """MPEG-TS segments of an H.264 + AAC test picture cut as the HLS output cuts them (in
    process, ``ingest.ts``); returns the segment list lines (``name,start,end``, as ffmpeg's
    CSV list has them), which ``Rendition.add`` reads."""
    directory.mkdir(parents=True, exist_ok=True)
    rate = 15
    flv = make_flv(
        directory / "source.flv", seconds, "320x180", rate, gop=round(segment_seconds * rate)
    )
    tags = list(iter_tags(flv.read_bytes()))
    flv.unlink()
    video = next(t.payload for t in tags if t.tag_type == TAG_VIDEO and is_avc_header(t.payload))
    audio = next(t.payload for t in tags if t.tag_type == TAG_AUDIO and is_aac_header(t.payload))
    mux = TsSegmenter(video, audio, round(segment_seconds * 1000))
    finished = []
    for tag in tags:
        if tag.tag_type == TAG_VIDEO and tag.payload[1] == 1:
            finished.append(mux.video(tag.timestamp, tag.payload, tag.payload[0] >> 4 == 1))
        elif tag.tag_type == TAG_AUDIO:
            mux.audio(tag.timestamp, tag.payload)
    finished.append(mux.finish())
    lines = []
    for i, segment in enumerate(s for s in finished if s is not None):
        (directory / f"seg{i:03d}.ts").write_bytes(segment.data)
        lines.append(f"seg{i:03d}.ts,{segment.start:.6f},{segment.end:.6f}")
    return lines


def video_packets(path: Path) -> int:
    """Video packets in a file or HLS playlist (which lists its stream once per program)."""
    out = subprocess.run(
        [
            *("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0"),
            *("-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(out.stdout.split()[0])


def push_file(flv: Path, muxer: str, url: str, *, realtime: bool = True) -> subprocess.Popen[bytes]:
    """ffmpeg sending an H.264/AAC file unchanged (``-c copy``) with ``muxer`` to ``url``, as an
    encoder does: ``flv`` for RTMP, ``mpegts`` for SRT."""
    return subprocess.Popen(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *(["-re"] if realtime else []),
         "-i", str(flv), "-c", "copy", "-f", muxer, url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
