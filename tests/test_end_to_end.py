"""One return across every app, through the same services and tasks production runs:
portal return -> sandbox label -> carrier polling -> carrier milestones -> refund
approved by the "Standard" rule at delivery and issued once -> check-in ->
inspection -> closed as refunded; and a stalled parcel caught by detection.

The worker's part (milestone reactions, refund issue) is run inline by
`run_owed`, exactly what the outbox sweeper would nudge the worker to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from refunds.models import Refund, RefundTransaction
from refunds.services import refund_issue
from returns_portal import workflows
from returns_portal.detection import detection_run
from rma import labels
from rma.models import Milestone, Notification, ReturnException
from rma.services import ReturnLineInput, return_request_create
from rma.warehouse import InspectionEntry, checkin_record, inspection_record
from tests.factories import OrderFactory, OrderLineFactory
from tracking.carriers.sandbox import script_for
from tracking.models import TrackingEvent
from tracking.polling import poll_due_run

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)


def run_owed(now: datetime) -> None:
    """What the worker does when nudged: dispatch milestones, issue approved refunds."""
    for _ in range(5):
        owed = list(
            Milestone.objects.filter(dispatched_at__isnull=True).values_list("pk", flat=True)
        )
        approved = list(Refund.objects.filter(state="approved").values_list("pk", "tenant_id"))
        if not owed and not approved:
            return
        for pk in owed:
            workflows.milestone_dispatch(milestone_id=pk, now=now)
        for pk, tenant_id in approved:
            refund_issue(tenant_id=tenant_id, refund_id=pk, now=now)


def standard_order(tenant):
    order = OrderFactory(
        tenant=tenant,
        number="#2001",
        email="dana@example.com",
        risk_level="medium",
        placed_at=T0 - 10 * 24 * H,
        fulfilled_at=T0 - 9 * 24 * H,
        subtotal=Decimal("120.00"),
        taxes=Decimal("9.60"),
        shipping=Decimal("0.00"),
        total=Decimal("129.60"),
        taxes_included=False,
    )
    line = OrderLineFactory(order=order, sku="JKT-M", quantity=2, unit_price=Decimal("60.00"))
    return order, line


def test_return_travels_from_request_to_refund_through_every_app(tenant):
    order, line = standard_order(tenant)
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email="Dana@Example.com",
        lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="too_small")],
        method="drop_off",
        source="customer",
        now=T0,
    )
    shipment = rr.shipments.get()
    assert labels.label_purchase(shipment=shipment, timeout=5, now=T0).status == "ready"
    shipment.refresh_from_db()
    assert script_for(shipment.tracking_number) == "delivered"
    assert shipment.next_poll_at == T0  # scheduled by tracking's shipment-created hook
    refund = Refund.objects.get(return_request=rr)
    assert (refund.state, refund.rule_name, refund.trigger) == ("pending", "Standard", "delivered")
    run_owed(T0)
    shipment.refresh_from_db()
    assert shipment.first_scan_due_at == T0 + 72 * H

    # The sandbox scans at +2 h (accepted) ... +50 h (delivered); the poller asks.
    poll_due_run(now=T0 + 3 * H)
    run_owed(T0 + 3 * H)
    shipment.refresh_from_db()
    assert shipment.status == "accepted"
    assert shipment.first_scan_due_at is None
    reached = dict(Milestone.objects.filter(return_request=rr).values_list("name", "reached_at"))
    assert reached["first_scan"] == T0 + 2 * H and reached["dropped_off"] == T0 + 2 * H

    for hours in (12, 24, 36, 48, 51):
        poll_due_run(now=T0 + hours * H)
        run_owed(T0 + hours * H)
    shipment.refresh_from_db()
    rr.refresh_from_db()
    assert shipment.status == "delivered" and shipment.next_poll_at is None
    assert Milestone.objects.get(return_request=rr, name="delivered").reached_at == T0 + 50 * H
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5
    assert rr.checkin_due_at == T0 + 74 * H

    # "Standard": approved at delivery, 60.00 + its tax share 4.80, issued once.
    refund.refresh_from_db()
    assert refund.state == "issued"
    assert refund.amount == Decimal("64.800")
    assert RefundTransaction.objects.filter(refund=refund).count() == 1
    assert Notification.objects.filter(return_request=rr, kind__icontains="refund").exists()

    checkin_record(
        tenant=tenant,
        return_request=rr,
        condition="intact",
        now=T0 + 60 * H,
        actor="dock",
        channel="scanner",
    )
    run_owed(T0 + 60 * H)
    (return_line,) = rr.lines.all()
    inspection_record(
        tenant=tenant,
        return_request=rr,
        entries=[InspectionEntry(return_line=return_line, grade="A", disposition="restock")],
        now=T0 + 62 * H,
        actor="inspector",
        channel="scanner",
    )
    run_owed(T0 + 62 * H)
    rr.refresh_from_db()
    assert rr.status == "refunded" and rr.closed_at == T0 + 62 * H
    detection_run(now=T0 + 30 * 24 * H)
    assert not ReturnException.objects.filter(return_request=rr).exists()


def test_parcel_never_scanned_is_caught_at_72_hours(other_tenant):
    """Tenant "globex"'s third return gets a label that the sandbox never scans
    (its "no_scan" script): polling hears nothing, and detection opens
    `no_first_scan` at 72 h 00 m after the label, not at 71 h 59 m."""
    returns = []
    for n in range(3):
        order, line = standard_order(other_tenant) if n == 0 else (None, None)
        if order is None:
            order = OrderFactory(
                tenant=other_tenant, number=f"#20{n + 1:02d}", placed_at=T0 - 24 * H
            )
            line = OrderLineFactory(order=order, quantity=1)
        rr = return_request_create(
            tenant=other_tenant,
            order=order,
            email=order.email,
            lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="too_small")],
            method="drop_off",
            source="customer",
            now=T0,
        )
        labels.label_purchase(shipment=rr.shipments.get(), timeout=5, now=T0)
        returns.append(rr)
    stalled = returns[2]
    shipment = stalled.shipments.get()
    assert script_for(shipment.tracking_number) == "no_scan"
    run_owed(T0)
    for hours in (1, 6, 24, 48, 71):
        poll_due_run(now=T0 + hours * H)
        run_owed(T0 + hours * H)
    shipment.refresh_from_db()
    assert shipment.status == "unknown" and shipment.poll_failures > 0
    detection_run(now=T0 + 72 * H - timedelta(minutes=1))
    assert not ReturnException.objects.filter(return_request=stalled).exists()
    detection_run(now=T0 + 72 * H)
    exc = ReturnException.objects.get(return_request=stalled)
    assert (exc.kind, exc.shipment_id, exc.state) == ("no_first_scan", shipment.pk, "open")
    assert (
        Notification.objects.filter(return_request=stalled, key__startswith="alert:").count() == 1
    )


def test_a_refund_that_would_pay_nothing_is_held_for_staff(tenant):
    """The order's total is already refunded in Shopify (but no units match the amount),
    so the cap leaves 0.00: the refund is held, never approved and issued as 0.00."""
    order, line = standard_order(tenant)
    order.refunded_amount = order.total
    order.save()
    rr = return_request_create(
        tenant=tenant,
        order=order,
        email=order.email,
        lines=[ReturnLineInput(line_id=line.line_id, quantity=1, reason="too_small")],
        method="drop_off",
        source="customer",
        now=T0,
    )
    labels.label_purchase(shipment=rr.shipments.get(), timeout=5, now=T0)
    for hours in (0, 3, 51):
        poll_due_run(now=T0 + hours * H)
        run_owed(T0 + hours * H)
    refund = Refund.objects.get(return_request=rr)
    assert (refund.state, refund.hold_reason) == ("held", "computed amount is zero")
    assert not RefundTransaction.objects.filter(refund=refund).exists()
    assert not Notification.objects.filter(return_request=rr, kind__icontains="refund").exists()
