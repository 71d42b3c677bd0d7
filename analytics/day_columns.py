"""A day of archived events as columns: read in batches, checked, flattened.

The recompute of a day never builds an object per event it keeps. Each Parquet batch is
checked by the rules of :func:`~analytics.schemas.from_bus_event`, through
:func:`~analytics.fastpath.check_documents` (msgspec over the whole batch, pydantic only for
what it cannot vouch for); the lateness window and the clock skew are judged on the columns.
The ``data`` of the events that pass is then parsed again by pyarrow's JSON reader, one event
type at a time against that type's fields only (a checked event's fields have their schema's
types; its unknown extra keys are ignored, as the schemas ignore them), which gives the columns
the rollups are computed from.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from analytics.archive import SCHEMA, day_dir
from analytics.fastpath import check_documents
from analytics.schemas import ENVELOPE_FIELDS, MAX_CLOCK_SKEW, EventSchemaError

#: Rows per Parquet batch: bounds the memory the checks need at once.
BATCH: Final = 65_536

_VIEWER: Final = {"viewer_id": pa.string(), "source": pa.string()}
_ORDER: Final = {"order_id": pa.string(), "platform": pa.string(), "amount_fen": pa.int64()}
#: The data fields the rollups need, per event type (``session_id`` for all).
FIELDS: Final[dict[str, dict[str, pa.DataType]]] = {
    "stream.started": {},
    "stream.ended": {},
    "viewer.joined": _VIEWER,
    "viewer.heartbeat": {**_VIEWER, "watch_seconds": pa.int64()},
    "viewer.left": {**_VIEWER, "watch_seconds": pa.int64()},
    "interaction.liked": _VIEWER,
    "interaction.commented": _VIEWER,
    "interaction.shared": _VIEWER,
    "interaction.followed": _VIEWER,
    "product.impressed": {"product_id": pa.int64(), "count": pa.int64()},
    "product.clicked": {**_VIEWER, "product_id": pa.int64()},
    "order.created": {},
    "order.paid": {
        **_ORDER,
        "buyer_id": pa.string(),
        "product_id": pa.int64(),
        "currency": pa.string(),
        "viewer_id": pa.string(),
        "viewer_source": pa.string(),
    },
    "order.refunded": {**_ORDER, "refund_id": pa.string(), "currency": pa.string()},
}
#: Schema defaults of those fields, for events that leave them out.
DEFAULTS: Final = {"source": "player", "count": 1, "currency": "CNY"}
#: Columns of :attr:`DayColumns.events`.
COLUMNS: Final = pa.schema(
    [
        ("pos", pa.int64()),
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("occurred_at", SCHEMA.field("occurred_at").type),
        ("session_id", pa.int64()),
        *sorted({(n, t) for fields in FIELDS.values() for n, t in fields.items()}),
    ]
)


@dataclass(slots=True)
class DayColumns:
    #: The checked events in archive order (``pos``), repeats included.
    events: pa.Table
    archived: int  #: rows read
    skipped: int  #: rows that are not valid events, or arrived past the lateness window


def _batches(data_dir: Path, day: date) -> Iterator[pa.RecordBatch]:
    folder = day_dir(data_dir, day)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.parquet")):
        parquet = pq.ParquetFile(path)
        yield from parquet.iter_batches(batch_size=BATCH, columns=SCHEMA.names)


def _valid(batch: pa.Table) -> pa.Array:
    """Which rows ``from_bus_event`` accepts, judged against when each was received."""
    moments = batch["occurred_at"].to_pylist()
    texts = pc.binary_join_element_wise(
        pc.strftime(batch["occurred_at"], format="%Y-%m-%dT%H:%M:%S"), "+00:00", ""
    ).to_pylist()
    documents = []
    clashes = []
    for n, (data, kind, version, event_id, base) in enumerate(
        zip(
            batch["data"].to_pylist(),
            batch["type"].to_pylist(),
            batch["version"].to_pylist(),
            batch["event_id"].to_pylist(),
            batch["base"].to_pylist(),
            strict=True,
        )
    ):
        document = orjson.loads(data)
        if not isinstance(document, dict) or not ENVELOPE_FIELDS.isdisjoint(document):
            clashes.append(n)
            document = {}
        document.update(
            type=kind, version=version, event_id=event_id, occurred_at=texts[n], base=base
        )
        documents.append(document)
    received = batch["received_at"].to_pylist()
    checked = check_documents(documents, received, moments)
    ok = [not isinstance(c, EventSchemaError) for c in checked]
    for n in clashes:
        ok[n] = False
    return pa.array(ok, pa.bool_())


def _flatten(rows: pa.Table) -> pa.Table:
    """The checked rows with their data fields as columns (null where a type has none)."""
    parts = []
    for kind, fields in FIELDS.items():
        of_kind = rows.filter(pc.equal(rows["type"], kind))
        if of_kind.num_rows == 0:
            continue
        text = "\n".join(of_kind["data"].to_pylist()).encode()
        schema = pa.schema([("session_id", pa.int64()), *fields.items()])
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        data = pj.read_json(io.BytesIO(text), parse_options=options)
        columns = {name: of_kind[name] for name in ("pos", "event_id", "type", "occurred_at")}
        for field in COLUMNS.names[4:]:
            if field in data.column_names:
                column = data[field]
                if field in DEFAULTS:
                    column = pc.fill_null(column, DEFAULTS[field])
            else:
                column = pa.nulls(of_kind.num_rows, COLUMNS.field(field).type)
            columns[field] = column
        parts.append(pa.table(columns, schema=COLUMNS))
    return pa.concat_tables(parts) if parts else COLUMNS.empty_table()


def read_checked(data_dir: Path, day: date, lateness: timedelta) -> DayColumns:
    """The day's archive as checked columns; see the module's docstring."""
    parts = []
    archived = skipped = 0
    for batch in _batches(data_dir, day):
        occurred, received = batch["occurred_at"], batch["received_at"]
        in_window = pc.and_(
            pc.greater_equal(occurred, pc.subtract(received, pa.scalar(lateness))),
            pc.less_equal(occurred, pc.add(received, pa.scalar(MAX_CLOCK_SKEW))),
        )
        in_window = pc.fill_null(in_window, False)
        positions = pa.array(range(archived, archived + batch.num_rows), pa.int64())
        rows = pa.Table.from_batches([batch]).append_column("pos", positions)
        rows = rows.filter(in_window)
        archived += batch.num_rows
        if rows.num_rows:
            rows = rows.filter(_valid(rows))
        skipped += batch.num_rows - rows.num_rows
        parts.append(_flatten(rows.select(["pos", "event_id", "type", "occurred_at", "data"])))
    events = pa.concat_tables(parts) if parts else COLUMNS.empty_table()
    return DayColumns(events.combine_chunks(), archived, skipped)
