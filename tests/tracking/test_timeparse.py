"""Time parsing quirks (DESIGN.md section 6), exact UTC values."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tracking.carriers import timeparse as tp
from tracking.carriers._common import time_of
from tracking.carriers.base import Location

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_timeparse_offset_with_colon() -> None:
    info = time_of("2024-08-20T12:41:57-04:00", now=NOW)
    assert info.occurred_at == _utc("2024-08-20T16:41:57Z") and info.tz_source == "offset"


def test_timeparse_offset_without_colon() -> None:
    assert time_of("2024-10-07T10:46:14+0200", now=NOW).occurred_at == _utc("2024-10-07T08:46:14Z")


def test_timeparse_gmt_twin_field_wins_and_keeps_seconds() -> None:
    info = time_of("2024-11-22T13:58:00", now=NOW, utc_twin=_utc("2024-11-22T18:58:40Z"))
    assert info.occurred_at == _utc("2024-11-22T18:58:40Z") and info.tz_source == "gmt_field"


def test_timeparse_separate_offset_field_plus_8() -> None:
    info = time_of("2019-08-15T18:52:19", now=NOW, offset=tp.parse_offset("+8"))
    assert info.occurred_at == _utc("2019-08-15T10:52:19Z") and info.tz_source == "separate_field"


def test_timeparse_parse_offset_forms() -> None:
    assert tp.parse_offset("-5").total_seconds() == -5 * 3600
    assert tp.parse_offset("GMT-04:00").total_seconds() == -4 * 3600
    assert tp.parse_offset("+0530").total_seconds() == 5.5 * 3600
    assert tp.parse_offset("Z").total_seconds() == 0
    assert tp.parse_offset("nonsense") is None


def test_timeparse_zone_abbreviation_est() -> None:
    info = time_of("2011-02-03 08:27:43", now=NOW, abbreviation="EST")
    assert info.occurred_at == _utc("2011-02-03T13:27:43Z") and info.tz_source == "abbreviation"


def test_timeparse_naive_time_zone_from_location_state() -> None:
    info = time_of(
        "20131209 161700", now=NOW, location=Location(city="ASHEBORO", region="NC", country="US")
    )
    assert info.occurred_at == _utc("2013-12-09T21:17:00Z") and info.tz_name == "America/New_York"


def test_timeparse_naive_time_zone_from_iata_code() -> None:
    info = time_of("2009-08-26 10:00:00", now=NOW, location=Location(iata="SIN"))
    assert info.occurred_at == _utc("2009-08-26T02:00:00Z")


def test_timeparse_naive_time_zone_from_city_in_multizone_state() -> None:
    # El Paso, TX is Mountain time although Texas is mostly Central
    info = time_of(
        "2024-01-10 10:00:00", now=NOW, location=Location(city="El Paso", region="TX", country="US")
    )
    assert info.occurred_at == _utc("2024-01-10T17:00:00Z")


def test_timeparse_naive_time_falls_back_to_carrier_home_zone() -> None:
    info = time_of("2019-05-09 18:11:26", now=NOW, home_zone="Asia/Shanghai")
    assert info.occurred_at == _utc("2019-05-09T10:11:26Z") and info.tz_source == "carrier_home"


def test_timeparse_naive_time_unresolvable_in_multizone_country() -> None:
    info = time_of("20080620 180137", now=NOW, location=Location(country="US"))
    assert (
        info.occurred_at is None
        and info.tz_source == "none"
        and info.local_date == date(2008, 6, 20)
    )


def test_timeparse_ambiguous_time_takes_fold_0() -> None:
    # 01:30 happens twice in Chicago on 2024-11-03; fold=0 is the first (CDT, -5)
    info = time_of("2024-11-03T01:30:00", now=NOW, location=Location(region="IL", country="US"))
    assert info.occurred_at == _utc("2024-11-03T06:30:00Z")


def test_timeparse_date_only_never_becomes_utc_midnight() -> None:
    info = time_of("2024-08-15", now=NOW, location=Location(region="MN", country="US"))
    assert (
        info.occurred_at is None
        and info.precision == "date"
        and info.local_date == date(2024, 8, 15)
    )


def test_timeparse_naive_midnight_is_date_only() -> None:
    info = time_of(
        "2024-08-15T00:00:00", now=NOW, location=Location(city="MANKATO", region="MN", country="US")
    )
    assert (
        info.occurred_at is None and info.precision == "date" and info.tz_name == "America/Chicago"
    )


def test_timeparse_utc_midnight_padding_is_date_only_when_asked() -> None:
    assert time_of("2016-12-07T00:00:00Z", now=NOW, utc_midnight_is_date=True).occurred_at is None
    assert time_of("2016-12-07T00:00:00Z", now=NOW).occurred_at == _utc("2016-12-07T00:00:00Z")


def test_timeparse_twelve_hour_clock_pm_lowercase() -> None:
    info = time_of(
        "January 6, 2016 10:45 pm",
        now=NOW,
        order="mdy",
        location=Location(region="OH", country="US"),
    )
    assert info.occurred_at == _utc("2016-01-07T03:45:00Z") and info.precision == "minute"


def test_timeparse_twelve_hour_clock_noon_and_midnight() -> None:
    assert tp.parse_local("1/2/2024 12:05:00 AM", order="mdy").naive == datetime(2024, 1, 2, 0, 5)
    assert tp.parse_local("1/2/2024 12:05:00 PM", order="mdy").naive == datetime(2024, 1, 2, 12, 5)


def test_timeparse_day_first_vs_month_first_is_per_carrier() -> None:
    assert tp.parse_local("03.04.2024 10:00", order="dmy").naive == datetime(2024, 4, 3, 10, 0)
    assert tp.parse_local("03/04/2024 10:00", order="mdy").naive == datetime(2024, 3, 4, 10, 0)


def test_timeparse_german_date_in_berlin() -> None:
    info = time_of("17.03.2016 11:44", now=NOW, order="dmy", home_zone="Europe/Berlin")
    assert info.occurred_at == _utc("2016-03-17T10:44:00Z") and info.precision == "minute"


def test_timeparse_sentinel_before_1990_is_flagged() -> None:
    info = time_of("1900-01-01T08:00:00", now=NOW, home_zone="Asia/Shanghai")
    assert info.occurred_at is None and info.flag == "before_1990"


def test_timeparse_unrepresentable_instants_are_flagged_not_raised() -> None:
    """Valid wall times whose UTC instant lies outside datetime's range."""
    early = time_of("0001-01-01T00:00:00+14:00", now=NOW)
    late = time_of("9999-12-31T23:59:59-14:00", now=NOW)
    assert (early.occurred_at, early.flag, early.local_date) == (
        None,
        "before_1990",
        date(1, 1, 1),
    )
    assert (late.occurred_at, late.flag, late.local_date) == (
        None,
        "far_future",
        date(9999, 12, 31),
    )
    zoned = time_of("9999-12-31 23:30", now=NOW, home_zone="America/Los_Angeles")
    assert (zoned.occurred_at, zoned.flag) == (None, "far_future")


def test_timeparse_date_only_outside_the_window_is_flagged() -> None:
    """A date-only sentinel (midnight pads to a date) is rejected like a timed one."""
    sentinel = time_of("1900-01-01T00:00:00", now=NOW, home_zone="Asia/Shanghai")
    assert (sentinel.occurred_at, sentinel.precision, sentinel.flag) == (
        None,
        "date",
        "before_1990",
    )
    assert time_of("0001-01-01", now=NOW).flag == "before_1990"
    assert time_of("9999-12-31", now=NOW).flag == "far_future"
    assert time_of("2026-06-03", now=NOW).flag is None  # within the 2 days' slack
    assert time_of("2026-06-04", now=NOW).flag == "far_future"
    assert time_of("1990-01-01", now=NOW).flag is None


def test_timeparse_aware_values_out_of_range_are_none() -> None:
    assert tp.parse_aware("0001-01-01T00:00:00+14:00") is None
    assert tp.parse_aware("9999-12-31T23:59:59-14:00") is None
    assert tp.parse_aware("1900-01-01T00:00:00Z") == datetime(1900, 1, 1, tzinfo=UTC)
    assert tp.parse_aware("1900-01-01T00:00:00Z", now=NOW) is None  # rejected time: untimed
    assert tp.parse_aware("2026-06-04T00:00:00Z", now=NOW) is None
    assert tp.parse_aware("2026-05-31T10:00:00+02:00", now=NOW) == _utc("2026-05-31T08:00:00Z")
    assert tp.parse_utc_naive("0001-01-01T00:00:00+14:00") is None
    assert tp.parse_date(20240815) is None and tp.parse_date(["2024-08-15"]) is None


def test_timeparse_local_start_of_day_before_the_first_instant() -> None:
    assert tp.local_start_of_day(date(1, 1, 1), None) == datetime.min.replace(tzinfo=UTC)
    assert tp.local_start_of_day(date(9999, 12, 31), "America/Chicago") == _utc(
        "9999-12-31T06:00:00Z"
    )


def test_timeparse_far_future_is_flagged() -> None:
    info = time_of("2026-06-03T01:00:00Z", now=NOW)
    assert info.occurred_at is None and info.flag == "far_future"
    assert time_of("2026-06-02T23:00:00Z", now=NOW).occurred_at == _utc("2026-06-02T23:00:00Z")


def test_timeparse_local_start_of_day_without_zone_is_earliest() -> None:
    assert tp.local_start_of_day(date(2024, 8, 15), "America/Chicago") == _utc(
        "2024-08-15T05:00:00Z"
    )
    assert tp.local_start_of_day(date(2024, 8, 15), None) == _utc("2024-08-14T10:00:00Z")
