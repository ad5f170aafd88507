"""rma/sla.py at the edges: elapsed hours across DST, business days across a weekend,
public holidays and both DST changes of the calendar's zone (America/New_York, US-NY)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rma.sla import (
    BusinessCalendar,
    NaiveDatetimeError,
    SlaTargets,
    add_business_days,
    business_days_elapsed,
    checkin_due,
    due_after_hours,
    first_scan_due,
    inspection_due,
    no_movement_due,
    refund_due,
    transit_due,
)

NY = ZoneInfo("America/New_York")
NEW_YORK = BusinessCalendar(time_zone="America/New_York", country="US", subdivision="NY")
TARGETS = SlaTargets()


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_first_scan_due_is_72_elapsed_hours():
    assert first_scan_due(utc(2026, 11, 9, 10, 0), TARGETS) == utc(2026, 11, 12, 10, 0)


def test_due_after_hours_spans_fall_back_as_elapsed_time():
    # 2026-11-01 02:00 EDT -> 01:00 EST. 72 h is 259,200 s whatever the clock shows.
    label = ny(2026, 10, 31, 12, 0)  # 16:00Z
    due = due_after_hours(label, 72)
    assert due == utc(2026, 11, 3, 16, 0)
    assert (due - label).total_seconds() == 259_200
    assert due.astimezone(NY).hour == 11  # the wall clock moved back an hour


def test_due_after_hours_spans_spring_forward_as_elapsed_time():
    label = ny(2026, 3, 7, 12, 0)  # EST, 17:00Z
    assert due_after_hours(label, 72) == utc(2026, 3, 10, 17, 0)
    assert due_after_hours(label, 72).astimezone(NY).hour == 13  # EDT now


def test_add_business_days_friday_to_monday_same_wall_time():
    assert add_business_days(ny(2026, 11, 13, 15, 0), 1, NEW_YORK) == utc(2026, 11, 16, 20, 0)


def test_add_business_days_saturday_starts_at_monday_midnight():
    # Saturday -> start Monday 00:00 local -> +1 business day = Tuesday 00:00 EST.
    assert add_business_days(ny(2026, 11, 14, 10, 0), 1, NEW_YORK) == utc(2026, 11, 17, 5, 0)


def test_add_business_days_zero_on_weekend_is_next_business_midnight():
    assert add_business_days(ny(2026, 11, 15, 23, 59), 0, NEW_YORK) == utc(2026, 11, 16, 5, 0)


def test_add_business_days_zero_on_business_day_is_start():
    start = ny(2026, 11, 16, 9, 30)
    assert add_business_days(start, 0, NEW_YORK) == start


def test_add_business_days_skips_thanksgiving():
    # Wed 25 Nov + 1 -> Thu 26 is Thanksgiving -> Fri 27, 09:00 EST.
    assert add_business_days(ny(2026, 11, 25, 9, 0), 1, NEW_YORK) == utc(2026, 11, 27, 14, 0)


def test_add_business_days_skips_subdivision_holiday():
    # Election Day (Tue 3 Nov 2026) is a New York holiday, not a federal one.
    assert add_business_days(ny(2026, 11, 2, 9, 0), 1, NEW_YORK) == utc(2026, 11, 4, 14, 0)
    federal = BusinessCalendar(time_zone="America/New_York", country="US")
    assert add_business_days(ny(2026, 11, 2, 9, 0), 1, federal) == utc(2026, 11, 3, 14, 0)


def test_add_business_days_across_spring_forward_keeps_wall_time():
    # Fri 6 Mar 10:00 EST (15:00Z); DST starts Sun 8 Mar; Mon 9 Mar 10:00 EDT = 14:00Z.
    assert add_business_days(ny(2026, 3, 6, 10, 0), 1, NEW_YORK) == utc(2026, 3, 9, 14, 0)


def test_add_business_days_across_fall_back_keeps_wall_time():
    # Fri 30 Oct 10:00 EDT (14:00Z); DST ends Sun 1 Nov; Mon 2 Nov 10:00 EST = 15:00Z.
    assert add_business_days(ny(2026, 10, 30, 10, 0), 1, NEW_YORK) == utc(2026, 11, 2, 15, 0)


def test_add_business_days_start_on_dst_sunday_uses_local_date():
    # 2026-03-08 06:30Z is 01:30 EST on Sunday 8 March: not a business day.
    start = utc(2026, 3, 8, 6, 30)
    assert add_business_days(start, 1, NEW_YORK) == utc(2026, 3, 10, 4, 0)  # Tue 00:00 EDT


def test_add_business_days_uses_calendar_zone_not_utc_date():
    # 2026-11-14 03:00Z is still Friday 13th 22:00 in New York.
    assert add_business_days(utc(2026, 11, 14, 3, 0), 1, NEW_YORK) == utc(2026, 11, 17, 3, 0)


def test_add_business_days_over_a_week_and_a_holiday():
    # Mon 23 Nov + 10 business days, Thanksgiving skipped -> Tue 8 Dec, same wall time.
    assert add_business_days(ny(2026, 11, 23, 8, 0), 10, NEW_YORK) == utc(2026, 12, 8, 13, 0)


def test_transit_due_domestic_and_international_and_route_override():
    first_scan = ny(2026, 11, 16, 12, 0)  # Monday
    assert transit_due(first_scan, domestic=True, targets=TARGETS, calendar=NEW_YORK) == utc(
        2026, 11, 19, 17, 0
    )
    assert transit_due(first_scan, domestic=False, targets=TARGETS, calendar=NEW_YORK) == utc(
        2026, 12, 1, 17, 0
    )
    assert transit_due(
        first_scan, domestic=False, targets=TARGETS, calendar=NEW_YORK, business_days=5
    ) == utc(2026, 11, 23, 17, 0)


def test_refund_due_one_business_day_after_approval_on_friday_evening():
    assert refund_due(ny(2026, 11, 20, 18, 0), TARGETS, NEW_YORK) == utc(2026, 11, 23, 23, 0)


def test_checkin_inspection_no_movement_targets():
    t = utc(2026, 11, 10, 8, 0)
    assert checkin_due(t, TARGETS) == t + timedelta(hours=24)
    assert inspection_due(t, TARGETS) == t + timedelta(hours=48)
    assert no_movement_due(t, TARGETS) == t + timedelta(days=5)
    assert no_movement_due(t, SlaTargets(no_movement_days=7)) == t + timedelta(days=7)


def test_business_days_elapsed_counts_whole_days():
    start = ny(2026, 11, 13, 15, 0)  # Friday
    assert business_days_elapsed(start, ny(2026, 11, 16, 14, 59), NEW_YORK) == 0
    assert business_days_elapsed(start, ny(2026, 11, 16, 15, 0), NEW_YORK) == 1
    assert (
        business_days_elapsed(start, ny(2026, 11, 27, 15, 0), NEW_YORK) == 9
    )  # Thanksgiving skipped


def test_naive_datetimes_are_refused():
    with pytest.raises(NaiveDatetimeError):
        due_after_hours(datetime(2026, 11, 1, 12, 0), 72)
    with pytest.raises(NaiveDatetimeError):
        add_business_days(datetime(2026, 11, 1, 12, 0), 1, NEW_YORK)


def test_unknown_subdivision_falls_back_to_national_holidays():
    cal = BusinessCalendar(time_zone="America/New_York", country="US", subdivision="ZZ")
    assert not cal.is_business_day(ny(2026, 11, 26).date())  # Thanksgiving
    assert cal.is_business_day(ny(2026, 11, 3).date())  # Election Day is NY-only


def test_calendar_for_other_country_and_subdivision():
    # Good Friday 3 Apr 2026 is a UK holiday; Easter Monday 6 Apr only in
    # England, Wales and Northern Ireland, not Scotland.
    thursday = datetime(2026, 4, 2, 9, 0, tzinfo=ZoneInfo("Europe/London"))  # 08:00Z (BST)
    england = BusinessCalendar(time_zone="Europe/London", country="GB", subdivision="ENG")
    scotland = BusinessCalendar(time_zone="Europe/London", country="GB", subdivision="SCT")
    assert add_business_days(thursday, 1, england) == datetime(2026, 4, 7, 8, 0, tzinfo=UTC)
    assert add_business_days(thursday, 1, scotland) == datetime(2026, 4, 6, 8, 0, tzinfo=UTC)
