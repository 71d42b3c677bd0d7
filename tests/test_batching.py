"""The batch writer's own contract, apart from what the pin and order writers commit.

The writer under test commits into a list: each job is a word, "boom" breaks any batch it is
in, "refuse" is refused on its own, and "loud" has news to announce.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from livebase.batching import BatchWriter, Committed
from livebase.errors import ApiError, Conflict

log = logging.getLogger("tests.batching")


class _ListWriter(BatchWriter[str, str]):
    def __init__(self, *, max_batch: int = 500, announce_fails: bool = False) -> None:
        super().__init__(max_batch=max_batch, log=log, what="word")
        self.stored: list[str] = []
        self.commits: list[list[str]] = []  # every attempt, failed or not
        self.heard: list[str] = []
        self.drained = 0
        self.gate: asyncio.Event | None = None  # when set, commits wait for it
        self.committing = asyncio.Event()
        self._announce_fails = announce_fails

    async def _commit(self, jobs: Sequence[str]) -> Committed[str]:
        self.commits.append(list(jobs))
        self.committing.set()
        if self.gate is not None:
            await self.gate.wait()
        if "boom" in jobs:
            raise RuntimeError("boom")
        outcomes: list[str | ApiError] = [
            Conflict(f"{j} refused") if j == "refuse" else j.upper() for j in jobs
        ]
        self.stored += [j for j in jobs if j != "refuse"]
        loud = frozenset(i for i, j in enumerate(jobs) if j == "loud")
        if not loud:
            return Committed(outcomes)

        async def announce() -> None:
            if self._announce_fails:
                raise OSError("nobody listens")
            self.heard += ["loud"] * len(loud)

        return Committed(outcomes, announce, loud)

    async def _after_drain(self) -> None:
        self.drained += 1


async def _run(writer: _ListWriter, jobs: list[str]) -> list[str | BaseException]:
    """Submit every job before the writer starts, so that they make up batches together."""
    calls = [asyncio.create_task(writer.submit(j)) for j in jobs]
    await asyncio.sleep(0)
    async with writer.running("test-writer"):
        return await asyncio.gather(*calls, return_exceptions=True)


async def test_waiting_jobs_commit_in_batches_of_at_most_max_batch() -> None:
    writer = _ListWriter(max_batch=2)
    got = await _run(writer, ["a", "b", "c"])
    assert got == ["A", "B", "C"]
    assert writer.commits == [["a", "b"], ["c"]]
    assert writer.batches == 2 and writer.drained == 1
    assert repr(writer) == "<_ListWriter 0 waiting>"


async def test_a_refused_job_gets_its_error_and_the_rest_of_its_batch_goes_in() -> None:
    writer = _ListWriter()
    got = await _run(writer, ["a", "refuse", "b"])
    assert got[0] == "A" and got[2] == "B"
    assert isinstance(got[1], Conflict)
    assert writer.stored == ["a", "b"] and writer.batches == 1


async def test_a_failing_batch_is_retried_job_by_job_and_fails_only_its_culprit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = _ListWriter(max_batch=3)
    got = await _run(writer, ["a", "boom", "b", "c", "d"])
    assert got[0] == "A" and got[2:] == ["B", "C", "D"]
    assert isinstance(got[1], RuntimeError)
    # the failed batch one by one, then the next batch whole
    assert writer.commits == [["a", "boom", "b"], ["a"], ["boom"], ["b"], ["c", "d"]]
    assert writer.stored == ["a", "b", "c", "d"] and writer.batches == 3
    assert "word batch of 3 failed" in caplog.text


async def test_a_failed_announcement_fails_only_the_jobs_that_had_news() -> None:
    writer = _ListWriter(announce_fails=True)
    got = await _run(writer, ["a", "loud", "refuse"])
    assert got[0] == "A"
    assert isinstance(got[1], OSError)  # stored, but its news went unheard
    assert isinstance(got[2], Conflict)
    assert writer.stored == ["a", "loud"]
    quiet = _ListWriter()
    assert await _run(quiet, ["loud", "a"]) == ["LOUD", "A"]
    assert quiet.heard == ["loud"]


async def test_stopping_the_writer_cancels_every_waiting_caller() -> None:
    writer = _ListWriter(max_batch=1)
    writer.gate = asyncio.Event()  # the first batch's commit never ends
    async with writer.running("test-writer"):
        calls = [asyncio.create_task(writer.submit(j)) for j in ("a", "b", "c")]
        await writer.committing.wait()
        assert repr(writer) == "<_ListWriter 2 waiting>"
    # the batch being committed and the jobs still queued are all answered
    done, pending = await asyncio.wait(calls, timeout=5)
    assert not pending and all(c.cancelled() for c in done)
    assert writer.stored == [] and writer.batches == 0
    assert repr(writer) == "<_ListWriter 0 waiting>"
