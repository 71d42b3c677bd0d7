"""Headless Chromium driven over the Chrome DevTools Protocol (a small client on aiohttp).

``browser(profile)`` starts ``/usr/bin/chromium`` with a DevTools port of its own on 127.0.0.1
and yields the ``Page`` of its first tab: navigate, evaluate JavaScript, wait for a condition,
take a screenshot. The browser reaches nothing outside (no updates, sync or QUIC).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from report_support import CHROMIUM, IN_CI

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
    "--autoplay-policy=no-user-gesture-required", "--mute-audio",
)  # fmt: skip


class CdpError(RuntimeError):
    """A DevTools command failed, or JavaScript threw."""


class Page:
    """One tab: commands go out with an id; answers are matched to them by a reader task."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._waiting.pop(data.get("id", 0), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self._waiting.values():
            future.set_exception(CdpError("the browser closed the connection"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = future
        await self._ws.send_json({"id": call_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 15.0) -> Any:
        """The first truthy value of ``expression``, polled until ``within`` seconds pass."""
        async with asyncio.timeout(within):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(0.05)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for(f"location.href === {json.dumps(url)} && document.readyState")
        await self.wait_for("document.readyState === 'complete'")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        await self._ws.close()
        await self._reader


async def _debugger_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    # Chromium writes the port it bound (and the browser's path) here once it listens.
    active = profile / "DevToolsActivePort"
    async with asyncio.timeout(30):
        while not active.is_file() or not active.read_text().strip():
            if process.returncode is not None:
                raise CdpError(f"chromium exited with {process.returncode}")
            await asyncio.sleep(0.05)
    return int(active.read_text().split()[0])


@contextlib.asynccontextmanager
async def browser(profile: Path, width: int = 390, height: int = 844) -> AsyncIterator[Page]:
    """A headless Chromium with a phone-sized window, and its first tab."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium; scripts/setup.sh --test)"
        if IN_CI:
            pytest.fail(f"{message}; in CI every test must run")
        pytest.skip(message)
    args = [*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
    log = await asyncio.to_thread((profile.parent / "chromium.log").open, "wb")
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM), *args, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        port = await _debugger_port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(url, max_msg_size=0) as ws:
                page = Page(ws)
                try:
                    yield page
                finally:
                    await page.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
