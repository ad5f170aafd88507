"""`POST /api/v1/tracking-events/` (DESIGN.md section 10): 202 with the ingest
summary, JSON or XML payloads, 400 with the reason, Idempotency-Key, and the
key's tenant only."""

from __future__ import annotations

import json

import pytest

from returns_portal.tenancy.services import api_key_create
from tests.tracking.conftest import FIXTURES, make_shipment, sandbox_doc
from tracking.models import RawPayload, TrackingEvent

pytestmark = pytest.mark.django_db
URL = "/api/v1/tracking-events/"
SCRIPT = [("ACCEPTED", "2026-11-10T17:00:00Z"), ("DEPARTED", "2026-11-10T23:00:00Z")]


@pytest.fixture
def acme_key(tenant):
    return api_key_create(tenant=tenant, name="test").raw_key


@pytest.fixture
def globex_key(other_tenant):
    return api_key_create(tenant=other_tenant, name="test").raw_key


def post(client, key, data, host="acme.localhost", **extra):
    return client.post(
        URL,
        data=json.dumps(data),
        content_type="application/json",
        HTTP_HOST=host,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        **extra,
    )


def test_api_tracking_events_json_payload_202_with_summary(client, tenant, acme_key):
    shipment = make_shipment(tenant, "SB1")
    payload = json.loads(sandbox_doc(("SB1", SCRIPT)))
    response = post(client, acme_key, {"carrier": "sandbox", "payload": payload})
    assert response.status_code == 202, response.content
    assert response.json() == {
        "events": 2,
        "stored": 2,
        "duplicates": 0,
        "unmatched_numbers": [],
        "shipments": [
            {
                "carrier": "sandbox",
                "tracking_provider": "sandbox",
                "tracking_number": "SB1",
                "leg": 1,
                "status": "in_transit",
                "exception_reason": None,
            }
        ],
    }
    shipment.refresh_from_db()
    assert shipment.status == "in_transit"
    assert RawPayload.objects.get().source == "api"


def test_api_tracking_events_xml_payload_as_a_string(client, tenant, acme_key):
    xml = (FIXTURES / "canadapost/track_pin_detail.xml").read_text(encoding="utf-8")
    response = post(client, acme_key, {"carrier": "canadapost", "payload": xml})
    assert response.status_code == 202, response.content
    assert response.json()["events"] > 0
    assert response.json()["unmatched_numbers"]  # no shipment: kept for later


def test_api_tracking_events_tracking_number_for_a_payload_without_one(client, tenant, acme_key):
    shipment = make_shipment(tenant, "SBX-HINT")
    doc = {"trackers": [{"events": [{"code": "ACCEPTED", "occurred_at": "2026-11-10T17:00:00Z"}]}]}
    response = post(
        client, acme_key, {"carrier": "sandbox", "tracking_number": "sbx-hint", "payload": doc}
    )
    assert response.status_code == 202
    shipment.refresh_from_db()
    assert shipment.status == "accepted"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"carrier": "sandbox", "payload": "<not-xml"}, "detail"),
        ({"carrier": "ups", "payload": {"hello": "world"}}, "detail"),
        ({"carrier": "pigeon", "payload": {}}, "carrier"),
        ({"carrier": "ups"}, "payload"),
        ({"carrier": "ups", "payload": 12}, "payload"),
    ],
)
def test_api_tracking_events_bad_input_is_400_with_reason(client, tenant, acme_key, data, field):
    response = post(client, acme_key, data)
    assert response.status_code == 400
    assert field in response.json()


def test_api_tracking_events_unparseable_payload_is_kept(client, tenant, acme_key):
    post(client, acme_key, {"carrier": "ups", "payload": "<TrackResponse><x>"})
    payload = RawPayload.objects.get()
    assert (payload.state, payload.error_code, payload.source) == ("rejected", "payload", "api")


def test_api_tracking_events_idempotency_key(client, tenant, acme_key):
    make_shipment(tenant, "SB1")
    data = {"carrier": "sandbox", "payload": json.loads(sandbox_doc(("SB1", SCRIPT)))}
    first = post(client, acme_key, data, HTTP_IDEMPOTENCY_KEY="k-1")
    again = post(client, acme_key, data, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202 and again.json() == first.json()
    assert RawPayload.objects.count() == 1 and TrackingEvent.objects.count() == 2
    other = {"carrier": "sandbox", "payload": json.loads(sandbox_doc(("SB1", SCRIPT[:1])))}
    assert post(client, acme_key, other, HTTP_IDEMPOTENCY_KEY="k-1").status_code == 422
    # without a key the same body is ingested again, idempotently
    plain = post(client, acme_key, data)
    assert (plain.json()["stored"], plain.json()["duplicates"]) == (0, 2)


def test_api_tracking_events_never_match_another_tenants_shipments(
    client, tenant, other_tenant, acme_key, globex_key
):
    theirs = make_shipment(other_tenant, "SB1")
    data = {"carrier": "sandbox", "payload": json.loads(sandbox_doc(("SB1", SCRIPT)))}
    response = post(client, acme_key, data, host="localhost")
    assert response.status_code == 202
    assert response.json()["unmatched_numbers"] == ["SB1"]
    assert response.json()["shipments"] == []
    theirs.refresh_from_db()
    assert theirs.status == "unknown"
    assert not TrackingEvent.objects.exists()
    # a key on another tenant's host gets the same 404 as a missing object
    assert post(client, globex_key, data, host="acme.localhost").status_code == 404
    # the same Idempotency-Key in two tenants is two keys
    a = post(client, acme_key, data, HTTP_IDEMPOTENCY_KEY="same")
    b = post(client, globex_key, data, host="globex.localhost", HTTP_IDEMPOTENCY_KEY="same")
    assert (a.status_code, b.status_code) == (202, 202)
    assert b.json()["shipments"][0]["status"] == "in_transit"


def test_api_tracking_events_needs_a_key(client, tenant):
    response = client.post(
        URL, data="{}", content_type="application/json", HTTP_HOST="acme.localhost"
    )
    assert response.status_code in (401, 403)


def test_api_deeply_nested_json_is_a_400_not_a_500(client, tenant, acme_key):
    """json.loads raises RecursionError (not ValueError) past Python's recursion limit:
    both the request body and a payload given as a string must answer 400."""
    deep = "[" * 100_000 + "]" * 100_000
    as_string = post(client, acme_key, {"carrier": "sandbox", "payload": deep})
    assert as_string.status_code == 400, as_string.content[:300]
    assert as_string.json()["code"] == "payload"
    body = client.post(
        URL,
        data='{"carrier": "sandbox", "payload": ' + deep + "}",
        content_type="application/json",
        HTTP_HOST="acme.localhost",
        HTTP_AUTHORIZATION=f"Api-Key {acme_key}",
    )
    assert body.status_code == 400, body.content[:300]
    assert body.json()["code"] == "parse_error"
