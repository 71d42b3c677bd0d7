"""What the numbers were measured on, and how busy the machine was meanwhile."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

from benchmarks.media import FFMPEG
from benchmarks.nginx import NGINX

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["MachineMeter", "loadavg", "machine", "median_max"]


def loadavg() -> tuple[float, float, float]:
    with open("/proc/loadavg") as f:
        one, five, fifteen = f.read().split()[:3]
    return float(one), float(five), float(fifteen)


def _first_line(args: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(args), capture_output=True, text=True, timeout=10)
    except OSError:
        return "not installed"
    return (out.stdout or out.stderr).strip().splitlines()[0]


def machine() -> dict[str, str]:
    with open("/proc/cpuinfo") as f:
        model = next(
            (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?"
        )
    with open("/proc/meminfo") as f:
        mem_kb = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    commit = _first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"])
    return {
        "commit": commit,
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg": _first_line([FFMPEG, "-version"]),
        "nginx": _first_line([NGINX, "-v"]),
    }


class MachineMeter:
    """Busy share of all CPUs (100 = every core busy) between creation and ``busy()``."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]), idle

    def busy(self) -> float:
        total, idle = self._read()
        d_total, d_idle = total - self.start[0], idle - self.start[1]
        return 100.0 * (d_total - d_idle) / d_total if d_total else 0.0


def median_max(values: Sequence[float]) -> tuple[float, float]:
    return (statistics.median(values), max(values)) if values else (float("nan"), float("nan"))
