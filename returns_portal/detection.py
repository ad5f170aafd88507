"""Exception detection runner (composition root; issue 5, DESIGN.md sections 2, 8, 9).

Runs every app's detectors (`tracking.detectors`, `rma.detectors`,
`refunds.detectors`) through `rma.detection.run_detector`, then auto-escalation
(`rma.exception_services.exceptions_auto_escalate`). Run by beat every 5
minutes (`returns_portal.detect_exceptions`) and by `manage.py
detect_exceptions`, both under the `JobLease` `detect_exceptions`.

Also the milestone reaction that keeps due columns current
(`due_times_refresh_reaction`, listed last in `workflows.REACTIONS`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction

from refunds import detectors as refund_detectors
from refunds.due_times import refunds_due_times_refresh_for_return
from rma import detectors as rma_detectors
from rma.detection import DetectionContext, Detector, KindCounts, run_detector
from rma.exception_services import exceptions_auto_escalate
from rma.models import ExceptionKind, ReturnRequest
from rma.services import return_clock_refresh
from tracking import detectors as tracking_detectors

log = logging.getLogger(__name__)

LEASE_NAME = "detect_exceptions"
#: Longer than a run at 1,000,000 open returns takes; a crashed holder frees it after this.
LEASE_TTL = timedelta(minutes=10)
#: A `--now` more than this before the wall clock is a replay: it opens and escalates only.
REPLAY_TOLERANCE = timedelta(minutes=1)

#: Every detector, in the order of DESIGN.md section 5's kinds.
DETECTORS: list[Detector] = [
    *tracking_detectors.DETECTORS,
    *rma_detectors.DETECTORS,
    *refund_detectors.DETECTORS,
]


@dataclass
class DetectionSummary:
    """Counts per kind (every kind of DESIGN.md section 5, zeros included)."""

    now: datetime
    resolve: bool
    dry_run: bool
    counts: dict[str, KindCounts] = field(default_factory=dict)

    def lines(self) -> list[dict]:
        """One JSON-ready dict per kind: `{kind, opened, resolved, updated, escalated, alerts}`."""
        return [
            {"kind": kind, **self.counts.get(kind, KindCounts()).as_dict()}
            for kind in ExceptionKind.values
        ]


def detection_run(
    *,
    now: datetime,
    resolve: bool = True,
    notify: bool = True,
    dry_run: bool = False,
    batch_size: int = 5000,
) -> DetectionSummary:
    """Run every detector and auto-escalation for the instant `now` (aware, UTC).

    `resolve=False` (a replay at a past `--now`) only opens and escalates.
    `notify=False` queues no customer alerts or escalation e-mails. `dry_run`
    does all the work in one transaction and rolls it back, so the counts are
    exact and nothing is written (no task is enqueued: on-commit hooks are
    dropped with the rollback). The caller holds the lease.
    """
    ctx = DetectionContext(now=now, resolve=resolve, notify=notify, batch_size=batch_size)
    with _no_jit():
        if dry_run:
            with transaction.atomic():
                _run_all(ctx)
                transaction.set_rollback(True)
        else:
            _run_all(ctx)
    return DetectionSummary(now=now, resolve=resolve, dry_run=dry_run, counts=ctx.counts)


@contextlib.contextmanager
def _no_jit() -> Iterator[None]:
    """PostgreSQL: no JIT compilation for this run's statements (restored after).

    Per-row probes make the planner's cost estimates large, which triggers JIT
    compilation that costs 50-70 ms per statement, more than the statements
    themselves (tests/perf/bench_detect.py).
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET jit")


def _run_all(ctx: DetectionContext) -> None:
    for detector in DETECTORS:
        run_detector(ctx, detector)
    for kind, escalated in exceptions_auto_escalate(
        now=ctx.now, notify=ctx.notify, batch_size=ctx.batch_size
    ).items():
        ctx.kind(kind).escalated += escalated


def is_replay(now: datetime, wall_now: datetime) -> bool:
    """True when `now` is in the past of the wall clock by more than `REPLAY_TOLERANCE`."""
    return now < wall_now - REPLAY_TOLERANCE


def due_times_refresh_reaction(
    return_request: ReturnRequest, names: frozenset[str], now: datetime
) -> None:
    """Milestone reaction: recompute every due column of the return (its shipments, the
    return, its refunds) after any first reach; once per dispatched batch."""
    rr = return_request
    return_clock_refresh(return_request=rr, now=now)
    refunds_due_times_refresh_for_return(return_request=rr, now=now)


def due_times_recompute(*, tenant_id: int, now: datetime, batch_size: int = 500) -> int:
    """Recompute every due column of a tenant's open returns (their shipments, the
    returns, their refunds) after its SLA policy or transit routes changed; returns
    how many returns were refreshed.

    A one-off job run by the `returns_portal.due_times_recompute` task (the SLA
    policy admin enqueues it on commit), not by beat: it walks the tenant's open
    returns in primary-key batches, one short transaction per return, so it can
    run alongside ingest. Idempotent; a repeat changes nothing.
    """
    refreshed = 0
    last_pk = 0
    while True:
        batch = list(
            ReturnRequest.objects.filter(
                tenant_id=tenant_id, closed_at__isnull=True, pk__gt=last_pk
            )
            .select_related("tenant", "return_centre")
            .order_by("pk")[:batch_size]
        )
        if not batch:
            return refreshed
        last_pk = batch[-1].pk
        for rr in batch:
            with transaction.atomic():
                return_clock_refresh(return_request=rr, now=now)
                refunds_due_times_refresh_for_return(return_request=rr, now=now)
            refreshed += 1
