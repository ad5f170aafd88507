"""Demo data for the refunds issue: one return refunded under each default rule and one
exchange, driven through the real services (DESIGN.md section 2: "Each issue extends
`seed_demo`"). `seed_demo` (portal work) calls `seed_refund_demo(tenant=..., now=...)`.

Orders and returns are written directly here because the order import and
`return_request_create` live in other branches; once merged, the lead may
switch these two writes to those services. Everything after creation goes
through `rma.services`, `rma.warehouse` and `refunds.services`, and the
reactions and issue tasks are run inline (the seeding process acts as the
worker), so the demo starts with settled refunds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction

from refunds import services as refund_services
from refunds.models import Refund
from returns_portal import workflows
from returns_portal.tenancy.models import Tenant
from rma.models import Milestone, Order, OrderLine, ReturnLine, ReturnRequest
from rma.services import milestone_reach, return_hooks_run_created, rma_number_allocate
from rma.warehouse import InspectionEntry, checkin_record, inspection_record

#: (label, risk level, unit price, trigger reached by the demo)
DEMO = [
    ("Low risk", "low", "79.00"),
    ("Standard", "medium", "49.00"),
    ("High value", "low", "720.00"),
    ("High risk", "high", "39.00"),
]


def _run_owed(now: datetime) -> None:
    """Run every owed reaction and issue task inline (what the worker would do)."""
    for _ in range(10):
        pending = list(
            Milestone.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True)
        )
        issuing = list(Refund.objects.filter(state="approved").values_list("pk", "tenant_id"))
        if not pending and not issuing:
            return
        for pk in pending:
            workflows.milestone_dispatch(milestone_id=pk, now=now)
        for pk, tenant_id in issuing:
            refund_services.refund_issue(tenant_id=tenant_id, refund_id=pk, now=now)


def _order_and_return(
    tenant: Tenant, *, n: int, risk: str, price: str, now: datetime, exchange_sku: str = ""
) -> ReturnRequest:
    with transaction.atomic():
        unit = Decimal(price)
        order = Order.objects.create(
            tenant=tenant,
            number=f"#D{9000 + n}",
            email=f"demo{n}@example.com",
            currency=tenant.currency,
            placed_at=now - timedelta(days=12),
            fulfilled_at=now - timedelta(days=10),
            financial_status="paid",
            fulfillment_status="fulfilled",
            subtotal=unit,
            taxes=(unit * Decimal("0.08")).quantize(Decimal("0.01")),
            total=unit + (unit * Decimal("0.08")).quantize(Decimal("0.01")),
            risk_level=risk,
            shipping_country=tenant.country,
        )
        line = OrderLine.objects.create(
            tenant=tenant,
            order=order,
            position=1,
            sku=f"DEMO-{n}",
            title=f"Demo item {n}",
            quantity=1,
            fulfilled_quantity=1,
            unit_price=unit,
        )
        rr = ReturnRequest.objects.create(
            tenant=tenant,
            order=order,
            rma_number=rma_number_allocate(tenant=tenant),
            email=order.email,
            created_at=now - timedelta(days=6),
            updated_at=now,
        )
        ReturnLine.objects.create(
            tenant=tenant,
            return_request=rr,
            order_line=line,
            quantity=1,
            reason="too_small",
            resolution="exchange" if exchange_sku else "refund",
            exchange_sku=exchange_sku,
        )
        milestone_reach(
            tenant=tenant,
            return_request=rr,
            name="requested",
            reached_at=rr.created_at,
            source="system",
            now=now,
        )
        return_hooks_run_created(rr, now=rr.created_at)
    return rr


def _walk(rr: ReturnRequest, now: datetime, *, until: str) -> None:
    tenant = rr.tenant
    steps = [("first_scan", 5), ("delivered", 3)]
    for name, days_ago in steps:
        milestone_reach(
            tenant=tenant,
            return_request=rr,
            name=name,
            reached_at=now - timedelta(days=days_ago),
            source="carrier",
            now=now,
        )
        _run_owed(now)
        if name == until:
            break
    if until in ("received", "inspected"):
        checkin_record(
            tenant=tenant,
            return_request=rr,
            condition="intact",
            now=now - timedelta(days=2),
            actor="demo",
            channel="scanner",
        )
        _run_owed(now)
        inspection_record(
            tenant=tenant,
            return_request=rr,
            entries=[
                InspectionEntry(return_line=ln, grade="A", disposition="restock")
                for ln in rr.lines.all()
            ],
            now=now - timedelta(days=1),
            actor="demo",
            channel="scanner",
        )
        _run_owed(now)


def seed_refund_demo(*, tenant: Tenant, now: datetime) -> list[ReturnRequest]:
    """Create and settle the demo returns; returns them (4 refunds, 1 exchange)."""
    made = []
    for n, (_label, risk, price) in enumerate(DEMO, start=1):
        rr = _order_and_return(tenant, n=n, risk=risk, price=price, now=now)
        refund = Refund.objects.get(return_request=rr)
        _walk(rr, now, until="inspected" if refund.trigger == "inspected" else refund.trigger)
        made.append(rr)
    ex = _order_and_return(
        tenant, n=len(DEMO) + 1, risk="medium", price="59.00", now=now, exchange_sku="DEMO-5-L"
    )
    _walk(ex, now, until="inspected")
    refund_services.exchange_ship(
        tenant=tenant,
        return_request=ex,
        carrier="ups",
        tracking_number="1Z999AA10000000099",
        now=now,
        actor="demo",
        replacement_unit_prices={ex.lines.get().pk: Decimal("59.00")},
    )
    _run_owed(now)
    made.append(ex)
    return made
