"""The admin site: access comes from per-tenant memberships (DESIGN.md section 3).

A user may use `/admin/` when active and either a superuser or a member of a
tenant served on this host (on BASE_DOMAIN: any of their tenants). `is_staff`
is not used, so tenant admins never need to grant it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from returns_portal.tenancy.services import request_tenant_roles


class TenantAdminAuthenticationForm(AdminAuthenticationForm):
    """Admin login that accepts members of the host's tenant instead of `is_staff`."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Please enter the correct %(username)s and password for an account with "
            "access to this tenant. Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user) -> None:
        if not user.is_active:
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        request = self.request
        if request is None:  # the admin's login view always passes the request
            raise forms.ValidationError(self.error_messages["invalid_login"], code="invalid_login")
        request.user = user
        request._tenant_roles = None  # type: ignore[attr-defined]  # the per-request role cache
        if not user.is_superuser and not request_tenant_roles(request):
            raise forms.ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class TenantAdminSite(admin.AdminSite):
    site_header = _("Returns portal")
    site_title = _("Returns portal admin")
    index_title = _("Returns, exceptions and configuration")
    login_form = TenantAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        return bool(request_tenant_roles(request))

    def each_context(self, request: HttpRequest) -> dict:
        context = super().each_context(request)
        tenant = getattr(request, "tenant", None)
        if tenant is not None:
            context["site_header"] = f"{tenant.name}: {self.site_header}"
        return context
