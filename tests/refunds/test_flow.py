"""Refund services end to end on the sandbox gateway: rule at creation, approval by
milestone, amount under the lock, issuing, outcome and closing (DESIGN.md sections 5, 7, 8)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from refunds import services
from refunds.models import (
    Exchange,
    RefundDecisionChange,
    RefundRule,
    RefundTransaction,
    SandboxGatewayCall,
)
from rma.models import (
    CheckIn,
    ExceptionKind,
    Milestone,
    Notification,
    ReturnException,
    Shipment,
)
from rma.services import exception_resolve
from rma.warehouse import InspectionEntry, checkin_record, inspection_record
from tests.refunds.conftest import T0, make_order, make_return, refund_of

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


def checkin(worker, rr, *, condition="intact", at):
    worker.run(
        checkin_record,
        tenant=rr.tenant,
        return_request=rr,
        condition=condition,
        now=at,
        actor="acme-agent",
        channel="scanner",
    )
    return worker.drain(now=at)


def inspect_all(worker, rr, *, at, grade="A", disposition="restock", matches=True, note=""):
    entries = [
        InspectionEntry(
            return_line=line, grade=grade, disposition=disposition, matches=matches, note=note
        )
        for line in rr.lines.all()
    ]
    worker.run(
        inspection_record,
        tenant=rr.tenant,
        return_request=rr,
        entries=entries,
        now=at,
        actor="acme-agent",
        channel="scanner",
    )
    return worker.drain(now=at)


def test_default_rules_are_provisioned_in_order(tenant):
    assert list(
        RefundRule.objects.filter(tenant=tenant).values_list("name", "trigger", "position")
    ) == [
        ("High risk", "inspected", 10),
        ("High value", "inspected", 20),
        ("Low risk", "first_scan", 30),
        ("Standard", "delivered", 40),
    ]
    assert RefundRule.objects.get(tenant=tenant, name="High value").line_value_min["JPY"] == "75000"


def test_standard_refund_at_delivery_then_closes_after_inspection(tenant, worker):
    order = make_order(tenant, risk="medium", lines=[("50.00", 2, "0")], taxes="8.00")
    rr = make_return(order, [1])
    refund = refund_of(rr)
    assert (refund.state, refund.rule_name, refund.trigger) == ("pending", "Standard", "delivered")
    assert refund.explanation == "rule 'Standard' matched: no conditions (everything else)"
    rr.refresh_from_db()
    assert rr.refund_rule_snapshot["rule"] == "Standard"
    assert rr.refund_estimate_text.startswith("Expected between")

    worker.reach(rr, "first_scan", T0 + H)
    assert refund_of(rr).state == "pending"
    worker.reach(rr, "delivered", T0 + 50 * H)
    refund = refund_of(rr)
    assert refund.state == "issued"
    assert refund.amount == Decimal("54.00")  # 50.00 + 8.00 x 50/100
    assert refund.breakdown["tax"] == "4.00"
    assert refund.gateway == "sandbox"
    call = SandboxGatewayCall.objects.get()
    assert (call.idempotency_key, call.amount, call.calls) == (
        f"refund:{refund.uuid}",
        Decimal("54.00"),
        1,
    )
    assert [t.kind for t in RefundTransaction.objects.filter(refund=refund)] == ["create"]
    mail = Notification.objects.get(kind="refund_approved")
    assert mail.body_text.startswith("Refund approved. Your bank may take 1-3 days.")
    assert "54.00 USD" in mail.body_text
    refunded = Milestone.objects.get(return_request=rr, name="refunded")
    assert refunded.source == "system"
    rr.refresh_from_db()
    assert rr.refund_state == "issued"
    assert rr.closed_at is None  # issued before inspection: the return stays open
    assert rr.status == "delivered"

    checkin(worker, rr, at=T0 + 60 * H)
    inspect_all(worker, rr, at=T0 + 70 * H)
    rr.refresh_from_db()
    assert rr.status == "refunded"
    assert rr.closed_at == T0 + 70 * H


def test_low_risk_refund_at_first_scan(tenant, worker):
    rr = make_return(make_order(tenant, risk="low"), [2])
    assert refund_of(rr).rule_name == "Low risk"
    worker.reach(rr, "first_scan", T0 + H)
    refund = refund_of(rr)
    assert (refund.state, refund.amount) == ("issued", Decimal("108.00"))


@pytest.mark.parametrize("risk", ["high", "low"])
def test_high_risk_and_high_value_wait_for_inspection(tenant, worker, risk):
    order = make_order(tenant, risk=risk, lines=[("720.00", 1, "0"), ("20.00", 1, "0")], taxes="0")
    rr = make_return(order, [1, 1])
    refund = refund_of(rr)
    if risk == "high":
        assert refund.explanation == "rule 'High risk' matched: risk level high"
    else:
        assert (
            refund.explanation == "rule 'High value' matched: line value 720.00 USD >= 500.00 USD"
        )
    worker.reach(rr, "first_scan", T0 + H)
    worker.reach(rr, "delivered", T0 + 40 * H)
    checkin(worker, rr, at=T0 + 41 * H)
    assert refund_of(rr).state == "pending"
    inspect_all(worker, rr, at=T0 + 45 * H)
    refund = refund_of(rr)
    assert (refund.state, refund.amount) == ("issued", Decimal("740.00"))
    rr.refresh_from_db()
    assert rr.status == "refunded"


def test_a_later_milestone_approves_an_earlier_trigger(tenant, worker):
    rr = make_return(make_order(tenant, risk="low"), [1])
    checkin(
        worker, rr, at=T0 + 5 * H
    )  # no carrier scan at all: check-in gives delivered + received
    assert refund_of(rr).state == "issued"
    assert set(Milestone.objects.filter(return_request=rr).values_list("name", "source")) >= {
        ("delivered", "check-in"),
        ("received", "check-in"),
    }


def test_manual_rule_holds_until_staff_approve(tenant, worker):
    RefundRule.objects.create(
        tenant=tenant, name="Wholesale", position=1, order_tags=["wholesale"], trigger="manual"
    )
    rr = make_return(make_order(tenant, risk="low", tags=["wholesale"]), [1])
    refund = refund_of(rr)
    assert (refund.state, refund.trigger, refund.hold_reason) == (
        "held",
        "manual",
        "manual approval required",
    )
    worker.reach(rr, "first_scan", T0 + H)
    checkin(worker, rr, at=T0 + 2 * H)
    inspect_all(worker, rr, at=T0 + 3 * H)
    assert refund_of(rr).state == "held"
    worker.run(services.refund_approve_by_staff, refund=refund, actor="acme-admin", now=T0 + 4 * H)
    worker.drain(now=T0 + 4 * H)
    refund = refund_of(rr)
    assert (refund.state, refund.amount) == ("issued", Decimal("54.00"))
    assert refund.state_changes.filter(to_state="approved").get().actor == "acme-admin"
    rr.refresh_from_db()
    assert rr.status == "refunded"


def test_damaged_package_holds_then_resolution_releases(tenant, worker):
    rr = make_return(make_order(tenant, risk="medium"), [1])
    checkin(worker, rr, condition="damaged", at=T0 + 5 * H)
    refund = refund_of(rr)
    assert (refund.state, refund.hold_reason) == ("held", "open warehouse exception")
    exc = ReturnException.objects.get(
        return_request=rr, kind=ExceptionKind.DAMAGED_PACKAGE, state="open"
    )
    from refunds.outbox import owed

    assert owed(now=T0 + 6 * H, older_than=timedelta(minutes=2)) == []
    exception_resolve(
        exception=exc, resolution_code="accepted", resolved_at=T0 + 6 * H, by_staff=True
    )
    work = owed(now=T0 + 6 * H, older_than=timedelta(minutes=2))
    assert work == [("refunds.refund_recheck", [refund.pk, tenant.pk])]
    worker.sent.extend(work)
    worker.drain(now=T0 + 6 * H)
    assert refund_of(rr).state == "issued"


def test_mismatch_at_inspection_holds_an_inspection_refund(tenant, worker):
    rr = make_return(make_order(tenant, risk="high"), [1])
    checkin(worker, rr, at=T0 + H)
    inspect_all(worker, rr, at=T0 + 2 * H, matches=False, note="a different shoe")
    assert refund_of(rr).state == "held"
    assert ReturnException.objects.filter(
        return_request=rr, kind="warehouse_mismatch", state="open"
    ).exists()
    rr.refresh_from_db()
    assert rr.closed_at is None


def test_second_return_on_the_same_order_takes_the_next_units_and_the_cap(tenant, worker):
    # 3 x 20.00 with 10.00 discount (shares 3.34/3.33/3.33), taxes 5.00 on 50.00, total 55.00
    order = make_order(tenant, risk="low", lines=[("20.00", 3, "10.00")], taxes="5.00")
    first = make_return(order, [1], created_at=T0)
    second = make_return(order, [2], created_at=T0 + H)
    worker.reach(first, "first_scan", T0 + 2 * H)
    worker.reach(second, "first_scan", T0 + 3 * H)
    assert refund_of(first).amount == Decimal("18.33")  # 16.66 + 1.67
    assert refund_of(second).amount == Decimal("36.67")  # 33.34 + 3.33 (tax rounded once)
    assert refund_of(first).amount + refund_of(second).amount == order.total


def test_order_already_partly_refunded_in_the_export(tenant, worker):
    # one unit of 2 x 50.00 already refunded by the shop (54.00 with tax); total 108.00
    order = make_order(
        tenant, risk="low", lines=[("50.00", 2, "0", 1)], taxes="8.00", refunded_amount="60.00"
    )
    rr = make_return(order, [1])
    worker.reach(rr, "first_scan", T0 + H)
    refund = refund_of(rr)
    assert refund.amount == Decimal("48.00")  # 54.00 capped by 108.00 - 60.00
    assert refund.breakdown["capped"] is True


def test_tax_inclusive_order(tenant, worker):
    order = make_order(
        tenant, risk="low", lines=[("59.99", 2, "0")], taxes="20.00", taxes_included=True
    )
    rr = make_return(order, [1])
    worker.reach(rr, "first_scan", T0 + H)
    assert refund_of(rr).amount == Decimal("59.99")


def test_jpy_and_kwd_orders(tenant, worker):
    jpy = make_return(
        make_order(tenant, currency="JPY", risk="low", lines=[("9899", 1, "0")], taxes="990"), [1]
    )
    kwd = make_return(
        make_order(tenant, currency="KWD", risk="low", lines=[("1.500", 2, "0")], taxes="0.150"),
        [1],
    )
    worker.reach(jpy, "first_scan", T0 + H)
    worker.reach(kwd, "first_scan", T0 + H)
    assert refund_of(jpy).amount == Decimal("10889")
    assert refund_of(jpy).breakdown["amount"] == "10889"
    assert refund_of(kwd).breakdown["amount"] == "1.575"


def test_store_credit_with_bonus(tenant, worker):
    RefundRule.objects.create(
        tenant=tenant,
        name="Credit",
        position=1,
        reason_codes=["changed_mind"],
        trigger="first_scan",
        method="store_credit",
        store_credit_bonus_percent=Decimal("10"),
    )
    rr = make_return(make_order(tenant, risk="medium"), [1], reasons={0: "changed_mind"})
    worker.reach(rr, "first_scan", T0 + H)
    refund = refund_of(rr)
    assert (refund.method, refund.amount, refund.bonus_amount, refund.state) == (
        "store_credit",
        Decimal("54.00"),
        Decimal("5.40"),
        "issued",
    )
    assert SandboxGatewayCall.objects.get().amount == Decimal("59.40")
    mail = Notification.objects.get(kind="refund_approved")
    assert mail.body_text.startswith("Refund approved. Your store credit is issued right away.")
    checkin(worker, rr, at=T0 + 2 * H)
    inspect_all(worker, rr, at=T0 + 3 * H)
    rr.refresh_from_db()
    assert rr.status == "refunded"


def test_exchange_ships_outbound_and_closes_exchanged(tenant, worker):
    order = make_order(tenant, risk="low", lines=[("30.00", 2, "5.00")], taxes="0")
    rr = make_return(order, [1], resolutions={0: "exchange"}, exchange_skus={0: "SHOE-42"})
    refund = refund_of(rr)
    assert refund.method == "exchange"
    worker.reach(rr, "first_scan", T0 + H)
    assert refund_of(rr).state == "pending"  # nothing to pay
    checkin(worker, rr, at=T0 + 2 * H)
    inspect_all(worker, rr, at=T0 + 3 * H)
    line = rr.lines.get()
    worker.run(
        services.exchange_ship,
        tenant=tenant,
        return_request=rr,
        carrier="ups",
        tracking_number="1Z 999 AA1 0123456784",
        now=T0 + 4 * H,
        actor="acme-agent",
        replacement_unit_prices={line.pk: Decimal("32.00")},
    )
    worker.drain(now=T0 + 4 * H)
    ex = Exchange.objects.get()
    assert (ex.exchange_sku, ex.price_difference) == ("SHOE-42", Decimal("4.50"))  # 32.00 - 27.50
    out = Shipment.objects.get(return_request=rr, direction="outbound")
    assert out.tracking_number == "1Z999AA10123456784"
    assert refund_of(rr).state == "cancelled"
    rr.refresh_from_db()
    assert rr.status == "exchanged"
    assert Milestone.objects.filter(return_request=rr, name="exchanged").exists()


def test_mixed_return_refunds_and_exchanges(tenant, worker):
    order = make_order(tenant, risk="low", lines=[("40.00", 1, "0"), ("30.00", 1, "0")], taxes="0")
    rr = make_return(order, [1, 1], resolutions={1: "exchange"}, exchange_skus={1: "TEE-M"})
    worker.reach(rr, "first_scan", T0 + H)
    assert refund_of(rr).amount == Decimal("40.00")
    checkin(worker, rr, at=T0 + 2 * H)
    inspect_all(worker, rr, at=T0 + 3 * H)
    rr.refresh_from_db()
    assert rr.closed_at is None  # the exchange has not shipped
    worker.run(
        services.exchange_ship,
        tenant=tenant,
        return_request=rr,
        carrier="ups",
        tracking_number="1Z999AA10000000001",
        now=T0 + 4 * H,
        actor="acme-agent",
    )
    worker.drain(now=T0 + 4 * H)
    rr.refresh_from_db()
    assert rr.status == "refunded"


def test_reevaluate_is_recorded(tenant, worker):
    rr = make_return(make_order(tenant, risk="medium"), [1])
    RefundRule.objects.filter(tenant=tenant, name="Standard").update(trigger="received")
    worker.run(services.refund_reevaluate, refund=refund_of(rr), actor="acme-admin", now=T0 + H)
    refund = refund_of(rr)
    assert refund.trigger == "received"
    change = RefundDecisionChange.objects.get()
    assert (change.old_trigger, change.new_trigger, change.actor) == (
        "delivered",
        "received",
        "acme-admin",
    )


def test_checkin_twice_is_idempotent(tenant, worker):
    rr = make_return(make_order(tenant), [1])
    checkin(worker, rr, at=T0 + H)
    checkin(worker, rr, condition="damaged", at=T0 + 2 * H)
    assert CheckIn.objects.get().condition == "intact"
    assert not ReturnException.objects.filter(kind="damaged_package").exists()
