"""Stripe and Shopify adapters against responses built from their documented shapes,
stubbed at the HTTP client (`httpx.MockTransport`); the Stripe webhook with signatures.
None of this talks to the live services."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from refunds import services
from refunds.gateways import http as gw_http
from refunds.gateways.base import ERROR, FAILED, NOT_FOUND, PENDING, SUCCEEDED, RefundRequest
from refunds.gateways.shopify import ShopifyGateway
from refunds.gateways.stripe import (
    SignatureError,
    StripeGateway,
    signature_header,
    stripe_amount,
    verify_signature,
)
from refunds.models import RefundTransaction
from tests.refunds.conftest import T0, make_order, make_return, refund_of

H = timedelta(hours=1)
KEY = "refund:5b0f1a2c-0000-4000-8000-000000000001"


def stripe_refund(
    status="succeeded", amount=5400, currency="usd", key=KEY, rid="re_1Nispe2eZvKYlo2Cd31jOCgZ"
):
    """A Refund object as in Stripe's API reference."""
    return {
        "id": rid,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_1Nispe2eZvKYlo2CYezqFhEx",
        "charge": "ch_1NirD82eZvKYlo2CIvbtLWuY",
        "created": 1692942318,
        "currency": currency,
        "destination_details": {
            "card": {"reference_status": "pending", "type": "refund"},
            "type": "card",
        },
        "metadata": {"idempotency_key": key, "order_number": "#1001"},
        "payment_intent": None,
        "reason": "requested_by_customer",
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


@pytest.fixture
def transport(monkeypatch):
    """Install a MockTransport whose handler the test sets; records requests."""

    class T:
        handler = None
        requests: list = []

    def handle(request):
        T.requests.append(request)
        return T.handler(request)

    monkeypatch.setattr(gw_http, "TRANSPORT", httpx.MockTransport(handle))
    T.requests = []
    return T


def req(reference="ch_1NirD82eZvKYlo2CIvbtLWuY", amount="54.00", currency="USD"):
    return RefundRequest(
        idempotency_key=KEY,
        amount=Decimal(amount),
        currency=currency,
        method="original_payment",
        order_reference=reference,
        order_number="#1001",
    )


# --- Stripe ---------------------------------------------------------------
def test_stripe_amounts_in_smallest_unit():
    assert stripe_amount(Decimal("54.00"), "USD") == 5400
    assert stripe_amount(Decimal("9899"), "JPY") == 9899
    assert stripe_amount(Decimal("1.500"), "KWD") == 1500


def test_stripe_create_sends_form_and_idempotency_key(transport):
    transport.handler = lambda r: httpx.Response(200, json=stripe_refund())
    result = StripeGateway(secret_key="sk_test_x").create(req())
    sent = transport.requests[0]
    assert (sent.method, str(sent.url)) == ("POST", "https://api.stripe.com/v1/refunds")
    assert sent.headers["Idempotency-Key"] == KEY
    assert sent.headers["Authorization"] == "Bearer sk_test_x"
    form = parse_qs(sent.content.decode())
    assert form["charge"] == ["ch_1NirD82eZvKYlo2CIvbtLWuY"]
    assert form["amount"] == ["5400"]
    assert form["metadata[idempotency_key]"] == [KEY]
    assert (result.status, result.reference) == (SUCCEEDED, "re_1Nispe2eZvKYlo2Cd31jOCgZ")


def test_stripe_payment_intent_reference(transport):
    transport.handler = lambda r: httpx.Response(200, json=stripe_refund(status="pending"))
    result = StripeGateway(secret_key="sk").create(req(reference="pi_1GszsK2eZvKYlo2CfhZyoZLp"))
    assert parse_qs(transport.requests[0].content.decode())["payment_intent"] == [
        "pi_1GszsK2eZvKYlo2CfhZyoZLp"
    ]
    assert result.status == PENDING


@pytest.mark.parametrize(
    ("status_code", "code", "expected"),
    [
        (400, "charge_already_refunded", FAILED),
        (402, "card_declined", FAILED),
        (409, "idempotency_error", ERROR),
        (429, "rate_limit", ERROR),
        (500, "api_error", ERROR),
    ],
)
def test_stripe_errors_permanent_or_transient(transport, status_code, code, expected):
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": code,
            "message": "Charge ch_1 has already been refunded.",
        }
    }
    transport.handler = lambda r: httpx.Response(status_code, json=body)
    result = StripeGateway(secret_key="sk").create(req())
    assert result.status == expected
    assert result.message.startswith(code)


def test_stripe_network_error_is_transient(transport):
    def fail(r):
        raise httpx.ConnectError("connection refused", request=r)

    transport.handler = fail
    assert StripeGateway(secret_key="sk").create(req()).status == ERROR


def test_stripe_lookup_matches_metadata_key(transport):
    listing = {
        "object": "list",
        "url": "/v1/refunds",
        "has_more": False,
        "data": [stripe_refund(key="refund:other", rid="re_other"), stripe_refund()],
    }
    transport.handler = lambda r: httpx.Response(200, json=listing)
    result = StripeGateway(secret_key="sk").lookup(req())
    sent = transport.requests[0]
    assert sent.method == "GET" and sent.url.params["charge"] == "ch_1NirD82eZvKYlo2CIvbtLWuY"
    assert (result.status, result.reference) == (SUCCEEDED, "re_1Nispe2eZvKYlo2Cd31jOCgZ")
    transport.handler = lambda r: httpx.Response(200, json={**listing, "data": []})
    assert StripeGateway(secret_key="sk").lookup(req()).status == NOT_FOUND


# --- Shopify --------------------------------------------------------------
SHOP_TXS = {
    "transactions": [
        {
            "id": 389404469,
            "order_id": 450789469,
            "kind": "authorization",
            "gateway": "bogus",
            "status": "success",
            "amount": "108.00",
            "currency": "USD",
            "parent_id": None,
        },
        {
            "id": 801038806,
            "order_id": 450789469,
            "kind": "capture",
            "gateway": "bogus",
            "status": "success",
            "amount": "108.00",
            "currency": "USD",
            "parent_id": 389404469,
        },
    ]
}


def shop_refund(status="success", note=f"Return refund #1001 [{KEY}]"):
    return {
        "id": 929361462,
        "order_id": 450789469,
        "created_at": "2026-11-30T10:00:00-05:00",
        "note": note,
        "user_id": None,
        "processed_at": "2026-11-30T10:00:00-05:00",
        "restock": False,
        "admin_graphql_api_id": "gid://shopify/Refund/929361462",
        "refund_line_items": [],
        "order_adjustments": [],
        "transactions": [
            {
                "id": 1068278509,
                "order_id": 450789469,
                "kind": "refund",
                "gateway": "bogus",
                "status": status,
                "message": "Bogus Gateway: Forced success",
                "amount": "54.00",
                "currency": "USD",
                "parent_id": 801038806,
                "test": True,
                "error_code": None,
            }
        ],
    }


def shopify_handler(existing=(), create_status=201, create_body=None):
    def handle(request):
        path = request.url.path
        if request.method == "GET" and path.endswith("/refunds.json"):
            return httpx.Response(200, json={"refunds": list(existing)})
        if request.method == "GET" and path.endswith("/transactions.json"):
            return httpx.Response(200, json=SHOP_TXS)
        if request.method == "POST" and path.endswith("/refunds.json"):
            return httpx.Response(
                create_status,
                json=create_body if create_body is not None else {"refund": shop_refund()},
            )
        return httpx.Response(404, json={"errors": "Not Found"})

    return handle


def test_shopify_create_refunds_the_capture_with_the_key_in_the_note(transport):
    transport.handler = shopify_handler()
    gw = ShopifyGateway(shop_domain="acme.myshopify.com", access_token="shpat_x")
    result = gw.create(req(reference="450789469"))
    paths = [(r.method, r.url.path) for r in transport.requests]
    assert paths == [
        ("GET", "/admin/api/2025-01/orders/450789469/refunds.json"),
        ("GET", "/admin/api/2025-01/orders/450789469/transactions.json"),
        ("POST", "/admin/api/2025-01/orders/450789469/refunds.json"),
    ]
    assert transport.requests[0].headers["X-Shopify-Access-Token"] == "shpat_x"
    body = json.loads(transport.requests[2].content)
    assert body["refund"]["transactions"] == [
        {"parent_id": 801038806, "amount": "54.00", "kind": "refund", "gateway": "bogus"}
    ]
    assert KEY in body["refund"]["note"]
    assert (result.status, result.reference) == (SUCCEEDED, "929361462")


def test_shopify_existing_refund_is_answered_not_resent(transport):
    transport.handler = shopify_handler(existing=[shop_refund(note="other"), shop_refund()])
    result = ShopifyGateway(shop_domain="acme.myshopify.com", access_token="t").create(
        req(reference="450789469")
    )
    assert [r.method for r in transport.requests] == ["GET"]
    assert result.status == SUCCEEDED


def test_shopify_pending_and_refused(transport):
    transport.handler = shopify_handler(create_body={"refund": shop_refund(status="pending")})
    assert (
        ShopifyGateway(shop_domain="s.myshopify.com", access_token="t")
        .create(req(reference="1"))
        .status
        == PENDING
    )
    transport.handler = shopify_handler(
        create_status=422,
        create_body={"errors": {"base": ["Amount cannot exceed the refundable amount"]}},
    )
    refused = ShopifyGateway(shop_domain="s.myshopify.com", access_token="t").create(
        req(reference="1")
    )
    assert refused.status == FAILED and "refundable" in refused.message


# --- gateway choice and credentials ----------------------------------------
@pytest.mark.django_db
def test_stripe_order_uses_stripe_with_decrypted_key(tenant, worker, transport):
    services.gateway_account_set(
        tenant=tenant,
        provider="stripe",
        credentials={"secret_key": "sk_test_acme"},
        webhook_secret="whsec_test",
    )
    order = make_order(tenant, risk="low", payment_reference="ch_1NirD82eZvKYlo2CIvbtLWuY")
    rr = make_return(order, [1])
    refund = refund_of(rr)
    transport.handler = lambda r: httpx.Response(
        200, json=stripe_refund(status="pending", key=refund.idempotency_key)
    )
    worker.reach(rr, "first_scan", T0 + H)
    refund = refund_of(rr)
    assert (refund.gateway, refund.state, refund.gateway_reference) == (
        "stripe",
        "issuing",
        "re_1Nispe2eZvKYlo2Cd31jOCgZ",
    )
    assert transport.requests[0].headers["Authorization"] == "Bearer sk_test_acme"
    from refunds.models import GatewayAccount

    stored = GatewayAccount.objects.get(tenant=tenant)
    assert "sk_test_acme" not in stored.credentials_encrypted


@pytest.mark.django_db
def test_shopify_order_uses_shopify(tenant, worker, transport):
    services.gateway_account_set(
        tenant=tenant,
        provider="shopify",
        credentials={"access_token": "shpat"},
        shop_domain="acme.myshopify.com",
    )
    rr = make_return(make_order(tenant, risk="low", shopify_id="450789469"), [1])
    key = refund_of(rr).idempotency_key
    transport.handler = shopify_handler(create_body={"refund": shop_refund(note=f"[{key}]")})
    worker.reach(rr, "first_scan", T0 + H)
    assert (refund_of(rr).gateway, refund_of(rr).state) == ("shopify", "issued")


@pytest.mark.django_db
def test_orders_without_connected_gateway_use_the_sandbox(tenant, worker):
    rr = make_return(
        make_order(tenant, risk="low", payment_reference="ch_123", shopify_id="42"), [1]
    )
    worker.reach(rr, "first_scan", T0 + H)
    assert (refund_of(rr).gateway, refund_of(rr).state) == ("sandbox", "issued")


# --- the Stripe webhook ---------------------------------------------------
def test_verify_signature_valid_tampered_stale():
    payload = b'{"id":"evt_1","type":"refund.updated"}'
    now = 1_800_000_000
    header = signature_header(payload, "whsec_test", now)
    verify_signature(payload=payload, header=header, secret="whsec_test", now=now + 299)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(payload=payload + b" ", header=header, secret="whsec_test", now=now)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(payload=payload, header=header, secret="whsec_other", now=now)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(payload=payload, header=header, secret="whsec_test", now=now + 301)
    with pytest.raises(SignatureError, match="malformed"):
        verify_signature(payload=payload, header="v1=abc", secret="whsec_test", now=now)
    # several v1 entries (secret roll): any may match
    rolled = header + ",v1=" + "0" * 64
    verify_signature(
        payload=payload,
        header=f"t={now},v1={'f' * 64},{header.split(',')[1]}",
        secret="whsec_test",
        now=now,
    )
    verify_signature(payload=payload, header=rolled, secret="whsec_test", now=now)


@pytest.mark.parametrize(
    "header",
    [
        "t=1800000000,v1=\u00e9",  # non-ASCII signature: compare_digest on str would raise
        "t=99999999999999999999,v1=00",
        "t=" + "9" * 5000 + ",v1=00",
        "t=\u0661\u0668\u0660\u0660,v1=00",  # Arabic-Indic digits: isdigit() but not int-able
    ],
)
def test_verify_signature_untrusted_header_is_a_signature_error(header):
    with pytest.raises(SignatureError):
        verify_signature(payload=b"{}", header=header, secret="whsec_test", now=1_800_000_000)


def test_verify_signature_signed_non_ascii_timestamp_is_malformed():
    stamp = "\u0661\u0668\u0660\u0660"
    digest = hmac.new(b"whsec_test", stamp.encode() + b".{}", hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError, match="malformed"):
        verify_signature(payload=b"{}", header=f"t={stamp},v1={digest}", secret="whsec_test", now=0)


@pytest.fixture
def stripe_issuing(tenant, worker, transport):
    services.gateway_account_set(
        tenant=tenant,
        provider="stripe",
        credentials={"secret_key": "sk"},
        webhook_secret="whsec_acme",
    )
    rr = make_return(
        make_order(tenant, risk="low", payment_reference="pi_1GszsK2eZvKYlo2CfhZyoZLp"), [1]
    )
    key = refund_of(rr).idempotency_key
    transport.handler = lambda r: httpx.Response(200, json=stripe_refund(status="pending", key=key))
    worker.reach(rr, "first_scan", T0 + H)
    assert refund_of(rr).state == "issuing"
    return rr


def post_event(
    client,
    rr,
    event,
    *,
    secret="whsec_acme",
    ts=None,
    tamper=False,
    host="acme.localhost",
    slug="acme",
):
    body = json.dumps(event).encode()
    header = signature_header(body, secret, ts if ts is not None else int(time.time()))
    if tamper:
        body = body.replace(b"succeeded", b"failed")
    return client.post(
        f"/webhooks/stripe/{slug}/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
        HTTP_HOST=host,
    )


def event_for(rr, status):
    return {
        "id": "evt_1",
        "object": "event",
        "type": "refund.updated",
        "created": 1692942318,
        "data": {"object": stripe_refund(status=status, key=refund_of(rr).idempotency_key)},
    }


@pytest.mark.django_db
def test_webhook_valid_signature_confirms_the_refund(client, stripe_issuing, worker):
    with worker.capture(execute=True):
        response = post_event(client, stripe_issuing, event_for(stripe_issuing, "succeeded"))
    assert response.status_code == 200
    assert response.json() == {"status": "issued"}
    refund = refund_of(stripe_issuing)
    assert refund.state == "issued"
    assert (
        RefundTransaction.objects.filter(refund=refund, kind="webhook", status="succeeded").count()
        == 1
    )
    # a redelivery changes nothing
    assert post_event(client, stripe_issuing, event_for(stripe_issuing, "succeeded")).json() == {
        "status": "skipped"
    }


@pytest.mark.django_db
def test_webhook_failed_refund_fails_and_opens_overdue(client, stripe_issuing):
    assert post_event(client, stripe_issuing, event_for(stripe_issuing, "failed")).json() == {
        "status": "failed"
    }
    assert refund_of(stripe_issuing).state == "failed"


@pytest.mark.django_db
def test_webhook_tampered_or_stale_or_wrong_secret_is_400_and_changes_nothing(
    client, stripe_issuing
):
    ev = event_for(stripe_issuing, "succeeded")
    assert post_event(client, stripe_issuing, ev, tamper=True).status_code == 400
    assert post_event(client, stripe_issuing, ev, ts=int(time.time()) - 301).status_code == 400
    assert post_event(client, stripe_issuing, ev, secret="whsec_other").status_code == 400
    assert refund_of(stripe_issuing).state == "issuing"
    assert not RefundTransaction.objects.filter(kind="webhook").exists()


@pytest.mark.django_db
def test_webhook_other_tenant_path_or_host_is_404(client, stripe_issuing, other_tenant):
    ev = event_for(stripe_issuing, "succeeded")
    assert (
        post_event(client, stripe_issuing, ev, slug="globex", host="globex.localhost").status_code
        == 404
    )
    assert (
        post_event(client, stripe_issuing, ev, slug="acme", host="globex.localhost").status_code
        == 404
    )
    assert (
        post_event(client, stripe_issuing, ev, host="localhost").status_code == 200
    )  # base domain, path tenant


@pytest.mark.django_db
def test_webhook_signed_body_of_the_wrong_shape_is_400_or_ignored(client, stripe_issuing):
    """Signed, so it passed verification, but not a Stripe event: never a 500."""
    assert post_event(client, stripe_issuing, []).status_code == 400
    assert post_event(client, stripe_issuing, []).json()["code"] == "bad_payload"
    for data in (
        "x",
        {"object": "x"},
        {"object": {"metadata": "x"}},
        {"object": {"metadata": {"idempotency_key": 7}}},
    ):
        event = {"id": "evt_9", "type": "refund.updated", "data": data}
        assert post_event(client, stripe_issuing, event).json() == {"status": "ignored"}
    assert refund_of(stripe_issuing).state == "issuing"


@pytest.mark.django_db
def test_webhook_ignores_other_events_and_foreign_refunds(client, stripe_issuing):
    other = {"id": "evt_2", "type": "charge.succeeded", "data": {"object": {"id": "ch_1"}}}
    assert post_event(client, stripe_issuing, other).json() == {"status": "ignored"}
    foreign = {
        "id": "evt_3",
        "type": "refund.updated",
        "data": {"object": stripe_refund(key="refund:not-a-uuid")},
    }
    assert post_event(client, stripe_issuing, foreign).json() == {"status": "ignored"}
