"""`POST /webhooks/<provider>/<tenant_slug>/`: stored first, verified on the
raw bytes, unsigned/tampered/stale/replayed deliveries rejected, 2xx fast with
processing from the outbox, malformed bodies kept for replay, tenancy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from rma.models import Shipment
from tests.tracking.conftest import CORPUS, corpus_or_skip, easypost_tracker, make_shipment, utc
from tracking.models import PayloadState, RawPayload, TrackingEvent
from tracking.outbox import owed
from tracking.services import carrier_account_save
from tracking.webhooks import PAYLOAD_PROCESS_TASK, raw_payload_process

pytestmark = pytest.mark.django_db
EASYPOST_SIGNATURE = (
    "hmac-sha256-hex=38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db"
)
FIXTURE_TIME = utc(2024, 8, 2, 19, 30)
NOW = utc(2026, 11, 20)


def post(client, path, body, host="acme.localhost", **headers):
    return client.post(path, data=body, content_type="application/json", HTTP_HOST=host, **headers)


def easypost_sign(body: bytes, secret: str = "ep-secret") -> str:
    return "hmac-sha256-hex=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def aftership_sign(body: bytes, secret: str = "as-secret") -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def accounts(tenant, other_tenant):
    for t in (tenant, other_tenant):
        carrier_account_save(tenant=t, carrier="easypost", webhook_secret="ep-secret", now=NOW)
        carrier_account_save(tenant=t, carrier="aftership", webhook_secret="as-secret", now=NOW)
        carrier_account_save(tenant=t, carrier="shippo", webhook_secret="shippo-token", now=NOW)


def official_body() -> bytes:
    corpus_or_skip()
    return (CORPUS / "easypost" / "tracker_updated_event_body.json").read_bytes()


def test_webhook_official_easypost_fixture_is_accepted_then_processed(
    client, tenant, sent, django_capture_on_commit_callbacks
):
    carrier_account_save(tenant=tenant, carrier="easypost", webhook_secret="sécret", now=NOW)
    shipment = make_shipment(tenant, "1", carrier="fedex", provider="easypost")
    body = official_body()
    with (
        time_machine.travel(FIXTURE_TIME, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(
            client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=EASYPOST_SIGNATURE
        )
    assert response.status_code == 200, response.content
    delivery = RawPayload.objects.get(pk=response.json()["delivery"])
    assert response.json() == {"status": "accepted", "delivery": delivery.pk}
    assert bytes(delivery.body) == body
    assert (delivery.state, delivery.event_id, delivery.source) == ("received", "evt_1", "webhook")
    assert delivery.verified_at is not None
    assert delivery.headers["x-hmac-signature"] == EASYPOST_SIGNATURE
    assert sent == [(PAYLOAD_PROCESS_TASK, [delivery.pk, tenant.pk])]
    # nothing processed in the request: the worker does it
    assert not TrackingEvent.objects.exists()
    result = raw_payload_process(payload_id=delivery.pk, tenant_id=tenant.pk, now=FIXTURE_TIME)
    assert result is not None and result.stored > 0
    shipment.refresh_from_db()
    assert shipment.status == "in_transit"
    delivery.refresh_from_db()
    assert delivery.state == PayloadState.PROCESSED
    # a second run of the task (sweeper + original) does nothing
    assert (
        raw_payload_process(payload_id=delivery.pk, tenant_id=tenant.pk, now=FIXTURE_TIME) is None
    )
    # the wrong tenant id finds nothing
    assert (
        raw_payload_process(payload_id=delivery.pk, tenant_id=tenant.pk + 1, now=FIXTURE_TIME)
        is None
    )


@pytest.mark.parametrize(
    "mutate",
    ["tampered", "reserialized", "trailing_newline", "wrong_secret", "unsigned"],
)
def test_webhook_easypost_bad_signatures_are_rejected_and_kept(client, tenant, mutate):
    secret = "wrong" if mutate == "wrong_secret" else "sécret"
    carrier_account_save(tenant=tenant, carrier="easypost", webhook_secret=secret, now=NOW)
    body = official_body()
    if mutate == "tampered":
        body = body.replace(b'"in_transit"', b'"delivered"', 1)
    elif mutate == "reserialized":
        body = json.dumps(json.loads(body)).encode()
    elif mutate == "trailing_newline":
        body += b"\n"
    headers = {} if mutate == "unsigned" else {"HTTP_X_HMAC_SIGNATURE": EASYPOST_SIGNATURE}
    with time_machine.travel(FIXTURE_TIME, tick=False):
        response = post(client, "/webhooks/easypost/acme/", body, **headers)
    assert response.status_code == 401
    assert response.json()["status"] == "rejected"
    delivery = RawPayload.objects.get()
    assert (delivery.state, delivery.error_code) == ("rejected", "signature")
    assert delivery.verified_at is None and bytes(delivery.body) == body
    assert owed(now=FIXTURE_TIME + timedelta(hours=1), older_than=timedelta(minutes=2)) == []


def test_webhook_replayed_event_id_is_a_duplicate(client, tenant, sent):
    carrier_account_save(tenant=tenant, carrier="easypost", webhook_secret="sécret", now=NOW)
    body = official_body()
    with time_machine.travel(FIXTURE_TIME, tick=False):
        first = post(
            client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=EASYPOST_SIGNATURE
        )
        again = post(
            client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=EASYPOST_SIGNATURE
        )
    assert first.status_code == 200 and again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["duplicate_of"] == first.json()["delivery"]
    dup = RawPayload.objects.get(pk=again.json()["delivery"])
    assert (dup.state, dup.error_code, dup.event_id) == ("rejected", "duplicate", "")


def test_webhook_stale_easypost_delivery_is_rejected(client, tenant):
    carrier_account_save(tenant=tenant, carrier="easypost", webhook_secret="sécret", now=NOW)
    with time_machine.travel(FIXTURE_TIME + timedelta(days=4), tick=False):
        response = post(
            client,
            "/webhooks/easypost/acme/",
            official_body(),
            HTTP_X_HMAC_SIGNATURE=EASYPOST_SIGNATURE,
        )
    assert response.status_code == 400
    assert RawPayload.objects.get().error_code == "stale"


def aftership_body(event_id: str | None, ts: int, number: str = "1Z999AA10123456784") -> bytes:
    envelope = {
        "event": "tracking_update",
        "ts": ts,
        "msg": {
            "tracking_number": number,
            "slug": "ups",
            "tag": "InTransit",
            "checkpoints": [
                {
                    "tag": "InTransit",
                    "subtag": "InTransit_002",
                    "message": "Origin Scan",
                    "checkpoint_time": "2026-11-19T18:00:00-05:00",
                    "city": "Louisville",
                    "state": "KY",
                    "country_iso3": "USA",
                }
            ],
        },
    }
    if event_id:
        envelope["event_id"] = event_id
    return json.dumps(envelope).encode()


@time_machine.travel(NOW, tick=False)
def test_webhook_aftership_digest_replay_window_and_stale_ts(client, tenant, accounts):
    body = aftership_body(None, int(NOW.timestamp()) - 60)
    first = post(
        client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body)
    )
    again = post(
        client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body)
    )
    assert first.json()["status"] == "accepted"
    assert again.json()["status"] == "duplicate"
    old = aftership_body("e-old", int((NOW - timedelta(days=5)).timestamp()))
    stale = post(
        client, "/webhooks/aftership/acme/", old, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(old)
    )
    assert stale.status_code == 400 and "outside the window" in stale.json()["reason"]


@time_machine.travel(NOW, tick=False)
def test_webhook_digest_outside_the_window_is_accepted_again(client, tenant, accounts, settings):
    settings.TRACKING_WEBHOOK_REPLAY_WINDOW = timedelta(hours=1)
    body = aftership_body(None, int(NOW.timestamp()))
    post(client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body))
    RawPayload.objects.update(received_at=NOW - timedelta(hours=2))
    again = post(
        client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body)
    )
    assert again.json()["status"] == "accepted"


@time_machine.travel(NOW, tick=False)
def test_webhook_malformed_body_is_4xx_with_reason_and_kept_for_replay(client, tenant, accounts):
    body = b'{"event": "tracking_update", "msg": "oops"}'
    response = post(
        client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body)
    )
    assert response.status_code == 400
    assert "no tracking object" in response.json()["reason"]
    delivery = RawPayload.objects.get()
    assert (delivery.state, delivery.error_code) == ("rejected", "payload")
    assert delivery.verified_at is not None
    with pytest.raises(CommandError) as info:
        call_command("replay_webhooks", "--provider", "aftership")
    assert info.value.returncode == 2


@time_machine.travel(NOW, tick=False)
def test_webhook_shippo_token_in_the_query(client, tenant, accounts):
    shipment = make_shipment(tenant, "9205590164917337534322", carrier="usps", provider="shippo")
    body = json.dumps(
        {
            "event": "track_updated",
            "test": True,
            "data": {
                "carrier": "usps",
                "tracking_number": "9205590164917337534322",
                "tracking_status": {
                    "status": "TRANSIT",
                    "status_date": "2026-11-19T10:00:00Z",
                    "status_details": "Accepted",
                },
                "tracking_history": [
                    {
                        "status": "TRANSIT",
                        "status_date": "2026-11-19T10:00:00Z",
                        "status_details": "Accepted at USPS Origin Facility",
                        "location": {
                            "city": "Reno",
                            "state": "NV",
                            "zip": "89502",
                            "country": "US",
                        },
                    }
                ],
            },
        }
    ).encode()
    bad = post(client, "/webhooks/shippo/acme/?token=nope", body)
    good = post(client, "/webhooks/shippo/acme/?token=shippo-token", body)
    assert bad.status_code == 401 and good.status_code == 200, good.content
    delivery = RawPayload.objects.get(pk=good.json()["delivery"])
    assert "token" not in json.dumps(delivery.headers)
    raw_payload_process(payload_id=delivery.pk, tenant_id=tenant.pk, now=NOW)
    shipment.refresh_from_db()
    assert shipment.status != "unknown"


def test_webhook_without_a_configured_secret_is_refused(client, tenant):
    response = post(client, "/webhooks/easypost/acme/", b"{}", HTTP_X_HMAC_SIGNATURE="x")
    assert response.status_code == 401
    assert RawPayload.objects.get().error_code == "secret"


def test_webhook_unknown_tenant_provider_and_foreign_host_are_404(
    client, tenant, other_tenant, accounts
):
    assert post(client, "/webhooks/easypost/nobody/", b"{}").status_code == 404
    assert post(client, "/webhooks/pigeon/acme/", b"{}").status_code == 404
    # globex's path on acme's host
    assert (
        post(client, "/webhooks/easypost/globex/", b"{}", host="acme.localhost").status_code == 404
    )
    assert client.get("/webhooks/easypost/acme/", HTTP_HOST="acme.localhost").status_code == 405
    assert not RawPayload.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_webhook_on_base_domain_takes_the_tenant_from_the_path(
    client, tenant, other_tenant, accounts
):
    body = easypost_tracker(
        "1Z999AA10123456784",
        [("in_transit", None, "2026-11-19T10:00:00Z")],
        event_id="evt_b1",
        created_at="2026-11-19T23:00:00Z",
    )
    response = post(
        client,
        "/webhooks/easypost/globex/",
        body,
        host="localhost",
        HTTP_X_HMAC_SIGNATURE=easypost_sign(body),
    )
    assert response.status_code == 200
    assert RawPayload.objects.get().tenant == other_tenant


@time_machine.travel(NOW, tick=False)
def test_webhook_for_another_tenant_never_touches_this_tenants_shipments(
    client, tenant, other_tenant, accounts
):
    mine = make_shipment(tenant, "1Z999AA10123456784", carrier="ups", provider="easypost")
    theirs = make_shipment(other_tenant, "1Z999AA10123456784", carrier="ups", provider="easypost")
    body = easypost_tracker(
        "1Z999AA10123456784",
        [("delivered", None, "2026-11-19T10:00:00Z")],
        event_id="evt_x",
        created_at="2026-11-19T23:00:00Z",
    )
    response = post(
        client,
        "/webhooks/easypost/globex/",
        body,
        host="localhost",
        HTTP_X_HMAC_SIGNATURE=easypost_sign(body),
    )
    raw_payload_process(payload_id=response.json()["delivery"], tenant_id=other_tenant.pk, now=NOW)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("unknown", "delivered")
    # the same event id for another tenant is not a duplicate of this one
    response = post(
        client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=easypost_sign(body)
    )
    assert response.json()["status"] == "accepted"


def test_webhook_never_answers_500(client, tenant, monkeypatch):
    def boom(**kwargs):
        raise RuntimeError("database is down")

    monkeypatch.setattr("tracking.views.webhook_receive", boom)
    response = post(client, "/webhooks/easypost/acme/", b"{}")
    assert response.status_code == 503
    assert response["Retry-After"] == "60"


@time_machine.travel(NOW, tick=False)
def test_webhook_lost_task_is_swept_and_replay_command_processes_received(
    client, tenant, accounts, capsys
):
    make_shipment(tenant, "1Z999AA10123456784", carrier="ups", provider="easypost")
    body = easypost_tracker(
        "1Z999AA10123456784",
        [("in_transit", None, "2026-11-19T10:00:00Z")],
        event_id="evt_lost",
        created_at="2026-11-19T23:00:00Z",
    )
    response = post(
        client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=easypost_sign(body)
    )
    delivery_id = response.json()["delivery"]
    assert (PAYLOAD_PROCESS_TASK, [delivery_id, tenant.pk]) in owed(
        now=NOW + timedelta(minutes=3), older_than=timedelta(minutes=2)
    )
    assert owed(now=NOW + timedelta(minutes=1), older_than=timedelta(minutes=2)) == []
    call_command("replay_webhooks", "--tenant", "acme", "--since", "2026-11-19T00:00:00Z")
    line = json.loads(capsys.readouterr().out.strip())
    assert line == {
        "id": delivery_id,
        "provider": "easypost",
        "tenant": "acme",
        "state": "processed",
        "events": 1,
        "stored": 1,
        "duplicates": 0,
        "unmatched_numbers": [],
    }
    assert Shipment.objects.get(tenant=tenant).status == "in_transit"
    # replaying again is idempotent, by id
    call_command("replay_webhooks", "--id", str(delivery_id))
    assert json.loads(capsys.readouterr().out.strip())["stored"] == 0


def test_webhook_verifier_bug_keeps_the_delivery_and_answers_503(
    client, tenant, accounts, monkeypatch
):
    from tracking.carriers.registry import get_adapter

    def crash(**kwargs):
        raise ZeroDivisionError("verifier bug")

    monkeypatch.setattr(get_adapter("aftership"), "verify_webhook", crash)
    body = aftership_body("e-crash", int(NOW.timestamp()))
    with time_machine.travel(NOW, tick=False):
        response = post(client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256="x")
    assert response.status_code == 503
    delivery = RawPayload.objects.get()
    assert (delivery.error_code, bytes(delivery.body)) == ("internal", body)


@time_machine.travel(NOW, tick=False)
def test_webhook_shippo_huge_signature_timestamp_is_401_not_503(client, tenant, accounts, caplog):
    response = post(
        client,
        "/webhooks/shippo/acme/",
        b"{}",
        HTTP_SHIPPO_AUTH_SIGNATURE="t=99999999999999999999,v1=00",
    )
    assert response.status_code == 401
    assert response.json() == {"status": "rejected", "reason": "malformed Shippo-Auth-Signature"}
    delivery = RawPayload.objects.get()
    assert (delivery.state, delivery.error_code, delivery.verified_at) == (
        "rejected",
        "signature",
        None,
    )
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("ts", ["1e300", "-1e300", "99999999999999999999"])
def test_webhook_aftership_signed_ts_out_of_range_is_stale(client, tenant, accounts, ts):
    body = (
        f'{{"event": "tracking_update", "event_id": "e-far", "ts": {ts}, '
        '"msg": {"tracking_number": "1Z1", "checkpoints": []}}'
    ).encode()
    response = post(
        client, "/webhooks/aftership/acme/", body, HTTP_AFTERSHIP_HMAC_SHA256=aftership_sign(body)
    )
    assert response.status_code == 400
    assert "outside the window" in response.json()["reason"]
    assert RawPayload.objects.get().error_code == "stale"


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("created_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_webhook_easypost_created_at_out_of_range_is_stale(client, tenant, accounts, created_at):
    body = easypost_tracker(
        "1Z999AA10123456784",
        [("in_transit", None, "2026-11-19T10:00:00Z")],
        event_id="evt_far",
        created_at=created_at,
    )
    response = post(
        client, "/webhooks/easypost/acme/", body, HTTP_X_HMAC_SIGNATURE=easypost_sign(body)
    )
    assert response.status_code == 400
    assert response.json()["reason"].startswith(f"delivery signed at {created_at[:10]}")
    assert RawPayload.objects.get().error_code == "stale"
