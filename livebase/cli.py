"""The ``livebase`` command: serve, demo, db upgrade, token create, rooms, import,
report daily.

Output meant for scripts (a token, a stream key) goes to stdout alone; progress, tables and
messages for people go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.report import FORMATS, LANGS, UnknownBase, build_daily_report, render
from analytics.report.files import parse_day, write_atomic
from livebase import cli_imports, eventloop, stream_keys
from livebase.auth import issue_token
from livebase.db.engine import create_engine, session_factory
from livebase.db.migrate import current_revision, upgrade
from livebase.db.models import Base, Host, Merchant, Role, Room
from livebase.golive import ENCODER, rtmp_server, whip_url
from livebase.seed import seed_catalogue
from livebase.settings import Settings, SettingsError, load_settings

err = Console(stderr=True)


class CliError(Exception):
    """A problem the person at the terminal can fix; printed without a traceback."""


async def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.effective_database_url)
    try:
        with err.status("applying migrations…"):
            await upgrade(engine)
            async with session_factory(engine)() as db, db.begin():
                report = await seed_catalogue(db, settings)
        err.print(
            f"database at revision [bold]{await current_revision(engine)}[/]; "
            f"added {report.bases} bases, {report.rooms} rooms, {report.themes} themes"
        )
    finally:
        await engine.dispose()
    return 0


async def _token_create(settings: Settings, args: argparse.Namespace) -> int:
    role = Role(args.role)
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as db, db.begin():
            await seed_catalogue(db, settings)
            base_id = None
            if args.base:
                base_id = await db.scalar(select(Base.id).where(Base.slug == args.base))
                if base_id is None:
                    raise CliError(f"no base {args.base!r} (see `livebase rooms`)")
            checks: tuple[tuple[str, type[Merchant | Host], int | None], ...] = (
                ("--merchant", Merchant, args.merchant),
                ("--host", Host, args.host),
            )
            for flag, model, value in checks:
                if value is not None:
                    owner_base = await db.scalar(select(model.base_id).where(model.id == value))
                    if owner_base is None or owner_base != base_id:
                        raise CliError(f"{flag} {value}: not found in base {args.base!r}")
            try:
                issued = await issue_token(
                    db,
                    role,
                    base_id=base_id,
                    merchant_id=args.merchant,
                    host_id=args.host,
                    name=args.name,
                )
            except ValueError as exc:
                raise CliError(f"{exc} (use --base, --merchant or --host)") from exc
    finally:
        await engine.dispose()
    print(issued.token)
    err.print(f"[green]created {role.value} token {issued.record.prefix}… (shown once)[/]")
    return 0


async def _room(db: AsyncSession, ref: str) -> tuple[Base, Room]:
    base_slug, _, room_slug = ref.partition("/")
    row = (
        await db.execute(
            select(Base, Room)
            .join(Room, Room.base_id == Base.id)
            .where(Base.slug == base_slug, Room.slug == room_slug)
        )
    ).first()
    if row is None:
        raise CliError(f"no room {ref!r}; name it BASE/ROOM, e.g. haifeng/studio-1")
    return row[0], row[1]


async def _rooms(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as db, db.begin():
            await seed_catalogue(db, settings)
            if args.rotate_key or args.room:
                base, room = await _room(db, args.rotate_key or args.room)
                if args.rotate_key:
                    key = await stream_keys.rotate(db, room)
                    print(key)
                    err.print(f"[green]new stream key for {base.slug}/{room.slug} (shown once)[/]")
                server = rtmp_server(settings)
                hint = f"…{room.stream_key_hint}" if room.stream_key_hint else "(none: rotate)"
                table = Table(title=f"{base.name_zh} · {room.name_zh}", show_header=False)
                table.add_row("OBS service", "Custom…")
                table.add_row("RTMP server", server)
                table.add_row("Stream key", hint)
                table.add_row(
                    "SRT URL", f"srt://{settings.public_host}:{settings.srt_port}?streamid={hint}"
                )
                table.add_row("WHIP URL", whip_url(settings, base.slug, room.slug))
                table.add_row(
                    "Encoder",
                    f"{ENCODER['video_codec']}, {ENCODER['rate_control']}, keyframes every "
                    f"{ENCODER['keyframe_interval_s']} s, {ENCODER['audio']}",
                )
                err.print(table)
                return 0
            table = Table("base", "room", "name", "stream key")
            rows = await db.execute(
                select(Base, Room).join(Room, Room.base_id == Base.id).order_by(Base.id, Room.id)
            )
            for base, room in rows.tuples():
                if args.base and base.slug != args.base:
                    continue
                key = f"…{room.stream_key_hint}" if room.stream_key_hint else "not set"
                table.add_row(base.slug, room.slug, f"{room.name_zh} / {room.name_en}", key)
            err.print(table)
    finally:
        await engine.dispose()
    return 0


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from livebase.service import serve

    await serve(settings)
    return 0


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from livebase.demo import run_demo

    return await run_demo(settings, duration=args.duration, console=err)


async def _report_daily(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.effective_database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as db, db.begin():
            await seed_catalogue(db, settings)
            try:
                report = await build_daily_report(db, args.date, base=args.base)
            except UnknownBase as exc:
                raise CliError(f"{exc} (see `livebase rooms`)") from exc
    finally:
        await engine.dispose()
    rendered = render(report, args.format, args.lang)
    out: Path = args.out
    try:
        await asyncio.to_thread(write_atomic, out, rendered.body)
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror or exc}") from exc
    scope = report.base or "city-wide"
    status = "" if report.has_data else " (no data for that day)"
    err.print(
        f"[green]wrote the {args.format} report of {scope} for {report.date}{status}:[/] {out}"
    )
    return 0


def _date(value: str) -> date:
    try:
        return parse_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livebase", description="Operations backend for live-streaming bases."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="run the HTTP API and ingest listeners")
    p.set_defaults(run=_serve)
    p = sub.add_parser("demo", help="run the whole stack on sample data, end to end")
    p.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.set_defaults(run=_demo)
    db = sub.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", help="apply migrations and seed the configured bases").set_defaults(
        run=_db_upgrade
    )
    tok = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    p = tok.add_parser("create", help="create a token and print it (once) on stdout")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--base", help="base slug (every role but admin)")
    p.add_argument("--merchant", type=int, help="merchant id (merchant role)")
    p.add_argument("--host", type=int, help="host id (host role)")
    p.add_argument("--name", default="", help="a label for the token")
    p.set_defaults(run=_token_create)
    p = sub.add_parser("rooms", help="list rooms, or show one room's ingest details")
    p.add_argument("room", nargs="?", help="BASE/ROOM to show, e.g. haifeng/studio-1")
    p.add_argument("--base", help="list only this base's rooms")
    p.add_argument(
        "--rotate-key",
        metavar="BASE/ROOM",
        help="give the room a new stream key and print it (once) on stdout",
    )
    p.set_defaults(run=_rooms)
    cli_imports.add_parser(sub)
    rep = sub.add_parser("report", help="reports for base managers").add_subparsers(
        dest="report_command", required=True, metavar="KIND"
    )
    p = rep.add_parser("daily", help="one local day's report of a base, or of the city")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--base", help="base slug, e.g. haifeng")
    scope.add_argument("--city", action="store_true", help="every base (city-wide)")
    p.add_argument("--date", required=True, type=_date, help="the base's local day, YYYY-MM-DD")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--lang", choices=LANGS, default="zh", help="HTML, CSV and XLSX language")
    p.add_argument("--out", required=True, type=Path, help="file to write")
    p.set_defaults(run=_report_daily)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(console=err, show_path=False)],
    )
    # Migration chatter is not news for the person at the terminal.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    run: Command = args.run
    try:
        return eventloop.run(run(settings, args))
    except CliError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
