"""Status normalization and shipment-level derivation (DESIGN.md section 5). Pure.

Input: ``RawEvent``s from an adapter (``tracking.carriers``), the carrier's
mapping table (``tracking/carriers/mappings/<carrier>.toml``) and an optional
tenant override table ``{(carrier, raw_code): (status, reason)}``.
Output: ``NormalizedEvent``s, the shipment status, milestones and dedupe keys.

Rules implemented here (all from DESIGN.md section 5):

- An event's status depends only on that event, the carrier's mapping and the
  tenant's overrides; never on neighbours or list position. Unmapped -> ``unknown``.
- Shipment status: status-bearing events (not ``info``/``unknown``) ordered by
  (instant, stage rank, carrier sequence); ``delivered`` is terminal; exceptions
  are not sticky (a later scan clears them); no status-bearing event ->
  ``unknown``. Additionally a ``label_created`` event never moves a shipment back
  once a later stage or an exception was seen (pre-transit notices repeated
  after pickup are not a regression; the label is a milestone, not a state).
- A date-only (or unresolvable) event counts at the later of the local start of
  its day and the latest timed event of a lower stage, precision ``date``.
- A shipment-level status with its own timestamp becomes a synthetic event with
  ``source="summary"``; one without may only replace ``unknown``.
- Milestones: ``dropped_off`` = earliest ``accepted``; ``first_scan`` = earliest
  of accepted/in_transit/out_for_delivery/delivered; ``in_transit`` = earliest
  in_transit/out_for_delivery at or after first_scan; ``delivered`` = earliest
  delivered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tracking.carriers.base import RawEvent, TrackingResult
from tracking.carriers.mapping import CarrierMapping, load_mapping
from tracking.carriers.registry import get_adapter
from tracking.carriers.timeparse import local_start_of_day

#: Stage rank used to order events at the same instant and to place date-only
#: events. Exceptions sit with in_transit so the carrier's sequence decides.
STAGE_RANK: dict[str, int] = {
    "label_created": 0,
    "accepted": 1,
    "in_transit": 2,
    "exception": 2,
    "out_for_delivery": 3,
    "delivered": 4,
}
SCAN_STATUSES = frozenset({"accepted", "in_transit", "out_for_delivery", "delivered"})
NON_BEARING = frozenset({"info", "unknown"})
_MIN = datetime.min.replace(tzinfo=UTC)

Overrides = Mapping[tuple[str, str], tuple[str, "str | None"]]


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """A RawEvent with its normalized status.

    ``carrier``: the provider whose mapping applied (``aftership``);
    ``tracking_number``: the shipment's normalized number (may be None);
    ``status``/``exception_reason``: DESIGN section 5 words (reason only for
    ``exception``); ``mapping_key``: the table key that matched (None when
    unmapped) and ``lookup_code``: the normalized code a tenant override or the
    unmapped-codes list is keyed on; ``overridden``: a tenant override decided.
    """

    raw: RawEvent
    carrier: str
    tracking_number: str | None
    status: str
    exception_reason: str | None
    mapping_key: str | None
    lookup_code: str | None
    overridden: bool = False

    @property
    def occurred_at(self) -> datetime | None:
        return self.raw.occurred_at

    @property
    def source(self) -> str:
        return self.raw.source

    def as_output(self) -> dict[str, object]:
        """The ``normalize_events`` JSON object (DESIGN section 9 keys)."""
        at = self.raw.occurred_at
        return {
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else None,
            "occurred_at_local": self.raw.occurred_at_local,
            "time_precision": self.raw.time_precision,
            "status": self.status,
            "exception_reason": self.exception_reason,
            "location": self.raw.location.display() if self.raw.location else None,
            "carrier_code": self.raw.carrier_code,
            "description": self.raw.description,
        }


@dataclass(frozen=True, slots=True)
class ShipmentStatus:
    status: str
    exception_reason: str | None = None


@dataclass(frozen=True, slots=True)
class MilestoneReach:
    """When a milestone was reached by carrier events: aware UTC instant and
    precision (``date`` when it came from a date-only event)."""

    instant: datetime
    precision: str


@dataclass(frozen=True, slots=True)
class Milestones:
    dropped_off: MilestoneReach | None = None
    first_scan: MilestoneReach | None = None
    in_transit: MilestoneReach | None = None
    delivered: MilestoneReach | None = None


def _mapping_for(carrier: str) -> CarrierMapping:
    adapter = get_adapter(carrier)
    return load_mapping(adapter.mapping or carrier)


def _override_lookup(
    overrides: Overrides | None, carrier: str, codes: Iterable[str | None]
) -> tuple[str, str | None] | None:
    if not overrides:
        return None
    for code in codes:
        if code is not None and (carrier, code) in overrides:
            status, reason = overrides[(carrier, code)]
            return status, (reason if status == "exception" else None)
    return None


def classify(
    raw: RawEvent, *, carrier: str, overrides: Overrides | None = None
) -> tuple[str, str | None, str | None, str | None, bool]:
    """-> (status, reason, mapping_key, lookup_code, overridden) for one event,
    from that event alone (DESIGN section 5)."""
    mapping = _mapping_for(carrier)
    lookup_code = mapping.norm(raw.carrier_code)
    candidates = mapping.candidate_keys(raw.carrier_code, raw.status_hint, raw.detail_hint)
    if lookup_code is None and candidates:
        lookup_code = candidates[0]
    forced = _override_lookup(overrides, carrier, [lookup_code, *candidates])
    if forced is not None:
        return forced[0], forced[1], None, lookup_code, True
    status, reason, key, _source = mapping.lookup(
        raw.carrier_code, raw.status_hint, raw.detail_hint, raw.description
    )
    if (
        mapping.refine
        and raw.physical_carrier
        and raw.physical_code
        and status in ("in_transit", "unknown")
    ):
        try:
            physical = _mapping_for(raw.physical_carrier)
        except KeyError:
            physical = None
        if physical is not None:
            p_status, p_reason, p_key, _ = physical.lookup(
                raw.physical_code,
                raw.status_hint if raw.physical_carrier == carrier else None,
                None,
                raw.description,
            )
            if p_status in mapping.refine:
                return p_status, p_reason, p_key, lookup_code, False
    return status, reason, key, lookup_code, False


def normalize_event(
    raw: RawEvent,
    *,
    carrier: str,
    tracking_number: str | None = None,
    overrides: Overrides | None = None,
) -> NormalizedEvent:
    """Normalize one RawEvent with ``carrier``'s mapping (the provider code)."""
    status, reason, key, code, forced = classify(raw, carrier=carrier, overrides=overrides)
    return NormalizedEvent(raw, carrier, tracking_number, status, reason, key, code, forced)


def normalize_result(
    result: TrackingResult, *, overrides: Overrides | None = None, include_summary: bool = True
) -> list[NormalizedEvent]:
    """Normalize every event of a TrackingResult, in payload order, plus (when
    ``include_summary``) the synthetic ``source="summary"`` event made from a
    timestamped shipment-level status. ``normalize_events`` prints only the
    payload's own events (``include_summary=False``)."""
    out = [
        normalize_event(
            ev, carrier=result.provider, tracking_number=result.tracking_number, overrides=overrides
        )
        for ev in result.events
    ]
    if include_summary:
        synthetic = summary_event(result)
        if synthetic is not None:
            out.append(
                normalize_event(
                    synthetic,
                    carrier=result.provider,
                    tracking_number=result.tracking_number,
                    overrides=overrides,
                )
            )
    return out


def summary_event(result: TrackingResult) -> RawEvent | None:
    """The synthetic RawEvent for a shipment-level status that carries its own
    timestamp; None otherwise."""
    summary = result.summary
    if summary is None or summary.occurred_at is None:
        return None
    return RawEvent(
        carrier_code=summary.code,
        description=summary.description,
        occurred_at_local=summary.occurred_at_local,
        occurred_at=summary.occurred_at,
        time_precision="second",
        local_date=summary.occurred_at.date(),
        tz_source="offset",
        location=summary.location,
        sequence=len(result.events),
        index=len(result.events),
        status_hint=summary.hint,
        detail_hint=summary.detail,
        source="summary",
    )


def summary_fallback(
    result: TrackingResult, *, overrides: Overrides | None = None
) -> ShipmentStatus | None:
    """Status of an untimed shipment-level summary (may only replace ``unknown``)."""
    summary = result.summary
    if summary is None or summary.occurred_at is not None:
        return None
    raw = RawEvent(
        carrier_code=summary.code,
        description=summary.description,
        occurred_at_local=None,
        occurred_at=None,
        status_hint=summary.hint,
        detail_hint=summary.detail,
        source="summary",
    )
    status, reason, _k, _c, _f = classify(raw, carrier=result.provider, overrides=overrides)
    if status in NON_BEARING:
        return None
    return ShipmentStatus(status, reason)


def _is_timed(ev: NormalizedEvent) -> bool:
    return ev.raw.occurred_at is not None


def placed_instants(events: Sequence[NormalizedEvent]) -> dict[int, datetime]:
    """id(event) -> the instant the event counts at. Timed events count at
    their instant; date-only / unresolvable ones at the later of the local start
    of their day and the latest timed event of a lower stage (DESIGN section 5).
    Depends on the set of events only, not their order."""
    timed_by_rank: dict[int, datetime] = {}
    for ev in events:
        if ev.raw.occurred_at is not None and ev.status in STAGE_RANK:
            rank = STAGE_RANK[ev.status]
            current = timed_by_rank.get(rank)
            if current is None or ev.raw.occurred_at > current:
                timed_by_rank[rank] = ev.raw.occurred_at
    placed: dict[int, datetime] = {}
    for ev in events:
        if ev.raw.occurred_at is not None:
            placed[id(ev)] = ev.raw.occurred_at
            continue
        rank = STAGE_RANK.get(ev.status, 2)
        lower = [at for r, at in timed_by_rank.items() if r < rank]
        candidates = list(lower)
        if ev.raw.local_date is not None and ev.raw.time_flag is None:
            candidates.append(local_start_of_day(ev.raw.local_date, ev.raw.tz_name))
        placed[id(ev)] = max(candidates) if candidates else _MIN
    return placed


def _order_key(ev: NormalizedEvent, placed: Mapping[int, datetime]) -> tuple[object, ...]:
    raw = ev.raw
    return (
        placed[id(ev)],
        STAGE_RANK.get(ev.status, 2),
        raw.sequence,
        0 if raw.source == "event" else 1,
        ev.status,
        ev.exception_reason or "",
        raw.carrier_code or "",
        raw.description,
    )


def shipment_status(
    events: Sequence[NormalizedEvent], *, fallback: ShipmentStatus | None = None
) -> ShipmentStatus:
    """The shipment's status from its events only (DESIGN section 5).

    ``fallback`` is an untimed shipment-level summary status: used only when the
    events give ``unknown``. Never returns None. Independent of list order and
    of duplicated events.
    """
    bearing = [ev for ev in events if ev.status not in NON_BEARING]
    if not bearing:
        return fallback or ShipmentStatus("unknown")
    if any(ev.status == "delivered" for ev in bearing):
        return ShipmentStatus("delivered")
    placed = placed_instants(bearing)
    current: NormalizedEvent | None = None
    for ev in sorted(bearing, key=lambda e: _order_key(e, placed)):
        if (
            ev.status == "label_created"
            and current is not None
            and current.status != "label_created"
        ):
            continue
        current = ev
    assert current is not None
    return ShipmentStatus(current.status, current.exception_reason)


def derive_milestones(events: Sequence[NormalizedEvent]) -> Milestones:
    """Carrier-derived parcel milestones (DESIGN section 5) with precision.

    Order- and duplicate-independent. Date-only events are placed per
    :func:`placed_instants` and reported with precision ``date``; an event
    that cannot be placed at all (its time rejected or missing, no timed event
    of a lower stage) reaches no milestone.
    """
    bearing = [ev for ev in events if ev.status not in NON_BEARING]
    if not bearing:
        return Milestones()
    placed = placed_instants(bearing)

    def earliest(
        statuses: frozenset[str] | set[str], at_or_after: datetime | None = None
    ) -> MilestoneReach | None:
        best: tuple[datetime, int, str] | None = None
        for ev in bearing:
            if ev.status not in statuses:
                continue
            at = placed[id(ev)]
            if at == _MIN:
                # No instant at all (a rejected or missing time and no earlier
                # stage to follow): the event still counts for the status, but
                # a milestone is never dated 0001-01-01.
                continue
            if at_or_after is not None and at < at_or_after:
                continue
            precision = ev.raw.time_precision if _is_timed(ev) else "date"
            # at equal instants a timed reading beats a date-only one
            cand = (at, 1 if precision == "date" else 0, precision)
            if best is None or cand < best:
                best = cand
        return MilestoneReach(best[0], best[2]) if best else None

    first_scan = earliest(SCAN_STATUSES)
    return Milestones(
        dropped_off=earliest({"accepted"}),
        first_scan=first_scan,
        in_transit=earliest(
            {"in_transit", "out_for_delivery"}, first_scan.instant if first_scan else None
        ),
        delivered=earliest({"delivered"}),
    )


def dedupe_key(event: NormalizedEvent) -> str:
    """Stable key, unique per shipment, for storing an event once.

    Built from the provider, the normalized raw code (the description when the
    payload has no code), the status and reason, the instant rounded to the
    minute (else the local text), and the folded location. The description is
    left out where a code exists because carriers re-word it between polls.
    """
    raw = event.raw
    at = raw.occurred_at
    when = at.strftime("%Y-%m-%dT%H:%MZ") if at else f"local:{raw.occurred_at_local or ''}"
    code = event.lookup_code or ""
    what = code if code else "desc:" + " ".join(raw.description.lower().split())
    loc = raw.location.display() if raw.location else None
    where = " ".join((loc or "").upper().split())
    parts = (event.carrier, what, event.status, event.exception_reason or "", when, where)
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def dedupe(events: Iterable[NormalizedEvent]) -> list[NormalizedEvent]:
    """Drop later events whose dedupe key was already seen (first one wins)."""
    seen: set[str] = set()
    out = []
    for ev in events:
        key = dedupe_key(ev)
        if key not in seen:
            seen.add(key)
            out.append(ev)
    return out


def with_overrides(
    events: Sequence[NormalizedEvent], overrides: Overrides
) -> list[NormalizedEvent]:
    """Re-normalize stored ``unknown`` events only with a (new) override table
    (DESIGN section 5: overrides re-normalize stored unknowns, nothing else)."""
    out = []
    for ev in events:
        if ev.status != "unknown":
            out.append(ev)
            continue
        status, reason, key, code, forced = classify(
            ev.raw, carrier=ev.carrier, overrides=overrides
        )
        out.append(
            replace(
                ev,
                status=status,
                exception_reason=reason,
                mapping_key=key,
                lookup_code=code,
                overridden=forced,
            )
        )
    return out
