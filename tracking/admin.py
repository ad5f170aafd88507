"""Staff admin for tracking: events, raw payloads / webhook deliveries,
unmatched numbers, carrier accounts, status overrides (with history) and the
unmapped-codes page.

Every admin is a `TenantScopedAdmin` (scoped querysets, choices, filters and
actions; per-tenant roles). Events, payloads, unmatched numbers and unmapped
codes are read-only: services write them. Accounts and overrides are saved
through `tracking.services`; secrets are write-only.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from returns_portal.tenancy import crypto
from returns_portal.tenancy.admin_base import (
    TenantScopedAdmin,
    TenantScopedModelForm,
    tenant_action,
)
from returns_portal.tenancy.models import Role
from tracking.carriers.mapping import REASONS
from tracking.carriers.registry import codes
from tracking.ingest import IngestError
from tracking.models import (
    CarrierAccount,
    RawPayload,
    StatusOverride,
    TrackingEvent,
    UnmappedCode,
    UnmatchedTrackingNumber,
)
from tracking.services import carrier_account_save, status_override_save, status_overrides_apply
from tracking.webhooks import raw_payload_replay


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TrackingEvent)
class TrackingEventAdmin(ReadOnlyMixin, TenantScopedAdmin):
    list_display = (
        "shipment",
        "occurred_at",
        "occurred_at_local",
        "status",
        "exception_reason",
        "provider",
        "carrier_code",
        "location",
        "source",
    )
    list_filter = ("status", "provider", "source")
    search_fields = ("shipment__tracking_number", "carrier_code", "description")
    list_select_related = ("shipment",)
    raw_id_fields = ("shipment", "payload")
    ordering = ("-received_at",)


@admin.register(RawPayload)
class RawPayloadAdmin(ReadOnlyMixin, TenantScopedAdmin):
    list_display = (
        "id",
        "tenant",
        "source",
        "provider",
        "state",
        "error_code",
        "event_id",
        "received_at",
        "processed_at",
        "attempts",
    )
    list_filter = ("source", "provider", "state", "error_code")
    search_fields = ("event_id", "tracking_number", "body_sha256")
    exclude = ("body",)
    readonly_fields = ("body_text",)
    actions = ["replay"]
    ordering = ("-received_at",)

    @admin.display(description=_("Body"))
    def body_text(self, obj: RawPayload) -> str:
        return bytes(obj.body)[:20_000].decode("utf-8", errors="replace")

    @tenant_action(role=Role.AGENT, description=_("Replay through ingest"))
    def replay(self, request: HttpRequest, queryset: QuerySet) -> None:
        done = failed = 0
        for payload in queryset.select_related("tenant")[:500]:
            try:
                raw_payload_replay(payload=payload, now=timezone.now())
                done += 1
            except IngestError as exc:
                failed += 1
                self.message_user(request, f"#{payload.pk}: {exc}", messages.WARNING)
        self.message_user(request, _("Replayed %(n)d payload(s).") % {"n": done})


@admin.register(UnmatchedTrackingNumber)
class UnmatchedTrackingNumberAdmin(ReadOnlyMixin, TenantScopedAdmin):
    list_display = (
        "tracking_number",
        "provider",
        "carrier",
        "times_seen",
        "first_seen_at",
        "last_seen_at",
        "attached_at",
    )
    list_filter = ("provider", ("attached_at", admin.EmptyFieldListFilter))
    search_fields = ("tracking_number",)
    raw_id_fields = ("shipment",)


class CarrierAccountForm(TenantScopedModelForm):
    """Secrets are write-only: the form shows which credential keys are set,
    never their values; leave a field empty to keep what is stored."""

    carrier = forms.ChoiceField(choices=[])
    credentials_json = forms.CharField(
        label=_("Credentials (JSON object)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            'e.g. {"client_id": "...", "client_secret": "..."}; empty keeps the stored ones.'
        ),
    )
    webhook_secret = forms.CharField(
        label=_("Webhook secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Empty keeps the stored secret."),
    )

    class Meta:
        model = CarrierAccount
        fields = ("tenant", "carrier", "name", "test_mode", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields.pop("carrier", None)  # shown read-only: an account keeps its carrier
        else:
            cast(forms.ChoiceField, self.fields["carrier"]).choices = [(c, c) for c in codes()]
        if self.instance.pk and self.instance.credentials_encrypted:
            try:
                keys = sorted(crypto.decrypt_json(self.instance.credentials_encrypted))
                self.fields["credentials_json"].help_text = _("Stored keys: %(keys)s") % {
                    "keys": ", ".join(keys) or "-"
                }
            except Exception:
                self.fields["credentials_json"].help_text = _("Stored credentials cannot be read.")

    def clean_credentials_json(self) -> dict[str, str] | None:
        text = (self.cleaned_data.get("credentials_json") or "").strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise ValidationError(_("Not JSON: %(e)s") % {"e": exc}) from exc
        if not isinstance(value, dict):
            raise ValidationError(_("Give a JSON object of credential keys."))
        return {str(k): str(v) for k, v in value.items()}


@admin.register(CarrierAccount)
class CarrierAccountAdmin(TenantScopedAdmin):
    form = CarrierAccountForm
    list_display = (
        "carrier",
        "name",
        "tenant",
        "test_mode",
        "is_active",
        "has_secret",
        "updated_at",
    )
    list_filter = ("carrier", "is_active")

    @admin.display(boolean=True, description=_("Webhook secret"))
    def has_secret(self, obj: CarrierAccount) -> bool:
        return bool(obj.webhook_secret_encrypted)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        return [*readonly, "carrier"] if obj is not None else readonly

    def save_model(
        self, request: HttpRequest, obj: CarrierAccount, form: Any, change: bool
    ) -> None:
        host_tenant = getattr(request, "tenant", None)
        tenant = host_tenant if (not change and host_tenant is not None) else obj.tenant
        self._check_role(request, tenant.pk, change)
        saved = carrier_account_save(
            tenant=tenant,
            carrier=form.cleaned_data.get("carrier") or obj.carrier,
            now=timezone.now(),
            credentials=form.cleaned_data.get("credentials_json"),
            webhook_secret=form.cleaned_data.get("webhook_secret") or None,
            test_mode=form.cleaned_data.get("test_mode", False),
            is_active=form.cleaned_data.get("is_active", True),
            name=form.cleaned_data.get("name", ""),
        )
        obj.pk = saved.pk
        obj.tenant = tenant

    def _check_role(self, request: HttpRequest, tenant_id: int, change: bool) -> None:
        from returns_portal.tenancy.services import request_tenant_roles, role_at_least

        needed = self.change_role if change else self.add_role
        if not role_at_least(request_tenant_roles(request).get(tenant_id), needed):
            raise ValidationError(_("You may not change this tenant's data."))


class StatusOverrideForm(TenantScopedModelForm):
    carrier = forms.ChoiceField(choices=[])
    exception_reason = forms.ChoiceField(
        choices=[("", "-")] + [(r, r) for r in REASONS], required=False
    )

    class Meta:
        model = StatusOverride
        fields = ("tenant", "carrier", "raw_code", "status", "exception_reason", "note")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["carrier"]).choices = [(c, c) for c in codes()]


@admin.register(StatusOverride)
class StatusOverrideAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    """Saving applies the override to the tenant's stored `unknown` events with
    that code at once; the action re-applies every override."""

    form = StatusOverrideForm
    list_display = ("carrier", "raw_code", "status", "exception_reason", "tenant", "updated_at")
    list_filter = ("carrier", "status")
    search_fields = ("raw_code", "note")
    actions = ["reapply"]

    def save_model(
        self, request: HttpRequest, obj: StatusOverride, form: Any, change: bool
    ) -> None:
        host_tenant = getattr(request, "tenant", None)
        if not change and host_tenant is not None:
            obj.tenant = host_tenant
        from returns_portal.tenancy.services import request_tenant_roles, role_at_least

        needed = self.change_role if change else self.add_role
        if not role_at_least(request_tenant_roles(request).get(obj.tenant_id), needed):
            raise ValidationError(_("You may not change this tenant's data."))
        saved = status_override_save(
            tenant=obj.tenant,
            carrier=obj.carrier,
            raw_code=obj.raw_code,
            status=obj.status,
            exception_reason=obj.exception_reason or "",
            note=obj.note,
            now=timezone.now(),
            override=obj if change else None,
        )
        obj.pk = saved.pk

    @tenant_action(role=Role.ADMIN, description=_("Re-normalize stored unknown events"))
    def reapply(self, request: HttpRequest, queryset: QuerySet) -> None:
        total = 0
        for tenant in {o.tenant for o in queryset.select_related("tenant")}:
            total += status_overrides_apply(tenant=tenant, now=timezone.now())
        self.message_user(request, _("%(n)d stored event(s) re-normalized.") % {"n": total})


@admin.register(UnmappedCode)
class UnmappedCodeAdmin(ReadOnlyMixin, TenantScopedAdmin):
    """Raw codes stored as `unknown`, per (tenant, carrier, code), with counts
    and first/last seen; a link opens a prefilled override."""

    list_display = (
        "carrier",
        "code_display",
        "sample_description",
        "event_count",
        "shipment_count",
        "first_seen_at",
        "last_seen_at",
        "tenant",
        "override_link",
    )
    list_filter = ("carrier",)
    search_fields = ("raw_code", "sample_description")
    ordering = ("-last_seen_at",)
    list_display_links = None

    @admin.display(description=_("Raw code"), ordering="raw_code")
    def code_display(self, obj: UnmappedCode) -> str:
        return obj.raw_code or "(no code)"

    @admin.display(description=_("Override"))
    def override_link(self, obj: UnmappedCode) -> str:
        url = (
            reverse("admin:tracking_statusoverride_add")
            + "?"
            + urlencode({"carrier": obj.carrier, "raw_code": obj.raw_code})
        )
        return format_html('<a href="{}">{}</a>', url, _("Map this code"))
