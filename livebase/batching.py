"""A queue of jobs applied in batches by one task: the shape shared by the pin and order writers.

Callers hand a job to :meth:`BatchWriter.submit` and wait. The writer's task (:meth:`run`)
takes every job waiting (up to ``max_batch``), has the subclass commit them together
(:meth:`BatchWriter._commit`), runs the batch's announcement (events, news) once the commit
has succeeded, and only then answers each caller: an answer means stored.

A commit that fails for a reason no rule foresaw is retried job by job, so that only the job
that causes it fails; a job the subclass refuses on its own gets its error while the rest of its
batch goes in. A stopped writer cancels every caller still waiting, so none waits forever.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from livebase.errors import ApiError

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class Committed(Generic[ResultT]):
    """What a committed batch gives: one outcome per job in order (its result, or the error
    that refused it), and what to announce after the commit.

    ``announce`` runs before any caller is answered; if it fails, the jobs in ``announcing``
    (indices into the batch) get its error even though they are stored: their news went
    unheard, and the caller should know. The other jobs get their outcomes.
    """

    outcomes: list[ResultT | ApiError]
    announce: Callable[[], Awaitable[None]] | None = None
    announcing: frozenset[int] = frozenset()


class BatchWriter(ABC, Generic[JobT, ResultT]):
    """Owns a queue of jobs and applies them in batches; start :meth:`run` as a task."""

    def __init__(self, *, max_batch: int, log: logging.Logger, what: str) -> None:
        self._max_batch = max_batch
        self._log = log
        self._what = what  # names a batch in the log: "pin", "order"
        self._waiting: list[tuple[JobT, asyncio.Future[ResultT]]] = []
        self._wake = asyncio.Event()
        self.batches = 0  # committed transactions, for tests and metrics

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self._waiting)} waiting>"

    @abstractmethod
    async def _commit(self, jobs: Sequence[JobT]) -> Committed[ResultT]:
        """Apply the jobs in one transaction and commit; raise to fail the whole batch."""

    async def _after_drain(self) -> None:
        """Runs each time the queue has been emptied: room for housekeeping."""

    async def submit(self, job: JobT) -> ResultT:
        """The job's result once committed; raises the error that refused it."""
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, future))
        self._wake.set()
        return await future

    async def run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._waiting:
                    batch = self._waiting[: self._max_batch]
                    del self._waiting[: self._max_batch]
                    await self._apply(batch)
                await self._after_drain()
        finally:
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()

    @asynccontextmanager
    async def running(self, name: str) -> AsyncIterator[None]:
        """:meth:`run` as a task named ``name`` for the block's length; stopped at its end."""
        task = asyncio.create_task(self.run(), name=name)
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait([task])

    async def _apply(self, batch: list[tuple[JobT, asyncio.Future[ResultT]]]) -> None:
        try:
            committed = await self._commit([job for job, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            if len(batch) > 1:
                # Something no rule foresaw: apply the jobs one by one, so that only the one
                # that causes it fails.
                self._log.warning(
                    "%s batch of %d failed (%r); applying one by one", self._what, len(batch), exc
                )
                for one in batch:
                    await self._apply([one])
                return
            future = batch[0][1]
            if not future.done():
                future.set_exception(exc)
            return
        self.batches += 1
        unheard: Exception | None = None
        if committed.announce is not None:
            try:
                await committed.announce()
            except Exception as exc:  # stored, but the news went unheard: say so
                unheard = exc
        for i, ((_, future), outcome) in enumerate(zip(batch, committed.outcomes, strict=True)):
            if future.done():  # the caller went away; its job is stored all the same
                continue
            if isinstance(outcome, ApiError):
                future.set_exception(outcome)
            elif unheard is not None and i in committed.announcing:
                future.set_exception(unheard)
            else:
                future.set_result(outcome)
