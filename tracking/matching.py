"""Which shipment a payload's events belong to (DESIGN.md section 4). Pure.

Input: the results one payload gives for one normalized number (usually one;
FedEx may return several `trackResults` for a reused number) and the tenant's
shipments with that number (`Candidate`s). Output: `(unit, candidate | None)`
pairs, where a unit is one result's events, or one journey of them.

Rules, in order:

1. **Carrier preference.** Candidates whose `carrier` is the physical carrier
   the payload names win; else those the provider reports for
   (`tracking_provider` or `carrier` equal to the provider); else any
   shipment with the number.
2. **One shipment** takes the payload's events whatever their dates (several
   results for the number: the best-scoring one; the others stay unmatched,
   never merged).
3. **Several shipments (legs)**: each result is split into journeys only
   where its events show a finished journey (a `delivered` event) followed
   by a new acceptance (`accepted`, with the `label_created` events between
   them); then units are paired with shipments by score, each shipment taking
   at most one unit: a unit starting after a delivered shipment's delivery
   cannot be that shipment's; then the ship date (unit's ship date or first
   event vs the shipment's `shipped_at`, else `created_at`: a journey that
   began more than 3 days before the shipment existed scores badly); then
   the route (origin/destination countries). Leftover units are unmatched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from tracking.carriers.base import TrackingResult
from tracking.normalize import NON_BEARING, NormalizedEvent, ShipmentStatus, placed_instants

_MIN = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A shipment as matching sees it. `ref_date`: UTC date of `shipped_at`,
    else `created_at`; `delivered_at`: when a delivered shipment was delivered
    (`status_at`), else None."""

    id: int
    carrier: str
    tracking_provider: str
    leg: int
    ref_date: date
    origin_country: str = ""
    destination_country: str = ""
    delivered_at: datetime | None = None


@dataclass(slots=True)
class Unit:
    """Events of one result (or one journey of it) to store on one shipment.
    `fallback` is the result's untimed summary status (may replace unknown)."""

    result: TrackingResult
    events: list[NormalizedEvent]
    fallback: ShipmentStatus | None = None
    journey: int = 0
    bounds: tuple[datetime | None, datetime | None] = field(default=(None, None))


def split_journeys(events: Sequence[NormalizedEvent]) -> list[list[NormalizedEvent]]:
    """Split events where a delivered journey is followed by a new acceptance.

    Ordered by the instant each event counts at (``placed_instants``), then
    stage and carrier sequence. ``label_created`` events between the delivery
    and the new acceptance move with the new journey. One journey (the input)
    when there is no such boundary.
    """
    if not events:
        return [list(events)]
    bearing = [e for e in events if e.status not in NON_BEARING]
    placed = placed_instants(bearing) if bearing else {}
    order = sorted(events, key=lambda e: (_placed_or_min(placed, e), e.raw.sequence))
    journeys: list[list[NormalizedEvent]] = [[]]
    delivered_seen = False
    pending_labels: list[NormalizedEvent] = []
    for ev in order:
        if delivered_seen and ev.status == "label_created":
            pending_labels.append(ev)
            continue
        if delivered_seen and ev.status == "accepted":
            journeys.append([*pending_labels, ev])
            pending_labels = []
            delivered_seen = False
            continue
        if pending_labels:
            journeys[-1].extend(pending_labels)
            pending_labels = []
        journeys[-1].append(ev)
        if ev.status == "delivered":
            delivered_seen = True
    journeys[-1].extend(pending_labels)
    return [j for j in journeys if j] or [list(events)]


def _placed_or_min(placed: dict[int, datetime], ev: NormalizedEvent) -> datetime:
    at = placed.get(id(ev)) or ev.raw.occurred_at
    return at if at is not None else _MIN


def _bounds(events: Sequence[NormalizedEvent]) -> tuple[datetime | None, datetime | None]:
    instants = [e.raw.occurred_at for e in events if e.raw.occurred_at is not None]
    if not instants:
        return None, None
    return min(instants), max(instants)


def _score(unit: Unit, cand: Candidate) -> float:
    start, _end = unit.bounds
    score = 0.0
    if (
        cand.delivered_at is not None
        and start is not None
        and start > cand.delivered_at
        and any(e.status == "accepted" for e in unit.events)
    ):
        score -= 10_000
    unit_date = unit.result.ship_date or (start.date() if start else None)
    if unit_date is not None:
        diff = (unit_date - cand.ref_date).days
        score -= abs(diff) if diff >= -3 else 1_000 + abs(diff)
    for mine, theirs in (
        (unit.result.origin_country, cand.origin_country),
        (unit.result.destination_country, cand.destination_country),
    ):
        if mine and theirs:
            score += 5 if mine.upper() == theirs.upper() else -50
    return score


def _tier(cands: Sequence[Candidate], *, named: str, provider: str) -> list[Candidate]:
    if named != provider:
        physical = [c for c in cands if c.carrier == named]
        if physical:
            return physical
    reported = [c for c in cands if provider in (c.tracking_provider, c.carrier)]
    return reported or list(cands)


def assign(
    units: Sequence[Unit], candidates: Sequence[Candidate], *, provider: str
) -> list[tuple[Unit, Candidate | None]]:
    """Pair units of one number with candidate shipments (module docstring)."""
    if not units:
        return []
    if not candidates:
        return [(u, None) for u in units]
    named = units[0].result.carrier or provider
    pool = _tier(candidates, named=named, provider=provider)
    work = list(units)
    if len(pool) > 1:
        work = []
        for unit in units:
            journeys = split_journeys(unit.events)
            for i, events in enumerate(journeys):
                work.append(
                    Unit(
                        result=unit.result,
                        events=events,
                        fallback=unit.fallback if i == len(journeys) - 1 else None,
                        journey=i,
                    )
                )
    for unit in work:
        unit.bounds = _bounds(unit.events)
    if len(pool) == 1 and len(work) == 1:
        return [(work[0], pool[0])]
    pairs = sorted(
        ((_score(u, c), -c.leg, i, u, c) for i, u in enumerate(work) for c in pool),
        key=lambda p: (p[0], p[1], -p[2]),
        reverse=True,
    )
    taken_units: set[int] = set()
    taken_cands: set[int] = set()
    chosen: dict[int, Candidate] = {}
    for _score_value, _leg, i, _unit, cand in pairs:
        if i in taken_units or cand.id in taken_cands:
            continue
        taken_units.add(i)
        taken_cands.add(cand.id)
        chosen[i] = cand
    return [(u, chosen.get(i)) for i, u in enumerate(work)]
