"""The ingest benchmarks of the issue, in one command, each against its reference in the run:

    .venv/bin/python -m benchmarks.ingest            # all: relay, scale, latency, whip (~15 min)
    .venv/bin/python -m benchmarks.ingest --only relay --rounds 3

- relay:   CPU seconds to relay one 60 s 1080p30 6 Mbit/s publish to 2 RTMP destinations +
           HLS, Livebase vs nginx-rtmp and a bare ffmpeg (goals: ≤ 1.5× nginx, < ffmpeg);
- scale:   N concurrent publishers (20), 2 destinations each, frames counted at every one
           (goal: none lost, in real time); nginx-rtmp under the same load as the reference;
- latency: publish start → first HLS segment listed (goal ≤ segment + 1 s) and → first frame
           at the destinations (goal ≤ 1 s), median and max of ``--runs``; nginx-rtmp, bare
           ffmpeg and a direct publish to the sink as references;
- whip:    CPU seconds to relay one 720p30 H.264 + Opus WHIP publish (FFmpeg's WHIP muxer)
           to one RTMP destination, Livebase vs the naive aiortc path that decodes and
           encodes again with MediaRecorder (goal ≤ 0.25×).

Results are printed and saved as JSON under benchmarks/results/. Every process it starts is
ended by its pid before it exits. See docs/benchmarks.md for the method and the numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.latency import LatencyResult, run_latency
from benchmarks.media import CACHE, FFMPEG, InputInfo, make_input, probe_input
from benchmarks.procs import stop_all
from benchmarks.profile import hot_spots
from benchmarks.relay import RelayResult, run_idle, run_relay
from benchmarks.report import loadavg, machine, median_max
from benchmarks.scale import ScaleResult, run_scale
from benchmarks.systems import BareFfmpeg, Livebase, NginxRtmp
from benchmarks.whip import SYSTEMS as WHIP_SYSTEMS
from benchmarks.whip import WhipResult, make_whip_input, run_whip

RESULTS = Path(__file__).resolve().parent / "results"
STAMP = time.strftime("%Y%m%d-%H%M%S")
SEGMENT_S = 2.0


def clip(media: InputInfo, seconds: int) -> InputInfo:
    """The first ``seconds`` of the input (whole GOPs, copied), for the repeated latency runs."""
    path = CACHE / f"{media.path.stem}-first{seconds}s.flv"
    if not path.exists():
        subprocess.run(
            [
                FFMPEG,
                *["-hide_banner", "-loglevel", "error", "-y", "-i"],
                str(media.path),
                *f"-t {seconds} -c copy".split(),
                str(path),
            ],
            check=True,
            timeout=120,
        )
    return probe_input(path)


def print_hot_spots(profile: Path) -> None:
    if not profile.exists():
        print("  (no profile written: is py-spy installed? .venv/bin/pip install py-spy)")
        return
    samples, rows = hot_spots(profile, 15)
    print(f"  {samples} samples; own % / total % of the Python process's samples")
    for name, own, total in rows:
        print(f"  {own:5.1f} {total:5.1f}  {name}")


def wait_for_idle(limit: float, within: float = 1800) -> None:
    """Others share this machine: timings mean more when they are not running too."""
    deadline = time.monotonic() + within
    while loadavg()[0] >= limit and time.monotonic() < deadline:
        print(f"waiting for load < {limit:g} (now {loadavg()[0]:.2f}) …", flush=True)
        time.sleep(30)


def tidy(args: argparse.Namespace, path: Path) -> None:
    """Recordings take ~45 MB per output: drop each scenario's unless --keep."""
    if not args.keep:
        shutil.rmtree(path, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def relay(args: argparse.Namespace, media: InputInfo, work: Path, out: dict[str, Any]) -> None:
    print(f"relay: Livebase idle, no publish (load {loadavg()[0]:.2f}) …", flush=True)
    idle = run_idle(Livebase, work / "idle")
    tidy(args, work / "idle")
    results: list[RelayResult] = []
    for r in range(args.rounds):
        for cls in (Livebase, NginxRtmp, BareFfmpeg):
            print(f"relay: round {r + 1}, {cls.name} (load {loadavg()[0]:.2f}) …", flush=True)
            results.append(run_relay(cls, media, work / f"relay-{r}-{cls.name}"))
            tidy(args, work / f"relay-{r}-{cls.name}")
    cpu = {
        name: statistics.median(x.cpu_s for x in results if x.system == name)
        for name in ("livebase", "nginx-rtmp", "ffmpeg-tee")
    }
    print("\nRELAY COST (CPU seconds of the server's process tree, publish → outputs complete)")
    print(f"{'system':<11} {'CPU s':>7} {'life s':>7} {'peak %':>7} {'procs':>5} "
          f"{'pub s':>6} {'dest1':>6} {'dest2':>6} {'hls':>6} {'load':>5}  notes")  # fmt: skip
    for x in results:
        print(
            f"{x.system:<11} {x.cpu_s:7.2f} {x.lifetime_cpu_s:7.2f} {x.peak_cpu_pct:7.1f} "
            f"{x.processes:5d} {x.publisher_s:6.1f} {x.dest_frames[0]:6d} {x.dest_frames[1]:6d} "
            f"{x.hls_frames:6d} {x.load_before[0]:5.2f}  "
            f"{'complete' if x.complete else 'INCOMPLETE'}; lost {x.frames_lost} of "
            f"{3 * x.expected_frames} {'; '.join(x.notes)}"
        )
    lb = [x for x in results if x.system == "livebase"]
    python_s = statistics.median(x.root_cpu_s for x in lb)
    kernel_s = statistics.median(x.root_sys_s for x in lb)
    print(
        f"Livebase split: Python process {python_s:.2f} s (of which {kernel_s:.2f} s in the "
        f"kernel), its ffmpeg children (HLS other than H.264 + AAC, ladder) "
        f"{max(0.0, cpu['livebase'] - python_s):.2f} s (medians)"
    )
    window = statistics.median(x.window_s for x in lb)
    print(
        f"Livebase idle (no publish, {idle.seconds:g} s, load {idle.load_before[0]:.2f}): "
        f"{idle.per(window):.2f} s per {window:.0f} s window, of which libsrt's threads "
        f"(the SRT listener) {idle.srt_s * window / idle.seconds:.2f} s"
    )
    vs_nginx, vs_ffmpeg = cpu["livebase"] / cpu["nginx-rtmp"], cpu["livebase"] / cpu["ffmpeg-tee"]
    print(f"Livebase / nginx-rtmp = {vs_nginx:.2f}  (goal ≤ 1.5: {verdict(vs_nginx <= 1.5)})")
    print(f"Livebase / ffmpeg-tee = {vs_ffmpeg:.2f}  (goal < 1: {verdict(vs_ffmpeg < 1)})")
    if args.profile:
        profile = RESULTS / f"profile-relay-livebase-{STAMP}.txt"
        print(f"relay: profiling Livebase with py-spy (not counted above) → {profile}")
        run_relay(Livebase, media, work / "relay-profile", profile=profile)
        print_hot_spots(profile)
    out["relay"] = {
        "runs": [asdict(x) for x in results],
        "median_cpu_s": cpu,
        "livebase_idle": asdict(idle),
        "ratio_vs_nginx": vs_nginx,
        "ratio_vs_ffmpeg": vs_ffmpeg,
    }


def scale(args: argparse.Namespace, media: InputInfo, work: Path, out: dict[str, Any]) -> None:
    results: list[ScaleResult] = []
    systems = [Livebase] + ([] if args.no_scale_reference else [NginxRtmp])
    for cls in systems:
        print(f"scale: {args.publishers} publishers, {cls.name} (load {loadavg()[0]:.2f}) …")
        results.append(run_scale(cls, media, args.publishers, work / f"scale-{cls.name}"))
        if args.profile and cls is Livebase:
            profile = RESULTS / f"profile-scale-livebase-{STAMP}.txt"
            print(f"scale: profiling Livebase with py-spy (not counted) → {profile}")
            run_scale(cls, media, args.publishers, work / "scale-profile", profile=profile)
            tidy(args, work / "scale-profile")
            print_hot_spots(profile)
        tidy(args, work / f"scale-{cls.name}")
    print(f"\nSCALE ({args.publishers} publishers × 2 destinations + HLS, frames counted)")
    for x in results:
        lost = x.frames_lost
        worst = min(x.frames.values()) if x.frames else 0
        print(
            f"{x.system:<11} CPU {x.cpu_s:6.1f} s = {x.avg_cpu_pct:5.1f}% of a core "
            f"(busiest 5 s {x.peak_cpu_pct:5.1f}%); machine {x.machine_busy_pct:4.1f}% busy; "
            f"load generators {x.load_generators_cpu_s:5.1f} s; load {x.load_before[0]:.2f}\n"
            f"{'':<11} frames lost {lost} of {x.expected_frames * len(x.frames)} "
            f"(worst destination {worst}/{x.expected_frames}); relay connections "
            f"{x.connections}; slowest publisher {x.publisher_s_max:.1f} s for "
            f"{x.input_s:.1f} s (real time: {'yes' if x.real_time else 'NO'}); shortest HLS "
            f"recording {x.hls_s_min:.1f} s; {'complete' if x.complete else 'INCOMPLETE'} "
            f"{'; '.join(x.notes)}"
        )
    lb = results[0]
    print(
        f"Livebase split: Python process {lb.root_cpu_s:.1f} s (of which {lb.root_sys_s:.1f} s "
        f"in the kernel), its ffmpeg children {max(0.0, lb.cpu_s - lb.root_cpu_s):.1f} s"
    )
    ok = lb.frames_lost == 0 and lb.real_time and lb.complete
    print(f"Livebase, {lb.publishers} publishers: no frame lost, real time: {verdict(ok)}")
    if len(results) > 1:
        print(f"Livebase / nginx-rtmp CPU = {lb.cpu_s / results[1].cpu_s:.2f}")
    out["scale"] = {
        "runs": [
            asdict(x) | {"frames_lost": x.frames_lost, "real_time": x.real_time} for x in results
        ]
    }


def latency(args: argparse.Namespace, media: InputInfo, work: Path, out: dict[str, Any]) -> None:
    short = clip(media, 8)
    results: list[LatencyResult] = []
    for cls in (None, Livebase, NginxRtmp, BareFfmpeg):
        name = cls.name if cls else "direct"
        print(f"latency: {args.runs} runs, {name} (load {loadavg()[0]:.2f}) …", flush=True)
        results.append(run_latency(cls, short, args.runs, work / f"latency-{name}"))
    print(f"\nLATENCY (seconds from publisher start; median / max of {args.runs})")
    for x in results:
        hls, dest = median_max(x.hls_s), median_max(x.dest_s)
        hls_text = f"{hls[0]:5.2f} / {hls[1]:5.2f}" if x.hls_s else "    —        "
        print(
            f"{x.system:<11} first HLS segment {hls_text}   first frame at destinations "
            f"{dest[0]:5.2f} / {dest[1]:5.2f}   load {x.load_before[0]:.2f} {'; '.join(x.notes)}"
        )
    lb = next(x for x in results if x.system == "livebase")
    hls_ok = bool(lb.hls_s) and max(lb.hls_s) <= SEGMENT_S + 1 and len(lb.hls_s) == args.runs
    dest_ok = bool(lb.dest_s) and max(lb.dest_s) <= 1.0 and len(lb.dest_s) == args.runs
    print(f"Livebase first HLS segment ≤ {SEGMENT_S + 1:g} s (max): {verdict(hls_ok)}")
    print(f"Livebase relay starts ≤ 1 s (max): {verdict(dest_ok)}")
    out["latency"] = {"runs": [asdict(x) for x in results]}


def whip(args: argparse.Namespace, media: InputInfo, work: Path, out: dict[str, Any]) -> None:
    source = probe_input(make_whip_input(args.whip_seconds))
    print(f"whip input: {source.path.name}: {source.size}, {source.seconds:.1f} s, "
          f"{source.video_frames} video frames, {source.bitrate_kbps:.0f} kbit/s")  # fmt: skip
    results: list[WhipResult] = []
    for r in range(args.rounds):
        for system in WHIP_SYSTEMS:
            print(f"whip: round {r + 1}, {system} (load {loadavg()[0]:.2f}) …", flush=True)
            where = work / f"whip-{r}-{system}"
            results.append(
                run_whip(system, source.path, source.video_frames, source.seconds, where)
            )
            tidy(args, where)
    cpu = {
        name: statistics.median(x.cpu_s for x in results if x.system == name)
        for name in WHIP_SYSTEMS
    }
    print("\nWHIP (CPU seconds of the server's process tree, publish → destination complete)")
    print(f"{'system':<13} {'CPU s':>7} {'peak %':>7} {'pub s':>6} {'frames':>7} "
          f"{'load':>5}  notes")  # fmt: skip
    for x in results:
        print(
            f"{x.system:<13} {x.cpu_s:7.2f} {x.peak_cpu_pct:7.1f} {x.publisher_s:6.1f} "
            f"{x.dest_frames:7d} {x.load_before[0]:5.2f}  "
            f"{'complete' if x.complete else 'INCOMPLETE'}; of {x.expected_frames} "
            f"{'; '.join(x.notes)}"
        )
    # A path that cannot keep up drops frames (aiortc's recorder discards what is still queued
    # when the publish ends), so it is also compared per frame it delivered.
    per_frame = {
        name: statistics.median(
            x.cpu_s / max(x.dest_frames, 1) for x in results if x.system == name
        )
        for name in WHIP_SYSTEMS
    }
    ratio = cpu["livebase"] / cpu["aiortc-naive"]
    ratio_per_frame = per_frame["livebase"] / per_frame["aiortc-naive"]
    print(f"Livebase / naive aiortc = {ratio:.2f}  (goal ≤ 0.25: {verdict(ratio <= 0.25)})")
    print(
        f"Livebase / naive aiortc per delivered frame = {ratio_per_frame:.2f}  "
        f"(goal ≤ 0.25: {verdict(ratio_per_frame <= 0.25)})"
    )
    out["whip"] = {
        "input": asdict(source) | {"path": source.path.name},
        "runs": [asdict(x) for x in results],
        "median_cpu_s": cpu,
        "median_cpu_ms_per_frame": {k: v * 1000 for k, v in per_frame.items()},
        "ratio_vs_naive": ratio,
        "ratio_vs_naive_per_frame": ratio_per_frame,
    }


# The scenarios, in the order they run.
SCENARIOS: dict[str, Callable[[argparse.Namespace, InputInfo, Path, dict[str, Any]], None]] = {
    "relay": relay,
    "scale": scale,
    "latency": latency,
    "whip": whip,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--rounds", type=int, default=1, help="relay rounds (median reported)")
    parser.add_argument("--publishers", type=int, default=20, help="scale: publishers")
    parser.add_argument("--no-scale-reference", action="store_true", help="scale: skip nginx")
    parser.add_argument("--runs", type=int, default=5, help="latency: runs per system")
    parser.add_argument("--whip-seconds", type=int, default=30, help="whip: input length")
    parser.add_argument("--profile", action="store_true", help="py-spy the Livebase server")
    parser.add_argument(
        "--idle",
        type=float,
        metavar="LOAD",
        help="first wait (up to 30 min) for the 1-minute load average to fall below LOAD",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.idle is not None:
        wait_for_idle(args.idle)
    info = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()))
    media = probe_input(make_input())
    print(f"input: {media.path.name}: {media.size}, {media.seconds:.1f} s, "
          f"{media.video_frames} video frames, {media.bitrate_kbps:.0f} kbit/s")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="livebase-bench-"))
    out: dict[str, Any] = {
        "command": "python -m benchmarks.ingest " + " ".join(sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": info,
        "input": asdict(media) | {"path": media.path.name},
        "load_start": loadavg(),
    }
    try:
        for name in chosen:
            SCENARIOS[name](args, media, work, out)
    finally:
        stop_all()
        out["load_end"] = loadavg()
        saved = RESULTS / f"ingest-{STAMP}.json"
        saved.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")
        print(f"\nresults: {saved}  (load now {loadavg()[0]:.2f})")
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
