"""An output: one supervised consumer of a feed, retried with backoff, its state reported.

Each output is independent: it owns its connection or child process and its feed, so one that
fails or stalls never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from ingest.fanout import Feed

__all__ = ["Backoff", "Output", "OutputError", "OutputState", "PermanentOutputError"]

log = logging.getLogger("livebase.ingest.output")


class OutputState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    RETRYING = "retrying"
    FAILED = "failed"
    STOPPED = "stopped"


class OutputError(Exception):
    """The output broke; it is retried."""


class PermanentOutputError(OutputError):
    """Retrying cannot help (the platform refused the key): the output stays failed until its
    configuration changes."""


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter: 1 s, 2 s, 4 s … up to ``maximum``."""

    initial: float = 1.0
    maximum: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (1 << min(self.attempt, 16)))
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)  # noqa: S311 (jitter, not security)

    def reset(self) -> None:
        self.attempt = 0


StateListener = Callable[["Output"], None]


class Output(ABC):
    """Subclasses implement ``session()``: connect, call ``self.went_live()``, pump the feed
    until it fails or is cancelled."""

    kind = "output"

    def __init__(self, name: str, feed: Feed, on_state: StateListener | None = None) -> None:
        self.name = name
        self.feed = feed
        self.state = OutputState.CONNECTING
        self.last_error = ""
        self.state_since = time.time()
        self.backoff = Backoff()
        self._on_state = on_state
        self._task: asyncio.Task[None] | None = None
        self._finishing = False

    def _set(self, state: OutputState, error: str = "") -> None:
        if state == self.state and error == self.last_error:
            return
        self.state, self.last_error, self.state_since = state, error, time.time()
        if error:
            log.warning("%s %s: %s (%s)", self.kind, self.name, state.value, error)
        else:
            log.info("%s %s: %s", self.kind, self.name, state.value)
        if self._on_state:
            self._on_state(self)

    def went_live(self) -> None:
        self.backoff.reset()
        self._set(OutputState.LIVE)

    @abstractmethod
    async def session(self) -> None:
        """One connection's life; return or raise when it ends."""

    async def _run(self) -> None:
        while True:
            if self.state is not OutputState.LIVE:
                self._set(OutputState.CONNECTING, self.last_error)
            try:
                await self.session()
                if self._finishing:
                    return
                continue  # a clean end (a new source): start over at once
            except PermanentOutputError as exc:
                self._set(OutputState.FAILED, str(exc))
                return
            except (OutputError, OSError, EOFError) as exc:
                error = str(exc) or type(exc).__name__
            self._set(OutputState.RETRYING, error)
            await asyncio.sleep(self.backoff.next_delay())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.kind}:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.close()
        self._set(OutputState.STOPPED)

    async def finish(self, within: float = 15.0) -> None:
        """End after what is queued (an output that writes files completes them); stop
        outright if that takes longer than ``within`` seconds."""
        self._finishing = True
        self.feed.end()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), within)
        await self.stop()

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what ``session()`` held (a child process); called on stop."""
