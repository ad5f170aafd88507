"""`manage.py replay_webhooks [--provider P] [--tenant SLUG] [--since T] [--id N]`
(DESIGN.md section 9).

Processes stored deliveries again through the ingest service, e.g. after a
parser fix. Selection: verified payloads (their signature checked out when
they arrived) that are not processed: `received`, `failed`, and `rejected`
because the body could not be parsed; `--id N` replays that payload whatever
its state (still only if verified). `--since` is ISO 8601 with `Z` or an
offset (received at or after). Unsigned, tampered, stale and duplicate
deliveries are never replayed. Replays are idempotent: events are stored once.

Each payload is replayed in its own transaction (`raw_payload_replay`): one
that fails rolls back alone, is left `rejected` (still unparseable) or
`failed` (any other error) with the reason, and the rest carry on.

Prints one JSON line per payload: `{"id", "provider", "tenant", "state",
"events", "stored", "duplicates", "unmatched_numbers"}` or `{"id", ...,
"state", "error"}`; then a summary on stderr. Exit codes (DESIGN.md section 9
gives none for this command; these follow `ingest_events`), decided after
every selected payload was tried: 0 when all were ingested; 1 when any failed
for another reason than its input (an `internal` failure, which needs a
look); else 2 when any still cannot be parsed or verified; 1 for an unknown
tenant or `--id`.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from returns_portal.tenancy.models import Tenant
from tracking.ingest import IngestError
from tracking.management.commands._common import parse_instant
from tracking.models import PayloadState, RawPayload
from tracking.webhooks import UNPARSEABLE_CODES, raw_payload_replay


class Command(BaseCommand):
    help = "Replay stored webhook deliveries (and other kept payloads) through ingest."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--provider", help="only this provider code")
        parser.add_argument("--tenant", help="only this tenant (slug)")
        parser.add_argument("--since", help="received at or after (ISO 8601)")
        parser.add_argument("--id", type=int, help="only this payload id (any state)")
        parser.add_argument("--limit", type=int, default=10_000)

    def handle(self, *args: Any, **options: Any) -> None:
        qs = RawPayload.objects.select_related("tenant").filter(verified_at__isnull=False)
        if options.get("tenant"):
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"unknown tenant {options['tenant']!r}", returncode=1)
            qs = qs.filter(tenant=tenant)
        if options.get("provider"):
            qs = qs.filter(provider=options["provider"])
        since = parse_instant(options.get("since"), name="--since")
        if since is not None:
            qs = qs.filter(received_at__gte=since)
        if options.get("id") is not None:
            qs = RawPayload.objects.select_related("tenant").filter(pk=options["id"])
            if options.get("tenant"):
                qs = qs.filter(tenant__slug=options["tenant"])
            if not qs.exists():
                raise CommandError(f"no payload {options['id']}", returncode=1)
        else:
            qs = qs.filter(
                Q(state__in=[PayloadState.RECEIVED, PayloadState.FAILED])
                | Q(state=PayloadState.REJECTED, error_code="payload")
            )
        replayed = unparseable = failed = 0
        for payload in qs.order_by("received_at", "pk")[: options["limit"]]:
            line: dict[str, object] = {
                "id": payload.pk,
                "provider": payload.provider,
                "tenant": payload.tenant.slug,
            }
            try:
                result = raw_payload_replay(payload=payload, now=timezone.now())
            except IngestError as exc:
                if exc.code in UNPARSEABLE_CODES:
                    unparseable += 1
                else:
                    failed += 1
                line.update(state=payload.state, error=str(exc))
            except Exception as exc:  # recording the failure failed too (database gone)
                failed += 1
                line.update(state=payload.state, error=f"{type(exc).__name__}: {exc}")
            else:
                replayed += 1
                line.update(state="processed", **result.as_summary())
            self.stdout.write(json.dumps(line))
        self.stderr.write(f"replayed {replayed}, still unparseable {unparseable}, failed {failed}")
        if failed:
            raise CommandError(f"{failed} payload(s) failed; see their errors", returncode=1)
        if unparseable:
            raise CommandError(
                f"{unparseable} payload(s) still cannot be parsed or verified", returncode=2
            )
