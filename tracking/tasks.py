"""tracking tasks: thin nudges that load by id and tenant and call one service."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from returns_portal.tenancy.leases import job_lease
from rma.models import Shipment
from tracking.models import UnmatchedTrackingNumber
from tracking.polling import poll_due_run
from tracking.services import shipment_attach_unmatched
from tracking.webhooks import raw_payload_process

log = logging.getLogger(__name__)


@shared_task(name="tracking.payload_process")
def payload_process(payload_id: int, tenant_id: int) -> int | None:
    """Ingest a stored, verified payload (webhook delivery) still owed."""
    result = raw_payload_process(payload_id=payload_id, tenant_id=tenant_id, now=timezone.now())
    return result.stored if result is not None else None


@shared_task(name="tracking.unmatched_attach")
def unmatched_attach(unmatched_id: int, tenant_id: int) -> int:
    """Attach the kept events of an unmatched number to the tenant's shipment with it."""
    row = UnmatchedTrackingNumber.objects.filter(pk=unmatched_id, tenant_id=tenant_id).first()
    if row is None:
        log.warning("unmatched number %s of tenant %s not found", unmatched_id, tenant_id)
        return 0
    shipment = (
        Shipment.objects.select_related("tenant", "return_request")
        .filter(tenant_id=tenant_id, tracking_number=row.tracking_number)
        .order_by("-leg", "pk")
        .first()
    )
    if shipment is None:
        log.info("no shipment has %s yet", row.tracking_number)
        return 0
    return shipment_attach_unmatched(shipment=shipment, now=timezone.now())


@shared_task(name="tracking.poll_due")
def poll_due() -> int:
    """Beat: poll every due shipment once (single-flight through `JobLease`)."""
    with job_lease("poll_carriers", ttl=timedelta(minutes=10)) as holder:
        if holder is None:
            return 0
        report = poll_due_run(now=timezone.now())
        if report.calls:
            log.info(
                "polled %d shipment(s) in %d call(s): %d found, %d not found, %d errors",
                report.shipments,
                report.calls,
                report.found,
                report.not_found,
                report.errors,
            )
        return report.shipments


@shared_task(name="tracking.poll_tenant")
def poll_tenant(tenant_id: int) -> int:
    """Poll the due shipments of one tenant now (staff "refresh"); touches only that tenant."""
    return poll_due_run(now=timezone.now(), tenant_id=tenant_id).shipments
