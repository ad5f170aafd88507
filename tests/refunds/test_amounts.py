"""Refund amounts exactly as DESIGN.md section 7 (refunds/amounts.py, pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from refunds.amounts import (
    LineUnits,
    OrderMoney,
    RefundPolicy,
    line_units_value,
    minor_units,
    refund_amount,
    unit_discount_shares,
)
from rma.money import format_amount

D = Decimal


def order(
    currency="USD",
    *,
    included=False,
    taxes="0",
    subtotal="100.00",
    shipping="0",
    remaining="1000000",
):
    return OrderMoney(
        currency=currency,
        taxes_included=included,
        taxes=D(taxes),
        net_subtotal=D(subtotal),
        shipping=D(shipping),
        remaining=D(remaining),
    )


def units(
    price,
    qty,
    *,
    line_qty=None,
    discount="0",
    first=0,
    line_id="li_1",
    exchange=False,
    replacement=None,
):
    return LineUnits(
        line_id=line_id,
        unit_price=D(price),
        discount=D(discount),
        line_quantity=line_qty if line_qty is not None else qty,
        quantity=qty,
        first_unit=first,
        exchange=exchange,
        replacement_unit_price=None if replacement is None else D(replacement),
    )


@pytest.mark.parametrize(
    ("discount", "qty", "currency", "expected"),
    [
        ("10.00", 3, "USD", ["3.34", "3.33", "3.33"]),
        ("0.05", 3, "USD", ["0.02", "0.02", "0.01"]),
        ("100", 3, "JPY", ["34", "33", "33"]),
        ("1.000", 3, "KWD", ["0.334", "0.333", "0.333"]),
        ("9.00", 3, "USD", ["3.00", "3.00", "3.00"]),
        ("0", 2, "USD", ["0.00", "0.00"]),
    ],
)
def test_largest_remainder_shares(discount, qty, currency, expected):
    shares = unit_discount_shares(D(discount), qty, currency)
    assert [format_amount(s, currency) for s in shares] == expected
    assert sum(shares) == D(discount)


def test_units_take_the_next_unconsumed_shares():
    first, values = line_units_value(
        units("20.00", 1, line_qty=3, discount="10.00", first=0), "USD"
    )
    assert (first, values) == (D("16.66"), (D("16.66"),))
    second, _ = line_units_value(units("20.00", 2, line_qty=3, discount="10.00", first=1), "USD")
    assert second == D("33.34")
    assert first + second == D("50.00")  # 3 x 20.00 - 10.00: never more than the line's net


def test_tax_exclusive_order_adds_units_share_of_taxes():
    result = refund_amount(
        lines=[units("50.00", 1, line_qty=2)], order=order(taxes="8.00"), policy=RefundPolicy()
    )
    assert (result.units_net, result.tax, result.amount) == (D("50.00"), D("4.00"), D("54.00"))
    assert result.breakdown()["amount"] == "54.00"


def test_tax_share_is_exact_and_rounded_once():
    # 7.77 x 33.33 / 90.00 = 2.87751 -> 2.88 (rounding per unit would give 3 x 0.96 = 2.88 or drift)
    result = refund_amount(
        lines=[units("11.11", 3, line_qty=3)],
        order=order(taxes="7.77", subtotal="90.00"),
        policy=RefundPolicy(),
    )
    assert (result.units_net, result.tax, result.amount) == (D("33.33"), D("2.88"), D("36.21"))


def test_tax_half_up_rounding():
    # 1.00 x 12.50 / 20.00 = 0.625 -> 0.63 (ROUND_HALF_UP, not banker's 0.62)
    result = refund_amount(
        lines=[units("12.50", 1)],
        order=order(taxes="1.00", subtotal="20.00"),
        policy=RefundPolicy(),
    )
    assert result.tax == D("0.63")


def test_tax_inclusive_order_adds_nothing():
    result = refund_amount(
        lines=[units("54.00", 1, line_qty=2)],
        order=order(included=True, taxes="9.00"),
        policy=RefundPolicy(),
    )
    assert (result.tax, result.amount) == (D("0.00"), D("54.00"))


def test_tenant_may_switch_tax_refund_off():
    result = refund_amount(
        lines=[units("50.00", 1)],
        order=order(taxes="8.00"),
        policy=RefundPolicy(refund_taxes=False),
    )
    assert result.amount == D("50.00")


def test_partial_quantity_with_discount_and_tax():
    # Line 3 x 20.00, discount 10.00 -> net 50.00; order taxes 5.00 on 50.00; return unit 0.
    result = refund_amount(
        lines=[units("20.00", 1, line_qty=3, discount="10.00")],
        order=order(taxes="5.00", subtotal="50.00"),
        policy=RefundPolicy(),
    )
    assert (result.units_net, result.tax, result.amount) == (D("16.66"), D("1.67"), D("18.33"))


def test_jpy_amounts_have_no_decimals():
    result = refund_amount(
        lines=[units("9899", 1)],
        order=order("JPY", taxes="990", subtotal="9899"),
        policy=RefundPolicy(),
    )
    assert result.amount == D("10889")
    assert result.breakdown()["amount"] == "10889"
    assert format_amount(result.units_net, "JPY") == "9899"
    assert minor_units(D("9899"), "JPY") == 9899


def test_jpy_discount_shares():
    result = refund_amount(
        lines=[units("3000", 1, line_qty=3, discount="100", first=1)],
        order=order("JPY", included=True, subtotal="8900"),
        policy=RefundPolicy(),
    )
    assert result.amount == D("2967")


def test_kwd_three_decimals():
    result = refund_amount(
        lines=[units("1.500", 1, line_qty=2)],
        order=order("KWD", included=True, subtotal="3.000"),
        policy=RefundPolicy(),
    )
    assert result.breakdown()["amount"] == "1.500"
    assert minor_units(D("1.5"), "KWD") == 1500
    taxed = refund_amount(
        lines=[units("1.500", 1, line_qty=2)],
        order=order("KWD", taxes="0.150", subtotal="3.000"),
        policy=RefundPolicy(),
    )
    assert taxed.breakdown()["amount"] == "1.575"


def test_cap_by_what_is_left_on_the_order():
    # total 108.00 - export refunded 60.00 - other returns 0 -> 48.00 left; 54.00 asked
    result = refund_amount(
        lines=[units("50.00", 1, line_qty=2)],
        order=order(taxes="8.00", remaining="48.00"),
        policy=RefundPolicy(),
    )
    assert (result.uncapped, result.cap, result.amount, result.capped) == (
        D("54.00"),
        D("48.00"),
        D("48.00"),
        True,
    )


def test_nothing_left_caps_to_zero():
    result = refund_amount(
        lines=[units("50.00", 1)], order=order(remaining="-3.00"), policy=RefundPolicy()
    )
    assert (result.cap, result.amount) == (D("0.00"), D("0.00"))


def test_restocking_fee_percent_and_fixed_and_label_cost():
    result = refund_amount(
        lines=[units("50.00", 1)],
        order=order(),
        policy=RefundPolicy(
            restocking_fee_percent=D("10"), restocking_fee_fixed=D("2.50"), deduct_label_cost=True
        ),
        label_cost=D("7.99"),
    )
    assert (result.restocking_fee, result.label_cost, result.amount) == (
        D("7.50"),
        D("7.99"),
        D("34.51"),
    )


def test_label_cost_not_deducted_unless_policy_says_so():
    result = refund_amount(
        lines=[units("50.00", 1)], order=order(), policy=RefundPolicy(), label_cost=D("7.99")
    )
    assert result.amount == D("50.00")


def test_never_below_zero():
    result = refund_amount(
        lines=[units("5.00", 1)],
        order=order(),
        policy=RefundPolicy(restocking_fee_fixed=D("10.00")),
    )
    assert result.amount == D("0.00")


def test_shipping_only_when_tenant_says_so_and_once():
    money = order(shipping="6.95")
    assert refund_amount(
        lines=[units("50.00", 1)], order=money, policy=RefundPolicy()
    ).shipping == D("0.00")
    with_ship = refund_amount(
        lines=[units("50.00", 1)], order=money, policy=RefundPolicy(refund_shipping=True)
    )
    assert (with_ship.shipping, with_ship.amount) == (D("6.95"), D("56.95"))
    taken = OrderMoney(**{**money.__dict__, "shipping_already_refunded": True})
    assert refund_amount(
        lines=[units("50.00", 1)], order=taken, policy=RefundPolicy(refund_shipping=True)
    ).shipping == D("0.00")


def test_exchange_lines_are_not_refunded_and_record_the_difference():
    result = refund_amount(
        lines=[
            units("40.00", 1, line_id="a"),
            units(
                "30.00",
                2,
                line_qty=2,
                discount="5.00",
                line_id="b",
                exchange=True,
                replacement="32.00",
            ),
        ],
        order=order(included=True),
        policy=RefundPolicy(),
    )
    assert result.amount == D("40.00")
    # 2 x 32.00 - (30.00 - 2.50) x 2 = 64.00 - 55.00
    assert result.exchange_price_difference == D("9.00")
    assert result.breakdown()["lines"][1]["price_difference"] == "9.00"


def test_exchange_only_is_zero():
    result = refund_amount(
        lines=[units("30.00", 1, exchange=True)], order=order(taxes="3.00"), policy=RefundPolicy()
    )
    assert (result.amount, result.tax, result.exchange_price_difference) == (
        D("0.00"),
        D("0.00"),
        None,
    )


def test_store_credit_bonus_is_outside_the_cap():
    result = refund_amount(
        lines=[units("50.00", 1)],
        order=order(remaining="45.00"),
        policy=RefundPolicy(store_credit_bonus_percent=D("10")),
    )
    assert (result.amount, result.bonus) == (D("45.00"), D("4.50"))


def test_breakdown_formats_every_amount():
    b = refund_amount(
        lines=[units("50.00", 1)], order=order(taxes="8.00"), policy=RefundPolicy()
    ).breakdown()
    assert b == {
        "currency": "USD",
        "units_net": "50.00",
        "tax": "4.00",
        "shipping": "0.00",
        "restocking_fee": "0.00",
        "label_cost": "0.00",
        "uncapped": "54.00",
        "cap": "1000000.00",
        "capped": False,
        "amount": "54.00",
        "bonus": "0.00",
        "exchange_price_difference": None,
        "lines": [
            {
                "line_id": "li_1",
                "quantity": 1,
                "net": "50.00",
                "unit_values": ["50.00"],
                "exchange": False,
                "price_difference": None,
            }
        ],
    }
