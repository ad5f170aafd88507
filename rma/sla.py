"""Due times for SLA targets (DESIGN.md section 6). Pure: no database, no clock.

Two kinds of target:

- **Elapsed hours / days** (first scan 72 h, check-in 24 h, inspection 48 h,
  no movement 5 days): `start + N * 3600 s`, whatever the wall clocks do
  (72 h = 259,200 s across a DST change).
- **Business days** (transit 3/10, refund 1): "N business days after T" is
  computed in the calendar's zone: if T's local date is not a business day,
  start at the next business day's 00:00; the due time is the same local wall
  time N business days later. Business days are Monday to Friday that are not
  public holidays of the calendar's country and subdivision (the `holidays`
  package). A wall time that does not exist on the due date (spring-forward
  gap) is read with `fold=0`, i.e. with the offset before the change, which
  lands it just after the gap; an ambiguous one (fall-back) takes `fold=0`,
  the earlier instant.

The calendar is the return centre's, else the tenant's. All inputs and
outputs are aware datetimes; outputs are UTC.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib


class NaiveDatetimeError(ValueError):
    """A naive datetime reached a function that needs an instant."""


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"{value!r} has no time zone")


@functools.lru_cache(maxsize=256)
def _holiday_calendar(country: str, subdivision: str, year: int) -> frozenset[date]:
    """Public holidays of `country` (ISO 3166-1) and `subdivision` in `year`.

    An unknown subdivision falls back to the country's national holidays; a
    country the `holidays` package does not know has none.
    """
    try:
        cal = holidays_lib.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        try:
            cal = holidays_lib.country_holidays(country, years=year)
        except NotImplementedError:
            return frozenset()
    return frozenset(cal.keys())


@dataclass(frozen=True)
class BusinessCalendar:
    """A business-day calendar: IANA `time_zone`, ISO `country`, optional ISO 3166-2 `subdivision`
    (the part after the hyphen, e.g. `CA` for US-CA, `BY` for DE-BY)."""

    time_zone: str
    country: str
    subdivision: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_holiday(self, day: date) -> bool:
        return day in _holiday_calendar(self.country.upper(), self.subdivision.upper(), day.year)

    def is_business_day(self, day: date) -> bool:
        """Monday to Friday and not a public holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day


def due_after_hours(start: datetime, hours: float) -> datetime:
    """`start` plus `hours` of elapsed time, in UTC."""
    _require_aware(start)
    # Convert first: arithmetic on a datetime in a ZoneInfo zone is wall-clock
    # arithmetic, which would make 72 h across a DST change 71 or 73 h.
    return start.astimezone(UTC) + timedelta(hours=hours)


def due_after_days(start: datetime, days: float) -> datetime:
    """`start` plus `days` x 24 elapsed hours (the "no movement" target), in UTC."""
    return due_after_hours(start, days * 24)


def _local_wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime:
    return (
        datetime.combine(day, wall.replace(tzinfo=None, fold=0))
        .replace(tzinfo=zone)
        .astimezone(UTC)
    )


def add_business_days(start: datetime, days: int, calendar: BusinessCalendar) -> datetime:
    """ "`days` business days after `start`" on `calendar`, in UTC (rules in the module docstring).

    `days` must be >= 0; 0 gives `start` itself, moved to the next business
    day's 00:00 when `start` falls on a non-business day.
    """
    _require_aware(start)
    if days < 0:
        raise ValueError("days must be >= 0")
    zone = calendar.zone
    local = start.astimezone(zone)
    day = local.date()
    wall = local.time()
    if calendar.is_business_day(day):
        if days == 0:
            return start.astimezone(UTC)
    else:
        day = calendar.next_business_day(day)
        wall = time(0, 0)
    for _ in range(days):
        day = calendar.next_business_day(day)
    return _local_wall_to_utc(day, wall, zone)


def business_days_elapsed(start: datetime, end: datetime, calendar: BusinessCalendar) -> int:
    """Whole business days from `start` to `end`: the largest N with
    `add_business_days(start, N) <= end` (0 when `end` is before the first)."""
    _require_aware(start)
    _require_aware(end)
    n = 0
    while add_business_days(start, n + 1, calendar) <= end:
        n += 1
        if n > 3660:
            break
    return n


@dataclass(frozen=True)
class SlaTargets:
    """A tenant's targets (DESIGN.md section 6 defaults). Units in the names."""

    first_scan_hours: int = 72
    transit_domestic_business_days: int = 3
    transit_international_business_days: int = 10
    checkin_hours: int = 24
    inspection_hours: int = 48
    refund_business_days: int = 1
    no_movement_days: int = 5
    claimed_dropoff_scan_hours: int = 24


def first_scan_due(label_created_at: datetime, targets: SlaTargets) -> datetime:
    """When the first carrier scan is due: label time + `first_scan_hours` elapsed."""
    return due_after_hours(label_created_at, targets.first_scan_hours)


def transit_due(
    first_scan_at: datetime,
    *,
    domestic: bool,
    targets: SlaTargets,
    calendar: BusinessCalendar,
    business_days: int | None = None,
) -> datetime:
    """When delivery to the return centre is due: business days after the first scan.

    `business_days` overrides the domestic/international default (a per-route target).
    """
    if business_days is None:
        business_days = (
            targets.transit_domestic_business_days
            if domestic
            else targets.transit_international_business_days
        )
    return add_business_days(first_scan_at, business_days, calendar)


def checkin_due(delivered_at: datetime, targets: SlaTargets) -> datetime:
    """When warehouse check-in is due: delivery + `checkin_hours` elapsed."""
    return due_after_hours(delivered_at, targets.checkin_hours)


def inspection_due(received_at: datetime, targets: SlaTargets) -> datetime:
    """When inspection is due: check-in + `inspection_hours` elapsed."""
    return due_after_hours(received_at, targets.inspection_hours)


def refund_due(approved_at: datetime, targets: SlaTargets, calendar: BusinessCalendar) -> datetime:
    """When the refund must be issued: `refund_business_days` business days after approval."""
    return add_business_days(approved_at, targets.refund_business_days, calendar)


def no_movement_due(last_event_at: datetime, targets: SlaTargets) -> datetime:
    """When "no movement" is raised: last event + `no_movement_days` x 24 h elapsed."""
    return due_after_days(last_event_at, targets.no_movement_days)


# --------------------------------------------------------------------------
# Which due times apply (issue 5). Pure: the services in `rma.services` load
# the facts, call these and write the due columns that detection reads.
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class ShipmentClock:
    """The facts a shipment's due times depend on (aware instants).

    - `label_created_at`: when the label was bought or the number given.
    - `first_scan_at`: the first carrier scan (None while there is none).
    - `last_event_at`: the latest carrier event of any status.
    - `delivered`: the parcel reached the return centre (carrier or check-in).
    - `active`: an inbound parcel of an open return (nothing is due otherwise).
    """

    label_created_at: datetime | None
    first_scan_at: datetime | None
    last_event_at: datetime | None
    delivered: bool
    active: bool


@dataclass(frozen=True)
class ShipmentDueTimes:
    first_scan_due_at: datetime | None
    next_event_due_at: datetime | None
    transit_due_at: datetime | None


def shipment_due_times(
    clock: ShipmentClock,
    *,
    targets: SlaTargets,
    calendar: BusinessCalendar,
    transit_business_days: int,
) -> ShipmentDueTimes:
    """A shipment's due times (UTC), or None where nothing is due:

    - `first_scan_due_at`: label + `first_scan_hours` elapsed, while no first scan;
    - `next_event_due_at`: latest of (last event, first scan) + `no_movement_days`
      x 24 h elapsed, once scanned and while not delivered ("no movement" is about
      a parcel that was moving; before the first scan `no_first_scan` covers it);
    - `transit_due_at`: first scan + `transit_business_days` business days on
      `calendar`, while not delivered.

    Source: MISSION "SLA targets per step" and "Exceptions, caught early";
    DESIGN.md section 6.
    """
    if not clock.active or clock.delivered:
        return ShipmentDueTimes(None, None, None)
    if clock.first_scan_at is None:
        first_scan = (
            first_scan_due(clock.label_created_at, targets) if clock.label_created_at else None
        )
        return ShipmentDueTimes(first_scan, None, None)
    moved_at = max(t for t in (clock.first_scan_at, clock.last_event_at) if t is not None)
    return ShipmentDueTimes(
        first_scan_due_at=None,
        next_event_due_at=no_movement_due(moved_at, targets),
        transit_due_at=add_business_days(clock.first_scan_at, transit_business_days, calendar),
    )


@dataclass(frozen=True)
class ReturnClock:
    """The facts a return's own due times depend on (aware instants).

    `dropoff_claimed_at` is the customer's "I've dropped it off" (the return's
    `customer_dropoff_claimed_at`, else a `dropped_off` milestone of source
    `customer`); `first_scan` is whether any carrier scan (or a later parcel
    milestone) is known.
    """

    is_open: bool
    delivered_at: datetime | None
    received_at: datetime | None
    inspected: bool
    first_scan: bool
    dropoff_claimed_at: datetime | None


@dataclass(frozen=True)
class ReturnDueTimes:
    checkin_due_at: datetime | None
    inspection_due_at: datetime | None
    dropoff_scan_due_at: datetime | None


def return_due_times(clock: ReturnClock, *, targets: SlaTargets) -> ReturnDueTimes:
    """A return's due times (UTC), or None where nothing is due:

    - `checkin_due_at`: delivered + `checkin_hours` elapsed, while not received;
    - `inspection_due_at`: received + `inspection_hours` elapsed, while not inspected;
    - `dropoff_scan_due_at`: the customer's drop-off claim + `claimed_dropoff_scan_hours`
      elapsed, while no carrier scan is known.

    Nothing is due on a closed return. Source: MISSION "SLA targets per step"
    (check-in within 24 h of delivery, inspection within 24-48 h) and
    "Exceptions, caught early" (customer says dropped off, carrier shows nothing).
    """
    if not clock.is_open:
        return ReturnDueTimes(None, None, None)
    checkin = (
        checkin_due(clock.delivered_at, targets)
        if clock.delivered_at is not None and clock.received_at is None
        else None
    )
    inspection = (
        inspection_due(clock.received_at, targets)
        if clock.received_at is not None and not clock.inspected
        else None
    )
    dropoff = None
    if (
        clock.dropoff_claimed_at is not None
        and not clock.first_scan
        and clock.delivered_at is None
        and clock.received_at is None
    ):
        dropoff = due_after_hours(clock.dropoff_claimed_at, targets.claimed_dropoff_scan_hours)
    return ReturnDueTimes(checkin, inspection, dropoff)


def transit_business_days(
    *,
    origin_country: str,
    destination_country: str,
    home_country: str,
    routes: dict[tuple[str, str], int],
    targets: SlaTargets,
) -> int:
    """Business days allowed in transit for one route.

    `routes` maps `(origin, destination)` to days; origin `""` matches any
    origin. An exact `(origin, destination)` route wins, then `("",
    destination)`, then the policy default: domestic when the origin is the
    return centre's country (`home_country`) or unknown, else international.
    Countries are ISO 3166-1 alpha-2, compared upper-cased; an empty
    destination means the return centre's country.
    """
    origin = (origin_country or "").upper()
    home = (home_country or "").upper()
    destination = (destination_country or "").upper() or home
    if origin and (origin, destination) in routes:
        return routes[(origin, destination)]
    if ("", destination) in routes:
        return routes[("", destination)]
    domestic = not origin or origin == home
    return (
        targets.transit_domestic_business_days
        if domestic
        else targets.transit_international_business_days
    )
