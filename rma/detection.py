"""The exception-detection engine: set-based, index-driven, bounded batches (issue 5).

Each app declares its kinds in its own `detectors.py` as `Detector`s (tracking:
parcel kinds; rma: warehouse kinds; refunds: `refund_overdue`); the runner in
the composition root (`returns_portal/detection.py`) calls `run_detector` for
each under a `JobLease`. A detector is three querysets, so the benchmark can
print their plans:

- `candidates(now)`: source rows (shipments, returns, refunds) whose condition
  holds at `now`, found through a partial index on a due column, annotated with
  `x_return_id`, `x_shipment_id`, `x_due`, `x_reason`, `x_detail`;
- `cleared(now)`: open exceptions of the kind whose condition no longer holds,
  annotated with `x_why` (the resolution code, `auto:<why>`);
- `changed(now)` (optional): open exceptions whose reason or condition instant
  changed, annotated with `x_reason` and `x_due` (updated in place).

`run_detector` excludes candidates that already have an open exception of the
kind, or a staff-resolved one for the same condition (`due_at`, `reason`), with
NOT EXISTS through the exception's return foreign-key index; pages by primary
key in batches of `batch_size` (5,000); opens with `exceptions_open_bulk` and
resolves with `exceptions_resolve_bulk`, one transaction per batch. Never a
Python loop over all returns: the work grows with the due rows and the open
exceptions, not with the open returns. With `resolve=False` (a replay at a
past `--now`) it only opens: time going backwards never resolves anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Coalesce

from rma.alerts import alerts_queue_bulk
from rma.models import ExceptionKind, ExceptionState, ReturnException
from rma.services import (
    ExceptionCandidate,
    ExceptionChange,
    exceptions_open_bulk,
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


def pending_candidates(detector: Detector, now: datetime) -> models.QuerySet:
    """`detector.candidates(now)` without the rows that already have an open exception
    of the kind, or a staff-resolved one for the same condition (`due_at`, `reason`)."""
    blocking = (
        ReturnException.objects.filter(
            return_request_id=OuterRef("x_return_id"), kind=detector.kind
        )
        .annotate(x_sk=Coalesce("shipment_id", Value(0), output_field=models.BigIntegerField()))
        .filter(
            x_sk=Coalesce(
                OuterRef("x_shipment_id"), Value(0), output_field=models.BigIntegerField()
            )
        )
        .filter(
            Q(state=ExceptionState.OPEN)
            | Q(resolved_by_staff=True, due_at=OuterRef("x_due"), reason=OuterRef("x_reason"))
        )
    )
    return detector.candidates(now).filter(~Exists(blocking))


CANDIDATE_FIELDS = (
    "pk",
    "tenant_id",
    "x_return_id",
    "x_shipment_id",
    "x_due",
    "x_reason",
    "x_detail",
)


def _open_step(ctx: DetectionContext, detector: Detector) -> None:
    counts = ctx.kind(detector.kind)
    last_pk = 0
    while True:
        batch = list(
            pending_candidates(detector, ctx.now)
            .filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list(*CANDIDATE_FIELDS)[: ctx.batch_size]
        )
        if not batch:
            return
        last_pk = batch[-1][0]
        candidates = [
            ExceptionCandidate(
                tenant_id=tenant_id,
                return_request_id=return_id,
                shipment_id=shipment_id,
                due_at=due,
                reason=reason or "",
                detail=detail or "",
            )
            for _pk, tenant_id, return_id, shipment_id, due, reason, detail in batch
        ]
        with transaction.atomic():
            opened = exceptions_open_bulk(
                kind=detector.kind, candidates=candidates, opened_at=ctx.now
            )
            counts.opened += len(opened)
            if opened and ctx.notify:
                counts.alerts += alerts_queue_bulk(exception_ids=opened, now=ctx.now)
        if len(batch) < ctx.batch_size:
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
