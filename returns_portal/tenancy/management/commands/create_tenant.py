"""`manage.py create_tenant SLUG --name N [--domain HOST]...` (DESIGN.md section 9).

Creates the tenant, its domains (the first is primary) and runs every app's
provisioner. Exits 1 when the slug exists or is invalid.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from returns_portal.tenancy.services import TenantExists, tenant_absolute_url, tenant_create


class Command(BaseCommand):
    help = "Create a tenant (slug is a DNS label; www, admin, api, static are reserved)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--domain", action="append", default=[], help="extra host; the first is primary"
        )
        parser.add_argument("--country", default="US")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--currency", default="USD")
        parser.add_argument("--support-email", default="")
        parser.add_argument("--escalation-email", default="")

    def handle(self, *args, **opts):
        try:
            tenant = tenant_create(
                slug=opts["slug"],
                name=opts["name"],
                domains=opts["domain"],
                country=opts["country"],
                time_zone=opts["time_zone"],
                currency=opts["currency"],
                support_email=opts["support_email"],
                escalation_email=opts["escalation_email"],
            )
        except TenantExists as exc:
            raise CommandError(f"Tenant '{exc}' already exists.", returncode=1) from exc
        except ValidationError as exc:
            messages = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Invalid tenant: {messages}", returncode=1) from exc
        self.stdout.write(
            f"Created tenant {tenant.slug} ({tenant.name}): {tenant_absolute_url(tenant, '/')}"
        )
