"""The ingest service: storage, de-duplication, status and milestones, shipment
matching (physical carrier, legs, several results), unmatched numbers,
check digits, overrides, tenancy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from rma.models import Milestone
from rma.services import DISPATCH_MILESTONE_TASK, shipment_hooks_run_created
from tests.factories import ReturnRequestFactory
from tests.tracking.conftest import easypost_tracker, make_shipment, sandbox_doc, utc
from tracking.ingest import IngestError, tracking_events_ingest
from tracking.models import (
    PayloadState,
    RawPayload,
    TrackingEvent,
    UnmappedCode,
    UnmatchedTrackingNumber,
)
from tracking.outbox import UNMATCHED_ATTACH_TASK, owed
from tracking.services import (
    status_override_save,
    tracking_number_check,
    tracking_number_validate,
)

pytestmark = pytest.mark.django_db
NOW = utc(2026, 11, 20)
UPS_NUMBER = "1Z999AA10123456784"
DELIVERED_SCRIPT = [
    ("ACCEPTED", "2026-11-10T17:00:00Z"),
    ("DEPARTED", "2026-11-10T23:00:00Z"),
    ("ARRIVED", "2026-11-11T21:00:00Z"),
    ("OUT_FOR_DELIVERY", "2026-11-12T13:00:00Z"),
    ("DELIVERED", "2026-11-12T17:00:00Z"),
]


def ingest(tenant, body, provider="sandbox", **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("source", "command")
    return tracking_events_ingest(tenant=tenant, provider=provider, body=body, **kw)


def milestones(shipment):
    return {
        m.name: (m.reached_at, m.source, m.precision)
        for m in Milestone.objects.filter(return_request=shipment.return_request)
    }


def test_ingest_stores_events_status_summary_and_milestones(
    tenant, sent, django_capture_on_commit_callbacks
):
    shipment = make_shipment(tenant, "SB1")
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(tenant, sandbox_doc(("SB1", DELIVERED_SCRIPT)))
    assert result.as_summary() == {
        "events": 5,
        "stored": 5,
        "duplicates": 0,
        "unmatched_numbers": [],
    }
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert shipment.status_at == utc(2026, 11, 12, 17)
    assert shipment.last_scan_at == utc(2026, 11, 12, 17)
    assert shipment.last_scan_location == "Reno, NV, US"
    assert shipment.last_scan_time_zone == "America/Los_Angeles"
    assert shipment.last_event_at == utc(2026, 11, 12, 17)
    assert milestones(shipment) == {
        "dropped_off": (utc(2026, 11, 10, 17), "carrier", "second"),
        "first_scan": (utc(2026, 11, 10, 17), "carrier", "second"),
        "in_transit": (utc(2026, 11, 10, 23), "carrier", "second"),
        "delivered": (utc(2026, 11, 12, 17), "carrier", "second"),
    }
    # reactions go through the milestone outbox, once per first reach
    dispatched = [args[0] for name, args in sent if name == DISPATCH_MILESTONE_TASK]
    assert sorted(dispatched) == sorted(
        Milestone.objects.filter(return_request=shipment.return_request).values_list(
            "pk", flat=True
        )
    )
    payload = RawPayload.objects.get(pk=result.payload_id)
    assert payload.state == PayloadState.PROCESSED and payload.source == "command"
    assert bytes(payload.body) == sandbox_doc(("SB1", DELIVERED_SCRIPT))
    assert set(TrackingEvent.objects.values_list("payload_id", flat=True)) == {payload.pk}


def test_ingest_duplicates_are_counted_not_stored_and_fire_nothing(
    tenant, sent, django_capture_on_commit_callbacks
):
    shipment = make_shipment(tenant, "SB1")
    ingest(tenant, sandbox_doc(("SB1", DELIVERED_SCRIPT[:2])))
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(tenant, sandbox_doc(("SB1", DELIVERED_SCRIPT[:3] + DELIVERED_SCRIPT[:1])))
    assert (result.events, result.stored, result.duplicates) == (4, 1, 3)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 3
    assert [name for name, _ in sent] == []  # no new milestone was first reached


def test_ingest_unparseable_payload_is_rejected_and_kept(tenant):
    with pytest.raises(IngestError) as info:
        ingest(tenant, b"{not json")
    assert info.value.code == "payload"
    assert "not JSON" in str(info.value)
    payload = RawPayload.objects.get()
    assert payload.state == PayloadState.REJECTED and payload.error_code == "payload"
    assert bytes(payload.body) == b"{not json"


def test_ingest_unknown_provider_is_a_clear_error(tenant):
    with pytest.raises(IngestError) as info:
        ingest(tenant, b"{}", provider="pigeon")
    assert info.value.code == "unknown_provider"


def test_ingest_never_matches_another_tenants_shipment(tenant, other_tenant):
    theirs = make_shipment(other_tenant, "SB1")
    result = ingest(tenant, sandbox_doc(("SB1", DELIVERED_SCRIPT)))
    assert result.unmatched_numbers == ["SB1"]
    assert result.stored == 0
    theirs.refresh_from_db()
    assert theirs.status == "unknown"
    assert not TrackingEvent.objects.filter(tenant=other_tenant).exists()
    assert UnmatchedTrackingNumber.objects.get().tenant == tenant


def test_ingest_unmatched_number_is_kept_and_attached_when_a_shipment_appears(tenant):
    result = ingest(tenant, sandbox_doc(("SB7", DELIVERED_SCRIPT[:3])))
    assert result.unmatched_numbers == ["SB7"]
    ingest(tenant, sandbox_doc(("SB7", DELIVERED_SCRIPT)))
    kept = UnmatchedTrackingNumber.objects.get()
    assert (kept.times_seen, kept.links.count()) == (2, 2)

    shipment = make_shipment(tenant, "SB7")
    shipment_hooks_run_created(shipment, now=NOW)
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5
    assert "delivered" in milestones(shipment)
    kept.refresh_from_db()
    assert kept.attached_at == NOW and kept.shipment == shipment
    # idempotent: running the hook again stores nothing new
    shipment_hooks_run_created(shipment, now=NOW)
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 5


def test_ingest_outbox_attaches_unmatched_numbers_whose_shipment_skipped_the_hook(tenant):
    ingest(tenant, sandbox_doc(("SB8", DELIVERED_SCRIPT)))
    make_shipment(tenant, "SB8")  # created without running the hook
    work = owed(now=NOW + timedelta(minutes=3), older_than=timedelta(minutes=2))
    kept = UnmatchedTrackingNumber.objects.get()
    assert (UNMATCHED_ATTACH_TASK, [kept.pk, tenant.pk]) in work

    from tracking.tasks import unmatched_attach

    assert unmatched_attach(kept.pk, tenant.pk) == 5
    assert unmatched_attach(kept.pk + 999, tenant.pk) == 0  # missing row: logged, no error


def test_ingest_prefers_the_physical_carrier_the_payload_names(tenant):
    dhl = make_shipment(tenant, UPS_NUMBER, carrier="dhl_express")
    ups = make_shipment(tenant, UPS_NUMBER, carrier="ups", provider="ups")
    body = easypost_tracker(
        UPS_NUMBER,
        [
            ("in_transit", "received_at_origin_facility", "2026-11-10T18:00:00Z"),
            ("delivered", None, "2026-11-12T18:00:00Z"),
        ],
        carrier="UPS",
    )
    result = ingest(tenant, body, provider="easypost")
    assert set(result.shipments) == {ups.pk}
    ups.refresh_from_db()
    dhl.refresh_from_db()
    assert (ups.status, dhl.status) == ("delivered", "unknown")


def test_ingest_one_shipment_takes_the_events_whatever_their_dates(tenant):
    shipment = make_shipment(tenant, "SB1")  # created in 2026
    result = ingest(
        tenant,
        sandbox_doc(
            ("SB1", [("ACCEPTED", "2019-03-01T10:00:00Z"), ("DELIVERED", "2019-03-03T10:00:00Z")])
        ),
    )
    assert result.stored == 2
    shipment.refresh_from_db()
    assert shipment.status == "delivered"


def test_ingest_reused_number_splits_journeys_between_legs(tenant):
    old_return = ReturnRequestFactory(order__tenant=tenant)
    new_return = ReturnRequestFactory(order__tenant=tenant)
    leg1 = make_shipment(tenant, "SB9", return_request=old_return, created_at=utc(2026, 3, 1))
    leg2 = make_shipment(
        tenant, "SB9", leg=2, return_request=new_return, created_at=utc(2026, 11, 9)
    )
    body = sandbox_doc(
        (
            "SB9",
            [
                ("ACCEPTED", "2026-03-02T10:00:00Z"),
                ("DELIVERED", "2026-03-04T10:00:00Z"),
                ("ACCEPTED", "2026-11-10T10:00:00Z"),
                ("DEPARTED", "2026-11-10T20:00:00Z"),
            ],
        )
    )
    result = ingest(tenant, body)
    assert result.stored == 4 and result.unmatched_numbers == []
    leg1.refresh_from_db()
    leg2.refresh_from_db()
    assert (leg1.status, leg2.status) == ("delivered", "in_transit")
    assert milestones(leg2)["first_scan"][0] == utc(2026, 11, 10, 10)
    assert "delivered" not in milestones(leg2)
    assert milestones(leg1)["delivered"][0] == utc(2026, 3, 4, 10)
    # a later poll with only the new journey goes to leg 2, not the delivered leg 1
    ingest(tenant, sandbox_doc(("SB9", [("DELIVERED", "2026-11-12T10:00:00Z")])))
    leg1.refresh_from_db()
    leg2.refresh_from_db()
    assert leg2.status == "delivered"
    assert TrackingEvent.objects.filter(shipment=leg1).count() == 2


def test_ingest_two_journeys_but_one_shipment_are_not_split(tenant):
    shipment = make_shipment(tenant, "SB9")
    ingest(
        tenant,
        sandbox_doc(
            (
                "SB9",
                [
                    ("ACCEPTED", "2026-03-02T10:00:00Z"),
                    ("DELIVERED", "2026-03-04T10:00:00Z"),
                    ("ACCEPTED", "2026-11-10T10:00:00Z"),
                ],
            )
        ),
    )
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 3


def test_ingest_several_results_for_one_number_are_matched_by_date_never_merged(tenant):
    old = make_shipment(tenant, "SB5", created_at=utc(2026, 2, 1))
    new = make_shipment(tenant, "SB5", leg=2, created_at=utc(2026, 11, 9))
    body = sandbox_doc(
        ("SB5", [("ACCEPTED", "2026-11-10T10:00:00Z")]),
        ("SB5", [("ACCEPTED", "2026-02-02T10:00:00Z"), ("DELIVERED", "2026-02-05T10:00:00Z")]),
    )
    ingest(tenant, body)
    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == ("delivered", "accepted")
    assert TrackingEvent.objects.filter(shipment=new).count() == 1


def test_ingest_several_results_one_shipment_takes_the_best_and_keeps_the_rest(tenant):
    shipment = make_shipment(tenant, "SB5", created_at=utc(2026, 11, 9))
    body = sandbox_doc(
        ("SB5", [("ACCEPTED", "2019-02-02T10:00:00Z"), ("DELIVERED", "2019-02-05T10:00:00Z")]),
        ("SB5", [("ACCEPTED", "2026-11-10T10:00:00Z")]),
    )
    result = ingest(tenant, body)
    shipment.refresh_from_db()
    assert shipment.status == "accepted"
    assert result.unmatched_numbers == ["SB5"]
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


def test_ingest_carrier_exception_is_stored_with_its_reason(tenant):
    shipment = make_shipment(tenant, "SB1")
    ingest(
        tenant,
        sandbox_doc(
            ("SB1", [("ACCEPTED", "2026-11-10T10:00:00Z"), ("DELAYED", "2026-11-11T10:00:00Z")])
        ),
    )
    event = TrackingEvent.objects.get(shipment=shipment, status="exception")
    assert event.exception_reason == "delayed"
    shipment.refresh_from_db()
    assert (shipment.status, shipment.exception_reason) == ("exception", "delayed")
    assert shipment.status_at == utc(2026, 11, 11, 10)
    # exceptions are not sticky
    ingest(tenant, sandbox_doc(("SB1", [("ARRIVED", "2026-11-12T10:00:00Z")])))
    shipment.refresh_from_db()
    assert (shipment.status, shipment.exception_reason) == ("in_transit", "")


def test_ingest_outbound_shipment_reaches_no_return_milestone(tenant):
    shipment = make_shipment(tenant, "SB1", direction="outbound")
    ingest(tenant, sandbox_doc(("SB1", DELIVERED_SCRIPT)))
    shipment.refresh_from_db()
    assert shipment.status == "delivered"
    assert milestones(shipment) == {}


def test_ingest_untimed_summary_only_replaces_unknown(tenant):
    shipment = make_shipment(tenant, UPS_NUMBER, carrier="ups", provider="easypost")
    ingest(tenant, easypost_tracker(UPS_NUMBER, [], status="in_transit"), provider="easypost")
    shipment.refresh_from_db()
    assert shipment.status == "in_transit"
    ingest(
        tenant,
        easypost_tracker(
            UPS_NUMBER, [("pre_transit", None, "2026-11-10T10:00:00Z")], status="delivered"
        ),
        provider="easypost",
    )
    shipment.refresh_from_db()
    assert shipment.status == "label_created"  # events decide; the summary only replaced unknown


def test_ingest_flags_a_bad_check_digit_but_never_refuses_the_payload(tenant):
    bad = UPS_NUMBER[:-1] + "5"
    shipment = make_shipment(tenant, bad, carrier="ups", provider="easypost")
    result = ingest(
        tenant,
        easypost_tracker(bad, [("delivered", None, "2026-11-12T18:00:00Z")]),
        provider="easypost",
    )
    assert result.stored == 1
    shipment.refresh_from_db()
    assert shipment.number_check == "invalid"
    assert tracking_number_check("ups", UPS_NUMBER) == "valid"
    assert tracking_number_check("gls", "123") == "unknown"


def test_tracking_number_validate_refuses_a_typed_number_with_a_clear_error():
    assert tracking_number_validate("ups", " 1z999aa1 0123456784 ") == UPS_NUMBER
    with pytest.raises(ValidationError) as info:
        tracking_number_validate("ups", UPS_NUMBER[:-1] + "5")
    assert "check digit" in info.value.messages[0]
    with pytest.raises(ValidationError):
        tracking_number_validate("ups", "   ")
    with pytest.raises(ValidationError):
        tracking_number_validate("pigeon", "123")
    from rma import hooks

    assert hooks.validate_tracking_number("ups", " 1z999aa10123456784") == UPS_NUMBER


def test_status_override_applies_to_new_events_and_unknown_ones_only(tenant, other_tenant):
    shipment = make_shipment(tenant, "SB1")
    theirs = make_shipment(other_tenant, "SB1")
    doc = sandbox_doc(
        ("SB1", [("ACCEPTED", "2026-11-10T10:00:00Z"), ("HUB_SCAN", "2026-11-11T10:00:00Z")])
    )
    ingest(tenant, doc)
    ingest(other_tenant, doc)
    assert TrackingEvent.objects.get(shipment=shipment, carrier_code="HUB_SCAN").status == "unknown"
    codes = UnmappedCode.objects.filter(tenant=tenant)
    assert [(c.carrier, c.raw_code, c.event_count) for c in codes] == [("sandbox", "HUB_SCAN", 1)]

    status_override_save(
        tenant=tenant, carrier="sandbox", raw_code="hub_scan", status="in_transit", now=NOW
    )
    event = TrackingEvent.objects.get(shipment=shipment, carrier_code="HUB_SCAN")
    assert (event.status, event.overridden) == ("in_transit", True)
    shipment.refresh_from_db()
    assert shipment.status == "in_transit"
    assert not UnmappedCode.objects.filter(tenant=tenant).exists()
    # the other tenant is untouched
    assert TrackingEvent.objects.get(shipment=theirs, carrier_code="HUB_SCAN").status == "unknown"
    assert UnmappedCode.objects.filter(tenant=other_tenant).count() == 1
    # a mapped code never changes, even with an override for it
    status_override_save(
        tenant=tenant, carrier="sandbox", raw_code="ACCEPTED", status="info", now=NOW
    )
    assert (
        TrackingEvent.objects.get(shipment=shipment, carrier_code="ACCEPTED").status == "accepted"
    )
    # an override never changes an event's identity: re-ingesting stores nothing
    again = ingest(tenant, doc)
    assert (again.stored, again.duplicates) == (0, 2)
    # new events of the overridden code take the override
    ingest(tenant, sandbox_doc(("SB1", [("HUB_SCAN", "2026-11-12T10:00:00Z")])))
    assert set(
        TrackingEvent.objects.filter(shipment=shipment, carrier_code="HUB_SCAN").values_list(
            "status", "overridden"
        )
    ) == {("in_transit", True)}


def test_status_override_validation(tenant):
    with pytest.raises(ValidationError):
        status_override_save(
            tenant=tenant, carrier="sandbox", raw_code="X", status="exception", now=NOW
        )
    with pytest.raises(ValidationError):
        status_override_save(
            tenant=tenant,
            carrier="sandbox",
            raw_code="X",
            status="accepted",
            exception_reason="lost",
            now=NOW,
        )
    with pytest.raises(ValidationError):
        status_override_save(
            tenant=tenant, carrier="pigeon", raw_code="X", status="accepted", now=NOW
        )


def test_ingest_runs_a_bounded_number_of_queries(tenant, django_assert_max_num_queries):
    make_shipment(tenant, UPS_NUMBER, carrier="ups", provider="easypost")
    body = easypost_tracker(
        UPS_NUMBER,
        [
            ("pre_transit", None, "2026-11-10T10:00:00Z"),
            ("in_transit", "received_at_origin_facility", "2026-11-10T18:00:00Z"),
            ("in_transit", None, "2026-11-11T18:00:00Z"),
            ("delivered", None, "2026-11-12T18:00:00Z"),
        ],
    )
    # first reach of four milestones (the return's status moves once) and the
    # shipment's SLA due times refreshed once
    with django_assert_max_num_queries(48):
        ingest(tenant, body, provider="easypost")
    # a repeat: nothing new to store, nothing to reach
    with django_assert_max_num_queries(12):
        ingest(tenant, body, provider="easypost")
    from rma.models import ReturnStatusChange

    assert list(ReturnStatusChange.objects.values_list("from_status", "to_status")) == [
        ("requested", "delivered")
    ]
