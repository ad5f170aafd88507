"""The sandbox gateway: every tenant's gateway until the merchant connects Shopify or
Stripe, and the store-credit ledger. No money moves.

It stores each call in `SandboxGatewayCall` with a UNIQUE idempotency key: a
repeated key answers with the first call's result (and counts the repeat in
`calls`), exactly like a real gateway's idempotency. `lookup` reads the row
and never creates one.
"""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.db.models import F

from refunds.gateways.base import NOT_FOUND, SUCCEEDED, GatewayResult, RefundRequest


def _tenant_id(request: RefundRequest) -> int:
    """The sandbox keeps its calls per tenant; a request without one is a programming error."""
    if request.tenant_id is None:
        raise ValueError("the sandbox gateway needs RefundRequest.tenant_id")
    return request.tenant_id


class SandboxGateway:
    name = "sandbox"

    def create(self, request: RefundRequest) -> GatewayResult:
        from refunds.models import SandboxGatewayCall

        try:
            with transaction.atomic():
                row = SandboxGatewayCall.objects.create(
                    tenant_id=_tenant_id(request),
                    idempotency_key=request.idempotency_key,
                    amount=request.amount,
                    currency=request.currency,
                    method=request.method,
                    reference="sbx_" + secrets.token_hex(8),
                    status=SUCCEEDED,
                )
        except IntegrityError:
            scope = SandboxGatewayCall.objects.filter(
                tenant_id=_tenant_id(request), idempotency_key=request.idempotency_key
            )
            scope.update(calls=F("calls") + 1)
            row = scope.get()
        return self._result(row)

    def lookup(self, request: RefundRequest) -> GatewayResult:
        from refunds.models import SandboxGatewayCall

        row = SandboxGatewayCall.objects.filter(
            tenant_id=_tenant_id(request), idempotency_key=request.idempotency_key
        ).first()
        if row is None:
            return GatewayResult(status=NOT_FOUND, message="no call with this key")
        return self._result(row)

    @staticmethod
    def _result(row) -> GatewayResult:
        return GatewayResult(
            status=row.status,
            reference=row.reference,
            message="sandbox: no money moved",
            raw={"reference": row.reference, "amount": str(row.amount), "currency": row.currency},
        )
