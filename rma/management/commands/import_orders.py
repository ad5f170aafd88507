"""`manage.py import_orders --tenant SLUG FILE.csv` (DESIGN.md section 9).

Imports a Shopify orders export (Admin > Orders > Export) into one tenant
through `rma.order_services.order_import_csv`, then prints the summary: counts of
orders created / updated / unchanged / failed, each failed record with its
physical line number and reason, then the warnings. Exit status 1 when any
record failed or the file could not be read (unknown tenant, missing or
unreadable file, not an orders export: a one-line error on stderr, never a
traceback); 0 otherwise.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from returns_portal.tenancy.models import Tenant
from rma.importers.shopify import ExportFileError
from rma.order_services import ImportResult, order_import_csv


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_summary(result: ImportResult, *, tenant_slug: str, path: str) -> list[str]:
    """The summary's lines, as the command prints them."""
    lines = [
        f"Imported {path} into tenant {tenant_slug}: "
        f"{result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {result.failed} failed "
        f"({_plural(result.lines, 'line item')} written).",
    ]
    problems = list(result.errors)
    if result.stopped_at is not None:
        problems.append(result.stopped_at)
    if problems:
        lines.append(f"Failed ({_plural(len(problems), 'record')}):")
        lines.extend(f"  {issue}" for issue in problems)
    if result.warnings:
        lines.append(f"Warnings ({len(result.warnings)}):")
        lines.extend(f"  {issue}" for issue in result.warnings)
    return lines


class Command(BaseCommand):
    help = "Import a Shopify orders export (CSV) into a tenant; re-importing updates in place."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("file", metavar="FILE.csv", help="Shopify Admin > Orders > Export")

    def handle(self, *args, **opts):
        slug = opts["tenant"].strip().lower()
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"Unknown tenant '{opts['tenant']}'.", returncode=1)
        path = opts["file"]
        try:
            result = order_import_csv(tenant=tenant, stream_or_path=path, now=timezone.now())
        except ExportFileError as exc:
            raise CommandError(f"{path}: {exc}", returncode=1) from exc
        for line in format_summary(result, tenant_slug=tenant.slug, path=path):
            self.stdout.write(line)
        if not result.ok:
            raise CommandError(
                f"{_plural(result.failed, 'order')} not imported; see the lines above.",
                returncode=1,
            )
