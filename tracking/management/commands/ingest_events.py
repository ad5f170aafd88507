"""`manage.py ingest_events --tenant SLUG --carrier CODE [--tracking-number N] FILE`
(DESIGN.md section 9).

The same path as a webhook or a polling answer (`tracking_events_ingest`,
source `command`): the raw file is stored, parsed, normalized with the
tenant's overrides, matched to the tenant's shipments, de-duplicated and
stored; statuses and milestones are recomputed. Prints a one-line JSON summary
`{"events": n, "stored": n, "duplicates": n, "unmatched_numbers": [..]}`.
Exit 0 when the payload parsed, 2 when it cannot be parsed (or the carrier is
unknown / the file unreadable), 1 for an unknown tenant.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from returns_portal.tenancy.models import Tenant
from tracking.ingest import IngestError, tracking_events_ingest
from tracking.management.commands._common import adapter_or_exit, parse_instant, read_file


class Command(BaseCommand):
    help = "Ingest a carrier payload for a tenant, as a webhook or a poll would."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--carrier", required=True, help="carrier or aggregator code")
        parser.add_argument("--tracking-number", help="number of a payload that names none")
        parser.add_argument("--now", help="ingest time (ISO 8601; default: now)")
        parser.add_argument("file", help="payload file (JSON or XML); - for stdin")

    def handle(self, *args: Any, **options: Any) -> None:
        adapter = adapter_or_exit(options["carrier"])
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"unknown tenant {options['tenant']!r}", returncode=1)
        now = parse_instant(options.get("now"), name="--now") or timezone.now()
        body = read_file(options["file"])
        try:
            result = tracking_events_ingest(
                tenant=tenant,
                provider=adapter.code,
                body=body,
                tracking_number=options.get("tracking_number"),
                source="command",
                now=now,
            )
        except IngestError as exc:
            raise CommandError(f"cannot ingest {options['file']}: {exc}", returncode=2) from exc
        self.stdout.write(json.dumps(result.as_summary()))
