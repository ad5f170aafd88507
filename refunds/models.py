"""Refunds: one per return and outcome, with its rule decision and its state."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from refunds.states import RefundState
from returns_portal.tenancy.models import TenantOwned
from rma.models import ReturnLine, ReturnRequest, Shipment, money_field, validate_money_map
from rma.money import MoneyError, money_map_read

#: A refund rule's per-currency value conditions.
RULE_MONEY_MAPS = ("order_total_min", "order_total_max", "line_value_min", "line_value_max")
#: The most business days a bank or store may be said to take (refund settings).
MAX_BANK_DAYS = 30


def money_map_field(**kwargs: Any) -> models.JSONField:
    """A per-currency amount map `{"USD": "5.00"}` (major units), checked by `validate_money_map`."""
    return models.JSONField(default=dict, blank=True, validators=[validate_money_map], **kwargs)


def normalize_money_maps(obj: models.Model, names: tuple[str, ...]) -> None:
    """Store valid maps with upper-cased codes and amounts as strings (`{"USD": "5.00"}`);
    invalid ones are left for the field's validator to report."""
    for name in names:
        try:
            parsed = money_map_read(getattr(obj, name))
        except MoneyError:
            continue
        setattr(obj, name, {cur: str(amount) for cur, amount in parsed.items()})


def check_min_max(
    obj: models.Model, minimum: str, maximum: str, errors: dict[str, list[ValidationError]]
) -> None:
    """Per-currency `minimum <= maximum` for two money maps (currencies in both)."""
    try:
        low, high = money_map_read(getattr(obj, minimum)), money_map_read(getattr(obj, maximum))
    except MoneyError:
        return  # the field validators say what is wrong
    for cur in sorted(low.keys() & high.keys()):
        if low[cur] > high[cur]:
            errors.setdefault(maximum, []).append(
                ValidationError(
                    _("%(currency)s: the maximum is below the minimum."),
                    params={"currency": cur},
                )
            )


class RefundMethod(models.TextChoices):
    ORIGINAL_PAYMENT = "original_payment", _("Original payment method")
    STORE_CREDIT = "store_credit", _("Store credit")
    EXCHANGE = "exchange", _("Exchange")


class RefundTrigger(models.TextChoices):
    """The milestone that approves a refund (DESIGN.md section 5); `manual` waits for staff."""

    FIRST_SCAN = "first_scan", _("First carrier scan")
    DELIVERED = "delivered", _("Delivered")
    RECEIVED = "received", _("Received")
    INSPECTED = "inspected", _("Inspected")
    MANUAL = "manual", _("Manual approval")


class RefundOutcome(models.TextChoices):
    REFUND = "refund", _("Refund")
    EXCHANGE = "exchange", _("Exchange")


class Refund(TenantOwned):
    """A return's refund. Exists from the moment the return does (state `pending`).

    `uuid` is the gateway idempotency key's suffix (`refund:<uuid>`). The rule
    is chosen once, at creation: `rule_id`, `rule_name`, `condition_snapshot`
    and `explanation` are stored; staff may re-evaluate. `amount` is Decimal
    major units in `currency`, null until computed.
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="refunds"
    )
    outcome = models.CharField(
        max_length=10, choices=RefundOutcome.choices, default=RefundOutcome.REFUND
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(
        max_length=10, choices=RefundState.choices, default=RefundState.PENDING
    )
    amount = money_field(null=True, blank=True, default=None)
    currency = models.CharField(max_length=3)
    method = models.CharField(
        max_length=20, choices=RefundMethod.choices, default=RefundMethod.ORIGINAL_PAYMENT
    )
    trigger = models.CharField(
        max_length=12, choices=RefundTrigger.choices, default=RefundTrigger.DELIVERED
    )
    rule_id = models.PositiveIntegerField(null=True, blank=True)
    rule_name = models.CharField(max_length=200, blank=True)
    explanation = models.CharField(max_length=500, blank=True)
    condition_snapshot = models.JSONField(default=dict, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    issuing_started_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    refund_due_at = models.DateTimeField(null=True, blank=True)
    gateway = models.CharField(max_length=20, default="sandbox")
    gateway_reference = models.CharField(max_length=200, blank=True)
    # --- refunds issue: amount parts, bonus, exchange difference, hold reason ---
    bonus_amount = money_field(
        help_text=_("Store-credit bonus on top of `amount`; never counts against the order")
    )
    breakdown = models.JSONField(default=dict, blank=True)
    exchange_price_difference = money_field(null=True, blank=True, default=None)
    store_credit_bonus_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("0")
    )
    hold_reason = models.CharField(max_length=200, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "return_request", "outcome"], name="refund_one_per_outcome"
            ),
        ]
        indexes = [
            models.Index(
                fields=["refund_due_at"],
                condition=Q(
                    state__in=["approved", "issuing", "failed"], refund_due_at__isnull=False
                ),
                name="refund_due_open",
            ),
            models.Index(
                fields=["updated_at"],
                condition=Q(state__in=["approved", "issuing"]),
                name="refund_outbox",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.uuid} ({self.state})"

    @property
    def idempotency_key(self) -> str:
        """The gateway idempotency key (DESIGN.md section 8)."""
        return f"refund:{self.uuid}"


class RefundStateChange(TenantOwned):
    """Audit row for every refund state change (refunds/states.py)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="state_changes")
    from_state = models.CharField(max_length=10)
    to_state = models.CharField(max_length=10)
    actor = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


# --------------------------------------------------------------------------
# Refunds issue: rules, settings, gateway accounts, transactions, exchanges
# --------------------------------------------------------------------------
class RefundRule(TenantOwned):
    """A tenant's refund rule; ordered by `position`, first match wins (`refunds.rules`).

    Value conditions are per currency: JSON objects `{"USD": "500.00", ...}`
    in major units. A currency without a threshold never matches a value
    condition (DESIGN.md section 7); the admin warns about it. Lists are
    JSON arrays of strings. History is kept (django-simple-history).
    """

    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    risk_levels = models.JSONField(default=list, blank=True, help_text=_('e.g. ["high"]'))
    order_total_min = money_map_field(help_text=_('{"USD": "100.00"}'))
    order_total_max = money_map_field()
    line_value_min = money_map_field()
    line_value_max = money_map_field()
    reason_codes = models.JSONField(default=list, blank=True)
    skus = models.JSONField(default=list, blank=True)
    line_tags = models.JSONField(default=list, blank=True, help_text=_("SKU / line item tags"))
    order_tags = models.JSONField(default=list, blank=True)
    shipping_countries = models.JSONField(default=list, blank=True, help_text=_('["US", "CA"]'))
    prior_returns_min_count = models.PositiveIntegerField(null=True, blank=True)
    prior_returns_min_rate = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=_("Percent of the customer's orders in the window"),
    )
    prior_returns_days = models.PositiveIntegerField(
        default=365, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    trigger = models.CharField(max_length=12, choices=RefundTrigger.choices)
    method = models.CharField(
        max_length=20, choices=RefundMethod.choices, default=RefundMethod.ORIGINAL_PAYMENT
    )
    store_credit_bonus_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(inherit=False)

    class Meta:
        ordering = ["tenant_id", "position", "pk"]
        indexes = [
            models.Index(fields=["tenant", "is_active", "position"], name="refundrule_order")
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"

    def clean(self) -> None:
        normalize_money_maps(self, RULE_MONEY_MAPS)
        errors: dict[str, list[ValidationError]] = {}
        check_min_max(self, "order_total_min", "order_total_max", errors)
        check_min_max(self, "line_value_min", "line_value_max", errors)
        if errors:
            raise ValidationError(errors)


class GatewayProvider(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (no money moves)")
    SHOPIFY = "shopify", _("Shopify Admin API")
    STRIPE = "stripe", _("Stripe")


class RefundSettings(TenantOwned):
    """A tenant's refund options (DESIGN.md section 7 defaults). One per tenant, provisioned."""

    refund_taxes = models.BooleanField(
        default=True,
        help_text=_("Add the units' share of the order's taxes when prices exclude tax"),
    )
    refund_shipping = models.BooleanField(default=False)
    restocking_fee_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    restocking_fee_fixed = money_map_field(
        help_text=_('Fixed fee per return, per currency: {"USD": "5.00"}')
    )
    deduct_label_cost = models.BooleanField(default=False)
    bank_days_original_min = models.PositiveSmallIntegerField(
        default=1, validators=[MaxValueValidator(MAX_BANK_DAYS)]
    )
    bank_days_original_max = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(MAX_BANK_DAYS)]
    )
    bank_days_store_credit_min = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BANK_DAYS)]
    )
    bank_days_store_credit_max = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_BANK_DAYS)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(inherit=False)

    class Meta:
        verbose_name = "refund settings"
        verbose_name_plural = "refund settings"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="refundsettings_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"Refund settings of {self.tenant.name}"

    def clean(self) -> None:
        normalize_money_maps(self, ("restocking_fee_fixed",))
        errors = {}
        for low, high in (
            ("bank_days_original_min", "bank_days_original_max"),
            ("bank_days_store_credit_min", "bank_days_store_credit_max"),
        ):
            if (getattr(self, low) or 0) > (getattr(self, high) or 0):
                errors[high] = _("The maximum is below the minimum.")
        if errors:
            raise ValidationError(errors)

    def bank_days(self, method: str) -> tuple[int, int]:
        """(min, max) business days the customer's bank/store may take for `method`, within
        0-`MAX_BANK_DAYS` (a row saved before the bounds existed is read within them)."""
        if method == RefundMethod.STORE_CREDIT:
            pair = self.bank_days_store_credit_min, self.bank_days_store_credit_max
        elif method == RefundMethod.EXCHANGE:
            return 0, 0
        else:
            pair = self.bank_days_original_min, self.bank_days_original_max
        low, high = (min(max(int(days or 0), 0), MAX_BANK_DAYS) for days in pair)
        return low, max(low, high)


class GatewayAccount(TenantOwned):
    """A tenant's connection to a payment gateway. Credentials are encrypted with
    `FIELD_ENCRYPTION_KEYS` (`returns_portal.tenancy.crypto`); never shown back.

    Shopify: `shop_domain` (`example.myshopify.com`), credentials
    `{"access_token": ...}`. Stripe: credentials `{"secret_key": ...}` and
    `webhook_secret_encrypted` (the endpoint's `whsec_...`).
    """

    provider = models.CharField(max_length=10, choices=GatewayProvider.choices)
    is_active = models.BooleanField(default=True)
    shop_domain = models.CharField(max_length=255, blank=True)
    api_version = models.CharField(max_length=20, blank=True, default="2025-01")
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "provider"], name="gateway_one_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} ({self.tenant_id})"


class TransactionKind(models.TextChoices):
    CREATE = "create", _("Refund request")
    LOOKUP = "lookup", _("Lookup by idempotency key")
    WEBHOOK = "webhook", _("Gateway webhook")
    INTERNAL = "internal", _("No gateway call (store credit / exchange)")


class TransactionStatus(models.TextChoices):
    SUCCEEDED = "succeeded", _("Succeeded")
    PENDING = "pending", _("Pending at the gateway")
    FAILED = "failed", _("Failed (permanent)")
    ERROR = "error", _("Error (transient, looked up later)")
    NOT_FOUND = "not_found", _("Not found at the gateway")


class RefundTransaction(TenantOwned):
    """One gateway interaction for a refund (request, lookup or webhook), append-only."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="transactions")
    kind = models.CharField(max_length=10, choices=TransactionKind.choices)
    gateway = models.CharField(max_length=20)
    idempotency_key = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=TransactionStatus.choices)
    amount = money_field(null=True, blank=True, default=None)
    currency = models.CharField(max_length=3)
    gateway_reference = models.CharField(max_length=200, blank=True)
    message = models.CharField(max_length=500, blank=True)
    response = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["tenant", "refund"], name="refundtx_tenant_refund")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.gateway_reference}"


class SandboxGatewayCall(TenantOwned):
    """The sandbox gateway's ledger: one row per idempotency key (UNIQUE). A repeated
    key answers with the first call's stored result; no money moves."""

    idempotency_key = models.CharField(max_length=100)
    amount = money_field()
    currency = models.CharField(max_length=3)
    method = models.CharField(max_length=20)
    reference = models.CharField(max_length=64)
    status = models.CharField(max_length=10)
    calls = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="sandbox_unique_idempotency_key"
            )
        ]

    def __str__(self) -> str:
        return f"sandbox {self.reference} {self.amount} {self.currency}"


class RefundDecisionChange(TenantOwned):
    """Audit of a staff re-evaluation of a refund's rule (old and new decision)."""

    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="decision_changes")
    old_rule_name = models.CharField(max_length=200, blank=True)
    new_rule_name = models.CharField(max_length=200, blank=True)
    old_explanation = models.CharField(max_length=500, blank=True)
    new_explanation = models.CharField(max_length=500, blank=True)
    old_trigger = models.CharField(max_length=12)
    new_trigger = models.CharField(max_length=12)
    actor = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class Exchange(TenantOwned):
    """A return line settled by exchange: the replacement variant `exchange_sku`, its unit
    price (when known) and the price difference (replacement - returned net value,
    positive = the customer owes). The replacement ships as an OUTBOUND shipment;
    recording that shipment reaches the `exchanged` outcome."""

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="exchanges"
    )
    return_line = models.ForeignKey(ReturnLine, on_delete=models.CASCADE, related_name="exchanges")
    exchange_sku = models.CharField(max_length=255)
    replacement_unit_price = money_field(null=True, blank=True, default=None)
    price_difference = money_field(null=True, blank=True, default=None)
    currency = models.CharField(max_length=3)
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    shipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "return_line"], name="exchange_one_per_line")
        ]

    def __str__(self) -> str:
        return f"exchange {self.return_line_id} -> {self.exchange_sku}"
