"""The one ingest service (DESIGN.md section 8, flow 3), shared by webhooks,
polling, `manage.py ingest_events` and `POST /api/v1/tracking-events/`.

`tracking_events_ingest` stores the raw payload first, parses it with the
provider's adapter, normalizes with the tenant's overrides, matches shipments
(`tracking.matching`), stores new events once per shipment (unique dedupe
key), recomputes each touched shipment's status and summary from *all* its
stored events and reaches carrier milestones through `rma.services`
(reactions go through the milestone outbox). Numbers without a shipment are
kept (`UnmatchedTrackingNumber`) and attached when one appears.

No network call happens here: polling fetches before calling in. Lock order
per payload: the matched shipment rows (`select_for_update`, by primary key),
then each shipment's return row (inside `milestone_reach`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F

from returns_portal.tenancy.models import Tenant
from rma import services as rma_services
from rma.models import Milestone, Shipment, ShipmentDirection
from tracking.carriers.base import CarrierAdapter, PayloadError, TrackingResult
from tracking.carriers.registry import get_adapter
from tracking.matching import Candidate, Unit, assign
from tracking.models import (
    PayloadState,
    RawPayload,
    TrackingEvent,
    UnmatchedPayload,
    UnmatchedTrackingNumber,
)
from tracking.normalize import (
    NON_BEARING,
    SCAN_STATUSES,
    MilestoneReach,
    NormalizedEvent,
    ShipmentStatus,
    classify,
    dedupe_key,
    derive_milestones,
    normalize_result,
    placed_instants,
    shipment_status,
    summary_fallback,
)
from tracking.selectors import shipment_normalized_events, status_overrides_for

log = logging.getLogger(__name__)

#: Carrier milestones ingest may reach (DESIGN.md section 5); the rest are not the carrier's.
CARRIER_MILESTONES = ("dropped_off", "first_scan", "in_transit", "delivered")
#: Headers worth keeping with a stored payload (never URL tokens or cookies).
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "x-hmac-signature",
        "x-hmac-signature-v2",
        "x-timestamp",
        "x-path",
        "aftership-hmac-sha256",
        "shippo-auth-signature",
        "x-karrio-signature",
        "x-request-id",
        "x-forwarded-for",
    }
)


class IngestError(Exception):
    """A payload could not be ingested. `code`: `unknown_provider` or `payload`
    (cannot be parsed); the message says why. The raw payload stays stored
    (state `rejected`) when it got that far."""

    def __init__(self, message: str, *, code: str, payload: RawPayload | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.payload = payload


@dataclass(frozen=True, slots=True)
class ShipmentOutcome:
    """What one payload did to one shipment: `found` is False when the provider
    answered "not found" with no events for it (polling backs off on that)."""

    shipment_id: int
    found: bool
    events: int
    stored: int
    status: str


@dataclass(slots=True)
class IngestResult:
    """Summary of one ingest.

    - `events`: normalized events the payload yielded (its own events plus
      synthetic summary events), for every number in it.
    - `stored`: events newly stored; `duplicates`: events of matched numbers
      already stored (from an earlier payload or repeated in this one).
    - `unmatched_numbers`: numbers in the payload with no shipment of the
      tenant (sorted); their events are kept for later attachment.
    - `shipments`: per touched shipment, a `ShipmentOutcome`.
    """

    events: int = 0
    stored: int = 0
    duplicates: int = 0
    unmatched_numbers: list[str] = field(default_factory=list)
    shipments: dict[int, ShipmentOutcome] = field(default_factory=dict)
    payload_id: int | None = None

    def as_summary(self) -> dict[str, object]:
        """The `ingest_events` / API summary `{events, stored, duplicates, unmatched_numbers}`."""
        return {
            "events": self.events,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unmatched_numbers": list(self.unmatched_numbers),
        }


def canonical_number(number: str) -> str:
    """Whitespace removed, upper-cased: the form shipment numbers are compared in."""
    return "".join(number.split()).upper()


def headers_subset(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers kept with a payload (`KEPT_HEADERS`), lower-cased names, values cut at 500."""
    return {k.lower(): str(v)[:500] for k, v in headers.items() if k.lower() in KEPT_HEADERS}


def raw_payload_store(
    *,
    tenant: Tenant,
    provider: str,
    body: bytes,
    source: str,
    now: datetime,
    tracking_number: str | None = None,
    content_type: str = "",
    headers: Mapping[str, str] | None = None,
    verified: bool = True,
    idempotency_key: str = "",
) -> RawPayload:
    """Store a payload's raw bytes (state `received`) and commit it before anything else.

    `verified=False` for webhook deliveries whose signature is checked next.
    """
    with transaction.atomic():
        return RawPayload.objects.create(
            tenant=tenant,
            provider=provider,
            source=source,
            body=bytes(body),
            body_sha256=hashlib.sha256(body).hexdigest(),
            content_type=content_type[:100],
            headers=headers_subset(headers or {}),
            tracking_number=(tracking_number or "")[:64],
            received_at=now,
            verified_at=now if verified else None,
            idempotency_key=idempotency_key[:200],
        )


def payload_parse(
    *,
    adapter: CarrierAdapter,
    body: bytes,
    now: datetime,
    tracking_number: str | None = None,
    payload_id: int | None = None,
) -> list[TrackingResult]:
    """`adapter.parse`, with every failure reported as `PayloadError`.

    Adapters raise `PayloadError` for a body they do not understand. Parsing is
    pure (no I/O, no database), so any other exception is an adapter bug that
    the same bytes hit every time: retrying cannot help. It becomes
    `PayloadError("could not parse: <type>: <message>")` and one warning line
    (no traceback: the stored payload reproduces it, and `replay_webhooks`
    takes it again once the adapter is fixed). Every caller (webhooks, ingest,
    polling, the commands, the API) answers it as a 400 / exit 2 / `rejected`.
    """
    try:
        return adapter.parse(bytes(body), tracking_number=tracking_number, now=now)
    except PayloadError:
        raise
    except Exception as exc:
        reason = f"could not parse: {type(exc).__name__}: {exc}"
        log.warning(
            "%s adapter failed on payload %s: %s", adapter.code, payload_id or "(unstored)", reason
        )
        raise PayloadError(reason[:500]) from exc


def raw_payload_reject(*, payload: RawPayload, code: str, error: str, now: datetime) -> None:
    """Mark a payload rejected with a reason (kept for `replay_webhooks`). The
    reason may quote the payload: NULs are dropped (PostgreSQL text refuses them)."""
    error = error.replace("\x00", "")
    RawPayload.objects.filter(pk=payload.pk).update(
        state=PayloadState.REJECTED, error_code=code[:20], error=error[:500], processed_at=now
    )
    payload.state, payload.error_code, payload.error = PayloadState.REJECTED, code, error[:500]


def tracking_events_ingest(
    *,
    tenant: Tenant,
    provider: str,
    body: bytes,
    source: str,
    now: datetime,
    tracking_number: str | None = None,
    delivery: RawPayload | None = None,
    content_type: str = "",
    idempotency_key: str = "",
) -> IngestResult:
    """Ingest one carrier payload for `tenant`.

    - `provider`: the adapter code that produced the bytes (`ups`, `easypost`,
      `sandbox`); `body`: the raw bytes (JSON or XML); `tracking_number`: the
      number when the payload does not name it; `source`: `webhook`, `poll`,
      `command` or `api`; `now`: aware UTC, used for the far-future check and
      as the write time; `delivery`: an already stored (and verified) payload
      row, e.g. a webhook delivery being processed or replayed.
    - Without `delivery`, the raw bytes are stored first and committed.
    - Raises `IngestError(code="unknown_provider")` for an unknown provider and
      `IngestError(code="payload")` when the adapter cannot parse the body, an
      adapter bug included (`payload_parse`): the payload row is then
      `rejected` with the reason, never left owed.
    - Idempotent: ingesting the same payload again stores nothing new
      (`duplicates` counts the repeats) and reaches no milestone twice.
    """
    try:
        adapter = get_adapter(provider)
    except KeyError as exc:
        raise IngestError(f"unknown carrier code {provider!r}", code="unknown_provider") from exc
    payload = delivery or raw_payload_store(
        tenant=tenant,
        provider=provider,
        body=body,
        source=source,
        now=now,
        tracking_number=tracking_number,
        content_type=content_type,
        idempotency_key=idempotency_key,
    )
    number_hint = tracking_number or (payload.tracking_number or None)
    try:
        results = payload_parse(
            adapter=adapter,
            body=body,
            tracking_number=number_hint,
            now=now,
            payload_id=payload.pk,
        )
    except PayloadError as exc:
        raw_payload_reject(payload=payload, code="payload", error=str(exc), now=now)
        raise IngestError(str(exc), code="payload", payload=payload) from exc
    result = tracking_results_ingest(
        tenant=tenant, provider=provider, results=results, now=now, payload=payload
    )
    return result


def _candidates(shipments: Sequence[Shipment]) -> list[Candidate]:
    out = []
    for s in shipments:
        ref = s.shipped_at or s.created_at
        out.append(
            Candidate(
                id=s.pk,
                carrier=s.carrier,
                tracking_provider=s.tracking_provider,
                leg=s.leg,
                ref_date=ref.date(),
                origin_country=s.origin_country,
                destination_country=s.destination_country,
                delivered_at=s.status_at if s.status == "delivered" else None,
            )
        )
    return out


@transaction.atomic
def tracking_results_ingest(
    *,
    tenant: Tenant,
    provider: str,
    results: Sequence[TrackingResult],
    now: datetime,
    payload: RawPayload | None = None,
    record: bool = True,
) -> IngestResult:
    """Normalize, match, store and recompute for parsed `results` (one payload's,
    or any subset of them: the outcome does not depend on how a shipment's
    events are chunked, ordered or repeated across calls). See the module
    docstring for matching, locking and milestones. Stored events reference
    `payload`; with `record` the payload is marked processed with the summary
    (re-ingesting a kept payload for a new shipment passes `record=False`).
    """
    overrides = status_overrides_for(tenant=tenant)
    out = IngestResult(payload_id=payload.pk if payload else None)
    units_by_number: dict[str, list[Unit]] = defaultdict(list)
    anonymous: list[Unit] = []
    for result in results:
        events = normalize_result(result, overrides=overrides)
        out.events += len(events)
        unit = Unit(
            result=result, events=events, fallback=summary_fallback(result, overrides=overrides)
        )
        if result.tracking_number:
            units_by_number[canonical_number(result.tracking_number)].append(unit)
        else:
            anonymous.append(unit)
    for unit in anonymous:
        log.info(
            "%s payload result without a tracking number: %d event(s) not stored",
            provider,
            len(unit.events),
        )

    numbers = sorted(units_by_number)
    shipments = (
        list(
            Shipment.objects.select_for_update(of=("self",))
            .select_related("return_request")
            .filter(tenant=tenant, tracking_number__in=numbers)
            .order_by("pk")
        )
        if numbers
        else []
    )
    by_number: dict[str, list[Shipment]] = defaultdict(list)
    for s in shipments:
        s.tenant = tenant  # the same row: saves a lazy load per shipment
        by_number[canonical_number(s.tracking_number)].append(s)
    shipment_by_id = {s.pk: s for s in shipments}

    per_shipment: dict[int, list[Unit]] = defaultdict(list)
    unmatched: dict[str, list[Unit]] = defaultdict(list)
    for number in numbers:
        pairs = assign(
            units_by_number[number], _candidates(by_number.get(number, [])), provider=provider
        )
        for unit, cand in pairs:
            if cand is None:
                unmatched[number].append(unit)
            else:
                per_shipment[cand.id].append(unit)

    for shipment_id in sorted(per_shipment):
        shipment = shipment_by_id[shipment_id]
        units = per_shipment[shipment_id]
        outcome = _store_and_recompute(
            tenant=tenant, shipment=shipment, units=units, now=now, payload=payload
        )
        out.shipments[shipment_id] = outcome
        out.stored += outcome.stored
        out.duplicates += outcome.events - outcome.stored

    for number, units in sorted(unmatched.items()):
        out.unmatched_numbers.append(number)
        if payload is not None and record and any(u.events for u in units):
            _unmatched_keep(
                tenant=tenant,
                provider=provider,
                number=number,
                units=units,
                payload=payload,
                now=now,
            )

    if payload is not None and record:
        RawPayload.objects.filter(pk=payload.pk).update(
            state=PayloadState.PROCESSED,
            processed_at=now,
            error_code="",
            error="",
            result=out.as_summary(),
        )
        payload.state = PayloadState.PROCESSED
    return out


def _row(
    *,
    tenant: Tenant,
    shipment: Shipment,
    ev: NormalizedEvent,
    key: str,
    payload: RawPayload | None,
    now: datetime,
) -> TrackingEvent:
    raw = ev.raw
    return TrackingEvent(
        tenant=tenant,
        shipment=shipment,
        payload=payload,
        provider=ev.carrier,
        source=raw.source,
        occurred_at=raw.occurred_at,
        occurred_at_local=(raw.occurred_at_local or "")[:64],
        local_date=raw.local_date,
        time_precision=raw.time_precision,
        tz_source=raw.tz_source,
        tz_name=raw.tz_name or "",
        time_flag=raw.time_flag or "",
        status=ev.status,
        exception_reason=ev.exception_reason or "",
        location=((raw.location.display() if raw.location else None) or "")[:255],
        carrier_code=(raw.carrier_code or "")[:100],
        lookup_code=(ev.lookup_code or "")[:100],
        mapping_key=(ev.mapping_key or "")[:200],
        overridden=ev.overridden,
        status_hint=(raw.status_hint or "")[:100],
        detail_hint=(raw.detail_hint or "")[:100],
        physical_carrier=(raw.physical_carrier or "")[:32],
        physical_code=(raw.physical_code or "")[:100],
        description=raw.description,
        sequence=raw.sequence,
        dedupe_key=key,
        received_at=now,
    )


def storage_key(ev: NormalizedEvent) -> str:
    """The event's dedupe key as stored: `tracking.normalize.dedupe_key` of the
    event normalized by the carrier's mapping alone. A tenant override changes
    the stored status, never the key, so an event first stored as `unknown`
    (and re-normalized later) or read again after an override is still the
    same event."""
    if not ev.overridden:
        return dedupe_key(ev)
    status, reason, key, code, _forced = classify(ev.raw, carrier=ev.carrier)
    return dedupe_key(
        replace(ev, status=status, exception_reason=reason, mapping_key=key, lookup_code=code)
    )


def _store_and_recompute(
    *,
    tenant: Tenant,
    shipment: Shipment,
    units: Sequence[Unit],
    now: datetime,
    payload: RawPayload | None,
) -> ShipmentOutcome:
    """Store the units' new events on `shipment` (locked by the caller) and recompute it."""
    keyed: dict[str, NormalizedEvent] = {}
    total = 0
    for unit in units:
        for ev in unit.events:
            total += 1
            keyed.setdefault(storage_key(ev), ev)
    existing = (
        set(
            TrackingEvent.objects.filter(
                tenant=tenant, shipment=shipment, dedupe_key__in=list(keyed)
            ).values_list("dedupe_key", flat=True)
        )
        if keyed
        else set()
    )
    rows = [
        _row(tenant=tenant, shipment=shipment, ev=ev, key=key, payload=payload, now=now)
        for key, ev in keyed.items()
        if key not in existing
    ]
    if rows:
        TrackingEvent.objects.bulk_create(rows, ignore_conflicts=True)
    fallback = next((u.fallback for u in units if u.fallback is not None), None)
    found = total > 0 or any(u.result.found for u in units)
    status = shipment_tracking_recompute(shipment=shipment, now=now, fallback=fallback)
    return ShipmentOutcome(shipment.pk, found, total, len(rows), status.status)


def _status_at(events: Sequence[NormalizedEvent], status: ShipmentStatus) -> datetime | None:
    bearing = [e for e in events if e.status not in NON_BEARING]
    if not bearing:
        return None
    placed = placed_instants(bearing)
    same = [
        placed[id(e)]
        for e in bearing
        if e.status == status.status and (e.exception_reason or None) == status.exception_reason
    ]
    real = [at for at in same if at.year > 1]
    if not real:
        return None
    return min(real) if status.status == "delivered" else max(real)


def shipment_tracking_recompute(
    *, shipment: Shipment, now: datetime, fallback: ShipmentStatus | None = None
) -> ShipmentStatus:
    """Recompute `shipment`'s status and summary from all its stored events and
    reach its carrier milestones. Call inside a transaction holding the
    shipment row lock (`tracking_results_ingest` does).

    Writes, through `rma.services.shipment_summary_update` and only what
    changed: `status`, `exception_reason`, `status_at` (when the current status
    began; the first delivery for `delivered`), `last_scan_at`,
    `last_scan_location`, `last_scan_time_zone` (the latest physical scan:
    accepted, in transit, out for delivery, delivered or exception),
    `last_event_at` (latest event other than `info`), `number_check` (while
    still `unknown`) and `next_poll_at` (cleared once delivered). `fallback`
    (an untimed shipment-level status) only replaces `unknown`; with no status
    from events and no fallback the stored status is kept. Milestones
    `dropped_off`, `first_scan`, `in_transit`, `delivered` are reached with
    source `carrier` for inbound shipments (idempotent; reactions through the
    milestone outbox).
    """
    events = shipment_normalized_events(shipment=shipment)
    status = shipment_status(events, fallback=fallback)
    fields: dict[str, object] = {}
    if status.status == "unknown" and fallback is None:
        # Nothing in the events says anything: keep what is stored (unknown, or
        # an earlier payload's untimed shipment-level status).
        status = ShipmentStatus(shipment.status, shipment.exception_reason or None)
    else:
        if shipment.status != status.status:
            fields["status"] = status.status
        if shipment.exception_reason != (status.exception_reason or ""):
            fields["exception_reason"] = status.exception_reason or ""
        at = _status_at(events, status)
        if at is not None and shipment.status_at != at:
            fields["status_at"] = at

    placed = placed_instants([e for e in events if e.status not in NON_BEARING])
    scans = [e for e in events if e.status in SCAN_STATUSES or e.status == "exception"]
    if scans:

        def scan_key(e: NormalizedEvent) -> tuple:
            at = e.raw.occurred_at or placed.get(id(e))
            return (at is not None, at or now, e.raw.sequence)

        last = max(scans, key=scan_key)
        last_at = last.raw.occurred_at or placed.get(id(last))
        if last_at is not None and last_at.year > 1 and shipment.last_scan_at != last_at:
            fields["last_scan_at"] = last_at
        loc = (last.raw.location.display() if last.raw.location else None) or ""
        if shipment.last_scan_location != loc[:255]:
            fields["last_scan_location"] = loc[:255]
        tz = last.raw.tz_name or ""
        if shipment.last_scan_time_zone != tz:
            fields["last_scan_time_zone"] = tz
    moving = [e.raw.occurred_at for e in events if e.status != "info" and e.raw.occurred_at]
    if moving and shipment.last_event_at != max(moving):
        fields["last_event_at"] = max(moving)
    if shipment.number_check == "unknown":
        check = tracking_number_check(shipment.carrier, shipment.tracking_number)
        if check != "unknown":
            fields["number_check"] = check
    if status.status == "delivered" and shipment.next_poll_at is not None:
        fields["next_poll_at"] = None
    if fields:
        rma_services.shipment_summary_update(shipment=shipment, now=now, **fields)
    changed = bool(fields)

    if shipment.direction == ShipmentDirection.INBOUND and events:
        milestones = derive_milestones(events)
        return_request = shipment.return_request
        stored = {
            m.name: m
            for m in Milestone.objects.filter(
                tenant_id=shipment.tenant_id,
                return_request_id=shipment.return_request_id,
                name__in=CARRIER_MILESTONES,
            )
        }
        # Furthest first: the return's status moves once, straight to the
        # furthest milestone the events show (one audit row, not four).
        for name in reversed(CARRIER_MILESTONES):
            reach = getattr(milestones, name)
            if reach is None or not _milestone_changes(stored.get(name), reach):
                continue
            rma_services.milestone_reach(
                tenant=shipment.tenant,
                return_request=return_request,
                name=name,
                reached_at=reach.instant,
                source="carrier",
                precision=reach.precision,
                now=now,
                refine_same_source=True,
            )
            changed = True
    if changed:
        # The SLA clock follows the facts: no-first-scan, no-movement and transit
        # due times (rma.sla) depend only on the status, events and milestones stored.
        rma_services.shipment_due_times_refresh(shipment=shipment, now=now)
    return status


def _milestone_changes(existing: Milestone | None, reach: MilestoneReach) -> bool:
    """Whether `milestone_reach` would write anything for this carrier reading
    (a read-only pre-check that saves its locks when nothing changes; the
    rules stay `milestone_reach`'s)."""
    if existing is None or existing.source != "carrier":
        return True
    if reach.instant < existing.reached_at:
        return True
    return existing.precision == "date" and (existing.reached_at, existing.precision) != (
        reach.instant,
        reach.precision,
    )


def tracking_number_check(carrier: str, number: str) -> str:
    """`valid`, `invalid` or `unknown` (no check-digit scheme / unknown carrier)."""
    try:
        adapter = get_adapter(carrier)
    except KeyError:
        return "unknown"
    verdict = adapter.check_digit_valid(adapter.normalize_tracking_number(number))
    if verdict is None:
        return "unknown"
    return "valid" if verdict else "invalid"


def _unmatched_keep(
    *,
    tenant: Tenant,
    provider: str,
    number: str,
    units: Sequence[Unit],
    payload: RawPayload,
    now: datetime,
) -> None:
    carrier = units[0].result.carrier or provider
    row = UnmatchedTrackingNumber.objects.filter(
        tenant=tenant, provider=provider, tracking_number=number
    ).first()
    if row is None:
        try:
            with transaction.atomic():
                row = UnmatchedTrackingNumber.objects.create(
                    tenant=tenant,
                    provider=provider,
                    carrier=carrier,
                    tracking_number=number,
                    first_seen_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            row = UnmatchedTrackingNumber.objects.get(
                tenant=tenant, provider=provider, tracking_number=number
            )
            _unmatched_touch(row, now)
    else:
        _unmatched_touch(row, now)
    UnmatchedPayload.objects.bulk_create(
        [UnmatchedPayload(tenant=tenant, unmatched=row, payload=payload)], ignore_conflicts=True
    )


def _unmatched_touch(row: UnmatchedTrackingNumber, now: datetime) -> None:
    UnmatchedTrackingNumber.objects.filter(pk=row.pk).update(
        last_seen_at=now, times_seen=F("times_seen") + 1, attached_at=None, shipment=None
    )


__all__ = [
    "IngestError",
    "IngestResult",
    "ShipmentOutcome",
    "canonical_number",
    "payload_parse",
    "raw_payload_store",
    "shipment_tracking_recompute",
    "storage_key",
    "tracking_events_ingest",
    "tracking_number_check",
    "tracking_results_ingest",
]
