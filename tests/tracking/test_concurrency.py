"""Concurrent ingests of the same shipment on PostgreSQL row locks (marked
`postgres`; required in CI), and the webhook path end to end on a real
Celery worker subprocess (marked `live_worker`)."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from rma.models import Shipment
from tests.conftest import require_postgres
from tests.tracking.conftest import easypost_tracker, make_shipment, sandbox_doc
from tracking.ingest import tracking_events_ingest
from tracking.models import PayloadState, RawPayload, TrackingEvent, UnmatchedTrackingNumber
from tracking.services import carrier_account_save

NOW = datetime(2026, 11, 20, tzinfo=UTC)
EVENTS = [
    ("ACCEPTED", "2026-11-10T17:00:00Z"),
    ("DEPARTED", "2026-11-10T23:00:00Z"),
    ("ARRIVED", "2026-11-11T21:00:00Z"),
    ("OUT_FOR_DELIVERY", "2026-11-12T13:00:00Z"),
    ("DELIVERED", "2026-11-12T17:00:00Z"),
]


def _race(tenant, bodies: list[bytes]) -> list:
    barrier = threading.Barrier(len(bodies))
    results: list = [None] * len(bodies)
    errors: list = []

    def work(i: int, body: bytes) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = tracking_events_ingest(
                tenant=tenant, provider="sandbox", body=body, source="api", now=NOW
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i, b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_of_one_shipment_store_each_event_once(tenant):
    require_postgres()
    shipment = make_shipment(tenant, "SB1")
    bodies = [
        sandbox_doc(("SB1", EVENTS[:3])),
        sandbox_doc(("SB1", EVENTS[1:])),
        sandbox_doc(("SB1", EVENTS)),
        sandbox_doc(("SB1", EVENTS[::-1])),
    ]
    results = _race(tenant, bodies)
    assert sum(r.stored for r in results) == len(EVENTS)
    assert sum(r.duplicates for r in results) == 3 + 4 + 5 + 5 - len(EVENTS)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == len(EVENTS)
    shipment.refresh_from_db()
    assert shipment.status == "delivered"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_of_an_unmatched_number_keep_one_row(tenant):
    require_postgres()
    _race(tenant, [sandbox_doc(("SB404", EVENTS[:2]))] * 4)
    row = UnmatchedTrackingNumber.objects.get()
    assert row.times_seen == 4 and row.links.count() == 4


@pytest.mark.live_worker
@pytest.mark.django_db(transaction=True)
def test_webhook_delivery_is_processed_by_a_real_worker(client, tenant, live_worker):
    now = datetime.now(UTC)
    carrier_account_save(tenant=tenant, carrier="easypost", webhook_secret="live", now=now)
    shipment = make_shipment(tenant, "1Z999AA10123456784", carrier="ups", provider="easypost")
    body = easypost_tracker(
        "1Z999AA10123456784",
        [("delivered", None, now.strftime("%Y-%m-%dT%H:%M:%SZ"))],
        event_id="evt_live",
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    signature = "hmac-sha256-hex=" + hmac.new(b"live", body, hashlib.sha256).hexdigest()
    response = client.post(
        "/webhooks/easypost/acme/",
        data=body,
        content_type="application/json",
        HTTP_HOST="acme.localhost",
        HTTP_X_HMAC_SIGNATURE=signature,
    )
    assert response.status_code == 200
    delivery = RawPayload.objects.get(pk=response.json()["delivery"])
    assert live_worker(
        lambda: RawPayload.objects.get(pk=delivery.pk).state == PayloadState.PROCESSED
    )
    assert Shipment.objects.get(pk=shipment.pk).status == "delivered"
