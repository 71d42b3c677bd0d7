"""Recompute one day of raw events from the Parquet archive, against DuckDB on the same files.

Generates a day of archived events (the archive's own schema, as ``analytics.archive`` writes
it; repeats of some rows included, as redelivery leaves them), then times:

* ours: ``analytics.recompute.recompute_day`` into a fresh SQLite database (read the files,
  check every event, count it into the per-minute rollups and id sets, one transaction); the
  day is three days old, so sealed (``analytics.day_sealed``), unless ``--days-ago 1`` asks
  for a day still inside the lateness window, recomputed with ledger and presence rows;
* the reference: DuckDB computing the same per-session counts straight from the files.

Each side runs in a fresh Python process of its own, one after the other, so that neither
inherits the generator's memory or the other's. It checks that both give the same numbers per
session (GMV, refunds, orders, buyers, views, UV, viewer-seconds, impressions, clicks) and
prints both times and the ratio.

    .venv/bin/python -m benchmarks.recompute_bench [--events 200000] [--sessions 20] [--days-ago 3]

Needs ``duckdb`` (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.archive import SCHEMA, day_dir

COUNTS = ("gmv_fen", "refund_fen", "orders", "buyers", "views", "uv", "viewer_seconds",
          "impressions", "clicks")  # fmt: skip
# Share of each event type in the day.
MIX = {
    "viewer.heartbeat": 0.70, "viewer.joined": 0.10, "viewer.left": 0.05,
    "interaction.liked": 0.04, "product.impressed": 0.04, "product.clicked": 0.03,
    "order.paid": 0.03, "order.refunded": 0.01,
}  # fmt: skip
REPEATS = 0.005  # share of rows written twice
FILES = 20


def _s(values: Any) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _json(parts: list[Any]) -> pa.Array:
    """Concatenate string arrays and literals element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _data(kind: str, c: dict[str, pa.Array]) -> pa.Array:
    """The ``data`` JSON of rows of one type, from their columns ``c``."""
    head = ['{"room":"', c["room"], '","session_id":', c["session"]]
    who = ['"viewer_id":"', c["viewer"], '","source":"player"']
    parts = {
        "viewer.heartbeat": [*head, ",", *who, ',"watch_seconds":30}'],
        "viewer.joined": [*head, ",", *who, "}"],
        "viewer.left": [*head, ",", *who, ',"watch_seconds":10}'],
        "interaction.liked": [*head, ",", *who, ',"count":2}'],
        "product.impressed": [*head, ',"product_id":', c["product"], ',"count":3,', *who, "}"],
        "product.clicked": [*head, ",", *who, ',"product_id":', c["product"], "}"],
        "order.paid": [
            *head, ',"order_id":"', c["paid_order"], '","platform":"youzan","buyer_id":"',
            c["buyer"], '","product_id":', c["product"], ',"quantity":1,"amount_fen":',
            c["amount"], ',"currency":"CNY","viewer_id":null,"viewer_source":null}',
        ],
        "order.refunded": [
            *head, ',"order_id":"', c["refunded"], '","refund_id":"r', c["id"],
            '","platform":"youzan","amount_fen":', c["amount"], ',"currency":"CNY"}',
        ],
    }  # fmt: skip
    return _json(parts[kind])


def generate(folder: Path, day: date, events: int, rooms: list[str], seed: int = 7) -> int:
    """Write ``events`` rows (plus repeats) of ``day`` as FILES Parquet files; return rows."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(list(MIX), size=events, p=list(MIX.values()))
    sessions = rng.integers(1, len(rooms) + 1, size=events)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    offset_us = np.sort(rng.integers(0, 86_400 * 10**6, size=events))
    occurred = pa.array(offset_us + int(start.timestamp() * 10**6), pa.timestamp("us", tz="UTC"))
    received = pc.add(occurred, pa.scalar(2_000_000, pa.duration("us")))
    ids = np.arange(events)
    viewer = _s(np.char.add("v", rng.integers(0, 200_000, size=events).astype(str)))
    room = pc.take(pa.array(rooms), pa.array(sessions - 1))
    product = _s(rng.integers(1, 51, size=events))
    amount = _s(rng.integers(100, 10_000, size=events))
    buyer = _s(np.char.add("b", rng.integers(0, 50_000, size=events).astype(str)))
    paid_order = _s(np.char.add("o", ids.astype(str)))
    # A refund names an earlier paid order by number; some name orders that never came.
    refunded = _s(np.char.add("o", rng.integers(0, events, size=events).astype(str)))
    columns = {"room": room, "session": _s(sessions), "viewer": viewer, "product": product,
               "amount": amount, "buyer": buyer, "paid_order": paid_order,
               "refunded": refunded, "id": _s(ids)}  # fmt: skip
    kind_array = pa.array(kinds)
    # Each type's JSON is made for its own rows only (all types for every row would take
    # about 12 GB at 10 million events), then put back in row order.
    chunks: list[pa.Array | pa.ChunkedArray] = []
    where = []
    for kind in MIX:
        rows = np.flatnonzero(kinds == kind)
        chunks.append(_data(kind, {k: v.take(pa.array(rows)) for k, v in columns.items()}))
        where.append(rows)
    placed = np.concatenate(where)
    back = np.empty_like(placed)
    back[placed] = np.arange(len(placed))
    pieces = [p for c in chunks for p in (c.chunks if isinstance(c, pa.ChunkedArray) else [c])]
    column = pa.chunked_array(pieces, pa.string()).take(pa.array(back))
    table = pa.table(
        {
            "event_id": _s(np.char.add("e", ids.astype(str))),
            "type": kind_array,
            "version": pa.array(np.ones(events, dtype=np.int32)),
            "occurred_at": occurred,
            "base": pa.array(["haifeng"] * events),
            "data": column,
            "received_at": received,
        },
        schema=SCHEMA,
    )
    again = np.flatnonzero(rng.random(events) < REPEATS)
    table = pa.concat_tables([table, table.take(pa.array(again))])
    folder.mkdir(parents=True, exist_ok=True)
    for part, rows in enumerate(np.array_split(np.arange(table.num_rows), FILES)):
        chunk = table.take(pa.array(rows))
        pq.write_table(chunk, folder / f"part-{part:03d}.parquet", compression="zstd")
    return int(table.num_rows)


DUCKDB_SQL = """
with ev as (
  select type, data::json as d from read_parquet('{folder}/*.parquet')
  where received_at - occurred_at <= interval 24 hours
  qualify row_number() over (partition by event_id order by received_at) = 1
), flat as (
  select type, (d->>'session_id')::int as session_id, d->>'source' as source,
         d->>'viewer_id' as viewer_id, (d->>'watch_seconds')::bigint as watch,
         (d->>'count')::bigint as n, d->>'platform' as platform, d->>'order_id' as order_id,
         d->>'refund_id' as refund_id, d->>'buyer_id' as buyer_id,
         (d->>'amount_fen')::bigint as amount, d->>'currency' as currency
  from ev
), paid as (
  select session_id, platform, buyer_id, amount from flat where type = 'order.paid'
    and currency = 'CNY'
  qualify row_number() over (partition by platform, order_id) = 1
), refunds as (
  select session_id, amount from flat where type = 'order.refunded' and currency = 'CNY'
  qualify row_number() over (partition by platform, refund_id) = 1
), viewing as (
  select session_id,
    count(*) filter (where type = 'viewer.joined') as views,
    count(distinct source || ':' || viewer_id) as uv,
    coalesce(sum(watch) filter (where type <> 'viewer.joined'), 0) as viewer_seconds
  from flat where type like 'viewer.%' group by session_id
), products as (
  select session_id,
    coalesce(sum(n) filter (where type = 'product.impressed'), 0) as impressions,
    count(*) filter (where type = 'product.clicked') as clicks
  from flat where type like 'product.%' group by session_id
), money as (
  select session_id, sum(amount) as gmv_fen, count(*) as orders,
    count(distinct platform || ':' || buyer_id) as buyers
  from paid group by session_id
), back as (
  select session_id, sum(amount) as refund_fen from refunds group by session_id
)
select s.session_id, coalesce(gmv_fen, 0), coalesce(refund_fen, 0), coalesce(orders, 0),
  coalesce(buyers, 0), coalesce(views, 0), coalesce(uv, 0), coalesce(viewer_seconds, 0),
  coalesce(impressions, 0), coalesce(clicks, 0)
from (select distinct session_id from flat) s
left join viewing using (session_id) left join products using (session_id)
left join money using (session_id) left join back using (session_id)
order by s.session_id
"""


def duckdb_counts(folder: Path) -> tuple[tuple[float, float], dict[int, tuple[int, ...]]]:
    """DuckDB's counts per session, and its (wall, CPU) seconds (CPU of all its threads)."""
    import duckdb

    start, cpu = time.perf_counter(), time.process_time()
    rows = duckdb.connect().execute(DUCKDB_SQL.format(folder=folder)).fetchall()
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    return seconds, {int(r[0]): tuple(int(x) for x in r[1:]) for r in rows}


def _app(data_dir: Path) -> Any:
    from livebase.api.app import create_app
    from livebase.settings import load_settings

    return create_app(load_settings({"LIVEBASE_DATA_DIR": str(data_dir)}))


def _measured(*args: str) -> dict[str, Any]:
    """Run one side in a fresh Python (``--measure``): neither inherits the generator's or
    the other side's memory. Its last line of output is its JSON."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.recompute_bench", "--measure", *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _ours(data_dir: Path, day: date) -> dict[str, Any]:
    """Time ``recompute_day`` of ``day`` (in a fresh process, see :func:`_measured`)."""
    from aiohttp import web

    from analytics.recompute import recompute_day
    from livebase.api.state import DB_SESSIONS

    app = _app(data_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        start, cpu = time.perf_counter(), time.process_time()
        result = await recompute_day(
            app[DB_SESSIONS], data_dir, day, lateness=timedelta(hours=24), force=True
        )
        seconds = (time.perf_counter() - start, time.process_time() - cpu)
    finally:
        await runner.cleanup()
    return {"seconds": seconds, "counted": result.counted}


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Make the sessions and write the day; time DuckDB and recompute_day, each in a fresh
    process; collect the counts."""
    from aiohttp import web
    from sqlalchemy import func, select

    from analytics.members import read_members
    from analytics.models import MinuteRollup
    from livebase.api.state import DB_SESSIONS, SETTINGS
    from livebase.db.models import LiveSession, Room
    from livebase.seed import seed_catalogue

    app = _app(data_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    day = datetime.now(UTC).date() - timedelta(days=args.days_ago)
    try:
        db = app[DB_SESSIONS]
        async with db() as session, session.begin():
            await seed_catalogue(session, app[SETTINGS])
            rooms = list((await session.scalars(select(Room).where(Room.base_id == 1))).all())
            for n in range(args.sessions):
                room = rooms[n % len(rooms)]
                session.add(LiveSession(base_id=1, room_id=room.id, title=f"s{n}"))
            await session.flush()
            made = (await session.scalars(select(LiveSession).order_by(LiveSession.id))).all()
            by_id = {r.id: r.slug for r in rooms}
            slugs = [by_id[s.room_id] for s in made]
    finally:
        await runner.cleanup()
    folder = day_dir(data_dir, day)
    rows = generate(folder, day, args.events, slugs)
    reference = _measured("duckdb", str(folder))
    ours = _measured("ours", str(data_dir), day.isoformat())
    app = _app(data_dir)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        sums = [getattr(MinuteRollup, c) for c in COUNTS if hasattr(MinuteRollup, c)]
        found: dict[int, dict[str, int]] = {}
        async with app[DB_SESSIONS]() as session:
            query = (
                select(MinuteRollup.scope_id, *[func.sum(c) for c in sums])
                .where(MinuteRollup.scope == "session")
                .group_by(MinuteRollup.scope_id)
            )
            for sid, *values in await session.execute(query):
                found[sid] = dict(zip([c.key for c in sums], values, strict=True))
            for kind, name in (("viewer", "uv"), ("buyer", "buyers")):
                members = await read_members(session, kinds=[kind])
                per = members.group_by("session_id").aggregate([("session_id", "count")])
                for sid, n in zip(*(per[c].to_pylist() for c in per.column_names), strict=True):
                    found.setdefault(sid, {})[name] = n
    finally:
        await runner.cleanup()
    got = {sid: tuple(int(v.get(c) or 0) for c in COUNTS) for sid, v in sorted(found.items())}
    expected = {int(sid): tuple(v) for sid, v in reference["counts"].items()}
    return {
        "rows": rows, "counted": ours["counted"], "ours": ours["seconds"],
        "duckdb": reference["seconds"], "same": got == expected, "got": got,
        "expected": expected,
    }  # fmt: skip


def measure(side: str, where: list[str]) -> None:
    """One side of the comparison, in this fresh process; prints its JSON."""
    if side == "duckdb":
        seconds, counts = duckdb_counts(Path(where[0]))
        out: dict[str, Any] = {"seconds": seconds, "counts": counts}
    else:
        out = asyncio.run(_ours(Path(where[0]), date.fromisoformat(where[1])))
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--days-ago", type=int, default=3, help="1: an open day, 3: sealed")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # one side, internal
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], args.measure[1:])
        return
    load = ", ".join(Path("/proc/loadavg").read_text().split(" ", 3)[:3])
    with tempfile.TemporaryDirectory() as tmp:
        out = asyncio.run(run(args, Path(tmp)))
    print(f"load average before: {load}")
    print(f"archived rows: {out['rows']:,} ({args.events:,} events and repeats), "
          f"{args.sessions} sessions, {FILES} files")  # fmt: skip
    (ours, ours_cpu), (duck, duck_cpu) = out["ours"], out["duckdb"]
    print(f"recompute_day: {ours:.2f} s, {ours_cpu:.2f} CPU s ({out['counted']:,} events counted)")
    print(f"DuckDB, same counts from the same files: {duck:.2f} s, {duck_cpu:.2f} CPU s")
    print(f"ratio (ours / DuckDB): {ours / duck:.2f} in time, {ours_cpu / duck_cpu:.2f} in CPU")
    print(f"same numbers per session ({', '.join(COUNTS)}): {out['same']}")
    if not out["same"]:
        for sid in sorted(set(out["got"]) | set(out["expected"])):
            mine, theirs = out["got"].get(sid), out["expected"].get(sid)
            if mine != theirs:
                print(f"  session {sid}: ours {mine}, DuckDB {theirs}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
