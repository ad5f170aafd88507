"""`manage.py create_api_key --tenant SLUG [--name N]` (DESIGN.md section 9).

The key alone is the last line of stdout; everything else goes to stderr.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from returns_portal.tenancy.models import Tenant
from returns_portal.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", default="default")

    def handle(self, *args, **opts):
        tenant = Tenant.objects.filter(slug=opts["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant '{opts['tenant']}'.", returncode=1)
        created = api_key_create(tenant=tenant, name=opts["name"])
        self.stderr.write(
            f"API key '{created.api_key.name}' for {tenant.slug} (shown once; store it now):"
        )
        self.stdout.write(created.raw_key)
