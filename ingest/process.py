"""Child processes (ffmpeg) that never outlive their owner.

Every child is started without a shell, in its own session, with the kernel told to kill it
when the service dies (``PR_SET_PDEATHSIG``), so even a ``kill -9`` of the service leaves no
orphan. Its stderr becomes log lines, with secrets masked. ``stop()`` asks politely (closes
stdin, then SIGTERM) and then insists (SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
from collections.abc import Callable, Sequence

from livebase.credentials import mask_secrets

__all__ = ["ChildProcess", "kill_all", "live_children"]

log = logging.getLogger("livebase.ingest.process")
_PR_SET_PDEATHSIG = 1
_children: set[ChildProcess] = set()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent already died before prctl took effect
        os._exit(1)


def live_children() -> list[ChildProcess]:
    return list(_children)


class ChildProcess:
    """One supervised child: started by ``start()``, always reaped by ``stop()``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        name: str,
        stdin: bool = False,
        stdout: bool = False,
        pass_fds: Sequence[int] = (),
        on_stderr_line: Callable[[str], None] | None = None,
    ) -> None:
        self.args = list(args)
        self.name = name
        self._want_stdin = stdin
        self._want_stdout = stdout
        self._pass_fds = tuple(pass_fds)
        self._on_line = on_stderr_line
        self.proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self.last_error_lines: list[str] = []

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            stdin=asyncio.subprocess.PIPE if self._want_stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if self._want_stdout else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=self._pass_fds,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # prctl must run in the child
        )
        _children.add(self)
        self._stderr_task = asyncio.create_task(self._pump_stderr(), name=f"{self.name}-stderr")
        log.debug("%s: started pid %s", self.name, self.proc.pid)

    async def _pump_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = mask_secrets(raw.decode("utf-8", "replace").rstrip())
            if not line:
                continue
            self.last_error_lines = [*self.last_error_lines[-9:], line]
            if self._on_line:
                self._on_line(line)
            else:
                log.info("%s: %s", self.name, line)

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self.proc is not None and self.proc.stdin is not None
        return self.proc.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self.proc is not None and self.proc.stdout is not None
        return self.proc.stdout

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._stderr_task:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 1)
        _children.discard(self)
        return code

    async def stop(self, grace: float = 5.0) -> int | None:
        """End the child: close stdin (ffmpeg then finishes its files), SIGTERM, SIGKILL."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.returncode is None and proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            for sig, wait in ((None, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
                if proc.returncode is not None:
                    break
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proc.wait()), wait)
            return await self.wait()
        finally:
            if self._stderr_task and not self._stderr_task.done():
                self._stderr_task.cancel()
            _children.discard(self)


async def kill_all() -> None:
    """Stop every child still running: the service's last word on shutdown."""
    await asyncio.gather(*(child.stop(grace=1.0) for child in list(_children)))
