"""Group-bys of the recompute on integer-like keys packed into one 64-bit integer and sorted.

A day's recompute groups millions of rows on a few integer keys (session, minute, member
number …). pyarrow's hash group-by costs about 0.14 µs a row on one int64 key here and two
and a half times that on three, while numpy sorts 8.5 million int64 in 0.18 s: so keys that
are integers, dates or times, without nulls, whose value ranges multiply to under 2**62, are
packed into one integer per row (mixed radix: each key's offset from its least value; times
in the longest whole unit of time they are all multiples of, so whole minutes take one step
each) and the groups are found by sorting that integer (``docs/benchmarks.md``, "Recompute").
Keys that cannot be packed take pyarrow's own group-by, with the same result. Rows come out
in no particular order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LIMIT: Final = 1 << 62
#: Steps tried for times, in microseconds (the only unit packed).
_STEPS: Final = (86_400_000_000, 3_600_000_000, 60_000_000, 1_000_000)
#: Sums of float64 weights are exact below this.
_EXACT: Final = 1 << 53
Ints = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True, slots=True)
class _Digit:
    name: str
    type: pa.DataType
    least: int
    step: int
    width: int  #: distinct steps the key can take
    radix: int  #: the place value of this key in the packed integer


def _integers(column: pa.ChunkedArray | pa.Array) -> Ints | None:
    """The column's values as int64, or None where it cannot be packed."""
    kind = column.type
    packable = (
        (pa.types.is_integer(kind) and kind != pa.uint64())
        or (pa.types.is_timestamp(kind) and kind.unit == "us")
        or pa.types.is_date32(kind)
    )
    if column.null_count or not packable:
        return None
    if pa.types.is_date32(kind):
        column = pc.cast(column, pa.int32())
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(), dtype=np.int64)


def _step(offsets: Ints) -> int:
    """The longest whole unit of time every offset is a multiple of, or 1 (tried on a
    thousand offsets spread over all, then checked on all: the first rows of a day's events
    all lie in its first minute, a multiple of every unit)."""
    sample = offsets[:: max(1, len(offsets) // 1000)]
    for step in _STEPS:
        if not (sample % step).any() and not (offsets % step).any():
            return step
    return 1


@dataclass(frozen=True, slots=True)
class Packed:
    """Key columns of a table packed into ``key``, the first column most significant."""

    key: Ints
    digits: tuple[_Digit, ...]  #: least significant first
    space: int  #: every key is below this

    @classmethod
    def of(cls, table: pa.Table, names: list[str]) -> Packed | None:
        if table.num_rows == 0:
            return None
        key = np.zeros(table.num_rows, dtype=np.int64)
        digits: list[_Digit] = []
        radix = 1
        for name in reversed(names):
            values = _integers(table[name])
            if values is None:
                return None
            least, most = int(values.min()), int(values.max())
            if most - least >= _LIMIT:  # the offsets themselves would not fit
                return None
            offsets = np.subtract(values, least)
            step = _step(offsets) if pa.types.is_timestamp(table[name].type) else 1
            width = (most - least) // step + 1
            if radix * width >= _LIMIT:
                return None
            if step > 1:
                np.floor_divide(offsets, step, out=offsets)
            if radix > 1:
                np.multiply(offsets, radix, out=offsets)
            np.add(key, offsets, out=key)
            digits.append(_Digit(name, table[name].type, least, step, width, radix))
            radix *= width
        return cls(key, tuple(digits), radix)

    def unpack(self, keys: Ints, below: int = 1) -> dict[str, pa.Array]:
        """The key columns of packed ``keys``; ``below``: the place value of the lowest key
        wanted (the digits below it were divided out of ``keys``)."""
        out = {}
        for digit in reversed(self.digits):
            if digit.radix < below:
                continue
            values = keys // (digit.radix // below) % digit.width * digit.step + digit.least
            if pa.types.is_date32(digit.type):
                out[digit.name] = pc.cast(pa.array(values.astype(np.int32)), digit.type)
            else:
                out[digit.name] = pc.cast(pa.array(values), digit.type)
        return out

    def radix(self, name: str) -> int:
        return next(d.radix for d in self.digits if d.name == name)


def _starts(ordered: Ints) -> Ints:
    """Where each run of equal values of sorted ``ordered`` starts."""
    if len(ordered) == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.int64)


def distinct(table: pa.Table, keys: list[str]) -> pa.Table:
    """The distinct rows of ``table``'s ``keys`` columns."""
    packed = Packed.of(table, keys)
    if packed is None:
        return table.group_by(keys, use_threads=False).aggregate([]).select(keys)
    ordered = np.sort(packed.key)
    return pa.table(packed.unpack(ordered[_starts(ordered)]))


def least(table: pa.Table, keys: list[str], value: str) -> pa.Table:
    """The least ``value`` per distinct ``keys``: the keys, then ``<value>_min``."""
    packed = Packed.of(table, [*keys, value])
    if packed is None:
        return table.group_by(keys, use_threads=False).aggregate([(value, "min")])
    ordered = np.sort(packed.key)
    width = packed.radix(keys[-1])
    groups = ordered // width
    firsts = ordered[_starts(groups)]
    columns = packed.unpack(firsts)
    return pa.table({**{k: columns[k] for k in keys}, f"{value}_min": columns[value]})


def count_distinct(table: pa.Table, keys: list[str], member: str) -> pa.Table:
    """How many distinct ``member`` values each distinct ``keys`` has: the keys, then
    ``<member>_count_distinct``."""
    packed = Packed.of(table, [*keys, member])
    if packed is None:
        return table.group_by(keys, use_threads=False).aggregate([(member, "count_distinct")])
    ordered = np.sort(packed.key)
    pairs = ordered[_starts(ordered)]
    groups = pairs // packed.radix(keys[-1])
    starts = _starts(groups)
    counts = np.diff(np.append(starts, len(groups)))
    return pa.table(
        {
            **packed.unpack(groups[starts], packed.radix(keys[-1])),
            f"{member}_count_distinct": pa.array(counts, pa.int64()),
        }
    )


def _int64s(column: pa.ChunkedArray) -> Ints:
    """An integer or boolean column as int64, nulls as 0."""
    return np.asarray(pc.fill_null(pc.cast(column, pa.int64()), 0).to_numpy(), dtype=np.int64)


def _largest(column: pa.ChunkedArray) -> int:
    """The largest magnitude in an integer or boolean column (nulls aside)."""
    if pa.types.is_boolean(column.type):
        return 1
    found = pc.min_max(column).as_py()
    return int(max(abs(found["min"] or 0), abs(found["max"] or 0)))


def _weights(chunk: pa.Array) -> np.ndarray[Any, Any]:
    """One chunk of an integer or boolean column for ``np.bincount``'s weights, nulls as 0."""
    return np.asarray(pc.fill_null(chunk, False if pa.types.is_boolean(chunk.type) else 0))


def sums(table: pa.Table, keys: list[str], columns: list[str]) -> pa.Table:
    """The sums of integer or boolean ``columns`` per distinct ``keys``: the keys, then
    ``<column>_sum`` for each, int64 (nulls count as 0, true as 1).

    Over few possible keys the sums are counted by key, a chunk of each column at a time: no
    copy of a whole column is made (at 10 million rows each is 80 MB of fresh pages)."""
    packed = Packed.of(table, keys)
    if packed is None:
        table = pa.table({**{k: table[k] for k in keys}, **{c: _int64s(table[c]) for c in columns}})
        return table.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in columns])
    n = len(packed.key)
    bound = max((_largest(table[c]) for c in columns), default=0) * n
    if packed.space <= 4 * n + 4096 and bound < _EXACT:
        # Few possible keys: counted by key, no sort (float sums are exact below 2**53).
        rows = np.bincount(packed.key, minlength=packed.space)
        present = np.flatnonzero(rows)
        out = packed.unpack(present)
        for name in columns:
            added = np.zeros(packed.space)
            first = 0
            for chunk in table[name].chunks:
                keys_of = packed.key[first : first + len(chunk)]
                added += np.bincount(keys_of, weights=_weights(chunk), minlength=packed.space)
                first += len(chunk)
            out[f"{name}_sum"] = pa.array(added[present].astype(np.int64), pa.int64())
        return pa.table(out)
    order = np.argsort(packed.key, kind="stable")
    ordered = packed.key[order]
    starts = _starts(ordered)
    out = packed.unpack(ordered[starts])
    for name in columns:
        values = _int64s(table[name])
        out[f"{name}_sum"] = pa.array(np.add.reduceat(values[order], starts), pa.int64())
    return pa.table(out)


_MIX: Final = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
Words = np.ndarray[Any, np.dtype[np.uint64]]
#: Slots of :func:`repeated`'s bit table (16 MiB).
_TABLE: Final = 1 << 24
#: Rows fingerprinted at a time (see :func:`fingerprints`).
_SLICE: Final = 65_536


def fingerprints(texts: pa.Array | pa.ChunkedArray) -> Words:
    """A 64-bit fingerprint of each string (no nulls): its length and first and last eight
    bytes, mixed. Equal strings have equal fingerprints; unequal ones rarely do, so the rows
    worth comparing as strings are the few whose fingerprints repeat (:func:`repeated`).

    Worked out :data:`_SLICE` rows at a time: arrays that size come back from the allocator
    warm, where arrays of every row would each be fresh pages the kernel zeroes first.
    """
    chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
    out = np.empty(len(texts), dtype=np.uint64)
    done = 0
    for chunk in chunks:
        for first in range(0, len(chunk), _SLICE):
            part = chunk.slice(first, _SLICE)
            out[done : done + len(part)] = _fingerprints(part)
            done += len(part)
    return out


def _fingerprints(texts: pa.Array) -> Words:
    wide = pa.types.is_large_string(texts.type)
    ends = np.frombuffer(texts.buffers()[1], dtype=np.int64 if wide else np.int32)
    ends = ends[texts.offset : texts.offset + len(texts) + 1]
    raw = texts.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8)
    lo, hi = int(ends[0]), int(ends[-1])
    # The strings' bytes with eight zero bytes either side: every window below lies inside.
    padded = np.concatenate([np.zeros(8, np.uint8), data[lo:hi], np.zeros(8, np.uint8)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 8)
    start = ends[:-1].astype(np.int64) + (8 - lo)
    length = np.diff(ends).astype(np.uint64)
    head = windows[start].view("<u8").ravel()
    tail = windows[start + length.astype(np.int64) - 8].view("<u8").ravel()
    if len(length) and int(length.min()) < 8:
        # Only the string's own bytes of a shorter one (shifts kept under 64 bits: wider
        # ones are undefined).
        missing = np.uint64(8) * (np.uint64(8) - np.minimum(length, np.uint64(8)))
        head = np.where(missing == 64, np.uint64(0), (head << missing % 64) >> missing % 64)
        tail = np.where(missing == 64, np.uint64(0), tail >> missing % 64)
    return _mixed(_mixed(head) ^ (tail + length))


def _mixed(z: Words) -> Words:
    """SplitMix64's finaliser: every input bit moves about half the output bits."""
    z = (z ^ (z >> np.uint64(30))) * _MIX[0]
    z = (z ^ (z >> np.uint64(27))) * _MIX[1]
    return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def repeated(values: Words) -> np.ndarray[Any, np.dtype[np.bool_]] | None:
    """Which of ``values`` occur more than once; None if none does. The repeated values are
    found by sorting; their rows by a bit table of their low bits (a few more rows than
    needed), then exactly among those."""
    ordered = np.sort(values)
    again = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(again) == 0:
        return None
    low = np.uint64(_TABLE - 1)
    table = np.zeros(_TABLE, dtype=bool)
    table[again & low] = True
    rows = np.flatnonzero(table[values & low])
    found = np.zeros(len(values), dtype=bool)
    found[rows[np.isin(values[rows], again)]] = True
    return found
