"""Refund reads for the API, the admin and the tracking page (portal work)."""

from __future__ import annotations

from refunds.models import Refund, RefundOutcome
from rma.models import ReturnRequest
from rma.money import format_amount


def _iso(value):
    return value.isoformat().replace("+00:00", "Z") if value else None


def refund_summary(return_request: ReturnRequest) -> dict | None:
    """The API's `refund` object (DESIGN.md section 10): `{state, amount, currency,
    method, rule, explanation, estimate: {from, to, text}}` plus `trigger`,
    `bonus_amount`, `approved_at`, `issued_at`. Amounts are strings at the
    currency's exponent (`31.00`, `9899`, `1.500`) or null before approval;
    times ISO 8601 UTC."""
    refund = Refund.objects.filter(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        outcome=RefundOutcome.REFUND,
    ).first()
    if refund is None:
        return None
    cur = refund.currency
    return {
        "state": refund.state,
        "amount": None if refund.amount is None else format_amount(refund.amount, cur),
        "bonus_amount": format_amount(refund.bonus_amount or 0, cur),
        "currency": cur,
        "method": refund.method,
        "trigger": refund.trigger,
        "rule": refund.rule_name or None,
        "explanation": refund.explanation,
        "approved_at": _iso(refund.approved_at),
        "issued_at": _iso(refund.issued_at),
        "estimate": {
            "from": _iso(return_request.refund_estimate_from),
            "to": _iso(return_request.refund_estimate_to),
            "text": return_request.refund_estimate_text,
        },
    }
