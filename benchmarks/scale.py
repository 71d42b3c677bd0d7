"""Scale: N real-time publishers at once, each relayed to two destinations, HLS on.

Destinations are two counting sinks (``benchmarks.sink``, one process per port, so they use
both cores), each taking N publishes; every frame of every publish is counted there. The
publishers and sinks share the machine with the server: their CPU is reported beside it, so
a saturated machine is visible. "Real time" means every publisher, which sends at the
input's own rate (``-re``), finished within ``SLACK_S`` of the input's length: a server that
cannot keep up pushes back through TCP and slows its publishers down.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.cpu import CpuMeter
from benchmarks.media import InputInfo, hls_duration, publisher_cmd
from benchmarks.procs import Proc, free_port, spawn, wait_for
from benchmarks.profile import record
from benchmarks.report import MachineMeter, loadavg
from benchmarks.sink import read_events
from benchmarks.systems import ROOT, System

__all__ = ["SLACK_S", "ScaleResult", "run_scale"]

SLACK_S = 3.0


@dataclass
class ScaleResult:
    system: str
    publishers: int
    cpu_s: float
    root_cpu_s: float  # of which the root process itself (Livebase: Python)
    root_sys_s: float  # of which in the kernel (system time)
    window_s: float
    avg_cpu_pct: float  # of one core, over the window
    peak_cpu_pct: float  # busiest 5 s
    machine_busy_pct: float  # all cores, everything running
    load_generators_cpu_s: float  # publishers + sinks
    input_s: float
    expected_frames: int
    frames: dict[str, int]  # "port/stream" → frames counted
    connections: int  # relay connections the sinks saw (more than 2N: reconnects)
    publisher_s: list[float]  # wall time of each publisher
    cpu_trace: list[tuple[float, float]]  # (seconds, CPU seconds so far), once a second
    hls_s_min: float  # the shortest HLS recording, seconds listed
    load_before: tuple[float, float, float]
    complete: bool
    notes: list[str] = field(default_factory=list)

    @property
    def frames_lost(self) -> int:
        return sum(self.expected_frames - n for n in self.frames.values())

    @property
    def publisher_s_max(self) -> float:
        return max(self.publisher_s)

    @property
    def real_time(self) -> bool:
        return self.publisher_s_max <= self.input_s + SLACK_S


def run_scale(
    system_cls: type[System], media: InputInfo, n: int, workdir: Path, profile: Path | None = None
) -> ScaleResult:
    """``profile``: record the server with py-spy into this file (collapsed stacks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    load = loadavg()
    dests = (free_port(), free_port())
    events = [workdir / f"sink{i + 1}.jsonl" for i in range(2)]
    sinks = [
        spawn(
            [sys.executable, "-m", "benchmarks.sink", "--port", str(port), "--events", str(ev)],
            f"sink{i + 1}",
            stderr=ev.with_suffix(".log"),
            cwd=ROOT,
        )
        for i, (port, ev) in enumerate(zip(dests, events, strict=True))
    ]
    wait_for(dests, sinks)
    sink_meters = [CpuMeter(s.pid) for s in sinks]
    labels = [f"s{i:02d}" for i in range(1, n + 1)]
    system = system_cls(workdir / "server", dests)
    urls = system.start(labels)
    meter, machine = CpuMeter(system.proc.pid), MachineMeter()
    publishers: list[Proc] = []
    for label in labels:
        publishers.append(
            spawn(publisher_cmd(media.path, urls[label]), label, stderr=workdir / f"{label}.log")
        )
        time.sleep(0.05)  # not all in the same millisecond, as studios never are
    spy = (
        record(system.proc.pid, media.seconds, profile, workdir / "py-spy.log") if profile else None
    )

    def done() -> bool:
        if any(p.running for p in publishers):
            return False
        ends = sum(1 for ev in events for e in read_events(ev) if e["ev"] == "end")
        return ends >= 2 * n and all(system.hls_finished(label) for label in labels)

    complete = meter.sample_until(done, deadline=time.monotonic() + media.seconds + 120, poll=0.2)
    window = time.monotonic() - meter.start_time
    busy = machine.busy()
    cpu = meter.stop(system.proc.poll())
    sink_cpu = sum(m.stop() for m in sink_meters)
    system.stop()
    notes = [f"{p.name} still running at the deadline" for p in publishers if p.running]
    pub_cpu = sum(p.stop().cpu for p in publishers)
    if spy is not None:
        spy.wait(30)
        spy.stop()
    for sink in sinks:
        sink.stop()
    frames: dict[str, int] = defaultdict(int)
    connections = 0
    for port, ev in zip(dests, events, strict=True):
        for label in labels:
            frames[f"{port}/{label}"] += 0  # a destination that never got a publish shows 0
        for e in read_events(ev):
            if e["ev"] == "end":
                frames[f"{e['port']}/{e['stream']}"] += e["frames"]
                connections += 1
    recordings = [system.recording(label) for label in labels]
    return ScaleResult(
        system=system.name,
        publishers=n,
        cpu_s=cpu,
        root_cpu_s=meter.root_own,
        root_sys_s=meter.root_sys,
        window_s=window,
        avg_cpu_pct=100 * cpu / window,
        peak_cpu_pct=meter.busiest(),
        machine_busy_pct=busy,
        load_generators_cpu_s=pub_cpu + sink_cpu,
        input_s=media.seconds,
        expected_frames=media.video_frames,
        frames=dict(frames),
        connections=connections,
        publisher_s=[round((p.ended or 0) - p.started, 2) for p in publishers],
        cpu_trace=[(round(t, 1), round(c, 2)) for t, c, _ in meter.trace],
        hls_s_min=min(hls_duration(r) if r else 0.0 for r in recordings),
        load_before=load,
        complete=complete,
        notes=notes,
    )
