"""Where a py-spy profile spends its samples: the hottest functions, by own and total time.

    python -m benchmarks.profile PROFILE.txt [--top 20]

PROFILE.txt is ``py-spy record --format raw`` output: one collapsed stack per line,
``frame;frame;…;frame COUNT``, each frame ``function (file:line)``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

from benchmarks.procs import Proc, spawn

__all__ = ["hot_spots", "record"]

PY_SPY = str(Path(sys.executable).with_name("py-spy"))  # pip install py-spy (not a dependency)

_LINE = re.compile(r":\d+\)$")
_SITE = str(Path(__file__).resolve().parent.parent) + "/"


def _frame(raw: str) -> str:
    # One entry per function, whatever line it was on; paths relative to the repository.
    return _LINE.sub(")", raw.strip()).replace(_SITE, "").replace(".venv/lib/python3.11/", "")


def record(pid: int, seconds: float, output: Path, log: Path) -> Proc:
    """py-spy sampling ``pid`` for ``seconds`` without pausing it (``--nonblocking``), so the
    service keeps its pace. ``--gil``: only samples where a thread holds the GIL, i.e. runs
    Python; time in system calls (which release the GIL) is the process's system time, which
    the CPU meter reports apart. Without it, py-spy counts many moments spent blocked in
    ``epoll`` or finishing a ``write`` as busy, which swamps a process that is 95 % idle."""
    return spawn(
        [
            *[PY_SPY, "record", "--nonblocking", "--gil", "--rate", "250", "--format", "raw"],
            *["--duration", str(int(seconds)), "--pid", str(pid), "--output", str(output)],
        ],
        "py-spy",
        stderr=log,
    )


def hot_spots(path: Path, top: int = 20) -> tuple[int, list[tuple[str, float, float]]]:
    """Total samples, and (function, own %, total %) of the ``top`` functions by own time."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    rows = [
        (name, 100 * n / samples, 100 * total[name] / samples) for name, n in own.most_common(top)
    ]
    return samples, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    samples, rows = hot_spots(args.profile, args.top)
    print(f"{samples} samples; own % / total %")
    for name, own, total in rows:
        print(f"{own:5.1f} {total:5.1f}  {name}")


if __name__ == "__main__":
    main()
