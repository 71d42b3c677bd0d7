"""The hand-checked day of ``kpi_day_support`` loaded into the rollups of a real database.

The day's six sessions, three hosts, two themes and three products are created as rows of
base ``haifeng``; the events are renumbered to their ids and counted by the rollup store, the
same code the rollup consumer runs. Reports then read only the rollups.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kpi_day_support import AS_OF, EVENTS, HOST_OF, ROOMS
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from analytics.directory import SessionDirectory
from analytics.rollup_store import apply_events
from analytics.schemas import AnalyticsEvent
from livebase.db.models import (
    Base,
    GiClaimRecord,
    Host,
    LiveSession,
    Merchant,
    Product,
    Room,
    SessionStatus,
    Theme,
)
from livebase.gi import GiSystem

THEME_OF = {1: "gi-produce", 2: "arts-crafts", 3: "arts-crafts"}
HOST_NAMES = {1: "阿梅", 2: "阿海", 3: "阿山"}
PRODUCTS = {100: ("陆河青梅", "陆河青梅"), 101: ("海丰莲花山茶", None), 200: ("汕尾贝雕", None)}
DAY = AS_OF.date()  # 2025-05-01


@dataclass(frozen=True)
class LoadedDay:
    sessions: dict[int, int]  #: dataset session id -> database id
    hosts: dict[int, int]  #: dataset host -> database id
    products: dict[int, int]
    base_id: int


async def load_day(
    sessions: async_sessionmaker[AsyncSession], *, timezone: str = "UTC"
) -> LoadedDay:
    """Create the day's rows in ``haifeng`` (time zone ``timezone``) and roll its events up."""
    async with sessions() as db, db.begin():
        base = await db.scalar(select(Base).where(Base.slug == "haifeng"))
        assert base is not None
        await db.execute(update(Base).where(Base.id == base.id).values(timezone=timezone))
        rooms = {
            r.slug: r.id for r in await db.scalars(select(Room).where(Room.base_id == base.id))
        }
        themes = {t.slug: t.id for t in await db.scalars(select(Theme))}
        merchant = Merchant(base_id=base.id, name="样例合作社")
        hosts = {n: Host(base_id=base.id, display_name=name) for n, name in HOST_NAMES.items()}
        db.add_all([merchant, *hosts.values()])
        await db.flush()
        products: dict[int, int] = {}
        for number, (title, gi) in PRODUCTS.items():
            product = Product(
                base_id=base.id, merchant_id=merchant.id, title_zh=title, price_fen=100
            )
            db.add(product)
            await db.flush()
            products[number] = product.id
            if gi is not None:
                db.add(GiClaimRecord(product_id=product.id, system=GiSystem.AGRICULTURAL,
                                     registered_name=gi))  # fmt: skip
        ids: dict[int, int] = {}
        for number, room in ROOMS.items():
            host = HOST_OF[number]
            assert host is not None
            row = LiveSession(
                base_id=base.id, room_id=rooms[room], host_id=hosts[host].id,
                theme_id=themes[THEME_OF[host]], title=f"S{number}",
                status=SessionStatus.LIVE if number == 32 else SessionStatus.ENDED,
            )  # fmt: skip
            db.add(row)
            await db.flush()
            ids[number] = row.id
        loaded = LoadedDay(ids, {n: h.id for n, h in hosts.items()}, products, base.id)
    await roll_up(sessions, loaded, EVENTS)
    return loaded


async def roll_up(
    sessions: async_sessionmaker[AsyncSession],
    loaded: LoadedDay,
    events: list[AnalyticsEvent],
    shift: timedelta = timedelta(0),
) -> None:
    """Count ``events`` (of the dataset's sessions) into the rollups, moved by ``shift``."""
    moved = [renumber(e, loaded.sessions, loaded.products, shift) for e in events]
    async with sessions() as db, db.begin():
        info = await SessionDirectory().lookup(db, loaded.sessions.values())
        await apply_events(db, moved, info)


def renumber(
    event: AnalyticsEvent, sessions: dict[int, int], products: dict[int, int], shift: timedelta
) -> AnalyticsEvent:
    update: dict[str, Any] = {
        "session_id": sessions[event.session_id],
        "occurred_at": event.occurred_at + shift,
        "event_id": f"{event.event_id}@{shift.total_seconds():.0f}",
    }
    product = getattr(event, "product_id", None)
    if product is not None:
        update["product_id"] = products[product]
    return event.model_copy(update=update)


def at(clock: str) -> datetime:
    """A time of the dataset's day, UTC."""
    return datetime.fromisoformat(f"{DAY.isoformat()}T{clock}+00:00").astimezone(UTC)


CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"


def chromium(profile: Path, *more: str) -> subprocess.CompletedProcess[bytes]:
    """Run headless Chromium, which reaches nothing outside (no updates, sync or QUIC)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium; scripts/setup.sh --test)"
        if IN_CI:
            pytest.fail(f"{message}; in CI every test must run")
        pytest.skip(message)
    args = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", *more,
    ]  # fmt: skip
    run = subprocess.run(args, capture_output=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    return run
