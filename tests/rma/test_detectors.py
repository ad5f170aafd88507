"""Warehouse detectors, staff-opened kinds, auto-escalation and the bulk writers."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rma.exception_services import exception_staff_resolve, exceptions_auto_escalate
from rma.models import (
    ExceptionActivity,
    Notification,
    ReturnException,
    SlaPolicy,
)
from rma.services import (
    ExceptionCandidate,
    TenantMismatch,
    exception_open,
    exceptions_open_bulk,
    exceptions_resolve_bulk,
)
from tests.clock import T0, changes, detect, ingest, reach, scanned_return
from tests.factories import ReturnRequestFactory, ShipmentFactory

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)
M = timedelta(minutes=1)


def delivered_return(tenant, at):
    rr, shipment = scanned_return(tenant, scan_at=at - 30 * H)
    ingest(shipment, at, status="delivered", status_at=at, last_event_at=at)
    reach(rr, "delivered", at)
    return rr, shipment


def test_delivered_not_received_opens_after_24h_and_resolves_on_check_in(tenant):
    delivered = T0 + 40 * H
    rr, _shipment = delivered_return(tenant, delivered)
    assert "delivered_not_received" not in changes(detect(delivered + 24 * H - M))
    assert changes(detect(delivered + 24 * H)) == {"delivered_not_received": {"opened": 1}}
    (exc,) = ReturnException.objects.filter(kind="delivered_not_received")
    assert (exc.shipment_id, exc.due_at) == (None, delivered + 24 * H)
    received = delivered + 30 * H
    reach(rr, "received", received, source="check-in")
    assert changes(detect(received + M)) == {"delivered_not_received": {"resolved": 1}}
    exc.refresh_from_db()
    assert exc.resolution_code == "auto:received"


def test_inspection_overdue_opens_after_48h_and_resolves_on_inspection(tenant):
    delivered = T0 + 40 * H
    rr, _shipment = delivered_return(tenant, delivered)
    received = delivered + 2 * H
    reach(rr, "received", received, source="check-in")
    assert "inspection_overdue" not in changes(detect(received + 48 * H - M))
    assert changes(detect(received + 48 * H)) == {"inspection_overdue": {"opened": 1}}
    reach(rr, "inspected", received + 50 * H, source="staff")
    assert changes(detect(received + 51 * H)) == {"inspection_overdue": {"resolved": 1}}
    assert ReturnException.objects.get(kind="inspection_overdue").resolution_code == (
        "auto:inspected"
    )


@pytest.mark.parametrize("kind", ["warehouse_mismatch", "damaged_package"])
def test_staff_kinds_open_by_service_and_resolve_by_staff_only(tenant, tenant_agent, kind):
    rr = ReturnRequestFactory(order__tenant=tenant)
    result = exception_open(
        tenant=tenant, return_request=rr, kind=kind, reason="wrong_item", opened_at=T0
    )
    assert result.created and result.exception.due_at == T0
    # Detectors never resolve it; the default auto-escalation (48 h) applies.
    assert changes(detect(T0 + 100 * H)) == {kind: {"escalated": 1}}
    assert exception_staff_resolve(
        exception=result.exception,
        resolution_code="staff:rejected",
        actor=tenant_agent,
        now=T0 + 101 * H,
    )
    exc = ReturnException.objects.get(pk=result.exception.pk)
    assert (exc.state, exc.resolved_by_staff, exc.resolved_by) == ("resolved", True, tenant_agent)
    assert ExceptionActivity.objects.filter(exception=exc, action="resolved").count() == 1


# --- bulk writers ------------------------------------------------------------
def test_open_bulk_is_idempotent_and_skips_staff_resolved(tenant, tenant_agent):
    rr = ReturnRequestFactory(order__tenant=tenant)
    ship = ShipmentFactory(return_request=rr)
    c = ExceptionCandidate(tenant.pk, rr.pk, ship.pk, T0, "delayed")
    assert len(exceptions_open_bulk(kind="carrier_exception", candidates=[c, c], opened_at=T0)) == 1
    assert exceptions_open_bulk(kind="carrier_exception", candidates=[c], opened_at=T0 + H) == []
    exc = ReturnException.objects.get()
    exception_staff_resolve(
        exception=exc, resolution_code="staff:other", actor=tenant_agent, now=T0 + H
    )
    assert (
        exceptions_open_bulk(kind="carrier_exception", candidates=[c], opened_at=T0 + 2 * H) == []
    )
    new = ExceptionCandidate(tenant.pk, rr.pk, ship.pk, T0 + 2 * H, "lost")
    assert (
        len(exceptions_open_bulk(kind="carrier_exception", candidates=[new], opened_at=T0 + 2 * H))
        == 1
    )


def test_open_bulk_refuses_a_foreign_return(tenant, other_tenant):
    foreign = ReturnRequestFactory(order__tenant=other_tenant)
    with pytest.raises(TenantMismatch):
        exceptions_open_bulk(
            kind="no_first_scan",
            candidates=[ExceptionCandidate(tenant.pk, foreign.pk, None, T0)],
            opened_at=T0,
        )
    assert not ReturnException.objects.exists()


def test_resolve_bulk_counts_only_open_rows(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    ids = exceptions_open_bulk(
        kind="inspection_overdue",
        candidates=[ExceptionCandidate(tenant.pk, rr.pk, None, T0)],
        opened_at=T0,
    )
    assert exceptions_resolve_bulk(exception_ids=ids, resolution_code="auto:x", resolved_at=T0) == 1
    assert exceptions_resolve_bulk(exception_ids=ids, resolution_code="auto:x", resolved_at=T0) == 0


# --- auto-escalation ---------------------------------------------------------
def test_auto_escalation_after_the_tenants_age_once(tenant, other_tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(auto_escalate_after_hours=24)
    SlaPolicy.objects.filter(tenant=other_tenant).update(auto_escalate_after_hours=None)
    mine = ReturnRequestFactory(order__tenant=tenant, rma_number="RMA-500001")
    theirs = ReturnRequestFactory(order__tenant=other_tenant)
    for rr in (mine, theirs):
        exception_open(tenant=rr.tenant, return_request=rr, kind="damaged_package", opened_at=T0)
    assert exceptions_auto_escalate(now=T0 + 24 * H - M) == {}
    assert exceptions_auto_escalate(now=T0 + 24 * H) == {"damaged_package": 1}
    exc = ReturnException.objects.get(tenant=tenant)
    assert (exc.priority, exc.escalated_at) == (1, T0 + 24 * H)
    assert ReturnException.objects.get(tenant=other_tenant).escalated_at is None
    activity = ExceptionActivity.objects.get(exception=exc)
    assert (activity.action, activity.actor, activity.actor_label) == (
        "auto_escalated",
        None,
        "system",
    )
    digest = Notification.objects.get(kind="exception_auto_escalation")
    assert digest.to_email == tenant.escalation_email
    assert "RMA-500001: damaged_package" in digest.body_text
    assert exceptions_auto_escalate(now=T0 + 48 * H) == {}


def test_runner_escalates_and_counts_it(tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(auto_escalate_after_hours=2)
    rr = ReturnRequestFactory(order__tenant=tenant)
    exception_open(tenant=tenant, return_request=rr, kind="warehouse_mismatch", opened_at=T0)
    assert changes(detect(T0 + 2 * H, notify=False)) == {"warehouse_mismatch": {"escalated": 1}}
    assert not Notification.objects.exists()
