"""CPU seconds of a process tree, read from /proc.

A process's ``utime + stime`` covers all its threads, live or exited; ``cutime + cstime`` adds
every child it has reaped (and, recursively, what those had reaped). So the CPU used so far by
a tree is the sum of ``utime + stime + cutime + cstime`` over the processes alive in it: a child
that exited and was reaped has moved into its parent's ``cutime``. This kernel has no
``/proc/PID/task/TID/children``, so the tree is found by scanning ``/proc/*/stat`` for parents.

For a root that has exited, ``os.wait4`` gives the same total (itself plus everything it reaped);
``Reaped`` keeps it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TICK", "CpuMeter", "Reaped", "read_stat", "reap", "tree_cpu", "tree_pids"]

TICK = float(os.sysconf("SC_CLK_TCK"))


@dataclass(frozen=True, slots=True)
class Stat:
    pid: int
    ppid: int
    own: float  # utime + stime, seconds
    reaped: float  # cutime + cstime, seconds
    system: float  # stime alone: in the kernel on the process's behalf (syscalls, copies)


def read_stat(pid: int) -> Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields follow the last ")".
    rest = raw[raw.rfind(")") + 2 :].split()
    return Stat(
        pid=pid,
        ppid=int(rest[1]),
        own=(int(rest[11]) + int(rest[12])) / TICK,
        reaped=(int(rest[13]) + int(rest[14])) / TICK,
        system=int(rest[12]) / TICK,
    )


def _all_stats() -> dict[int, Stat]:
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def tree_pids(root: int) -> list[int]:
    """``root`` and its live descendants (empty when ``root`` is gone)."""
    return [s.pid for s in _tree(root, _all_stats())]


def _tree(root: int, stats: dict[int, Stat]) -> list[Stat]:
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(stats[pid])
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu(root: int) -> tuple[float, int]:
    """CPU seconds used so far by ``root``'s tree, and how many processes it has now."""
    tree = _tree(root, _all_stats())
    return sum(s.own + s.reaped for s in tree), len(tree)


@dataclass(frozen=True, slots=True)
class Reaped:
    code: int  # exit status as subprocess reports it: negative for a signal
    cpu: float  # seconds: the process and every descendant it reaped


def reap(pid: int, *, block: bool = True) -> Reaped | None:
    """Reap our child ``pid`` with its resource usage; None if it is still running."""
    got, status, usage = os.wait4(pid, 0 if block else os.WNOHANG)
    if got == 0:
        return None
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return Reaped(code, usage.ru_utime + usage.ru_stime)


class CpuMeter:
    """CPU seconds of one tree over a window, with a CPU% trace sampled by ``sample()``."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.start_cpu, _ = tree_cpu(root)
        stat = read_stat(root)
        self.start_own = stat.own if stat else 0.0
        self.start_sys = stat.system if stat else 0.0
        # At stop(): the root's own share (its threads, not its children), and of that the
        # kernel's (system time).
        self.root_own = self.root_sys = 0.0
        self.start_time = time.monotonic()
        self.trace: list[tuple[float, float, int]] = []  # (seconds since start, cpu, processes)
        self.peak_processes = 0

    def sample(self) -> float:
        cpu, n = tree_cpu(self.root)
        now = time.monotonic() - self.start_time
        if n:
            self.trace.append((now, cpu - self.start_cpu, n))
            self.peak_processes = max(self.peak_processes, n)
        return cpu - self.start_cpu

    def sample_until(self, done: Callable[[], bool], deadline: float, poll: float) -> bool:
        """Sample once a second while waiting for ``done()`` (checked every ``poll`` seconds)
        or the ``time.monotonic()`` deadline; whether ``done()`` came first."""
        next_sample = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_sample:
                self.sample()
                next_sample = time.monotonic() + 1.0
            if done():
                return True
            time.sleep(poll)
        return False

    def stop(self, reaped: Reaped | None = None) -> float:
        """CPU seconds since the start: from /proc while the root lives, or from its wait4."""
        if reaped is not None:
            # wait4 does not tell the root from its children
            self.root_own = self.root_sys = float("nan")
            return reaped.cpu - self.start_cpu
        stat = read_stat(self.root)
        self.root_own = (stat.own if stat else 0.0) - self.start_own
        self.root_sys = (stat.system if stat else 0.0) - self.start_sys
        return self.sample()

    def busiest(self, window: float = 5.0) -> float:
        """The highest CPU% over any ``window`` seconds of the trace (100 = one core)."""
        best = 0.0
        for i, (t0, c0, _) in enumerate(self.trace):
            for t1, c1, _ in self.trace[i + 1 :]:
                if t1 - t0 >= window:
                    best = max(best, (c1 - c0) / (t1 - t0) * 100)
                    break
        return best
