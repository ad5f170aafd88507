"""Tenancy services: create tenants and API keys, resolve who may do what where.

Writes happen here (STYLE.md "Layers"); views, admin and commands call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from returns_portal.tenancy import provisioning
from returns_portal.tenancy.models import (
    ROLE_RANK,
    ApiKey,
    Membership,
    Role,
    Tenant,
    TenantDomain,
    hash_api_key,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
    from django.http import HttpRequest


class TenantExists(Exception):
    """`tenant_create` was asked for a slug that is taken."""


@transaction.atomic
def tenant_create(
    *,
    slug: str,
    name: str,
    domains: list[str] | None = None,
    country: str = "US",
    time_zone: str = "UTC",
    currency: str = "USD",
    support_email: str = "",
    escalation_email: str = "",
) -> Tenant:
    """Create a tenant, its domains (the first is primary) and run every app's provisioner.

    Raises `TenantExists` when the slug is taken and `ValidationError` for a bad
    slug (not a DNS label, or reserved), zone or domain.
    """
    slug = slug.strip().lower()
    if Tenant.objects.filter(slug=slug).exists():
        raise TenantExists(slug)
    tenant = Tenant(
        slug=slug,
        name=name,
        country=country.upper(),
        time_zone=time_zone,
        currency=currency.upper(),
        support_email=support_email,
        escalation_email=escalation_email,
    )
    tenant.full_clean()
    tenant.save()
    for i, host in enumerate(domains or []):
        domain = TenantDomain(
            tenant=tenant, domain=host.strip().lower().rstrip("."), is_primary=i == 0
        )
        domain.full_clean()
        domain.save()
    provisioning.provision(tenant)
    return tenant


def tenant_primary_host(tenant: Tenant) -> str:
    """The tenant's primary host: its primary `TenantDomain`, else `<slug>.<BASE_DOMAIN>`."""
    domain = tenant.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    return domain or f"{tenant.slug}.{settings.BASE_DOMAIN}"


def tenant_absolute_url(tenant: Tenant, path: str) -> str:
    """Absolute URL on the tenant's primary host with `PUBLIC_SCHEME` and `PUBLIC_PORT`.

    The port is omitted when it is the scheme's default (80/443) or unset.
    """
    scheme = settings.PUBLIC_SCHEME
    port = settings.PUBLIC_PORT
    default = {"http": 80, "https": 443}.get(scheme)
    netloc = tenant_primary_host(tenant)
    if port and port != default:
        netloc = f"{netloc}:{port}"
    if not path.startswith("/"):
        path = "/" + path
    return f"{scheme}://{netloc}{path}"


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    raw_key: str


@transaction.atomic
def api_key_create(*, tenant: Tenant, name: str = "default") -> CreatedApiKey:
    """Create an API key for `tenant`. The raw key is returned once and never stored."""
    raw, lookup_id, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(tenant=tenant, name=name, lookup_id=lookup_id, key_hash=key_hash)
    return CreatedApiKey(api_key=key, raw_key=raw)


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key` (constant-time hash comparison), or None."""
    import hmac

    from returns_portal.tenancy.models import API_KEY_PREFIX

    raw_key = raw_key.strip()
    if not raw_key.startswith(API_KEY_PREFIX) or "." not in raw_key:
        return None
    lookup_id = raw_key[len(API_KEY_PREFIX) :].split(".", 1)[0]
    key = (
        ApiKey.objects.select_related("tenant")
        .filter(lookup_id=lookup_id, revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw_key)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


@transaction.atomic
def membership_set(*, tenant: Tenant, user: AbstractBaseUser, role: str) -> Membership:
    """Give `user` `role` in `tenant` (create or change). Never touches staff/superuser flags."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    membership, _created = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    return membership


def user_tenant_roles(user: User | AnonymousUser, *, host_tenant: Tenant | None) -> dict[int, str]:
    """`{tenant_id: role}` the user may act in on this host.

    Superusers are admins of every tenant (of the host's tenant only on a
    tenant host). Others get their memberships, intersected with the host's
    tenant on a tenant host (DESIGN.md section 3). Inactive tenants are left out.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    if user.is_superuser:
        tenants = Tenant.objects.filter(is_active=True)
        if host_tenant is not None:
            tenants = tenants.filter(pk=host_tenant.pk)
        return dict.fromkeys(tenants.values_list("pk", flat=True), Role.ADMIN.value)
    memberships = Membership.objects.filter(user=user, tenant__is_active=True)
    if host_tenant is not None:
        memberships = memberships.filter(tenant=host_tenant)
    return dict(memberships.values_list("tenant_id", "role"))


def request_tenant_roles(request: HttpRequest) -> dict[int, str]:
    """`user_tenant_roles` for the request, computed once per request."""
    cached = getattr(request, "_tenant_roles", None)
    if cached is None:
        cached = user_tenant_roles(request.user, host_tenant=getattr(request, "tenant", None))
        request._tenant_roles = cached  # type: ignore[attr-defined]
    return cached


def role_at_least(role: str | None, needed: str) -> bool:
    """True when `role` ranks at or above `needed` (viewer < agent < admin)."""
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


def tenants_with_role(request: HttpRequest, needed: str) -> list[int]:
    """Ids of the tenants where the request's user has at least `needed` on this host."""
    return [
        tid for tid, role in request_tenant_roles(request).items() if role_at_least(role, needed)
    ]
