"""Analytics ingest throughput and live-counter freshness: POST /api/v1/events into Redis Streams.

Compared, in the same run and against the same Redis, with what Redis itself takes:
``redis-benchmark -P 50 XADD`` of one encoded event per entry. Prints both rates, their ratio,
and how far the live counters lag behind while the load runs.

    .venv/bin/python -m benchmarks.events_ingest [--seconds 10] [--connections 8] [--api 1]
        [--rate EVENTS_PER_S]

Processes, as in production with Redis: the API (``--api`` of them on one port with
``SO_REUSEPORT``), one analytics process running the live-counters consumer group, a Redis of
its own, and this one, the load generator. The load generator is kept cheap so that it does
not measure itself: each batch is a template built once whose event ids are made unique by one
``bytes.replace`` per request, and each connection is a bare asyncio stream that writes a
request and reads the answer.

Freshness: while the load runs, a probe posts one paid order of 1 fen at a time and polls
``GET /api/v1/bases/<base>/rooms/<room>/live`` until its GMV counts it; the lag is from
sending the probe to the first answer that counts it.

Needs redis-server and redis-benchmark on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.cpu import read_stat

BATCH = 1000
TEMPLATES = 20  # distinct batches of distinct viewers: 20,000 viewers in all
PLACEHOLDER = b"R0000000"  # in every event id of a template; each request puts its number there
BASE = "haifeng"
PROBE_GIVE_UP = 60.0  # s; a probe not counted by then is reported as this lag


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    for _ in range(100):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout:
            return proc, port
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def bench_settings(data_dir: str, redis_url: str) -> Any:
    from livebase.settings import load_settings

    return load_settings(
        {"LIVEBASE_DATA_DIR": data_dir, "LIVEBASE_REDIS_URL": redis_url,
         "LIVEBASE_MAX_REQUEST_BYTES": str(8 << 20)}
    )  # fmt: skip


async def _setup(app: Any, settings: Any) -> tuple[str, int, str]:
    """Seed, make a live session and an admin token; return (token, session id, room slug)."""
    from livebase.api.state import DB_SESSIONS
    from livebase.auth import issue_token
    from livebase.db.models import LiveSession, Role, Room, SessionStatus
    from livebase.seed import seed_catalogue

    async with app[DB_SESSIONS]() as db, db.begin():
        await seed_catalogue(db, settings)
        room = (await db.scalars(Room.__table__.select().limit(1))).first()
        assert room is not None
        session = LiveSession(base_id=1, room_id=room, title="bench", status=SessionStatus.LIVE)
        db.add(session)
        await db.flush()
        token = (await issue_token(db, Role.ADMIN)).token
        room_slug = (await db.get(Room, room)).slug  # type: ignore[union-attr]
        return token, session.id, room_slug


def serve(data_dir: str, redis_url: str, port: int, ready: Any, first: bool) -> None:
    """An API process; the first one also prepares the database and says what it made."""
    from aiohttp import web

    from livebase.api.app import create_app

    async def main() -> None:
        settings = bench_settings(data_dir, redis_url)
        app = create_app(settings, migrate=first)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        made = await _setup(app, settings) if first else None
        gc.freeze()  # as ``livebase serve`` does once started
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        ready.send(made)
        await asyncio.Event().wait()

    asyncio.run(main())


def count(data_dir: str, redis_url: str, ready: Any) -> None:
    """The analytics process: the live-counters consumer group, as the service runs it."""
    from aiohttp import web

    from analytics.pipeline import AnalyticsPipeline
    from livebase.api.analytics_ctx import COUNTERS
    from livebase.api.app import create_app
    from livebase.api.state import BUS, DB_SESSIONS

    async def main() -> None:
        app = create_app(bench_settings(data_dir, redis_url), migrate=False)
        runner = web.AppRunner(app)
        await runner.setup()
        pipeline = AnalyticsPipeline(app[BUS], app[DB_SESSIONS], app[COUNTERS], Path(data_dir))
        (counters,) = [c for c in pipeline.build() if c.group.endswith("counters")]
        counters.start()
        gc.freeze()
        ready.send(None)
        await asyncio.Event().wait()

    asyncio.run(main())


def templates(session: int, room: str) -> list[bytes]:
    """Batches of heartbeats of distinct viewers, dated over the last five seconds."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    out = []
    for t in range(TEMPLATES):
        events = [
            {"type": "viewer.heartbeat", "event_id": f"{PLACEHOLDER.decode()}-{t:02d}-{i:04d}",
             "occurred_at": (now - timedelta(milliseconds=rng.randrange(5000))).isoformat(),
             "base": BASE, "room": room, "session_id": session,
             "viewer_id": f"v{t}-{i}", "source": "player", "watch_seconds": 30}
            for i in range(BATCH)
        ]  # fmt: skip
        out.append(orjson.dumps({"events": events}))
    return out


def request(port: int, token: str, body: bytes) -> bytes:
    head = (
        f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    return status, await reader.readexactly(length)


class Load:
    """Connections posting batches until told to stop; counts the accepted events."""

    def __init__(self, port: int, token: str, bodies: list[bytes]) -> None:
        self.requests = [request(port, token, body) for body in bodies]
        self.port = port
        self.number = 0
        self.accepted = 0
        self.stop = False
        # With --rate, request n is due at start + n * interval (open loop); 0: at once.
        self.interval = 0.0
        self.start = time.perf_counter()

    async def connection(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while not self.stop:
                if self.interval:
                    due = self.start + self.number * self.interval - time.perf_counter()
                    if due > 0:
                        await asyncio.sleep(due)
                        continue
                self.number += 1
                template = self.requests[self.number % len(self.requests)]
                writer.write(template.replace(PLACEHOLDER, b"R%07d" % self.number))
                status, body = await read_response(reader)
                if status != 202:
                    raise RuntimeError(f"POST /api/v1/events answered {status}: {body[:300]!r}")
                self.accepted += orjson.loads(body)["accepted"]
        finally:
            writer.close()


async def probe(url: str, token: str, session: int, room: str, stop: asyncio.Event) -> list[float]:
    """Lags (s) from posting a 1-fen order to the room's live GMV counting it."""
    headers = {"Authorization": f"Bearer {token}"}
    live_url = f"{url}/api/v1/bases/{BASE}/rooms/{room}/live"
    lags: list[float] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(live_url) as resp:
            gmv = (await resp.json())["gmv_fen"]
        while not stop.is_set():
            order = {"type": "order.paid", "event_id": uuid.uuid4().hex,
                     "occurred_at": datetime.now(UTC).isoformat(), "base": BASE, "room": room,
                     "session_id": session, "order_id": uuid.uuid4().hex, "platform": "youzan",
                     "buyer_id": "probe", "amount_fen": 1}  # fmt: skip
            sent = time.perf_counter()
            async with http.post(f"{url}/api/v1/events", json={"events": [order]}) as resp:
                assert resp.status == 202, await resp.text()
            gmv += 1
            while time.perf_counter() - sent < PROBE_GIVE_UP:
                async with http.get(live_url) as resp:
                    if (await resp.json())["gmv_fen"] >= gmv:
                        break
                await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - sent)
            await asyncio.sleep(0.2)
    return lags


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each role's processes; this process's as "load"."""
    used = {role: sum(s.own for p in group if (s := read_stat(p))) for role, group in pids.items()}
    times = os.times()
    used["load generator"] = times.user + times.system
    return used


async def drive(
    port: int,
    token: str,
    where: tuple[int, str],
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> tuple[int, float, list[float], dict[str, float]]:
    session, room = where
    seconds, connections = args.seconds, args.connections
    load = Load(port, token, templates(session, room))
    # One batch first, so that the first timed requests find a warm process.
    load.stop = True
    await load.connection()
    load.stop, load.accepted, load.number = False, 0, 0
    load.interval = BATCH / args.rate if args.rate else 0.0
    load.start = time.perf_counter()
    stop = asyncio.Event()
    lags = asyncio.create_task(probe(f"http://127.0.0.1:{port}", token, session, room, stop))
    before = cpu_seconds(pids)
    start = time.perf_counter()
    tasks = [asyncio.create_task(load.connection()) for _ in range(connections)]
    await asyncio.sleep(seconds)
    load.stop = True
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    after = cpu_seconds(pids)
    stop.set()
    cpu = {role: after[role] - before[role] for role in after}
    return load.accepted, elapsed, await lags, cpu


def redis_reference(port: int, payload: bytes, n: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-P", "50", "-n", str(n), "-q",
         "XADD", "bench:reference", "*", "event", payload.decode()],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.findall(r"([\d.]+) requests per second", out)
    return float(found[-1])


def sample_payload(session: int, room: str) -> bytes:
    """One heartbeat as the bus carries it."""
    from analytics.fastpath import check_batch

    sample = orjson.loads(templates(session, room)[0])["events"][0]
    batch = check_batch([sample], now=datetime.now(UTC), lateness=timedelta(hours=24))
    return batch.payloads()[0]


def uptime() -> str:
    return ", ".join(Path("/proc/loadavg").read_text().split(" ", 3)[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--api", type=int, default=1, help="API processes on the port")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="offered events/s (default: as fast as taken)"
    )
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH")
    load_before = uptime()
    procs: list[multiprocessing.Process] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis, redis_port = start_redis(Path(tmp))
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        api_port = free_port()
        try:
            for index in range(args.api):
                parent, child = multiprocessing.Pipe()
                proc = multiprocessing.Process(
                    target=serve, args=(tmp, redis_url, api_port, child, index == 0)
                )
                proc.start()
                procs.append(proc)
                made = parent.recv()
                if index == 0:
                    token, session, room = made
            parent, child = multiprocessing.Pipe()
            procs.append(multiprocessing.Process(target=count, args=(tmp, redis_url, child)))
            procs[-1].start()
            parent.recv()
            pids = {
                "API": [p.pid for p in procs[:-1] if p.pid],
                "live counters": [procs[-1].pid or 0],
                "Redis": [redis.pid],
            }
            events, seconds, lags, cpu = asyncio.run(
                drive(api_port, token, (session, room), args, pids)
            )
            payload = sample_payload(session, room)
            reference = redis_reference(redis_port, payload, 1_000_000)
        finally:
            for proc in procs:
                proc.terminate()
                proc.join()
            redis.terminate()
            redis.wait()
    ours = events / seconds
    print(f"load average before / after: {load_before} / {uptime()}")
    offered = f", offered {args.rate:,.0f}/s" if args.rate else ""
    print(f"events:            {events:,} in batches of {BATCH:,}, {args.connections} connections,"
          f" {args.api} API process(es){offered}")  # fmt: skip
    print(f"POST /api/v1/events: {ours:,.0f} events/s ({seconds:.2f} s)")
    print(f"redis-benchmark XADD -P 50: {reference:,.0f} entries/s ({len(payload)} B each)")
    print(f"ratio (ours / Redis alone): {ours / reference:.2f}")
    print("CPU per event during the load (µs):", ", ".join(
        f"{role} {1e6 * used / events:.2f}" for role, used in cpu.items()
    ), f"; all {1e6 * sum(cpu.values()) / events:.2f}")  # fmt: skip
    if lags:
        lags.sort()
        print(f"live counters lag: {len(lags)} probes, median {statistics.median(lags):.3f} s,"
              f" max {lags[-1]:.3f} s")  # fmt: skip
    else:
        print("live counters lag: no probe completed during the load")


if __name__ == "__main__":
    main()
