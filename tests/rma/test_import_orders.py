"""The Shopify orders-export import: `order_import_csv`, `order_upsert` and
`manage.py import_orders`, against the exports in tests/fixtures/orders/
(see build_fixtures.py there for what each file exercises)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rma.importers.shopify import ExportFileError, RowIssue
from rma.models import Customer, Order, OrderLine, OrderSource
from rma.order_services import OrderDataError, order_import_csv, order_upsert
from rma.orders import OrderData, OrderLineData
from tests.factories import ReturnLineFactory, ReturnRequestFactory

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "orders"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_SAMPLE = PROJECT_ROOT.parent / "shared" / "orders" / "shopify_orders_export_sample.csv"
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
D = Decimal


def fixture(name: str) -> Path:
    return FIXTURES / name


def run_import(tenant, name: str):
    return order_import_csv(tenant=tenant, stream_or_path=fixture(name), now=NOW)


def order_of(tenant, number: str) -> Order:
    return Order.objects.get(tenant=tenant, number=number)


def lines_of(order: Order) -> list[tuple]:
    return [
        (
            line.position,
            line.sku,
            line.title,
            line.quantity,
            line.unit_price,
            line.discount,
            line.requires_shipping,
            line.is_gift_card,
            line.fulfilled_quantity,
            line.refunded_quantity,
        )
        for line in order.lines.order_by("position")
    ]


def snapshot(tenant) -> dict[str, list[dict]]:
    """Every stored column of the tenant's orders, lines and customers."""
    return {
        "orders": list(Order.objects.filter(tenant=tenant).order_by("pk").values()),
        "lines": list(OrderLine.objects.filter(tenant=tenant).order_by("pk").values()),
        "customers": list(Customer.objects.filter(tenant=tenant).order_by("pk").values()),
    }


def command(*args: str) -> tuple[str, int]:
    """Run `import_orders`; (stdout, exit status)."""
    out = io.StringIO()
    try:
        call_command("import_orders", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


# --------------------------------------------------------------------------
# basic_bom.csv: UTF-8 with BOM, CRLF, Shopify's 71 columns
# --------------------------------------------------------------------------
def test_import_basic_counts_orders_and_lines(tenant):
    result = run_import(tenant, "basic_bom.csv")
    assert (result.created, result.updated, result.unchanged, result.failed) == (8, 0, 0, 0)
    assert result.lines == 15
    assert result.errors == []
    assert result.warnings == []
    assert result.ok
    assert Order.objects.filter(tenant=tenant).count() == 8
    assert OrderLine.objects.filter(tenant=tenant).count() == 15
    assert list(
        Order.objects.filter(tenant=tenant).order_by("pk").values_list("number", flat=True)
    ) == [
        "#1001",
        "#1002",
        "#1003",
        "#1004",
        "#1005",
        "#1006",
        "#1007",
        "#1008",
    ]


def test_import_basic_order_fields_exact(tenant):
    run_import(tenant, "basic_bom.csv")
    order = order_of(tenant, "#1001")
    assert order.number_key == "1001"
    assert order.shopify_id == "5550000001001"
    assert order.source == OrderSource.SHOPIFY_CSV
    assert order.email == "Maren.Holt@Example.com"
    assert order.customer.email_normalized == "maren.holt@example.com"
    assert order.customer.name == "Maren Holt"
    assert order.currency == "USD"
    assert order.placed_at == datetime(2026, 10, 1, 13, 14, 58, tzinfo=UTC)
    assert order.paid_at == datetime(2026, 10, 1, 13, 15, 2, tzinfo=UTC)
    assert order.fulfilled_at == datetime(2026, 10, 2, 18, 0, tzinfo=UTC)
    assert order.cancelled_at is None
    assert (order.subtotal, order.shipping, order.taxes, order.total) == (
        D("186.00"),
        D("7.50"),
        D("14.88"),
        D("208.38"),
    )
    assert (order.discount_code, order.discount_amount) == ("TRAIL10", D("10.00"))
    assert (order.refunded_amount, order.outstanding_balance, order.duties) == (
        D("81.00"),
        D("0"),
        D("0"),
    )
    assert order.taxes_included is False
    assert order.financial_status == "partially_refunded"
    assert order.fulfillment_status == "fulfilled"
    assert order.risk_level == "low"
    assert order.tags == ["vip", "loyal"]
    assert order.tax_lines == [{"name": "State Tax 8%", "amount": "14.88"}]
    assert order.accepts_marketing is True
    assert order.source_name == "web"
    assert order.payment_method == "Shopify Payments"
    assert order.payment_reference == "c24681357.1"
    assert order.phone == "+1 207 555 0101"
    assert (
        order.shipping_name,
        order.shipping_address1,
        order.shipping_address2,
        order.shipping_city,
        order.shipping_zip,
        order.shipping_province,
        order.shipping_country,
        order.shipping_phone,
        order.shipping_method,
    ) == (
        "Maren Holt",
        "12 Harbour Lane",
        "Apt 3",
        "Portland",
        "04101",
        "ME",
        "US",
        "+1 207 555 0101",
        "Standard",
    )
    assert order.export_extra == {
        "Billing Name": "Maren Holt",
        "Shipping Street": "12 Harbour Lane, Apt 3",
    }
    assert order.source_row == 2
    assert order.imported_at == NOW
    assert (order.is_cancelled, order.is_voided, order.is_returnable_state) == (False, False, True)
    assert lines_of(order) == [
        (1, "TJ-M", "Trail Jacket - M", 2, D("80.00"), D("10.00"), True, False, 2, 1),
        (2, "WS-1", "Wool Socks", 3, D("12.00"), D("0.00"), True, False, 3, 0),
    ]
    jacket = order.lines.get(position=1)
    assert (jacket.compare_at_price, jacket.vendor, jacket.taxable) == (
        D("99.00"),
        "Northwind Outfitters",
        True,
    )
    assert jacket.line_id.startswith("li_")


def test_import_basic_utc_times_and_currencies(tenant):
    run_import(tenant, "basic_bom.csv")
    assert list(
        Order.objects.filter(tenant=tenant)
        .order_by("pk")
        .values_list("number", "currency", "placed_at", "total")
    ) == [
        ("#1001", "USD", datetime(2026, 10, 1, 13, 14, 58, tzinfo=UTC), D("208.38")),
        ("#1002", "EUR", datetime(2026, 10, 3, 16, 30, tzinfo=UTC), D("102.90")),
        ("#1003", "USD", datetime(2026, 10, 4, 15, 0, tzinfo=UTC), D("82.40")),
        ("#1004", "USD", datetime(2026, 10, 5, 14, 0, tzinfo=UTC), D("95.00")),
        ("#1005", "USD", datetime(2026, 10, 6, 12, 0, tzinfo=UTC), D("38.88")),
        ("#1006", "EUR", datetime(2026, 10, 7, 8, 59, tzinfo=UTC), D("240.00")),
        ("#1007", "GBP", datetime(2026, 10, 8, 19, 9, 31, tzinfo=UTC), D("68.95")),
        ("#1008", "USD", datetime(2026, 10, 9, 13, 44, tzinfo=UTC), D("139.60")),
    ]


def test_import_basic_taxes_included_inferred_from_totals(tenant):
    run_import(tenant, "basic_bom.csv")
    flags = dict(Order.objects.filter(tenant=tenant).values_list("number", "taxes_included"))
    assert flags == {
        "#1001": False,  # 186.00 + 7.50 + 14.88 = 208.38
        "#1002": True,  # 98.00 + 4.90 = 102.90, tax 16.43 inside
        "#1003": False,
        "#1004": False,  # no tax at all
        "#1005": False,
        "#1006": True,
        "#1007": True,
        "#1008": False,
    }


def test_import_basic_cancelled_voided_and_no_email(tenant):
    run_import(tenant, "basic_bom.csv")
    voided = order_of(tenant, "#1004")
    assert (voided.is_cancelled, voided.is_voided, voided.is_returnable_state) == (
        True,
        True,
        False,
    )
    assert voided.cancelled_at == datetime(2026, 10, 5, 15, 0, tzinfo=UTC)
    assert (voided.financial_status, voided.fulfillment_status) == ("voided", "unfulfilled")
    assert voided.paid_at is None
    assert (voided.risk_level, voided.tags) == ("high", ["fraud-check"])
    assert lines_of(voided) == [
        (1, "RB-42", "Rain Boots - 42", 1, D("95.00"), D("0.00"), True, False, 0, 0)
    ]
    pos = order_of(tenant, "#1005")
    assert (pos.email, pos.customer, pos.risk_level, pos.source_name) == ("", None, "", "pos")
    assert pos.export_extra == {
        "Employee": "Store Staff 1",
        "Location": "Harbour Street Store",
        "Device ID": "4021",
        "Receipt Number": "R-0001",
    }
    assert pos.accepts_marketing is None


def test_import_basic_gift_cards_and_lines_that_do_not_ship(tenant):
    run_import(tenant, "basic_bom.csv")
    order = order_of(tenant, "#1003")
    assert lines_of(order) == [
        (1, "GC-50", "Digital Gift Card - $50", 1, D("50.00"), D("0.00"), False, True, 1, 0),
        (2, "CT-1", "Canvas Tote", 1, D("25.00"), D("0.00"), True, False, 1, 0),
        (3, "GW", "Gift Wrap", 1, D("5.00"), D("0.00"), False, False, 1, 0),
    ]
    assert [line.is_returnable_kind for line in order.lines.order_by("position")] == [
        False,
        True,
        False,
    ]
    assert [line.taxable for line in order.lines.order_by("position")] == [False, True, True]


def test_import_basic_fulfilment_per_line(tenant):
    run_import(tenant, "basic_bom.csv")
    order = order_of(tenant, "#1006")
    assert order.fulfillment_status == "partial"
    assert [
        (line.sku, line.fulfillment_status, line.quantity, line.fulfilled_quantity)
        for line in order.lines.order_by("position")
    ] == [
        ("LS-S", "fulfilled", 1, 1),
        ("LT-S", "partial", 2, 0),  # how many shipped is unknown: none offered
        ("LC-1", "pending", 1, 0),
    ]


def test_import_basic_refunded_units(tenant):
    run_import(tenant, "basic_bom.csv")
    refunded = {
        (number, sku): qty
        for number, sku, qty in OrderLine.objects.filter(tenant=tenant).values_list(
            "order__number", "sku", "refunded_quantity"
        )
    }
    assert refunded == {
        # 81.00 = one jacket: 80.00 - 5.00 discount share + 14.88 x 75/186 tax share
        ("#1001", "TJ-M"): 1,
        ("#1001", "WS-1"): 0,
        # 49.00 is one scarf or one hat: ambiguous, nothing marked
        ("#1002", "MS-1"): 0,
        ("#1002", "MH-1"): 0,
        ("#1003", "GC-50"): 0,
        ("#1003", "CT-1"): 0,
        ("#1003", "GW"): 0,
        ("#1004", "RB-42"): 0,
        ("#1005", "EM-1"): 0,
        ("#1006", "LS-S"): 0,
        ("#1006", "LT-S"): 0,
        ("#1006", "LC-1"): 0,
        # financial status "refunded": every unit
        ("#1007", "LB-1"): 1,
        ("#1007", "BB-1"): 2,
        # 10.00 (a shipping refund) matches no units
        ("#1008", "CS-1"): 0,
    }
    assert order_of(tenant, "#1002").refunded_amount == D("49.00")
    assert order_of(tenant, "#1008").refunded_amount == D("10.00")


def test_import_basic_customers(tenant):
    run_import(tenant, "basic_bom.csv")
    assert sorted(
        Customer.objects.filter(tenant=tenant).values_list("email_normalized", "name")
    ) == [
        ("ines.duarte@example.pt", "Inês Duarte"),
        ("jonas.weber@example.de", "Jonas Weber"),
        ("lena.fischer@example.com", "Lena Fischer"),
        ("maren.holt@example.com", "Maren Holt"),
        ("priya.raman@example.com", "Priya Raman"),
        ("sam.okafor@example.co.uk", "Sam Okafor"),
        ("tomas.ruiz@example.com", "Tomás Ruiz"),
    ]
    assert Order.objects.filter(tenant=tenant, customer__isnull=True).count() == 1


# --------------------------------------------------------------------------
# multiline_no_bom.csv: no BOM, LF, line breaks and quotes inside fields
# --------------------------------------------------------------------------
def test_import_multiline_quotes_and_non_ascii(tenant):
    result = run_import(tenant, "multiline_no_bom.csv")
    assert (result.created, result.updated, result.unchanged, result.failed) == (3, 0, 0, 1)
    zoe = order_of(tenant, "#2001")
    assert zoe.note == 'Leave at the back door.\nCode: "4711", ring twice,\nthanks!'
    assert zoe.note_attributes == "gift-message: Grattis på födelsedagen!\nwrap: yes"
    assert zoe.tags == ["nordic", "gift"]
    assert (zoe.shipping_city, zoe.shipping_zip, zoe.currency) == ("Malmö", "211 34", "SEK")
    assert zoe.customer.name == "Zoë Ångström"
    assert (zoe.total, zoe.taxes, zoe.taxes_included) == (D("1247.00"), D("249.40"), True)
    assert zoe.placed_at == datetime(2026, 11, 2, 13, 2, 10, tzinfo=UTC)
    assert zoe.source_row == 2
    assert [(line.sku, line.title) for line in zoe.lines.order_by("position")] == [
        ("SW-FJ-M", 'Sweater "Fjäll", size M'),
        ("MO-1", 'Mössa "Norrsken"'),
    ]
    wang = order_of(tenant, "#2002")
    assert wang.note == "请在工作日送货。\n谢谢!"
    assert wang.shipping_city == "上海"
    assert wang.tax_lines == [
        {"name": "VAT 13%", "amount": "44.20"},
        {"name": "Shipping VAT 65%", "amount": "7.80"},
    ]
    assert wang.taxes_included is False
    assert wang.source_row == 7
    assert lines_of(wang) == [
        (1, "TEA-LJ", '茶叶, 龙井 "特级"', 2, D("194.00"), D("0.00"), True, False, 0, 0)
    ]


def test_import_multiline_reports_physical_lines(tenant):
    result = run_import(tenant, "multiline_no_bom.csv")
    # #2004 is the 5th record but starts on physical line 10 (#2001 spans 2-6).
    assert result.errors == [
        RowIssue(10, "#2004", "unparseable date in Created at: '04/11/2026 10:00'"),
    ]
    assert result.warnings == [
        RowIssue(9, "#2003", "unknown Risk Level 'Unknown'; stored as unknown"),
        RowIssue(
            9,
            "#2003",
            "Total 57.00 is neither Subtotal + Shipping + Taxes + Duties (64.17) nor "
            "Subtotal + Shipping + Duties (55.00); taken as taxes included",
        ),
    ]
    chloe = order_of(tenant, "#2003")
    assert (chloe.taxes_included, chloe.risk_level, chloe.source_row) == (True, "", 9)
    assert not Order.objects.filter(tenant=tenant, number="#2004").exists()


# --------------------------------------------------------------------------
# jpy_kwd.csv: zero- and three-decimal currencies
# --------------------------------------------------------------------------
def test_import_zero_and_three_decimal_currencies(tenant):
    result = run_import(tenant, "jpy_kwd.csv")
    assert (result.created, result.failed, result.lines) == (3, 0, 5)
    matcha = order_of(tenant, "#3001")
    assert (matcha.currency, matcha.total, matcha.taxes, matcha.shipping) == (
        "JPY",
        D("11000"),
        D("1000"),
        D("800"),
    )
    assert matcha.taxes_included is True
    assert matcha.tax_lines == [{"name": "JP 消費税 10%", "amount": "1000"}]
    assert matcha.placed_at == datetime(2026, 10, 7, 1, 0, tzinfo=UTC)
    # 2300 = one tin: 2400 - 300/3 discount share (tax inside the price)
    assert lines_of(matcha) == [
        (1, "MT-100", "抹茶 Matcha 100g", 3, D("2400"), D("300"), True, False, 3, 1),
        (2, "CW-1", "Chasen Whisk", 1, D("3300"), D("0"), True, False, 1, 0),
    ]
    oud = order_of(tenant, "#3002")
    assert (oud.currency, oud.subtotal, oud.total, oud.refunded_amount) == (
        "KWD",
        D("31.250"),
        D("34.000"),
        D("12.287"),
    )
    assert oud.taxes_included is False
    # 12.287 = one bottle: 12.500 - 0.501 (first unit's share of 1.001) + 0.288 tax share
    assert lines_of(oud) == [
        (1, "OP-50", "Oud Perfume 50ml", 2, D("12.500"), D("1.001"), True, False, 2, 1),
        (2, "IB-1", "Incense Burner", 1, D("7.251"), D("0.000"), True, False, 1, 0),
    ]
    furoshiki = order_of(tenant, "#3003")
    assert furoshiki.placed_at == datetime(2026, 10, 10, 23, 30, tzinfo=UTC)
    assert lines_of(furoshiki) == [
        (1, "FR-70", "Furoshiki 70cm", 1, D("981"), D("0"), True, False, 0, 0)
    ]
    assert (furoshiki.financial_status, furoshiki.fulfillment_status) == ("pending", "")


# --------------------------------------------------------------------------
# bad_rows.csv: a bad record fails its order only
# --------------------------------------------------------------------------
BAD_ROWS_ERRORS = [
    RowIssue(3, "#4002", "unparseable date in Created at: '2026-13-01 10:00:00 -0400'"),
    RowIssue(8, "#4004", "bad amount in Lineitem price: '12,5x'"),
    RowIssue(9, "", "missing Name"),
    RowIssue(10, "#4006", "unknown currency 'XYZ'"),
    RowIssue(13, "#4008", "missing Name on a line item record"),
    RowIssue(14, "#4009", "bad quantity in Lineitem quantity: 'two'"),
    RowIssue(15, "#4010", "expected 71 fields, found 3"),
    RowIssue(16, "#4011", "date without a UTC offset in Created at: '2026-10-20 10:00:00'"),
    RowIssue(17, "#4001", "order #4001 appears again (an order's records must be consecutive)"),
]


def test_import_bad_rows_fail_their_order_only(tenant):
    result = run_import(tenant, "bad_rows.csv")
    assert (result.created, result.updated, result.unchanged, result.failed) == (4, 0, 0, 9)
    assert result.errors == BAD_ROWS_ERRORS
    assert not result.ok
    assert sorted(Order.objects.filter(tenant=tenant).values_list("number", flat=True)) == [
        "#4001",
        "#4003",
        "#4007",
        "#4012",
    ]
    # #4003's note spans physical lines 4-6; the next order starts on line 7.
    assert order_of(tenant, "#4003").note == "Fragile.\nPlease call first:\n555-0100"
    assert order_of(tenant, "#4001").lines.get().sku == "TEE-4001"


def test_import_reports_times_outside_the_calendar_and_imports_the_rest(tenant):
    import csv

    text = fixture("basic_bom.csv").read_text("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0]
    name, created, fulfilled = (header.index(c) for c in ("Name", "Created at", "Fulfilled at"))
    firsts = [i for i, row in enumerate(rows[1:], start=1) if row[created]]
    # No UTC instant exists for these two; the third is a typo far in the future.
    rows[firsts[0]][created] = "0001-01-01 00:00:00 +1400"
    rows[firsts[1]][fulfilled] = "9999-12-31 23:59:59 -1400"
    rows[firsts[2]][fulfilled] = "2999-01-01 00:00:00 +0000"
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    result = order_import_csv(tenant=tenant, stream_or_path=io.StringIO(out.getvalue()), now=NOW)
    bad = [rows[i][name] for i in firsts[:3]]
    assert result.errors == [
        RowIssue(
            firsts[0] + 1, bad[0], "date out of range in Created at: '0001-01-01 00:00:00 +1400'"
        ),
        RowIssue(
            firsts[1] + 1, bad[1], "date out of range in Fulfilled at: '9999-12-31 23:59:59 -1400'"
        ),
        RowIssue(
            firsts[2] + 1,
            bad[2],
            "fulfilled_at 2999-01-01T00:00:00+00:00 is out of range (1970 to one year ahead)",
        ),
    ]
    assert (result.created, result.failed) == (5, 3)
    assert not Order.objects.filter(tenant=tenant, number__in=bad).exists()


def test_import_not_utf8_stops_at_the_line(tenant):
    result = run_import(tenant, "not_utf8.csv")
    assert (result.created, result.failed) == (1, 2)
    assert result.errors == [
        RowIssue(
            4,
            "#6002",
            "not UTF-8 text (byte 107 of the line); export the file as UTF-8; the order is "
            "not imported because that line may be one of its lines",
        )
    ]
    assert result.stopped_at == RowIssue(
        4,
        "",
        "not UTF-8 text (byte 107 of the line); export the file as UTF-8; this line and "
        "the rest were not imported",
    )
    assert list(Order.objects.filter(tenant=tenant).values_list("number", flat=True)) == ["#6001"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "line 1: the file is empty (no header row)"),
        (
            b"order,customer,amount\r\n1001,someone,10.00\r\n",
            "line 1: not a Shopify orders export: missing column(s) Name, Currency, Created at, "
            "Total, Lineitem quantity, Lineitem name, Lineitem price",
        ),
        (
            b"Name,Name,Currency\r\n",
            "line 1: column 'Name' appears twice in the header",
        ),
        (
            b"\xff\xfeN\x00a\x00",
            "line 1: not UTF-8 text (byte 1 of the line); export the file as UTF-8",
        ),
    ],
)
def test_import_refuses_files_that_are_not_exports(tenant, content, message):
    with pytest.raises(ExportFileError) as info:
        order_import_csv(tenant=tenant, stream_or_path=io.BytesIO(content), now=NOW)
    assert str(info.value) == message
    assert not Order.objects.filter(tenant=tenant).exists()


def test_import_accepts_binary_and_text_streams_with_or_without_bom(tenant, other_tenant):
    raw = fixture("basic_bom.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    result = order_import_csv(tenant=tenant, stream_or_path=io.BytesIO(raw), now=NOW)
    assert (result.created, result.failed) == (8, 0)
    text = raw.decode("utf-8")  # BOM kept as U+FEFF: the reader removes it
    result = order_import_csv(
        tenant=other_tenant, stream_or_path=io.StringIO(text, newline=""), now=NOW
    )
    assert (result.created, result.failed) == (8, 0)
    assert order_of(other_tenant, "#1001").total == D("208.38")


# --------------------------------------------------------------------------
# The command: summary, exit codes, clear errors
# --------------------------------------------------------------------------
def test_command_summary_success_exit_0(tenant):
    path = str(fixture("basic_bom.csv"))
    out, status = command("--tenant", "acme", path)
    assert status == 0
    assert out == (
        f"Imported {path} into tenant acme: 8 created, 0 updated, 0 unchanged, 0 failed "
        "(15 line items written).\n"
    )
    out, status = command("--tenant", "acme", path)
    assert status == 0
    assert out == (
        f"Imported {path} into tenant acme: 0 created, 0 updated, 8 unchanged, 0 failed "
        "(0 line items written).\n"
    )


def test_command_summary_lists_bad_rows_exit_1(tenant):
    path = str(fixture("bad_rows.csv"))
    out, status = command("--tenant", "acme", path)
    assert status == 1
    assert out.splitlines() == [
        f"Imported {path} into tenant acme: 4 created, 0 updated, 0 unchanged, 9 failed "
        "(4 line items written).",
        "Failed (9 records):",
        "  line 3 (order #4002): unparseable date in Created at: '2026-13-01 10:00:00 -0400'",
        "  line 8 (order #4004): bad amount in Lineitem price: '12,5x'",
        "  line 9: missing Name",
        "  line 10 (order #4006): unknown currency 'XYZ'",
        "  line 13 (order #4008): missing Name on a line item record",
        "  line 14 (order #4009): bad quantity in Lineitem quantity: 'two'",
        "  line 15 (order #4010): expected 71 fields, found 3",
        "  line 16 (order #4011): date without a UTC offset in Created at: '2026-10-20 10:00:00'",
        "  line 17 (order #4001): order #4001 appears again (an order's records must be "
        "consecutive)",
    ]


def test_command_summary_prints_warnings(tenant):
    path = str(fixture("multiline_no_bom.csv"))
    out, status = command("--tenant", "acme", path)
    assert status == 1
    assert out.splitlines() == [
        f"Imported {path} into tenant acme: 3 created, 0 updated, 0 unchanged, 1 failed "
        "(4 line items written).",
        "Failed (1 record):",
        "  line 10 (order #2004): unparseable date in Created at: '04/11/2026 10:00'",
        "Warnings (2):",
        "  line 9 (order #2003): unknown Risk Level 'Unknown'; stored as unknown",
        "  line 9 (order #2003): Total 57.00 is neither Subtotal + Shipping + Taxes + Duties "
        "(64.17) nor Subtotal + Shipping + Duties (55.00); taken as taxes included",
    ]


def test_command_not_utf8_exit_1(tenant):
    path = str(fixture("not_utf8.csv"))
    out, status = command("--tenant", "acme", path)
    assert status == 1
    assert out.splitlines()[0] == (
        f"Imported {path} into tenant acme: 1 created, 0 updated, 0 unchanged, 2 failed "
        "(1 line item written)."
    )
    assert out.splitlines()[-1] == (
        "  line 4: not UTF-8 text (byte 107 of the line); export the file as UTF-8; this line "
        "and the rest were not imported"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tenant", "nope", "x.csv"), "Unknown tenant 'nope'."),
        (
            ("--tenant", "acme", "/nonexistent/orders.csv"),
            "/nonexistent/orders.csv: cannot open "
            "/nonexistent/orders.csv: No such file or directory",
        ),
        (
            ("--tenant", "acme", str(FIXTURES)),
            f"{FIXTURES}: cannot open {FIXTURES}: Is a directory",
        ),
        (
            ("--tenant", "acme", str(FIXTURES / "not_an_export.csv")),
            f"{FIXTURES / 'not_an_export.csv'}: line 1: not a Shopify orders export: missing "
            "column(s) Name, Currency, Created at, Total, Lineitem quantity, Lineitem name, "
            "Lineitem price",
        ),
    ],
)
def test_command_clear_errors_exit_1(tenant, args, message):
    out = io.StringIO()
    with pytest.raises(CommandError) as info:
        call_command("import_orders", *args, stdout=out)
    assert info.value.returncode == 1
    assert str(info.value) == message
    assert out.getvalue() == ""


# --------------------------------------------------------------------------
# Re-import: an upsert
# --------------------------------------------------------------------------
def test_reimport_changes_nothing(tenant):
    first = run_import(tenant, "basic_bom.csv")
    before = snapshot(tenant)
    second = run_import(tenant, "basic_bom.csv")
    assert (first.created, second.created, second.updated, second.unchanged, second.failed) == (
        8,
        0,
        0,
        8,
        0,
    )
    assert second.lines == 0
    assert snapshot(tenant) == before


def test_reimport_updates_in_place_and_keeps_line_ids(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    line_ids = dict(OrderLine.objects.filter(tenant=tenant).values_list("pk", "line_id"))
    text = fixture("basic_bom.csv").read_text(encoding="utf-8-sig")
    # #1008 refunded in full since the last export; #1006's trousers shipped.
    text = text.replace(
        "#1008,lena.fischer@example.com,partially_refunded",
        "#1008,lena.fischer@example.com,refunded",
    )
    text = text.replace(
        "Linen Trousers - S,80.00,,LT-S,true,true,partial",
        "Linen Trousers - S,80.00,,LT-S,true,true,fulfilled",
    )
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert (result.created, result.updated, result.unchanged, result.failed) == (0, 2, 6, 0)
    assert result.lines == 4
    stove = order_of(tenant, "#1008")
    assert (stove.financial_status, lines_of(stove)[0][-1]) == ("refunded", 1)
    trousers = OrderLine.objects.get(tenant=tenant, sku="LT-S")
    assert (trousers.fulfillment_status, trousers.fulfilled_quantity) == ("fulfilled", 2)
    assert dict(OrderLine.objects.filter(tenant=tenant).values_list("pk", "line_id")) == line_ids


def test_reimport_never_changes_a_line_with_returns(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    order = order_of(tenant, "#1001")
    socks = order.lines.get(sku="WS-1")
    ReturnLineFactory(
        return_request=ReturnRequestFactory(order=order), order_line=socks, quantity=1
    )
    text = fixture("basic_bom.csv").read_text(encoding="utf-8-sig")
    # The export now says 2 pairs of socks. That also changes the net subtotal, so the
    # 81.00 refund no longer matches one jacket: the jacket line (no returns) follows.
    text = text.replace("3,Wool Socks,12.00,,WS-1", "2,Wool Socks,12.00,,WS-1")
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert (result.created, result.updated, result.unchanged, result.failed) == (0, 1, 7, 0)
    assert result.errors == []
    assert result.warnings == [
        RowIssue(
            3,
            "#1001",
            "line 2 (SKU 'WS-1') has returns, so it was left unchanged (the export has "
            "quantity 3 -> 2, fulfilled_quantity 3 -> 2)",
        )
    ]
    socks.refresh_from_db()
    assert (socks.quantity, socks.fulfilled_quantity) == (3, 3)
    assert order.lines.get(sku="TJ-M").refunded_quantity == 0


def test_reimport_keeps_a_dropped_line_with_returns_and_deletes_others(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    order = order_of(tenant, "#1003")
    wrap = order.lines.get(sku="GW")
    tote = order.lines.get(sku="CT-1")
    ReturnLineFactory(return_request=ReturnRequestFactory(order=order), order_line=tote)
    lines = fixture("basic_bom.csv").read_text(encoding="utf-8-sig").splitlines()
    # Drop #1003's 2nd and 3rd records (physical lines 7 and 8).
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text("\n".join(lines[:6] + lines[8:]) + "\n", encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert (result.updated, result.unchanged, result.failed) == (1, 7, 0)
    assert result.warnings == [
        RowIssue(
            6,
            "#1003",
            "line 2 (SKU 'CT-1') is not in the export but has returns, so it was kept",
        )
    ]
    assert list(order.lines.order_by("position").values_list("sku", flat=True)) == ["GC-50", "CT-1"]
    assert not OrderLine.objects.filter(pk=wrap.pk).exists()


def test_reimport_sku_mismatch_fails_the_order_and_writes_nothing(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    before = snapshot(tenant)
    text = fixture("basic_bom.csv").read_text(encoding="utf-8-sig")
    text = text.replace(",WS-1,", ",WS-2,").replace(
        "#1001,Maren.Holt@Example.com,partially_refunded", "#1001,Maren.Holt@Example.com,refunded"
    )
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert (result.updated, result.unchanged, result.failed) == (0, 7, 1)
    assert result.errors == [
        RowIssue(
            3,
            "#1001",
            "line 2 is SKU 'WS-2' 'Wool Socks' in the export but SKU 'WS-1' 'Wool Socks' in the "
            "stored order (lines are matched by position); the order was not updated",
        )
    ]
    assert snapshot(tenant) == before


def test_reimport_keyed_by_shopify_id_follows_a_renumbered_order(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    pk = order_of(tenant, "#1002").pk
    text = fixture("basic_bom.csv").read_text(encoding="utf-8-sig").replace("#1002,", "#1002-A,")
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert (result.updated, result.unchanged) == (1, 7)
    renumbered = Order.objects.get(pk=pk)
    assert (renumbered.number, renumbered.number_key) == ("#1002-A", "1002-a")


def test_reimport_conflicting_shopify_id_for_a_number_fails(tenant, tmp_path):
    run_import(tenant, "basic_bom.csv")
    text = (
        fixture("basic_bom.csv")
        .read_text(encoding="utf-8-sig")
        .replace("5550000001004", "9990000001004")
    )
    changed = tmp_path / "orders_export_2.csv"
    changed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=changed, now=NOW)
    assert result.failed == 1
    assert result.errors == [
        RowIssue(
            9,
            "#1004",
            "order number #1004 already belongs to Shopify order 5550000001004, not 9990000001004",
        )
    ]


def test_import_without_id_column_keys_by_number(tenant, tmp_path):
    result = run_import(tenant, "no_id_column.csv")
    assert (result.created, result.failed) == (2, 0)
    assert list(
        Order.objects.filter(tenant=tenant).order_by("pk").values_list("number", "shopify_id")
    ) == [("#5001", ""), ("#5002", "")]
    # Customers type 5001 or #5001: the same order.
    text = fixture("no_id_column.csv").read_text(encoding="utf-8").replace("#5001,", "5001,")
    renamed = tmp_path / "no_id_2.csv"
    renamed.write_text(text, encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=renamed, now=NOW)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    assert Order.objects.filter(tenant=tenant).count() == 2
    assert order_of(tenant, "5001").number_key == "5001"
    # A later export with the Id column adopts the ids.
    lines = fixture("no_id_column.csv").read_text(encoding="utf-8").splitlines()
    with_ids = [lines[0] + ",Id", lines[1] + ",7770000005001", lines[2] + ",7770000005002"]
    adopted = tmp_path / "with_id.csv"
    adopted.write_text("\n".join(with_ids) + "\n", encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=adopted, now=NOW)
    assert (result.created, result.updated, result.failed) == (0, 2, 0)
    assert sorted(Order.objects.filter(tenant=tenant).values_list("shopify_id", flat=True)) == [
        "7770000005001",
        "7770000005002",
    ]


# --------------------------------------------------------------------------
# Tenancy
# --------------------------------------------------------------------------
def test_import_other_tenant_never_touches_tenant_orders(tenant, other_tenant):
    run_import(tenant, "basic_bom.csv")
    before = snapshot(tenant)
    result = run_import(other_tenant, "basic_bom.csv")
    assert (result.created, result.updated, result.unchanged, result.failed) == (8, 0, 0, 0)
    assert snapshot(tenant) == before
    mine = order_of(tenant, "#1001")
    theirs = order_of(other_tenant, "#1001")
    assert mine.pk != theirs.pk
    assert theirs.shopify_id == mine.shopify_id == "5550000001001"
    assert theirs.customer.tenant_id == other_tenant.pk
    assert mine.customer.pk != theirs.customer.pk
    assert all(line.tenant_id == other_tenant.pk for line in OrderLine.objects.filter(order=theirs))
    # A changed export for the other tenant still leaves ours alone.
    result = order_import_csv(
        tenant=other_tenant,
        stream_or_path=io.BytesIO(
            fixture("basic_bom.csv").read_bytes().replace(b"208.38", b"209.38")
        ),
        now=NOW,
    )
    assert (result.updated, result.unchanged) == (1, 7)
    assert snapshot(tenant) == before
    assert order_of(other_tenant, "#1001").total == D("209.38")


# --------------------------------------------------------------------------
# order_upsert: the writer the API shares
# --------------------------------------------------------------------------
def api_order(**changes) -> OrderData:
    fields = dict(
        number="#9001",
        currency="KWD",
        placed_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
        total=D("10.5"),
        subtotal=D("10.5"),
        email="Api.Buyer@Example.com",
        lines=(
            OrderLineData(
                sku="API-1",
                title="Api thing",
                quantity=1,
                unit_price=D("10.5"),
                fulfilled_quantity=1,
            ),
        ),
    )
    fields.update(changes)
    return OrderData(**fields)


def test_order_upsert_creates_then_is_idempotent(tenant):
    order, created = order_upsert(tenant=tenant, data=api_order(), now=NOW)
    assert created is True
    assert order.source == OrderSource.API
    assert (order.total, order.currency, order.customer.email_normalized) == (
        D("10.500"),
        "KWD",
        "api.buyer@example.com",
    )
    again = order_upsert(tenant=tenant, data=api_order(), now=NOW)
    assert (again.order.pk, again.created, again.changed, again.notices) == (
        order.pk,
        False,
        False,
        (),
    )
    changed = order_upsert(tenant=tenant, data=api_order(number="9001", total=D("11")), now=NOW)
    assert (changed.order.pk, changed.created, changed.changed) == (order.pk, False, True)
    order.refresh_from_db()
    assert (order.number, order.total) == ("9001", D("11.000"))


def test_order_upsert_keeps_the_currency_of_an_order_with_returns(tenant):
    order = order_upsert(tenant=tenant, data=api_order(), now=NOW).order
    ReturnRequestFactory(order=order)
    with pytest.raises(OrderDataError) as info:
        order_upsert(tenant=tenant, data=api_order(currency="USD"), now=NOW)
    assert info.value.message == ("currency cannot change from KWD to USD: the order has returns")
    order.refresh_from_db()
    assert order.currency == "KWD"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"currency": "ABC"}, "unknown currency 'ABC'"),
        ({"number": " # "}, "missing order number"),
        ({"placed_at": datetime(2026, 11, 1, 9, 0)}, "placed_at has no time zone"),
        ({"total": D("-1")}, "negative total: -1"),
        ({"shopify_id": "9" * 40}, "order shopify_id is 40 characters long (at most 32)"),
        (
            {
                "lines": (
                    OrderLineData(
                        sku="A", title="a", quantity=2, unit_price=D("1"), discount=D("2.5")
                    ),
                )
            },
            "line discount 2.500 is more than the line's price 2.000",
        ),
        ({"shipping_country": "Kuwait"}, "order shipping_country is 6 characters long (at most 2)"),
    ],
)
def test_order_upsert_refuses_bad_data(tenant, changes, message):
    with pytest.raises(OrderDataError) as info:
        order_upsert(tenant=tenant, data=api_order(**changes), now=NOW)
    assert info.value.message == message
    assert not Order.objects.filter(tenant=tenant).exists()


# --------------------------------------------------------------------------
# The shared sample export
# --------------------------------------------------------------------------
def test_import_shared_sample_exact(tenant):
    if not SHARED_SAMPLE.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{SHARED_SAMPLE} is missing")
        pytest.skip(f"{SHARED_SAMPLE} is absent")
    result = order_import_csv(tenant=tenant, stream_or_path=SHARED_SAMPLE, now=NOW)
    assert (result.created, result.updated, result.unchanged, result.failed) == (3, 0, 0, 0)
    assert (result.lines, result.errors, result.warnings) == (6, [], [])
    assert list(
        Order.objects.filter(tenant=tenant)
        .order_by("pk")
        .values_list(
            "number",
            "shopify_id",
            "email",
            "currency",
            "placed_at",
            "total",
            "taxes",
            "taxes_included",
            "refunded_amount",
            "financial_status",
            "fulfillment_status",
            "risk_level",
            "tags",
        )
    ) == [
        (
            "#5001",
            "6100000000000",
            "Pat.Example@Example.com",
            "USD",
            datetime(2026, 9, 15, 1, 1, 40, tzinfo=UTC),
            D("205.20"),
            D("16.20"),
            False,
            D("0"),
            "paid",
            "fulfilled",
            "low",
            ["loyal"],
        ),
        (
            "#5002",
            "6100000000002",
            "lee.sample@example.org",
            "JPY",
            datetime(2026, 9, 19, 22, 59, tzinfo=UTC),
            D("13200"),
            D("1200"),
            False,
            D("13200"),
            "refunded",
            "fulfilled",
            "low",
            [],
        ),
        (
            "#5003",
            "6100000000003",
            "kim.example@example.net",
            "EUR",
            datetime(2026, 9, 22, 9, 58, tzinfo=UTC),
            D("94.90"),
            D("0"),
            False,
            D("0"),
            "paid",
            "partial",
            "medium",
            [],
        ),
    ]
    assert lines_of(order_of(tenant, "#5001")) == [
        (1, "RS-S", 'Rain Shell, "Storm" - S', 1, D("150.00"), D("0"), True, False, 1, 0),
        (2, "BN-1", "Beanie", 2, D("15.00"), D("0"), True, False, 2, 0),
    ]
    assert lines_of(order_of(tenant, "#5002")) == [
        (1, "TB-1", "茶碗 Tea Bowl", 1, D("12000"), D("0"), True, False, 1, 1),
    ]
    assert lines_of(order_of(tenant, "#5003")) == [
        (1, "LS-M", "Linen Shirt - M", 1, D("60.00"), D("0"), True, False, 1, 0),
        (2, "GW", "Gift Wrap", 1, D("0.00"), D("0"), False, False, 1, 0),
        (3, "LS-L", "Linen Shirt - L", 1, D("30.00"), D("0"), True, False, 0, 0),
    ]
    assert sorted(
        Customer.objects.filter(tenant=tenant).values_list("email_normalized", flat=True)
    ) == [
        "kim.example@example.net",
        "lee.sample@example.org",
        "pat.example@example.com",
    ]
    again = order_import_csv(tenant=tenant, stream_or_path=SHARED_SAMPLE, now=NOW)
    assert (again.created, again.updated, again.unchanged, again.failed) == (0, 0, 3, 0)


def test_import_in_small_chunks_gives_the_same_result(tenant, monkeypatch):
    monkeypatch.setattr("rma.order_services.IMPORT_CHUNK", 3)
    first = run_import(tenant, "bad_rows.csv")
    assert (first.created, first.failed, first.errors) == (4, 9, BAD_ROWS_ERRORS)
    before = snapshot(tenant)
    second = run_import(tenant, "bad_rows.csv")
    assert (second.created, second.updated, second.unchanged, second.failed) == (0, 0, 4, 9)
    assert second.errors == BAD_ROWS_ERRORS
    assert snapshot(tenant) == before
    stopped = run_import(tenant, "not_utf8.csv")
    assert (stopped.created, stopped.failed, stopped.stopped_at.line) == (1, 2, 4)


def test_import_unreadable_csv_record_fails_the_order_before_it(tenant):
    lines = fixture("basic_bom.csv").read_bytes().decode("utf-8-sig").split("\r\n")
    # After #1004 (physical line 9): a record with a stray quote.
    lines.insert(9, '#1004,"Tomás" Ruiz,voided')
    text = "\r\n".join(lines)
    result = order_import_csv(tenant=tenant, stream_or_path=io.StringIO(text, newline=""), now=NOW)
    assert (result.created, result.failed) == (7, 1)
    assert result.errors == [
        RowIssue(
            10,
            "#1004",
            "unreadable CSV record (',' expected after '\"'); the order is not imported "
            "because the record may be one of its lines",
        )
    ]
    assert not Order.objects.filter(tenant=tenant, number="#1004").exists()
    assert order_of(tenant, "#1005").source_row == 11


def test_import_header_after_blank_lines_reports_its_line(tenant):
    content = b"\r\n\r\norder,customer\r\n1,x\r\n"
    with pytest.raises(ExportFileError) as info:
        order_import_csv(tenant=tenant, stream_or_path=io.BytesIO(content), now=NOW)
    assert info.value.line == 3
    assert info.value.in_header is True


def test_import_refuses_amounts_and_quantities_the_columns_cannot_hold(tenant, tmp_path):
    """Out-of-range figures fail their order (not the whole import, not a poisoned row)."""
    header = "Name,Email,Currency,Created at,Total,Lineitem quantity,Lineitem name,Lineitem price"
    rows = [
        "#7001,a@b.example,USD,2026-11-01 10:00:00 -0500,10.00,1,Tee,999999999999999999.99",
        "#7002,a@b.example,USD,2026-11-01 10:00:00 -0500,1000000000000000.00,1,Tee,10.00",
        "#7003,a@b.example,USD,2026-11-01 10:00:00 -0500,10.00,100000000000000000000,Tee,10.00",
        "#7004,a@b.example,USD,2026-11-01 10:00:00 -0500,10.00,1,Tee,10.00",
    ]
    path = tmp_path / "huge.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = order_import_csv(tenant=tenant, stream_or_path=path, now=NOW)
    assert (result.created, result.failed) == (1, 3)
    assert [issue.order_number for issue in result.errors] == ["#7001", "#7002", "#7003"]
    assert list(Order.objects.filter(tenant=tenant).values_list("number", "total")) == [
        ("#7004", D("10.00"))
    ]
