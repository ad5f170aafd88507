"""The refund time estimate `{from, to, text}` shown to customers (MISSION "Quick wins";
issue 6 item 6). Pure: no database, no clock.

From the chosen rule's trigger, the SLA targets still ahead on the parcel
track (DESIGN.md section 6, `rma.sla`) and the refund method's bank delay:

- **Anchor.** The refund's approval time when it is approved (or later);
  else the trigger milestone's time when reached; else a projection from
  the furthest reached parcel milestone, adding each step still ahead:
  first scan (`first_scan_hours` after the label, or after the request when
  no label yet), transit (domestic/international business days after the
  first scan), check-in (`checkin_hours` after delivery) and inspection
  (`inspection_hours` after check-in). `manual` is projected like
  `inspected` (staff review after inspection).
  The late bound uses each target in full; the early bound uses half of
  each (at least one business day for transit) - an honest "if things go
  well" without promising faster than our own targets.
- **Refund** is issued within `refund_business_days` business days after
  approval (late bound; the early bound assumes the same day).
- **Bank delay** per method (`bank_days_min`-`bank_days_max` business days;
  0 for store credit by default).
- An issued refund's range is the bank delay after `issued_at`.

Dates are shown in the calendar's zone: "Expected between 3 and 5
December", "Expected between 28 November and 2 December", "Expected on 3
December". A date outside the current year (of `now`, else of the request)
carries its year: "Expected between 28 December 2026 and 4 January 2027",
"Expected between 4 and 8 January 2027". A failed or cancelled refund has
no estimate. Texts are in the active language (the caller activates the
return's language; month names from CLDR through Babel).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from django.utils.translation import get_language, gettext, ngettext, pgettext

from rma.sla import BusinessCalendar, SlaTargets, add_business_days, due_after_hours

PARCEL_STEPS = ("label_created", "first_scan", "delivered", "received", "inspected")
_TRIGGER_STEP = {
    "first_scan": "first_scan",
    "delivered": "delivered",
    "received": "received",
    "inspected": "inspected",
    "manual": "inspected",
}
#: Later parcel milestones that also approve (or imply) a trigger.
_ORDER = [
    "requested",
    "label_created",
    "dropped_off",
    "first_scan",
    "in_transit",
    "delivered",
    "received",
    "inspected",
]


@dataclass(frozen=True)
class EstimateInput:
    """`reached`: parcel milestone name -> reached_at (aware). `requested_at` the return's
    creation. Refund `state`, `approved_at`, `issued_at` as on the refund."""

    trigger: str
    method: str
    state: str
    requested_at: datetime
    reached: dict[str, datetime]
    targets: SlaTargets
    calendar: BusinessCalendar
    bank_days_min: int
    bank_days_max: int
    domestic: bool = True
    approved_at: datetime | None = None
    issued_at: datetime | None = None
    now: datetime | None = None


@dataclass(frozen=True)
class Estimate:
    start: datetime | None
    end: datetime | None
    text: str


def _reached_at_or_after(reached: dict[str, datetime], step: str) -> datetime | None:
    """The trigger's time: the step itself, or the earliest later parcel milestone reached."""
    idx = _ORDER.index(step)
    times = [reached[name] for name in _ORDER[idx:] if name in reached]
    return min(times) if times else None


def _project(inp: EstimateInput, target_step: str, factor: float) -> datetime:
    """When `target_step` is expected, walking the parcel track from what is reached."""
    t = inp.targets
    reached = inp.reached
    # The latest known point on the track and where it is.
    known_step = "requested"
    known_at = inp.requested_at
    for name in _ORDER:
        if name in reached:
            known_step, known_at = name, reached[name]
    idx_known = _ORDER.index(known_step)
    when = known_at
    transit_days = (
        t.transit_domestic_business_days if inp.domestic else t.transit_international_business_days
    )
    steps = [
        ("first_scan", lambda at: due_after_hours(at, t.first_scan_hours * factor)),
        (
            "delivered",
            lambda at: add_business_days(
                at, max(1, int(transit_days * factor)) if factor < 1 else transit_days, inp.calendar
            ),
        ),
        ("received", lambda at: due_after_hours(at, t.checkin_hours * factor)),
        ("inspected", lambda at: due_after_hours(at, t.inspection_hours * factor)),
    ]
    for name, advance in steps:
        if _ORDER.index(name) <= idx_known:
            continue
        when = advance(when)
        if name == target_step:
            break
    return when


def _day(value: date, pattern: str) -> str:
    """`value` in a CLDR date `pattern` (itself translated: German writes "d. MMMM"),
    month names in the active language."""
    return format_date(value, pattern, locale=_babel_locale())


def _babel_locale() -> Locale:
    try:
        return Locale.parse(get_language() or "en", sep="-")
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


def _format_range(start: datetime, end: datetime, calendar: BusinessCalendar, year: int) -> str:
    """The range's words in the active language; `year` is the current year, which goes
    unsaid."""
    a = start.astimezone(calendar.zone).date()
    b = end.astimezone(calendar.zone).date()
    # Translators: a CLDR date pattern (d day, MMMM month name, y year); keep the letters.
    day_month = pgettext("date pattern", "d MMMM")
    # Translators: a CLDR date pattern (d day, MMMM month name, y year); keep the letters.
    day_month_year = pgettext("date pattern", "d MMMM y")
    # Translators: a CLDR date pattern, the day of the month alone ("between 2 and 9 May").
    day_only = pgettext("date pattern", "d")
    if a.year != b.year:
        first, last = _day(a, day_month_year), _day(b, day_month_year)
    else:
        last = _day(b, day_month if b.year == year else day_month_year)
        first = _day(a, day_only if a.month == b.month else day_month)
    if a == b:
        return gettext("Expected on %(date)s") % {"date": last}
    return gettext("Expected between %(start)s and %(end)s") % {"start": first, "end": last}


def _plus_business_days(at: datetime, days: int, calendar: BusinessCalendar) -> datetime:
    return add_business_days(at, days, calendar) if days > 0 else at


def refund_estimate(inp: EstimateInput) -> Estimate:
    """The estimate for one refund (module docstring)."""
    if inp.state in ("failed", "cancelled"):
        return Estimate(None, None, "")
    cal = inp.calendar
    year = (inp.now or inp.requested_at).astimezone(cal.zone).year
    if inp.state == "issued" and inp.issued_at is not None:
        start = _plus_business_days(inp.issued_at, inp.bank_days_min, cal)
        end = _plus_business_days(inp.issued_at, inp.bank_days_max, cal)
        if inp.method == "store_credit" and inp.bank_days_max == 0:
            return Estimate(start, end, gettext("Store credit issued"))
        return Estimate(start, end, _format_range(start, end, cal, year))
    if inp.approved_at is not None and inp.state in ("approved", "issuing"):
        early = late = inp.approved_at
    else:
        step = _TRIGGER_STEP.get(inp.trigger, "delivered")
        at = _reached_at_or_after(inp.reached, step)
        if at is not None:
            early = late = at
        else:
            early = _project(inp, step, 0.5)
            late = _project(inp, step, 1.0)
    start = _plus_business_days(early, inp.bank_days_min, cal)
    issued_late = add_business_days(late, inp.targets.refund_business_days, cal)
    end = _plus_business_days(issued_late, inp.bank_days_max, cal)
    if end < start:
        end = start
    text = _format_range(start, end, cal, year)
    if inp.trigger == "manual" and inp.state in ("pending", "held"):
        text = gettext("After a review by our team. %(estimate)s") % {"estimate": text}
    return Estimate(start, end, text)


def bank_delay_text(days_min: int, days_max: int) -> str:
    """ "1-3 days", "2 days", "" for none (the approval e-mail's words, in the active
    language)."""
    if days_max <= 0:
        return ""
    if days_min == days_max:
        return ngettext("%(n)d day", "%(n)d days", days_max) % {"n": days_max}
    return gettext("%(min)d-%(max)d days") % {"min": days_min, "max": days_max}


__all__ = ["Estimate", "EstimateInput", "bank_delay_text", "refund_estimate"]
