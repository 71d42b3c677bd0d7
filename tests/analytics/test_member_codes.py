"""Member numbers of the recompute: each names its member, whichever way they are numbered."""

from __future__ import annotations

import pyarrow as pa
import pytest

from analytics import day_rollups
from analytics.day_columns import KINDS

ROWS = [
    # type, source, viewer_id, platform, buyer_id, viewer_source
    ("viewer.joined", "player", "v1", None, None, None),
    ("viewer.joined", "douyin", "v1", None, None, None),
    ("viewer.heartbeat", "player", "v2", None, None, None),
    ("product.impressed", None, None, None, None, None),
    ("order.paid", None, None, "youzan", "b1", None),
    ("order.paid", None, "v2", "douyin_shop", "v2", "player"),
    ("interaction.liked", "kuaishou", "b1", None, None, None),
]


def events() -> pa.Table:
    names = ["source", "viewer_id", "platform", "buyer_id", "viewer_source"]
    kinds = KINDS.to_pylist()
    codes = pa.array([kinds.index(row[0]) for row in ROWS], pa.int8())
    table = pa.table({"type": pa.DictionaryArray.from_arrays(codes, KINDS)})
    for n, name in enumerate(names, start=1):
        table = table.append_column(name, pa.array([row[n] for row in ROWS], pa.string()))
    # Two chunks, as the day's columns come (a chunk per file).
    return pa.concat_tables([table.slice(0, 3), table.slice(3)])


@pytest.mark.parametrize("sparse", [day_rollups.SPARSE, 0])
def test_every_number_names_its_member(monkeypatch: pytest.MonkeyPatch, sparse: int) -> None:
    """Numbered by id and namespace (the usual way), or numbered again when that would leave
    too many numbers unused (``SPARSE`` 0 forces it): the same members either way, the same
    member under the same number wherever it appears, null where a row names none."""
    monkeypatch.setattr(day_rollups, "SPARSE", sparse)
    coded, namespaces, ids = day_rollups._member_codes(events())

    def named(column: str) -> list[tuple[str, str] | None]:
        return [
            None if n is None else (namespaces[n].as_py(), ids[n].as_py())
            for n in coded[column].to_pylist()
        ]

    assert named("viewer") == [
        ("player", "v1"), ("douyin", "v1"), ("player", "v2"), None, None, None, ("kuaishou", "b1"),
    ]  # fmt: skip
    assert named("buyer") == [None] * 4 + [("youzan", "b1"), ("douyin_shop", "v2")] + [None]
    assert named("paying") == [None] * 5 + [("player", "v2"), None]
    assert coded["paying"][5] == coded["viewer"][2]
    if sparse == 0:
        assert len(ids) == len(set(zip(namespaces.to_pylist(), ids.to_pylist(), strict=True)))


def test_a_day_naming_no_member_has_no_numbers() -> None:
    kinds = KINDS.to_pylist()
    codes = pa.array([kinds.index("product.impressed")] * 3, pa.int8())
    table = pa.table({"type": pa.DictionaryArray.from_arrays(codes, KINDS)})
    for name in ["source", "viewer_id", "platform", "buyer_id", "viewer_source"]:
        table = table.append_column(name, pa.nulls(3, pa.string()))
    coded, namespaces, ids = day_rollups._member_codes(table)
    assert [coded[c].null_count for c in ("viewer", "buyer", "paying")] == [3, 3, 3]
    assert (len(namespaces), len(ids)) == (0, 0)
