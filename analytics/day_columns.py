"""A day of archived events as columns: read in batches, checked, flattened.

The recompute of a day never builds a pydantic model per event it keeps. Each Parquet batch is
checked by the rules of :func:`~analytics.schemas.from_bus_event`, on columns throughout: the
lateness window, the clock skew, the envelope's type, version, id and base first; then the
``data`` of all events of one type is read by pyarrow's C++ JSON reader into that type's
columns (:mod:`analytics.json_columns`), held to the rules of that type's struct of
:mod:`analytics.structs` less the envelope (:data:`DATA`, the struct's restatement of the
schema, held to it by ``tests/analytics/test_fastpath.py``); string patterns and the pair rule
of orders are then checked on the columns. Texts the reader may not see (an explicit null,
an escape, nesting, ...; see :meth:`~analytics.json_columns.JsonColumns.eligible`), and every
text of a group it refuses, are decoded by msgspec into :data:`DATA` instead, as before the
reader, and their fields turned into columns in Python, at a higher cost and holding Python's
lock throughout. A row any of this refuses takes the slow road, ``from_bus_event``, which has
the last word, so the result is the schema's on every row
(``tests/analytics/test_json_columns.py``; where msgspec and orjson read a number apart,
1e400 in an ignored name or an integer past 2**64, msgspec's reading stands, as before the
reader).

The reader and pyarrow's kernels leave Python's lock while they run, so two files checked at
once use two cores; msgspec's road does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.archive import SCHEMA, day_dir
from analytics.json_columns import JsonColumns
from analytics.schemas import ENVELOPE_FIELDS, MAX_CLOCK_SKEW, EventSchemaError, from_bus_event
from analytics.structs import CURRENCY, SLUG, SOURCE, STRUCTS, EventStruct
from livebase.bus import Event
from livebase.settings import SLUG_RE

#: Rows per Parquet batch: bounds the memory the checks need at once (about 40 MB of
#: checked columns). 65,536 took 7.0 s for 10 million events, this 6.1 s: fewer calls.
BATCH: Final = 262_144
#: Files checked at once.
THREADS: Final = 2

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
#: The patterns of :mod:`analytics.schemas` by kind, for RE2 (``$`` is the end of the text).
PATTERNS: Final = {SLUG: SLUG_RE, SOURCE: r"^[a-z][a-z0-9_]{0,31}$", CURRENCY: r"^[A-Z]{3}$"}
_ENVELOPE: Final = ("event_id", "occurred_at", "base", "version")
#: The known event types: the dictionary of the ``type`` column of :attr:`DayColumns.events`.
KINDS: Final = pa.array(sorted(t for t, _ in STRUCTS), pa.string())
#: Columns of :attr:`DayColumns.events`.
COLUMNS: Final = pa.schema(
    [
        ("pos", pa.int64()),
        ("event_id", pa.string()),
        ("type", pa.dictionary(pa.int8(), pa.string())),
        ("occurred_at", SCHEMA.field("occurred_at").type),
        ("session_id", pa.int64()),
        *sorted({(n, t) for fields in FIELDS.values() for n, t in fields.items()}),
    ]
)


@dataclass(slots=True)
class DayColumns:
    #: The checked events, each with its place in the archive (``pos``), repeats included: a
    #: chunk per file, in it the rows by batch and then by type.
    events: pa.Table
    archived: int  #: rows read
    skipped: int  #: rows that are not valid events, or arrived past the lateness window


def _data_struct(kind: str) -> type[msgspec.Struct]:
    """The struct of ``kind`` less the envelope; an envelope name in ``data`` is refused
    (decoded as ``UnsetType``, which no value is) rather than ignored."""
    fields: list[Any] = [
        (f.name, f.type) if f.required else (f.name, f.type, f.default)
        for f in msgspec.structs.fields(STRUCTS[(kind, 1)])
        if f.name not in _ENVELOPE
    ]
    fields += [(name, msgspec.UnsetType, msgspec.UNSET) for name in sorted(ENVELOPE_FIELDS)]
    return msgspec.defstruct(f"Data_{kind.replace('.', '_')}", fields, kw_only=True)


DATA: Final = {kind: _data_struct(kind) for kind, _ in STRUCTS}
#: pyarrow's JSON reader for each type's ``data``, held to :data:`DATA`'s rules.
READERS: Final = {kind: JsonColumns(struct) for kind, struct in DATA.items()}


def _decode(kind: str, texts: list[str]) -> list[Any]:
    """Each text as ``kind``'s data struct; None where msgspec refuses it."""
    data: Any = DATA[kind]
    try:
        found = msgspec.json.decode(f"[{','.join(texts)}]", type=list[data])
        # A text may be empty, or two objects with a comma between: then count one by one.
        if len(found) == len(texts):
            return found
    except msgspec.MsgspecError:
        pass
    found = []
    for text in texts:
        try:
            found.append(msgspec.json.decode(text, type=data))
        except msgspec.MsgspecError:
            found.append(None)
    return found


def _attr(items: Sequence[Any], name: str, kind: pa.DataType) -> pa.Array:
    return pa.array([None if i is None else getattr(i, name) for i in items], kind)


def _matches(values: pa.Array | pa.ChunkedArray, pattern: str) -> pa.Array:
    """``pc.match_substring_regex`` worked out once per distinct value: slugs, sources and
    currencies take a handful of values, and a hash per row costs less than a match."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return pc.take(pc.match_substring_regex(encoded.dictionary, pattern), encoded.indices)


def _rules(kind: str, column: Callable[[str], Any], ok: Any) -> pa.Array:
    """``ok`` less the rows failing the checks msgspec leaves to us: patterns, the order pair;
    ``column(name)`` gives a decoded field as strings."""
    struct: type[EventStruct] = STRUCTS[(kind, 1)]
    for name, pattern in struct.PATTERNS:
        if name not in _ENVELOPE:
            matched = _matches(column(name), PATTERNS[pattern])
            # None passed msgspec only where the schema allows it.
            ok = pc.and_(ok, pc.fill_null(matched, True))
    if struct.PAIRED:
        viewer = pc.is_null(column("viewer_id"))
        ok = pc.and_(ok, pc.equal(viewer, pc.is_null(column("viewer_source"))))
    return pc.fill_null(ok, False)


def _passes(kind: str, items: list[Any]) -> list[bool]:
    """Which decoded items (None: refused by msgspec) pass :func:`_rules`."""
    ok = pa.array([i is not None for i in items], pa.bool_())
    ok = _rules(kind, lambda name: _attr(items, name, pa.string()), ok)
    return [bool(v) for v in ok.to_pylist()]


def _slow(row: dict[str, Any]) -> Any:
    """The schema's verdict on one row: its pydantic model, or None."""
    try:
        data = orjson.loads(row["data"])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        event = Event(
            type=row["type"],
            id=row["event_id"],
            occurred_at=row["occurred_at"],
            base=row["base"],
            version=row["version"],
            data=data,
        )
        return from_bus_event(event, now=row["received_at"])
    except (EventSchemaError, ValueError):
        return None


def _flat(kind: str, rows: pa.Table, column: Callable[[str, pa.DataType], Any]) -> pa.Table:
    """``rows`` flattened to :data:`COLUMNS`, ``column(name, type)`` giving a data field."""
    fields = FIELDS[kind]
    columns: dict[str, Any] = {n: rows[n] for n in ("pos", "event_id", "occurred_at")}
    code = np.full(rows.num_rows, KINDS.index(kind).as_py(), dtype=np.int8)
    columns["type"] = pa.DictionaryArray.from_arrays(code, KINDS)
    for field in COLUMNS.names[4:]:
        kind_of = COLUMNS.field(field).type
        columns[field] = (
            column(field, kind_of)
            if field in fields or field == "session_id"
            else pa.nulls(rows.num_rows, kind_of)
        )
    return pa.table(columns, schema=COLUMNS)


def _utf8(texts: pa.ChunkedArray) -> pa.Array:
    """Which texts are valid UTF-8 (a file not written by the archive may hold others)."""
    found = []
    for raw in pc.cast(texts, pa.binary()).to_pylist():
        try:
            raw.decode()
            found.append(True)
        except UnicodeDecodeError:
            found.append(False)
    return pa.array(found, pa.bool_())


def _fits(kind: str, item: Any) -> bool:
    """Whether the item's integers fit the 64-bit columns (the schemas set no upper bound; no
    session or product has such an id, so the event could count nowhere)."""
    for name in ("session_id", *FIELDS[kind]):
        value = getattr(item, name, None)
        if type(value) is int and not -(2**63) <= value < 2**63:
            return False
    return True


def _decoded(kind: str, rows: pa.Table) -> pa.Table:
    """The rows of one event type that pass, decoded by msgspec or the slow road; rows whose
    text is not UTF-8, or whose integers do not fit the columns, are refused."""
    try:
        texts = rows["data"].to_pylist()
    except UnicodeDecodeError:
        rows = rows.filter(_utf8(rows["data"]))
        texts = rows["data"].to_pylist()
    items = _decode(kind, texts)
    passes = _passes(kind, items)
    for n, passed in enumerate(passes):
        if not passed:
            items[n] = _slow(rows.slice(n, 1).to_pylist()[0])
            passes[n] = items[n] is not None
        if passes[n] and not _fits(kind, items[n]):
            passes[n] = False
    rows = rows.filter(pa.array(passes, pa.bool_()))
    items = [item for item, passed in zip(items, passes, strict=True) if passed]
    return _flat(kind, rows, lambda name, kind_of: _attr(items, name, kind_of))


def _of_kind(kind: str, rows: pa.Table) -> pa.Table:
    """The rows of one event type that pass, flattened to :data:`COLUMNS`.

    pyarrow's JSON reader takes the texts it may (:class:`~analytics.json_columns.JsonColumns`);
    the others, those it reads but msgspec's rules or :func:`_rules` refuse, and all of a group
    it refuses, are decoded by msgspec as before, with the slow road for those it refuses.
    """
    reader = READERS[kind]
    eligible = reader.eligible(rows["data"])
    if not pc.any(eligible).as_py():
        return _decoded(kind, rows)
    every = pc.all(eligible).as_py()
    fast = rows if every else rows.filter(eligible)
    read = reader.read(fast["data"].combine_chunks())
    if read is None:
        return _decoded(kind, rows)
    columns, ok = read
    ok = _rules(kind, columns.__getitem__, ok)
    if every and pc.all(ok).as_py():  # the usual case: no copies
        return _flat(kind, rows, lambda name, _: columns[name])
    taken = _flat(kind, fast.filter(ok), lambda name, _: columns[name].filter(ok))
    rest = rows.filter(pc.invert(eligible)), fast.filter(pc.invert(ok))
    both = pa.concat_tables([taken, _decoded(kind, pa.concat_tables(rest))])
    return both.take(pc.sort_indices(both["pos"]))


def _envelope_ok(batch: pa.Table, lateness: timedelta) -> pa.ChunkedArray:
    """Rows whose time, type, version, id and base pass; the others are refused for good."""
    occurred, received = batch["occurred_at"], batch["received_at"]
    length = pc.utf8_length(batch["event_id"])
    checks = [
        pc.greater_equal(occurred, pc.subtract(received, pa.scalar(lateness))),
        pc.less_equal(occurred, pc.add(received, pa.scalar(MAX_CLOCK_SKEW))),
        pc.is_in(batch["type"], KINDS),
        pc.equal(batch["version"], 1),  # every type has version 1 alone
        pc.and_(pc.greater_equal(length, 1), pc.less_equal(length, 128)),
        _matches(batch["base"], PATTERNS[SLUG]),
    ]
    ok = checks[0]
    for check in checks[1:]:
        ok = pc.and_(ok, check)
    return pc.fill_null(ok, False)


def _checked_file(path: Path, first: int, lateness: timedelta) -> pa.Table:
    """The checked rows of one file whose first row is row ``first`` of the day."""
    parts = []
    # Types and bases come as Parquet stores them, by number (half the read's time, and no
    # hash per row to number them).
    read = pq.ParquetFile(path, read_dictionary=["type", "base"])
    for batch in read.iter_batches(batch_size=BATCH, columns=SCHEMA.names):
        rows = pa.Table.from_batches([batch])
        positions = pa.array(np.arange(first, first + rows.num_rows, dtype=np.int64))
        first += rows.num_rows
        ok = _envelope_ok(rows, lateness)
        rows = rows.append_column("pos", positions)
        if not pc.all(ok).as_py():
            rows = rows.filter(ok)
        types = rows["type"].combine_chunks()
        for number in pc.unique(types.indices).to_pylist():
            kind = types.dictionary[number].as_py()
            parts.append(_of_kind(kind, rows.filter(pc.equal(types.indices, number))))
    # One chunk per file, put together here, in this file's thread.
    return pa.concat_tables(parts).combine_chunks() if parts else COLUMNS.empty_table()


def read_checked(data_dir: Path, day: date, lateness: timedelta) -> DayColumns:
    """The day's archive as checked columns; see the module's docstring.

    The files are checked :data:`THREADS` at a time: Parquet decoding and pyarrow's kernels
    leave Python's lock to the other thread while they run.
    """
    folder = day_dir(data_dir, day)
    paths = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    sizes = [pq.ParquetFile(path).metadata.num_rows for path in paths]
    firsts = list(accumulate(sizes, initial=0))[:-1]
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(_checked_file, paths, firsts, repeat(lateness)))
    archived, kept = sum(sizes), sum(part.num_rows for part in parts)
    events = pa.concat_tables(parts) if parts else COLUMNS.empty_table()
    return DayColumns(events, archived, archived - kept)
