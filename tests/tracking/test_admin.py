"""Tracking admin: tenant A's staff never sees B's events, payloads, unmatched
numbers, accounts, overrides or unmapped codes; secrets are encrypted and
write-only; overrides apply on save with history; the unmapped-codes page."""

from __future__ import annotations

import pytest

from returns_portal.tenancy import crypto
from tests.tracking.conftest import make_shipment, sandbox_doc, utc
from tracking.ingest import tracking_events_ingest
from tracking.models import (
    CarrierAccount,
    RawPayload,
    StatusOverride,
    TrackingEvent,
    UnmappedCode,
    UnmatchedTrackingNumber,
)
from tracking.services import carrier_account_save, status_override_save

pytestmark = pytest.mark.django_db
A_HOST, B_HOST, BASE = "acme.localhost", "globex.localhost", "localhost"
NOW = utc(2026, 11, 20)
DOC = sandbox_doc(
    ("SB1", [("ACCEPTED", "2026-11-10T10:00:00Z"), ("HUB_SCAN", "2026-11-11T10:00:00Z")])
)


@pytest.fixture
def world(tenant, other_tenant):
    """Both tenants with a shipment, events (one unmapped code), an unmatched
    number, a carrier account and an override."""
    rows = {}
    for key, t in (("a", tenant), ("b", other_tenant)):
        make_shipment(t, "SB1")
        tracking_events_ingest(tenant=t, provider="sandbox", body=DOC, source="api", now=NOW)
        tracking_events_ingest(
            tenant=t,
            provider="sandbox",
            body=sandbox_doc((f"LOST-{key}", [("ACCEPTED", "2026-11-10T10:00:00Z")])),
            source="api",
            now=NOW,
        )
        rows[f"{key}_account"] = carrier_account_save(
            tenant=t,
            carrier="ups",
            credentials={"client_id": f"id-{key}"},
            webhook_secret=f"whsec-{key}",
            now=NOW,
        )
        rows[f"{key}_override"] = status_override_save(
            tenant=t, carrier="sandbox", raw_code="SORTED", status="in_transit", now=NOW
        )
    return rows


LIST_URLS = [
    ("/admin/tracking/trackingevent/", TrackingEvent),
    ("/admin/tracking/rawpayload/", RawPayload),
    ("/admin/tracking/unmatchedtrackingnumber/", UnmatchedTrackingNumber),
    ("/admin/tracking/carrieraccount/", CarrierAccount),
    ("/admin/tracking/statusoverride/", StatusOverride),
    ("/admin/tracking/unmappedcode/", UnmappedCode),
]


@pytest.mark.parametrize(("url", "model"), LIST_URLS, ids=[u for u, _ in LIST_URLS])
@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_tracking_changelists_show_only_own_tenant(
    client, world, tenant, tenant_viewer, url, model, host
):
    client.force_login(tenant_viewer)
    response = client.get(url, HTTP_HOST=host)
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    mine = set(model.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert mine and shown == mine


@pytest.mark.parametrize("host", [A_HOST, BASE])
def test_tracking_change_forms_of_other_tenant_are_not_found(
    client, world, other_tenant, tenant_admin, host
):
    client.force_login(tenant_admin)
    theirs = [
        f"/admin/tracking/carrieraccount/{world['b_account'].pk}/change/",
        f"/admin/tracking/statusoverride/{world['b_override'].pk}/change/",
        f"/admin/tracking/statusoverride/{world['b_override'].pk}/history/",
        f"/admin/tracking/trackingevent/{TrackingEvent.objects.filter(tenant=other_tenant).first().pk}/change/",
        f"/admin/tracking/rawpayload/{RawPayload.objects.filter(tenant=other_tenant).first().pk}/change/",
    ]
    for url in theirs:
        response = client.get(url, HTTP_HOST=host)
        assert response.status_code in (302, 403, 404), url
        assert b"LOST-b" not in response.content


def test_tracking_admin_of_a_on_b_host_has_no_access(client, world, tenant_admin):
    client.force_login(tenant_admin)
    response = client.get("/admin/tracking/trackingevent/", HTTP_HOST=B_HOST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_carrier_account_secrets_are_encrypted_and_write_only(client, tenant, tenant_admin, world):
    account = world["a_account"]
    assert "whsec-a" not in account.webhook_secret_encrypted
    assert "id-a" not in account.credentials_encrypted
    assert crypto.decrypt(account.webhook_secret_encrypted) == "whsec-a"
    client.force_login(tenant_admin)
    page = client.get(f"/admin/tracking/carrieraccount/{account.pk}/change/", HTTP_HOST=A_HOST)
    assert page.status_code == 200
    assert b"whsec-a" not in page.content and b"id-a" not in page.content
    assert b"Stored keys: client_id" in page.content
    # add through the admin form on the tenant host
    response = client.post(
        "/admin/tracking/carrieraccount/add/",
        {
            "carrier": "easypost",
            "name": "EP",
            "credentials_json": '{"api_key": "EZAK123"}',
            "webhook_secret": "s3cr3t",
            "is_active": "on",
        },
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302, response.content
    ep = CarrierAccount.objects.get(tenant=tenant, carrier="easypost")
    assert crypto.decrypt_json(ep.credentials_encrypted) == {"api_key": "EZAK123"}
    assert crypto.decrypt(ep.webhook_secret_encrypted) == "s3cr3t"
    # an empty secret on change keeps the stored one
    client.post(
        f"/admin/tracking/carrieraccount/{ep.pk}/change/",
        {"name": "EP2", "credentials_json": "", "webhook_secret": "", "is_active": "on"},
        HTTP_HOST=A_HOST,
    )
    ep.refresh_from_db()
    assert ep.name == "EP2" and crypto.decrypt(ep.webhook_secret_encrypted) == "s3cr3t"


def test_carrier_account_viewer_cannot_add(client, tenant, tenant_viewer):
    client.force_login(tenant_viewer)
    response = client.post(
        "/admin/tracking/carrieraccount/add/",
        {"carrier": "ups", "credentials_json": "{}", "is_active": "on"},
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 403
    assert not CarrierAccount.objects.exists()


def test_unmapped_codes_page_and_override_from_the_admin(
    client, tenant, other_tenant, tenant_admin, world
):
    client.force_login(tenant_admin)
    page = client.get("/admin/tracking/unmappedcode/", HTTP_HOST=A_HOST)
    rows = list(page.context["cl"].result_list)
    assert [(r.carrier, r.raw_code, r.event_count, r.shipment_count) for r in rows] == [
        ("sandbox", "HUB_SCAN", 1, 1)
    ]
    assert rows[0].first_seen_at == NOW and rows[0].last_seen_at == NOW
    assert (
        b"/admin/tracking/statusoverride/add/?carrier=sandbox&amp;raw_code=HUB_SCAN" in page.content
    )
    response = client.post(
        "/admin/tracking/statusoverride/add/",
        {
            "carrier": "sandbox",
            "raw_code": "hub_scan",
            "status": "in_transit",
            "exception_reason": "",
            "note": "hub",
        },
        HTTP_HOST=A_HOST,
    )
    assert response.status_code == 302, response.content
    override = StatusOverride.objects.get(tenant=tenant, raw_code="HUB_SCAN")
    assert override.history.count() == 1
    assert TrackingEvent.objects.get(tenant=tenant, carrier_code="HUB_SCAN").status == "in_transit"
    assert (
        TrackingEvent.objects.get(tenant=other_tenant, carrier_code="HUB_SCAN").status == "unknown"
    )
    assert not UnmappedCode.objects.filter(tenant=tenant).exists()
    # an exception without a reason is a form error, not a 500
    bad = client.post(
        "/admin/tracking/statusoverride/add/",
        {"carrier": "sandbox", "raw_code": "X", "status": "exception", "exception_reason": ""},
        HTTP_HOST=A_HOST,
    )
    assert bad.status_code == 200 and bad.context["adminform"].form.errors


def test_raw_payload_replay_action_is_scoped(client, tenant, other_tenant, tenant_agent, world):
    client.force_login(tenant_agent)
    theirs = RawPayload.objects.filter(tenant=other_tenant).first()
    response = client.post(
        "/admin/tracking/rawpayload/",
        {"action": "replay", "_selected_action": [theirs.pk]},
        HTTP_HOST=BASE,
    )
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.attempts == 0
    mine = RawPayload.objects.filter(tenant=tenant).first()
    client.post(
        "/admin/tracking/rawpayload/",
        {"action": "replay", "_selected_action": [mine.pk]},
        HTTP_HOST=A_HOST,
    )
    mine.refresh_from_db()
    assert mine.attempts == 1 and mine.state == "processed"


def test_tracking_foreign_keys_stay_inside_one_tenant(world):
    from tests.test_tenancy_integrity import assert_foreign_keys_stay_in_tenant

    assert UnmatchedTrackingNumber.objects.count() == 2
    assert assert_foreign_keys_stay_in_tenant() >= 8
