"""Helpers for SLA and detection tests: milestones with their reactions, ingest-like
shipment updates, and a detection run returning counts per kind. Time is explicit."""

from __future__ import annotations

from datetime import UTC, datetime

from returns_portal import workflows
from returns_portal.detection import detection_run
from rma.services import milestone_reach, shipment_due_times_refresh, shipment_summary_update
from tests.factories import ShipmentFactory

#: Monday 2026-11-09 15:00 UTC (10:00 in New York, the `tenant` fixture's calendar).
T0 = datetime(2026, 11, 9, 15, 0, tzinfo=UTC)


def reach(rr, name, at, source="carrier", now=None):
    """`milestone_reach`, then run its reactions as the dispatch task would."""
    result = milestone_reach(
        tenant=rr.tenant,
        return_request=rr,
        name=name,
        reached_at=at,
        source=source,
        now=now or at,
    )
    if result.created:
        workflows.milestone_dispatch(milestone_id=result.milestone.pk, now=now or at)
    rr.refresh_from_db()
    return result


def ingest(shipment, now, **fields):
    """What carrier ingest does after storing events: summary fields, then due times."""
    shipment_summary_update(shipment=shipment, now=now, **fields)
    shipment_due_times_refresh(shipment=shipment, now=now)
    shipment.refresh_from_db()


def labelled_return(tenant, *, at=T0, **shipment_kwargs):
    """A return of `tenant` with a primary inbound shipment whose label was created at `at`."""
    shipment = ShipmentFactory(
        return_request__order__tenant=tenant, created_at=at, **shipment_kwargs
    )
    rr = shipment.return_request
    reach(rr, "label_created", at, source="system")
    shipment.refresh_from_db()
    return rr, shipment


def scanned_return(tenant, *, label_at=T0, scan_at, **shipment_kwargs):
    """A labelled return whose parcel the carrier accepted at `scan_at`."""
    rr, shipment = labelled_return(tenant, at=label_at, **shipment_kwargs)
    ingest(
        shipment,
        scan_at,
        status="accepted",
        status_at=scan_at,
        last_event_at=scan_at,
        last_scan_at=scan_at,
        shipped_at=scan_at,
    )
    reach(rr, "dropped_off", scan_at)
    reach(rr, "first_scan", scan_at)
    shipment.refresh_from_db()
    return rr, shipment


def detect(now, **kwargs) -> dict[str, dict]:
    """One detection run at `now`; `{kind: {opened, resolved, updated, escalated, alerts}}`."""
    summary = detection_run(now=now, **kwargs)
    return {line.pop("kind"): line for line in summary.lines()}


def changes(counts: dict[str, dict]) -> dict[str, dict]:
    """Only the kinds where something happened, without zero counts."""
    return {
        kind: {k: v for k, v in c.items() if v} for kind, c in counts.items() if any(c.values())
    }
