"""Pure order rules (rma/orders.py) and the export's field parsers: no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from rma.importers.shopify import (
    _FieldError,
    parse_amount,
    parse_bool,
    parse_currency,
    parse_quantity,
    parse_tags,
    parse_time,
)
from rma.orders import (
    OrderLineData,
    discount_shares,
    fulfilled_quantity_for,
    infer_taxes_included,
    is_gift_card_line,
    refunded_units,
    units_net_amount,
)

D = Decimal


def line(qty: int, price: str, discount: str = "0", sku: str = "X") -> OrderLineData:
    return OrderLineData(
        sku=sku, title=sku, quantity=qty, unit_price=D(price), discount=D(discount)
    )


# --- discount shares (largest remainder) ----------------------------------
@pytest.mark.parametrize(
    ("discount", "quantity", "currency", "shares"),
    [
        ("10.00", 3, "USD", ["3.34", "3.33", "3.33"]),
        ("10.00", 2, "USD", ["5.00", "5.00"]),
        ("0.02", 3, "USD", ["0.01", "0.01", "0.00"]),
        ("1000", 3, "JPY", ["334", "333", "333"]),
        ("1.001", 2, "KWD", ["0.501", "0.500"]),
        ("0", 2, "EUR", ["0.00", "0.00"]),
    ],
)
def test_discount_shares_largest_remainder(discount, quantity, currency, shares):
    result = discount_shares(discount=D(discount), quantity=quantity, currency=currency)
    assert [str(s) for s in result] == shares
    assert sum(result) == D(discount)


def test_discount_shares_zero_quantity_is_empty():
    assert discount_shares(discount=D("1.00"), quantity=0, currency="USD") == []


# --- units net amount -----------------------------------------------------
def test_units_net_amount_excluding_tax_adds_the_units_tax_share():
    jacket = line(2, "80.00", "10.00")
    amounts = [
        units_net_amount(
            line=jacket,
            units=k,
            currency="USD",
            taxes_included=False,
            order_taxes=D("14.88"),
            order_net_subtotal=D("186.00"),
        )
        for k in (1, 2)
    ]
    assert amounts == [D("81.00"), D("162.00")]


def test_units_net_amount_including_tax_is_price_minus_discount_share():
    tin = line(3, "2400", "300")
    amount = units_net_amount(
        line=tin,
        units=2,
        currency="JPY",
        taxes_included=True,
        order_taxes=D("1000"),
        order_net_subtotal=D("10200"),
    )
    assert amount == D("4600")


def test_units_net_amount_rounds_the_tax_share_once_half_up():
    perfume = line(2, "12.500", "1.001")
    amount = units_net_amount(
        line=perfume,
        units=1,
        currency="KWD",
        taxes_included=False,
        order_taxes=D("0.750"),
        order_net_subtotal=D("31.250"),
    )
    # 12.500 - 0.501 = 11.999; 0.750 x 11.999 / 31.250 = 0.287976 -> total 12.287
    assert amount == D("12.287")


# --- refunded units -------------------------------------------------------
DOCSTRING_LINES = (line(2, "30.00", sku="A"), line(1, "40.00", sku="B"))


@pytest.mark.parametrize(
    ("refunded", "expected"),
    [
        ("32.40", [1, 0]),
        ("64.80", [2, 0]),
        ("43.20", [0, 1]),
        ("10.00", [0, 0]),
        ("0.00", [0, 0]),
        ("32.39", [0, 0]),
    ],
)
def test_refunded_units_docstring_examples(refunded, expected):
    assert (
        refunded_units(
            lines=DOCSTRING_LINES,
            refunded_amount=D(refunded),
            financial_status="partially_refunded",
            currency="USD",
            taxes_included=False,
            order_taxes=D("8.00"),
        )
        == expected
    )


def test_refunded_units_two_matching_pairs_are_ambiguous():
    lines = (line(1, "25.00", sku="A"), line(1, "25.00", sku="B"))
    assert refunded_units(
        lines=lines,
        refunded_amount=D("25.00"),
        financial_status="partially_refunded",
        currency="USD",
        taxes_included=True,
        order_taxes=D("0"),
    ) == [0, 0]


def test_refunded_units_zero_price_lines_never_match():
    lines = (line(3, "0.00", sku="FREE"), line(1, "5.00", sku="B"))
    assert refunded_units(
        lines=lines,
        refunded_amount=D("5.00"),
        financial_status="partially_refunded",
        currency="USD",
        taxes_included=True,
        order_taxes=D("0"),
    ) == [0, 1]


def test_refunded_units_fully_refunded_status_marks_every_unit():
    assert refunded_units(
        lines=DOCSTRING_LINES,
        refunded_amount=D("1.00"),
        financial_status="Refunded",
        currency="USD",
        taxes_included=False,
        order_taxes=D("8.00"),
    ) == [2, 1]


# --- tax inclusion --------------------------------------------------------
@pytest.mark.parametrize(
    ("subtotal", "shipping", "taxes", "duties", "total", "included", "consistent"),
    [
        ("186.00", "7.50", "14.88", "0", "208.38", False, True),
        ("98.00", "4.90", "16.43", "0", "102.90", True, True),
        ("95.00", "0.00", "0.00", "0", "95.00", False, True),
        ("100.00", "10.00", "8.00", "5.00", "123.00", False, True),
        ("100.00", "10.00", "16.67", "5.00", "115.00", True, True),
        ("50.00", "5.00", "9.17", "0", "57.00", True, False),
        ("50.00", "5.00", "9.17", "0", "63.00", False, False),
    ],
)
def test_infer_taxes_included(subtotal, shipping, taxes, duties, total, included, consistent):
    answer = infer_taxes_included(
        subtotal=D(subtotal),
        shipping=D(shipping),
        taxes=D(taxes),
        duties=D(duties),
        total=D(total),
        currency="EUR",
    )
    assert (answer.taxes_included, answer.consistent) == (included, consistent)
    assert bool(answer.detail) is not consistent


# --- lines ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("title", "requires_shipping", "expected"),
    [
        ("Digital Gift Card - $50", False, True),
        ("Geschenkkarte 25 EUR", False, True),
        ("ギフトカード", False, True),
        ("Gift Wrap", False, False),
        ("Gift Card Holder (leather)", True, False),
        ("Setup service", False, False),
    ],
)
def test_is_gift_card_line(title, requires_shipping, expected):
    assert is_gift_card_line(title=title, requires_shipping=requires_shipping) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [("fulfilled", 3), ("Fulfilled", 3), ("partial", 0), ("pending", 0), ("", 0), ("restocked", 0)],
)
def test_fulfilled_quantity_for(status, expected):
    assert fulfilled_quantity_for(status, 3) == expected


# --- field parsers --------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01 09:14:58 -0400", datetime(2026, 10, 1, 13, 14, 58, tzinfo=UTC)),
        ("2026-10-01 09:14 +0530", datetime(2026, 10, 1, 3, 44, tzinfo=UTC)),
        ("2026-10-11T08:30:00+09:00", datetime(2026, 10, 10, 23, 30, tzinfo=UTC)),
        ("2026-10-11T08:30:00Z", datetime(2026, 10, 11, 8, 30, tzinfo=UTC)),
        ("  ", None),
    ],
)
def test_parse_time_to_aware_utc(text, expected):
    value = parse_time(text, "Created at")
    assert value == expected
    if value is not None:
        assert value.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2026-13-01 10:00:00 -0400",
            "unparseable date in Created at: '2026-13-01 10:00:00 -0400'",
        ),
        ("04/11/2026 10:00", "unparseable date in Created at: '04/11/2026 10:00'"),
        ("2026-10-20 10:00:00", "date without a UTC offset in Created at: '2026-10-20 10:00:00'"),
    ],
)
def test_parse_time_errors(text, message):
    with pytest.raises(_FieldError) as info:
        parse_time(text, "Created at")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("205.20", "USD", "205.20"),
        ("1,234.50", "USD", "1234.50"),
        ("13200", "JPY", "13200"),
        ("980.5", "JPY", "981"),
        ("7.2505", "KWD", "7.251"),
        ("1.5", "KWD", "1.500"),
        ("", "EUR", "0.00"),
        (".5", "USD", "0.50"),
    ],
)
def test_parse_amount_quantizes_at_the_currency_exponent(text, currency, expected):
    assert str(parse_amount(text, "Total", currency)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12,5x", "bad amount in Total: '12,5x'"),
        ("12,50", "bad amount in Total: '12,50'"),
        ("$12.00", "bad amount in Total: '$12.00'"),
        ("-1.00", "negative amount in Total: '-1.00'"),
        ("NaN", "bad amount in Total: 'NaN'"),
    ],
)
def test_parse_amount_errors(text, message):
    with pytest.raises(_FieldError) as info:
        parse_amount(text, "Total", "USD")
    assert str(info.value) == message


def test_parse_amount_required_blank():
    with pytest.raises(_FieldError, match="missing Total"):
        parse_amount(" ", "Total", "USD", required=True)


def test_parse_quantity():
    assert parse_quantity("2", "q") == 2
    assert parse_quantity("2.0", "q") == 2
    for bad in ("two", "1.5", "-1", "", "inf"):
        with pytest.raises(_FieldError):
            parse_quantity(bad, "q")


def test_parse_bool_currency_tags():
    assert parse_bool("TRUE", "c", default=None) is True
    assert parse_bool("no", "c", default=None) is False
    assert parse_bool("", "c", default=True) is True
    with pytest.raises(_FieldError):
        parse_bool("maybe", "c", default=None)
    assert parse_currency(" kwd ") == "KWD"
    with pytest.raises(_FieldError, match="unknown currency 'XYZ'"):
        parse_currency("XYZ")
    assert parse_tags("vip, loyal, vip,, ") == ("vip", "loyal")


def test_parse_amount_and_quantity_refuse_what_the_columns_cannot_hold():
    """Money columns are Decimal(18, 3): at most 15 digits before the point."""
    assert parse_amount("999999999999999.99", "Total", "USD") == D("999999999999999.99")
    with pytest.raises(_FieldError, match="amount too large in Total"):
        parse_amount("1000000000000000", "Total", "USD")
    assert parse_quantity("1000000", "q") == 1_000_000
    with pytest.raises(_FieldError, match="quantity too large in q"):
        parse_quantity("1000001", "q")
