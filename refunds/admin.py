"""Refunds in the admin: read-only rows with their rule decision and state history."""

from __future__ import annotations

from django.contrib import admin

from refunds.models import Refund, RefundStateChange
from returns_portal.tenancy.admin_base import TenantScopedAdmin
from rma.admin import ReadOnlyAdminMixin, ReadOnlyInline


class RefundStateChangeInline(ReadOnlyInline):
    model = RefundStateChange
    fields = ("at", "from_state", "to_state", "actor", "reason")


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "return_request",
        "state",
        "amount",
        "currency",
        "method",
        "trigger",
        "rule_name",
        "approved_at",
    )
    list_filter = ("tenant", "state", "method", "trigger")
    search_fields = ("return_request__rma_number", "uuid")
    exclude = ("tenant",)
    inlines = [RefundStateChangeInline]
    list_select_related = ("return_request",)
