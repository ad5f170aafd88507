"""What every new tenant gets from `rma`: its SLA policy (DESIGN.md section 6
defaults), a default return centre on the tenant's country and zone, its
return policy (30-day window, labels from `sandbox`) and the default return
reasons of DESIGN.md section 10."""

from __future__ import annotations

from django.utils.translation import gettext_noop
from simple_history.utils import bulk_create_with_history

from returns_portal.tenancy.models import Tenant
from rma.models import ReturnCentre, ReturnPolicy, ReturnReason, RmaSequence, SlaPolicy

#: `(code, label, requires_photo)` in display order (DESIGN.md section 10).
#: Labels are stored in English and translated at display time when unchanged.
DEFAULT_REASONS: tuple[tuple[str, str, bool], ...] = (
    ("damaged", gettext_noop("Arrived damaged or defective"), True),
    ("wrong_item", gettext_noop("Wrong item received"), True),
    ("too_small", gettext_noop("Too small"), False),
    ("too_large", gettext_noop("Too large"), False),
    ("not_as_described", gettext_noop("Not as described"), False),
    ("changed_mind", gettext_noop("Changed my mind"), False),
    ("other", gettext_noop("Other"), False),
)


def provision_tenant(tenant: Tenant) -> None:
    """Idempotent: creates only what is missing (an edited or deleted reason is left alone
    once the tenant has any reason)."""
    SlaPolicy.objects.get_or_create(tenant=tenant)
    RmaSequence.objects.get_or_create(tenant=tenant)
    ReturnPolicy.objects.get_or_create(tenant=tenant)
    if not ReturnReason.objects.filter(tenant=tenant).exists():
        bulk_create_with_history(
            [
                ReturnReason(
                    tenant=tenant,
                    code=code,
                    label=label,
                    requires_photo=requires_photo,
                    position=(i + 1) * 10,
                )
                for i, (code, label, requires_photo) in enumerate(DEFAULT_REASONS)
            ],
            ReturnReason,
        )
    if not ReturnCentre.objects.filter(tenant=tenant).exists():
        ReturnCentre.objects.create(
            tenant=tenant,
            name=f"{tenant.name} returns",
            country=tenant.country,
            subdivision=tenant.subdivision,
            time_zone=tenant.time_zone,
            is_default=True,
        )
