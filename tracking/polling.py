"""Polling carriers for due shipments (beat `tracking.poll_due`, JobLease
`poll_carriers`; DESIGN.md section 8, flow 4).

Rules:

- **Due**: `next_poll_at <= now` (partial index `shipment_poll_due`), status
  not `delivered`, oldest due first, at most `limit` per run.
- **Who may poll**: a tenant polls a provider only with an active
  `CarrierAccount` for it; the `sandbox` needs none. A shipment whose provider
  cannot be polled is unscheduled (`next_poll_at` null) until an account is
  saved (`carrier_account_save` schedules it again).
- **Batches and rate**: numbers go to `adapter.fetch` in batches of
  `adapter.poll_batch_size`, at most `adapter.poll_calls_per_minute` calls per
  (tenant, provider) per run (the beat runs every minute); the rest stay due.
- **Network outside transactions**: `fetch` runs with no transaction open;
  the answer goes through `tracking_events_ingest` (source `poll`) like a
  webhook.
- **Next poll** after an answer with events: by status (`POLL_INTERVALS`:
  out for delivery 1 h, exception 2 h, accepted/in transit 4 h, label
  created/unknown 6 h); `delivered` stops polling (null).
- **Backoff** (`poll_failures` counts consecutive misses): a "not found yet"
  answer (no events for the number, e.g. UPS TW0001 or FedEx NOTFOUND right
  after the label) waits 1 h x 2^(n-1); a carrier or parse error waits
  15 min x 2^(n-1); both capped at 24 h. A found answer resets the count.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from rma import services as rma_services
from rma.models import Shipment
from tracking.carriers.base import CarrierAdapter, CarrierError, Credentials
from tracking.carriers.registry import get_adapter
from tracking.ingest import IngestError, tracking_events_ingest
from tracking.selectors import (
    ACCOUNTLESS,
    carrier_account_credentials,
    carrier_account_get,
)

log = logging.getLogger(__name__)

POLL_INTERVALS: dict[str, timedelta] = {
    "out_for_delivery": timedelta(hours=1),
    "exception": timedelta(hours=2),
    "accepted": timedelta(hours=4),
    "in_transit": timedelta(hours=4),
    "label_created": timedelta(hours=6),
    "unknown": timedelta(hours=6),
}
NOT_FOUND_BASE = timedelta(hours=1)
ERROR_BASE = timedelta(minutes=15)
BACKOFF_CAP = timedelta(hours=24)
FETCH_TIMEOUT = 20.0


def poll_backoff(failures: int, *, base: timedelta) -> timedelta:
    """`base` x 2^(failures-1), capped at `BACKOFF_CAP` (failures >= 1)."""
    exponent = max(0, min(failures - 1, 16))
    return min(BACKOFF_CAP, base * (2**exponent))


@dataclass(slots=True)
class PollReport:
    """What a run did: `calls` to carriers, `shipments` polled, `found` with
    events, `not_found`, `errors` (shipments whose call failed), `skipped`
    (not pollable: unscheduled), `deferred` (left due by the rate limit)."""

    calls: int = 0
    shipments: int = 0
    found: int = 0
    not_found: int = 0
    errors: int = 0
    skipped: int = 0
    deferred: int = 0
    stored: int = 0
    messages: list[str] = field(default_factory=list)


def _credentials(
    adapter: CarrierAdapter, tenant_id: int, rows: list[Shipment], now: datetime
) -> Credentials | None:
    if adapter.code in ACCOUNTLESS:
        values = {"as_of": now.isoformat()}
        for s in rows:
            values[f"label_at:{s.tracking_number}"] = s.created_at.isoformat()
        return Credentials(values=values)
    account = carrier_account_get(tenant=tenant_id, carrier=adapter.code)
    if account is None:
        return None
    return carrier_account_credentials(account)


def _schedule(shipment: Shipment, *, now: datetime, **fields: object) -> None:
    rma_services.shipment_summary_update(shipment=shipment, now=now, **fields)


def poll_due_run(
    *,
    now: datetime,
    tenant_id: int | None = None,
    limit: int = 2000,
    timeout: float = FETCH_TIMEOUT,
) -> PollReport:
    """Poll what is due at `now` (aware UTC), optionally for one tenant only.

    Must be called outside any transaction (it calls carriers). Idempotent per
    answer (ingest stores events once). Returns a `PollReport`.
    """
    report = PollReport()
    due = (
        Shipment.objects.filter(next_poll_at__lte=now)
        .filter(~Q(status="delivered"))
        .select_related("tenant", "return_request")
        .order_by("next_poll_at", "pk")
    )
    if tenant_id is not None:
        due = due.filter(tenant_id=tenant_id)
    groups: dict[tuple[int, str], list[Shipment]] = defaultdict(list)
    for shipment in due[:limit]:
        groups[(shipment.tenant_id, shipment.tracking_provider)].append(shipment)

    for (group_tenant, provider), rows in groups.items():
        try:
            adapter = get_adapter(provider)
            credentials = _credentials(adapter, group_tenant, rows, now)
        except KeyError:
            credentials, adapter = None, None
        if adapter is None or credentials is None:
            for s in rows:
                _schedule(s, now=now, next_poll_at=None)
            report.skipped += len(rows)
            continue
        size = max(1, adapter.poll_batch_size)
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        allowed = max(1, adapter.poll_calls_per_minute)
        for batch in batches[allowed:]:
            report.deferred += len(batch)
        for batch in batches[:allowed]:
            _poll_batch(adapter, credentials, batch, now=now, timeout=timeout, report=report)
    return report


def _poll_batch(
    adapter: CarrierAdapter,
    credentials: Credentials,
    batch: list[Shipment],
    *,
    now: datetime,
    timeout: float,
    report: PollReport,
) -> None:
    tenant = batch[0].tenant
    numbers = list(dict.fromkeys(s.tracking_number for s in batch))
    report.calls += 1
    report.shipments += len(batch)
    try:
        body = adapter.fetch(numbers, credentials, timeout=timeout)
        result = tracking_events_ingest(
            tenant=tenant, provider=adapter.code, body=body, source="poll", now=now
        )
    except (CarrierError, IngestError) as exc:
        report.errors += len(batch)
        report.messages.append(f"{tenant.slug}/{adapter.code}: {exc}")
        log.warning("polling %s for %s failed: %s", adapter.code, tenant.slug, exc)
        for s in batch:
            failures = s.poll_failures + 1
            _schedule(
                s,
                now=now,
                poll_failures=failures,
                next_poll_at=now + poll_backoff(failures, base=ERROR_BASE),
            )
        return
    report.stored += result.stored
    for s in batch:
        s.refresh_from_db(fields=["status", "next_poll_at", "poll_failures"])
        outcome = result.shipments.get(s.pk)
        if s.status == "delivered":
            report.found += 1
            _schedule(s, now=now, next_poll_at=None, poll_failures=0)
        elif outcome is not None and outcome.events > 0:
            report.found += 1
            _schedule(
                s,
                now=now,
                poll_failures=0,
                next_poll_at=now + POLL_INTERVALS.get(s.status, timedelta(hours=4)),
            )
        else:
            report.not_found += 1
            failures = s.poll_failures + 1
            _schedule(
                s,
                now=now,
                poll_failures=failures,
                next_poll_at=now + poll_backoff(failures, base=NOT_FOUND_BASE),
            )
