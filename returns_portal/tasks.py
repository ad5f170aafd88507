"""Composition-root tasks: milestone dispatch and the outbox sweeper (beat, JobLease)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import current_app, shared_task
from django.conf import settings
from django.utils import timezone

from refunds import outbox as refunds_outbox
from returns_portal import workflows
from returns_portal.tenancy.leases import job_lease
from rma import outbox as rma_outbox
from tracking import outbox as tracking_outbox

log = logging.getLogger(__name__)

#: Each app's `owed(now=, older_than=)`: what it still owes, as (task name, args).
OUTBOX_SOURCES = [rma_outbox.owed, tracking_outbox.owed]
# --- refunds issue: approved/stale-issuing refunds and exception holds ---
OUTBOX_SOURCES.append(refunds_outbox.owed)


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


@shared_task(name="returns_portal.detect_exceptions")
def detect_exceptions() -> list[dict]:
    """Beat, every 5 minutes: run every detector under the `detect_exceptions` lease
    (a second beat or a double fire does nothing). Returns the per-kind summary."""
    from returns_portal.detection import LEASE_NAME, LEASE_TTL, detection_run

    with job_lease(LEASE_NAME, ttl=LEASE_TTL) as holder:
        if holder is None:
            return []
        summary = detection_run(now=timezone.now())
        return summary.lines()


@shared_task(name="returns_portal.due_times_recompute")
def due_times_recompute(tenant_id: int) -> int:
    """Recompute a tenant's due columns after an SLA policy edit (one run per tenant at
    a time, under the lease `due_times_recompute:<tenant id>`)."""
    from returns_portal.detection import due_times_recompute as recompute

    with job_lease(f"due_times_recompute:{tenant_id}", ttl=timedelta(minutes=30)) as holder:
        if holder is None:
            return 0
        return recompute(tenant_id=tenant_id, now=timezone.now())


@shared_task(name="returns_portal.retention_prune")
def retention_prune() -> list[str]:
    """Beat, hourly: forget expired idempotency keys and old raw payloads
    (`returns_portal.retention`) under the `retention_prune` lease."""
    from returns_portal.retention import LEASE_NAME, LEASE_TTL
    from returns_portal.retention import retention_prune as prune

    with job_lease(LEASE_NAME, ttl=LEASE_TTL) as holder:
        if holder is None:
            return []
        return prune(now=timezone.now()).lines()
