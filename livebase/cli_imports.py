"""``livebase import douyin-compass|channels``: platform figures into a base, from a shell.

``douyin-compass --base SLUG FILE``: the same function as ``POST
/api/v1/bases/{base}/imports/douyin-compass`` does the work, in one transaction: a file with any
bad row prints every problem and stores nothing (exit 1).

``channels --base SLUG --account NAME EXPORT_ID…``: fetches each broadcast from the WeChat
Channels ``getlivedata`` API with the app's credentials from ``WECHAT_CHANNELS_APPID`` and
``WECHAT_CHANNELS_SECRET`` (never from the command line, where other users could read them),
then stores them all, or none if any fetch fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.platform.channels import DEFAULT_API, ChannelsClient, ChannelsError, Credentials
from analytics.platform.importer import ImportFailed, import_douyin_compass
from analytics.platform.store import Saved, save_figures
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.db.models import Base
from livebase.seed import seed_catalogue
from livebase.settings import Settings

err = Console(stderr=True)


Store = Callable[[AsyncSession, Base], Awaitable[Saved]]


async def _into_base(settings: Settings, slug: str, store: Store) -> Saved | None:
    """Run ``store`` for the base in one transaction; None (after a message) when it failed."""
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as db, db.begin():
            await seed_catalogue(db, settings)
            base = await db.scalar(select(Base).where(Base.slug == slug))
            if base is None:
                err.print(f"[red]error:[/] no base {slug!r} (see `livebase rooms`)")
                return None
            return await store(db, base)
    finally:
        await engine.dispose()


async def douyin_compass(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {path}: {exc.strerror}")
        return 1
    what = ""

    async def store(db: AsyncSession, base: Base) -> Saved:
        nonlocal what
        done = await import_douyin_compass(db, base, data, charset=args.charset)
        what = f"{path.name} ({done.format}, {done.encoding})"
        return done.saved

    try:
        saved = await _into_base(settings, args.base, store)
    except ImportFailed as exc:
        err.print(f"[red]error:[/] {path.name}: {exc}")
        for p in exc.problems:
            where = "file" if p.line == 0 else f"line {p.line}, {p.column}"
            err.print(f"  {where}: {p.message}")
        return 1
    return _report(what, saved)


async def channels(settings: Settings, args: argparse.Namespace) -> int:
    appid = os.environ.get("WECHAT_CHANNELS_APPID", "")
    secret = os.environ.get("WECHAT_CHANNELS_SECRET", "")
    if not appid or not secret:
        err.print("[red]error:[/] set WECHAT_CHANNELS_APPID and WECHAT_CHANNELS_SECRET")
        return 1
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            client = ChannelsClient(http, Credentials(appid, secret), api=args.api)
            figures = [await client.live_figures(i, account=args.account) for i in args.export_id]
    except ChannelsError as exc:
        err.print(f"[red]error:[/] {exc}; nothing was stored")
        return 1
    except aiohttp.ClientError as exc:
        err.print(f"[red]error:[/] cannot reach {args.api}: {exc}; nothing was stored")
        return 1

    async def store(db: AsyncSession, base: Base) -> Saved:
        return await save_figures(db, base.id, figures)

    saved = await _into_base(settings, args.base, store)
    return _report("WeChat Channels", saved)


def _report(what: str, saved: Saved | None) -> int:
    if saved is None:
        return 1
    table = Table("line", "account", "started", "outcome", "session")
    for row in saved.rows:
        session = "external" if row["session_id"] is None else str(row["session_id"])
        line = "—" if row["line"] is None else str(row["line"])
        cells = (row["account"], row["started_at"], row["outcome"])
        table.add_row(line, *(str(c) for c in cells), session)
    err.print(table)
    err.print(
        f"[green]{what}: {len(saved.rows)} broadcasts, "
        f"{saved.created} new, {saved.updated} updated, {saved.unchanged} unchanged; "
        f"{saved.matched_sessions} matched to sessions, {saved.external} external[/]"
    )
    return 0


def add_parser(sub: Any) -> None:
    """The ``import`` command and its actions, added to the CLI's subparsers."""
    imp = sub.add_parser("import", help="import platform data").add_subparsers(
        dest="import_command", required=True, metavar="SOURCE"
    )
    p = imp.add_parser(
        "douyin-compass", help="a Douyin Compass / 巨量百应 per-broadcast export (CSV or XLSX)"
    )
    p.add_argument("--base", required=True, help="base slug")
    p.add_argument("--charset", help="CSV text encoding when it is neither UTF-8 nor GBK")
    p.add_argument("file", help="the exported .csv or .xlsx file")
    p.set_defaults(run=douyin_compass)
    p = imp.add_parser(
        "channels",
        help="broadcasts from the WeChat Channels getlivedata API (credentials from "
        "WECHAT_CHANNELS_APPID and WECHAT_CHANNELS_SECRET)",
    )
    p.add_argument("--base", required=True, help="base slug")
    p.add_argument("--account", default="", help="the host's name on the base, for matching")
    p.add_argument("--api", default=DEFAULT_API, help=f"API root (default {DEFAULT_API})")
    p.add_argument("export_id", nargs="+", help="the broadcasts' export_id")
    p.set_defaults(run=channels)
