"""`manage.py prune_retention`: one retention run now (what the hourly beat job does).

Deletes expired API idempotency keys and old processed or rejected raw carrier
payloads (`returns_portal.retention`), under the `retention_prune` lease.
Prints one line per kind (`idempotency keys deleted: N`, `raw payloads
deleted: N`), or `skipped: lease held` when another run holds the lease.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from returns_portal.retention import LEASE_NAME, LEASE_TTL, retention_prune
from returns_portal.tenancy.leases import job_lease


class Command(BaseCommand):
    help = "Delete expired idempotency keys and old raw carrier payloads."

    def handle(self, *args, **options) -> None:
        with job_lease(LEASE_NAME, ttl=LEASE_TTL) as holder:
            if holder is None:
                self.stdout.write("skipped: lease held")
                return
            for line in retention_prune(now=timezone.now()).lines():
                self.stdout.write(line)
