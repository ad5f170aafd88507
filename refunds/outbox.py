"""What `refunds` still owes (the database is the outbox; returns_portal/tasks.py sweeps it).

- approved refunds not yet claimed, approved more than `older_than` ago
  -> `refunds.refund_issue`;
- refunds `issuing` for 10 minutes or more -> `refunds.refund_issue`, whose
  recovery path looks them up at the gateway by key;
- refunds held for a warehouse exception whose blocking exceptions are all
  resolved -> `refunds.refund_recheck`.
Bounded batches, oldest first, driven by the `refund_outbox` partial index.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef

from refunds.models import Refund
from refunds.services import (
    HOLD_EXCEPTION_REASON,
    HOLDING_EXCEPTIONS,
    ISSUING_STALE_AFTER,
    REFUND_ISSUE_TASK,
    REFUND_RECHECK_TASK,
)
from refunds.states import RefundState
from rma.models import ExceptionState, ReturnException

BATCH = 500


def owed(*, now: datetime, older_than: timedelta) -> list[tuple[str, list]]:
    work: list[tuple[str, list]] = []
    for pk, tenant_id in (
        Refund.objects.filter(state=RefundState.APPROVED, updated_at__lt=now - older_than)
        .order_by("updated_at")
        .values_list("pk", "tenant_id")[:BATCH]
    ):
        work.append((REFUND_ISSUE_TASK, [pk, tenant_id]))
    for pk, tenant_id in (
        Refund.objects.filter(
            state=RefundState.ISSUING, issuing_started_at__lte=now - ISSUING_STALE_AFTER
        )
        .order_by("issuing_started_at")
        .values_list("pk", "tenant_id")[:BATCH]
    ):
        work.append((REFUND_ISSUE_TASK, [pk, tenant_id]))
    blocking = ReturnException.objects.filter(
        return_request_id=OuterRef("return_request_id"),
        state=ExceptionState.OPEN,
        kind__in=HOLDING_EXCEPTIONS,
    )
    for pk, tenant_id in (
        Refund.objects.filter(state=RefundState.HELD, hold_reason=HOLD_EXCEPTION_REASON)
        .filter(~Exists(blocking))
        .order_by("updated_at")
        .values_list("pk", "tenant_id")[:BATCH]
    ):
        work.append((REFUND_RECHECK_TASK, [pk, tenant_id]))
    return work
