"""Refunds in the admin (every admin is a `TenantScopedAdmin`):

- refund rules: an ordered list with history (django-simple-history); the
  form checks the JSON shapes and, after saving, WARNS about currencies the
  tenant sells in that a value condition has no threshold for (such a rule
  never matches those orders, DESIGN.md section 7);
- refunds: state, amount, explanation, transactions, state and decision
  history; actions re-evaluate (admin), approve (admin), hold (agent) and
  close the return when its outcome is settled (agent), each re-checked per
  selected row's tenant (`tenant_action`);
- refund settings (history), gateway accounts (secrets write-only, stored
  encrypted), sandbox ledger, exchanges.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from refunds import services
from refunds.models import (
    RULE_MONEY_MAPS,
    Exchange,
    GatewayAccount,
    Refund,
    RefundDecisionChange,
    RefundRule,
    RefundSettings,
    RefundStateChange,
    RefundTransaction,
    SandboxGatewayCall,
)
from refunds.rules import HIGH_VALUE_THRESHOLDS
from returns_portal.tenancy.admin_base import (
    TenantScopedAdmin,
    TenantScopedModelForm,
    tenant_action,
)
from returns_portal.tenancy.crypto import encrypt, encrypt_json
from returns_portal.tenancy.models import Role
from rma.admin import ReadOnlyAdminMixin, ReadOnlyInline, money_display
from rma.models import Order
from rma.money import MoneyError

MONEY_MAPS = RULE_MONEY_MAPS
LISTS = ("risk_levels", "reason_codes", "skus", "line_tags", "order_tags", "shipping_countries")


def missing_currencies(rule: RefundRule, currencies: set[str]) -> list[str]:
    """Currencies in `currencies` that a value condition of `rule` has no threshold for."""
    maps = [getattr(rule, name) or {} for name in MONEY_MAPS if getattr(rule, name)]
    if not maps:
        return []
    return sorted(c for c in currencies if any(c not in {k.upper() for k in m} for m in maps))


def tenant_currencies(tenant_id: int) -> set[str]:
    """The tenant's own currency and every currency its orders use."""
    found = set(
        Order.objects.filter(tenant_id=tenant_id).values_list("currency", flat=True).distinct()
    )
    from returns_portal.tenancy.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is not None:
        found.add(tenant.currency)
    return {c.upper() for c in found if c}


class RefundRuleForm(TenantScopedModelForm):
    """Money maps are checked and normalized by the model (`RefundRule.clean`, field
    validators), so the API and commands refuse the same way; lists are checked here."""

    class Meta:
        model = RefundRule
        fields = "__all__"

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in LISTS:
            value = cleaned.get(name) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                self.add_error(name, 'Use a list of strings like ["high"].')
        return cleaned


@admin.register(RefundRule)
class RefundRuleAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    form = RefundRuleForm
    list_display = (
        "position",
        "name",
        "trigger",
        "method",
        "is_active",
        "conditions_text",
        "tenant",
    )
    list_display_links = ("name",)
    list_editable = ("position", "is_active")
    list_filter = ("tenant", "trigger", "method", "is_active")
    ordering = ("tenant", "position", "pk")
    search_fields = ("name",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "position",
                    "is_active",
                    "trigger",
                    "method",
                    "store_credit_bonus_percent",
                )
            },
        ),
        (
            "Order conditions",
            {
                "fields": (
                    "risk_levels",
                    "order_total_min",
                    "order_total_max",
                    "order_tags",
                    "shipping_countries",
                )
            },
        ),
        (
            "Line conditions (one returned line must meet all)",
            {"fields": ("line_value_min", "line_value_max", "reason_codes", "skus", "line_tags")},
        ),
        (
            "Customer history",
            {"fields": ("prior_returns_min_count", "prior_returns_min_rate", "prior_returns_days")},
        ),
    )

    @admin.display(description="Conditions")
    def conditions_text(self, obj: RefundRule) -> str:
        try:
            spec = services.rule_spec_from_model(obj)
        except MoneyError as exc:
            return str(exc)[:200]  # stored before the form refused it; edit to fix
        parts = [f"{k}={v}" for k, v in spec.conditions().items()]
        return "; ".join(parts)[:200] or "everything else"

    def save_model(self, request: HttpRequest, obj: RefundRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        missing = missing_currencies(obj, tenant_currencies(obj.tenant_id))
        if missing:
            self.message_user(
                request,
                f"Rule '{obj.name}' has a value condition without a threshold for {', '.join(missing)}: "
                f"it never matches orders in those currencies. Defaults: "
                + ", ".join(
                    f"{c} {HIGH_VALUE_THRESHOLDS[c]}" for c in missing if c in HIGH_VALUE_THRESHOLDS
                ),
                messages.WARNING,
            )


class RefundStateChangeInline(ReadOnlyInline):
    model = RefundStateChange
    fields = ("at", "from_state", "to_state", "actor", "reason")


class RefundTransactionInline(ReadOnlyInline):
    model = RefundTransaction
    fields = (
        "created_at",
        "kind",
        "gateway",
        "status",
        "amount",
        "currency",
        "gateway_reference",
        "message",
    )


class RefundDecisionChangeInline(ReadOnlyInline):
    model = RefundDecisionChange
    fields = (
        "at",
        "actor",
        "old_rule_name",
        "new_rule_name",
        "old_trigger",
        "new_trigger",
        "new_explanation",
    )


def _run_each(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, fn, verb: str
) -> None:
    done, refused = 0, []
    for refund in queryset:
        try:
            fn(refund)
            done += 1
        except ValueError as exc:
            refused.append(f"{refund.return_request.rma_number}: {exc}")
    if done:
        modeladmin.message_user(request, f"{verb} {done} refund(s).", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, line, messages.WARNING)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "return_request",
        "state",
        "amount_display",
        "bonus_display",
        "method",
        "trigger",
        "rule_name",
        "gateway",
        "approved_at",
        "issued_at",
    )

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return money_display(obj.amount, obj.currency)

    @admin.display(description=_("Bonus"), ordering="bonus_amount")
    def bonus_display(self, obj: Refund) -> str:
        return money_display(obj.bonus_amount, obj.currency) if obj.bonus_amount else "-"

    list_filter = ("tenant", "state", "method", "trigger", "gateway")
    search_fields = ("return_request__rma_number", "uuid", "gateway_reference")
    exclude = ("tenant",)
    readonly_fields = (
        "explanation",
        "breakdown",
        "condition_snapshot",
        "hold_reason",
        "last_error",
    )
    inlines = [RefundTransactionInline, RefundStateChangeInline, RefundDecisionChangeInline]
    list_select_related = ("return_request",)
    actions = ["reevaluate", "approve", "hold", "close_return"]

    @tenant_action(role=Role.ADMIN, description="Re-evaluate the refund rule (recorded)")
    def reevaluate(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = request.user.get_username()
        _run_each(
            self,
            request,
            queryset,
            lambda r: services.refund_reevaluate(refund=r, actor=actor, now=timezone.now()),
            "Re-evaluated",
        )

    @tenant_action(role=Role.ADMIN, description="Approve the refund now")
    def approve(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = request.user.get_username()
        _run_each(
            self,
            request,
            queryset,
            lambda r: services.refund_approve_by_staff(refund=r, actor=actor, now=timezone.now()),
            "Approved",
        )

    @tenant_action(role=Role.AGENT, description="Hold the refund")
    def hold(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = request.user.get_username()
        _run_each(
            self,
            request,
            queryset,
            lambda r: services.refund_hold(
                refund=r, actor=actor, reason=f"held by {actor}", now=timezone.now()
            ),
            "Held",
        )

    @tenant_action(role=Role.AGENT, description="Close the return (outcome settled)")
    def close_return(self, request: HttpRequest, queryset: QuerySet) -> None:
        actor = request.user.get_username()

        def close(refund: Refund) -> None:
            rr = refund.return_request
            if (
                services.return_settle_if_done(
                    tenant=rr.tenant, return_request=rr, now=timezone.now(), actor=actor, staff=True
                )
                is None
            ):
                raise ValueError(
                    "the outcome is not settled yet (refund not issued or exchange not shipped)"
                )

        _run_each(self, request, queryset, close, "Closed the return of")


@admin.register(RefundSettings)
class RefundSettingsAdmin(TenantScopedAdmin, SimpleHistoryAdmin):
    list_display = (
        "tenant",
        "refund_taxes",
        "refund_shipping",
        "restocking_fee_percent",
        "deduct_label_cost",
        "bank_days_original_min",
        "bank_days_original_max",
    )
    list_select_related = ("tenant",)
    list_filter = ("tenant",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant, made by provisioning

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # one per tenant: deleting it could not be undone here


class GatewayAccountForm(TenantScopedModelForm):
    access_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Shopify Admin API access token (kept if left empty)",
    )
    secret_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stripe secret key (kept if left empty)",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stripe webhook signing secret whsec_... (kept if left empty)",
    )

    class Meta:
        model = GatewayAccount
        fields = ("provider", "is_active", "shop_domain", "api_version")


@admin.register(GatewayAccount)
class GatewayAccountAdmin(TenantScopedAdmin):
    form = GatewayAccountForm
    list_display = ("provider", "shop_domain", "is_active", "tenant", "updated_at")
    list_filter = ("tenant", "provider", "is_active")

    def save_model(
        self, request: HttpRequest, obj: GatewayAccount, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        creds = {k: data[k] for k in ("access_token", "secret_key") if data.get(k)}
        if creds:
            obj.credentials_encrypted = encrypt_json(creds)
        if data.get("webhook_secret"):
            obj.webhook_secret_encrypted = encrypt(data["webhook_secret"])
        super().save_model(request, obj, form, change)


@admin.register(SandboxGatewayCall)
class SandboxGatewayCallAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "reference",
        "idempotency_key",
        "amount",
        "currency",
        "method",
        "status",
        "calls",
        "created_at",
    )
    list_filter = ("tenant", "method")
    search_fields = ("reference", "idempotency_key")


@admin.register(Exchange)
class ExchangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "return_request",
        "exchange_sku",
        "replacement_unit_price",
        "price_difference",
        "currency",
        "shipped_at",
    )
    list_filter = ("tenant",)
    search_fields = ("return_request__rma_number", "exchange_sku")
