"""Fixtures for the storefront adapter tests.

The platforms cannot be reached from here, so each one is a small aiohttp server on
127.0.0.1 (port 0) that behaves as its documentation says. Time is a FakeClock shared by
adapter and fake: the adapter's sleeps advance it, and the fakes' rate limits read it, so
throttling is exercised exactly and no test really waits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from storefront_support import FakeClock, Serve


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start an aiohttp app on 127.0.0.1 with a free port; returns its base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        # The fake is the remote platform: its access log (which prints query strings, and so
        # the tokens Douyin and Youzan carry there) is not ours and is switched off.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture everything the adapters log, down to DEBUG, for the no-secrets checks."""
    caplog.set_level(logging.DEBUG, logger="storefront_adapters")
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    return caplog
