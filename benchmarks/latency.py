"""Latency: from the publisher's start to (a) the first segment listed in the live HLS
playlist and (b) the first video frame at each destination.

"Publish start" is the moment before the publisher process is forked, so its own start-up
and the RTMP handshake count against the system (a conservative reading of "after the
publish starts"). The ``direct`` row publishes straight to the counting sink, with no relay
in between: the part of (b) the publisher itself takes.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.media import InputInfo, publisher_cmd
from benchmarks.procs import free_port, spawn, wait_for
from benchmarks.report import loadavg
from benchmarks.sink import read_events
from benchmarks.systems import ROOT, BareFfmpeg, System

__all__ = ["LatencyResult", "run_latency"]


@dataclass
class LatencyResult:
    system: str
    hls_s: list[float] = field(default_factory=list)  # publish start → first segment listed
    dest_s: list[float] = field(default_factory=list)  # → first frame at the later destination
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: list[str] = field(default_factory=list)


def _first_segment(system: System, label: str) -> bool:
    index = system.hls_index(label)
    try:
        return index is not None and "#EXTINF" in index.read_text()
    except FileNotFoundError:
        return False


def run_latency(
    system_cls: type[System] | None, clip: InputInfo, runs: int, workdir: Path
) -> LatencyResult:
    """``system_cls`` None measures the direct publish to a sink (no relay, no HLS)."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = LatencyResult(system_cls.name if system_cls else "direct", load_before=loadavg())
    dests = (free_port(), free_port())
    events = workdir / "sink-events.jsonl"
    sink = spawn(
        [
            *[sys.executable, "-m", "benchmarks.sink", "--events", str(events)],
            *[arg for port in dests for arg in ("--port", str(port))],
        ],
        "sink",
        stderr=workdir / "sink.log",
        cwd=ROOT,
    )
    wait_for(dests, [sink])
    labels = [f"lat{i}" for i in range(1, runs + 1)]
    shared: System | None = None
    if system_cls is not None and system_cls is not BareFfmpeg:
        shared = system_cls(workdir / "server", dests)
        urls = shared.start(labels)
    for label in labels:
        system = shared
        if system_cls is None:
            urls = {label: f"rtmp://127.0.0.1:{dests[0]}/live/{label}"}
        elif system is None:  # a bare ffmpeg takes one publish, then exits
            system = system_cls(workdir / label, dests)
            urls = system.start([label])
        wanted = 1 if system is None else 2
        publisher = spawn(
            publisher_cmd(clip.path, urls[label]), "publisher", stderr=workdir / f"{label}.log"
        )
        t0 = publisher.started
        hls_at: float | None = None if system else t0
        firsts: dict[int, float] = {}
        while time.monotonic() < t0 + 30 and (hls_at is None or len(firsts) < wanted):
            if hls_at is None and system is not None and _first_segment(system, label):
                hls_at = time.monotonic()
            for event in read_events(events):
                if event["stream"] == label and event["ev"] == "first":
                    firsts[event["port"]] = event["t"]
            time.sleep(0.01)
        if system is not None:
            if hls_at is None:
                result.notes.append(f"{label}: no HLS segment within 30 s")
            else:
                result.hls_s.append(hls_at - t0)
        if len(firsts) < wanted:
            result.notes.append(f"{label}: {len(firsts)} of {wanted} destinations got media")
        else:
            result.dest_s.append(max(firsts.values()) - t0)
        # Let the publish end normally and the relays close before the next run.
        publisher.wait(clip.seconds + 30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ends = [e for e in read_events(events) if e["stream"] == label and e["ev"] == "end"]
            if len(ends) >= wanted and (system is None or system.hls_finished(label)):
                break
            time.sleep(0.1)
        publisher.stop()
        if system is not None and system is not shared:
            system.stop()
    if shared is not None:
        shared.stop()
    sink.stop()
    return result
