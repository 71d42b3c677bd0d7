"""Event schemas: every bad input is refused with an error naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from analytics.schemas import (
    ANALYTICS_EVENT_ADAPTER,
    EVENT_MODELS,
    MAX_WATCH_SECONDS,
    SCHEMAS,
    EventSchemaError,
    OrderPaidV1,
    OrderRefundedV1,
    ViewerHeartbeatV1,
    from_bus_event,
    parse_event,
    to_bus_event,
)
from livebase.bus import Event, decode_event, encode_event

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def envelope(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "version": 1,
        "event_id": "e-1",
        "occurred_at": "2025-05-01T11:59:00+00:00",
        "base": "haifeng",
        "room": "studio-1",
        "session_id": 7,
        **fields,
    }


PAID = envelope(
    "order.paid",
    order_id="o-1",
    platform="youzan",
    buyer_id="b-1",
    product_id=3,
    amount_fen=9_900,
    viewer_id="v-1",
    viewer_source="player",
)

# One valid example of every schema, so that each is exercised and round-tripped.
EXAMPLES: dict[tuple[str, int], dict[str, Any]] = {
    ("stream.started", 1): envelope("stream.started", host_id=2, theme="gi-produce"),
    ("stream.ended", 1): envelope("stream.ended"),
    ("viewer.joined", 1): envelope("viewer.joined", viewer_id="v-1"),
    ("viewer.heartbeat", 1): envelope("viewer.heartbeat", viewer_id="v-1", watch_seconds=30),
    ("viewer.left", 1): envelope("viewer.left", viewer_id="v-1", source="douyin", watch_seconds=0),
    ("interaction.liked", 1): envelope("interaction.liked", viewer_id="v-1", count=12),
    ("interaction.commented", 1): envelope("interaction.commented", viewer_id="v-1"),
    ("interaction.shared", 1): envelope("interaction.shared", viewer_id="v-1"),
    ("interaction.followed", 1): envelope("interaction.followed", viewer_id="v-1"),
    ("product.impressed", 1): envelope("product.impressed", product_id=3, count=40),
    ("product.clicked", 1): envelope("product.clicked", product_id=3, viewer_id="v-1"),
    ("order.created", 1): {**PAID, "type": "order.created"},
    ("order.paid", 1): PAID,
    ("order.refunded", 1): envelope(
        "order.refunded", order_id="o-1", refund_id="r-1", platform="youzan", amount_fen=500
    ),
}


def test_every_schema_has_an_example() -> None:
    assert set(EXAMPLES) == set(SCHEMAS)
    assert len(SCHEMAS) == len(EVENT_MODELS)


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_examples_parse_and_round_trip_through_the_bus(key: tuple[str, int]) -> None:
    event = parse_event(EXAMPLES[key], now=NOW)
    assert (event.type, event.version) == key
    assert isinstance(event, SCHEMAS[key])
    # Through the bus's own wire format and back, unchanged.
    wire = encode_event(to_bus_event(event))
    assert from_bus_event(decode_event(wire), now=NOW) == event
    # The discriminated union picks the same model.
    assert ANALYTICS_EVENT_ADAPTER.validate_python(EXAMPLES[key]) == event


def test_bus_mapping_puts_the_envelope_on_the_bus_event() -> None:
    bus_event = to_bus_event(parse_event(PAID, now=NOW))
    assert (bus_event.type, bus_event.id, bus_event.base, bus_event.version) == (
        "order.paid",
        "e-1",
        "haifeng",
        1,
    )
    assert bus_event.occurred_at == datetime(2025, 5, 1, 11, 59, tzinfo=UTC)
    assert bus_event.data["amount_fen"] == 9_900
    assert "event_id" not in bus_event.data and "type" not in bus_event.data


def test_times_are_normalised_to_utc() -> None:
    event = parse_event({**PAID, "occurred_at": "2025-05-01T19:59:00+08:00"}, now=NOW)
    assert event.occurred_at == datetime(2025, 5, 1, 11, 59, tzinfo=UTC)
    assert event.occurred_at.tzinfo is UTC


def test_version_defaults_to_one() -> None:
    raw = dict(PAID)
    del raw["version"]
    assert parse_event(raw, now=NOW).version == 1


def test_extra_fields_from_a_newer_producer_are_ignored() -> None:
    assert parse_event({**PAID, "coupon_fen": 100}, now=NOW) == parse_event(PAID, now=NOW)


def fails(raw: Any, *, now: datetime = NOW) -> EventSchemaError:
    with pytest.raises(EventSchemaError) as caught:
        parse_event(raw, now=now)
    return caught.value


def test_unknown_type() -> None:
    error = fails(envelope("order.teleported"))
    assert error.fields == ("type",)
    assert "unknown event type 'order.teleported'" in str(error)
    assert "order.paid" in str(error)  # the known types are listed


def test_missing_type() -> None:
    raw = dict(PAID)
    del raw["type"]
    assert fails(raw).fields == ("type",)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_unknown_version(version: object) -> None:
    error = fails({**PAID, "version": version})
    assert error.fields == ("version",)
    assert "known: 1" in str(error)


@pytest.mark.parametrize(
    "field", ["event_id", "base", "room", "session_id", "order_id", "buyer_id"]
)
def test_missing_ids(field: str) -> None:
    raw = dict(PAID)
    del raw[field]
    error = fails(raw)
    assert error.fields == (field,)
    assert f"{field}: Field required" in str(error)


def test_empty_id() -> None:
    assert fails({**PAID, "order_id": ""}).fields == ("order_id",)


def test_naive_time() -> None:
    error = fails({**PAID, "occurred_at": "2025-05-01T11:59:00"})
    assert error.fields == ("occurred_at",)
    assert "timezone-aware" in str(error)


def test_naive_datetime_object() -> None:
    assert fails({**PAID, "occurred_at": datetime(2025, 5, 1, 11, 59)}).fields == ("occurred_at",)


def test_future_time_beyond_skew() -> None:
    error = fails({**PAID, "occurred_at": (NOW + timedelta(minutes=6)).isoformat()})
    assert error.fields == ("occurred_at",)
    assert "360 s in the future (allowed skew 300 s)" in str(error)


def test_small_skew_is_tolerated() -> None:
    ahead = NOW + timedelta(minutes=4)
    assert parse_event({**PAID, "occurred_at": ahead}, now=NOW).occurred_at == ahead


def test_future_check_applies_through_the_bus_too() -> None:
    bus_event = to_bus_event(parse_event(PAID, now=NOW))
    with pytest.raises(EventSchemaError, match="occurred_at"):
        from_bus_event(bus_event, now=NOW - timedelta(hours=1))


@pytest.mark.parametrize("amount", [-1, -9_900])
def test_negative_amount(amount: int) -> None:
    error = fails({**PAID, "amount_fen": amount})
    assert error.fields == ("amount_fen",)
    assert "greater than or equal to 0" in str(error)


@pytest.mark.parametrize("amount", [99.5, 100.0, "100", True])
def test_amount_must_be_whole_fen(amount: object) -> None:
    assert fails({**PAID, "amount_fen": amount}).fields == ("amount_fen",)


def test_refund_must_return_money() -> None:
    assert fails({**EXAMPLES[("order.refunded", 1)], "amount_fen": 0}).fields == ("amount_fen",)


def test_currency_code() -> None:
    assert fails({**PAID, "currency": "rmb"}).fields == ("currency",)


def test_viewer_id_and_source_go_together() -> None:
    raw = dict(PAID)
    del raw["viewer_source"]
    assert "viewer_id and viewer_source go together" in str(fails(raw))


@pytest.mark.parametrize("seconds", [0, MAX_WATCH_SECONDS + 1])
def test_heartbeat_watch_seconds_bounds(seconds: int) -> None:
    error = fails(envelope("viewer.heartbeat", viewer_id="v-1", watch_seconds=seconds))
    assert error.fields == ("watch_seconds",)


def test_bad_slug_and_source() -> None:
    error = fails(envelope("viewer.joined", viewer_id="v", base="Hai Feng", source="Douyin!"))
    assert set(error.fields) == {"base", "source"}


def test_every_problem_is_reported_at_once() -> None:
    error = fails({**PAID, "amount_fen": -1, "quantity": 0, "session_id": "x"})
    assert set(error.fields) == {"amount_fen", "quantity", "session_id"}
    assert str(error).startswith("order.paid v1 event e-1: ")


def test_not_an_object() -> None:
    assert fails(["order.paid"]).fields == ("(event)",)


def test_bus_data_must_not_repeat_the_envelope() -> None:
    bus_event = Event(
        type="viewer.joined",
        id="e-9",
        occurred_at=NOW,
        base="haifeng",
        data={"room": "studio-1", "session_id": 1, "viewer_id": "v", "base": "other"},
    )
    with pytest.raises(EventSchemaError, match=r"data\.base: belongs to the envelope"):
        from_bus_event(bus_event, now=NOW)


def test_bus_event_without_base() -> None:
    bus_event = Event(
        type="viewer.joined",
        occurred_at=NOW,
        data={"room": "studio-1", "session_id": 1, "viewer_id": "v"},
    )
    with pytest.raises(EventSchemaError) as caught:
        from_bus_event(bus_event, now=NOW)
    assert caught.value.fields == ("base",)


def test_models_are_usable_directly() -> None:
    beat = ViewerHeartbeatV1(
        event_id="e",
        occurred_at=datetime(2025, 5, 1, 20, 0, tzinfo=timezone(timedelta(hours=8))),
        base="haifeng",
        room="studio-1",
        session_id=1,
        viewer_id="v",
        watch_seconds=30,
    )
    assert beat.type == "viewer.heartbeat"
    assert beat.occurred_at == datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert beat.viewer_key == ("player", "v")
    paid = parse_event(PAID, now=NOW)
    assert isinstance(paid, OrderPaidV1) and paid.buyer_key == ("youzan", "b-1")
    assert not isinstance(paid, OrderRefundedV1)
