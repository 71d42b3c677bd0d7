"""Processes the benchmark starts: each in its own session, each ended by its pid.

Only what ``spawn`` started is ever signalled (by its pid, or the process group it leads),
and ``stop_all`` ends whatever is left, so a failed or interrupted run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.cpu import Reaped, reap

__all__ = [
    "Proc",
    "free_port",
    "free_udp_port",
    "port_listening",
    "spawn",
    "stop_all",
    "stop_noting",
    "wait_for",
]

_started: list[Proc] = []


class Proc:
    def __init__(self, popen: subprocess.Popen[bytes], name: str, started: float) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.name = name
        self.started = started  # time.monotonic() just before the fork
        self.ended: float | None = None
        self.result: Reaped | None = None

    def poll(self) -> Reaped | None:
        """Reap the process if it has exited (keeping its CPU time); None while it runs."""
        if self.result is None:
            self.result = reap(self.pid, block=False)
            if self.result is not None:
                self.ended = time.monotonic()
                self.popen.returncode = self.result.code  # reaped here, not by Popen
        return self.result

    @property
    def running(self) -> bool:
        return self.poll() is None

    def wait(self, timeout: float) -> Reaped | None:
        deadline = time.monotonic() + timeout
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.result

    def send(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)  # the group this process leads (start_new_session)

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> Reaped:
        """Ask (``sig``), then SIGKILL after ``grace`` seconds; always reaps."""
        self.send(sig)
        if self.wait(grace) is None:
            self.send(signal.SIGKILL)
            self.wait(10)
        assert self.result is not None, f"{self.name} (pid {self.pid}) did not die"
        return self.result


def stop_noting(procs: Sequence[Proc]) -> list[str]:
    """Stop each process; a note for each one still running at the deadline (it is stopped
    now) and for each one that exited with an error."""
    notes = []
    for proc in procs:
        if proc.running:
            notes.append(f"{proc.name} still running at the deadline")
        proc.stop()
        if proc.result and proc.result.code != 0:
            notes.append(f"{proc.name} exited with {proc.result.code}")
    return notes


def spawn(
    args: Sequence[str],
    name: str,
    *,
    stdout: Path | int | None = subprocess.DEVNULL,
    stderr: Path | int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    def target(where: Path | int | None) -> int | None:
        return (
            os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            if isinstance(where, Path)
            else where
        )

    out, err = target(stdout), target(stderr)
    try:
        started = time.monotonic()
        popen = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        for fd, where in ((out, stdout), (err, stderr)):
            if isinstance(where, Path) and fd is not None:
                os.close(fd)
    proc = Proc(popen, name, started)
    _started.append(proc)
    return proc


def stop_all() -> None:
    """End every process spawned here that is still running (by pid, never by name)."""
    for proc in _started:
        if proc.running:
            proc.send(signal.SIGKILL)
    for proc in _started:
        proc.wait(10)
    _started.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_listening(port: int) -> bool:
    """Whether something listens on TCP ``port``, without connecting: an ``ffmpeg -listen 1``
    accepts one connection only, so a probe would use it up."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == "0A":  # 0A: LISTEN
                    return True
    return False


def wait_for(ports: Sequence[int], procs: Sequence[Proc] = (), within: float = 30) -> None:
    """Wait until every port listens; fail early if one of ``procs`` exits."""
    deadline = time.monotonic() + within
    while not all(port_listening(p) for p in ports):
        for proc in procs:
            if not proc.running:
                raise RuntimeError(f"{proc.name} exited ({proc.result}) before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"ports {list(ports)} not listening within {within} s")
        time.sleep(0.05)
