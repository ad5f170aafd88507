"""`manage.py seed_demo`: the demo tenant, its staff login, orders from a
Shopify-format export and returns at every milestone; prints each return's
tracking URL (DESIGN.md section 9)."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from returns_portal.demo import demo_seed, portal_url


class Command(BaseCommand):
    help = "Create or refresh the demo tenant and print its URLs and staff login."

    def handle(self, *args, **opts):
        result = demo_seed(now=timezone.now())
        self.stdout.write(f"Demo tenant: {result.tenant.name}")
        self.stdout.write(f"  portal:  {portal_url(result.tenant)}")
        self.stdout.write(f"  admin:   {portal_url(result.tenant)}admin/")
        self.stdout.write(f"  staff login: {result.staff_username} / {result.staff_password}")
        self.stdout.write(
            f"  orders: {result.orders_created} created, {result.orders_updated} updated"
        )
        for rma_number, label, url in result.tracking_urls:
            self.stdout.write(f"  {rma_number} ({label}): {url}")
