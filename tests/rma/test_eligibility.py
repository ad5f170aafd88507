"""rma.eligibility: the returnable quantity or the reason in plain words, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rma.eligibility import (
    Ineligible,
    LineFacts,
    OrderFacts,
    PolicyFacts,
    WindowBasis,
    available_units,
    line_eligibility,
    return_window,
)

POLICY = PolicyFacts.build(
    window_days=30,
    skus=["FINAL-1", " Gift-Wrap "],
    tags=["Final Sale"],
    time_zone="America/New_York",
)
PLACED = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
FULFILLED = datetime(2026, 10, 3, 16, 0, tzinfo=UTC)
DELIVERED = datetime(2026, 10, 6, 18, 0, tzinfo=UTC)


def line(**kw):
    base = {"line_id": "li_1", "sku": "SHOE-1", "quantity": 3, "fulfilled_quantity": 3}
    base.update(kw)
    return LineFacts(**base)


def order(**kw):
    base = {"placed_at": PLACED, "fulfilled_at": FULFILLED, "delivered_at": DELIVERED}
    base.update(kw)
    return OrderFacts(**base)


def check(line_facts, order_facts=None, now=None, policy=POLICY):
    order_facts = order_facts or order()
    window = return_window(order_facts, policy)
    return line_eligibility(
        line_facts, order_facts, policy, window, now or DELIVERED + timedelta(days=1)
    )


def test_window_counts_from_delivery_then_fulfillment_then_order_date():
    w = return_window(order(), POLICY)
    assert w.basis == WindowBasis.DELIVERY and w.starts_at == DELIVERED
    # 2026-10-06 18:00 UTC is 14:00 in New York; 30 days later, through the end of that day.
    assert w.closes_on == date(2026, 11, 5)
    assert w.closes_at == datetime(2026, 11, 6, 5, 0, tzinfo=UTC)  # midnight EST (after DST ended)
    assert return_window(order(delivered_at=None), POLICY).basis == WindowBasis.FULFILLMENT
    no_dates = return_window(order(delivered_at=None, fulfilled_at=None), POLICY)
    assert no_dates.basis == WindowBasis.ORDER_DATE and no_dates.starts_at == PLACED
    assert "delivery" in w.basis_text


def test_window_edge_is_exclusive_at_local_midnight():
    w = return_window(order(), POLICY)
    assert check(line(), now=w.closes_at - timedelta(seconds=1)).eligible
    late = check(line(), now=w.closes_at)
    assert late.reason == Ineligible.WINDOW_CLOSED
    assert "closed on" in late.message and "2026" in late.message


def test_eligible_line_has_all_units():
    verdict = check(line())
    assert verdict.eligible and verdict.returnable_quantity == 3 and verdict.message == ""


@pytest.mark.parametrize(
    ("facts", "order_kw", "reason", "words"),
    [
        (line(), {"is_cancelled": True}, Ineligible.ORDER_CANCELLED, "cancelled"),
        (line(), {"is_voided": True}, Ineligible.ORDER_CANCELLED, "cancelled"),
        (line(is_gift_card=True), {}, Ineligible.NOT_RETURNABLE_ITEM, "Gift cards"),
        (line(requires_shipping=False), {}, Ineligible.NOT_RETURNABLE_ITEM, "wasn't shipped"),
        (line(fulfilled_quantity=0), {}, Ineligible.NOT_SHIPPED, "Not shipped"),
        (line(sku="final-1"), {}, Ineligible.FINAL_SALE, "Final sale"),
        (line(sku="GIFT-WRAP"), {}, Ineligible.FINAL_SALE, "Final sale"),
        (line(tags=("final sale",)), {}, Ineligible.FINAL_SALE, "Final sale"),
        (line(), {"tags": ("FINAL SALE",)}, Ineligible.FINAL_SALE, "Final sale"),
        (line(units_in_returns=3), {}, Ineligible.ALREADY_RETURNED, "Already returned"),
        (line(refunded_quantity=3), {}, Ineligible.ALREADY_RETURNED, "Already refunded"),
        (
            line(units_in_returns=1, refunded_quantity=2),
            {},
            Ineligible.ALREADY_RETURNED,
            "Already returned",
        ),
    ],
)
def test_ineligible_lines_say_why(facts, order_kw, reason, words):
    verdict = check(facts, order(**order_kw))
    assert verdict.reason == reason
    assert verdict.returnable_quantity == 0 and not verdict.eligible
    assert words in verdict.message


def test_precedence_cancelled_before_final_sale_before_returned_before_window():
    late = DELIVERED + timedelta(days=90)
    assert (
        check(line(sku="FINAL-1", units_in_returns=3), order(is_cancelled=True), late).reason
        == Ineligible.ORDER_CANCELLED
    )
    assert check(line(sku="FINAL-1", units_in_returns=3), now=late).reason == Ineligible.FINAL_SALE
    assert check(line(units_in_returns=3), now=late).reason == Ineligible.ALREADY_RETURNED
    assert check(line(units_in_returns=1), now=late).reason == Ineligible.WINDOW_CLOSED


def test_partial_quantities():
    assert check(line(units_in_returns=1)).returnable_quantity == 2
    assert check(line(refunded_quantity=1, units_in_returns=1)).returnable_quantity == 1
    assert check(line(quantity=3, fulfilled_quantity=2)).returnable_quantity == 2
    # Fulfilled units are capped at the ordered quantity.
    assert check(line(quantity=2, fulfilled_quantity=5)).returnable_quantity == 2


@given(
    quantity=st.integers(0, 50),
    fulfilled=st.integers(0, 60),
    in_returns=st.integers(0, 60),
    refunded=st.integers(0, 60),
)
def test_available_units_is_never_negative_and_never_above_fulfilled(
    quantity, fulfilled, in_returns, refunded
):
    facts = line(
        quantity=quantity,
        fulfilled_quantity=fulfilled,
        units_in_returns=in_returns,
        refunded_quantity=refunded,
    )
    units = available_units(facts)
    assert 0 <= units <= min(quantity, fulfilled)
    assert units == max(0, min(quantity, fulfilled) - in_returns - refunded)
    verdict = check(facts)
    assert verdict.eligible == (verdict.returnable_quantity > 0)
    if verdict.eligible:
        assert verdict.returnable_quantity == units
