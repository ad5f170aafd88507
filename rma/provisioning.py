"""What every new tenant gets from `rma`: its SLA policy (DESIGN.md section 6
defaults) and a default return centre on the tenant's country and zone."""

from __future__ import annotations

from returns_portal.tenancy.models import Tenant
from rma.models import ReturnCentre, RmaSequence, SlaPolicy


def provision_tenant(tenant: Tenant) -> None:
    """Idempotent: creates only what is missing."""
    SlaPolicy.objects.get_or_create(tenant=tenant)
    RmaSequence.objects.get_or_create(tenant=tenant)
    if not ReturnCentre.objects.filter(tenant=tenant).exists():
        ReturnCentre.objects.create(
            tenant=tenant,
            name=f"{tenant.name} returns",
            country=tenant.country,
            subdivision=tenant.subdivision,
            time_zone=tenant.time_zone,
            is_default=True,
        )
