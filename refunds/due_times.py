"""Refund-side due time (issue 5): `Refund.refund_due_at`, read by the
`refund_overdue` detector (`refunds/detectors.py`) through the partial index
`refund_due_open`.

Rule (MISSION "SLA targets per step": refund issued within 1 business day of
approval; DESIGN.md section 6): while a refund is owed to the customer
(`approved`, `issuing`, or `failed`), it is due `refund_business_days`
business days after `approved_at` on the return centre's calendar (a failed
refund: at the latest when it failed); otherwise (pending, held, issued,
cancelled) nothing is due.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from refunds.models import Refund, RefundOutcome, RefundStateChange
from refunds.states import RefundState
from rma.models import ReturnRequest
from rma.money import quantize
from rma.services import (
    business_calendar_for,
    return_refund_summary_update,
    sla_policy_for,
    sla_targets,
)
from rma.sla import refund_due

#: States in which the refund is owed and the clock runs.
OWED_STATES = frozenset({RefundState.APPROVED, RefundState.ISSUING, RefundState.FAILED})


def refund_due_at_for(refund: Refund, return_request: ReturnRequest) -> datetime | None:
    """When `refund` must be issued (UTC), or None when nothing is due.

    A `failed` refund is overdue from the moment it failed (its latest change to
    `failed`, from the audit rows) when that is earlier than the business-day
    target, so one index range (`refund_due_at <= now`) finds both cases.
    """
    if refund.state not in OWED_STATES or refund.approved_at is None:
        return None
    targets = sla_targets(sla_policy_for(refund.tenant_id))
    due = refund_due(refund.approved_at, targets, business_calendar_for(return_request))
    if refund.state == RefundState.FAILED:
        failed_at = (
            RefundStateChange.objects.filter(refund=refund, to_state=RefundState.FAILED)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        if failed_at is not None and failed_at < due:
            due = failed_at
    return due


@transaction.atomic
def refund_due_times_refresh(*, refund: Refund, now: datetime) -> datetime | None:
    """Recompute and store `refund.refund_due_at`; also copy the refund's amount and
    currency onto the return (`expected_refund_amount/currency`, the exception
    queue's "value at risk") for the `refund` outcome.

    **Refunds services call this** after every state change (approval, issue,
    failure, hold, cancel) and amount change of a refund, in the same
    transaction; the milestone reaction calls it too. Locks in DESIGN.md
    section 7 order: the return row, then the refund row. Idempotent; writes
    only what changed. Returns the due time (UTC) or None.
    """
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("return_centre", "tenant")
        .get(pk=refund.return_request_id, tenant_id=refund.tenant_id)
    )
    row = Refund.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=refund.pk, tenant_id=refund.tenant_id
    )
    due = refund_due_at_for(row, rr)
    if due != row.refund_due_at:
        Refund.objects.filter(pk=row.pk, tenant_id=row.tenant_id).update(refund_due_at=due)
    refund.refund_due_at = due
    if row.outcome == RefundOutcome.REFUND:
        amount = row.amount if row.amount is not None else expected_refund_value(rr, row.currency)
        currency = row.currency if amount is not None else ""
        if (rr.expected_refund_amount, rr.expected_refund_currency) != (amount, currency):
            return_refund_summary_update(
                return_request=rr,
                now=now,
                expected_refund_amount=amount,
                expected_refund_currency=currency,
            )
    return due


def expected_refund_value(return_request: ReturnRequest, currency: str) -> Decimal | None:
    """Before approval computes the refund: the net value of the returned units that
    are refunded (not exchanged), uncapped, in `currency` (DESIGN.md section 7 step
    1). The exception queue's "value at risk" for returns not yet approved; None
    when nothing is refunded."""
    from refunds import amounts as amounts_lib
    from refunds.services import line_units_for

    values = [
        amounts_lib.line_units_value(units, currency)[0]
        for _line, units in line_units_for(return_request)
        if not units.exchange
    ]
    return quantize(sum(values, Decimal(0)), currency) if values else None


def refunds_due_times_refresh_for_return(*, return_request: ReturnRequest, now: datetime) -> None:
    """`refund_due_times_refresh` for every refund of a return (the milestone reaction)."""
    for refund in Refund.objects.filter(
        tenant_id=return_request.tenant_id, return_request_id=return_request.pk
    ).order_by("pk"):
        refund_due_times_refresh(refund=refund, now=now)
