"""The return's timeline as customers and the API see it. Pure: no database, no clock.

The parcel track (DESIGN.md section 5) in order, each step reached, current
(the furthest reached), next expected, upcoming or skipped (a later step was
reached first), with its due time where an SLA target defines one
(DESIGN.md section 6, the tenant's `SlaPolicy`):

- `first_scan`: `label_created` + `first_scan_hours` elapsed (72 h by default);
- `delivered`: `first_scan` + the transit target in business days (domestic
  or international: the order's shipping country against the return
  centre's) on the return centre's calendar;
- `received`: `delivered` + `checkin_hours` elapsed;
- `inspected`: `received` + `inspection_hours` elapsed.

`requested`, `label_created`, `dropped_off` and `in_transit` have no target
of their own. An unreached, unskipped step whose due time has passed is
overdue. The outcome (`refunded`, `exchanged`, `rejected`, `cancelled`) is
shown beside the track. `next_step_text` gives the next step in plain words
(MISSION "Customer portal" messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import gettext as _

from rma.sla import (
    BusinessCalendar,
    SlaTargets,
    checkin_due,
    first_scan_due,
    inspection_due,
    transit_due,
)
from rma.states import OUTCOMES, PARCEL_RANK, PARCEL_TRACK, MilestoneName


@dataclass(frozen=True)
class MilestoneFact:
    name: str
    reached_at: datetime
    source: str
    precision: str = "second"


@dataclass(frozen=True)
class TimelineStep:
    """`state` is `reached`, `current`, `next`, `upcoming` or `skipped`; times are UTC."""

    name: str
    label: str
    state: str
    reached_at: datetime | None
    due_at: datetime | None
    overdue: bool
    source: str | None
    precision: str | None


@dataclass(frozen=True)
class Timeline:
    steps: tuple[TimelineStep, ...]
    current: str
    next_expected: TimelineStep | None
    outcome: MilestoneFact | None

    @property
    def overdue(self) -> tuple[TimelineStep, ...]:
        return tuple(s for s in self.steps if s.overdue)

    def step(self, name: str) -> TimelineStep:
        return next(s for s in self.steps if s.name == name)


def _due_times(
    reached: dict[str, MilestoneFact],
    *,
    targets: SlaTargets,
    calendar: BusinessCalendar,
    domestic: bool,
) -> dict[str, datetime]:
    due: dict[str, datetime] = {}
    if "label_created" in reached:
        due["first_scan"] = first_scan_due(reached["label_created"].reached_at, targets)
    if "first_scan" in reached:
        due["delivered"] = transit_due(
            reached["first_scan"].reached_at,
            domestic=domestic,
            targets=targets,
            calendar=calendar,
        )
    if "delivered" in reached:
        due["received"] = checkin_due(reached["delivered"].reached_at, targets)
    if "received" in reached:
        due["inspected"] = inspection_due(reached["received"].reached_at, targets)
    return due


def build_timeline(
    milestones: list[MilestoneFact] | tuple[MilestoneFact, ...],
    *,
    targets: SlaTargets,
    calendar: BusinessCalendar,
    domestic: bool,
    now: datetime,
) -> Timeline:
    """The timeline from the return's reached milestones (rules in the module docstring)."""
    reached = {m.name: m for m in milestones}
    furthest = max(
        (PARCEL_RANK[name] for name in reached if name in PARCEL_RANK),
        default=0,
    )
    due = _due_times(reached, targets=targets, calendar=calendar, domestic=domestic)
    closed = any(name in reached for name in OUTCOMES)
    steps = []
    next_step: TimelineStep | None = None
    for rank, name in enumerate(PARCEL_TRACK):
        fact = reached.get(name)
        if fact is not None:
            state = "current" if rank == furthest else "reached"
        elif rank < furthest:
            state = "skipped"
        elif next_step is None and not closed:
            state = "next"
        else:
            state = "upcoming"
        due_at = due.get(name) if fact is None and state != "skipped" else None
        step = TimelineStep(
            name=name,
            label=str(MilestoneName(name).label),
            state=state,
            reached_at=fact.reached_at if fact else None,
            due_at=due_at if not closed else None,
            overdue=bool(due_at and not closed and due_at <= now),
            source=fact.source if fact else None,
            precision=fact.precision if fact else None,
        )
        if state == "next":
            next_step = step
        steps.append(step)
    outcome = next((reached[name] for name in OUTCOMES if name in reached), None)
    return Timeline(
        steps=tuple(steps),
        current=PARCEL_TRACK[furthest],
        next_expected=next_step,
        outcome=outcome,
    )


def _hours_range(hours: int) -> str:
    if hours > 24:
        return _("24-%(hours)d hours") % {"hours": hours}
    return _("%(hours)d hours") % {"hours": hours}


def next_step_text(
    timeline: Timeline,
    *,
    method: str,
    label_state: str,
    refund_state: str,
    targets: SlaTargets,
) -> str:
    """The next step in plain words (MISSION "Customer portal" messages).

    `label_state` is the primary shipment's (`none`, `pending`, `ready`,
    `failed`, or `""` without a shipment); `refund_state` is the return's
    denormalized refund state (`pending`, `held`, `approved`, `issuing`,
    `issued`, `failed`, `cancelled`).
    """
    if timeline.outcome is not None:
        name = timeline.outcome.name
        if name == "refunded":
            return _("Refunded. Your bank may take 1-3 days to show it.")
        if name == "exchanged":
            return _("Exchanged. Your replacement is on its way.")
        if name == "rejected":
            return _("We couldn't accept this return. We've e-mailed you the details.")
        return _("This return was cancelled.")
    if refund_state == "issued":
        return _("Refund issued. Your bank may take 1-3 days.")
    if refund_state in ("approved", "issuing"):
        return _("Refund approved. Your bank may take 1-3 days.")
    current = timeline.current
    late = bool(timeline.overdue)
    if late and current in ("label_created", "dropped_off"):
        return _(
            "We haven't seen a carrier scan yet. If you've dropped the parcel off, keep "
            "your receipt: we're checking with the carrier."
        )
    if late and current in ("first_scan", "in_transit"):
        return _(
            "Your parcel is taking longer than expected to reach us. We're keeping an eye on it."
        )
    if late and current == "delivered":
        return _(
            "Delivered to our return centre. Checking it in is taking longer than usual; we're on it."
        )
    if late and current == "received":
        return _("Received. The inspection is taking longer than usual; we're on it.")
    if current == "requested":
        if label_state == "pending":
            return _("We're creating your return label. This page updates by itself.")
        if label_state == "failed":
            return _("We couldn't create your label automatically. We'll e-mail it to you.")
        return _("Return requested. We'll send your label shortly.")
    if current == "label_created":
        if method == "pickup":
            return _(
                "Label ready. Print it and attach it to the parcel; the carrier will pick it up."
            )
        return _(
            "Label ready. Print it, stick it on the parcel and drop it off. "
            "First scan expected within %(hours)s of the label."
        ) % {"hours": _hours_range(targets.first_scan_hours)}
    if current == "dropped_off":
        return _("Dropped off. First scan expected within %(hours)s.") % {
            "hours": _hours_range(targets.first_scan_hours)
        }
    if current in ("first_scan", "in_transit"):
        return _("On its way to our return centre.")
    if current == "delivered":
        return _("Delivered. Inspection starts within 1 business day.")
    if current == "received":
        return _("Received and checked in. Inspection within %(hours)d hours.") % {
            "hours": targets.inspection_hours
        }
    return _("Inspected. We're settling your refund.")
