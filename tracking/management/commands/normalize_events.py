"""`manage.py normalize_events --carrier CODE [--tracking-number N] FILE` (DESIGN.md section 9).

Prints one JSON object per event on stdout, in payload order, with the keys
`carrier, tracking_number, occurred_at, occurred_at_local, time_precision,
status, exception_reason, location, carrier_code, description`. Only the
payload's own events (summary events made from shipment-level statuses are
stored by ingest, not printed). `--tracking-number` names the number of a
payload that does not carry one; when the payload holds several numbers and
one of them is N, only N's events are printed. Exit 0 when parsed, 2 when the
input cannot be parsed (or the carrier is unknown / the file unreadable).
No database access, no tenant overrides: the carrier's mapping only.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from tracking.carriers.base import PayloadError
from tracking.ingest import canonical_number, payload_parse
from tracking.management.commands._common import adapter_or_exit, parse_instant, read_file
from tracking.normalize import normalize_result


class Command(BaseCommand):
    help = "Print a carrier payload's events, normalized, one JSON object per line."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--carrier", required=True, help="carrier or aggregator code")
        parser.add_argument("--tracking-number", help="number of a payload that names none")
        parser.add_argument(
            "--now", help="reference time for the far-future check (ISO 8601; default: now)"
        )
        parser.add_argument("file", help="payload file (JSON or XML); - for stdin")

    def handle(self, *args: Any, **options: Any) -> None:
        adapter = adapter_or_exit(options["carrier"])
        now = parse_instant(options.get("now"), name="--now") or timezone.now()
        body = read_file(options["file"])
        number = options.get("tracking_number")
        try:
            results = payload_parse(adapter=adapter, body=body, tracking_number=number, now=now)
        except PayloadError as exc:
            raise CommandError(f"cannot parse {options['file']}: {exc}", returncode=2) from exc
        if number:
            wanted = canonical_number(number)
            named = [
                r
                for r in results
                if r.tracking_number and canonical_number(r.tracking_number) == wanted
            ]
            if named:
                results = named
        for result in results:
            for event in normalize_result(result, include_summary=False):
                self.stdout.write(json.dumps(event.as_output(), ensure_ascii=False))
