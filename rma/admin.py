"""Staff admin for orders, returns, shipments, milestones, exceptions and SLA policy.

Every admin here is a `TenantScopedAdmin`: scoped querysets, choices,
filters and actions, and per-tenant roles. Milestones, status changes and
notifications are read-only: they are written by services only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from returns_portal.tenancy.admin_base import TenantScopedAdmin
from returns_portal.tenancy.models import Role
from rma.admin_sla import SlaTransitRouteInline, sla_policy_fieldsets
from rma.models import (
    Customer,
    Milestone,
    Notification,
    Order,
    OrderLine,
    ReturnCentre,
    ReturnException,
    ReturnLine,
    ReturnRequest,
    ReturnStatusChange,
    Shipment,
    SlaPolicy,
)
from rma.services import DUE_TIMES_RECOMPUTE_TASK, enqueue_on_commit


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows service-written rows and never edits them."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in self.model._meta.fields if f.name not in ("id", "tenant")]


class ReadOnlyAdminMixin:
    """Read-only for everyone: rows written by services (orders come from imports or the API)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = (
        "position",
        "line_id",
        "sku",
        "title",
        "quantity",
        "unit_price",
        "discount",
        "requires_shipping",
        "fulfilled_quantity",
        "refunded_quantity",
    )


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "number",
        "email",
        "placed_at",
        "total",
        "currency",
        "financial_status",
        "fulfillment_status",
    )
    list_filter = ("tenant", "financial_status", "fulfillment_status", "risk_level", "is_cancelled")
    search_fields = ("number", "number_key", "email", "shopify_id")
    date_hierarchy = "placed_at"
    ordering = ("-placed_at",)
    inlines = [OrderLineInline]
    exclude = ("tenant",)


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ("email_normalized", "name", "tenant", "created_at")
    list_filter = ("tenant",)
    search_fields = ("email_normalized", "name", "external_id")
    ordering = ("email_normalized",)
    change_role = Role.AGENT


@admin.register(ReturnCentre)
class ReturnCentreAdmin(TenantScopedAdmin):
    list_display = ("name", "country", "subdivision", "time_zone", "is_default", "tenant")
    list_filter = ("tenant",)
    search_fields = ("name",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    list_display = (
        "tenant",
        "first_scan_hours",
        "transit_domestic_business_days",
        "transit_international_business_days",
        "checkin_hours",
        "inspection_hours",
        "refund_business_days",
        "no_movement_days",
        "alert_no_scan",  # issue 5
        "alert_no_movement",
        "auto_escalate_after_hours",
    )
    list_filter = ("tenant",)
    fieldsets = sla_policy_fieldsets()  # issue 5: targets, alerts, loyalty, escalation
    inlines = [SlaTransitRouteInline]  # issue 5: per-route transit targets

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Issue 5: existing returns' due times follow the edited targets.
        enqueue_on_commit(DUE_TIMES_RECOMPUTE_TASK, form.instance.tenant_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant, made by provisioning


class ReturnLineInline(ReadOnlyInline):
    model = ReturnLine
    fields = ("order_line", "quantity", "reason", "note", "resolution", "exchange_sku")


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    fields = (
        "direction",
        "is_primary",
        "carrier",
        "tracking_provider",
        "tracking_number",
        "leg",
        "status",
        "exception_reason",
        "last_scan_at",
        "last_scan_location",
        "label_state",
    )


class MilestoneInline(ReadOnlyInline):
    model = Milestone
    fields = ("name", "reached_at", "precision", "source", "actor", "dispatched_at")
    ordering = ("reached_at",)


class StatusChangeInline(ReadOnlyInline):
    model = ReturnStatusChange
    fields = ("at", "from_status", "to_status", "actor", "reason")
    verbose_name_plural = _("Status history")


class ExceptionInline(ReadOnlyInline):
    model = ReturnException
    fields = (
        "kind",
        "state",
        "reason",
        "opened_at",
        "resolved_at",
        "resolution_code",
        "assignee",
        "priority",
    )


@admin.register(ReturnRequest)
class ReturnRequestAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "rma_number",
        "order",
        "email",
        "status",
        "method",
        "refund_state",
        "created_at",
    )
    list_filter = ("tenant", "status", "method", "refund_state")
    search_fields = ("rma_number", "order__number", "email", "shipments__tracking_number")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    # The public token never appears in the admin (DESIGN.md section 3).
    exclude = ("token", "tenant", "submission_key")
    inlines = [
        ReturnLineInline,
        ShipmentInline,
        MilestoneInline,
        ExceptionInline,
        StatusChangeInline,
    ]
    list_select_related = ("order",)


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "tracking_number",
        "carrier",
        "tracking_provider",
        "leg",
        "status",
        "exception_reason",
        "last_scan_at",
        "return_request",
    )
    list_filter = ("tenant", "carrier", "status", "direction")
    search_fields = ("tracking_number", "return_request__rma_number")
    ordering = ("-created_at",)
    exclude = ("tenant", "label_file")
    list_select_related = ("return_request",)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("kind", "to_email", "subject", "state", "attempts", "created_at", "sent_at")
    list_filter = ("tenant", "state", "kind")
    search_fields = ("to_email", "subject", "key")
    ordering = ("-created_at",)
    exclude = ("tenant",)


# Issue 5: the staff exception queue (kept in its own module; registered here).
from rma.admin_exceptions import ReplacementOfferAdmin, ReturnExceptionAdmin  # noqa: E402, F401
