"""Tenancy core (DESIGN.md section 3): tenants, their hosts, people, API keys.

This app imports no other app of the project. Every tenant-owned model of the
other apps subclasses `TenantOwned`, whose queryset has `.for_tenant()`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import zoneinfo
from typing import Any

import holidays
from babel.numbers import list_currencies
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

#: Slugs that would collide with infrastructure host names.
RESERVED_SLUGS = frozenset({"www", "admin", "api", "static"})

dns_label_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
    _(
        "A slug is a DNS label: lower-case letters, digits and inner hyphens, at most 63 characters."
    ),
)


def validate_slug_not_reserved(value: str) -> None:
    """Refuse the reserved slugs `www`, `admin`, `api`, `static` (DESIGN.md section 9)."""
    if value in RESERVED_SLUGS:
        raise ValidationError(_("'%(slug)s' is reserved."), params={"slug": value})


def validate_time_zone(value: str) -> None:
    """Accept only IANA zone names known to zoneinfo/tzdata."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(_("Unknown time zone '%(tz)s'."), params={"tz": value}) from exc


@functools.cache
def _holiday_countries() -> dict[str, frozenset[str]]:
    """ISO 3166-1 alpha-2 code -> its subdivision codes, upper-cased, as the `holidays`
    package (the business-day calendar, `rma.sla`) knows them."""
    return {
        code: frozenset(s.upper() for s in subdivisions)
        for code, subdivisions in holidays.list_supported_countries().items()
        if len(code) == 2
    }


def validate_country_code(value: str) -> None:
    """An ISO 3166-1 alpha-2 country the business-day calendar knows (`US`, `de`); not `ZZ`."""
    if (value or "").strip().upper() not in _holiday_countries():
        raise ValidationError(
            _("'%(code)s' is not an ISO 3166-1 country code."), params={"code": value}
        )


def subdivision_error(country: str, subdivision: str) -> ValidationError | None:
    """Why `subdivision` (ISO 3166-2, the part after the hyphen: `CA` for US-CA) is not one
    of `country`'s for public holidays, or None when it is (or is empty, or the country
    is unknown: the country's own check says so)."""
    code = (subdivision or "").strip().upper()
    known = _holiday_countries().get((country or "").strip().upper())
    if not code or known is None or code in known:
        return None
    return ValidationError(
        _("'%(code)s' is not a subdivision of %(country)s."),
        params={"code": subdivision, "country": country.upper()},
    )


@functools.cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def validate_currency_code(value: str) -> None:
    """An ISO 4217 code that CLDR (Babel, as `rma.money` uses it) knows: `USD`; not `ZZZ`."""
    if (value or "").strip().upper() not in _known_currencies():
        raise ValidationError(
            _("'%(code)s' is not an ISO 4217 currency code."), params={"code": value}
        )


_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def validate_host_name(value: str) -> None:
    """A host name alone (`returns.example.com`): dot-separated DNS labels, at least two,
    at most 253 characters, a top-level label that is not all digits; no scheme, path,
    port or spaces. Case and a trailing dot are ignored."""
    host = (value or "").strip().lower().rstrip(".")
    if any(c in host for c in "/:@?#") or any(c.isspace() for c in host):
        raise ValidationError(
            _("Give the host name alone, like returns.example.com (no scheme, path or port).")
        )
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_HOST_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(_("'%(host)s' is not a host name."), params={"host": value})


class Tenant(models.Model):
    """A merchant. Its slug names its host `<slug>.<BASE_DOMAIN>`."""

    slug = models.CharField(
        max_length=63, unique=True, validators=[dns_label_validator, validate_slug_not_reserved]
    )
    name = models.CharField(max_length=200)
    country = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_country_code],
        help_text=_("ISO 3166-1 alpha-2"),
    )
    subdivision = models.CharField(
        max_length=10, blank=True, help_text=_("ISO 3166-2 subdivision for public holidays")
    )
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    currency = models.CharField(
        max_length=3, default="USD", validators=[validate_currency_code], help_text=_("ISO 4217")
    )
    brand_color = models.CharField(
        max_length=7,
        default="#1f4e79",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("A colour like #1f4e79."))],
    )
    logo_url = models.URLField(blank=True)
    support_email = models.EmailField(blank=True)
    escalation_email = models.EmailField(blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def clean(self) -> None:
        self.country = (self.country or "").strip().upper()
        self.subdivision = (self.subdivision or "").strip().upper()
        self.currency = (self.currency or "").strip().upper()
        error = subdivision_error(self.country, self.subdivision)
        if error is not None:
            raise ValidationError({"subdivision": error})

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class TenantDomain(models.Model):
    """A host name that serves a tenant. One per tenant is primary (used in absolute URLs)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    is_primary = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(is_primary=True),
                name="tenantdomain_one_primary",
            )
        ]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = self.domain.strip().lower().rstrip(".")
        super().save(*args, **kwargs)

    def clean(self) -> None:
        """Lower-cases the host (before the uniqueness check); refuses what is not a host
        name (`validate_host_name`) and the hosts the middleware gives another meaning:
        `BASE_DOMAIN` itself and `<label>.<BASE_DOMAIN>`, which is always the tenant slug
        `label`'s host (DESIGN.md section 3)."""
        self.domain = (self.domain or "").strip().lower().rstrip(".")
        base = settings.BASE_DOMAIN
        if self.domain == base:
            raise ValidationError({"domain": _("This is the base domain; it serves no tenant.")})
        try:
            validate_host_name(self.domain)
        except ValidationError as exc:
            raise ValidationError({"domain": exc}) from exc
        if self.domain.endswith("." + base):
            label = self.domain[: -len(base) - 1]
            # The tenant may be unsaved (an inline on the tenant's add page).
            has_tenant = self.tenant_id is not None or TenantDomain.tenant.is_cached(self)
            own = self.tenant.slug if has_tenant else None
            if "." not in label and label != own:
                raise ValidationError(
                    {
                        "domain": _("%(host)s is reserved for the tenant slug '%(slug)s'.")
                        % {"host": self.domain, "slug": label}
                    }
                )


class Role(models.TextChoices):
    """Per-tenant roles, ordered: viewer < agent < admin (DESIGN.md section 3)."""

    VIEWER = "viewer", _("Viewer")
    AGENT = "agent", _("Agent")
    ADMIN = "admin", _("Admin")


ROLE_RANK = {Role.VIEWER: 1, Role.AGENT: 2, Role.ADMIN: 3}


class Membership(models.Model):
    """A user's role in one tenant. Admin-site access comes from memberships, not `is_staff`."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant.slug}: {self.role}"


API_KEY_PREFIX = "rp_"


def hash_api_key(raw_key: str) -> str:
    """SHA-256 hex of a whole key. Keys carry 256 random bits, so a fast hash is enough."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    """A tenant's API key, stored hashed. The raw key is shown once, at creation.

    Format: `rp_<8-char lookup id>.<43-char secret>`; `Authorization: Api-Key <key>`.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    lookup_id = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name} ({API_KEY_PREFIX}{self.lookup_id}…)"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return `(raw_key, lookup_id, key_hash)` for a new key."""
        lookup_id = secrets.token_hex(4)
        raw = f"{API_KEY_PREFIX}{lookup_id}.{secrets.token_urlsafe(32)}"
        return raw, lookup_id, hash_api_key(raw)


class JobLease(models.Model):
    """Single-flight lease for a periodic job (STYLE.md "Background work").

    Not tenant-owned: it names a job (`detect_exceptions`, `poll_carriers`, ...).
    Taken and released through `returns_portal.tenancy.leases`.
    """

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200)
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"


class TenantQuerySet(models.QuerySet):
    """Queryset of a tenant-owned model; `.for_tenant(tenant)` scopes it explicitly."""

    def for_tenant(self, tenant: Tenant | int) -> TenantQuerySet:
        tenant_id = tenant if isinstance(tenant, int) else tenant.pk
        return self.filter(tenant_id=tenant_id)


class TenantOwned(models.Model):
    """Abstract base of every tenant-owned model: a protected FK to its tenant.

    Subclasses put `tenant` first in their unique constraints and composite
    indexes (DESIGN.md section 3). There is no implicit scoping: callers pass
    the tenant and use `.for_tenant()`.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
