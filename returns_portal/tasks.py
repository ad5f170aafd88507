"""Composition-root tasks: milestone dispatch and the outbox sweeper (beat, JobLease)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.utils import timezone

from returns_portal import workflows
from returns_portal.tenancy.leases import job_lease
from rma import outbox as rma_outbox
from tracking import outbox as tracking_outbox

log = logging.getLogger(__name__)

#: Each app's `owed(now=, older_than=)`: what it still owes, as (task name, args).
OUTBOX_SOURCES = [rma_outbox.owed, tracking_outbox.owed]


@shared_task(name="returns_portal.dispatch_milestone")
def dispatch_milestone(milestone_id: int) -> bool:
    return workflows.milestone_dispatch(milestone_id=milestone_id, now=timezone.now())


def outbox_sweep_run(*, now: datetime, older_than: timedelta | None = None) -> int:
    """Re-enqueue everything still owed after `older_than` (default 2 minutes). Returns the count."""
    older_than = older_than if older_than is not None else settings.OUTBOX_SWEEP_AFTER
    sent = 0
    for source in OUTBOX_SOURCES:
        for task_name, args in source(now=now, older_than=older_than):
            current_app.send_task(task_name, args=args)
            sent += 1
    return sent


@shared_task(name="returns_portal.outbox_sweep")
def outbox_sweep() -> int:
    with job_lease("outbox_sweep", ttl=timedelta(minutes=2)) as holder:
        if holder is None:
            return 0
        count = outbox_sweep_run(now=timezone.now())
        if count:
            log.info("outbox sweep re-enqueued %d task(s)", count)
        return count
