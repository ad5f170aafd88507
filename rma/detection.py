"""The exception-detection engine: set-based, index-driven, bounded batches (issue 5).

Each app declares its kinds in its own `detectors.py` as `Detector`s (tracking:
parcel kinds; rma: warehouse kinds; refunds: `refund_overdue`); the runner in
the composition root (`returns_portal/detection.py`) calls `run_detector` for
each under a `JobLease`. A detector is three querysets, so the benchmark can
print their plans:

- `candidates(now)`: source rows (shipments, returns, refunds; each with a
  `tenant_id`) whose condition holds at `now`, found through a partial index on
  a due column, annotated with `x_return_id`, `x_shipment_id`, `x_due`,
  `x_reason`, `x_detail`;
- `cleared(now)`: open exceptions of the kind whose condition no longer holds,
  annotated with `x_why` (the resolution code, `auto:<why>`);
- `changed(now)` (optional): open exceptions whose reason or condition instant
  changed, annotated with `x_reason` and `x_due` (updated in place).

`run_detector` leaves out candidates that already have an open exception of
the kind, or a staff-resolved one for the same condition (`due_at`, `reason`),
with one per-row probe of the exception's return foreign-key index; opens up
to `batch_size` (5,000) at a time with one `INSERT ... SELECT ... ON CONFLICT
DO NOTHING` against the one-open constraint (`exceptions_open_from_query`),
queues the alerts of what it opened in the same transaction, then updates and
resolves in batches paged by primary key (`exceptions_update_bulk`,
`exceptions_resolve_bulk`); one transaction per batch. Never a Python loop
over all returns: the work grows with the due rows and the open exceptions,
not with the open returns (tests/perf/bench_detect.py). Related rows are read
with per-row primary-key probes (`field_of`) rather than joins, so PostgreSQL
cannot pick a plan that scans whole tables when statistics are stale. With
`resolve=False` (a replay at a past `--now`) it only opens: time going
backwards never resolves anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from rma.alerts import alerts_queue_bulk
from rma.models import ExceptionKind, ExceptionState, ReturnException, ReturnRequest
from rma.services import (
    ExceptionChange,
    exceptions_open_from_query,
    exceptions_resolve_bulk,
    exceptions_update_bulk,
)

BATCH_SIZE = 5000


@dataclass
class KindCounts:
    """What one run did for one kind: exceptions opened, resolved, updated in place,
    escalated; customer alerts queued."""

    opened: int = 0
    resolved: int = 0
    updated: int = 0
    escalated: int = 0
    alerts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "opened": self.opened,
            "resolved": self.resolved,
            "updated": self.updated,
            "escalated": self.escalated,
            "alerts": self.alerts,
        }


@dataclass
class DetectionContext:
    """One detection run: the instant it judges (`now`, UTC), whether it may resolve
    (False for a replay in the past), whether it may notify, and its counts."""

    now: datetime
    resolve: bool = True
    notify: bool = True
    batch_size: int = BATCH_SIZE
    counts: dict[str, KindCounts] = field(default_factory=dict)

    def kind(self, kind: str) -> KindCounts:
        return self.counts.setdefault(kind, KindCounts())


QuerySetAt = Callable[[datetime], models.QuerySet]


@dataclass(frozen=True)
class Detector:
    """One kind's detection as querysets (see the module docstring)."""

    kind: str
    candidates: QuerySetAt
    cleared: QuerySetAt | None = None
    changed: QuerySetAt | None = None

    def __post_init__(self) -> None:
        # Store the plain string: enum members hash by name, not value.
        object.__setattr__(self, "kind", ExceptionKind(self.kind).value)


def open_exceptions(kind: str) -> models.QuerySet:
    """Open exceptions of `kind` (partial index `exception_open_kind`)."""
    return ReturnException.objects.filter(kind=kind, state=ExceptionState.OPEN)


def field_of(model: type[models.Model], ref: str, field: str) -> Subquery:
    """`field` of the `model` row whose primary key is the outer row's `ref`.

    A scalar subquery: PostgreSQL never turns it into a join, so it stays one
    primary-key probe per row examined and the cost follows the due rows, not
    the table sizes, whatever the statistics say (right after a burst of
    inserts they are stale). Detectors use it instead of joins.
    """
    return Subquery(model._default_manager.filter(pk=OuterRef(ref)).values(field)[:1])


def return_closed_at() -> Subquery:
    """The outer row's return's `closed_at` (a probe; see `field_of`)."""
    return field_of(ReturnRequest, "return_request_id", "closed_at")


def _shipment_key(ref: str | None) -> Coalesce:
    target: Any = OuterRef(ref) if ref else F("shipment_id")
    return Coalesce(target, Value(0), output_field=models.BigIntegerField())


def pending_candidates(detector: Detector, now: datetime) -> models.QuerySet:
    """`detector.candidates(now)` without the rows that already have an open exception
    of the kind, or a staff-resolved one for the same condition (`due_at`, `reason`).

    One per-row probe (a scalar subquery, see `field_of`) on the exception's
    return foreign-key index, the only index whose condition the probe can use,
    so the plan stays one probe of a few rows per due row even when the
    statistics are stale after a burst of inserts.
    """
    blocking = (
        ReturnException.objects.annotate(x_sk=_shipment_key(None))
        .filter(
            return_request_id=OuterRef("x_return_id"),
            kind=detector.kind,
            x_sk=_shipment_key("x_shipment_id"),
        )
        .filter(
            # "not resolved" is "open" (the only two states), written so that no
            # partial index on `state = 'open'` matches: PostgreSQL then probes the
            # foreign-key index on the return instead of OR-ing bitmaps of whole
            # partial indexes, which stale statistics make look cheap.
            ~Q(state=ExceptionState.RESOLVED)
            | Q(resolved_by_staff=True, due_at=OuterRef("x_due"), reason=OuterRef("x_reason"))
        )
        .values("pk")[:1]
    )
    return (
        detector.candidates(now)
        .annotate(x_blocking_id=Subquery(blocking))
        .filter(x_blocking_id__isnull=True)
    )


def _open_step(ctx: DetectionContext, detector: Detector) -> None:
    """Open in batches of `ctx.batch_size`, one INSERT ... SELECT each, until a batch
    is not full. Every detector yields at most one candidate per (return, shipment),
    so a short batch means nothing is left (a row a concurrent opener took first is
    that opener's to report)."""
    counts = ctx.kind(detector.kind)
    while True:
        with transaction.atomic():
            opened = exceptions_open_from_query(
                kind=detector.kind,
                candidates=pending_candidates(detector, ctx.now),
                opened_at=ctx.now,
                limit=ctx.batch_size,
            )
            counts.opened += len(opened)
            if opened and ctx.notify:
                counts.alerts += alerts_queue_bulk(exception_ids=opened, now=ctx.now)
        if len(opened) < ctx.batch_size:
            return


def _update_step(ctx: DetectionContext, detector: Detector) -> None:
    if detector.changed is None:
        return
    counts = ctx.kind(detector.kind)
    last_pk = 0
    while True:
        batch = list(
            detector.changed(ctx.now)
            .filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "x_reason", "x_due")[: ctx.batch_size]
        )
        if not batch:
            return
        last_pk = batch[-1][0]
        counts.updated += exceptions_update_bulk(
            kind=detector.kind,
            changes=[ExceptionChange(pk, reason or "", due) for pk, reason, due in batch],
            now=ctx.now,
        )
        if len(batch) < ctx.batch_size:
            return


def _resolve_step(ctx: DetectionContext, detector: Detector) -> None:
    if detector.cleared is None:
        return
    counts = ctx.kind(detector.kind)
    last_pk = 0
    while True:
        batch = list(
            detector.cleared(ctx.now)
            .filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "x_why")[: ctx.batch_size]
        )
        if not batch:
            return
        last_pk = batch[-1][0]
        by_code: dict[str, list[int]] = defaultdict(list)
        for pk, why in batch:
            by_code[why or "auto:condition_cleared"].append(pk)
        with transaction.atomic():
            for code, ids in by_code.items():
                counts.resolved += exceptions_resolve_bulk(
                    exception_ids=ids, resolution_code=code, resolved_at=ctx.now
                )
        if len(batch) < ctx.batch_size:
            return


def run_detector(ctx: DetectionContext, detector: Detector) -> KindCounts:
    """Open, update and resolve `detector.kind` exceptions for `ctx.now`.

    Idempotent: a second run at the same instant finds nothing to do. Updates
    and resolves are skipped when `ctx.resolve` is False (replays).
    """
    _open_step(ctx, detector)
    if ctx.resolve:
        _update_step(ctx, detector)
        _resolve_step(ctx, detector)
    return ctx.kind(detector.kind)
