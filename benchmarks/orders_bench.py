"""Orders and pins under load: pin/unpin latency, pin-to-viewer latency, webhook ingestion.

Each figure is compared with a reference measured in the same run against the same server:
``GET /healthz`` (one database round trip, no auth) at the same rate or concurrency. The API
runs in a process of its own, on SQLite under a temporary data directory unless
``--database-url`` names another database; the load generator runs here.

    .venv/bin/python -m benchmarks.orders_bench [--rates 100,250,500] [--seconds 10]
        [--viewers 1000] [--pins 30] [--orders 3000] [--concurrency 32]
        [--database-url URL] [--redis-url URL] [--only pins,viewers,webhooks]

1. Pin and unpin: an open loop at each of ``--rates`` requests/s for ``--seconds``, alternating
   a pin (of one of two products) and the unpin of the latest pin; latency from send to answer.
2. Pin to viewer: ``--viewers`` SSE connections to the room's player feed, then ``--pins``
   pins, each once every viewer has the previous one (and 300 ms later); latency from sending
   the pin to each viewer reading its event (not within 2 s: counted as never).
3. Webhook ingestion: ``--orders`` Shopify deliveries (distinct orders, each signed with
   HMAC-SHA256 and checked by the server), ``--concurrency`` in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import os
import socket
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from benchmarks.cpu import read_stat

SECRET = "shpss_bench_secret_8d1f"
HF = "/api/v1/bases/haifeng"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: str, database_url: str, redis_url: str, port: int, ready: Any) -> None:
    """The API process: migrate, seed the bases, issue an admin token, serve."""
    from aiohttp import web

    from livebase.api.app import create_app
    from livebase.api.state import DB_SESSIONS
    from livebase.auth import issue_token
    from livebase.db.models import Role
    from livebase.seed import seed_catalogue
    from livebase.settings import load_settings

    env = {"LIVEBASE_DATA_DIR": data_dir, "LIVEBASE_LOG_LEVEL": "WARNING"}
    env |= {"LIVEBASE_DATABASE_URL": database_url} if database_url else {}
    env |= {"LIVEBASE_REDIS_URL": redis_url} if redis_url else {}
    settings = load_settings(env)

    async def main() -> None:
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        async with app[DB_SESSIONS]() as db, db.begin():
            await seed_catalogue(db, settings)
            token = (await issue_token(db, Role.ADMIN)).token
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.send(token)
        await asyncio.Event().wait()

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(ms: list[float]) -> str:
    return (
        f"p50 {percentile(ms, 0.50):6.1f} ms  p99 {percentile(ms, 0.99):6.1f} ms  "
        f"max {max(ms):6.1f} ms  (n={len(ms)})"
    )


class CpuWatch:
    """CPU seconds of the API process and of this load generator over a measurement."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        stat = read_stat(self.server_pid)
        times = os.times()
        return time.perf_counter(), stat.own if stat else 0.0, times.user + times.system

    def report(self, requests: int) -> str:
        wall, server, ours = (b - a for a, b in zip(self.start, self._now(), strict=True))
        return (
            f"API {server / requests * 1000:.2f} ms CPU per request ({server / wall:.0%} of a "
            f"core), load generator {ours / wall:.0%} of a core"
        )


class Bench:
    def __init__(self, http: aiohttp.ClientSession, root: str, token: str, server_pid: int) -> None:
        self.http, self.root, self.server_pid = http, root, server_pid
        self.auth = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(
            method, self.root + path, json=body, headers=self.auth
        ) as resp:
            payload = await resp.json()
            if resp.status >= 300:
                raise RuntimeError(f"{method} {path}: {resp.status} {payload}")
            return payload

    async def setup(self) -> dict[str, Any]:
        merchant = await self.call("POST", f"{HF}/merchants", {"name": "bench merchant"})
        rooms = (await self.call("GET", f"{HF}/rooms"))["items"]
        products = []
        for title in ("鱿鱼干", "莲花山茶"):
            products.append(
                await self.call(
                    "POST",
                    f"{HF}/products",
                    {
                        "merchant_id": merchant["id"],
                        "title_zh": title,
                        "price_fen": 1990,
                        "skus": [{"sku": "S1", "price_fen": 1990, "stock": 10_000_000}],
                    },
                )
            )
        session = await self.call(
            "POST", f"{HF}/sessions", {"room_id": rooms[0]["id"], "title": "bench"}
        )
        sp = f"{HF}/sessions/{session['id']}"
        await self.call("PUT", sp + "/lineup", {"product_ids": [p["id"] for p in products]})
        await self.call("PATCH", sp, {"status": "live"})
        shop = await self.call("POST", f"{HF}/shops", {
            "platform": "shopify", "shop_ref": "bench.myshopify.com",
            "api_base_url": "https://bench.myshopify.com", "credentials": {"secret": SECRET},
        })  # fmt: skip
        await self.call("PUT", f"{HF}/shops/{shop['id']}/listings", {"listings": [
            {"external_product_id": "632910392", "product_id": products[0]["id"]}]})  # fmt: skip
        return {"session": sp, "products": [p["id"] for p in products], "shop": shop["id"],
                "room": rooms[0]["slug"]}  # fmt: skip


async def open_loop(
    rate: float, seconds: float, fire: Any, warmup: float = 1.0
) -> tuple[list[float], float, int]:
    """Fire ``fire(i)`` at ``rate``/s regardless of answers.

    Returns the latencies (ms) of the answers after the warm-up, the rate achieved, and how
    many requests failed (an error status, or no answer within 5 s).
    """
    latencies: list[float] = []
    failed = 0
    tasks = []
    loop = asyncio.get_running_loop()
    start = loop.time()
    total = int(rate * (seconds + warmup))

    async def one(i: int) -> None:
        nonlocal failed
        sent = time.perf_counter()
        try:
            async with asyncio.timeout(5):
                await fire(i)
        except (TimeoutError, RuntimeError, aiohttp.ClientError):
            failed += 1
            return
        if i >= rate * warmup:
            latencies.append((time.perf_counter() - sent) * 1000)

    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    achieved = total / (loop.time() - start)
    return latencies, achieved, failed


async def drained(bench: Bench) -> None:
    """Wait until the server has worked off any backlog of an overloaded run."""
    for _ in range(120):
        start = time.perf_counter()
        async with bench.http.get(bench.root + "/healthz") as resp:
            await resp.read()
        if time.perf_counter() - start < 0.02:
            return
        await asyncio.sleep(0.5)


async def pin_unpin(
    bench: Bench, scene: dict[str, Any], rates: list[float], seconds: float
) -> None:
    # Requests built once (URLs, headers, bodies): the load generator shares the two cores.
    pins_url = bench.root + scene["session"] + "/pins"
    headers = {**bench.auth, "Content-Type": "application/json"}
    bodies = [json.dumps({"product_id": p}).encode() for p in scene["products"]]
    health_url = bench.root + "/healthz"
    latest: list[int] = []

    async def post(url: str, body: bytes | None) -> bytes:
        async with bench.http.post(url, data=body, headers=headers) as resp:
            payload = await resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"POST {url}: {resp.status} {payload!r}")
            return payload

    async def fire(i: int) -> None:
        if i % 2 == 0:
            pin = json.loads(await post(pins_url, bodies[(i // 2) % 2]))
            latest.append(pin["id"])
        elif latest:
            await post(f"{pins_url}/{latest[-1]}/unpin", None)

    async def health(i: int) -> None:
        async with bench.http.get(health_url) as resp:
            await resp.read()

    print(f"\n1. pin/unpin, {seconds:.0f} s per rate (open loop; failed = error or > 5 s)")
    for rate in rates:
        await drained(bench)
        cpu = CpuWatch(bench.server_pid)
        ref, ref_rate, ref_failed = await open_loop(rate, seconds, health)
        ref_cpu = cpu.report(int(rate * (seconds + 1)))
        await drained(bench)
        cpu = CpuWatch(bench.server_pid)
        ours, our_rate, failed = await open_loop(rate, seconds, fire)
        our_cpu = cpu.report(int(rate * (seconds + 1)))
        print(f"   {rate:4.0f}/s GET /healthz (reference): {summary(ref)}  failed {ref_failed}"
              f"  (sent at {ref_rate:.0f}/s)\n      {ref_cpu}")  # fmt: skip
        if ours:
            ratio = percentile(ours, 0.99) / percentile(ref, 0.99)
            print(f"   {rate:4.0f}/s pin + unpin:              {summary(ours)}  failed {failed}"
                  f"  p99 ratio {ratio:.1f}  (sent at {our_rate:.0f}/s)"
                  f"\n      {our_cpu}")  # fmt: skip
        else:
            print(f"   {rate:4.0f}/s pin + unpin: every request failed ({failed})")


async def read_events(
    resp: aiohttp.ClientResponse, seen: dict[int, float], on_seen: Callable[[int], None]
) -> None:
    async for line in resp.content:
        if line.startswith(b"data: {"):
            pin_id = json.loads(line[6:])["pin_id"]
            if pin_id not in seen:
                seen[pin_id] = time.perf_counter()
                on_seen(pin_id)


async def pin_to_viewers(bench: Bench, scene: dict[str, Any], viewers: int, pins: int) -> None:
    url = f"{bench.root}/live/haifeng/{scene['room']}/pins"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def measure(count: int) -> list[float]:
            arrived: Counter[int] = Counter()
            everyone: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

            def on_seen(pin_id: int) -> None:
                arrived[pin_id] += 1
                if arrived[pin_id] == count:
                    everyone[pin_id].set()

            responses = [await http.get(url) for _ in range(count)]
            seen: list[dict[int, float]] = [{} for _ in responses]
            readers = [
                asyncio.create_task(read_events(r, s, on_seen))
                for r, s in zip(responses, seen, strict=True)
            ]
            await asyncio.sleep(1.0)
            latencies = []
            for n in range(pins):
                sent = time.perf_counter()
                pin = await bench.call(
                    "POST", scene["session"] + "/pins", {"product_id": scene["products"][n % 2]}
                )
                # Until every viewer has it, or 2 s: later counts as never (inf).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(2.0):
                        await everyone[pin["id"]].wait()
                latencies += [(s[pin["id"]] - sent) * 1000 if pin["id"] in s else float("inf")
                              for s in seen]  # fmt: skip
                await asyncio.sleep(0.3)
            for task in readers:
                task.cancel()
            for r in responses:
                r.close()
            return latencies

        ref = await measure(1)
        ours = await measure(viewers)
    print(f"\n2. pin to viewer, {pins} pins")
    print(f"   1 viewer (reference):  {summary(ref)}")
    print(f"   {viewers} viewers:        {summary(ours)}")
    print(f"   p99 ratio: {percentile(ours, 0.99) / percentile(ref, 0.99):.1f}")


def delivery(n: int) -> tuple[dict[str, str], bytes]:
    placed = (datetime.now(UTC) + timedelta(seconds=1)).isoformat(timespec="seconds")
    body = json.dumps({
        "id": 10_000_000 + n, "created_at": placed, "currency": "CNY",
        "financial_status": "paid", "total_price": "19.90", "customer": {"id": n},
        "landing_site": "/products/squid", "note_attributes": [],
        "line_items": [{"product_id": 632910392, "variant_id": 808950810, "sku": "S1",
                        "quantity": 1, "price": "19.90", "discount_allocations": []}],
    }).encode()  # fmt: skip
    sign = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "Content-Type": "application/json", "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Hmac-Sha256": sign,
    }, body  # fmt: skip


async def closed_loop(http: aiohttp.ClientSession, jobs: list[Any], concurrency: int) -> float:
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            method, url, headers, body = queue.pop()
            async with http.request(method, url, headers=headers, data=body) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(jobs) / (time.perf_counter() - start)


async def webhooks(bench: Bench, scene: dict[str, Any], orders: int, concurrency: int) -> None:
    url = f"{bench.root}/webhooks/shopify/{scene['shop']}"
    deliveries = [delivery(n) for n in range(orders)]
    health = [("GET", bench.root + "/healthz", {}, None)] * orders
    cpu = CpuWatch(bench.server_pid)
    ref = await closed_loop(bench.http, health, concurrency)
    ref_cpu, cpu = cpu.report(orders), CpuWatch(bench.server_pid)
    ours = await closed_loop(bench.http, [("POST", url, h, b) for h, b in deliveries], concurrency)
    our_cpu, cpu = cpu.report(orders), CpuWatch(bench.server_pid)
    replay = await closed_loop(
        bench.http, [("POST", url, h, b) for h, b in deliveries[: orders // 3]], concurrency
    )
    replay_cpu = cpu.report(orders // 3)
    print(f"\n3. webhook ingestion, {orders} signed orders, {concurrency} in flight")
    print(f"   GET /healthz (reference): {ref:8,.0f} req/s        {ref_cpu}")
    print(f"   new orders:               {ours:8,.0f} orders/s     {our_cpu}")
    print(f"   replays (counted once):   {replay:8,.0f} deliveries/s {replay_cpu}")
    print(f"   ratio new orders / healthz: {ours / ref:.2f}")


async def run(args: argparse.Namespace, port: int, token: str, server_pid: int) -> None:
    root = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        bench = Bench(http, root, token, server_pid)
        scene = await bench.setup()
        if "pins" in args.only:
            await pin_unpin(bench, scene, args.rates, args.seconds)
            await drained(bench)
        if "viewers" in args.only:
            await pin_to_viewers(bench, scene, args.viewers, args.pins)
            await drained(bench)
        if "webhooks" in args.only:
            await webhooks(bench, scene, args.orders, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rates", type=lambda v: [float(r) for r in v.split(",")], default=[100, 250, 500]
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--pins", type=int, default=30)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--only", type=lambda v: set(v.split(",")), default={"pins", "viewers", "webhooks"}
    )
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        parent, child = multiprocessing.Pipe()
        server = multiprocessing.get_context("spawn").Process(
            target=serve, args=(tmp, args.database_url, args.redis_url, port, child)
        )
        server.start()
        try:
            token = parent.recv()
            print(f"database: {args.database_url or 'SQLite (embedded default)'}; "
                  f"bus: {'Redis' if args.redis_url else 'in process'}")  # fmt: skip
            assert server.pid is not None
            asyncio.run(run(args, port, token, server.pid))
        finally:
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
