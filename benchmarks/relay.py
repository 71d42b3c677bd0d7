"""Relay cost: one publish relayed to two RTMP destinations plus HLS, CPU seconds counted.

The destinations are ``ffmpeg -listen 1`` recorders, not counted; ffprobe counts the frames
they recorded afterwards, and those of the HLS recording. The window runs from the moment
before the publisher starts until every output is complete (the publish ended, both recorders
closed their files, the HLS recording is final), so start-up is out and the end of the
stream is in. The whole life of the server (start-up and shutdown included) is reported too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cpu import TICK, CpuMeter
from benchmarks.media import InputInfo, frame_count, listener_cmd, publisher_cmd
from benchmarks.procs import free_port, spawn, stop_noting, wait_for
from benchmarks.profile import record
from benchmarks.report import loadavg
from benchmarks.systems import System

__all__ = ["IdleResult", "RelayResult", "run_idle", "run_relay"]

LABEL = "s01"


@dataclass
class RelayResult:
    system: str
    cpu_s: float  # the window: publish start → all outputs complete
    root_cpu_s: float  # of which the root process itself (Livebase: Python; nan if reaped)
    root_sys_s: float  # of which in the kernel (system time)
    lifetime_cpu_s: float  # the server's whole life, from wait4
    window_s: float
    publisher_s: float  # wall time of the real-time publisher: > input length means throttled
    expected_frames: int
    dest_frames: list[int]
    hls_frames: int
    peak_cpu_pct: float
    processes: int  # most processes seen in the server's tree
    load_before: tuple[float, float, float]
    complete: bool
    notes: list[str] = field(default_factory=list)

    @property
    def frames_lost(self) -> int:
        return sum(self.expected_frames - f for f in [*self.dest_frames, self.hls_frames])


def run_relay(
    system_cls: type[System], media: InputInfo, workdir: Path, profile: Path | None = None
) -> RelayResult:
    """``profile``: record the server with py-spy into this file (collapsed stacks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    load = loadavg()
    dests = (free_port(), free_port())
    outs = [workdir / f"dest{i + 1}.flv" for i in range(2)]
    listeners = [
        spawn(listener_cmd(port, LABEL, out), f"dest{i + 1}", stderr=out.with_suffix(".log"))
        for i, (port, out) in enumerate(zip(dests, outs, strict=True))
    ]
    wait_for(dests, listeners)
    system = system_cls(workdir / "server", dests)
    url = system.start([LABEL])[LABEL]
    meter = CpuMeter(system.proc.pid)
    publisher = spawn(publisher_cmd(media.path, url), "publisher", stderr=workdir / "publisher.log")
    spy = None
    if profile is not None:
        spy = record(system.proc.pid, media.seconds, profile, workdir / "py-spy.log")
    complete = meter.sample_until(
        lambda: (
            not publisher.running
            and not any(listener.running for listener in listeners)
            and system.hls_finished(LABEL)
        ),
        deadline=time.monotonic() + media.seconds + 90,
        poll=0.05,
    )
    window = time.monotonic() - meter.start_time
    cpu = meter.stop(system.proc.poll())
    lifetime = system.stop().cpu
    if spy is not None:
        spy.wait(30)
    notes = stop_noting([publisher, *listeners, *([spy] if spy else [])])
    recording = system.recording(LABEL)
    assert publisher.ended is not None
    return RelayResult(
        system=system.name,
        cpu_s=cpu,
        root_cpu_s=meter.root_own,
        root_sys_s=meter.root_sys,
        lifetime_cpu_s=lifetime,
        window_s=window,
        publisher_s=publisher.ended - publisher.started,
        expected_frames=media.video_frames,
        dest_frames=[frame_count(out) for out in outs],
        hls_frames=frame_count(recording) if recording else 0,
        peak_cpu_pct=meter.busiest(),
        processes=meter.peak_processes,
        load_before=load,
        complete=complete,
        notes=notes,
    )


@dataclass
class IdleResult:
    cpu_s: float  # the server's tree, over ``seconds`` with no publish
    seconds: float
    srt_s: float  # of which libsrt's own threads (their names start with "SRT:")
    load_before: tuple[float, float, float]

    def per(self, window: float) -> float:
        return self.cpu_s * window / self.seconds


def _thread_cpu(pid: int, prefix: str) -> float:
    """CPU seconds of ``pid``'s threads whose names start with ``prefix``."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = read_stat_text(f"/proc/{pid}/task/{tid}/stat")
        if stat is not None and stat[0].startswith(prefix):
            total += stat[1]
    return total


def read_stat_text(path: str) -> tuple[str, float] | None:
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    name = raw[raw.find("(") + 1 : raw.rfind(")")]
    rest = raw[raw.rfind(")") + 2 :].split()
    return name, (int(rest[11]) + int(rest[12])) / TICK


def run_idle(system_cls: type[System], workdir: Path, seconds: float = 30) -> IdleResult:
    """What the server costs with nothing to relay: the floor under every relay figure."""
    workdir.mkdir(parents=True, exist_ok=True)
    load = loadavg()
    system = system_cls(workdir / "server", (free_port(), free_port()))
    system.start([LABEL])
    time.sleep(2)  # start-up work (first API calls) settles
    meter = CpuMeter(system.proc.pid)
    srt = _thread_cpu(system.proc.pid, "SRT:")
    time.sleep(seconds)
    srt = _thread_cpu(system.proc.pid, "SRT:") - srt
    cpu = meter.stop()
    system.stop()
    return IdleResult(cpu, seconds, srt, load)
