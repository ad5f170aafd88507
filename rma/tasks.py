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
