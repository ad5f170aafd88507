"""Helpers for refund tests: an order with lines, a return with the refund created by the
return-created hook, and a test "worker" that runs the tasks the code enqueued (by name,
after commit, never Celery's eager mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from refunds import services
from refunds.models import Refund
from returns_portal import workflows
from rma.services import milestone_reach, return_hooks_run_created
from tests.factories import OrderFactory, OrderLineFactory, ReturnLineFactory, ReturnRequestFactory

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
TEST_FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _field_encryption(settings):
    settings.FIELD_ENCRYPTION_KEYS = [TEST_FERNET_KEY]


def make_order(
    tenant,
    *,
    currency="USD",
    risk="medium",
    lines=(("50.00", 2, "0"),),
    taxes="8.00",
    subtotal=None,
    total=None,
    taxes_included=False,
    refunded_amount="0",
    shipping="0",
    **kw,
):
    """An order whose lines are `(unit_price, quantity, discount[, refunded_quantity])`."""
    nets = [Decimal(p) * q - Decimal(d) for p, q, d, *_ in lines]
    sub = Decimal(subtotal) if subtotal is not None else sum(nets, Decimal(0))
    tot = (
        Decimal(total)
        if total is not None
        else sub + (Decimal(0) if taxes_included else Decimal(taxes)) + Decimal(shipping)
    )
    order = OrderFactory(
        tenant=tenant,
        currency=currency,
        risk_level=risk,
        taxes=Decimal(taxes),
        subtotal=sub,
        total=tot,
        taxes_included=taxes_included,
        refunded_amount=Decimal(refunded_amount),
        shipping=Decimal(shipping),
        **kw,
    )
    for i, (price, qty, discount, *rest) in enumerate(lines):
        OrderLineFactory(
            order=order,
            position=i + 1,
            unit_price=Decimal(price),
            quantity=qty,
            discount=Decimal(discount),
            refunded_quantity=rest[0] if rest else 0,
            sku=f"SKU-{order.pk}-{i + 1}",
        )
    return order


def make_return(
    order, quantities, *, created_at=T0, reasons=None, resolutions=None, exchange_skus=None
):
    """A return of `quantities[i]` units of the order's line i (0 = not returned), then the
    return-created hooks (the refund and its rule), as `return_request_create` will do."""
    rr = ReturnRequestFactory(
        order=order, tenant=order.tenant, created_at=created_at, updated_at=created_at
    )
    for i, (line, qty) in enumerate(
        zip(order.lines.order_by("position"), quantities, strict=False)
    ):
        if qty:
            ReturnLineFactory(
                return_request=rr,
                order_line=line,
                quantity=qty,
                reason=(reasons or {}).get(i, "too_small"),
                resolution=(resolutions or {}).get(i, "refund"),
                exchange_sku=(exchange_skus or {}).get(i, ""),
            )
    return_hooks_run_created(rr, now=created_at)
    return rr


def refund_of(rr) -> Refund:
    return Refund.objects.get(return_request=rr, outcome="refund")


@dataclass
class Worker:
    """Collects tasks sent by name and runs them like a worker would, one by one."""

    capture: object
    now: datetime = T0
    sent: list = field(default_factory=list)
    ran: list = field(default_factory=list)

    def run(self, fn, *args, **kwargs):
        with self.capture(execute=True):
            return fn(*args, **kwargs)

    def drain(self, now=None, skip=("rma.notification_send",)):
        now = now or self.now
        results = []
        while self.sent:
            name, args = self.sent.pop(0)
            if name in skip:
                continue
            self.ran.append(name)
            if name == "returns_portal.dispatch_milestone":
                results.append(
                    self.run(workflows.milestone_dispatch, milestone_id=args[0], now=now)
                )
            elif name == "refunds.refund_issue":
                results.append(
                    self.run(services.refund_issue, refund_id=args[0], tenant_id=args[1], now=now)
                )
            elif name == "refunds.refund_recheck":
                results.append(
                    self.run(services.refund_recheck, refund_id=args[0], tenant_id=args[1], now=now)
                )
            else:
                raise AssertionError(f"unexpected task {name}")
        return results

    def reach(self, rr, name, at, source="carrier", now=None):
        self.run(
            milestone_reach,
            tenant=rr.tenant,
            return_request=rr,
            name=name,
            reached_at=at,
            source=source,
            now=now or at,
        )
        return self.drain(now=now or at)


@pytest.fixture
def worker(monkeypatch, django_capture_on_commit_callbacks):
    w = Worker(capture=django_capture_on_commit_callbacks)
    monkeypatch.setattr(
        "celery.current_app.send_task",
        lambda name, args=None, **kw: w.sent.append((name, list(args or []))),
    )
    return w
