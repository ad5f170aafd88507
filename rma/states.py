"""Return statuses, milestones and the only function that changes a return's status.

Vocabulary from DESIGN.md section 5 (contract). The parcel track is ordered;
the outcome (`refunded`, `exchanged`, `rejected`, `cancelled`) closes a return.
`return_status_transition` checks the table, does a conditional update,
raises `StatusRaceLost` on a lost race and writes a `ReturnStatusChange` audit
row (who, when, from, to, why).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _


class MilestoneName(models.TextChoices):
    REQUESTED = "requested", _("Return requested")
    LABEL_CREATED = "label_created", _("Label created")
    DROPPED_OFF = "dropped_off", _("Dropped off")
    FIRST_SCAN = "first_scan", _("First carrier scan")
    IN_TRANSIT = "in_transit", _("In transit")
    DELIVERED = "delivered", _("Delivered to the return centre")
    RECEIVED = "received", _("Received and checked in")
    INSPECTED = "inspected", _("Inspected")
    REFUNDED = "refunded", _("Refunded")
    EXCHANGED = "exchanged", _("Exchanged")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


#: The parcel track, in order (DESIGN.md section 5).
PARCEL_TRACK: tuple[str, ...] = (
    "requested",
    "label_created",
    "dropped_off",
    "first_scan",
    "in_transit",
    "delivered",
    "received",
    "inspected",
)
PARCEL_RANK = {name: i for i, name in enumerate(PARCEL_TRACK)}
OUTCOMES: tuple[str, ...] = ("refunded", "exchanged", "rejected", "cancelled")


class ReturnStatus(models.TextChoices):
    """A return's status: its furthest parcel milestone, or its outcome once closed."""

    REQUESTED = "requested", _("Requested")
    LABEL_CREATED = "label_created", _("Label created")
    DROPPED_OFF = "dropped_off", _("Dropped off")
    FIRST_SCAN = "first_scan", _("First scan")
    IN_TRANSIT = "in_transit", _("In transit")
    DELIVERED = "delivered", _("Delivered")
    RECEIVED = "received", _("Received")
    INSPECTED = "inspected", _("Inspected")
    REFUNDED = "refunded", _("Refunded")
    EXCHANGED = "exchanged", _("Exchanged")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


CLOSED_STATUSES = frozenset(OUTCOMES)


class MilestoneSource(models.TextChoices):
    CARRIER = "carrier", _("Carrier")
    CHECK_IN = "check-in", _("Warehouse check-in")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")
    API = "api", _("API")
    CUSTOMER = "customer", _("Customer")


#: carrier > check-in and staff > api > customer (DESIGN.md section 5).
#: `system` (the portal buying a label, the return being created) ranks with staff.
SOURCE_RANK = {
    MilestoneSource.CARRIER: 4,
    MilestoneSource.CHECK_IN: 3,
    MilestoneSource.STAFF: 3,
    MilestoneSource.SYSTEM: 3,
    MilestoneSource.API: 2,
    MilestoneSource.CUSTOMER: 1,
}


class Precision(models.TextChoices):
    SECOND = "second", _("Second")
    MINUTE = "minute", _("Minute")
    DATE = "date", _("Date")


def _allowed(from_status: str, to_status: str) -> bool:
    """The transition table.

    - Along the parcel track: forward only (steps may be skipped: a carrier
      can report delivery before anything else arrives).
    - To an outcome: `cancelled` before the parcel is handed over (requested,
      label_created) or by staff from anywhere open; `rejected` from received
      or inspected; `refunded` / `exchanged` from any open status.
    - Closed statuses are final.
    """
    if from_status in CLOSED_STATUSES:
        return False
    if to_status in PARCEL_RANK:
        return PARCEL_RANK[to_status] > PARCEL_RANK[from_status]
    return to_status in CLOSED_STATUSES


ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    src: frozenset(dst for dst in ReturnStatus.values if _allowed(src, dst))
    for src in ReturnStatus.values
}


class InvalidTransition(Exception):
    """The transition table does not allow this change."""


class StatusRaceLost(Exception):
    """Another writer changed the status first (the conditional update matched no row)."""


def furthest_parcel_status(reached: set[str] | list[str]) -> str:
    """The furthest parcel milestone among `reached` (`requested` if none)."""
    best = "requested"
    for name in reached:
        if name in PARCEL_RANK and PARCEL_RANK[name] > PARCEL_RANK[best]:
            best = name
    return best


def return_status_transition(
    *, return_request, to_status: str, actor: str, reason: str, now: datetime
):
    """Move `return_request` to `to_status` and audit it. Returns the updated instance.

    Raises `InvalidTransition` when the table forbids it and `StatusRaceLost`
    when the row's status changed under us. A no-op (same status) returns
    without an audit row. Call inside the caller's transaction.
    """
    from rma.models import ReturnRequest, ReturnStatusChange

    current = return_request.status
    if current == to_status:
        return return_request
    if to_status not in ALLOWED_TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"{return_request.rma_number}: {current} -> {to_status} is not allowed"
        )
    updates = {"status": to_status, "updated_at": now}
    if to_status in CLOSED_STATUSES:
        updates["closed_at"] = now
    changed = ReturnRequest.objects.filter(pk=return_request.pk, status=current).update(**updates)
    if not changed:
        raise StatusRaceLost(f"{return_request.rma_number}: status is no longer {current}")
    ReturnStatusChange.objects.create(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        from_status=current,
        to_status=to_status,
        actor=actor[:200],
        reason=reason[:500],
        at=now,
    )
    for key, value in updates.items():
        setattr(return_request, key, value)
    return return_request
