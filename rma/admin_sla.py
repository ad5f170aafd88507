"""SLA policy editing in the admin (issue 5): the policy's fieldsets and its
per-route transit targets, edited inline by the tenant's admins with history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from returns_portal.tenancy.models import Role
from returns_portal.tenancy.services import request_tenant_roles, role_at_least
from rma.models import SlaTransitRoute


def sla_policy_fieldsets() -> tuple:
    return (
        (
            _("Targets (hours are elapsed hours; transit and refund in business days)"),
            {
                "fields": (
                    "first_scan_hours",
                    ("transit_domestic_business_days", "transit_international_business_days"),
                    "checkin_hours",
                    "inspection_hours",
                    "refund_business_days",
                    "no_movement_days",
                    "claimed_dropoff_scan_hours",
                )
            },
        ),
        (_("Customer alerts"), {"fields": ("alert_no_scan", "alert_no_movement")}),
        (
            _("Exception queue"),
            {"fields": ("loyal_min_orders", "loyal_tags", "auto_escalate_after_hours")},
        ),
    )


class TransitRouteFormSet(forms.BaseInlineFormSet):
    """Gives new routes the policy's tenant and refuses a route listed twice (the
    unique constraint leads with the tenant, which the form does not show)."""

    def _construct_form(self, i: int, **kwargs: Any):
        form = super()._construct_form(i, **kwargs)  # type: ignore[misc]  # private in the stubs
        form.instance.tenant_id = self.instance.tenant_id
        return form

    def clean(self) -> None:
        super().clean()
        seen = set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or data.get("DELETE"):
                continue
            key = (
                (data.get("origin_country") or "").upper(),
                (data.get("destination_country") or "").upper(),
            )
            if key in seen:
                raise ValidationError(
                    _("Route %(o)s -> %(d)s is listed twice.")
                    % {
                        "o": key[0] or "*",
                        "d": key[1],
                    }
                )
            seen.add(key)


class SlaTransitRouteInline(admin.TabularInline):
    """Per-route transit targets; editable by the policy tenant's admins only."""

    model = SlaTransitRoute
    formset = TransitRouteFormSet
    fields = ("origin_country", "destination_country", "business_days")
    extra = 0

    def _role_ok(self, request: HttpRequest, obj: Any, needed: str) -> bool:
        roles = request_tenant_roles(request)
        if obj is not None:
            return role_at_least(roles.get(obj.tenant_id), needed)
        return any(role_at_least(r, needed) for r in roles.values())

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role_ok(request, obj, Role.VIEWER)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role_ok(request, obj, Role.ADMIN)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role_ok(request, obj, Role.ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._role_ok(request, obj, Role.ADMIN)
