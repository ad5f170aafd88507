"""What `rma` still owes (the database is the outbox): the sweeper re-enqueues these."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q

from rma.labels import LABEL_PURCHASE_TASK
from rma.models import LabelState, Milestone, Notification, NotificationState, Shipment
from rma.services import DISPATCH_MILESTONE_TASK, NOTIFICATION_SEND_TASK

BATCH = 1000


def owed(*, now: datetime, older_than: timedelta) -> list[tuple[str, list]]:
    """`(task name, args)` for milestones not dispatched, notifications still queued and
    labels still pending (and due for a try) for longer than `older_than`,
    oldest first, at most `BATCH` of each."""
    cutoff = now - older_than
    work: list[tuple[str, list]] = []
    for pk in (
        Milestone.objects.filter(dispatched_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:BATCH]
    ):
        work.append((DISPATCH_MILESTONE_TASK, [pk]))
    notifications = (
        Notification.objects.filter(state=NotificationState.QUEUED, created_at__lt=cutoff)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("pk", "tenant_id")[:BATCH]
    )
    for pk, tenant_id in notifications:
        work.append((NOTIFICATION_SEND_TASK, [pk, tenant_id]))
    labels = (
        Shipment.objects.filter(label_state=LabelState.PENDING, created_at__lt=cutoff)
        .filter(Q(label_next_attempt_at__isnull=True) | Q(label_next_attempt_at__lte=now))
        .order_by("created_at")
        .values_list("pk", "tenant_id")[:BATCH]
    )
    for pk, tenant_id in labels:
        work.append((LABEL_PURCHASE_TASK, [pk, tenant_id]))
    return work
