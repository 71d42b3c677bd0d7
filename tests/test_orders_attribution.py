"""Crediting orders: the pure rules over hand-made pin timelines, and tracking ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from livebase.orders.attribution import (
    CheckedTracking,
    Credit,
    PinSpan,
    credit,
    parse_ref,
    pin_credit,
    tracking_refs,
)

T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=30)
SQUID, TEA = 11, 12


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def span(pin: int, session: int, product: int, start: float, end: float | None) -> PinSpan:
    return PinSpan(
        pin, session, 100 + session, product, at(start), None if end is None else at(end)
    )


def credited(placed: float, products: set[int], spans: list[PinSpan], window=WINDOW) -> tuple:
    found = pin_credit(at(placed), products, spans, window)
    return (found.session_id, found.product_id) if found else None


def test_the_pin_live_when_the_order_was_placed() -> None:
    spans = [span(1, 1, SQUID, 0, 10), span(2, 1, TEA, 10, 20), span(3, 1, SQUID, 20, None)]
    assert credited(5, {SQUID}, spans) == (1, SQUID)
    assert credited(15, {TEA}, spans) == (1, TEA)
    assert credited(25, {SQUID}, spans) == (1, SQUID)
    found = pin_credit(at(25), {SQUID}, spans, WINDOW)
    assert found == Credit(1, 101, SQUID, "pin")


def test_of_two_live_pins_the_one_pinned_last_wins() -> None:
    spans = [span(1, 1, SQUID, 0, None), span(2, 2, SQUID, 5, None)]
    assert credited(6, {SQUID}, spans) == (2, SQUID)
    assert credited(4, {SQUID}, spans) == (1, SQUID)


def test_an_ended_pin_counts_within_the_window_only() -> None:
    spans = [span(1, 1, SQUID, 0, 10)]
    assert credited(10, {SQUID}, spans) == (1, SQUID)  # ended exactly then
    assert credited(40, {SQUID}, spans) == (1, SQUID)  # 30 minutes after: still in
    assert credited(40.01, {SQUID}, spans) is None
    assert credited(11, {SQUID}, spans, window=timedelta(0)) is None


def test_a_live_pin_beats_one_that_ended_more_recently() -> None:
    spans = [span(1, 1, SQUID, 0, None), span(2, 2, SQUID, 5, 9)]
    assert credited(10, {SQUID}, spans) == (1, SQUID)


def test_of_ended_pins_the_one_that_ended_last_wins() -> None:
    spans = [span(1, 1, SQUID, 0, 8), span(2, 2, SQUID, 1, 9), span(3, 3, SQUID, 2, 7)]
    assert credited(20, {SQUID}, spans) == (2, SQUID)


def test_pins_of_other_products_or_later_pins_do_not_count() -> None:
    spans = [span(1, 1, TEA, 0, None), span(2, 2, SQUID, 30, None)]
    assert credited(10, {SQUID}, spans) is None
    assert credited(10, {SQUID, TEA}, spans) == (1, TEA)  # an order of both products


def test_tracking_values_name_our_ids_or_nothing() -> None:
    assert [parse_ref(v) for v in ("42", "ls-42", " 7 ", "lp-2147483647")] == [42, 42, 7, 2**31 - 1]
    for foreign in ("host-shanwei-07", "0", "ls-0", "2147483648", "-3", "4a", "", None, "ls--4"):
        assert parse_ref(foreign) is None, foreign
    refs = tracking_refs({"lb_session": "ls-5", "lb_host": "h-1", "lb_product": "x"})
    assert (refs.session_id, refs.host_id, refs.product_id) == (5, 1, None)


@pytest.mark.parametrize(
    ("tracking", "want"),
    [
        (CheckedTracking(7, 70, 71, 72), Credit(7, 71, 72, "tracking")),
        (CheckedTracking(7, 70, None, None), Credit(7, 70, SQUID, "tracking")),
        (None, Credit(1, 101, SQUID, "pin")),
    ],
)
def test_checked_tracking_wins_and_falls_back_field_by_field(
    tracking: CheckedTracking | None, want: Credit
) -> None:
    spans = [span(1, 1, SQUID, 0, None)]
    assert credit(tracking, at(5), {SQUID}, spans, WINDOW, SQUID) == want


def test_nothing_matches_the_order_keeps_its_product_only() -> None:
    assert credit(None, at(5), {SQUID}, [], WINDOW, SQUID) == Credit(None, None, SQUID, "")
