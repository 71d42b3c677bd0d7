"""``livebase demo``: the whole stack on the embedded default, driven end to end.

It starts the service, seeds the sample bases, then acts as the people who use it, through the
real HTTP API: a merchant lists products (sample data, clearly marked), a manager plans a
session, the host goes live, pins products and sells. It prints where to look and stops cleanly
on Ctrl-C or after ``--duration`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

from livebase.api.state import DB_SESSIONS
from livebase.auth import issue_token
from livebase.db.models import Role
from livebase.service import running_service, wait_for_stop_signal
from livebase.settings import Settings

SAMPLE = "【示例数据 sample】"
PRODUCTS = [
    ("陆河青梅 (示例)", "Luhe green plums (sample)", 3980, 200),
    ("海丰莲花山茶 (示例)", "Haifeng Lianhuashan tea (sample)", 12800, 80),
    ("海丰油占米 (示例)", "Haifeng Youzhan rice (sample)", 5990, 150),
]


class DemoError(RuntimeError):
    pass


@dataclass
class Driver:
    """Calls the API as a person would, over HTTP, with a token."""

    http: aiohttp.ClientSession
    url: str
    token: str
    calls: int = 0
    log: list[str] = field(default_factory=list)

    async def __call__(self, method: str, path: str, body: Any = None) -> Any:
        self.calls += 1
        async with self.http.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            payload = await resp.json() if resp.content_type == "application/json" else None
            if resp.status >= 400:
                raise DemoError(f"{method} {path} → {resp.status}: {payload}")
            return payload


async def _admin_token(app: Any) -> str:
    async with app[DB_SESSIONS]() as db, db.begin():
        return (await issue_token(db, Role.ADMIN, name="demo")).token


async def drive(api: Driver, console: Console, rng: random.Random) -> dict[str, Any]:
    """One base's day in miniature: listings, a live session, pins and orders."""
    base = "/api/v1/bases/haifeng"
    merchant = await api("POST", f"{base}/merchants", {"name": f"海丰农特产合作社 {SAMPLE}"})
    host = await api("POST", f"{base}/hosts", {"display_name": "小梅 (示例主播)"})
    rooms = await api("GET", f"{base}/rooms")
    room = rooms["items"][0]
    await api("PATCH", f"{base}/hosts/{host['id']}", {"room_id": room["id"]})
    products = []
    for title_zh, title_en, price, stock in PRODUCTS:
        products.append(
            await api(
                "POST",
                f"{base}/products",
                {
                    "merchant_id": merchant["id"],
                    "title_zh": title_zh,
                    "title_en": title_en,
                    "description_zh": SAMPLE,
                    "price_fen": price,
                    "stock": stock,
                    "status": "active",
                },
            )
        )
    themes = await api("GET", "/api/v1/themes")
    theme = next(t for t in themes["items"] if t["slug"] == "gi-produce")
    session = await api(
        "POST",
        f"{base}/sessions",
        {
            "room_id": room["id"],
            "host_id": host["id"],
            "theme_id": theme["id"],
            "title": "海丰好物 · 地理标志农产品专场 (示例)",
        },
    )
    sid = session["id"]
    await api("PUT", f"{base}/sessions/{sid}/lineup", {"product_ids": [p["id"] for p in products]})
    await api("PATCH", f"{base}/sessions/{sid}", {"status": "live"})
    console.print(f"[green]●[/] session {sid} is live in {room['slug']}")
    orders = 0
    for i, product in enumerate(products):
        pin = await api(
            "POST",
            f"{base}/sessions/{sid}/pins",
            {"product_id": product["id"], "stream_offset_ms": i * 60_000},
        )
        for n in range(rng.randint(2, 5)):
            qty = rng.randint(1, 3)
            await api(
                "POST",
                f"{base}/orders",
                {
                    "platform": rng.choice(["douyin", "kuaishou", "channels"]),
                    "platform_order_id": f"demo-{sid}-{product['id']}-{n}",
                    "product_id": product["id"],
                    "session_id": sid,
                    "quantity": qty,
                    "amount_fen": qty * product["price_fen"],
                    "placed_at": datetime.now(UTC).isoformat(),
                },
            )
            orders += 1
        await api("POST", f"{base}/sessions/{sid}/pins/{pin['id']}/unpin")
        console.print(f"  pinned {product['title_zh']} and took orders")
    await api("PATCH", f"{base}/sessions/{sid}", {"status": "ended"})
    return {"session": sid, "orders": orders, "products": len(products)}


async def run_demo(settings: Settings, *, duration: float, console: Console) -> int:
    rng = random.Random(7)  # noqa: S311 (simulated shoppers, not security)
    async with running_service(settings) as svc, aiohttp.ClientSession() as http:
        api = Driver(http, svc.http_url, await _admin_token(svc.app))
        with console.status("driving the demo…"):
            summary = await drive(api, console, rng)
        table = Table(title="Livebase demo", show_header=False)
        table.add_row("API", f"{svc.http_url}/api/v1/bases")
        table.add_row("OpenAPI", f"{svc.http_url}/openapi.json")
        table.add_row("Health / metrics", f"{svc.http_url}/healthz · {svc.http_url}/metrics")
        table.add_row("Admin token", api.token)
        table.add_row(
            "Session",
            f"#{summary['session']}: {summary['products']} products "
            f"pinned, {summary['orders']} orders",
        )
        table.add_row("API calls made", str(api.calls))
        console.print(table)
        console.print("Press Ctrl-C to stop." if not duration else f"Stopping in {duration:g} s.")
        waiter = asyncio.ensure_future(wait_for_stop_signal())
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout=duration or None)
        except TimeoutError:
            pass
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
    console.print("demo stopped")
    return 0
