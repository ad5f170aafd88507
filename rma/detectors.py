"""Warehouse exception detectors (DESIGN.md section 5; MISSION "SLA targets per step").
Set-based and index-driven: see `rma.detection`.

- `delivered_not_received`: an open return whose `checkin_due_at` (delivery +
  24 h elapsed while not checked in) is at or before `now`. Return-level.
  Resolves on check-in (`auto:received`) or close (`auto:return_closed`).
- `inspection_overdue`: `inspection_due_at` (check-in + 48 h elapsed while not
  inspected) at or before `now`. Resolves on inspection (`auto:inspected`).
- `warehouse_mismatch` and `damaged_package` are opened by check-in and
  inspection (refunds work, through `rma.services.exception_open`) and are
  resolved by staff from the queue; no detector runs for them.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Cast

from rma.detection import Detector, field_of, open_exceptions, return_closed_at
from rma.models import ExceptionKind, ReturnRequest

_NO_SHIPMENT = Cast(Value(None), output_field=models.BigIntegerField())  # NULL::bigint
_EMPTY = Value("", output_field=models.CharField())

#: Kinds opened elsewhere and resolved by staff only.
STAFF_RESOLVED_KINDS = (ExceptionKind.WAREHOUSE_MISMATCH.value, ExceptionKind.DAMAGED_PACKAGE.value)


def _return_rows(qs: models.QuerySet, *, due: F) -> models.QuerySet:
    return qs.filter(closed_at__isnull=True).annotate(
        x_return_id=F("pk"),
        x_shipment_id=_NO_SHIPMENT,
        x_due=due,
        x_reason=_EMPTY,
        x_detail=_EMPTY,
    )


def _cleared(kind: str, column: str, done: str, now: datetime) -> models.QuerySet:
    return (
        open_exceptions(kind)
        .annotate(
            x_closed=return_closed_at(),
            x_due_now=field_of(ReturnRequest, "return_request_id", column),
        )
        .filter(Q(x_due_now__isnull=True) | Q(x_due_now__gt=now) | Q(x_closed__isnull=False))
        .annotate(
            x_why=Case(
                When(x_closed__isnull=False, then=Value("auto:return_closed")),
                When(x_due_now__gt=now, then=Value("auto:due_moved")),
                default=Value(done),
                output_field=models.CharField(),
            )
        )
    )


def delivered_not_received_candidates(now: datetime) -> models.QuerySet:
    return _return_rows(
        ReturnRequest.objects.filter(checkin_due_at__lte=now), due=F("checkin_due_at")
    )


def delivered_not_received_cleared(now: datetime) -> models.QuerySet:
    return _cleared(ExceptionKind.DELIVERED_NOT_RECEIVED, "checkin_due_at", "auto:received", now)


def inspection_overdue_candidates(now: datetime) -> models.QuerySet:
    return _return_rows(
        ReturnRequest.objects.filter(inspection_due_at__lte=now), due=F("inspection_due_at")
    )


def inspection_overdue_cleared(now: datetime) -> models.QuerySet:
    return _cleared(ExceptionKind.INSPECTION_OVERDUE, "inspection_due_at", "auto:inspected", now)


DETECTORS: list[Detector] = [
    Detector(
        ExceptionKind.DELIVERED_NOT_RECEIVED,
        delivered_not_received_candidates,
        delivered_not_received_cleared,
    ),
    Detector(
        ExceptionKind.INSPECTION_OVERDUE, inspection_overdue_candidates, inspection_overdue_cleared
    ),
]
