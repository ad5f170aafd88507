"""The gateway interface. An adapter does HTTP and parsing only (the sandbox keeps its
ledger in the database by design); it never touches refunds, tenants or transactions.

Every request carries the refund's idempotency key `refund:<refund uuid>`
(DESIGN.md section 8). `create` sends the refund once; `lookup` finds it by
that key and never sends anything. Both return a `GatewayResult`:

- `succeeded` / `pending` / `failed` (permanent: the gateway refused it);
- `error`: transient (network, 5xx, rate limit): the outcome is unknown,
  the refund stays `issuing` and is looked up later with the same key;
- `not_found` (lookup only): the gateway never saw the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

SUCCEEDED = "succeeded"
PENDING = "pending"
FAILED = "failed"
ERROR = "error"
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class RefundRequest:
    """What a gateway needs. `amount` Decimal major units in `currency`;
    `order_reference` is the gateway's id of the payment or order (Shopify order id,
    Stripe `ch_`/`pi_` id; empty for the sandbox)."""

    idempotency_key: str
    amount: Decimal
    currency: str
    method: str
    order_reference: str = ""
    order_number: str = ""
    note: str = ""
    tenant_id: int | None = None


@dataclass(frozen=True)
class GatewayResult:
    status: str
    reference: str = ""
    message: str = ""
    raw: dict = field(default_factory=dict)


class Gateway(Protocol):
    name: str

    def create(self, request: RefundRequest) -> GatewayResult: ...

    def lookup(self, request: RefundRequest) -> GatewayResult: ...
