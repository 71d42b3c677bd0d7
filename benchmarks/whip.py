"""WHIP ingest cost: one 720p30 H.264 + Opus publish over WHIP, relayed to one RTMP destination.

Livebase (the whole service: H.264 access units taken from aiortc's jitter buffer and passed
through, Opus transcoded to AAC, plus its HLS) against the naive aiortc relay
(``benchmarks/whip_naive.py``: aiortc decodes, ``MediaRecorder`` encodes again), each in a
process of its own, published to by FFmpeg's own WHIP muxer from the same file. The CPU
seconds of each server's process tree are counted from just before the publisher starts
until the publisher has ended and the destination has closed its recording; the destination
(an ``ffmpeg -listen 1`` recorder) and the publisher are not counted. ffprobe counts the
video frames the destination recorded.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cpu import CpuMeter
from benchmarks.media import encode_once, frame_count, listener_cmd, publisher_cmd
from benchmarks.procs import Proc, free_port, spawn, stop_noting, wait_for
from benchmarks.report import loadavg
from benchmarks.systems import ROOT, Livebase

__all__ = ["WhipResult", "make_whip_input", "run_whip"]

LABEL = "w01"
SYSTEMS = ("livebase", "aiortc-naive")


@dataclass
class WhipResult:
    system: str
    cpu_s: float
    window_s: float
    publisher_s: float
    expected_frames: int
    dest_frames: int
    peak_cpu_pct: float
    load_before: tuple[float, float, float]
    complete: bool
    notes: list[str] = field(default_factory=list)


def make_whip_input(seconds: int) -> Path:
    """1280x720 30 fps H.264 (Constrained Baseline, no B-frames, as WebRTC encoders send it),
    2.5 Mbit/s, keyframe every 2 s, and Opus 48 kHz stereo, in Matroska. Encoded once."""
    codecs = [
        *["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline"],
        *["-pix_fmt", "yuv420p", "-bf", "0"],
        *["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k"],
        *["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"],
        *["-c:a", "libopus", "-b:a", "96k", "-ar", "48000", "-ac", "2"],
    ]
    return encode_once(f"whip-720p30-{seconds}s.mkv", "1280x720", seconds, codecs)


def _start_naive(workdir: Path, dest: int) -> tuple[Proc, str]:
    ready = workdir / "ready.json"
    proc = spawn(
        [
            sys.executable,
            *["-m", "benchmarks.whip_naive", "--port", str(free_port())],
            *["--destination", f"rtmp://127.0.0.1:{dest}/live/{LABEL}"],
        ],
        "aiortc-naive",
        stdout=ready,
        stderr=workdir / "server.log",
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not ready.read_text().strip():
        if not proc.running or time.monotonic() > deadline:
            raise RuntimeError(f"the naive WHIP server did not start; see {workdir}/server.log")
        time.sleep(0.1)
    url: str = json.loads(ready.read_text())["whip_url"]
    return proc, url


def run_whip(system: str, media: Path, frames: int, seconds: float, workdir: Path) -> WhipResult:
    workdir.mkdir(parents=True, exist_ok=True)
    load = loadavg()
    dest = free_port()
    out = workdir / "dest.flv"
    listener = spawn(listener_cmd(dest, LABEL, out), "dest", stderr=workdir / "dest.log")
    wait_for([dest], [listener])
    livebase = None
    key: str | None = None
    if system == "livebase":
        livebase = Livebase(workdir / "server", (dest,))
        livebase.start([LABEL])
        server = livebase.proc
        url, key = livebase.whip(LABEL)
    else:
        server, url = _start_naive(workdir, dest)
    meter = CpuMeter(server.pid)
    auth = ["-authorization", key] if key else []
    command = publisher_cmd(media, url, muxer="whip", options=auth)
    publisher = spawn(command, "publisher", stderr=workdir / "publisher.log")
    complete = meter.sample_until(
        lambda: not publisher.running and not listener.running,
        deadline=time.monotonic() + seconds + 90,
        poll=0.05,
    )
    window = time.monotonic() - meter.start_time
    cpu = meter.stop(server.poll())
    if livebase is not None:
        livebase.stop()
    else:
        server.stop()
    notes = stop_noting([publisher, listener])
    assert publisher.ended is not None
    return WhipResult(
        system=system,
        cpu_s=cpu,
        window_s=window,
        publisher_s=publisher.ended - publisher.started,
        expected_frames=frames,
        dest_frames=frame_count(out),
        peak_cpu_pct=meter.busiest(),
        load_before=load,
        complete=complete,
        notes=notes,
    )
