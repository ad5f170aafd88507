"""rma.timeline: reached / current / next / overdue with due times, and the plain-words next step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rma.sla import BusinessCalendar, SlaTargets
from rma.states import PARCEL_TRACK
from rma.timeline import MilestoneFact, build_timeline, next_step_text

T0 = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)  # a Monday
CAL = BusinessCalendar("America/New_York", "US", "NY")
TARGETS = SlaTargets()


def timeline(*facts, now=T0, domestic=True, targets=TARGETS):
    return build_timeline(list(facts), targets=targets, calendar=CAL, domestic=domestic, now=now)


def fact(name, at, source="system"):
    return MilestoneFact(name, at, source)


def test_only_requested():
    tl = timeline(fact("requested", T0, "customer"))
    assert [s.name for s in tl.steps] == list(PARCEL_TRACK)
    assert tl.current == "requested"
    assert tl.next_expected.name == "label_created" and tl.next_expected.due_at is None
    assert [s.state for s in tl.steps][:3] == ["current", "next", "upcoming"]
    assert tl.outcome is None and not tl.overdue


def test_first_scan_due_72h_after_label_and_overdue_after():
    facts = (fact("requested", T0), fact("label_created", T0 + timedelta(minutes=1)))
    tl = timeline(*facts, now=T0 + timedelta(hours=10))
    assert tl.current == "label_created" and tl.next_expected.name == "dropped_off"
    first_scan = tl.step("first_scan")
    assert first_scan.due_at == T0 + timedelta(hours=72, minutes=1)
    assert not first_scan.overdue
    late = timeline(*facts, now=T0 + timedelta(hours=73))
    assert late.step("first_scan").overdue and [s.name for s in late.overdue] == ["first_scan"]
    custom = timeline(*facts, targets=SlaTargets(first_scan_hours=48))
    assert custom.step("first_scan").due_at == T0 + timedelta(hours=48, minutes=1)


def test_skipped_steps_and_transit_due_in_business_days():
    facts = (
        fact("requested", T0),
        fact("label_created", T0),
        fact("first_scan", T0 + timedelta(days=1), "carrier"),
    )
    tl = timeline(*facts)
    assert tl.step("dropped_off").state == "skipped" and tl.step("dropped_off").due_at is None
    assert tl.current == "first_scan" and tl.next_expected.name == "in_transit"
    # Tue 16 Nov 10:00 New York + 3 business days = Friday 10:00 local.
    assert tl.step("delivered").due_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    intl = timeline(*facts, domestic=False)
    # 10 business days, Thanksgiving (26 Nov) skipped.
    assert intl.step("delivered").due_at == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


def test_checkin_and_inspection_due():
    facts = [fact(n, T0 + timedelta(hours=i)) for i, n in enumerate(PARCEL_TRACK[:6])]
    tl = timeline(*facts, now=T0 + timedelta(days=3))
    assert tl.current == "delivered"
    assert tl.step("received").due_at == T0 + timedelta(hours=5 + 24)
    assert tl.step("received").overdue
    facts.append(fact("received", T0 + timedelta(hours=6)))
    tl = timeline(*facts, now=T0)
    assert tl.step("inspected").due_at == T0 + timedelta(hours=6 + 48)


def test_outcome_beside_the_track_and_nothing_overdue_once_closed():
    facts = (fact("requested", T0), fact("label_created", T0), fact("cancelled", T0, "staff"))
    tl = timeline(*facts, now=T0 + timedelta(days=30))
    assert tl.outcome.name == "cancelled"
    assert tl.next_expected is None and not tl.overdue
    words = next_step_text(
        tl, method="drop_off", label_state="ready", refund_state="cancelled", targets=TARGETS
    )
    assert "cancelled" in words


def test_next_step_plain_words_follow_mission_messages():
    def words(*names, method="drop_off", label_state="ready", refund_state="pending"):
        tl = timeline(*(fact(n, T0) for n in names))
        return next_step_text(
            tl, method=method, label_state=label_state, refund_state=refund_state, targets=TARGETS
        )

    assert "creating your return label" in words("requested", label_state="pending")
    assert "couldn't create your label" in words("requested", label_state="failed")
    assert "stick it on the parcel and drop it off" in words("requested", "label_created")
    assert "pick it up" in words("requested", "label_created", method="pickup")
    assert words("requested", "label_created", "dropped_off") == (
        "Dropped off. First scan expected within 24-72 hours."
    )
    assert words(*PARCEL_TRACK[:6]) == "Delivered. Inspection starts within 1 business day."
    assert words(*PARCEL_TRACK[:6], refund_state="approved") == (
        "Refund approved. Your bank may take 1-3 days."
    )
    assert "Refunded" in words("requested", "refunded")


def test_next_step_admits_an_overdue_step():
    """Past the first-scan target the page stops promising a scan "within 24-72 hours"."""
    label = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)
    facts = [
        MilestoneFact("requested", label, "customer"),
        MilestoneFact("label_created", label, "system"),
    ]
    calendar = BusinessCalendar("America/New_York", "US", "NY")
    for hours, expected in (
        (71, "First scan expected within"),
        (73, "We haven't seen a carrier scan yet"),
    ):
        timeline = build_timeline(
            facts,
            targets=SlaTargets(),
            calendar=calendar,
            domestic=True,
            now=label + timedelta(hours=hours),
        )
        text = next_step_text(
            timeline,
            method="drop_off",
            label_state="ready",
            refund_state="pending",
            targets=SlaTargets(),
        )
        assert expected in text
