"""Badly shaped carrier payloads through every entry point (API, webhooks, the
outbox task, the commands): a clear `payload` error, the payload kept
`rejected` with the reason and never retried; out-of-range times are flagged
events, not failures (DESIGN.md sections 6, 9 and 10)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from returns_portal.tenancy.services import api_key_create
from rma.models import Milestone
from tests.tracking.conftest import make_shipment, utc
from tracking.carriers import registry
from tracking.carriers.base import (
    CarrierAdapter,
    TrackingResult,
    WebhookVerification,
    WebhookVerificationError,
)
from tracking.ingest import IngestError, payload_parse, raw_payload_store, tracking_events_ingest
from tracking.models import PayloadState, RawPayload, TrackingEvent
from tracking.outbox import owed
from tracking.services import carrier_account_save
from tracking.webhooks import raw_payload_process

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/tracking-events/"
NOW = utc(2026, 11, 30)
EASYPOST_BAD = {
    "object": "Tracker",
    "tracking_code": "EZ1",
    "carrier": "USPS",
    "tracking_details": "x",
}


def sandbox_event(**event: object) -> dict:
    return {"trackers": [{"tracking_number": "X1", "events": [event]}]}


@pytest.fixture
def acme_key(tenant):
    return api_key_create(tenant=tenant, name="test").raw_key


def post(client, key, data):
    return client.post(
        URL,
        data=json.dumps(data),
        content_type="application/json",
        HTTP_HOST="acme.localhost",
        HTTP_AUTHORIZATION=f"Api-Key {key}",
    )


# ----- POST /api/v1/tracking-events/


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {
                "carrier": "sandbox",
                "payload": sandbox_event(
                    code="DELIVERED", occurred_at="2026-11-29T20:00:00Z", location="paris"
                ),
            },
            "sandbox: trackers[0].events[0].location is a string, not an object",
        ),
        (
            {"carrier": "easypost", "payload": EASYPOST_BAD},
            "EasyPost: tracking_details is a string, not a list",
        ),
        (
            {"carrier": "sandbox", "payload": {"trackers": [{"events": [{"code": ["A", "B"]}]}]}},
            'expected an event code, got a list: ["A", "B"]',
        ),
        (
            {"carrier": "sandbox", "payload": {"trackers": ["X1"]}},
            "sandbox: trackers[0] is a string, not an object",
        ),
        (
            {"carrier": "ups", "payload": {"trackResponse": {"shipment": [{"package": 7}]}}},
            "UPS: shipment.package is a number, not a list",
        ),
    ],
)
def test_malformed_api_payload_is_400_payload_with_the_reason_and_kept(
    client, tenant, acme_key, data, reason
):
    make_shipment(tenant, "X1")
    response = post(client, acme_key, data)
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": f"payload cannot be parsed: {reason}", "code": "payload"}
    stored = RawPayload.objects.get()
    assert (stored.state, stored.error_code, stored.error) == ("rejected", "payload", reason)
    assert not TrackingEvent.objects.exists()


@pytest.mark.parametrize(
    ("occurred_at", "flag", "local_date"),
    [
        ("0001-01-01T00:00:00+14:00", "before_1990", "0001-01-01"),
        ("9999-12-31T23:59:59-14:00", "far_future", "9999-12-31"),
    ],
)
def test_malformed_unrepresentable_time_is_a_flagged_event_not_an_error(
    client, tenant, acme_key, occurred_at, flag, local_date
):
    """The wall time is valid but has no UTC instant Python can hold: the event
    is kept with its time rejected, like the 1900 sentinel (DESIGN.md section 6)."""
    shipment = make_shipment(tenant, "X1")
    payload = sandbox_event(
        code="DELIVERED", occurred_at=occurred_at, location={"city": "Paris", "country": "FR"}
    )
    response = post(client, acme_key, {"carrier": "sandbox", "payload": payload})
    assert response.status_code == 202, response.content
    assert (response.json()["events"], response.json()["stored"]) == (1, 1)
    event = TrackingEvent.objects.get()
    assert (event.occurred_at, event.time_flag, event.occurred_at_local) == (
        None,
        flag,
        occurred_at,
    )
    assert event.local_date.isoformat() == local_date
    assert event.status == "delivered"
    shipment.refresh_from_db()
    assert (shipment.status, shipment.status_at) == ("delivered", None)
    # a time that was rejected dates no milestone (never 0001-01-01)
    assert not Milestone.objects.filter(
        return_request=shipment.return_request, name__in=["first_scan", "delivered"]
    ).exists()


def test_malformed_flagged_event_follows_the_earlier_stage_for_milestones(client, tenant, acme_key):
    """A delivery with a rejected time still counts after the last timed lower
    stage (DESIGN.md section 5's rule for events without an instant)."""
    shipment = make_shipment(tenant, "X1")
    doc = {
        "trackers": [
            {
                "tracking_number": "X1",
                "events": [
                    {"code": "ACCEPTED", "occurred_at": "2026-11-28T09:00:00Z"},
                    {"code": "DELIVERED", "occurred_at": "9999-12-31T23:59:59-14:00"},
                ],
            }
        ]
    }
    assert post(client, acme_key, {"carrier": "sandbox", "payload": doc}).status_code == 202
    reached = dict(
        Milestone.objects.filter(return_request=shipment.return_request).values_list(
            "name", "reached_at"
        )
    )
    assert reached["first_scan"] == utc(2026, 11, 28, 9)
    assert reached["delivered"] == utc(2026, 11, 28, 9)


def test_malformed_nul_characters_are_dropped_from_stored_text(client, tenant, acme_key):
    """JSON may carry `\\u0000`; PostgreSQL text columns refuse it (that was a 500)."""
    shipment = make_shipment(tenant, "X1")
    doc = sandbox_event(
        code="ACC\u0000EPTED",
        description="Picked\u0000 up",
        occurred_at="2026-11-10T17:00:00Z",
        location={"city": "Re\u0000no", "region": "NV", "country": "US"},
    )
    doc["trackers"].append({"tracking_number": "X\u00002", "events": doc["trackers"][0]["events"]})
    response = post(client, acme_key, {"carrier": "sandbox", "payload": doc})
    assert response.status_code == 202, response.content
    assert response.json()["unmatched_numbers"] == ["X2"]
    event = TrackingEvent.objects.get(shipment=shipment)
    assert (event.carrier_code, event.description, event.location, event.status) == (
        "ACCEPTED",
        "Picked up",
        "Reno, NV, US",
        "accepted",
    )


# ----- the outbox task and the webhook path


def test_malformed_stored_payload_ends_rejected_and_is_not_retried(tenant):
    body = json.dumps(EASYPOST_BAD).encode()
    payload = raw_payload_store(
        tenant=tenant, provider="easypost", body=body, source="webhook", now=NOW
    )
    later = NOW + timedelta(minutes=5)
    assert owed(now=later, older_than=timedelta(minutes=2)) == [
        ("tracking.payload_process", [payload.pk, tenant.pk])
    ]
    assert raw_payload_process(payload_id=payload.pk, tenant_id=tenant.pk, now=later) is None
    payload.refresh_from_db()
    assert (payload.state, payload.error_code, payload.error, payload.attempts) == (
        "rejected",
        "payload",
        "EasyPost: tracking_details is a string, not a list",
        0,
    )
    assert owed(now=later + timedelta(minutes=5), older_than=timedelta(minutes=2)) == []


class OverflowingAdapter(CarrierAdapter):
    """A deliberately buggy adapter (the real ones no longer have such bugs):
    its parser raises what the old time code raised, and it accepts webhooks
    with the URL token equal to the secret."""

    code = "test_overflowing"
    name = "Overflowing test adapter"
    mapping = "sandbox"

    def parse_document(
        self, body: bytes, *, tracking_number: str | None, now: datetime
    ) -> list[TrackingResult]:
        raise OverflowError("date value out of range")

    def verify_webhook(self, *, headers, body, secret, now, query=None) -> WebhookVerification:
        if (query or {}).get("token") != secret:
            raise WebhookVerificationError("bad token")
        return WebhookVerification(provider=self.code)


@pytest.fixture
def overflowing() -> Iterator[CarrierAdapter]:
    adapter = OverflowingAdapter()
    registry.register(adapter)
    yield adapter
    registry._extra.pop(adapter.code, None)


def test_malformed_adapter_bug_is_a_payload_error_with_one_warning(overflowing, caplog):
    with caplog.at_level(logging.WARNING), pytest.raises(Exception) as info:
        payload_parse(adapter=overflowing, body=b"{}", now=NOW, payload_id=41)
    assert type(info.value).__name__ == "PayloadError"
    assert str(info.value) == "could not parse: OverflowError: date value out of range"
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records] == [
        (
            "WARNING",
            "test_overflowing adapter failed on payload 41: "
            "could not parse: OverflowError: date value out of range",
            None,
        )
    ]


def test_malformed_adapter_bug_rejects_an_ingest_and_a_stored_payload(tenant, overflowing):
    with pytest.raises(IngestError) as info:
        tracking_events_ingest(
            tenant=tenant, provider=overflowing.code, body=b"{}", source="api", now=NOW
        )
    assert info.value.code == "payload"
    assert info.value.payload.state == "rejected"
    owed_payload = raw_payload_store(
        tenant=tenant, provider=overflowing.code, body=b"{}", source="webhook", now=NOW
    )
    raw_payload_process(payload_id=owed_payload.pk, tenant_id=tenant.pk, now=NOW)
    owed_payload.refresh_from_db()
    assert (owed_payload.state, owed_payload.error_code, owed_payload.attempts) == (
        "rejected",
        "payload",
        0,
    )
    assert owed_payload.error == "could not parse: OverflowError: date value out of range"


def test_malformed_webhook_adapter_bug_is_400_with_a_warning_not_a_traceback(
    client, tenant, overflowing, caplog
):
    carrier_account_save(tenant=tenant, carrier=overflowing.code, webhook_secret="tok", now=NOW)
    with caplog.at_level(logging.WARNING):
        response = client.post(
            f"/webhooks/{overflowing.code}/acme/?token=tok",
            data=b'{"x": 1}',
            content_type="application/json",
            HTTP_HOST="acme.localhost",
        )
    assert response.status_code == 400
    assert response.json() == {
        "status": "rejected",
        "reason": "could not parse: OverflowError: date value out of range",
    }
    delivery = RawPayload.objects.get()
    assert (delivery.state, delivery.error_code) == (PayloadState.REJECTED, "payload")
    assert delivery.verified_at is not None  # replayable once the adapter is fixed
    ours = [(r.name, r.levelname, r.exc_info) for r in caplog.records if r.name != "django.request"]
    assert ours == [("tracking.ingest", "WARNING", None)]


def test_malformed_webhook_body_of_a_real_adapter_is_400_with_the_reason(client, tenant, caplog):
    carrier_account_save(tenant=tenant, carrier="shippo", webhook_secret="tok", now=NOW)
    body = json.dumps({"event": "track_updated", "data": {"tracking_history": 7}}).encode()
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/webhooks/shippo/acme/?token=tok",
            data=body,
            content_type="application/json",
            HTTP_HOST="acme.localhost",
        )
    assert response.status_code == 400
    assert response.json()["reason"] == "Shippo: tracking_history is a number, not a list"
    assert [r.name for r in caplog.records] == ["django.request"]  # its usual 4xx line only


# ----- the commands (DESIGN.md section 9: 2 when the input cannot be parsed)


@pytest.fixture
def bad_file(tmp_path) -> Path:
    path = tmp_path / "easypost.json"
    path.write_text(json.dumps(EASYPOST_BAD))
    return path


def test_malformed_normalize_events_exits_2_with_a_message(bad_file, tmp_path):
    with pytest.raises(CommandError) as info:
        call_command("normalize_events", "--carrier", "easypost", str(bad_file))
    assert info.value.returncode == 2
    assert str(info.value) == (
        f"cannot parse {bad_file}: EasyPost: tracking_details is a string, not a list"
    )
    env = {**os.environ, "SECRET_KEY": "x", "DATA_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "manage.py", "normalize_events", "--carrier", "easypost", str(bad_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "Traceback" not in proc.stderr
    assert "tracking_details is a string, not a list" in proc.stderr


def test_malformed_normalize_events_prints_a_flagged_time_as_null(tmp_path):
    path = tmp_path / "sandbox.json"
    path.write_text(
        json.dumps(sandbox_event(code="DELIVERED", occurred_at="0001-01-01T00:00:00+14:00"))
    )
    out = __import__("io").StringIO()
    call_command("normalize_events", "--carrier", "sandbox", str(path), stdout=out)
    line = json.loads(out.getvalue())
    assert (line["occurred_at"], line["occurred_at_local"], line["status"]) == (
        None,
        "0001-01-01T00:00:00+14:00",
        "delivered",
    )


def test_malformed_ingest_events_exits_2_and_keeps_the_payload_rejected(tenant, bad_file):
    with pytest.raises(CommandError) as info:
        call_command("ingest_events", "--tenant", "acme", "--carrier", "easypost", str(bad_file))
    assert info.value.returncode == 2
    assert "tracking_details is a string, not a list" in str(info.value)
    stored = RawPayload.objects.get()
    assert (stored.source, stored.state, stored.error_code) == ("command", "rejected", "payload")


def test_malformed_command_time_out_of_range_exits_2(bad_file):
    with pytest.raises(CommandError) as info:
        call_command(
            "normalize_events",
            "--carrier",
            "easypost",
            "--now",
            "0001-01-01T00:00:00+14:00",
            str(bad_file),
        )
    assert info.value.returncode == 2
    assert "out of range" in str(info.value)


def test_api_answers_503_when_ingest_fails_after_parsing_and_the_outbox_keeps_it(
    client, tenant, acme_key, monkeypatch
):
    """A database failure mid-ingest (injected: PostgreSQL itself does not fail on cue) is
    a 503 with Retry-After, not a 500; the stored payload stays owed for the outbox."""
    from django.db import OperationalError

    from tracking import ingest

    def broken(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ingest, "tracking_results_ingest", broken)
    response = post(
        client,
        acme_key,
        {"carrier": "sandbox", "payload": {"trackers": [{"tracking_number": "X1", "events": []}]}},
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["code"] == "unavailable"
    stored = RawPayload.objects.get(tenant=tenant)
    assert stored.state == PayloadState.RECEIVED
