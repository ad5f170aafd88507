"""rma tasks: thin nudges that load by id and tenant and call one service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from rma.notifications import notification_send as notification_send_service

log = logging.getLogger(__name__)


@shared_task(name="rma.notification_send")
def notification_send(notification_id: int, tenant_id: int) -> str:
    return notification_send_service(
        notification_id=notification_id, tenant_id=tenant_id, now=timezone.now()
    )


@shared_task(name="rma.label_purchase")
def label_purchase(shipment_id: int, tenant_id: int) -> str:
    """Buy a pending label (`rma.labels`) with the task timeout; returns the outcome status."""
    from rma.labels import TASK_TIMEOUT
    from rma.labels import label_purchase as label_purchase_service
    from rma.models import Shipment

    shipment = Shipment.objects.filter(pk=shipment_id, tenant_id=tenant_id).first()
    if shipment is None:
        log.warning("label_purchase: shipment %s of tenant %s is gone", shipment_id, tenant_id)
        return "missing"
    outcome = label_purchase_service(shipment=shipment, timeout=TASK_TIMEOUT, now=timezone.now())
    return str(outcome.status)
