"""A socket's own worker thread: every blocking libsrt call on one socket runs there, in order.

libsrt's calls block (connect, accept, receive, send, close), so none may run on the event
loop. Each connection gets one daemon thread, fed a queue of calls whose results come back to
the loop as futures, as aiortc's ``decoder_worker`` hands frames back. Running a socket's calls
in order on one thread also means the socket is closed only after the call in flight returns:
nothing ever uses a closed socket id. The thread is a daemon because a blocked ``srt_accept``
only returns when its listener is closed, and a forgotten one must not hold up the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["SocketThread"]

T = TypeVar("T")
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any] | None"]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return  # the caller gave up (cancelled); the call still ran to its end
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SocketThread:
    """Runs calls one after another on a thread of its own, started on first use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the thread; its result or exception comes back here."""
        if self._closed:
            raise RuntimeError(f"{self.name}: the worker thread is closed")
        self._loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = self._loop.create_future()
        self._start()
        self._jobs.put((function, args, future))
        return await future

    def finish(self, *last: Callable[[], object]) -> None:
        """Run ``last`` after the call in flight, then end the thread. Never blocks."""
        if self._closed:
            return
        self._closed = True
        for function in last:
            self._jobs.put((function, (), None))
        self._jobs.put(None)
        self._start()

    async def join(self) -> None:
        """Wait (off the loop) until ``finish``'s calls have run."""
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    def _start(self) -> None:
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            function, args, future = job
            result: Any = None
            error: BaseException | None = None
            try:
                result = function(*args)
            except Exception as exc:  # handed to the caller
                error = exc
            if future is None or self._loop is None:
                continue
            # The loop may be gone when the service stopped without waiting for this call.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_settle, future, result, error)
