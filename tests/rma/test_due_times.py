"""Due columns kept current (issue 5): the pure rules in `rma.sla`, the refresh
services, the milestone reaction and the refund side, with exact instants across a
weekend, public holidays and DST changes of the return centre's calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from refunds.due_times import refund_due_times_refresh
from refunds.models import Refund
from refunds.services import refund_create_for_return
from refunds.states import refund_transition
from rma.models import ReturnCentre, SlaPolicy, SlaTransitRoute
from rma.services import (
    return_clock_refresh,
    return_due_times_refresh,
    shipment_due_times_refresh,
)
from rma.sla import (
    BusinessCalendar,
    ReturnClock,
    ShipmentClock,
    SlaTargets,
    return_due_times,
    shipment_due_times,
    transit_business_days,
)
from rma.states import return_status_transition
from tests.clock import T0, ingest, labelled_return, reach, scanned_return
from tests.factories import ReturnRequestFactory, ShipmentFactory

NY = ZoneInfo("America/New_York")
NEW_YORK = BusinessCalendar(time_zone="America/New_York", country="US", subdivision="NY")
TARGETS = SlaTargets()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


# --------------------------------------------------------------------------
# Pure rules
# --------------------------------------------------------------------------
def clock(**kw) -> ShipmentClock:
    base = {
        "label_created_at": utc(2026, 11, 9, 15),
        "first_scan_at": None,
        "last_event_at": None,
        "delivered": False,
        "active": True,
    }
    return ShipmentClock(**{**base, **kw})


def test_before_first_scan_only_the_first_scan_is_due():
    due = shipment_due_times(clock(), targets=TARGETS, calendar=NEW_YORK, transit_business_days=3)
    assert due.first_scan_due_at == utc(2026, 11, 12, 15)
    assert due.next_event_due_at is None and due.transit_due_at is None


def test_after_first_scan_movement_and_transit_are_due():
    # Scanned Friday 2026-11-13 15:00 in New York; the last event Saturday 09:00 UTC.
    due = shipment_due_times(
        clock(first_scan_at=ny(2026, 11, 13, 15), last_event_at=utc(2026, 11, 14, 9)),
        targets=TARGETS,
        calendar=NEW_YORK,
        transit_business_days=3,
    )
    assert due.first_scan_due_at is None
    assert due.next_event_due_at == utc(2026, 11, 19, 9)  # 5 x 24 h after the last event
    # Weekend skipped: Mon 16, Tue 17, Wed 18 at the same wall time (EST, UTC-5).
    assert due.transit_due_at == utc(2026, 11, 18, 20)


def test_transit_skips_a_public_holiday_of_the_calendar():
    # Monday 2026-11-09 10:00 EST; Wednesday 11 is Veterans Day in New York.
    due = shipment_due_times(
        clock(first_scan_at=ny(2026, 11, 9, 10)),
        targets=TARGETS,
        calendar=NEW_YORK,
        transit_business_days=3,
    )
    assert due.transit_due_at == utc(2026, 11, 13, 15)  # Fri 13 10:00 EST


def test_transit_across_the_fall_back_keeps_the_wall_time():
    # Friday 2026-10-30 09:00 EDT (13:00Z); clocks go back on Sunday 1 November.
    due = shipment_due_times(
        clock(first_scan_at=ny(2026, 10, 30, 9)),
        targets=TARGETS,
        calendar=NEW_YORK,
        transit_business_days=1,
    )
    assert due.transit_due_at == utc(2026, 11, 2, 14)  # Mon 09:00 EST
    # ... and 2 business days skip Election Day (Tue 3 November, a New York holiday).
    due2 = shipment_due_times(
        clock(first_scan_at=ny(2026, 10, 30, 9)),
        targets=TARGETS,
        calendar=NEW_YORK,
        transit_business_days=2,
    )
    assert due2.transit_due_at == utc(2026, 11, 4, 14)


def test_first_scan_due_is_elapsed_hours_across_the_fall_back():
    label = ny(2026, 10, 30, 12)  # 16:00Z
    due = shipment_due_times(
        clock(label_created_at=label), targets=TARGETS, calendar=NEW_YORK, transit_business_days=3
    )
    assert due.first_scan_due_at == utc(2026, 11, 2, 16)
    assert (due.first_scan_due_at - label).total_seconds() == 259_200
    assert due.first_scan_due_at.astimezone(NY).hour == 11


def test_spring_forward_transit_due():
    # Friday 2026-03-06 09:00 EST (14:00Z); clocks go forward on Sunday 8 March.
    due = shipment_due_times(
        clock(label_created_at=None, first_scan_at=ny(2026, 3, 6, 9)),
        targets=TARGETS,
        calendar=NEW_YORK,
        transit_business_days=1,
    )
    assert due.transit_due_at == utc(2026, 3, 9, 13)  # Mon 09:00 EDT


def test_nothing_is_due_when_delivered_or_inactive():
    for kw in ({"delivered": True}, {"active": False}):
        due = shipment_due_times(
            clock(first_scan_at=T0, **kw),
            targets=TARGETS,
            calendar=NEW_YORK,
            transit_business_days=3,
        )
        assert (due.first_scan_due_at, due.next_event_due_at, due.transit_due_at) == (
            None,
            None,
            None,
        )


def test_return_due_times():
    delivered = utc(2026, 11, 10, 12)
    due = return_due_times(
        ReturnClock(
            is_open=True,
            delivered_at=delivered,
            received_at=None,
            inspected=False,
            first_scan=True,
            dropoff_claimed_at=None,
        ),
        targets=TARGETS,
    )
    assert due.checkin_due_at == utc(2026, 11, 11, 12)
    assert due.inspection_due_at is None and due.dropoff_scan_due_at is None
    received = utc(2026, 11, 11, 9, 30)
    due = return_due_times(
        ReturnClock(True, delivered, received, False, True, None), targets=TARGETS
    )
    assert (due.checkin_due_at, due.inspection_due_at) == (None, utc(2026, 11, 13, 9, 30))
    claim = utc(2026, 11, 10, 8)
    due = return_due_times(ReturnClock(True, None, None, False, False, claim), targets=TARGETS)
    assert due.dropoff_scan_due_at == utc(2026, 11, 11, 8)
    closed = return_due_times(
        ReturnClock(False, delivered, None, False, True, claim), targets=TARGETS
    )
    assert closed == type(closed)(None, None, None)


@pytest.mark.parametrize(
    ("origin", "destination", "expected"),
    [
        ("US", "", 3),  # domestic default (destination: the return centre's country)
        ("", "", 3),  # unknown origin counts as domestic
        ("DE", "", 10),  # international default
        ("CA", "US", 6),  # exact route
        ("CA", "", 6),  # exact route, destination defaulted to the centre's country
        ("MX", "GB", 8),  # any-origin route to the destination
        ("US", "GB", 8),
        ("CA", "DE", 10),  # no route: international default
    ],
)
def test_transit_business_days_by_route(origin, destination, expected):
    routes = {("CA", "US"): 6, ("", "GB"): 8}
    assert (
        transit_business_days(
            origin_country=origin,
            destination_country=destination,
            home_country="US",
            routes=routes,
            targets=TARGETS,
        )
        == expected
    )


# --------------------------------------------------------------------------
# Services and the milestone reaction
# --------------------------------------------------------------------------
pytestmark = pytest.mark.django_db


def test_label_reaction_sets_first_scan_due(tenant):
    _rr, shipment = labelled_return(tenant)
    assert shipment.first_scan_due_at == T0 + timedelta(hours=72)
    assert (shipment.next_event_due_at, shipment.transit_due_at) == (None, None)


def test_first_scan_clears_first_scan_due_and_sets_movement_and_transit(tenant):
    scan = ny(2026, 11, 13, 15)  # Friday
    _rr, shipment = scanned_return(tenant, scan_at=scan)
    assert shipment.first_scan_due_at is None
    assert shipment.next_event_due_at == scan + timedelta(days=5)
    assert shipment.transit_due_at == utc(2026, 11, 18, 20)  # domestic: 3 business days


def test_ingest_of_a_new_event_moves_the_no_movement_due(tenant):
    _rr, shipment = scanned_return(tenant, scan_at=T0)
    later = T0 + timedelta(days=2, hours=3)
    ingest(shipment, later, status="in_transit", status_at=later, last_event_at=later)
    assert shipment.next_event_due_at == later + timedelta(days=5)
    assert shipment.transit_due_at == utc(2026, 11, 13, 15)  # from the first scan, unchanged


def test_international_parcel_and_a_tenant_route(tenant):
    policy = SlaPolicy.objects.get(tenant=tenant)
    _rr, shipment = scanned_return(tenant, scan_at=T0, origin_country="CA")
    # International default: 10 business days from Mon 9 Nov 10:00 EST, skipping
    # Veterans Day (11th) and the weekends: 10, 12, 13, 16-20, 23, 24 -> Tue 24 10:00 EST.
    assert shipment.transit_due_at == utc(2026, 11, 24, 15)
    SlaTransitRoute.objects.create(
        tenant=tenant, policy=policy, origin_country="CA", destination_country="US", business_days=5
    )
    shipment_due_times_refresh(shipment=shipment, now=T0)
    shipment.refresh_from_db()
    assert shipment.transit_due_at == utc(2026, 11, 17, 15)  # 10, 12, 13, 16, 17


def test_the_return_centres_calendar_is_used(tenant):
    centre = ReturnCentre.objects.create(
        tenant=tenant, name="Munich", country="DE", subdivision="BY", time_zone="Europe/Berlin"
    )
    rr, shipment = labelled_return(tenant, return_request__return_centre=centre)
    # First scan Tuesday 2027-01-05 10:00 Berlin; Wednesday 6 is Epiphany in Bavaria
    # (not a holiday in New York, the tenant's calendar).
    scan = datetime(2027, 1, 5, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    ingest(shipment, scan, status="accepted", status_at=scan, last_event_at=scan, shipped_at=scan)
    reach(rr, "first_scan", scan)
    shipment.refresh_from_db()
    # Origin US, centre DE: international, 10 business days; Thu 7 Jan is day 1.
    assert shipment.transit_due_at == datetime(2027, 1, 20, 9, tzinfo=UTC)


def test_delivery_receipt_and_inspection_move_the_return_columns(tenant):
    rr, shipment = scanned_return(tenant, scan_at=T0)
    delivered = T0 + timedelta(days=2)
    ingest(shipment, delivered, status="delivered", status_at=delivered, last_event_at=delivered)
    reach(rr, "delivered", delivered)
    shipment.refresh_from_db()
    assert (shipment.next_event_due_at, shipment.transit_due_at) == (None, None)
    assert rr.checkin_due_at == delivered + timedelta(hours=24)
    received = delivered + timedelta(hours=5)
    reach(rr, "received", received, source="check-in")
    assert (rr.checkin_due_at, rr.inspection_due_at) == (None, received + timedelta(hours=48))
    reach(rr, "inspected", received + timedelta(hours=3), source="staff")
    assert rr.inspection_due_at is None


def test_customer_dropoff_claim_sets_a_scan_due_and_the_scan_clears_it(tenant):
    rr, _shipment = labelled_return(tenant)
    claim = T0 + timedelta(hours=5)
    reach(rr, "dropped_off", claim, source="customer")
    assert rr.dropoff_scan_due_at == claim + timedelta(hours=24)
    reach(rr, "first_scan", claim + timedelta(hours=30))
    assert rr.dropoff_scan_due_at is None


def test_claim_field_without_milestone_and_policy_hours(tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(claimed_dropoff_scan_hours=36)
    rr = ReturnRequestFactory(order__tenant=tenant, customer_dropoff_claimed_at=T0)
    due = return_due_times_refresh(return_request=rr, now=T0)
    assert due.dropoff_scan_due_at == T0 + timedelta(hours=36)
    rr.refresh_from_db()
    assert rr.dropoff_scan_due_at == T0 + timedelta(hours=36)


def test_closing_the_return_clears_every_column(tenant):
    rr, shipment = scanned_return(tenant, scan_at=T0)
    return_status_transition(
        return_request=rr, to_status="cancelled", actor="staff", reason="t", now=T0
    )
    return_clock_refresh(return_request=rr, now=T0)
    shipment.refresh_from_db()
    assert (
        shipment.first_scan_due_at,
        shipment.next_event_due_at,
        shipment.transit_due_at,
    ) == (None, None, None)


def test_policy_hours_change_the_first_scan_due(tenant):
    SlaPolicy.objects.filter(tenant=tenant).update(first_scan_hours=48)
    _rr, shipment = labelled_return(tenant)
    assert shipment.first_scan_due_at == T0 + timedelta(hours=48)


def test_outbound_shipments_have_nothing_due(tenant):
    rr, _shipment = labelled_return(tenant)
    outbound = ShipmentFactory(return_request=rr, direction="outbound", created_at=T0)
    due = shipment_due_times_refresh(shipment=outbound, now=T0)
    assert (due.first_scan_due_at, due.next_event_due_at, due.transit_due_at) == (None, None, None)


# --------------------------------------------------------------------------
# Refund side
# --------------------------------------------------------------------------
def approved_refund(rr, at, amount=Decimal("54.00")):
    refund = refund_create_for_return(rr, now=at)
    Refund.objects.filter(pk=refund.pk).update(amount=amount)
    refund.amount = amount
    refund_transition(
        refund=refund, to_state="approved", actor="rule", reason="t", now=at, approved_at=at
    )
    refund_due_times_refresh(refund=refund, now=at)
    refund.refresh_from_db()
    return refund


def test_refund_due_one_business_day_after_approval_over_a_weekend(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    refund = approved_refund(rr, ny(2026, 11, 13, 16))  # Friday 16:00 EST
    assert refund.refund_due_at == utc(2026, 11, 16, 21)  # Monday 16:00 EST
    rr.refresh_from_db()
    assert (rr.expected_refund_amount, rr.expected_refund_currency) == (Decimal("54.000"), "USD")


def test_refund_approved_on_a_holiday_starts_next_business_day_at_midnight(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    refund = approved_refund(rr, ny(2026, 11, 26, 11))  # Thanksgiving
    # Start Fri 27 00:00, due one business day later: Mon 30 00:00 EST.
    assert refund.refund_due_at == utc(2026, 11, 30, 5)


def test_issued_refund_has_nothing_due(tenant):
    rr = ReturnRequestFactory(order__tenant=tenant)
    refund = approved_refund(rr, T0)
    refund_transition(refund=refund, to_state="issuing", actor="t", reason="t", now=T0)
    assert refund_due_times_refresh(refund=refund, now=T0) is not None
    refund_transition(refund=refund, to_state="issued", actor="t", reason="t", now=T0)
    assert refund_due_times_refresh(refund=refund, now=T0) is None
    refund.refresh_from_db()
    assert refund.refund_due_at is None


def test_value_at_risk_before_approval_is_the_returned_units_net_value(tenant):
    """The exception queue shows a value at risk for returns whose refund is not yet
    computed: the returned units' net value (unit price minus discount share)."""
    from tests.factories import ReturnLineFactory

    line = ReturnLineFactory(
        return_request__order__tenant=tenant,
        order_line__unit_price=Decimal("60.00"),
        order_line__quantity=3,
        order_line__discount=Decimal("10.00"),
        quantity=2,
    )
    rr = line.return_request
    refund = refund_create_for_return(rr, now=T0)
    assert refund.amount is None
    refund_due_times_refresh(refund=refund, now=T0)
    rr.refresh_from_db()
    # Discount 10.00 over 3 units: 3.34 / 3.33 / 3.33; units 1-2 -> 120.00 - 6.67.
    assert (rr.expected_refund_amount, rr.expected_refund_currency) == (Decimal("113.330"), "USD")
