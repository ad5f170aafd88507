"""`manage.py detect_exceptions [--now ISO8601] [--dry-run] [--no-notify]` (DESIGN.md section 9).

Runs every detector in-process under the `detect_exceptions` `JobLease`,
released when done: runs one after another all work, two at once do the work
once (the second prints `{"skipped": "lease held"}` and exits 0). `--now` is an
ISO 8601 instant with `Z` or an offset (a naive time or one in the future is
refused, exit 2); one in the past is a replay that only opens and escalates,
never resolves because time went backwards. Prints one JSON line per kind: `{"kind", "opened",
"resolved", "updated", "escalated", "alerts"}`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from returns_portal.detection import (
    LEASE_NAME,
    LEASE_TTL,
    REPLAY_TOLERANCE,
    detection_run,
    is_replay,
)
from returns_portal.tenancy.leases import job_lease


def parse_instant(text: str) -> datetime:
    """An aware instant from ISO 8601 with `Z` or an offset; `CommandError` otherwise."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise CommandError(f"--now: not an ISO 8601 time: {text!r}", returncode=2) from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise CommandError(f"--now needs Z or an offset: {text!r}", returncode=2)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise CommandError(f"--now is out of range: {text!r}", returncode=2) from exc


class Command(BaseCommand):
    help = "Run every exception detector once (under the detect_exceptions lease)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="judge at this instant (ISO 8601 with Z or offset)")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would change, write nothing"
        )
        parser.add_argument(
            "--no-notify", action="store_true", help="queue no customer alerts or e-mails"
        )

    def handle(self, *args, **options) -> None:
        wall_now = timezone.now()
        now = parse_instant(options["now"]) if options["now"] else wall_now
        if now > wall_now + REPLAY_TOLERANCE:
            # Exceptions opened "in the future" would be resolved by the next beat run
            # before they were opened, and their alerts would already be sent.
            raise CommandError(
                f"--now is in the future ({options['now']}): detection judges the present "
                "or replays the past",
                returncode=2,
            )
        resolve = not is_replay(now, wall_now)
        with job_lease(LEASE_NAME, ttl=LEASE_TTL) as holder:
            if holder is None:
                self.stdout.write(json.dumps({"skipped": "lease held"}))
                return
            summary = detection_run(
                now=now,
                resolve=resolve,
                notify=not options["no_notify"],
                dry_run=options["dry_run"],
            )
        for line in summary.lines():
            self.stdout.write(json.dumps(line))
        if not resolve:
            self.stderr.write("replay at a past --now: opened and escalated only, resolved nothing")
