"""Refund states (DESIGN.md section 5, contract) and the only function that changes them.

`pending` (trigger not reached), `held` (manual approval, or an open
mismatch/damage exception), `approved`, `issuing`, `issued` (gateway
confirmed), `failed`, `cancelled`.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _


class RefundState(models.TextChoices):
    PENDING = "pending", _("Pending")
    HELD = "held", _("Held")
    APPROVED = "approved", _("Approved")
    ISSUING = "issuing", _("Issuing")
    ISSUED = "issued", _("Issued")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    RefundState.PENDING: frozenset({RefundState.HELD, RefundState.APPROVED, RefundState.CANCELLED}),
    RefundState.HELD: frozenset({RefundState.PENDING, RefundState.APPROVED, RefundState.CANCELLED}),
    RefundState.APPROVED: frozenset({RefundState.ISSUING, RefundState.HELD, RefundState.CANCELLED}),
    # `issuing` -> `approved` is not allowed: a refund in flight is looked up at
    # the gateway with its key, never re-sent with a new one.
    RefundState.ISSUING: frozenset({RefundState.ISSUED, RefundState.FAILED}),
    RefundState.ISSUED: frozenset(),
    RefundState.FAILED: frozenset({RefundState.APPROVED, RefundState.CANCELLED}),
    RefundState.CANCELLED: frozenset(),
}


class InvalidRefundTransition(Exception):
    pass


class RefundRaceLost(Exception):
    pass


def refund_transition(*, refund, to_state: str, actor: str, reason: str, now: datetime, **fields):
    """Move `refund` to `to_state` with a conditional update and an audit row.

    Raises `InvalidRefundTransition` or `RefundRaceLost`. Extra `fields` are
    written in the same UPDATE (e.g. `approved_at`).
    """
    from refunds.models import Refund, RefundStateChange

    current = refund.state
    if to_state not in ALLOWED_TRANSITIONS[RefundState(current)]:
        raise InvalidRefundTransition(f"refund {refund.pk}: {current} -> {to_state}")
    changed = Refund.objects.filter(pk=refund.pk, state=current).update(
        state=to_state, updated_at=now, **fields
    )
    if not changed:
        raise RefundRaceLost(f"refund {refund.pk} is no longer {current}")
    RefundStateChange.objects.create(
        tenant_id=refund.tenant_id,
        refund=refund,
        from_state=current,
        to_state=to_state,
        actor=actor[:200],
        reason=reason[:500],
        at=now,
    )
    refund.state = to_state
    for key, value in fields.items():
        setattr(refund, key, value)
    return refund
