"""Staff admin for orders, returns, shipments, milestones, exceptions and SLA policy.

Every admin here is a `TenantScopedAdmin`: scoped querysets, choices,
filters and actions, and per-tenant roles. Milestones, status changes and
notifications are read-only: they are written by services only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from returns_portal.tenancy.admin_base import (
    TenantScopedAdmin,
    TenantScopedModelForm,
    tenant_action,
)
from returns_portal.tenancy.models import Role
from returns_portal.tenancy.services import request_tenant_roles, role_at_least
from rma.admin_sla import SlaTransitRouteInline, sla_policy_fieldsets
from rma.models import (
    CheckIn,
    Customer,
    Inspection,
    Milestone,
    Notification,
    Order,
    OrderLine,
    ReturnCentre,
    ReturnException,
    ReturnLine,
    ReturnPhoto,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    ReturnStatusChange,
    Shipment,
    SlaPolicy,
)
from rma.money import format_amount
from rma.services import DUE_TIMES_RECOMPUTE_TASK, enqueue_on_commit


def money_display(value: Any, currency: str) -> str:
    """`86.01 USD`, `9899 JPY`, `1.500 KWD`: the currency's exponent, never Decimal(18, 3)'s."""
    if value is None:
        return "-"
    return f"{format_amount(value, currency)} {currency}"


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

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Members have tenant roles, not Django model permissions: any role in the
        parent row's tenant may see its rows (the parent admin scoped the row)."""
        roles = request_tenant_roles(request)
        if obj is not None:
            tenant_id = getattr(obj, "tenant_id", None)
            return tenant_id is not None and role_at_least(roles.get(tenant_id), Role.VIEWER)
        return any(role_at_least(role, Role.VIEWER) for role in roles.values())

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
        "total_display",
        "financial_status",
        "fulfillment_status",
    )

    @admin.display(description=_("Total"), ordering="total")
    def total_display(self, obj: Order) -> str:
        return money_display(obj.total, obj.currency)

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
    list_select_related = ("tenant",)
    list_filter = ("tenant",)
    fieldsets = sla_policy_fieldsets()  # issue 5: targets, alerts, loyalty, escalation
    inlines = [SlaTransitRouteInline]  # issue 5: per-route transit targets

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Issue 5: existing returns' due times follow the edited targets.
        enqueue_on_commit(DUE_TIMES_RECOMPUTE_TASK, form.instance.tenant_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant, made by provisioning

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant: deleting it could not be undone here


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
    readonly_fields = ("photo_links",)

    @admin.display(description=_("Photos"))
    def photo_links(self, obj: ReturnRequest) -> str:
        """Links to the return's photos through the permission-checked image view."""
        photos = ReturnPhoto.objects.filter(
            tenant_id=obj.tenant_id, return_line__return_request=obj
        ).order_by("pk")
        links = [
            format_html(
                '<a href="{0}"><img src="{0}" alt="" style="max-height:80px"></a>',
                reverse("admin:rma_returnphoto_image", args=[photo.public_id]),
            )
            for photo in photos
        ]
        return format_html_join(" ", "{}", ((link,) for link in links)) if links else "-"


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


# --------------------------------------------------------------------------
# Return policy, reasons and photos
# --------------------------------------------------------------------------
class ListTextField(forms.CharField):
    """A JSON list of strings edited as text: one entry per line (commas also split)."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value or ""

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]  # a list field
        text = super().to_python(value) or ""
        entries = [part.strip() for line in text.splitlines() for part in line.split(",")]
        return sorted({e for e in entries if e}, key=str.lower)


class ReturnPolicyForm(TenantScopedModelForm):
    final_sale_skus = ListTextField(
        label=_("Final-sale SKUs"), required=False, help_text=_("One SKU per line.")
    )
    final_sale_tags = ListTextField(
        label=_("Final-sale tags"),
        required=False,
        help_text=_("One tag per line; a line or order with one of these tags is final sale."),
    )

    class Meta:
        model = ReturnPolicy
        fields = ("window_days", "final_sale_skus", "final_sale_tags", "pickup_enabled")


@admin.register(ReturnPolicy)
class ReturnPolicyAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    """One policy per tenant (made by provisioning): window, final sale, pickup.
    The label carrier is shown read-only: carriers are configured elsewhere."""

    form = ReturnPolicyForm
    list_display = ("tenant", "window_days", "pickup_enabled", "label_carrier", "updated_at")
    list_filter = ("tenant",)
    readonly_fields = ("label_carrier",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant, made by provisioning

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReturnReasonForm(TenantScopedModelForm):
    class Meta:
        model = ReturnReason
        fields = ("tenant", "code", "label", "requires_photo", "active", "position")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        code = cleaned.get("code")
        if tenant is not None and code:
            clash = ReturnReason.objects.filter(tenant=tenant, code=code)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("code", _("This tenant already has a reason with this code."))
        return cleaned


@admin.register(ReturnReason)
class ReturnReasonAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    """The tenant's return reasons (DESIGN.md section 10 defaults); deactivate rather than
    delete a reason that returns use."""

    form = ReturnReasonForm
    list_display = ("label", "code", "requires_photo", "active", "position", "tenant")
    list_filter = ("tenant", "active", "requires_photo")
    list_editable = ("active", "position")
    search_fields = ("code", "label")
    ordering = ("tenant", "position", "code")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly.append("code")  # returns store the code
        return readonly


@admin.register(ReturnPhoto)
class ReturnPhotoAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Customer photos, read-only; the image is served by `image/` after checking the
    viewer's role in the photo's tenant (never from a public media URL)."""

    list_display = ("preview", "return_request", "content_type", "width", "height", "created_at")
    list_filter = ("tenant",)
    search_fields = ("return_line__return_request__rma_number",)
    fields = ("preview", "return_line", "content_type", "width", "height", "size_bytes")
    readonly_fields = fields
    list_select_related = ("return_line__return_request",)
    ordering = ("-created_at",)

    @admin.display(description=_("Return"))
    def return_request(self, obj: ReturnPhoto) -> str:
        return obj.return_line.return_request.rma_number

    @admin.display(description=_("Photo"))
    def preview(self, obj: ReturnPhoto) -> str:
        url = reverse("admin:rma_returnphoto_image", args=[obj.public_id])
        return format_html('<a href="{0}"><img src="{0}" alt="" style="max-height:120px"></a>', url)

    def get_urls(self) -> list:
        return [
            path(
                "<uuid:public_id>/image/",
                self.admin_site.admin_view(self.image_view),
                name="rma_returnphoto_image",
            ),
            *super().get_urls(),
        ]

    def image_view(self, request: HttpRequest, public_id: str) -> FileResponse:
        """The photo, for users with a role in its tenant on this host; else 404."""
        from rma.views import photo_response

        photo = ReturnPhoto.objects.filter(public_id=public_id).first()
        roles = request_tenant_roles(request)
        if photo is None or not role_at_least(roles.get(photo.tenant_id), self.view_role):
            raise Http404
        return photo_response(photo)


# Warehouse (refunds issue): check-ins and inspections, read-only; restock CSV
# --------------------------------------------------------------------------


@admin.register(CheckIn)
class CheckInAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("return_request", "condition", "checked_in_at", "actor", "channel")
    list_filter = ("tenant", "condition", "channel")
    search_fields = ("return_request__rma_number", "scanned_code", "actor")
    ordering = ("-checked_in_at",)
    exclude = ("tenant",)
    list_select_related = ("return_request",)


@admin.register(Inspection)
class InspectionAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "return_request",
        "return_line",
        "quantity",
        "grade",
        "disposition",
        "matches",
        "inspected_at",
        "actor",
    )
    list_filter = ("tenant", "grade", "disposition", "matches")
    search_fields = ("return_request__rma_number", "return_line__order_line__sku")
    ordering = ("-inspected_at",)
    exclude = ("tenant", "photo")
    list_select_related = ("return_request", "return_line__order_line")
    actions = ["export_restock_csv"]

    @tenant_action(role=Role.AGENT, description="Export selected decisions as CSV")
    def export_restock_csv(self, request: HttpRequest, queryset: Any) -> Any:
        from rma.warehouse import restock_rows, rows_to_csv

        tenant_ids = sorted(set(queryset.values_list("tenant_id", flat=True)))
        rows: list[list[str]] = []
        for tenant_id in tenant_ids:
            part = restock_rows(
                tenant=queryset.filter(tenant_id=tenant_id).first().tenant,
                inspections=queryset.filter(tenant_id=tenant_id),
            )
            rows += part if not rows else part[1:]
        response = HttpResponse(rows_to_csv(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="restock.csv"'
        return response


# Issue 5: the staff exception queue (kept in its own module; registered here).
from rma.admin_exceptions import ReplacementOfferAdmin, ReturnExceptionAdmin  # noqa: E402, F401
