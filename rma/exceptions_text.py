"""Exceptions in plain words, for customers (tracking page, e-mails) and staff.

MISSION "Milestone map": a missed milestone must be visible to staff and, in
plain words, to the customer. The portal's tracking page shows the open
exceptions of a return with `customer_exception_notices(return_request=...)`
(one query) or, when it already has the rows, `customer_message(kind, reason)`.
Texts are translatable (gettext) and evaluated in the active language.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rma.models import ExceptionKind, ExceptionState, ReturnException, ReturnRequest

#: Carrier exception reasons (DESIGN.md section 5) as the end of "The carrier reported ...".
CARRIER_REASON_TEXT = {
    "delayed": gettext_lazy("a delay"),
    "failed_attempt": gettext_lazy("a failed delivery attempt"),
    "address_issue": gettext_lazy("a problem with the address"),
    "damaged": gettext_lazy("damage to the parcel"),
    "lost": gettext_lazy("that the parcel may be lost"),
    "held": gettext_lazy("that the parcel is held (customs or regulatory)"),
    "awaiting_pickup": gettext_lazy("that the parcel is waiting at a collection point"),
    "returned_to_sender": gettext_lazy("that the parcel is being sent back to you"),
    "refused": gettext_lazy("that delivery was refused"),
    "cancelled": gettext_lazy("that the shipment was cancelled"),
    "misrouted": gettext_lazy("that the parcel was sent the wrong way"),
    "other": gettext_lazy("a problem"),
}


def customer_message(kind: str, reason: str = "") -> str | None:
    """The plain-words message for an open exception of `kind`, or None for kinds
    customers do not see (`unmapped_status` is internal: a carrier word we do not
    know yet). `reason` refines `carrier_exception` (an exception reason) and
    `refund_overdue` (`failed` or `late`).
    """
    if kind == ExceptionKind.NO_FIRST_SCAN:
        return _(
            "The carrier has not scanned your parcel yet. If you have not dropped it off, "
            "please do so soon. If you have, keep your receipt: we are keeping an eye on it."
        )
    if kind == ExceptionKind.NO_MOVEMENT:
        return _(
            "Your parcel has not moved for a few days. This happens sometimes; we are "
            "watching it and will ask the carrier if it stays stuck. You do not need to do anything."
        )
    if kind == ExceptionKind.CLAIMED_DROPOFF_NO_SCAN:
        return _(
            "You told us you dropped off your parcel, but the carrier has not scanned it yet. "
            "Please keep your drop-off receipt; we may ask you for it."
        )
    if kind == ExceptionKind.CARRIER_EXCEPTION:
        detail = CARRIER_REASON_TEXT.get(reason, CARRIER_REASON_TEXT["other"])
        return _("The carrier reported %(detail)s. We are looking into it.") % {"detail": detail}
    if kind == ExceptionKind.TRANSIT_OVERDUE:
        return _(
            "Your parcel is taking longer than expected to reach us. We are keeping an eye on it."
        )
    if kind == ExceptionKind.DELIVERED_NOT_RECEIVED:
        return _(
            "Your parcel was delivered to our return centre. Checking it in is taking "
            "longer than usual; we are on it."
        )
    if kind == ExceptionKind.INSPECTION_OVERDUE:
        return _(
            "We received your return. The inspection is taking longer than usual; we are on it."
        )
    if kind == ExceptionKind.REFUND_OVERDUE:
        if reason == "failed":
            return _(
                "We could not complete your refund yet. We are sorting it out and will let you know."
            )
        return _("Your refund is taking longer than expected. We are on it.")
    if kind == ExceptionKind.WAREHOUSE_MISMATCH:
        return _(
            "What we received differs from what we expected. Our team will contact you about it."
        )
    if kind == ExceptionKind.DAMAGED_PACKAGE:
        return _("Your return arrived damaged. Our team is reviewing it and will contact you.")
    return None


@dataclass(frozen=True)
class CustomerNotice:
    """An open exception as the tracking page shows it."""

    kind: str
    message: str
    since: datetime


def customer_exception_notices(*, return_request: ReturnRequest) -> list[CustomerNotice]:
    """The return's open exceptions in plain words, oldest first, one per message
    (two shipments with the same problem say it once). One query."""
    notices: list[CustomerNotice] = []
    seen: set[str] = set()
    rows = (
        ReturnException.objects.filter(
            tenant_id=return_request.tenant_id,
            return_request_id=return_request.pk,
            state=ExceptionState.OPEN,
        )
        .order_by("opened_at", "pk")
        .values_list("kind", "reason", "opened_at")
    )
    for kind, reason, opened_at in rows:
        message = customer_message(kind, reason)
        if message is None or message in seen:
            continue
        seen.add(message)
        notices.append(CustomerNotice(kind=kind, message=message, since=opened_at))
    return notices
