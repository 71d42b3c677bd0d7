"""The event loop the service runs on: uvloop when it is installed, asyncio's own otherwise.

The ingest relays media with a few system calls and callbacks per frame; the loop's own
bookkeeping between them is a large share of what a relay costs in Python, and uvloop's is a
fraction of the default loop's (docs/benchmarks.md has the figures). Nothing in Livebase
depends on which loop runs it: the test suite runs on asyncio's loop, and the end-to-end
relay test runs on uvloop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``uvloop.new_event_loop``, or None (asyncio's default) if uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``loop_factory`` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
