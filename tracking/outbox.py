"""What `tracking` still owes (the database is the outbox); the composition
root's sweeper (`returns_portal.tasks.OUTBOX_SOURCES`) re-enqueues these."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef

from rma.models import Shipment
from tracking.models import PayloadState, RawPayload, UnmatchedTrackingNumber
from tracking.webhooks import PAYLOAD_PROCESS_TASK

BATCH = 1000
UNMATCHED_ATTACH_TASK = "tracking.unmatched_attach"


def owed(*, now: datetime, older_than: timedelta) -> list[tuple[str, list]]:
    """`(task name, args)` for verified payloads still `received` (webhook
    deliveries not yet processed) and for unmatched numbers that now have a
    shipment but were not attached (a shipment created while its payload was
    being ingested, or by code that skipped the hook), older than `older_than`,
    oldest first, at most `BATCH` of each."""
    cutoff = now - older_than
    work: list[tuple[str, list]] = []
    payloads = (
        RawPayload.objects.filter(
            state=PayloadState.RECEIVED, verified_at__isnull=False, received_at__lt=cutoff
        )
        .order_by("received_at")
        .values_list("pk", "tenant_id")[:BATCH]
    )
    for pk, tenant_id in payloads:
        work.append((PAYLOAD_PROCESS_TASK, [pk, tenant_id]))
    has_shipment = Shipment.objects.filter(
        tenant_id=OuterRef("tenant_id"), tracking_number=OuterRef("tracking_number")
    )
    unmatched = (
        UnmatchedTrackingNumber.objects.filter(attached_at__isnull=True, last_seen_at__lt=cutoff)
        .filter(Exists(has_shipment))
        .order_by("last_seen_at")
        .values_list("pk", "tenant_id")[:BATCH]
    )
    for pk, tenant_id in unmatched:
        work.append((UNMATCHED_ATTACH_TASK, [pk, tenant_id]))
    return work
