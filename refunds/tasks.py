"""Refund tasks: thin nudges that load by id and tenant and call one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from refunds import services


@shared_task(name="refunds.refund_issue")
def refund_issue(refund_id: int, tenant_id: int) -> str:
    return services.refund_issue(tenant_id=tenant_id, refund_id=refund_id, now=timezone.now())


@shared_task(name="refunds.refund_recheck")
def refund_recheck(refund_id: int, tenant_id: int) -> str:
    return services.refund_recheck(tenant_id=tenant_id, refund_id=refund_id, now=timezone.now())
