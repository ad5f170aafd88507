"""Refund services. The rule engine, amounts and gateways arrive with the refunds issue;
the foundation guarantees a `Refund` exists from the moment the return does."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from refunds.models import Refund, RefundOutcome
from rma.models import ReturnRequest
from rma.services import return_refund_summary_update


@transaction.atomic
def refund_create_for_return(return_request: ReturnRequest, *, now: datetime) -> Refund:
    """Create the return's `Refund` in state `pending` (idempotent per return and outcome).

    Called by `rma` through its return-created hook, inside the return's
    creation transaction.
    """
    refund, created = Refund.objects.get_or_create(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        outcome=RefundOutcome.REFUND,
        defaults={"currency": return_request.order.currency, "created_at": now, "updated_at": now},
    )
    if created:
        return_refund_summary_update(
            return_request=return_request, now=now, refund_state=refund.state
        )
    return refund
