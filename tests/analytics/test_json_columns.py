"""pyarrow's JSON reader in ``read_checked`` keeps exactly the rows the schema accepts.

Archive files hold valid ``data`` of every type and hostile variants of it; ``read_checked``
must keep the rows ``from_bus_event`` accepts, with the same values, and give the same table
as msgspec alone (``_decoded``, the road before the reader). The reader refuses a whole group
when one text is off, which would hide the others of that group: so each hostile text is
written to a file of its own, with valid texts of its type around it.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_fastpath import VALID

from analytics.archive import SCHEMA, day_dir
from analytics.day_columns import (
    COLUMNS,
    DATA,
    FIELDS,
    READERS,
    _decoded,
    _envelope_ok,
    _of_kind,
    read_checked,
)
from analytics.json_columns import JsonColumns
from analytics.schemas import EventSchemaError, from_bus_event
from livebase.bus import Event

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
LATENESS = timedelta(days=1)

KINDS = sorted(VALID)
ODD: list[Any] = [
    None, True, False, 0, 1, -1, 300, 301, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 1.0, 19.9, "",
    "x", "v1", "1", "Bad Slug", "ok-slug", "a" * 129, "a" * 128, "é" * 128, "é" * 129, "CNY",
    "cny", "douyin", "１２", "a\x01b", "a\x1fb", "a\tb", "a\x7fb", [], {}, [1, [2]], {"a": {}},
]  # fmt: skip
ENVELOPE = {"type": "viewer.joined", "base": "haifeng", "event_id": "e", "version": 1,
            "occurred_at": "2025-05-01T11:59:00Z"}  # fmt: skip


def data(kind: str, **changes: Any) -> dict[str, Any]:
    found = {"room": "studio-1", "session_id": 12, **VALID[kind], **changes}
    return {k: v for k, v in found.items() if v is not ...}


def text(value: Any) -> str:
    # Not orjson: it refuses integers beyond 64 bits.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def hostile(kind: str) -> list[str]:
    """Texts of ``kind`` that msgspec, pyarrow or the schema could each read their own way."""
    good = data(kind)
    plain = text(good)
    names = sorted({*good, "viewer_id", "viewer_source", "source", "count", "currency"})
    found = [
        "null", "null " + plain, plain + " null", "1", "[]", '"x"', "true", "{}", "",
        plain + plain, plain + " " + plain, plain + "," + plain, plain + ",",
        plain + "\n" + plain, "[" + plain + "]",
        plain[:-1], plain + "}", "{" + plain, plain[:-1] + ",}", plain.replace(":", ": \n", 1),
        plain.replace(":", ":\r", 1), plain.replace(":", ":\t", 1), " " + plain, plain + " ",
        plain.replace('"room"', '"ro\\u006fm"'), plain.replace("studio-1", "studio\\u002d1"),
        plain.replace("studio-1", "studio\\n1"), plain.replace("studio-1", "studio\x01"),
        plain.replace("studio-1", "studio\x1f"), plain.replace("studio-1", "studio\t"),
        plain.replace("studio-1", "\\ud800"),
        plain[:-1] + ',"extra":"\\ud800"}', plain[:-1] + ',"event\\u005fid":"e"}',
        plain[:-1] + ',"room":"Bad"}', '{"room":"Bad",' + plain[1:],  # the last one counts
        plain[:-1] + ',"session_id":13}', plain[:-1] + ',"extra":1,"extra":[]}',
    ]  # fmt: skip
    for nested in ("[" * 40 + "]" * 40, '{"a":' * 20 + "1" + "}" * 20, "NaN", "Infinity",
                   "-Infinity", "-Inf", "123456789012345678901234567890", '"\\u0000"',
                   "1.5e3", '"null"', "nul"):  # fmt: skip
        found.append(plain[:-1] + f',"extra":{nested}}}')
    for name, value in ENVELOPE.items():
        found.append(text({**good, name: value}))
        found.append(text({**good, "extra": f'"{name}"'}))  # the name as a value
    for name in names:
        found.append(text(data(kind, **{name: ...})))
        found.append(text({**good, name: None}))
        for value in ODD:
            # Beyond 64 bits: the schema takes it, no column can (test_wide_integers_fail);
            # beyond 2**64, orjson reads a float where msgspec reads an integer (test_huge_...).
            wide = isinstance(value, int) and (
                value >= 2**64 or (abs(value) >= 2**63 and name in COLUMNS.names)
            )
            if not wide:
                found.append(text({**good, name: value}))
        for raw in ("1.0", "1e2", "-0", "01", "true", '"1"', "NaN", "Infinity", "-1"):
            found.append(plain[:-1] + f',"{name}":{raw}}}')
    return found


def row(n: int, kind: str, data_text: str) -> dict[str, Any]:
    return {
        "event_id": f"e-{n}", "type": kind, "version": 1, "occurred_at": NOW - timedelta(minutes=1),
        "base": "haifeng", "data": data_text, "received_at": NOW,
    }  # fmt: skip


def schema_verdict(values: dict[str, Any]) -> Any:
    """What the schema makes of one archive row: its model, or None."""
    try:
        decoded = orjson.loads(values["data"])
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict):
        return None
    try:
        event = Event(
            type=values["type"], id=values["event_id"], occurred_at=values["occurred_at"],
            base=values["base"], version=values["version"], data=decoded,
        )  # fmt: skip
        return from_bus_event(event, now=values["received_at"])
    except (EventSchemaError, ValueError):
        return None


def write(folder: Path, files: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each list of rows as one archive file, in order; return all rows in archive order."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, rows in enumerate(files):
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        pq.write_table(table, folder / f"part-{n:05d}.parquet", compression="zstd")
    return [r for rows in files for r in rows]


def msgspec_alone(folder: Path) -> pa.Table:
    """The day as the road before pyarrow's reader gives it: msgspec, then the slow road."""
    parts, first = [], 0
    for path in sorted(folder.glob("*.parquet")):
        rows = pq.read_table(path)
        positions = pa.array(range(first, first + rows.num_rows), pa.int64())
        first += rows.num_rows
        rows = rows.append_column("pos", positions).filter(_envelope_ok(rows, LATENESS))
        for kind in pc.unique(rows["type"]).to_pylist():
            parts.append(_decoded(kind, rows.filter(pc.equal(rows["type"], kind))))
    return pa.concat_tables(parts).combine_chunks()


def agree(tmp_path: Path, files: list[list[dict[str, Any]]]) -> int:
    """read_checked keeps what the schema accepts, as msgspec alone does; return rows kept."""
    folder = day_dir(tmp_path, NOW.date())
    rows = write(folder, files)
    got = read_checked(tmp_path, NOW.date(), LATENESS)
    assert got.events.schema == COLUMNS
    assert got.events.equals(msgspec_alone(folder))
    expected = {pos: schema_verdict(r) for pos, r in enumerate(rows)}
    kept = {r["pos"]: r for r in got.events.to_pylist()}
    assert set(kept) == {pos for pos, model in expected.items() if model is not None}
    for pos, found in kept.items():
        model = expected[pos]
        assert (found["event_id"], found["type"]) == (model.event_id, model.type)
        assert found["occurred_at"] == model.occurred_at
        for name in COLUMNS.names[4:]:
            if name in FIELDS[model.type] or name == "session_id":
                assert found[name] == getattr(model, name), (rows[pos], name)
            else:
                assert found[name] is None
    assert (got.archived, got.skipped) == (len(rows), len(rows) - len(kept))
    return len(kept)


def test_every_reader_is_supported() -> None:
    # Otherwise a type would silently take msgspec alone, at msgspec's speed.
    assert all(reader.supported for reader in READERS.values())


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_texts_one_by_one(tmp_path: Path, kind: str) -> None:
    files, n = [], 0
    for odd in hostile(kind):
        rows = []
        for t in (text(data(kind)), odd, text(data(kind, session_id=13))):
            rows.append(row(n, kind, t))
            n += 1
        files.append(rows)
    kept = agree(tmp_path, files)
    assert 2 * len(files) <= kept < 3 * len(files)


def test_random_groups_of_every_type(tmp_path: Path) -> None:
    rng = random.Random(20251129)
    pool = {kind: hostile(kind) for kind in KINDS}
    files, n = [], 0
    for _ in range(40):
        rows = []
        for _ in range(rng.randint(1, 60)):
            kind = rng.choice(KINDS)
            odd = rng.random() < 0.05
            t = rng.choice(pool[kind]) if odd else text(data(kind, session_id=rng.randint(1, 5)))
            rows.append(row(n, kind, t))
            n += 1
        files.append(rows)
    assert agree(tmp_path, files) > n // 2


def test_the_reader_takes_valid_texts_and_fills_defaults() -> None:
    # The groups above do take pyarrow's road, defaults and Optional fields included.
    for kind in KINDS:
        texts = pa.array([text(data(kind)), text(data(kind, source=..., count=..., currency=...))])
        reader = READERS[kind]
        assert pc.all(reader.eligible(texts)).as_py(), kind
        read = reader.read(texts)
        assert read is not None, kind
        columns, ok = read
        assert ok.to_pylist() == [True, True], kind
        items = msgspec.json.decode(f"[{','.join(texts.to_pylist())}]", type=list[DATA[kind]])
        for name in columns:
            assert columns[name].to_pylist() == [getattr(i, name) for i in items], (kind, name)


def test_no_text_that_could_crash_the_reader_reaches_it() -> None:
    # pyarrow segfaults on a top-level null at the start of a buffer or block.
    reader = READERS["interaction.liked"]
    plain = text(data("interaction.liked"))
    texts = pa.array(["null", "null " + plain, " null", plain + "\nnull", "\nnull", None, plain])
    assert reader.eligible(texts).to_pylist() == [False] * 6 + [True]


def test_each_screen_alone() -> None:
    # Each of these is refused or read alike by pyarrow and msgspec in the groups above, or
    # cannot be shown there (a block boundary, a recursion limit): the screen holds them back.
    reader = READERS["interaction.liked"]
    plain = text(data("interaction.liked"))
    head, tail = plain[:-1], "}"
    odd = [
        " " + plain,
        plain + " ",
        "1" + plain,
        plain + "1",
        "}",
        "1 }",  # blocks start with "{"
        plain.replace(":", ":\n", 1),
        plain.replace(":", ":\r", 1),
        plain.replace(":", ":\t", 1),
        plain.replace("v1", "v\x01"),
        plain.replace("v1", "v\\u0031"),
        head + ',"x":' + "[" * 2000 + "]" * 2000 + tail,  # beyond msgspec's and orjson's depth
        head + ',"x":' + '{"a":' * 2000 + "1" + "}" * 2000 + tail,
        head + ',"x":NaN' + tail,
        head + ',"x":-Infinity' + tail,
        head + ',"x":null' + tail,
        head + ',"type":1' + tail,
        head + ',"extra":"version"' + tail,
    ]
    assert reader.eligible(pa.array([plain, *odd])).to_pylist() == [True] + [False] * len(odd)


def test_the_reader_refuses_a_text_of_two_objects() -> None:
    # The screen keeps such texts from it (a second "{"); the count of rows holds anyway.
    plain = text(data("interaction.liked"))
    assert READERS["interaction.liked"].read(pa.array([plain, plain + plain])) is None
    assert READERS["interaction.liked"].read(pa.array([plain, plain + " " + plain])) is None


def test_explicit_null_of_an_optional_field_is_read() -> None:
    paid = data("order.paid", viewer_id=None, viewer_source=None)
    texts = pa.array([text(paid), text({**paid, "quantity": None}), text({**paid, "x": None})])
    reader = READERS["order.paid"]
    assert reader.eligible(texts).to_pylist() == [True, False, False]
    read = reader.read(texts[:1])
    assert read is not None
    columns, ok = read
    assert ok.to_pylist() == [True]
    assert columns["viewer_id"].to_pylist() == [None]
    assert columns["quantity"].to_pylist() == [2]


def test_explicit_null_is_not_a_default() -> None:
    reader = READERS["interaction.liked"]
    texts = pa.array([text(data("interaction.liked", count=None))])
    assert reader.eligible(texts).to_pylist() == [False]
    kind = "interaction.liked"
    table = pa.Table.from_pylist([row(0, kind, texts[0].as_py())], schema=SCHEMA)
    table = table.append_column("pos", pa.array([0], pa.int64()))
    assert _of_kind(kind, table).num_rows == 0


def test_invalid_utf8_is_left_to_msgspec(tmp_path: Path) -> None:
    kind = "viewer.joined"
    good = text(data(kind)).encode()
    raw = pa.array([good, good.replace(b"v1", b"v\xff")], pa.binary())
    texts = pa.Array.from_buffers(pa.string(), len(raw), raw.buffers())
    assert READERS[kind].eligible(texts).to_pylist() == [False, False]
    assert READERS[kind].read(texts) is None
    table = pa.table({**{n: [v, v] for n, v in row(0, kind, "").items()}, "data": texts})
    folder = day_dir(tmp_path, NOW.date())
    folder.mkdir(parents=True)
    pq.write_table(table.cast(SCHEMA), folder / "part-0.parquet")
    # Neither road takes the row: it is refused (skipped), the valid one kept.
    got = read_checked(tmp_path, NOW.date(), LATENESS)
    assert (got.events.num_rows, got.skipped) == (1, 1)
    assert got.events["viewer_id"].to_pylist() == ["v1"]


def test_huge_numbers_elsewhere_as_msgspec_reads_them(tmp_path: Path) -> None:
    # msgspec skips 1e400 in a name it ignores and reads 2**64 as an integer, where orjson (the
    # slow road) refuses the one and reads a float for the other: the rows are kept as they
    # were before pyarrow's reader (which refuses both), by msgspec.
    kind = "viewer.heartbeat"
    plain = text(data(kind))
    texts = [plain, plain[:-1] + ',"extra":1e400}', plain[:-1] + ',"extra":-1e400}']
    rows = [row(n, kind, t) for n, t in enumerate(texts)]
    rows.append(row(3, "order.paid", text(data("order.paid", quantity=2**64))))
    folder = day_dir(tmp_path, NOW.date())
    write(folder, [rows])
    got = read_checked(tmp_path, NOW.date(), LATENESS)
    assert got.events.num_rows == 4
    assert got.events.equals(msgspec_alone(folder))


def test_integers_wider_than_the_columns_are_refused(tmp_path: Path) -> None:
    # The schema takes a session id beyond 64 bits; the columns cannot hold it, on either road,
    # and no session has such an id: the row is skipped, the others kept.
    kind = "viewer.joined"
    wide = text(data(kind, session_id=2**63))
    assert READERS[kind].read(pa.array([wide])) is None
    huge = text(data("product.impressed", product_id=2**64 - 1))
    rows = [row(0, kind, wide), row(1, kind, text(data(kind))), row(2, "product.impressed", huge)]
    write(day_dir(tmp_path, NOW.date()), [rows])
    got = read_checked(tmp_path, NOW.date(), LATENESS)
    assert (got.events.num_rows, got.skipped) == (1, 2)
    assert got.events["pos"].to_pylist() == [1]


def test_structs_the_reader_cannot_hold_take_msgspec() -> None:
    class Floats(msgspec.Struct):
        x: float

    class Patterned(msgspec.Struct):
        x: Annotated[str, msgspec.Meta(pattern="^a$")]

    class Factory(msgspec.Struct):
        x: list[int] = msgspec.field(default_factory=list)

    class Strict(msgspec.Struct, forbid_unknown_fields=True):
        x: int

    for struct in (Floats, Patterned, Factory, Strict):
        reader = JsonColumns(struct)
        assert not reader.supported
        assert reader.eligible(pa.array(['{"x":1}'])).to_pylist() == [False]

    class Renamed(msgspec.Struct, rename="camel"):
        some_value: Annotated[int, msgspec.Meta(gt=1, lt=5)]
        other: int | None = 7

    reader = JsonColumns(Renamed)
    texts = pa.array(['{"someValue":2}', '{"some_value":2}', '{"someValue":5,"other":1}'])
    read = reader.read(texts)
    assert read is not None
    columns, ok = read
    assert ok.to_pylist() == [True, False, False]
    assert columns["other"].to_pylist() == [7, 7, 1]
