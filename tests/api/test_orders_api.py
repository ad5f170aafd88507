"""`PUT|GET /api/v1/orders/<number>/`: upsert by number, lines with `line_id`, money as
strings with the currency's decimals, lines with returns protected, tenant-scoped."""

from __future__ import annotations

import json

import pytest
import time_machine

from returns_portal.tenancy.services import api_key_create
from rma.models import Order, OrderLine
from rma.services import ReturnLineInput, return_request_create
from tests.portal_helpers import NOW

pytestmark = pytest.mark.django_db
HOST = "acme.localhost"

ORDER = {
    "number": "#1001",
    "email": "Buyer@Example.com",
    "currency": "JPY",
    "placed_at": "2026-11-01T14:00:00Z",
    "fulfilled_at": "2026-11-02T09:30:00+09:00",
    "financial_status": "paid",
    "fulfillment_status": "fulfilled",
    "subtotal": "9899.4",
    "total": "9899",
    "taxes": "0",
    "tags": ["vip"],
    "shipping_country": "JP",
    "lines": [
        {
            "sku": "KIMONO-1",
            "title": "Kimono",
            "quantity": 2,
            "unit_price": "4949.5",
            "fulfillment_status": "fulfilled",
        },
        {
            "sku": "GIFT",
            "title": "Gift card",
            "quantity": 1,
            "unit_price": "0",
            "is_gift_card": True,
            "requires_shipping": False,
        },
    ],
}


@pytest.fixture
def key(tenant):
    return api_key_create(tenant=tenant).raw_key


def put(client, key, number, body, host=HOST):
    return client.put(
        f"/api/v1/orders/{number}/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )


def get(client, key, number, host=HOST):
    return client.get(
        f"/api/v1/orders/{number}/", HTTP_HOST=host, HTTP_AUTHORIZATION=f"Api-Key {key}"
    )


def test_put_creates_then_updates_by_number(client, tenant, key):
    created = put(client, key, "1001", ORDER)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["number"] == "#1001" and data["currency"] == "JPY" and data["source"] == "api"
    assert data["total"] == "9899" and data["subtotal"] == "9899"  # JPY has no decimals
    assert data["fulfilled_at"] == "2026-11-02T00:30:00Z"
    kimono, gift = data["lines"]
    assert kimono["unit_price"] == "4950" and kimono["fulfilled_quantity"] == 2
    assert kimono["line_id"].startswith("li_") and gift["fulfilled_quantity"] == 0
    assert get(client, key, "%231001").json() == data

    update = dict(
        ORDER,
        total="9999",
        lines=[dict(ORDER["lines"][0], line_id=kimono["line_id"], refunded_quantity=1)],
    )
    updated = put(client, key, "%231001", update)
    assert updated.status_code == 200
    assert updated.json()["total"] == "9999"
    assert [ln["line_id"] for ln in updated.json()["lines"]] == [kimono["line_id"]]
    assert updated.json()["lines"][0]["refunded_quantity"] == 1
    assert Order.objects.filter(tenant=tenant).count() == 1
    assert OrderLine.objects.filter(tenant=tenant).count() == 1


def test_lines_with_returns_are_protected(client, tenant, key):
    data = put(client, key, "1001", dict(ORDER, currency="USD")).json()
    order = Order.objects.get(tenant=tenant)
    with time_machine.travel(NOW, tick=False):
        return_request_create(
            tenant=tenant,
            order=order,
            email="buyer@example.com",
            lines=[
                ReturnLineInput(line_id=data["lines"][0]["line_id"], quantity=1, reason="other")
            ],
            method="drop_off",
            source="api",
            now=NOW,
        )
    changed = dict(
        ORDER, currency="USD", lines=[dict(ORDER["lines"][0], unit_price="1.00"), ORDER["lines"][1]]
    )
    refused = put(client, key, "1001", changed)
    assert refused.status_code == 400
    assert refused.json()["codes"]["lines"][0]["unit_price"] == ["line_has_returns"]
    dropped = put(client, key, "1001", dict(ORDER, currency="USD", lines=[ORDER["lines"][1]]))
    assert dropped.status_code == 400
    assert OrderLine.objects.get(order=order, sku="KIMONO-1").unit_price == 4949.5


def test_validation_errors(client, tenant, key):
    missing = put(client, key, "2002", {"lines": [ORDER["lines"][0]]})
    assert missing.status_code == 400 and "placed_at" in missing.json()
    mismatch = put(client, key, "2002", dict(ORDER))
    assert mismatch.status_code == 400 and "number" in mismatch.json()
    bad_line = put(client, key, "1001", dict(ORDER, lines=[{"line_id": "li_nope", "quantity": 1}]))
    assert bad_line.status_code == 400
    assert Order.objects.count() == 0


def test_orders_are_tenant_scoped(client, tenant, other_tenant, key):
    other_key = api_key_create(tenant=other_tenant).raw_key
    put(client, key, "1001", ORDER)
    foreign = get(client, other_key, "1001", host="globex.localhost")
    missing = get(client, other_key, "4040", host="globex.localhost")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    # The other tenant's PUT of the same number makes its own order.
    assert (
        put(
            client, other_key, "1001", dict(ORDER, currency="GBP"), host="globex.localhost"
        ).status_code
        == 201
    )
    assert Order.objects.get(tenant=tenant).currency == "JPY"
    assert get(client, key, "1001", host="globex.localhost").status_code == 404


def test_put_refuses_a_too_long_number_and_an_unknown_currency(client, tenant, key):
    """The number comes from the URL (not the serializer): longer than the column (64) it
    is a 400, not a 500 on PostgreSQL or a silently stored 200-character number on SQLite.
    The currency is checked like `import_orders` checks it."""
    body = {k: v for k, v in ORDER.items() if k != "number"}
    long_number = "9" * 65
    response = put(client, key, long_number, body)
    assert response.status_code == 400
    assert response.json()["codes"] == {"number": ["too_long"]}
    response = put(client, key, "2002", {**body, "currency": "ZZZ"})
    assert response.status_code == 400
    assert response.json()["codes"] == {"currency": ["unknown_currency"]}
    assert not Order.objects.filter(tenant=tenant).exists()
    assert put(client, key, "9" * 64, body).status_code == 201


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        # Parsed, but no UTC instant exists for it: a 400, never an OverflowError 500.
        ({"delivered_at": "9999-12-31T23:59:59-14:00"}, "delivered_at", "invalid"),
        ({"placed_at": "0001-01-01T00:00:00+14:00"}, "placed_at", "invalid"),
        # Representable but impossible: windows computed from them would leave the calendar.
        ({"fulfilled_at": "9999-12-31T00:00:00Z"}, "fulfilled_at", "out_of_range"),
        ({"placed_at": "0001-01-01T00:00:00Z"}, "placed_at", "out_of_range"),
        ({"delivered_at": "2027-12-01T00:00:00Z"}, "delivered_at", "out_of_range"),
    ],
)
def test_put_refuses_order_times_outside_the_calendar(client, tenant, key, change, field, code):
    with time_machine.travel(NOW, tick=False):
        response = put(client, key, "1001", {**ORDER, **change})
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body
    if code == "out_of_range":
        assert body["codes"] == {field: ["out_of_range"]}
    assert not Order.objects.filter(tenant=tenant).exists()


def test_put_refuses_negative_money(client, tenant, key):
    lines = [{**ORDER["lines"][0], "unit_price": "-5"}]
    response = put(client, key, "1001", {**ORDER, "lines": lines})
    assert response.status_code == 400
    assert response.json()["lines"]["0"]["unit_price"] == [
        "Ensure this value is greater than or equal to 0."
    ]
    assert put(client, key, "1001", {**ORDER, "shipping": "-1"}).status_code == 400
    assert not Order.objects.filter(tenant=tenant).exists()


def test_put_refuses_a_currency_change_once_the_order_has_returns(client, tenant, key):
    assert put(client, key, "1001", ORDER).status_code == 201
    order = Order.objects.get(tenant=tenant)
    line = order.lines.order_by("position").first()
    with time_machine.travel(NOW, tick=False):
        return_request_create(
            tenant=tenant,
            order=order,
            email="buyer@example.com",
            lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="other")],
            method="drop_off",
            source="api",
            now=NOW,
        )
    response = put(client, key, "1001", {**ORDER, "currency": "EUR", "total": "1"})
    assert response.status_code == 400
    assert response.json()["codes"] == {"currency": ["order_has_returns"]}
    order.refresh_from_db()
    assert (order.currency, order.total) == ("JPY", 9899)
    # The same currency still updates.
    assert put(client, key, "1001", {**ORDER, "note": "gift"}).status_code == 200


def test_put_refuses_an_order_without_lines(client, tenant, key):
    response = put(client, key, "1001", {**ORDER, "lines": []})
    assert response.status_code == 400 and "lines" in response.json()
    assert not Order.objects.filter(tenant=tenant).exists()
