"""The returns API over HTTP (DESIGN.md section 10): create (JSON and multipart),
refusals that write nothing, ambiguous SKUs, Idempotency-Key, list filters, detail
with a fixed number of queries, shipments, cross-tenant 404s."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine

from refunds.models import Refund
from returns_portal.models import IdempotencyKey
from returns_portal.tenancy.services import api_key_create
from rma.models import (
    Milestone,
    Notification,
    ReturnLine,
    ReturnPhoto,
    ReturnPolicy,
    ReturnRequest,
    Shipment,
)
from rma.services import exception_open, milestone_reach, return_refund_summary_update
from tests.portal_helpers import NOW, jpeg_bytes, order_with_lines, svg_bytes, upload
from tracking.carriers.sandbox_labels import sandbox_label_number

pytestmark = pytest.mark.django_db
HOST = "acme.localhost"
MODELS = (ReturnRequest, ReturnLine, ReturnPhoto, Milestone, Shipment, Notification, Refund)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def key(tenant):
    return api_key_create(tenant=tenant).raw_key


@pytest.fixture
def other_key(other_tenant):
    return api_key_create(tenant=other_tenant).raw_key


def counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def post(client, key, path, body, host=HOST, **headers):
    return client.post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        **headers,
    )


def get(client, key, path, host=HOST, **params):
    return client.get(path, params, HTTP_HOST=host, HTTP_AUTHORIZATION=f"Api-Key {key}")


def body_for(lines, **extra):
    data = {"order_number": "#1001", "email": "buyer@example.com", "lines": lines}
    data.update(extra)
    return data


def test_create_return_json_buys_the_sandbox_label(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    response = post(
        client,
        key,
        "/api/v1/returns/",
        body_for(
            [
                {"line_id": l1.line_id, "quantity": 1, "reason": "too_small"},
                {"sku": "SKU-2", "quantity": 2, "reason": "changed_mind", "note": "gift"},
            ]
        ),
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) >= {
        "rma_number",
        "token",
        "status",
        "tracking_url",
        "label_url",
        "milestones",
        "shipment",
        "shipments",
        "refund",
        "events",
        "exceptions",
    }
    assert data["rma_number"] == "RMA-100001" and data["status"] == "label_created"
    assert data["tracking_url"] == f"http://acme.localhost:8000/r/{data['token']}/"
    assert data["label_url"] == f"http://acme.localhost:8000/r/{data['token']}/label.pdf"
    number = sandbox_label_number(tenant_slug="acme", rma_number="RMA-100001", label_at=NOW)
    assert data["shipment"]["tracking_number"] == number
    assert data["shipment"]["label_state"] == "ready" and data["shipment"]["carrier"] == "sandbox"
    assert [m["name"] for m in data["milestones"]] == [
        "requested",
        "label_created",
        "dropped_off",
        "first_scan",
        "in_transit",
        "delivered",
        "received",
        "inspected",
    ]
    requested, label_created = data["milestones"][:2]
    assert requested == {
        "name": "requested",
        "reached_at": "2026-11-10T15:00:00Z",
        "due_at": None,
        "source": "api",
        "precision": "second",
    }
    assert label_created["source"] == "system"
    assert data["milestones"][3]["due_at"] == "2026-11-13T15:00:00Z"  # first scan: label + 72 h
    assert data["refund"]["state"] == "pending" and data["refund"]["currency"] == "USD"
    assert data["events"] == [] and data["exceptions"] == []
    assert [(ln["sku"], ln["quantity"]) for ln in data["lines"]] == [("SKU-1", 1), ("SKU-2", 2)]


def test_merchant_shipment_is_written_with_label_created_from_api(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    response = post(
        client,
        key,
        "/api/v1/returns/",
        body_for(
            [{"line_id": l1.line_id, "quantity": 1, "reason": "too_small"}],
            shipment={"carrier": "ups", "tracking_number": "1Z999AA10123456784"},
        ),
    )
    assert response.status_code == 201
    data = response.json()
    assert data["shipment"]["carrier"] == "ups" and data["shipment"]["label_state"] == "none"
    assert data["milestones"][1]["source"] == "api"
    assert len(data["shipments"]) == 1


def test_multipart_with_photos(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    payload = body_for([{"line_id": l1.line_id, "quantity": 1, "reason": "damaged"}])
    response = client.post(
        "/api/v1/returns/",
        {
            "data": json.dumps(payload),
            "lines.0.photos": [
                upload("a.jpg", jpeg_bytes(gps=True)),
                upload("b.jpg", jpeg_bytes(color=(0, 0, 0))),
            ],
        },
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert response.status_code == 201, response.content
    assert response.json()["lines"][0]["photos"] == 2
    assert ReturnPhoto.objects.filter(tenant=tenant).count() == 2

    svg = client.post(
        "/api/v1/returns/",
        {"data": json.dumps(payload), "lines.0.photos": [upload("x.svg", svg_bytes())]},
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert svg.status_code == 400
    assert svg.json()["codes"]["lines"][0]["photos"] == ["photo_unsupported"]
    bad = client.post(
        "/api/v1/returns/",
        {"data": "{not json"},
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert bad.status_code == 400 and "data" in bad.json()


@pytest.mark.parametrize(
    ("field", "status", "body"),
    [
        # An index past the submitted lines: named by its field, not padded out to it.
        ("lines.5.photos", 400, {"lines.5.photos": ["No such line."]}),
        # A huge or non-ASCII index is not a line index at all (it once grew a list to it).
        ("lines.99999999999999999999.photos", 400, None),
        ("lines.\u00b2.photos", 400, None),
    ],
)
def test_photo_parts_for_lines_that_do_not_exist_are_400s(
    client, tenant, key, frozen, field, status, body
):
    _order, (l1, _l2) = order_with_lines(tenant)
    payload = body_for([{"line_id": l1.line_id, "quantity": 1, "reason": "damaged"}])
    response = client.post(
        "/api/v1/returns/",
        {"data": json.dumps(payload), field: [upload("a.jpg", jpeg_bytes())]},
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert response.status_code == status
    got = response.json()
    if body is None:
        assert got == {field: ["Unexpected file part; use lines.<i>.photos."]}
    else:
        assert {k: v for k, v in got.items() if k != "codes"} == body
        assert got["codes"] == {field: ["unknown_line"]}
    assert ReturnRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("setup", "lines", "extra", "path", "code"),
    [
        (
            "window",
            [{"sku": "SKU-1", "quantity": 1, "reason": "other"}],
            {},
            ("lines", 0, "quantity"),
            "window_closed",
        ),
        (
            "final",
            [{"sku": "SKU-1", "quantity": 1, "reason": "other"}],
            {},
            ("lines", 0, "quantity"),
            "final_sale",
        ),
        (
            None,
            [{"sku": "SKU-1", "quantity": 3, "reason": "other"}],
            {},
            ("lines", 0, "quantity"),
            "quantity_exceeds",
        ),
        (
            None,
            [{"sku": "SKU-1", "quantity": 1, "reason": "damaged"}],
            {},
            ("lines", 0, "photos"),
            "photo_required",
        ),
        (
            None,
            [{"sku": "SKU-1", "quantity": 1, "reason": "other"}],
            {"email": "x@y.example"},
            ("email",),
            "email_mismatch",
        ),
        (
            None,
            [{"sku": "SKU-1", "quantity": 1, "reason": "other"}],
            {"order_number": "9999"},
            ("order_number",),
            "order_not_found",
        ),
        (
            "ambiguous",
            [{"sku": "SKU-1", "quantity": 1, "reason": "other"}],
            {},
            ("lines", 0, "sku"),
            "ambiguous_sku",
        ),
        (
            None,
            [{"line_id": "li_nope", "quantity": 1, "reason": "other"}],
            {},
            ("lines", 0, "line_id"),
            "unknown_line",
        ),
    ],
    ids=["window", "final-sale", "quantity", "photo", "email", "order", "ambiguous-sku", "line"],
)
def test_refusals_are_400_naming_line_and_reason_and_write_nothing(
    client, tenant, key, setup, lines, extra, path, code
):
    _order, (_l1, l2) = order_with_lines(tenant)
    if setup == "final":
        ReturnPolicy.objects.filter(tenant=tenant).update(final_sale_skus=["sku-1"])
    if setup == "ambiguous":
        l2.sku = "SKU-1"
        l2.save()
    when = NOW + timedelta(days=90) if setup == "window" else NOW
    before = counts()
    with time_machine.travel(when, tick=False):
        response = post(client, key, "/api/v1/returns/", body_for(lines, **extra))
    assert response.status_code == 400, response.content
    data = response.json()
    codes, errors = data["codes"], data
    for part in path:
        codes, errors = codes[part], errors[part]
    assert code in codes
    assert errors and all(isinstance(m, str) and m for m in errors)
    assert counts() == before


def test_shape_errors_are_drf_400s(client, tenant, key, frozen):
    order_with_lines(tenant)
    response = post(client, key, "/api/v1/returns/", {"order_number": "1001", "lines": []})
    assert response.status_code == 400
    assert set(response.json()) >= {"email", "lines"}
    response = post(
        client, key, "/api/v1/returns/", body_for([{"sku": "SKU-1", "quantity": "many"}])
    )
    assert response.status_code == 400 and "lines" in response.json()


def test_idempotency_key_replays_and_rejects_a_different_body(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    body = body_for([{"line_id": l1.line_id, "quantity": 1, "reason": "other"}])
    first = post(client, key, "/api/v1/returns/", body, HTTP_IDEMPOTENCY_KEY="order-1001-a")
    replay = post(client, key, "/api/v1/returns/", body, HTTP_IDEMPOTENCY_KEY="order-1001-a")
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json() and replay["Idempotent-Replayed"] == "true"
    assert ReturnRequest.objects.count() == 1
    changed = dict(body, lines=[{"line_id": l1.line_id, "quantity": 2, "reason": "other"}])
    conflict = post(client, key, "/api/v1/returns/", changed, HTTP_IDEMPOTENCY_KEY="order-1001-a")
    assert conflict.status_code == 422
    assert conflict.json()["code"] == "idempotency_key_reused"
    assert ReturnRequest.objects.count() == 1
    # A refusal is an answer too: replayed, not re-run.
    refused = dict(body, email="x@y.example")
    r1 = post(client, key, "/api/v1/returns/", refused, HTTP_IDEMPOTENCY_KEY="bad-1")
    r2 = post(client, key, "/api/v1/returns/", refused, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert r1.status_code == r2.status_code == 400 and r1.json() == r2.json()
    # Keys are per tenant and lead the unique constraint.
    assert IdempotencyKey.objects.filter(tenant=tenant).count() == 2


def test_idempotency_key_replays_the_same_json_in_another_key_order(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    line = {"line_id": l1.line_id, "quantity": 1, "reason": "other"}
    first = post(client, key, "/api/v1/returns/", body_for([line]), HTTP_IDEMPOTENCY_KEY="k-order")
    reordered = client.post(
        "/api/v1/returns/",
        data=json.dumps(
            {
                "lines": [dict(reversed(line.items()))],
                "email": "buyer@example.com",
                "order_number": "#1001",
            },
            indent=2,
        ),
        content_type="application/json",
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_IDEMPOTENCY_KEY="k-order",
    )
    assert first.status_code == reordered.status_code == 201
    assert reordered["Idempotent-Replayed"] == "true"
    assert ReturnRequest.objects.count() == 1


def test_idempotency_key_in_progress_is_409(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    body = body_for([{"line_id": l1.line_id, "quantity": 1, "reason": "other"}])
    from returns_portal.api.idempotency import idempotency_claim

    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    import hashlib

    idempotency_claim(
        tenant=tenant,
        key="busy",
        method="POST",
        path="/api/v1/returns/",
        body_hash=hashlib.sha256(raw).hexdigest(),
        now=NOW,
    )
    busy = post(client, key, "/api/v1/returns/", body, HTTP_IDEMPOTENCY_KEY="busy")
    assert busy.status_code == 409 and busy["Retry-After"] == "1"
    frozen.shift(120)  # a crashed first request: the claim is taken over
    assert (
        post(client, key, "/api/v1/returns/", body, HTTP_IDEMPOTENCY_KEY="busy").status_code == 201
    )


def make_return(client, key, tenant, number="#1001", lines=1):
    _order, made = order_with_lines(tenant, number=number, lines=lines)
    response = post(
        client,
        key,
        "/api/v1/returns/",
        {
            "order_number": number,
            "email": "buyer@example.com",
            "lines": [{"line_id": ln.line_id, "quantity": 1, "reason": "other"} for ln in made],
        },
    )
    assert response.status_code == 201, response.content
    return ReturnRequest.objects.get(rma_number=response.json()["rma_number"], tenant=tenant)


def test_list_filters_and_pagination(client, tenant, other_tenant, key, other_key, frozen):
    first = make_return(client, key, tenant, "#1001")
    frozen.shift(3600)
    second = make_return(client, key, tenant, "#1002")
    milestone_reach(
        tenant=tenant,
        return_request=second,
        name="first_scan",
        reached_at=NOW,
        source="carrier",
        now=NOW,
    )
    page = get(client, key, "/api/v1/returns/").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 2 and [r["rma_number"] for r in page["results"]] == [
        second.rma_number,
        first.rma_number,
    ]
    assert get(client, key, "/api/v1/returns/", status="first_scan").json()["count"] == 1
    after = get(client, key, "/api/v1/returns/", created_after="2026-11-10T15:30:00Z").json()
    assert [r["rma_number"] for r in after["results"]] == [second.rma_number]
    before = get(client, key, "/api/v1/returns/", created_before="2026-11-10T15:30:00Z").json()
    assert [r["rma_number"] for r in before["results"]] == [first.rma_number]
    limited = get(client, key, "/api/v1/returns/", limit=1).json()
    assert len(limited["results"]) == 1 and limited["next"]
    assert get(client, key, "/api/v1/returns/", status="lost").status_code == 400
    # Another tenant's key on its own host sees none of them.
    theirs = get(client, other_key, "/api/v1/returns/", host="globex.localhost").json()
    assert theirs["count"] == 0


def test_detail_runs_a_fixed_number_of_queries(
    client, tenant, key, frozen, django_assert_num_queries
):
    small = make_return(client, key, tenant, "#1001", lines=1)
    big = make_return(client, key, tenant, "#1002", lines=6)
    from tests.tracking.conftest import sandbox_doc
    from tracking.ingest import tracking_events_ingest

    number = big.shipments.get().tracking_number
    tracking_events_ingest(
        tenant=tenant,
        provider="sandbox",
        body=sandbox_doc(
            (
                number,
                [
                    ("ACCEPTED", "2026-11-10T17:00:00Z"),
                    ("DEPARTED", "2026-11-10T23:00:00Z"),
                    ("ARRIVED", "2026-11-11T21:00:00Z"),
                ],
            )
        ),
        source="api",
        now=NOW,
    )
    for kind in ("no_movement", "transit_overdue"):
        exception_open(tenant=tenant, return_request=big, kind=kind, opened_at=NOW, reason="late")
    refund = Refund.objects.get(return_request=big)
    Refund.objects.filter(pk=refund.pk).update(
        amount=Decimal("123.4"), rule_name="Low risk", explanation="Refund after first scan"
    )
    return_refund_summary_update(
        return_request=big,
        now=NOW,
        refund_estimate_from=NOW + timedelta(days=1),
        refund_estimate_to=NOW + timedelta(days=3),
        refund_estimate_text="1-3 days after the first scan",
    )
    with django_assert_num_queries(11) as small_queries:
        small_response = get(client, key, f"/api/v1/returns/{small.rma_number}/")
    with django_assert_num_queries(len(small_queries.captured_queries)):
        big_response = get(client, key, f"/api/v1/returns/{big.rma_number.lower()}/")
    assert small_response.status_code == big_response.status_code == 200
    data = big_response.json()
    assert len(data["lines"]) == 6 and data["status"] == "in_transit"
    assert [(e["carrier_code"], e["status"], e["occurred_at"]) for e in data["events"]] == [
        ("ACCEPTED", "accepted", "2026-11-10T17:00:00Z"),
        ("DEPARTED", "in_transit", "2026-11-10T23:00:00Z"),
        ("ARRIVED", "in_transit", "2026-11-11T21:00:00Z"),
    ]
    assert set(data["events"][0]) == {
        "carrier",
        "tracking_number",
        "occurred_at",
        "occurred_at_local",
        "time_precision",
        "status",
        "exception_reason",
        "location",
        "carrier_code",
        "description",
    }
    assert data["refund"] == {
        "state": "pending",
        "amount": "123.40",
        "currency": "USD",
        "method": "original_payment",
        "rule": "Low risk",
        "explanation": "Refund after first scan",
        "estimate": {
            "from": "2026-11-11T15:00:00Z",
            "to": "2026-11-13T15:00:00Z",
            "text": "1-3 days after the first scan",
        },
    }
    assert [(e["kind"], e["state"], e["resolved_at"]) for e in data["exceptions"]] == [
        ("no_movement", "open", None),
        ("transit_overdue", "open", None),
    ]
    assert data["milestones"][5]["due_at"] is not None  # delivered: transit target


def test_attach_shipment(client, tenant, key, frozen):
    rr = make_return(client, key, tenant)
    path = f"/api/v1/returns/{rr.rma_number}/shipments/"
    created = post(client, key, path, {"carrier": "fedex", "tracking_number": "7946 1234 5678"})
    assert created.status_code == 201
    assert created.json()["tracking_number"] == "794612345678"
    assert created.json()["is_primary"] is False  # the sandbox label stays primary
    again = post(client, key, path, {"carrier": "fedex", "tracking_number": "794612345678"})
    assert again.status_code == 200
    bad = post(client, key, path, {"carrier": "pigeon", "tracking_number": "1"})
    assert bad.status_code == 400
    assert set(bad.json()["codes"]) == {"carrier", "tracking_number"}


def test_cross_tenant_is_the_same_404_as_missing(
    client, tenant, other_tenant, key, other_key, frozen
):
    rr = make_return(client, key, tenant)
    order_with_lines(other_tenant, number="#5005")
    for path in (
        f"/api/v1/returns/{rr.rma_number}/",
        "/api/v1/orders/1001/",
    ):
        foreign = get(client, other_key, path, host="globex.localhost")
        missing = get(
            client,
            other_key,
            path.replace("1001", "4040").replace(rr.rma_number, "RMA-999999"),
            host="globex.localhost",
        )
        assert foreign.status_code == missing.status_code == 404, path
        assert foreign.json() == missing.json()
    shipments = post(
        client,
        other_key,
        f"/api/v1/returns/{rr.rma_number}/shipments/",
        {"carrier": "ups", "tracking_number": "1Z999AA10123456784"},
        host="globex.localhost",
    )
    assert shipments.status_code == 404
    create = post(
        client,
        other_key,
        "/api/v1/returns/",
        body_for([{"sku": "SKU-1", "quantity": 1, "reason": "other"}]),
        host="globex.localhost",
    )
    assert create.status_code == 400 and create.json()["codes"]["order_number"] == [
        "order_not_found"
    ]
    # Our key on the other tenant's host: the same 404 as any missing object.
    wrong_host = get(client, key, f"/api/v1/returns/{rr.rma_number}/", host="globex.localhost")
    assert wrong_host.status_code == 404
    # On BASE_DOMAIN the key's tenant applies.
    base = get(client, key, f"/api/v1/returns/{rr.rma_number}/", host="localhost")
    assert base.status_code == 200
    assert (
        get(client, other_key, f"/api/v1/returns/{rr.rma_number}/", host="localhost").status_code
        == 404
    )


def test_requests_without_a_key_are_refused(client, tenant):
    assert client.get("/api/v1/returns/", HTTP_HOST=HOST).status_code in (401, 403)


def test_label_url_is_null_while_the_label_is_pending(client, tenant, key, frozen, settings):
    from rma import labels
    from tracking.apps import sandbox_label_provider

    order_with_lines(tenant)
    labels.register_label_provider(
        "sandbox", lambda request, *, timeout: labels.LabelOutcome.pending()
    )
    try:
        response = post(
            client,
            key,
            "/api/v1/returns/",
            body_for([{"sku": "SKU-1", "quantity": 1, "reason": "other"}]),
        )
    finally:
        labels.register_label_provider("sandbox", sandbox_label_provider)
    assert response.status_code == 201
    data = response.json()
    assert data["label_url"] is None and data["status"] == "requested"
    assert data["shipment"]["label_state"] == "pending"
    assert data["shipment"]["tracking_number"] is None


def test_create_return_with_an_exchange_line(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    lines = [
        {
            "line_id": l1.line_id,
            "quantity": 1,
            "reason": "too_small",
            "resolution": "exchange",
            "exchange_sku": "SKU-1-L",
        }
    ]
    response = post(client, key, "/api/v1/returns/", body_for(lines))
    assert response.status_code == 201, response.content
    (line,) = ReturnLine.objects.all()
    assert (line.resolution, line.exchange_sku) == ("exchange", "SKU-1-L")
    missing = post(client, key, "/api/v1/returns/", body_for([{**lines[0], "exchange_sku": ""}]))
    assert missing.status_code == 400
    assert missing.json()["codes"]["lines"][0]["exchange_sku"] == ["exchange_sku_required"]


def test_list_limit_is_capped_so_a_huge_limit_is_not_a_500(client, tenant, key, frozen):
    """An unbounded `limit` reached the database as LIMIT 10**20 (500: SQLite overflow,
    PostgreSQL `bigint out of range`); it is capped at `ApiPagination.max_limit`."""
    make_return(client, key, tenant)
    response = get(client, key, "/api/v1/returns/", limit="99999999999999999999")
    assert response.status_code == 200
    assert response.json()["count"] == 1 and len(response.json()["results"]) == 1


def test_put_order_without_totals_derives_them_from_the_lines(client, tenant, key, frozen):
    body = {
        "number": "#3001",
        "email": "sam@example.com",
        "currency": "USD",
        "placed_at": "2026-11-01T14:00:00Z",
        "fulfilled_at": "2026-11-02T10:00:00Z",
        "shipping": "5.00",
        "taxes": "8.00",
        "lines": [
            {
                "sku": "A",
                "quantity": 2,
                "unit_price": "40.00",
                "discount": "10.00",
                "fulfillment_status": "fulfilled",
            },
            {"sku": "B", "quantity": 1, "unit_price": "30.00", "fulfillment_status": "fulfilled"},
        ],
    }
    response = client.put(
        "/api/v1/orders/3001/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert response.status_code in (200, 201), response.content
    data = response.json()
    assert (data["subtotal"], data["total"]) == ("100.00", "113.00")
    given = {**body, "subtotal": "90.00", "total": "99.00"}
    again = client.put(
        "/api/v1/orders/3001/",
        data=json.dumps(given),
        content_type="application/json",
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )
    assert (again.json()["subtotal"], again.json()["total"]) == ("90.00", "99.00")


def test_create_return_in_the_customers_language(client, tenant, key, frozen):
    _order, (l1, l2) = order_with_lines(tenant)
    line = {"line_id": l1.line_id, "quantity": 1, "reason": "other"}
    german = post(client, key, "/api/v1/returns/", body_for([line], language="de"))
    assert german.status_code == 201, german.content
    assert ReturnRequest.objects.get(rma_number=german.json()["rma_number"]).language == "de"
    unknown = post(client, key, "/api/v1/returns/", body_for([line], language="xx"))
    assert unknown.status_code == 400 and "language" in unknown.json()
    other = {"line_id": l2.line_id, "quantity": 1, "reason": "other"}
    default = post(client, key, "/api/v1/returns/", body_for([other]))
    assert ReturnRequest.objects.get(rma_number=default.json()["rma_number"]).language == "en"


def test_pickup_window_too_long_is_a_400_that_writes_nothing(client, tenant, key, frozen):
    _order, (l1, _l2) = order_with_lines(tenant)
    before = counts()
    response = post(
        client,
        key,
        "/api/v1/returns/",
        body_for(
            [{"line_id": l1.line_id, "quantity": 1, "reason": "too_small"}],
            method="pickup",
            pickup={
                "address": "1 Main St",
                "window_start": "2026-11-12T09:00:00Z",
                "window_end": "2026-12-12T09:00:00Z",
            },
        ),
    )
    assert response.status_code == 400
    assert response.json() == {
        "pickup": {"window_end": ["A pickup window can be at most 7 days long."]},
        "codes": {"pickup": {"window_end": ["window_too_long"]}},
    }
    assert counts() == before
