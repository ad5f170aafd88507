"""milestone_reach, exception_open/resolve, notifications and the outbox (DESIGN.md sections 2, 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from returns_portal import workflows
from returns_portal.tasks import outbox_sweep_run
from rma.models import ExceptionState, Milestone, Notification, ReturnException, ReturnStatusChange
from rma.notifications import notification_send
from rma.services import (
    DISPATCH_MILESTONE_TASK,
    TenantMismatch,
    exception_open,
    exception_resolve,
    milestone_reach,
    notification_queue,
    rma_number_allocate,
)
from rma.states import InvalidTransition, return_status_transition
from tests.factories import ReturnRequestFactory, ShipmentFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


@pytest.fixture
def rr(tenant):
    return ReturnRequestFactory(order__tenant=tenant)


def reach(rr, name, at, source="carrier", **kw):
    return milestone_reach(
        tenant=rr.tenant, return_request=rr, name=name, reached_at=at, source=source, now=T0, **kw
    )


def test_rma_numbers_are_sequential_per_tenant(tenant, other_tenant):
    assert [rma_number_allocate(tenant=tenant) for _ in range(3)] == [
        "RMA-100001",
        "RMA-100002",
        "RMA-100003",
    ]
    assert rma_number_allocate(tenant=other_tenant) == "RMA-100001"


def test_first_reach_creates_outbox_row_and_enqueues_dispatch(
    rr, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args: sent.append((name, args))
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = reach(rr, "first_scan", T0)
    assert result.created and not result.moved
    assert result.milestone.dispatched_at is None
    assert sent == [(DISPATCH_MILESTONE_TASK, [result.milestone.pk])]
    rr.refresh_from_db()
    assert rr.status == "first_scan"


def test_repeat_with_later_time_changes_nothing_and_fires_nothing(
    rr, django_capture_on_commit_callbacks, monkeypatch
):
    reach(rr, "first_scan", T0)
    sent = []
    monkeypatch.setattr("celery.current_app.send_task", lambda name, args: sent.append(name))
    with django_capture_on_commit_callbacks(execute=True):
        again = reach(rr, "first_scan", T0 + timedelta(hours=1))
    assert not again.created and not again.moved
    assert again.milestone.reached_at == T0
    assert sent == []


def test_earlier_instant_from_same_source_moves_it(rr):
    reach(rr, "first_scan", T0)
    moved = reach(rr, "first_scan", T0 - timedelta(hours=2))
    assert moved.moved
    assert Milestone.objects.get(return_request=rr, name="first_scan").reached_at == T0 - timedelta(
        hours=2
    )


def test_customer_dropoff_replaced_by_later_carrier_value(rr):
    reach(rr, "dropped_off", T0, source="customer")
    result = reach(rr, "dropped_off", T0 + timedelta(hours=5), source="carrier")
    assert result.moved
    m = Milestone.objects.get(return_request=rr, name="dropped_off")
    assert (m.reached_at, m.source) == (T0 + timedelta(hours=5), "carrier")
    # ...and a later customer claim never takes it back.
    assert not reach(rr, "dropped_off", T0 - timedelta(hours=1), source="customer").moved


def test_checkin_delivery_replaced_by_earlier_carrier_delivery(rr):
    reach(rr, "delivered", T0, source="check-in")
    assert reach(rr, "delivered", T0 - timedelta(hours=3), source="carrier").moved
    assert Milestone.objects.get(return_request=rr, name="delivered").source == "carrier"


def test_status_is_furthest_parcel_milestone_and_never_goes_back(rr):
    reach(rr, "delivered", T0)
    reach(rr, "first_scan", T0 - timedelta(days=2))
    rr.refresh_from_db()
    assert rr.status == "delivered"
    changes = list(
        ReturnStatusChange.objects.filter(return_request=rr).values_list("from_status", "to_status")
    )
    assert changes == [("requested", "delivered")]


def test_closed_return_keeps_outcome_status(rr):
    return_status_transition(
        return_request=rr, to_status="refunded", actor="test", reason="done", now=T0
    )
    reach(rr, "inspected", T0)
    rr.refresh_from_db()
    assert rr.status == "refunded"
    assert rr.closed_at == T0


def test_status_table_refuses_backwards_and_reopening(rr):
    reach(rr, "in_transit", T0)
    rr.refresh_from_db()
    with pytest.raises(InvalidTransition):
        return_status_transition(
            return_request=rr, to_status="label_created", actor="t", reason="", now=T0
        )
    return_status_transition(return_request=rr, to_status="cancelled", actor="t", reason="", now=T0)
    with pytest.raises(InvalidTransition):
        return_status_transition(
            return_request=rr, to_status="delivered", actor="t", reason="", now=T0
        )


def test_milestone_refuses_other_tenants_return(rr, other_tenant):
    with pytest.raises(TenantMismatch):
        milestone_reach(
            tenant=other_tenant,
            return_request=rr,
            name="first_scan",
            reached_at=T0,
            source="carrier",
            now=T0,
        )


def test_dispatch_runs_reactions_once(rr, monkeypatch):
    calls = []
    monkeypatch.setattr(
        workflows, "REACTIONS", [lambda rr, names, now: calls.append(sorted(names))]
    )
    milestone = reach(rr, "delivered", T0).milestone
    assert workflows.milestone_dispatch(milestone_id=milestone.pk, now=T0)
    assert not workflows.milestone_dispatch(milestone_id=milestone.pk, now=T0)
    assert calls == [["delivered"]]
    milestone.refresh_from_db()
    assert milestone.dispatched_at == T0


def test_dispatch_claims_every_owed_milestone_of_the_return_in_one_batch(
    rr, other_tenant, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        workflows, "REACTIONS", [lambda r, names, now: calls.append((r.pk, sorted(names)))]
    )

    theirs = ReturnRequestFactory(order__tenant=other_tenant)
    # What one carrier delivery does: several first reaches, then one task per milestone.
    scan = milestone_reach(
        tenant=rr.tenant,
        return_request=rr,
        name="first_scan",
        reached_at=T0,
        source="carrier",
        now=T0,
    ).milestone
    delivered = milestone_reach(
        tenant=rr.tenant,
        return_request=rr,
        name="delivered",
        reached_at=T0,
        source="carrier",
        now=T0,
    ).milestone
    other = milestone_reach(
        tenant=other_tenant,
        return_request=theirs,
        name="first_scan",
        reached_at=T0,
        source="carrier",
        now=T0,
    ).milestone
    assert workflows.milestone_dispatch(milestone_id=delivered.pk, now=T0 + timedelta(hours=1))
    assert not workflows.milestone_dispatch(milestone_id=scan.pk, now=T0 + timedelta(hours=1))
    assert calls == [(rr.pk, ["delivered", "first_scan"])]
    scan.refresh_from_db()
    assert scan.dispatched_at == T0 + timedelta(hours=1)
    # Another return's owed milestone is not taken along.
    other.refresh_from_db()
    assert other.dispatched_at is None
    assert workflows.milestone_dispatch(milestone_id=other.pk, now=T0 + timedelta(hours=1))
    assert calls[-1] == (theirs.pk, ["first_scan"])


def test_failed_reaction_leaves_milestone_owed(rr, monkeypatch):
    def boom(rr, names, now):
        raise RuntimeError("gateway down")

    monkeypatch.setattr(workflows, "REACTIONS", [boom])
    milestone = reach(rr, "delivered", T0).milestone
    with pytest.raises(RuntimeError):
        workflows.milestone_dispatch(milestone_id=milestone.pk, now=T0)
    milestone.refresh_from_db()
    assert milestone.dispatched_at is None


def test_outbox_sweep_reenqueues_only_old_owed_rows(rr, monkeypatch):
    old = reach(rr, "label_created", T0).milestone
    Milestone.objects.filter(pk=old.pk).update(created_at=T0 - timedelta(minutes=3))
    fresh = reach(rr, "first_scan", T0).milestone
    done = reach(rr, "requested", T0 - timedelta(hours=1)).milestone
    Milestone.objects.filter(pk=done.pk).update(
        created_at=T0 - timedelta(hours=1), dispatched_at=T0
    )
    sent = []
    monkeypatch.setattr(
        "celery.current_app.send_task", lambda name, args: sent.append((name, args))
    )
    assert outbox_sweep_run(now=T0) == 1
    assert sent == [(DISPATCH_MILESTONE_TASK, [old.pk])]
    assert fresh.pk not in [a[0] for _, a in sent]


def test_exception_open_is_idempotent_and_updates_reason_in_place(rr):
    shipment = ShipmentFactory(return_request=rr)
    first = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        shipment=shipment,
        kind="carrier_exception",
        reason="delayed",
        opened_at=T0,
    )
    again = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        shipment=shipment,
        kind="carrier_exception",
        reason="damaged",
        opened_at=T0 + timedelta(hours=1),
    )
    assert first.created and not again.created and again.updated
    assert ReturnException.objects.filter(return_request=rr).count() == 1
    exc = ReturnException.objects.get(return_request=rr)
    assert (exc.reason, exc.opened_at) == ("damaged", T0)


def test_one_open_exception_per_kind_without_shipment_is_a_db_constraint(rr):
    from django.db import IntegrityError, transaction

    exception_open(tenant=rr.tenant, return_request=rr, kind="refund_overdue", opened_at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReturnException.objects.create(
            tenant=rr.tenant, return_request=rr, kind="refund_overdue", opened_at=T0
        )


def test_self_resolved_exception_can_reopen_staff_resolved_cannot(rr):
    opened = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        kind="no_movement",
        opened_at=T0,
        condition_key="since:2026-11-10",
    )
    assert exception_resolve(
        exception=opened.exception, resolution_code="auto:moved", resolved_at=T0
    )
    assert not exception_resolve(
        exception=opened.exception, resolution_code="again", resolved_at=T0
    )
    reopened = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        kind="no_movement",
        opened_at=T0,
        condition_key="since:2026-11-10",
    )
    assert reopened.created
    exception_resolve(
        exception=reopened.exception, resolution_code="trace_found", resolved_at=T0, by_staff=True
    )
    blocked = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        kind="no_movement",
        opened_at=T0,
        condition_key="since:2026-11-10",
    )
    assert blocked.exception is None and not blocked.created
    new_condition = exception_open(
        tenant=rr.tenant,
        return_request=rr,
        kind="no_movement",
        opened_at=T0,
        condition_key="since:2026-11-20",
    )
    assert new_condition.created
    assert ReturnException.objects.filter(return_request=rr, state=ExceptionState.OPEN).count() == 1


def test_notification_queued_once_per_key_and_sent(
    rr, django_capture_on_commit_callbacks, monkeypatch
):
    sent_tasks = []
    monkeypatch.setattr("celery.current_app.send_task", lambda name, args: sent_tasks.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        n, created = notification_queue(
            tenant=rr.tenant,
            key=f"confirm:{rr.pk}",
            kind="confirmation",
            to_email="a@example.com",
            subject="Your return",
            body_text="Track it: http://x",
            now=T0,
            return_request=rr,
        )
        _, again = notification_queue(
            tenant=rr.tenant,
            key=f"confirm:{rr.pk}",
            kind="confirmation",
            to_email="a@example.com",
            subject="Your return",
            body_text="dup",
            now=T0,
            return_request=rr,
        )
    assert created and not again
    assert sent_tasks == [[n.pk, rr.tenant_id]]
    assert notification_send(notification_id=n.pk, tenant_id=rr.tenant_id, now=T0) == "sent"
    assert notification_send(notification_id=n.pk, tenant_id=rr.tenant_id, now=T0) == "skipped"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["a@example.com"]
    assert mail.outbox[0].reply_to == ["support@acme.example"]


def test_notification_send_refuses_other_tenant_id(rr, other_tenant):
    n, _ = notification_queue(
        tenant=rr.tenant,
        key="k",
        kind="x",
        to_email="a@example.com",
        subject="s",
        body_text="b",
        now=T0,
    )
    assert notification_send(notification_id=n.pk, tenant_id=other_tenant.pk, now=T0) == "skipped"
    assert Notification.objects.get(pk=n.pk).state == "queued"


def test_notification_without_recipient_is_suppressed(rr):
    n, _ = notification_queue(
        tenant=rr.tenant, key="k2", kind="x", to_email="", subject="s", body_text="b", now=T0
    )
    assert n.state == "suppressed"
