"""``livebase import douyin-compass --base SLUG FILE``: the API's platform import, from a shell.

The same function as ``POST /api/v1/bases/{base}/imports/douyin-compass`` does the work, in
one transaction: a file with any bad row prints every problem and stores nothing (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from analytics.platform.importer import ImportFailed, import_douyin_compass
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import upgrade
from livebase.db.models import Base
from livebase.seed import seed_catalogue
from livebase.settings import Settings

err = Console(stderr=True)


async def douyin_compass(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read {path}: {exc.strerror}")
        return 1
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as db, db.begin():
            await seed_catalogue(db, settings)
            base = await db.scalar(select(Base).where(Base.slug == args.base))
            if base is None:
                err.print(f"[red]error:[/] no base {args.base!r} (see `livebase rooms`)")
                return 1
            try:
                done = await import_douyin_compass(db, base, data, charset=args.charset)
            except ImportFailed as exc:
                err.print(f"[red]error:[/] {path.name}: {exc}")
                for p in exc.problems:
                    where = "file" if p.line == 0 else f"line {p.line}, {p.column}"
                    err.print(f"  {where}: {p.message}")
                return 1
    finally:
        await engine.dispose()
    saved = done.saved
    table = Table("line", "account", "started", "outcome", "session")
    for row in saved.rows:
        session = "external" if row["session_id"] is None else str(row["session_id"])
        cells = (row["line"], row["account"], row["started_at"], row["outcome"])
        table.add_row(*(str(c) for c in cells), session)
    err.print(table)
    err.print(
        f"[green]{path.name} ({done.format}, {done.encoding}): {len(saved.rows)} broadcasts, "
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
