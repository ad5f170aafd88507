"""Host rules (DESIGN.md section 3, contract).

- `/healthz` answers on every host.
- `BASE_DOMAIN` serves `/admin/` (the user's tenants), `/api/`, `/webhooks/`,
  `/static/`; anything else there is a 404.
- `<slug>.<BASE_DOMAIN>` or a `TenantDomain` serves the tenant: the portal,
  `/api/`, `/admin/` (that tenant only), `/webhooks/`, `/static/`.
- Any other host: 404.

Sets `request.tenant` (a `Tenant` or None on BASE_DOMAIN) and, on BASE_DOMAIN,
`request.urlconf` to the base-domain URLconf.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

from returns_portal.tenancy.health import healthz_response
from returns_portal.tenancy.models import Tenant, TenantDomain

BASE_DOMAIN_PREFIXES = ("/admin/", "/api/", "/webhooks/", "/static/")
NOT_FOUND_BODY = b"<!doctype html><title>Not found</title><h1>Not found</h1>"


def request_host(request: HttpRequest) -> str:
    """The request's host name, lower-cased, without port or trailing dot."""
    raw = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    host = raw.strip().lower()
    if host.startswith("["):  # IPv6 literal
        host = host.split("]")[0] + "]"
    else:
        host = host.rsplit(":", 1)[0] if ":" in host else host
    return host.rstrip(".")


def tenant_for_host(host: str) -> Tenant | None:
    """The active tenant served on `host`, or None. One indexed query."""
    base = settings.BASE_DOMAIN
    suffix = "." + base
    if host.endswith(suffix):
        label = host[: -len(suffix)]
        if label and "." not in label:
            return Tenant.objects.filter(slug=label, is_active=True).first()
    domain = (
        TenantDomain.objects.select_related("tenant")
        .filter(domain=host, tenant__is_active=True)
        .first()
    )
    return domain.tenant if domain else None


class TenantHostMiddleware:
    """Resolves the tenant from the Host header and enforces the host rules."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.rstrip("/") == "/healthz":
            return healthz_response()
        host = request_host(request)
        if host == settings.BASE_DOMAIN:
            if not request.path_info.startswith(BASE_DOMAIN_PREFIXES):
                return HttpResponseNotFound(NOT_FOUND_BODY)
            request.tenant = None  # type: ignore[attr-defined]
            request.urlconf = "returns_portal.urls_base"  # type: ignore[attr-defined]
            return self.get_response(request)
        tenant = tenant_for_host(host)
        if tenant is None:
            return HttpResponseNotFound(NOT_FOUND_BODY)
        request.tenant = tenant  # type: ignore[attr-defined]
        return self.get_response(request)
