"""Refund-side exception detector (DESIGN.md section 5; MISSION "SLA targets per step":
refund issued within 1 business day of approval). Set-based: see `rma.detection`.

- `refund_overdue`: an open return with a refund still owed (`approved` or
  `issuing`) past its `refund_due_at` (approval + 1 business day on the return
  centre's calendar), reason `late`; or a `failed` refund, reason `failed`,
  at once (its due time is at the latest the failure). Return-level; one per return whatever the number of refunds. The
  condition instant is the refund's `refund_due_at`; a late refund that then
  fails updates the open exception's reason in place. Resolves when no refund
  of the return is overdue: issued (`auto:refund_issued`), otherwise no longer
  owed or due later (`auto:condition_cleared`), or the return closed
  (`auto:return_closed`).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast

from refunds.models import Refund
from refunds.states import RefundState
from rma.detection import Detector, open_exceptions, return_closed_at
from rma.models import ExceptionKind

OWED = [RefundState.APPROVED, RefundState.ISSUING, RefundState.FAILED]
_NO_SHIPMENT = Cast(Value(None), output_field=models.BigIntegerField())  # NULL::bigint
_EMPTY = Value("", output_field=models.CharField())


def _reason() -> Case:
    return Case(
        When(state=RefundState.FAILED, then=Value("failed")),
        default=Value("late"),
        output_field=models.CharField(),
    )


def overdue_refunds(now: datetime) -> models.QuerySet:
    """Refunds owed and overdue at `now`: one range on the partial index `refund_due_open`
    (a failed refund's `refund_due_at` is at the latest its failure time,
    `refunds.due_times.refund_due_at_for`)."""
    return Refund.objects.filter(state__in=OWED, refund_due_at__lte=now)


def _worst_overdue(now: datetime) -> models.QuerySet:
    """Per return (outer ref), its most pressing overdue refund: failed first, then oldest due."""
    return (
        overdue_refunds(now)
        .filter(return_request_id=OuterRef("return_request_id"))
        .annotate(x_reason=_reason())
        .order_by("x_reason", "refund_due_at", "pk")  # "failed" sorts before "late"
    )


def refund_overdue_candidates(now: datetime) -> models.QuerySet:
    """One row per return (its most pressing overdue refund), so a return with two
    overdue refunds opens one exception; driven by the `refund_due_open` range."""
    return (
        overdue_refunds(now)
        .annotate(x_closed=return_closed_at())
        .filter(x_closed__isnull=True)
        .filter(pk=Subquery(_worst_overdue(now).values("pk")[:1]))
        .annotate(
            x_return_id=F("return_request_id"),
            x_shipment_id=_NO_SHIPMENT,
            x_due=F("refund_due_at"),
            x_reason=_reason(),
            x_detail=_EMPTY,
        )
    )


def refund_overdue_changed(now: datetime) -> models.QuerySet:
    worst = _worst_overdue(now)
    return (
        open_exceptions(ExceptionKind.REFUND_OVERDUE)
        .annotate(
            x_reason=Subquery(worst.values("x_reason")[:1]),
            x_due=Subquery(worst.values("refund_due_at")[:1]),
        )
        .filter(x_reason__isnull=False)
        .filter(~Q(reason=F("x_reason")) | ~Q(due_at=F("x_due")))
    )


def refund_overdue_cleared(now: datetime) -> models.QuerySet:
    still = overdue_refunds(now).filter(return_request_id=OuterRef("return_request_id"))
    issued = Refund.objects.filter(
        return_request_id=OuterRef("return_request_id"), state=RefundState.ISSUED
    )
    return (
        open_exceptions(ExceptionKind.REFUND_OVERDUE)
        .annotate(
            x_closed=return_closed_at(),
            x_still=Subquery(still.values("pk")[:1]),
        )
        .filter(Q(x_still__isnull=True) | Q(x_closed__isnull=False))
        .annotate(
            x_why=Case(
                When(x_closed__isnull=False, then=Value("auto:return_closed")),
                When(Exists(issued), then=Value("auto:refund_issued")),
                default=Value("auto:condition_cleared"),
                output_field=models.CharField(),
            )
        )
    )


DETECTORS: list[Detector] = [
    Detector(
        ExceptionKind.REFUND_OVERDUE,
        refund_overdue_candidates,
        refund_overdue_cleared,
        refund_overdue_changed,
    ),
]
