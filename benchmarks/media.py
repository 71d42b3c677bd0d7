"""The test input (made once, cached) and the ffmpeg/ffprobe commands around it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from livebase.settings import Settings

__all__ = [
    "CACHE",
    "FFMPEG",
    "FFPROBE",
    "InputInfo",
    "encode_once",
    "frame_count",
    "hls_duration",
    "listener_cmd",
    "make_input",
    "probe_input",
    "publisher_cmd",
]

FFMPEG = Settings().ffmpeg_path()  # the bundled ffmpeg, the one Livebase runs
FFPROBE = "/usr/bin/ffprobe"
CACHE = Path(__file__).resolve().parent / ".cache"


@dataclass(frozen=True, slots=True)
class InputInfo:
    path: Path
    seconds: float
    video_frames: int
    bitrate_kbps: float
    size: str


def encode_once(name: str, size: str, seconds: int, codecs: list[str]) -> Path:
    """The test pattern at ``size``, 30 fps, with a 440 Hz tone, ``seconds`` long, encoded
    with ``codecs`` (codec options, and the format where the name's suffix does not say it)
    into the cache as ``name``; encoded once, later calls find the file."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / name
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp" + path.suffix)  # a killed encode leaves no input behind
    # Moving noise over the test pattern keeps x264 busy, so the stream carries its full
    # bitrate of real picture (like a camera), not a few kbit/s padded with filler.
    subprocess.run(
        [
            FFMPEG,
            *["-hide_banner", "-loglevel", "error", "-y"],
            *["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30,noise=alls=10:allf=t"],
            *["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
            *["-t", str(seconds)],
            *codecs,
            str(tmp),
        ],
        check=True,
        timeout=1800,
    )
    tmp.rename(path)
    return path


def make_input(seconds: int = 60, name: str = "input-1080p30-6M") -> Path:
    """1920x1080 30 fps H.264 CBR 6 Mbit/s, keyframe every 2 s, AAC 128k, in FLV: what the
    issue asks for, and what OBS sends with the recommended settings. Encoded once."""
    codecs = [
        *["-c:v", "libx264", "-preset", "veryfast"],
        *["-profile:v", "high", "-pix_fmt", "yuv420p"],
        *["-b:v", "6M", "-minrate", "6M", "-maxrate", "6M", "-bufsize", "6M"],
        *["-x264-params", "nal-hrd=cbr:force-cfr=1"],
        *["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"],
        *["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv"],
    ]
    return encode_once(f"{name}-{seconds}s.flv", "1920x1080", seconds, codecs)


def probe_input(path: Path) -> InputInfo:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    info = json.loads(out.stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    return InputInfo(
        path=path,
        seconds=float(info["format"]["duration"]),
        video_frames=frame_count(path),
        bitrate_kbps=float(info["format"]["bit_rate"]) / 1000,
        size=f"{video['width']}x{video['height']}",
    )


def frame_count(path: Path) -> int:
    """Video packets in a file or HLS playlist (0 when there is nothing readable)."""
    if not path.exists():
        return 0
    if path.suffix == ".m3u8" and "#EXT-X-ENDLIST" not in path.read_text():
        # nginx-rtmp never ends its playlists; ffprobe would wait for the next segment forever.
        ended = path.with_name(f"{path.stem}.ended.m3u8")
        ended.write_text(path.read_text().rstrip("\n") + "\n#EXT-X-ENDLIST\n")
        path = ended
    out = subprocess.run(
        [
            FFPROBE,
            *["-v", "error", "-count_packets", "-select_streams", "v:0"],
            *["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"],
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    words = out.stdout.split()  # an HLS playlist lists its stream once per program
    return int(words[0]) if out.returncode == 0 and words and words[0].isdigit() else 0


def hls_duration(playlist: Path) -> float:
    """Seconds listed in a media playlist (sum of #EXTINF)."""
    if not playlist.exists():
        return 0.0
    total = 0.0
    for line in playlist.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            total += float(line[8:].split(",")[0])
    return total


def publisher_cmd(
    media: Path, url: str, *, muxer: str = "flv", options: Sequence[str] = ()
) -> list[str]:
    """Publish as OBS does: by default H.264 + AAC in FLV over RTMP (``muxer="whip"`` with its
    ``options`` for WHIP), each frame sent when it is due. ffmpeg would otherwise send the
    first 0.5 s at once, which an encoder fed by a camera cannot, and which would flatter
    every latency; a burst of 0 means the default (0.5 s) to this ffmpeg, hence 1 ms."""
    return [
        FFMPEG,
        *["-hide_banner", "-loglevel", "error"],
        *["-re", "-readrate_initial_burst", "0.001", "-i", str(media)],
        *["-c", "copy", "-f", muxer, *options],
        url,
    ]


def listener_cmd(port: int, key: str, out: Path) -> list[str]:
    """A stand-in platform: an ffmpeg RTMP server recording what it is sent."""
    return [
        FFMPEG,
        *["-hide_banner", "-loglevel", "error", "-listen", "1", "-timeout", "60", "-i"],
        f"rtmp://127.0.0.1:{port}/live/{key}",
        *["-c", "copy", "-f", "flv"],
        str(out),
    ]
