"""Raw events as Parquet files per UTC day, from which a day's rollups can be recomputed.

The archive is a consumer group of its own: each batch becomes one file per day it touches,
``<data_dir>/events/YYYY-MM-DD/part-<first message id>-<random>.parquet``, written under a
temporary name, flushed to disk and renamed before the batch is acknowledged. A crash between
the rename and the acknowledgement writes the batch again on redelivery; readers deduplicate
on ``event_id``, as the rollups do.

Files keep the bus envelope and ``data`` as JSON, so every event version ever written replays
through :func:`~analytics.schemas.from_bus_event`, and ``received_at`` (when the bus accepted
it), against which the lateness window is judged.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from livebase.bus import Delivery

SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("version", pa.int32()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("base", pa.string()),
        ("data", pa.string()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


def day_dir(data_dir: Path, day: date) -> Path:
    return data_dir / "events" / day.isoformat()


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp, compression="zstd")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_batch(data_dir: Path, deliveries: Sequence[tuple[Delivery, datetime]]) -> list[Path]:
    """Write ``(delivery, received_at)`` pairs, one file per UTC day; return the files."""
    by_day: dict[date, list[dict[str, object]]] = {}
    for delivery, received in deliveries:
        event = delivery.event
        by_day.setdefault(event.occurred_at.astimezone(UTC).date(), []).append(
            {
                "event_id": event.id,
                "type": event.type,
                "version": event.version,
                "occurred_at": event.occurred_at,
                "base": event.base,
                "data": orjson.dumps(event.data).decode(),
                "received_at": received,
            }
        )
    first = deliveries[0][0].message_id if deliveries else "empty"
    written = []
    for day, rows in sorted(by_day.items()):
        path = day_dir(data_dir, day) / f"part-{first}-{uuid.uuid4().hex[:8]}.parquet"
        _write(path, rows)
        written.append(path)
    return written


async def write_batch_async(
    data_dir: Path, deliveries: Sequence[tuple[Delivery, datetime]]
) -> list[Path]:
    # pyarrow and fsync block: off the event loop.
    return await asyncio.to_thread(write_batch, data_dir, deliveries)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)
