"""API authentication: `Authorization: Api-Key <key>` (DESIGN.md section 10).

The API's tenant is the key's. On a tenant host, a key of another tenant gets
the same 404 as a missing object, so a key never learns which hosts exist.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from returns_portal.tenancy.models import ApiKey
from returns_portal.tenancy.services import api_key_authenticate

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Sets `request.auth` to the `ApiKey` and `request.api_tenant` to its tenant."""

    def authenticate(self, request: Any) -> tuple[None, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").strip()
        if not header:
            return None
        keyword, _, raw = header.partition(" ")
        if keyword.lower() != KEYWORD.lower() or not raw.strip():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Api-Key <key>'.")
        key = api_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        host_tenant = getattr(request._request, "tenant", None)
        if host_tenant is not None and host_tenant.pk != key.tenant_id:
            raise exceptions.NotFound()
        request.api_tenant = key.tenant
        return (None, key)

    def authenticate_header(self, request: HttpRequest) -> str:
        return KEYWORD


class HasTenantApiKey(permissions.BasePermission):
    """Allows requests authenticated by an API key (its tenant is `request.api_tenant`)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.auth, ApiKey)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "returns_portal.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Api-Key <key>",
        }
