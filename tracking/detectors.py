"""Parcel-movement exception detectors (DESIGN.md section 5; MISSION "Exceptions,
caught early"). Set-based and index-driven: see `rma.detection`.

Rules, per kind (thresholds from the tenant's `SlaPolicy`, baked into the due
columns by `rma.services.shipment_due_times_refresh` / `return_due_times_refresh`):

- `no_first_scan`: an inbound shipment of an open return whose
  `first_scan_due_at` (label + 72 h elapsed while no first scan) is at or
  before `now`: none at 71 h 59 m, one at 72 h 00 m. Resolves when the first
  scan arrives (`auto:first_scan`), the parcel is delivered (`auto:delivered`)
  or the return closes (`auto:return_closed`).
- `no_movement`: `next_event_due_at` (latest event + 5-7 days elapsed, once
  scanned, while not delivered) at or before `now`. Resolves on a new event
  (`auto:moved`), delivery or close.
- `claimed_dropoff_no_scan`: the customer said "dropped off" (the return's
  `customer_dropoff_claimed_at`, or a `dropped_off` milestone of source
  `customer`) and no carrier scan by `dropoff_scan_due_at` (claim + 24 h).
  Return-level (no shipment). Resolves on the first scan (`auto:first_scan`).
- `carrier_exception`: the shipment's status is `exception`. Reason: the
  shipment's `exception_reason`; the condition instant is its `status_at`
  (else `last_event_at`, else `created_at`). A new reason or a new exception
  event updates the open one in place. Resolves when the status leaves
  `exception` (`auto:status_<new status>`).
- `transit_overdue`: `transit_due_at` (first scan + 3/10 business days or the
  route's, on the return centre's calendar) at or before `now`, not delivered.
  Resolves on delivery (`auto:delivered`).
- `unmapped_status`: the shipment's status is `unknown` while it has events
  (`last_event_at` set) and has been so for 24 h: since `status_at` (ingest
  sets it when the status became what it is; for `unknown`, the first
  unmapped event) or, when that is missing, `last_event_at`; due = since +
  24 h elapsed. Internal (no customer message). Resolves when a status-bearing
  event maps the shipment (`auto:mapped`).

Every kind also resolves when its return closes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast, Coalesce, Concat

from rma.detection import Detector, field_of, open_exceptions, return_closed_at
from rma.models import ExceptionKind, ReturnRequest, Shipment, ShipmentDirection, ShipmentStatus

#: DESIGN.md section 5: `unmapped_status` opens when a status has been `unknown` for 24 h.
UNMAPPED_AFTER = timedelta(hours=24)
SCANNED = ["accepted", "in_transit", "out_for_delivery", "delivered"]

_NO_SHIPMENT = Cast(Value(None), output_field=models.BigIntegerField())  # NULL::bigint
_EMPTY = Value("", output_field=models.CharField())
_TEXT: models.CharField[str, str] = models.CharField()


def _shipment_rows(qs: models.QuerySet, *, due, reason=_EMPTY) -> models.QuerySet:
    """Inbound shipments of open returns, annotated as detection candidates. The
    return's `closed_at` is a per-row probe (`rma.detection.field_of`), not a join."""
    return (
        qs.filter(direction=ShipmentDirection.INBOUND)
        .annotate(x_closed=return_closed_at())
        .filter(x_closed__isnull=True)
        .annotate(
            x_return_id=F("return_request_id"),
            x_shipment_id=F("pk"),
            x_due=due,
            x_reason=reason,
            x_detail=_EMPTY,
        )
    )


def _ship(field: str) -> Subquery:
    """The exception's shipment's `field` (a probe; None without a shipment)."""
    return field_of(Shipment, "shipment_id", field)


def _open_with(kind: str, **probes: Subquery) -> models.QuerySet:
    return open_exceptions(kind).annotate(x_closed=return_closed_at(), **probes)


def _closed_or(why: Case | Value) -> Case:
    return Case(
        When(x_closed__isnull=False, then=Value("auto:return_closed")),
        default=why,
        output_field=_TEXT,
    )


def _due_cleared(kind: str, column: str, now: datetime, why: Case) -> models.QuerySet:
    """Open `kind` exceptions whose shipment's due `column` is gone or later than `now`
    (or whose return closed)."""
    return (
        _open_with(kind, x_due_now=_ship(column), x_status=_ship("status"))
        .filter(Q(x_due_now__isnull=True) | Q(x_due_now__gt=now) | Q(x_closed__isnull=False))
        .annotate(x_why=_closed_or(why))
    )


# --- no_first_scan ---------------------------------------------------------
def no_first_scan_candidates(now: datetime) -> models.QuerySet:
    return _shipment_rows(
        Shipment.objects.filter(first_scan_due_at__lte=now), due=F("first_scan_due_at")
    )


def no_first_scan_cleared(now: datetime) -> models.QuerySet:
    return _due_cleared(
        ExceptionKind.NO_FIRST_SCAN,
        "first_scan_due_at",
        now,
        Case(
            When(x_status="delivered", then=Value("auto:delivered")),
            When(x_due_now__gt=now, then=Value("auto:due_moved")),
            default=Value("auto:first_scan"),
            output_field=_TEXT,
        ),
    )


# --- no_movement -----------------------------------------------------------
def no_movement_candidates(now: datetime) -> models.QuerySet:
    return _shipment_rows(
        Shipment.objects.filter(next_event_due_at__lte=now), due=F("next_event_due_at")
    )


def no_movement_cleared(now: datetime) -> models.QuerySet:
    return _due_cleared(
        ExceptionKind.NO_MOVEMENT,
        "next_event_due_at",
        now,
        Case(
            When(x_status="delivered", then=Value("auto:delivered")),
            default=Value("auto:moved"),
            output_field=_TEXT,
        ),
    )


# --- claimed_dropoff_no_scan -----------------------------------------------
def claimed_dropoff_candidates(now: datetime) -> models.QuerySet:
    return ReturnRequest.objects.filter(
        dropoff_scan_due_at__lte=now, closed_at__isnull=True
    ).annotate(
        x_return_id=F("pk"),
        x_shipment_id=_NO_SHIPMENT,
        x_due=F("dropoff_scan_due_at"),
        x_reason=_EMPTY,
        x_detail=_EMPTY,
    )


def claimed_dropoff_cleared(now: datetime) -> models.QuerySet:
    return (
        _open_with(
            ExceptionKind.CLAIMED_DROPOFF_NO_SCAN,
            x_due_now=field_of(ReturnRequest, "return_request_id", "dropoff_scan_due_at"),
        )
        .filter(Q(x_due_now__isnull=True) | Q(x_due_now__gt=now) | Q(x_closed__isnull=False))
        .annotate(
            x_why=_closed_or(
                Case(
                    When(x_due_now__gt=now, then=Value("auto:due_moved")),
                    default=Value("auto:first_scan"),
                    output_field=_TEXT,
                )
            )
        )
    )


# --- carrier_exception -----------------------------------------------------
def _exception_since() -> Coalesce:
    return Coalesce(F("status_at"), F("last_event_at"), F("created_at"))


def carrier_exception_candidates(now: datetime) -> models.QuerySet:
    return _shipment_rows(
        Shipment.objects.filter(status=ShipmentStatus.EXCEPTION),
        due=_exception_since(),
        reason=F("exception_reason"),
    )


def carrier_exception_changed(now: datetime) -> models.QuerySet:
    since = Subquery(
        Shipment.objects.filter(pk=OuterRef("shipment_id"))
        .annotate(x_since=_exception_since())
        .values("x_since")[:1]
    )
    return (
        open_exceptions(ExceptionKind.CARRIER_EXCEPTION)
        .annotate(x_status=_ship("status"), x_reason=_ship("exception_reason"), x_due=since)
        .filter(x_status=ShipmentStatus.EXCEPTION)
        .filter(~Q(reason=F("x_reason")) | ~Q(due_at=F("x_due")) | Q(due_at__isnull=True))
    )


def carrier_exception_cleared(now: datetime) -> models.QuerySet:
    return (
        _open_with(ExceptionKind.CARRIER_EXCEPTION, x_status=_ship("status"))
        .filter(
            Q(x_status__isnull=True)
            | ~Q(x_status=ShipmentStatus.EXCEPTION)
            | Q(x_closed__isnull=False)
        )
        .annotate(
            x_why=_closed_or(
                Case(
                    When(x_status__isnull=True, then=Value("auto:condition_cleared")),
                    default=Concat(Value("auto:status_"), F("x_status"), output_field=_TEXT),
                    output_field=_TEXT,
                )
            )
        )
    )


# --- transit_overdue -------------------------------------------------------
def transit_overdue_candidates(now: datetime) -> models.QuerySet:
    return _shipment_rows(Shipment.objects.filter(transit_due_at__lte=now), due=F("transit_due_at"))


def transit_overdue_cleared(now: datetime) -> models.QuerySet:
    return _due_cleared(
        ExceptionKind.TRANSIT_OVERDUE,
        "transit_due_at",
        now,
        Case(
            When(x_due_now__gt=now, then=Value("auto:due_moved")),
            default=Value("auto:delivered"),
            output_field=_TEXT,
        ),
    )


# --- unmapped_status -------------------------------------------------------
def unmapped_status_candidates(now: datetime) -> models.QuerySet:
    # The filter repeats the partial index's expression and predicate
    # (`shipment_unmapped_since`), so PostgreSQL range-scans it.
    since = Shipment.objects.annotate(x_since=Coalesce(F("status_at"), F("last_event_at"))).filter(
        status=ShipmentStatus.UNKNOWN,
        last_event_at__isnull=False,
        x_since__lte=now - UNMAPPED_AFTER,
    )
    return _shipment_rows(
        since,
        due=models.ExpressionWrapper(
            F("x_since") + Value(UNMAPPED_AFTER), output_field=models.DateTimeField()
        ),
    )


def unmapped_status_cleared(now: datetime) -> models.QuerySet:
    return (
        _open_with(ExceptionKind.UNMAPPED_STATUS, x_status=_ship("status"))
        .filter(
            Q(x_status__isnull=True)
            | ~Q(x_status=ShipmentStatus.UNKNOWN)
            | Q(x_closed__isnull=False)
        )
        .annotate(x_why=_closed_or(Value("auto:mapped")))
    )


DETECTORS: list[Detector] = [
    Detector(ExceptionKind.NO_FIRST_SCAN, no_first_scan_candidates, no_first_scan_cleared),
    Detector(ExceptionKind.NO_MOVEMENT, no_movement_candidates, no_movement_cleared),
    Detector(
        ExceptionKind.CLAIMED_DROPOFF_NO_SCAN, claimed_dropoff_candidates, claimed_dropoff_cleared
    ),
    Detector(
        ExceptionKind.CARRIER_EXCEPTION,
        carrier_exception_candidates,
        carrier_exception_cleared,
        carrier_exception_changed,
    ),
    Detector(ExceptionKind.TRANSIT_OVERDUE, transit_overdue_candidates, transit_overdue_cleared),
    Detector(ExceptionKind.UNMAPPED_STATUS, unmapped_status_candidates, unmapped_status_cleared),
]
