"""Packed group-bys give pyarrow's own results, whatever the keys."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from analytics import packed
from analytics.packed import Packed

MINUTE = 60_000_000


def _rows(table: pa.Table) -> list[tuple[object, ...]]:
    return sorted(zip(*(c.to_pylist() for c in table.columns), strict=True), key=repr)


def _same(ours: pa.Table, table: pa.Table, keys: list[str], aggregations: list[Any]) -> None:
    theirs = table.group_by(keys, use_threads=False).aggregate(aggregations)
    theirs = theirs.select(ours.column_names)
    assert ours.schema.equals(theirs.schema)
    assert _rows(ours) == _rows(theirs)


def _check(table: pa.Table, keys: list[str]) -> None:
    """Every packed group-by of ``table`` on ``keys`` against pyarrow's."""
    _same(packed.distinct(table, keys), table, keys, [])
    _same(packed.least(table, keys, "minute"), table, keys, [("minute", "min")])
    _same(packed.count_distinct(table, keys, "member"), table, keys,
          [("member", "count_distinct")])  # fmt: skip
    _same(packed.sums(table, keys, ["value", "member"]), table, keys,
          [("value", "sum"), ("member", "sum")])  # fmt: skip


def _table(rng: np.random.Generator, n: int, sessions: int, values: int) -> pa.Table:
    start = int(datetime(2026, 11, 26, tzinfo=UTC).timestamp()) * 1_000_000
    days = [date(2026, 11, 1) + timedelta(days=int(d)) for d in rng.integers(0, 3, n)]
    return pa.table(
        {
            "session": pa.array(rng.integers(-3, sessions, n)),
            "minute": pa.array(start + rng.integers(0, 1440, n) * MINUTE).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "kind": pa.array(rng.integers(0, 5, n).astype(np.int8)),
            "day": pa.array(days, pa.date32()),
            "member": pa.array(rng.integers(0, 300, n).astype(np.int32)),
            "value": pa.array(rng.integers(-values, values, n)),
        }
    )


@pytest.mark.parametrize("seed", range(4))
def test_integer_date_and_time_keys_group_as_pyarrow_groups_them(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Few sessions: sums by counting keys; many: sums by sorting.
    for table in (_table(rng, 5_000, 40, 1000), _table(rng, 3_000, 10**9, 2**40)):
        assert Packed.of(table, ["session", "minute", "kind", "day", "member"]) is not None
        for keys in (["session", "minute"], ["session", "kind"], ["day", "session", "kind"],
                     ["minute"], ["kind", "day"]):  # fmt: skip
            _check(table, keys)


def test_keys_that_cannot_be_packed_take_pyarrows_group_by() -> None:
    def table(a: pa.Array, b: list[int]) -> pa.Table:
        n = len(b)
        moments = pa.array([MINUTE * i for i in range(n)], pa.timestamp("us", tz="UTC"))
        return pa.table({"a": a, "b": b, "member": list(range(n)), "value": list(range(n)),
                         "minute": moments})  # fmt: skip

    cases = {
        "wide": table(pa.array([0, 2**62, 1]), [1, 1, 1]),
        "extreme": table(pa.array([-(2**63), 2**63 - 1, -(2**63)]), [1, 2, 1]),
        "product": table(pa.array([0, 2**40, 1]), [0, 2**30, 1]),
        "nulls": table(pa.array([1, None, 1]), [1, 1, 1]),
        "text": table(pa.array(["x", "y", "x"]), [1, 1, 1]),
        "unsigned": table(pa.array([1, 2**64 - 1, 1], pa.uint64()), [1, 1, 1]),
        "nanoseconds": table(pa.array([1, 2, 1], pa.timestamp("ns")), [1, 1, 1]),
    }
    for name, case in cases.items():
        assert Packed.of(case, ["a", "b"]) is None, name
        _check(case, ["a", "b"])
    _check(table(pa.array([], pa.int64()), []), ["a", "b"])


def test_sums_too_large_for_float_counting_are_still_exact() -> None:
    big = 2**62 // 3
    table = pa.table({"k": [1, 1, 2], "v": [big, big, 1], "minute": [0, 0, 0], "member": [0, 0, 0]})
    assert packed.sums(table, ["k"], ["v"]).to_pylist() == [
        {"k": 1, "v_sum": 2 * big},
        {"k": 2, "v_sum": 1},
    ]


def test_equal_strings_have_equal_fingerprints_and_repeats_are_found() -> None:
    rng = np.random.default_rng(3)
    alphabet = list("ab中é")
    texts = ["".join(rng.choice(alphabet, size=int(n))) for n in rng.integers(0, 12, 3_000)]
    texts += [f"event-{i:08d}-{'x' * int(i % 30)}" for i in range(3_000)]
    texts += texts[:50] + texts[3_000:3_050]
    order = rng.permutation(len(texts))
    shuffled = [texts[i] for i in order]
    chunked = pa.chunked_array([shuffled[:1234], shuffled[1234:]])
    prints = packed.fingerprints(chunked)
    assert (prints == packed.fingerprints(pa.array(shuffled))).all()
    by_text: dict[str, set[int]] = {}
    for text, value in zip(shuffled, prints.tolist(), strict=True):
        by_text.setdefault(text, set()).add(value)
    assert all(len(values) == 1 for values in by_text.values())
    found = packed.repeated(prints)
    assert found is not None
    counts = {t: shuffled.count(t) for t in set(shuffled)}
    # Every repeated string is found; a unique one only where its fingerprint is shared.
    for text, hit in zip(shuffled, found.tolist(), strict=True):
        if counts[text] > 1:
            assert hit
    assert packed.repeated(packed.fingerprints(pa.array(["a", "b", "ab"]))) is None


def test_sums_take_booleans_and_nulls_in_chunks() -> None:
    """Booleans count 1 for true, nulls 0, over chunked columns, counted by key or sorted."""
    rng = np.random.default_rng(5)
    for sessions in (5, 10**9):  # few keys: counted by key; many: sorted
        n = 4_000
        flags = [None if f == 2 else bool(f) for f in rng.integers(0, 3, n)]
        seconds = [None if s < 0 else int(s) for s in rng.integers(-50, 300, n)]
        table = pa.table(
            {
                "session": pa.chunked_array([rng.integers(0, sessions, n // 2) for _ in range(2)]),
                "flag": pa.chunked_array([flags[: n // 3], flags[n // 3 :]], pa.bool_()),
                "seconds": pa.chunked_array([seconds[:1000], seconds[1000:]], pa.int64()),
            }
        )
        as_ints = table.set_column(1, "flag", pc.cast(table["flag"], pa.int64()))
        filled = as_ints.set_column(1, "flag", pc.fill_null(as_ints["flag"], 0))
        filled = filled.set_column(2, "seconds", pc.fill_null(filled["seconds"], 0))
        _same(packed.sums(table, ["session"], ["flag", "seconds"]), filled, ["session"],
              [("flag", "sum"), ("seconds", "sum")])  # fmt: skip
