"""The refund estimate (refunds/estimate.py, pure): trigger, SLA targets ahead, bank delay."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from refunds.estimate import EstimateInput, bank_delay_text, refund_estimate
from rma.sla import BusinessCalendar, SlaTargets

NY = BusinessCalendar("America/New_York", "US", "NY")
REQUESTED = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Friday
FIRST_SCAN = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # Monday 10:00 New York


def est(
    trigger="delivered",
    *,
    state="pending",
    reached=None,
    method="original_payment",
    bank=(1, 3),
    **kw,
):
    return refund_estimate(
        EstimateInput(
            trigger=trigger,
            method=method,
            state=state,
            requested_at=REQUESTED,
            reached=reached
            if reached is not None
            else {"requested": REQUESTED, "first_scan": FIRST_SCAN},
            targets=SlaTargets(),
            calendar=NY,
            bank_days_min=bank[0],
            bank_days_max=bank[1],
            **kw,
        )
    )


def test_delivered_trigger_projects_transit_refund_and_bank():
    e = est()
    # early: transit 1 business day (half of 3) -> Tue 1 Dec, bank 1 -> Wed 2 Dec;
    # late: transit 3 -> Thu 3 Dec, refund 1 -> Fri 4 Dec, bank 3 -> Wed 9 Dec.
    assert e.start == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert e.end == datetime(2026, 12, 9, 15, 0, tzinfo=UTC)
    assert e.text == "Expected between 2 and 9 December"


def test_reached_trigger_anchors_on_its_time():
    e = est("first_scan")
    # first scan Mon 30 Nov: early bank 1 -> Tue 1 Dec; late refund 1 -> Tue 1 Dec + bank 3 -> Fri 4 Dec
    assert e.text == "Expected between 1 and 4 December"


def test_a_later_milestone_counts_as_the_trigger():
    delivered = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    e = est("first_scan", reached={"requested": REQUESTED, "delivered": delivered})
    assert e.text == "Expected between 3 and 8 December"


def test_approved_refund_uses_approval_time():
    approved = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # Thursday
    e = est(state="approved", approved_at=approved)
    assert e.text == "Expected between 4 and 9 December"


def test_issued_refund_is_the_bank_delay_only():
    issued = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # Friday
    e = est(state="issued", issued_at=issued)
    assert e.text == "Expected between 30 November and 2 December"


def test_store_credit_issued_is_immediate():
    issued = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    e = est(state="issued", issued_at=issued, method="store_credit", bank=(0, 0))
    assert e.text == "Store credit issued"


def test_inspection_trigger_from_request_walks_every_step():
    e = est("inspected", reached={"requested": REQUESTED})
    assert e.start < e.end
    assert e.text.startswith("Expected between")
    late = est(
        "inspected",
        reached={"requested": REQUESTED, "received": datetime(2026, 12, 7, 15, tzinfo=UTC)},
    )
    # inspection 48 h -> Wed 9 Dec; refund 1 business day -> Thu 10; bank 3 -> Tue 15 Dec
    assert late.end == datetime(2026, 12, 15, 15, 0, tzinfo=UTC)


def test_international_transit_is_longer():
    assert est(domestic=False).end > est(domestic=True).end


def test_manual_says_review():
    e = est("manual", state="held")
    assert e.text.startswith("After a review by our team. Expected between")


def test_failed_and_cancelled_have_no_estimate():
    assert est(state="failed") == est(state="cancelled")
    assert est(state="failed").text == "" and est(state="failed").start is None


def test_same_day_says_on():
    issued = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert est(state="issued", issued_at=issued, bank=(1, 1)).text == "Expected on 4 December"


def test_bank_delay_words():
    assert bank_delay_text(1, 3) == "1-3 days"
    assert bank_delay_text(2, 2) == "2 days"
    assert bank_delay_text(1, 1) == "1 day"
    assert bank_delay_text(0, 0) == ""


def test_dates_outside_the_current_year_carry_their_year():
    """A far estimate said "Expected between 29 May and 27 January" for years 2222 and 2414."""
    across = est("first_scan", bank=(1, 30), now=datetime(2026, 12, 1, tzinfo=UTC))
    # Tue 1 Dec + 30 business days (Christmas and New Year's Day off) -> Thu 14 Jan.
    assert across.text == "Expected between 1 December 2026 and 14 January 2027"
    next_year = est(
        "first_scan",
        reached={"requested": REQUESTED, "first_scan": datetime(2027, 1, 4, 15, tzinfo=UTC)},
        now=datetime(2026, 12, 30, tzinfo=UTC),
    )
    assert next_year.text == "Expected between 5 and 8 January 2027"
    spanning = est(
        "first_scan",
        reached={"requested": REQUESTED, "first_scan": datetime(2026, 12, 28, 15, tzinfo=UTC)},
        now=datetime(2026, 12, 28, tzinfo=UTC),
    )
    assert spanning.text == "Expected between 29 December 2026 and 4 January 2027"
    same_year = est("first_scan", now=datetime(2026, 11, 30, tzinfo=UTC))
    assert same_year.text == "Expected between 1 and 4 December"


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Expected between 2 and 9 December"),
        ("de", "Voraussichtlich zwischen 2. und 9. Dezember"),
        ("fr", "Prévu entre le 2 et le 9 décembre"),
    ],
)
def test_estimate_text_in_the_active_language(language, text):
    from django.utils import translation

    with translation.override(language):
        assert est().text == text
