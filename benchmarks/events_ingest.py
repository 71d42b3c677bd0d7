"""Analytics ingest throughput: POST /api/v1/events in batches of 1,000, into Redis Streams.

Compared, in the same run and against the same kind of Redis, with what Redis itself takes:
``redis-benchmark -P 50 -n 1000000 XADD`` of one encoded event per entry. Prints both rates and
their ratio. The API runs in a process of its own (as in production); the senders run here.

    .venv/bin/python benchmarks/events_ingest.py [--batches 300] [--senders 4]

Needs redis-server and redis-benchmark on PATH; starts its own Redis on a free port.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout:
            return proc, port
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def serve(data_dir: str, redis_url: str, port: int, ready: Any) -> None:
    """The API process: migrate, seed, make a live session and a token, then serve."""
    from aiohttp import web

    from livebase.api.app import create_app
    from livebase.api.state import DB_SESSIONS
    from livebase.auth import issue_token
    from livebase.db.models import LiveSession, Role, Room
    from livebase.seed import seed_catalogue
    from livebase.settings import load_settings

    settings = load_settings(
        {"LIVEBASE_DATA_DIR": data_dir, "LIVEBASE_REDIS_URL": redis_url,
         "LIVEBASE_MAX_REQUEST_BYTES": str(8 << 20)}
    )  # fmt: skip

    async def main() -> None:
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        async with app[DB_SESSIONS]() as db, db.begin():
            await seed_catalogue(db, settings)
            room = (await db.scalars(Room.__table__.select().limit(1))).first()
            assert room is not None
            session = LiveSession(base_id=1, room_id=room, title="bench")
            db.add(session)
            await db.flush()
            token = (await issue_token(db, Role.ADMIN)).token
            room_slug = (await db.get(Room, room)).slug  # type: ignore[union-attr]
            ready.send((token, session.id, room_slug))
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def bodies(count: int, session: int, room: str) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    out = []
    for _ in range(count):
        events = [
            {"type": "viewer.heartbeat", "event_id": uuid.uuid4().hex, "occurred_at": now,
             "base": "haifeng", "room": room, "session_id": session,
             "viewer_id": f"v{i}", "source": "player", "watch_seconds": 30}
            for i in range(1000)
        ]  # fmt: skip
        out.append(orjson.dumps({"events": events}))
    return out


async def send(url: str, token: str, batches: list[bytes], senders: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    queue = list(batches)
    async with aiohttp.ClientSession(headers=headers) as http:

        async def sender() -> None:
            while queue:
                body = queue.pop()
                async with http.post(url, data=body) as resp:
                    assert resp.status == 202, await resp.text()

        await sender_warmup(http, url, batches[0])
        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        return time.perf_counter() - start


async def sender_warmup(http: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with http.post(url, data=body) as resp:
        await resp.read()


def redis_reference(port: int, payload: bytes, n: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-P", "50", "-n", str(n), "-q",
         "XADD", "bench:reference", "*", "event", payload.decode()],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.findall(r"([\d.]+) requests per second", out)
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        redis, redis_port = start_redis(Path(tmp))
        api_port = free_port()
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.Process(
            target=serve, args=(tmp, f"redis://127.0.0.1:{redis_port}/0", api_port, child)
        )
        server.start()
        try:
            token, session, room = parent.recv()
            batches = bodies(args.batches, session, room)
            for _ in range(50):
                try:
                    socket.create_connection(("127.0.0.1", api_port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            url = f"http://127.0.0.1:{api_port}/api/v1/events"
            seconds = asyncio.run(send(url, token, batches, args.senders))
            events = 1000 * args.batches
            ours = events / seconds
            sample = orjson.loads(batches[0])["events"][0]
            from analytics.fastpath import check_batch

            payload = (
                check_batch(
                    [sample],
                    now=datetime.now(UTC),
                    lateness=__import__("datetime").timedelta(hours=24),
                )
                .events[0]
                .payload()
            )
            reference = redis_reference(redis_port, payload, 1_000_000)
        finally:
            server.terminate()
            server.join()
            redis.terminate()
            redis.wait()
    print(f"events:            {events:,} in batches of 1,000, {args.senders} senders")
    print(f"POST /api/v1/events: {ours:,.0f} events/s ({seconds:.2f} s)")
    print(f"redis-benchmark XADD -P 50: {reference:,.0f} entries/s ({len(payload)} B each)")
    print(f"ratio (ours / Redis alone): {ours / reference:.2f}")


if __name__ == "__main__":
    main()
