"""Retention: expired idempotency keys and old raw payloads are forgotten; the
merchant's record (events, returns) and anything still owed work is kept."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command

from returns_portal import tasks
from returns_portal.models import IdempotencyKey
from returns_portal.retention import LEASE_NAME, idempotency_keys_prune, retention_prune
from returns_portal.tenancy.leases import lease_acquire, lease_release
from returns_portal.tenancy.models import JobLease
from returns_portal.tenancy.services import api_key_create
from rma.models import ReturnRequest
from rma.services import shipment_hooks_run_created
from tests.portal_helpers import NOW, order_with_lines
from tests.tracking.conftest import make_shipment, sandbox_doc
from tracking.ingest import raw_payload_reject, raw_payload_store, tracking_events_ingest
from tracking.models import PayloadState, RawPayload, TrackingEvent, UnmatchedTrackingNumber
from tracking.services import raw_payloads_prune

pytestmark = pytest.mark.django_db
HOST = "acme.localhost"
DAY = timedelta(days=1)
SCRIPT = [("ACCEPTED", "2026-11-10T17:00:00Z"), ("DELIVERED", "2026-11-12T17:00:00Z")]


def post_return(client, key, body, idem):
    return client.post(
        "/api/v1/returns/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_HOST=HOST,
        HTTP_AUTHORIZATION=f"Api-Key {key}",
        HTTP_IDEMPOTENCY_KEY=idem,
    )


def test_settings_defaults_and_the_hourly_beat_entry():
    assert settings.IDEMPOTENCY_KEY_TTL.total_seconds() == 24 * 3600
    assert settings.RAW_PAYLOAD_RETENTION_DAYS == 90
    assert settings.CELERY_BEAT_SCHEDULE["retention-prune"] == {
        "task": "returns_portal.retention_prune",
        "schedule": timedelta(hours=1),
    }


def test_an_idempotency_key_is_remembered_for_24_hours_then_free(client, tenant):
    key = api_key_create(tenant=tenant).raw_key
    _order, (l1, _l2) = order_with_lines(tenant)
    one = {
        "order_number": "#1001",
        "email": "buyer@example.com",
        "lines": [{"line_id": l1.line_id, "quantity": 1, "reason": "other"}],
    }
    # A different request under the same key: refused while remembered...
    other = dict(one, email="nobody@example.com")
    with time_machine.travel(NOW, tick=False) as clock:
        assert post_return(client, key, one, "k-1").status_code == 201
        clock.shift(timedelta(hours=23, minutes=59, seconds=59))
        assert post_return(client, key, other, "k-1").status_code == 422
        # ...and run as a new request once 24 h have passed (here a refusal: wrong e-mail).
        clock.shift(timedelta(seconds=1))
        fresh = post_return(client, key, other, "k-1")
        assert fresh.status_code == 400 and "Idempotent-Replayed" not in fresh
        again = post_return(client, key, other, "k-1")
        assert again.status_code == 400 and again["Idempotent-Replayed"] == "true"
    assert ReturnRequest.objects.count() == 1
    assert IdempotencyKey.objects.get(tenant=tenant, key="k-1").created_at == NOW + DAY


def _key(tenant, name, created_at, done=True):
    return IdempotencyKey.objects.create(
        tenant=tenant,
        key=name,
        method="POST",
        path="/api/v1/returns/",
        body_hash="0" * 64,
        status_code=201 if done else None,
        response_body={} if done else None,
        created_at=created_at,
    )


def test_expired_keys_of_every_tenant_are_deleted_and_younger_ones_kept(tenant, other_tenant):
    _key(tenant, "old", NOW - DAY)
    _key(other_tenant, "old", NOW - DAY - timedelta(hours=5))
    _key(tenant, "crashed", NOW - 2 * DAY, done=False)
    _key(tenant, "young", NOW - DAY + timedelta(minutes=1))
    _key(other_tenant, "young", NOW)
    assert idempotency_keys_prune(now=NOW, batch_size=1) == 3
    left = sorted(IdempotencyKey.objects.values_list("tenant__slug", "key"))
    assert left == [("acme", "young"), ("globex", "young")]
    assert idempotency_keys_prune(now=NOW) == 0


def ingest(tenant, body, at):
    return tracking_events_ingest(
        tenant=tenant, provider="sandbox", body=body, now=at, source="command"
    )


def test_old_processed_and_rejected_payloads_go_events_and_owed_work_stay(tenant, other_tenant):
    old, young = NOW - 91 * DAY, NOW - 89 * DAY
    shipment = make_shipment(tenant, "SB1")
    theirs = make_shipment(other_tenant, "SB2")
    ingest(tenant, sandbox_doc(("SB1", SCRIPT)), old)  # processed, old: deleted
    ingest(other_tenant, sandbox_doc(("SB2", SCRIPT)), old)  # other tenant, old: deleted
    ingest(tenant, sandbox_doc(("SB1", SCRIPT)), young)  # processed, young: kept
    ingest(tenant, sandbox_doc(("SB9", SCRIPT)), old)  # its number is unmatched: kept
    rejected = raw_payload_store(
        tenant=tenant, provider="easypost", body=b"{}", source="webhook", now=old, verified=False
    )
    raw_payload_reject(payload=rejected, code="signature", error="bad signature", now=old)
    raw_payload_store(  # owed processing
        tenant=tenant, provider="sandbox", body=b"{}", source="api", now=old
    )
    failed = raw_payload_store(tenant=tenant, provider="sandbox", body=b"{}", source="api", now=old)
    RawPayload.objects.filter(pk=failed.pk).update(state=PayloadState.FAILED)
    events_before = TrackingEvent.objects.count()

    assert raw_payloads_prune(before=NOW - 90 * DAY, batch_size=1) == 3
    kept = RawPayload.objects.order_by("pk")
    assert [(p.tenant_id, p.state, p.received_at) for p in kept] == [
        (tenant.pk, PayloadState.PROCESSED, young),
        (tenant.pk, PayloadState.PROCESSED, old),
        (tenant.pk, PayloadState.RECEIVED, old),
        (tenant.pk, PayloadState.FAILED, old),
    ]
    assert TrackingEvent.objects.count() == events_before
    assert TrackingEvent.objects.filter(shipment=theirs).count() == 2
    assert TrackingEvent.objects.filter(shipment=shipment, payload__isnull=True).exists()

    # Once the unmatched number gets its shipment, its payload has done its job.
    late = make_shipment(tenant, "SB9")
    shipment_hooks_run_created(late, now=NOW)
    assert UnmatchedTrackingNumber.objects.get().attached_at == NOW
    assert TrackingEvent.objects.filter(shipment=late).count() == 2
    assert raw_payloads_prune(before=NOW - 90 * DAY) == 1
    assert RawPayload.objects.filter(received_at=old).count() == 2  # owed and failed


def test_retention_zero_keeps_payloads_forever(tenant, settings):
    make_shipment(tenant, "SB1")
    ingest(tenant, sandbox_doc(("SB1", SCRIPT)), NOW - 400 * DAY)
    _key(tenant, "old", NOW - 2 * DAY)
    settings.RAW_PAYLOAD_RETENTION_DAYS = 0
    result = retention_prune(now=NOW)
    assert (result.idempotency_keys, result.raw_payloads) == (1, 0)
    assert RawPayload.objects.count() == 1
    settings.RAW_PAYLOAD_RETENTION_DAYS = 90
    assert retention_prune(now=NOW).raw_payloads == 1


def test_command_and_beat_task_run_under_the_lease(tenant, capsys, monkeypatch):
    _key(tenant, "a", NOW - 2 * DAY)
    _key(tenant, "b", NOW - 3 * DAY)
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    holder = lease_acquire(name=LEASE_NAME, ttl=timedelta(minutes=10))
    try:
        call_command("prune_retention")
        assert capsys.readouterr().out.strip() == "skipped: lease held"
        assert tasks.retention_prune() == []
        assert IdempotencyKey.objects.count() == 2
    finally:
        lease_release(name=LEASE_NAME, holder=holder)
    call_command("prune_retention")
    assert capsys.readouterr().out.splitlines() == [
        "idempotency keys deleted: 2",
        "raw payloads deleted: 0",
    ]
    _key(tenant, "c", NOW - 2 * DAY)
    assert tasks.retention_prune() == ["idempotency keys deleted: 1", "raw payloads deleted: 0"]
    assert not JobLease.objects.filter(name=LEASE_NAME).exists()
