"""Retention: what the project forgets, and when (beat, hourly, under a JobLease).

- API idempotency keys older than `settings.IDEMPOTENCY_KEY_TTL` (24 h by
  default, Stripe's window): `returns_portal.api.idempotency` already treats
  them as expired; this deletes the rows.
- Raw carrier payloads after `settings.RAW_PAYLOAD_RETENTION_DAYS` (90 by
  default, 0 keeps them forever), as `tracking.services.raw_payloads_prune`
  decides (processed and rejected ones only; payloads owed processing, failed
  ones and those waiting for an unmatched number are kept).

Everything else (returns, events, refunds, notifications, audit rows) is the
merchant's record and is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from returns_portal.models import IdempotencyKey
from tracking import services as tracking_services

LEASE_NAME = "retention_prune"
LEASE_TTL = timedelta(minutes=30)


@dataclass(frozen=True)
class PruneResult:
    """Rows deleted by one run, per kind."""

    idempotency_keys: int
    raw_payloads: int

    def lines(self) -> list[str]:
        return [
            f"idempotency keys deleted: {self.idempotency_keys}",
            f"raw payloads deleted: {self.raw_payloads}",
        ]


def idempotency_keys_prune(*, now: datetime, batch_size: int = 5000, max_batches: int = 50) -> int:
    """Delete idempotency keys created at or before `now - IDEMPOTENCY_KEY_TTL`,
    across tenants, in batches of `batch_size`. Returns the count."""
    cutoff = now - settings.IDEMPOTENCY_KEY_TTL
    expired = IdempotencyKey.objects.filter(created_at__lte=cutoff).order_by("created_at", "pk")
    deleted = 0
    for _batch in range(max_batches):
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            count, _per_model = expired.filter(pk__in=ids).delete()
        deleted += count
    return deleted


def retention_prune(*, now: datetime) -> PruneResult:
    """One retention run at `now` (UTC); see the module docstring for the rules."""
    keys = idempotency_keys_prune(now=now)
    payloads = 0
    if settings.RAW_PAYLOAD_RETENTION_DAYS > 0:
        payloads = tracking_services.raw_payloads_prune(
            before=now - timedelta(days=settings.RAW_PAYLOAD_RETENTION_DAYS)
        )
    return PruneResult(idempotency_keys=keys, raw_payloads=payloads)
