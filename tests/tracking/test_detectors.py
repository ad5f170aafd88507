"""Parcel-movement detectors (DESIGN.md section 5) with controlled time: every kind
opens and resolves; the 72 h edge; staff-resolved exceptions stay resolved; a second
run changes nothing; a replay in the past never resolves."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rma.exception_services import exception_staff_resolve
from rma.models import ExceptionState, Notification, ReturnException
from rma.services import shipment_due_times_refresh
from rma.states import return_status_transition
from tests.clock import T0, changes, detect, ingest, labelled_return, reach, scanned_return
from tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)
M = timedelta(minutes=1)


def exceptions(kind=None, **kw):
    qs = ReturnException.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.filter(**kw).order_by("pk"))


# --- no_first_scan -----------------------------------------------------------
def test_no_first_scan_not_at_71h59m_but_at_72h(tenant):
    rr, shipment = labelled_return(tenant)
    assert changes(detect(T0 + 71 * H + 59 * M)) == {}
    counts = detect(T0 + 72 * H)
    assert changes(counts) == {"no_first_scan": {"opened": 1, "alerts": 1}}
    (exc,) = exceptions("no_first_scan")
    assert (exc.return_request_id, exc.shipment_id, exc.state) == (rr.pk, shipment.pk, "open")
    assert exc.due_at == T0 + 72 * H
    assert exc.opened_at == T0 + 72 * H
    assert exc.condition_key == "no_first_scan:2026-11-12T15:00:00Z"


def test_no_first_scan_none_after_a_first_scan(tenant):
    scanned_return(tenant, scan_at=T0 + 70 * H)
    assert changes(detect(T0 + 80 * H)) == {}
    assert exceptions() == []


def test_no_first_scan_resolves_when_the_first_scan_arrives(tenant):
    rr, shipment = labelled_return(tenant)
    detect(T0 + 72 * H)
    scan = T0 + 75 * H
    ingest(
        shipment,
        scan,
        status="accepted",
        status_at=scan,
        last_event_at=scan,
        last_scan_at=scan,
        shipped_at=scan,
    )
    reach(rr, "first_scan", scan)
    counts = detect(T0 + 76 * H)
    assert changes(counts) == {"no_first_scan": {"resolved": 1}}
    (exc,) = exceptions("no_first_scan")
    assert (exc.state, exc.resolution_code, exc.resolved_at) == (
        "resolved",
        "auto:first_scan",
        T0 + 76 * H,
    )
    assert not exc.resolved_by_staff
    assert "no_first_scan" not in changes(detect(T0 + 200 * H))  # and it does not come back


def test_second_run_and_double_fire_change_nothing(tenant):
    labelled_return(tenant)
    labelled_return(tenant)
    first = detect(T0 + 72 * H)
    assert first["no_first_scan"]["opened"] == 2
    assert changes(detect(T0 + 72 * H)) == {}
    assert changes(detect(T0 + 73 * H)) == {}
    assert len(exceptions("no_first_scan")) == 2
    assert Notification.objects.filter(kind="alert_no_first_scan").count() == 2


def test_staff_resolved_is_not_reopened_for_the_same_condition(tenant, tenant_agent):
    rr, _shipment = labelled_return(tenant)
    detect(T0 + 72 * H)
    (exc,) = exceptions("no_first_scan")
    exception_staff_resolve(
        exception=exc,
        resolution_code="staff:customer_contacted",
        actor=tenant_agent,
        now=T0 + 73 * H,
    )
    assert changes(detect(T0 + 74 * H)) == {}
    assert changes(detect(T0 + 300 * H)) == {}
    assert len(exceptions("no_first_scan")) == 1
    # A new label (a second parcel: a new condition) is watched again.
    new_label = T0 + 100 * H
    second = ShipmentFactory(return_request=rr, is_primary=False, created_at=new_label)
    shipment_due_times_refresh(shipment=second, now=new_label)
    second.refresh_from_db()
    assert second.first_scan_due_at == new_label + 72 * H
    assert changes(detect(new_label + 72 * H)) == {"no_first_scan": {"opened": 1, "alerts": 1}}
    assert [e.shipment_id for e in exceptions("no_first_scan", state="open")] == [second.pk]


def test_batches_smaller_than_the_due_set(tenant):
    for _ in range(7):
        labelled_return(tenant)
    counts = detect(T0 + 72 * H, batch_size=3)
    assert counts["no_first_scan"]["opened"] == 7
    assert changes(detect(T0 + 72 * H, batch_size=3)) == {}


# --- no_movement -------------------------------------------------------------
def test_no_movement_opens_after_five_days_and_resolves_on_a_new_event(tenant):
    _rr, shipment = scanned_return(tenant, scan_at=T0)
    last = T0 + 10 * H
    ingest(shipment, last, status="in_transit", status_at=last, last_event_at=last)
    assert "no_movement" not in changes(detect(last + 5 * 24 * H - M))
    counts = detect(last + 5 * 24 * H)
    assert counts["no_movement"]["opened"] == 1
    assert counts["no_movement"]["alerts"] == 1
    moved = last + 6 * 24 * H
    ingest(shipment, moved, status="in_transit", status_at=moved, last_event_at=moved)
    assert changes(detect(moved + H))["no_movement"] == {"resolved": 1}
    (exc,) = exceptions("no_movement")
    assert exc.resolution_code == "auto:moved"


# --- claimed_dropoff_no_scan -------------------------------------------------
def test_claimed_dropoff_no_scan_after_24h_and_resolved_by_the_scan(tenant):
    rr, shipment = labelled_return(tenant)
    claim = T0 + 2 * H
    reach(rr, "dropped_off", claim, source="customer")
    assert changes(detect(claim + 24 * H - M)) == {}
    assert changes(detect(claim + 24 * H)) == {"claimed_dropoff_no_scan": {"opened": 1}}
    (exc,) = exceptions("claimed_dropoff_no_scan")
    assert (exc.return_request_id, exc.shipment_id) == (rr.pk, None)
    scan = claim + 30 * H
    ingest(shipment, scan, status="accepted", status_at=scan, last_event_at=scan, shipped_at=scan)
    reach(rr, "first_scan", scan)
    assert changes(detect(scan + H)) == {"claimed_dropoff_no_scan": {"resolved": 1}}
    exc.refresh_from_db()
    assert exc.resolution_code == "auto:first_scan"


# --- carrier_exception -------------------------------------------------------
def test_carrier_exception_keeps_reason_updates_in_place_and_resolves(tenant):
    _rr, shipment = scanned_return(tenant, scan_at=T0)
    at = T0 + 20 * H
    ingest(
        shipment,
        at,
        status="exception",
        exception_reason="delayed",
        status_at=at,
        last_event_at=at,
        last_scan_at=at,
    )
    assert changes(detect(at + M)) == {"carrier_exception": {"opened": 1}}
    (exc,) = exceptions("carrier_exception")
    assert (exc.reason, exc.due_at, exc.shipment_id) == ("delayed", at, shipment.pk)
    later = at + 5 * H
    ingest(shipment, later, exception_reason="held", status_at=later, last_event_at=later)
    assert changes(detect(later + M)) == {"carrier_exception": {"updated": 1}}
    exc.refresh_from_db()
    assert (exc.pk, exc.state, exc.reason, exc.due_at) == (exc.pk, "open", "held", later)
    assert exc.condition_key == "carrier_exception:2026-11-10T16:00:00Z:held"
    assert changes(detect(later + 2 * M)) == {}
    moving = later + 8 * H
    ingest(
        shipment,
        moving,
        status="in_transit",
        exception_reason="",
        status_at=moving,
        last_event_at=moving,
    )
    assert changes(detect(moving + M)) == {"carrier_exception": {"resolved": 1}}
    exc.refresh_from_db()
    assert (exc.state, exc.resolution_code) == ("resolved", "auto:status_in_transit")


def test_carrier_exception_staff_resolved_reopens_only_for_a_new_event(tenant, tenant_agent):
    _rr, shipment = scanned_return(tenant, scan_at=T0)
    at = T0 + 20 * H
    ingest(
        shipment, at, status="exception", exception_reason="lost", status_at=at, last_event_at=at
    )
    detect(at)
    (exc,) = exceptions("carrier_exception")
    exception_staff_resolve(
        exception=exc, resolution_code="staff:lost_refunded", actor=tenant_agent, now=at + H
    )
    assert changes(detect(at + 2 * H)) == {}
    again = at + 30 * H
    ingest(shipment, again, exception_reason="damaged", status_at=again, last_event_at=again)
    assert changes(detect(again)) == {"carrier_exception": {"opened": 1}}
    assert [e.reason for e in exceptions("carrier_exception", state="open")] == ["damaged"]


# --- transit_overdue ---------------------------------------------------------
def test_transit_overdue_opens_at_the_business_day_due_and_resolves_on_delivery(tenant):
    rr, shipment = scanned_return(tenant, scan_at=T0)  # Monday 10:00 EST
    due = shipment.transit_due_at  # Fri 13 Nov 10:00 EST (Veterans Day skipped)
    assert due == T0 + 4 * 24 * H
    assert "transit_overdue" not in changes(detect(due - M))
    ingest(shipment, due - H, status="in_transit", status_at=due - H, last_event_at=due - H)
    assert changes(detect(due)) == {"transit_overdue": {"opened": 1}}
    delivered = due + 5 * H
    ingest(shipment, delivered, status="delivered", status_at=delivered, last_event_at=delivered)
    reach(rr, "delivered", delivered)
    assert changes(detect(delivered + M)) == {"transit_overdue": {"resolved": 1}}
    (exc,) = exceptions("transit_overdue")
    assert exc.resolution_code == "auto:delivered"


# --- unmapped_status ---------------------------------------------------------
def test_unmapped_status_after_24_hours_of_unknown_with_events(tenant):
    _rr, shipment = labelled_return(tenant)
    first_unmapped = T0 + 3 * H
    ingest(
        shipment,
        first_unmapped,
        status="unknown",
        status_at=first_unmapped,
        last_event_at=first_unmapped,
    )
    later = first_unmapped + 10 * H  # more unmapped events do not restart the clock
    ingest(shipment, later, last_event_at=later)
    assert "unmapped_status" not in changes(detect(first_unmapped + 24 * H - M))
    counts = changes(detect(first_unmapped + 24 * H))
    assert counts["unmapped_status"] == {"opened": 1}
    (exc,) = exceptions("unmapped_status")
    assert exc.due_at == first_unmapped + 24 * H
    mapped = first_unmapped + 30 * H
    ingest(shipment, mapped, status="in_transit", status_at=mapped, last_event_at=mapped)
    assert changes(detect(mapped + M)).get("unmapped_status") == {"resolved": 1}
    exc.refresh_from_db()
    assert exc.resolution_code == "auto:mapped"


def test_unknown_without_events_is_not_unmapped(tenant):
    ShipmentFactory(return_request__order__tenant=tenant, status="unknown", status_at=T0)
    assert "unmapped_status" not in changes(detect(T0 + 100 * H))


def test_unmapped_falls_back_to_the_last_event_when_status_at_is_missing(tenant):
    _rr, shipment = labelled_return(tenant)
    ingest(shipment, T0, last_event_at=T0 + 5 * H)
    assert "unmapped_status" not in changes(detect(T0 + 29 * H - M))
    assert changes(detect(T0 + 29 * H))["unmapped_status"] == {"opened": 1}


# --- replays and closed returns ---------------------------------------------
def test_replay_in_the_past_only_opens(tenant):
    rr, shipment = labelled_return(tenant)
    detect(T0 + 72 * H)
    scan = T0 + 80 * H
    ingest(shipment, scan, status="accepted", status_at=scan, last_event_at=scan, shipped_at=scan)
    reach(rr, "first_scan", scan)
    _other, _ship = labelled_return(tenant, at=T0 + 10 * H)
    # A replay at a past instant: the cleared exception stays open, due ones open.
    counts = changes(detect(T0 + 82 * H, resolve=False))
    assert counts == {"no_first_scan": {"opened": 1, "alerts": 1}}
    assert len(exceptions("no_first_scan", state="open")) == 2
    assert changes(detect(T0 + 83 * H)) == {"no_first_scan": {"resolved": 1}}


def test_closed_return_resolves_its_exceptions(tenant):
    rr, _shipment = labelled_return(tenant)
    detect(T0 + 72 * H)
    return_status_transition(
        return_request=rr, to_status="cancelled", actor="staff", reason="t", now=T0 + 73 * H
    )
    assert changes(detect(T0 + 74 * H)) == {"no_first_scan": {"resolved": 1}}
    (exc,) = exceptions("no_first_scan")
    assert exc.resolution_code == "auto:return_closed"


def test_tenants_do_not_mix(tenant, other_tenant):
    _a, _ = labelled_return(tenant)
    _b, _ = labelled_return(other_tenant)
    detect(T0 + 72 * H)
    rows = exceptions("no_first_scan")
    assert {(e.tenant_id, e.return_request.tenant_id) for e in rows} == {
        (tenant.pk, tenant.pk),
        (other_tenant.pk, other_tenant.pk),
    }
    assert all(e.state == ExceptionState.OPEN for e in rows)
