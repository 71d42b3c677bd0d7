"""The ingest fast path agrees with ``parse_event``: same verdict, same bus event, every time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest

from analytics.constants import MAX_BATCH_EVENTS
from analytics.fastpath import check_batch, check_decoded, check_documents, decode_body
from analytics.schemas import (
    SCHEMAS,
    EventSchemaError,
    from_bus_event,
    parse_event,
    to_bus_event,
)
from analytics.structs import STRUCTS
from livebase.bus import Delivery
from livebase.bus import events as bus_events

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
FOREVER = timedelta(days=36500)

VALID: dict[str, dict[str, Any]] = {
    "stream.started": {"host_id": 3, "theme": "gi-produce"},
    "stream.ended": {},
    "viewer.joined": {"viewer_id": "v1", "source": "douyin"},
    "viewer.heartbeat": {"viewer_id": "v1", "watch_seconds": 30},
    "viewer.left": {"viewer_id": "v1", "watch_seconds": 0},
    "interaction.liked": {"viewer_id": "v1", "count": 4},
    "interaction.commented": {"viewer_id": "v1"},
    "interaction.shared": {"viewer_id": "v1"},
    "interaction.followed": {"viewer_id": "v1"},
    "product.impressed": {"product_id": 9, "count": 20},
    "product.clicked": {"viewer_id": "v1", "product_id": 9},
    "order.created": {"order_id": "o1", "platform": "youzan", "buyer_id": "b", "amount_fen": 0},
    "order.paid": {
        "order_id": "o1", "platform": "douyin_shop", "buyer_id": "b", "amount_fen": 1990,
        "product_id": 9, "quantity": 2, "currency": "CNY", "viewer_id": "v1",
        "viewer_source": "douyin",
    },
    "order.refunded": {"order_id": "o1", "refund_id": "r1", "platform": "youzan", "amount_fen": 5},
}  # fmt: skip

ODD_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 300, 301, 2**31, 2**63 - 1, 1.0, 19.9, "", "x", "v1", "1",
    "Bad Slug", "ok-slug", "a" * 129, "a" * 128, "CNY", "cny", "douyin", "Douyin", "１２", [], {},
    "2025-05-01T11:59:00Z", "2025-05-01 11:59:00+00:00", "2025-05-01T11:59:00", "20250501T115900Z",
    "2025-05-01T11:59:00.1234567+00:00", "2025-05-01T11:59:00+24:00", "2025-05-01T11:59:00z",
    "2025-02-30T11:59:00Z", "2025-05-01T12:30:00+08:00", "2025-05-01T11:59:60Z", 1746100000,
    "2025-05-01T11:59:00+0800", "٢٠٢٥-05-01T11:59:00Z", "2025-05-01T11:59:00.5-03:30",
]  # fmt: skip


def valid(kind: str) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": "e-1",
        "occurred_at": "2025-05-01T11:59:00.25+08:00",
        "base": "haifeng",
        "room": "studio-1",
        "session_id": 12,
        **VALID[kind],
    }


def verdict(raw: Any) -> tuple[bool, Any]:
    """(accepted, bus event or the set of bad fields) by the schemas and by the fast path;
    what the ingest accepts, the consumers' fast path takes back as the same event."""
    batch = check_batch([raw], now=NOW, lateness=FOREVER)
    try:
        reference = to_bus_event(parse_event(raw, now=NOW))
    except EventSchemaError as exc:
        assert batch.items == [], raw
        assert {p.field for p in batch.problems} == set(exc.fields), raw
        return False, set(exc.fields)
    assert batch.problems == [], (raw, batch.problems)
    (flat,) = bus_events.decode_packed(batch.packed())
    assert orjson.loads(batch.payloads()[0]) == flat
    ((document, moment),) = bus_events.check_documents([flat], "1-0")  # type: ignore[misc]
    assert (document, moment) == (flat, bus_events.parse_times([flat["occurred_at"]])[0]), raw
    delivery = Delivery("analytics", "1-0", None, 1, document=flat)
    assert delivery.event == reference, raw
    ((kind, moment, event),) = check_documents([flat], [NOW], [moment])  # type: ignore[misc]
    expected = from_bus_event(reference, now=NOW)
    assert (kind, moment) == (expected.type, expected.occurred_at), raw
    for name in type(expected).model_fields:
        if name not in ("type", "occurred_at"):
            assert getattr(event, name) == getattr(expected, name), (raw, name)
    return True, reference


def test_the_structs_restate_every_schema() -> None:
    assert set(STRUCTS) == set(SCHEMAS)
    for key, model in SCHEMAS.items():
        struct = msgspec.inspect.type_info(STRUCTS[key])
        assert isinstance(struct, msgspec.inspect.StructType)
        fields = {f.name: f for f in struct.fields}
        assert set(fields) | {"type"} == set(model.model_fields), key
        for name, info in model.model_fields.items():
            if name == "type":
                continue
            assert fields[name].required == info.is_required(), (key, name)
            if not info.is_required():
                assert fields[name].default == info.default, (key, name)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_type_valid_as_given_and_with_defaults(kind: str) -> None:
    assert verdict(valid(kind))[0]
    minimal = {k: v for k, v in valid(kind).items() if k not in ("source", "count", "currency")}
    assert verdict(minimal)[0]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_every_field_with_every_odd_value(kind: str) -> None:
    base = valid(kind)
    names = [*base, "version", "viewer_id", "viewer_source", "product_id", "host_id", "theme"]
    for name in names:
        verdict({k: v for k, v in base.items() if k != name})
        for value in ODD_VALUES:
            verdict({**base, name: value})


def test_random_mutations_agree() -> None:
    rng = random.Random(20250501)
    kinds = sorted(VALID)
    accepted = 0
    for _ in range(3000):
        raw = valid(rng.choice(kinds))
        for _ in range(rng.randint(1, 3)):
            name = rng.choice([*raw, "version", "viewer_id", "viewer_source", "quantity"])
            if rng.random() < 0.2:
                raw.pop(name, None)
            else:
                raw[name] = rng.choice(ODD_VALUES)
        accepted += verdict(raw)[0]
    assert 100 < accepted < 2900  # both verdicts were exercised


def test_future_times_take_the_slow_road_to_the_same_message() -> None:
    raw = {**valid("viewer.joined"), "occurred_at": (NOW + timedelta(minutes=6)).isoformat()}
    assert verdict(raw) == (False, {"occurred_at"})


def test_lateness_and_duplicates() -> None:
    old = {**valid("viewer.joined"), "occurred_at": "2025-04-30T11:00:00Z", "event_id": "old"}
    fresh = valid("viewer.joined")
    batch = check_batch([old, fresh, fresh, "junk"], now=NOW, lateness=timedelta(hours=24))
    assert batch.indices == [1]
    assert batch.duplicates == 1
    assert [(p.index, p.field) for p in batch.problems] == [(0, "occurred_at"), (3, "(event)")]


def test_times_of_a_batch_are_judged_one_by_one() -> None:
    good = ["2025-05-01T11:59:00Z", "2025-05-01T19:59:00.5+08:00"]
    expected = [NOW - timedelta(minutes=1), NOW - timedelta(minutes=1) + timedelta(seconds=0.5)]
    assert bus_events.parse_times(good) == expected
    # One odd value leaves the others as they are; two values in one string are not two.
    odd: list[Any] = [*good, "2025-02-30T11:59:00Z", None, 5, "\n".join(good)]
    assert bus_events.parse_times(odd) == [*expected, None, None, None, None]
    arabic = "٢٠٢٥-05-01T11:59:00Z"  # digits, but not ASCII ones
    assert bus_events.parse_times([*good, arabic]) == [*expected, None]


def same_batch(raw: bytes, *, lateness: timedelta = FOREVER) -> bool:
    """Whether ``POST /api/v1/events``'s fast reading of ``raw`` took it; either way the
    batch it makes is the general road's (orjson, the body model, ``check_batch``)."""
    decoded = decode_body(raw)
    if decoded is None:
        return False
    body = orjson.loads(raw)
    # What the fast reading takes, the body model takes too: an object of only ``events``.
    assert isinstance(body, dict) and list(body) == ["events"], raw
    assert isinstance(body["events"], list) and len(body["events"]) <= MAX_BATCH_EVENTS, raw
    fast = check_decoded(decoded, now=NOW, lateness=lateness)
    general = check_batch(body["events"], now=NOW, lateness=lateness)
    assert fast.packed() == general.packed(), raw
    assert (fast.indices, fast.places) == (general.indices, general.places), raw
    assert (fast.problems, fast.duplicates) == (general.problems, general.duplicates), raw
    return True


def body(events: list[Any]) -> bytes:
    return orjson.dumps({"events": events})


def test_decoded_bodies_agree_with_the_general_road() -> None:
    rng = random.Random(20251129)
    kinds = sorted(VALID)
    taken = 0
    for round_ in range(600):
        events = []
        for i in range(rng.randint(1, 6)):
            raw = {**valid(rng.choice(kinds)), "event_id": f"e-{i}"}
            if rng.random() < 0.5:
                raw["session_id"] = rng.choice([12, 13])
            for _ in range(rng.randint(0, 2)):
                name = rng.choice([*raw, "version", "viewer_id", "viewer_source", "quantity"])
                if rng.random() < 0.2:
                    raw.pop(name, None)
                else:
                    raw[name] = rng.choice(ODD_VALUES)
            events.append(raw)
        taken += same_batch(body(events), lateness=FOREVER if round_ % 2 else timedelta(hours=1))
    assert 50 < taken < 550  # both roads were exercised


def test_odd_bodies_agree_or_take_the_general_road() -> None:
    one = valid("viewer.heartbeat")
    assert same_batch(body([]))
    assert same_batch(body([one, one]))  # a repeated id: the general road counts it
    assert same_batch(body([one, {**one, "event_id": "e-2", "session_id": 13}]))
    assert same_batch(body([{**one, "occurred_at": "2025-04-30T11:00:00Z"}]), lateness=timedelta(1))
    # The last of repeated keys wins in both readings.
    raw = body([one])
    assert same_batch(raw.replace(b'"base":', b'"base":"Bad Slug","base":'))
    assert same_batch(raw.replace(b'"base":', b'"base":"haifeng","base":'))
    assert same_batch(raw.replace(b'{"events":', b'{"events":[],"events":'))
    # Read, but refused by the fast checks: orjson reads a number this wide as a float.
    assert same_batch(raw.replace(b'"session_id":12', b'"session_id":18446744073709551616'))
    # Not read fast: unknown keys, escapes, non-ASCII, other shapes, too many events.
    for odd in (
        raw.replace(b'"base":', b'"extra":1e400,"base":'),
        raw.replace(b"}]}", b'}],"more":1}'),
        raw.replace(b'"v1"', b'"v\\u0031"'),
        raw.replace(b'"v1"', '"v１"'.encode()),
        raw.replace(b'"session_id":12', b'"session_id":12.0'),
        body([{**one, "event_id": f"e-{i}"} for i in range(MAX_BATCH_EVENTS + 1)]),
        b"[]",
        b'{"events":{}}',
    ):
        assert decode_body(odd) is None, odd
