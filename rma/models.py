"""The return's world: orders, customers, return centres, returns, lines,
photos, shipments and the return's clock (milestones, exceptions, SLA).

Field names marked contract in DESIGN.md section 4 keep their names. Money is
`Decimal(18, 3)` in major units with its currency, quantized to the
currency's exponent by the services that write it. Times are UTC.
"""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from returns_portal.tenancy.models import (
    Tenant,
    TenantOwned,
    subdivision_error,
    validate_country_code,
    validate_time_zone,
)
from rma.money import MONEY_FIELD_KWARGS, MoneyError, currency_exponent, money_map_read
from rma.states import MilestoneName, MilestoneSource, Precision, ReturnStatus


def money_field(**kwargs: Any) -> models.DecimalField:
    """A money column: Decimal(18, 3) in major units (DESIGN.md section 7)."""
    kwargs.setdefault("default", Decimal("0"))
    return models.DecimalField(
        max_digits=MONEY_FIELD_KWARGS["max_digits"],
        decimal_places=MONEY_FIELD_KWARGS["decimal_places"],
        **kwargs,
    )


#: How a refused money-map entry is worded (`MoneyError.code` -> message).
_MONEY_MAP_MESSAGES = {
    "not_a_map": _('Use an object like {"USD": "5.00"}.'),
    "unknown_currency": _("%(currency)s is not an ISO 4217 currency code."),
    "invalid": _("%(currency)s: %(amount)s is not an amount."),
    "not_finite": _("%(currency)s: %(amount)s is not an amount."),
    "negative": _("%(currency)s: an amount cannot be negative."),
    "too_large": _("%(currency)s: %(amount)s is too large."),
    "too_precise": _("%(currency)s: at most %(places)s decimals."),
}


def validate_money_map(value: Any) -> None:
    """A per-currency map of configured amounts (`{"USD": "5.00"}`): known ISO 4217
    codes, finite amounts >= 0 with at most the currency's decimals, within a money
    column (DESIGN.md section 7; `rma.money.amount_check`)."""
    try:
        money_map_read(value)
    except MoneyError as exc:
        places = currency_exponent(exc.currency) if exc.code == "too_precise" else 0
        raise ValidationError(
            _MONEY_MAP_MESSAGES.get(exc.code, _MONEY_MAP_MESSAGES["invalid"]),
            # Not the bare code: a form field's own message for `invalid` would replace it.
            code=f"money_{exc.code}",
            params={"currency": exc.currency, "amount": exc.amount, "places": places},
        ) from exc


#: Bounds of the configurable SLA durations: elapsed hours up to 30 days,
#: business days up to 60 (about three months).
MAX_SLA_HOURS = 720
MAX_SLA_BUSINESS_DAYS = 60


def sla_hours(default: int | None, **kwargs: Any) -> models.PositiveIntegerField:
    """An SLA target in elapsed hours, 1 to `MAX_SLA_HOURS`."""
    return models.PositiveIntegerField(
        default=default,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_HOURS)],
        **kwargs,
    )


def sla_business_days(default: int) -> models.PositiveIntegerField:
    """An SLA target in business days, 1 to `MAX_SLA_BUSINESS_DAYS`."""
    return models.PositiveIntegerField(
        default=default,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_BUSINESS_DAYS)],
    )


def new_line_id() -> str:
    return "li_" + secrets.token_hex(8)


def new_return_token() -> str:
    """A public tracking token: 192 random bits, URL-safe (DESIGN.md section 4: >= 128 bits)."""
    return secrets.token_urlsafe(24)


# --------------------------------------------------------------------------
# Customers and orders
# --------------------------------------------------------------------------
class Customer(TenantOwned):
    """A shopper of one tenant, keyed by e-mail lower-cased in Python and queried exactly."""

    email_normalized = models.CharField(max_length=254)
    external_id = models.CharField(max_length=64, blank=True)
    name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email_normalized"], name="customer_unique_email"
            ),
        ]

    def __str__(self) -> str:
        return self.email_normalized

    @staticmethod
    def normalize_email(email: str) -> str:
        """Lower-case and strip, in Python (DESIGN.md section 4)."""
        return (email or "").strip().lower()


class OrderSource(models.TextChoices):
    SHOPIFY_CSV = "shopify_csv", _("Shopify orders export")
    API = "api", _("API")


class RiskLevel(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    UNKNOWN = "", _("Unknown")


class Order(TenantOwned):
    """An order as the merchant's shop recorded it.

    Contract names: `number` as shown (`#1001`), `email`, `placed_at` (UTC),
    `total`, `currency`, `taxes_included`. `number_key` is the number as
    customers type it (no `#`, lower-case) and is unique per tenant.
    Voided and cancelled orders are imported but never returnable; an order
    without e-mail cannot be looked up in the portal.
    """

    number = models.CharField(max_length=64)
    number_key = models.CharField(max_length=64, editable=False)
    shopify_id = models.CharField(max_length=32, blank=True)
    source = models.CharField(
        max_length=20, choices=OrderSource.choices, default=OrderSource.SHOPIFY_CSV
    )
    email = models.CharField(max_length=254, blank=True)
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    currency = models.CharField(max_length=3)
    placed_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Outbound delivery, when known")
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    financial_status = models.CharField(max_length=32, blank=True)
    fulfillment_status = models.CharField(max_length=32, blank=True)
    is_cancelled = models.BooleanField(default=False)
    is_voided = models.BooleanField(default=False)
    taxes_included = models.BooleanField(default=False)
    subtotal = money_field()
    shipping = money_field()
    taxes = money_field()
    discount_amount = money_field()
    discount_code = models.CharField(max_length=255, blank=True)
    total = money_field()
    refunded_amount = money_field()
    outstanding_balance = money_field()
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    tags = models.JSONField(default=list, blank=True)
    duties = money_field()
    tax_lines = models.JSONField(
        default=list, blank=True, help_text=_("The export's Tax N Name/Value pairs")
    )
    shipping_method = models.CharField(max_length=255, blank=True)
    shipping_name = models.CharField(max_length=255, blank=True)
    shipping_company = models.CharField(max_length=255, blank=True)
    shipping_address1 = models.CharField(max_length=255, blank=True)
    shipping_address2 = models.CharField(max_length=255, blank=True)
    shipping_city = models.CharField(max_length=255, blank=True)
    shipping_zip = models.CharField(max_length=32, blank=True)
    shipping_province = models.CharField(max_length=64, blank=True)
    shipping_country = models.CharField(max_length=2, blank=True)
    shipping_phone = models.CharField(max_length=64, blank=True)
    payment_method = models.CharField(max_length=255, blank=True)
    payment_reference = models.CharField(max_length=255, blank=True)
    note = models.TextField(blank=True)
    note_attributes = models.TextField(blank=True)
    phone = models.CharField(max_length=64, blank=True)
    source_name = models.CharField(
        max_length=100, blank=True, help_text=_("Sales channel, e.g. web, pos")
    )
    accepts_marketing = models.BooleanField(null=True, blank=True)
    export_extra = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Order columns of the export kept verbatim (billing address, POS data, ...)"),
    )
    source_row = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Physical line of the order's first row in its export")
    )
    imported_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number_key"], name="order_unique_number"),
            models.UniqueConstraint(
                fields=["tenant", "shopify_id"],
                condition=~Q(shopify_id=""),
                name="order_unique_shopify_id",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "email"], name="order_tenant_email"),
            # The import looks orders up by number key OR Shopify id; the partial
            # unique index above cannot serve `shopify_id = %s` (its predicate is
            # not implied by a bound parameter), so without this the OR scans.
            models.Index(fields=["tenant", "shopify_id"], name="order_tenant_shopify_id"),
        ]

    def __str__(self) -> str:
        return self.number

    @staticmethod
    def normalize_number(number: str) -> str:
        """`#1001`, ` 1001 `, `#1001 ` -> `1001` (customers type it either way)."""
        return (number or "").strip().lstrip("#").strip().lower()

    def save(self, *args, **kwargs) -> None:
        self.number_key = self.normalize_number(self.number)
        super().save(*args, **kwargs)

    @property
    def is_returnable_state(self) -> bool:
        """False for voided and cancelled orders (never returnable)."""
        return not (self.is_cancelled or self.is_voided)


class OrderLine(TenantOwned):
    """One line item. Contract names: `order`, `sku`, `quantity`, `unit_price`,
    `discount` (the line's total discount), and the public `line_id`.

    `fulfilled_quantity` and `refunded_quantity` are in units, as the export
    says; lines that do not ship (`requires_shipping` false: gift cards, gift
    wrap, services) are kept and never returnable.
    """

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    line_id = models.CharField(max_length=32, default=new_line_id, editable=False)
    position = models.PositiveIntegerField()
    sku = models.CharField(max_length=255, blank=True)
    title = models.CharField(max_length=500, blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = money_field()
    compare_at_price = money_field(null=True, blank=True, default=None)
    discount = money_field()
    requires_shipping = models.BooleanField(default=True)
    taxable = models.BooleanField(default=True)
    is_gift_card = models.BooleanField(default=False)
    fulfillment_status = models.CharField(max_length=32, blank=True)
    fulfilled_quantity = models.PositiveIntegerField(default=0)
    refunded_quantity = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["order_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "order", "position"], name="orderline_unique_position"
            ),
            models.UniqueConstraint(fields=["tenant", "line_id"], name="orderline_unique_line_id"),
        ]

    def __str__(self) -> str:
        return f"{self.order.number} #{self.position} {self.sku or self.title}"

    @property
    def is_returnable_kind(self) -> bool:
        """False for lines that never ship (gift cards, gift wrap, services)."""
        return self.requires_shipping and not self.is_gift_card


# --------------------------------------------------------------------------
# Return centres and SLA policy
# --------------------------------------------------------------------------
class ReturnCentre(TenantOwned):
    """Where returns go. Its country, subdivision and zone are the business-day calendar."""

    name = models.CharField(max_length=200)
    address = models.TextField(blank=True)
    country = models.CharField(max_length=2, validators=[validate_country_code])
    subdivision = models.CharField(max_length=10, blank=True)
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="returncentre_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.country = (self.country or "").strip().upper()
        self.subdivision = (self.subdivision or "").strip().upper()
        error = subdivision_error(self.country, self.subdivision)
        if error is not None:
            raise ValidationError({"subdivision": error})


class SlaPolicy(TenantOwned):
    """SLA targets per tenant (DESIGN.md section 6 defaults; MISSION "SLA targets per step").

    Hours are elapsed hours (72 h = 259,200 s whatever the clocks do);
    business days follow the return centre's calendar (`rma.sla`). Every
    duration is bounded (`MAX_SLA_HOURS`, `MAX_SLA_BUSINESS_DAYS`): a due
    time must stay a date the calendar and the database can hold.
    """

    first_scan_hours = sla_hours(72)
    transit_domestic_business_days = sla_business_days(3)
    transit_international_business_days = sla_business_days(10)
    checkin_hours = sla_hours(24)
    inspection_hours = sla_hours(48)
    refund_business_days = sla_business_days(1)
    no_movement_days = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(5), MaxValueValidator(7)]
    )
    # Exceptions and alerts (issue 5; MISSION "Exceptions, caught early").
    claimed_dropoff_scan_hours = models.PositiveIntegerField(
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text=_("Hours after the customer says 'dropped off' before a missing scan is flagged"),
    )
    alert_no_scan = models.BooleanField(
        default=True, help_text=_("E-mail the customer when the parcel has no first scan in time")
    )
    alert_no_movement = models.BooleanField(
        default=True, help_text=_("E-mail the customer when the parcel stops moving")
    )
    loyal_min_orders = models.PositiveIntegerField(
        default=3,
        help_text=_(
            "A customer with at least this many earlier orders may be offered a replacement"
        ),
    )
    loyal_tags = models.CharField(
        max_length=200,
        default="vip",
        blank=True,
        help_text=_("Comma-separated customer or order tags that make a customer loyal"),
    )
    auto_escalate_after_hours = sla_hours(
        48,
        null=True,
        blank=True,
        help_text=_("Escalate an open exception after this many hours; empty turns it off"),
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(inherit=False)

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [models.UniqueConstraint(fields=["tenant"], name="slapolicy_one_per_tenant")]

    def __str__(self) -> str:
        return f"SLA policy of {self.tenant.name}"

    @property
    def loyal_tag_set(self) -> frozenset[str]:
        """`loyal_tags` as lower-cased tags (`"VIP, gold"` -> `{"vip", "gold"}`)."""
        return frozenset(t.strip().lower() for t in self.loyal_tags.split(",") if t.strip())


class SlaTransitRoute(TenantOwned):
    """A transit target for one route, in business days after the first scan
    (MISSION "SLA targets per step": transit 3-10 days by country/route).

    Matched on the shipment's destination country (the return centre's when
    the shipment does not say) and, when set, its origin country; a route with
    an origin beats one without. Without a matching route the policy's
    domestic/international default applies (`rma.services.transit_business_days`).
    """

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="transit_routes")
    origin_country = models.CharField(
        max_length=2,
        blank=True,
        validators=[validate_country_code],
        help_text=_("ISO 3166-1 alpha-2; empty matches any origin"),
    )
    destination_country = models.CharField(
        max_length=2, validators=[validate_country_code], help_text=_("ISO 3166-1 alpha-2")
    )
    business_days = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_SLA_BUSINESS_DAYS)]
    )
    history = HistoricalRecords(inherit=False)

    class Meta:
        verbose_name = "SLA transit route"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "policy", "origin_country", "destination_country"],
                name="slatransitroute_unique_route",
            )
        ]

    def __str__(self) -> str:
        origin = self.origin_country or "*"
        return f"{origin} -> {self.destination_country}: {self.business_days} business days"

    def clean(self) -> None:
        self.origin_country = (self.origin_country or "").strip().upper()
        self.destination_country = (self.destination_country or "").strip().upper()


# --------------------------------------------------------------------------
# Return policy and reasons (admin-editable, with history)
# --------------------------------------------------------------------------
class ReturnPolicy(TenantOwned):
    """A tenant's return policy (MISSION "Customer portal"; DESIGN.md sections 4, 8).

    - `window_days`: the return window, counted from the order's outbound
      delivery when known, else from its fulfillment (else, as our fallback,
      from the order date); the customer is told which. The window closes at
      the end of the local day (tenant's zone) `window_days` after that start.
    - `final_sale_skus`, `final_sale_tags`: lines whose SKU (case-insensitive)
      or whose line or order tags (case-insensitive) match are final sale.
    - `pickup_enabled`: whether customers may ask for a pickup.
    - `label_carrier`: the carrier code labels are bought from (`rma.labels`);
      `sandbox` until the tenant's carriers are configured (DESIGN.md section 8).
    """

    window_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )
    final_sale_skus = models.JSONField(default=list, blank=True)
    final_sale_tags = models.JSONField(default=list, blank=True)
    pickup_enabled = models.BooleanField(default=True)
    label_carrier = models.CharField(max_length=32, default="sandbox")
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(inherit=False)

    class Meta:
        verbose_name = "return policy"
        verbose_name_plural = "return policies"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="returnpolicy_one_per_tenant")
        ]

    def __str__(self) -> str:
        return f"Return policy ({self.window_days} days)"


class ReturnReason(TenantOwned):
    """A return reason a tenant offers (DESIGN.md section 10 defaults), with
    `requires_photo` (damage claims), `active` and display `position`."""

    code = models.SlugField(max_length=50)
    label = models.CharField(max_length=200)
    requires_photo = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    history = HistoricalRecords(inherit=False)

    class Meta:
        ordering = ["position", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="returnreason_unique_code")
        ]

    def __str__(self) -> str:
        return self.label


# --------------------------------------------------------------------------
# Returns
# --------------------------------------------------------------------------
class RmaSequence(models.Model):
    """Per-tenant RMA number counter; incremented under a row lock."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    next_value = models.PositiveBigIntegerField(default=100001)

    def __str__(self) -> str:
        return f"next RMA-{self.next_value}"


class ReturnMethod(models.TextChoices):
    DROP_OFF = "drop_off", _("Drop-off")
    PICKUP = "pickup", _("Pickup")


class ReturnRequest(TenantOwned):
    """A return (RMA). `rma_number` like `RMA-100001` from a per-tenant counter;
    `token` is the unguessable key of the public tracking page.

    Denormalized summary for the portal (written only by `rma` services):
    `status`, `refund_state`, `refund_estimate_*`; due columns for detection.
    """

    rma_number = models.CharField(max_length=20)
    token = models.CharField(max_length=64, unique=True, default=new_return_token, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="returns")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="returns"
    )
    return_centre = models.ForeignKey(
        ReturnCentre, null=True, blank=True, on_delete=models.PROTECT, related_name="returns"
    )
    email = models.CharField(max_length=254, blank=True)
    method = models.CharField(
        max_length=10, choices=ReturnMethod.choices, default=ReturnMethod.DROP_OFF
    )
    pickup_address = models.TextField(blank=True)
    pickup_window_start = models.DateTimeField(null=True, blank=True)
    pickup_window_end = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=ReturnStatus.choices, default=ReturnStatus.REQUESTED
    )
    language = models.CharField(max_length=10, default="en")
    submission_key = models.CharField(
        max_length=64, blank=True, help_text=_("De-duplicates double submits")
    )
    customer_dropoff_claimed_at = models.DateTimeField(null=True, blank=True)
    refund_rule_snapshot = models.JSONField(default=dict, blank=True)
    # Denormalized refund summary, written through rma services by refunds.
    refund_state = models.CharField(max_length=20, default="pending")
    refund_estimate_from = models.DateTimeField(null=True, blank=True)
    refund_estimate_to = models.DateTimeField(null=True, blank=True)
    refund_estimate_text = models.CharField(max_length=300, blank=True)
    # The same text in every language of settings.LANGUAGES ({"de": "..."}), so a page
    # shown in another language than the return's never mixes two.
    refund_estimate_texts = models.JSONField(default=dict, blank=True)
    # Due columns (kept current by services; partial indexes on open rows).
    checkin_due_at = models.DateTimeField(null=True, blank=True)
    inspection_due_at = models.DateTimeField(null=True, blank=True)
    dropoff_scan_due_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Customer said 'dropped off': carrier scan due by")
    )
    # The expected refund ("value at risk" in the exception queue), written by
    # refunds through `return_refund_summary_update`; null until computed.
    expected_refund_amount = money_field(null=True, blank=True, default=None)
    expected_refund_currency = models.CharField(max_length=3, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "rma_number"], name="return_unique_rma_number"
            ),
            models.UniqueConstraint(
                fields=["tenant", "submission_key"],
                condition=~Q(submission_key=""),
                name="return_unique_submission",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "created_at"], name="return_tenant_status"),
            models.Index(fields=["tenant", "order"], name="return_tenant_order"),
            models.Index(
                fields=["checkin_due_at"],
                condition=Q(closed_at__isnull=True, checkin_due_at__isnull=False),
                name="return_checkin_due_open",
            ),
            models.Index(
                fields=["inspection_due_at"],
                condition=Q(closed_at__isnull=True, inspection_due_at__isnull=False),
                name="return_inspection_due_open",
            ),
            models.Index(
                fields=["dropoff_scan_due_at"],
                condition=Q(closed_at__isnull=True, dropoff_scan_due_at__isnull=False),
                name="return_dropoff_scan_due_open",
            ),
        ]

    def __str__(self) -> str:
        return self.rma_number

    @property
    def check_in_code(self) -> str:
        """The RMA check-in code of `qr.svg` (DESIGN.md section 10): `RMA:<tenant slug>:<rma_number>`."""
        return f"RMA:{self.tenant.slug}:{self.rma_number}"

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None


class ReturnStatusChange(TenantOwned):
    """Audit row for every return status change (rma/states.py)."""

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="status_changes"
    )
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=200)
    reason = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["tenant", "return_request", "at"], name="statuschange_return")
        ]


class LineResolution(models.TextChoices):
    REFUND = "refund", _("Refund")
    STORE_CREDIT = "store_credit", _("Store credit")
    EXCHANGE = "exchange", _("Exchange")


class ReturnLine(TenantOwned):
    """Units of one order line in a return, with the customer's reason (a reason code)."""

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="lines"
    )
    order_line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="return_lines")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    reason = models.CharField(max_length=50)
    note = models.TextField(blank=True)
    resolution = models.CharField(
        max_length=20, choices=LineResolution.choices, default=LineResolution.REFUND
    )
    exchange_sku = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["return_request_id", "pk"]
        indexes = [models.Index(fields=["tenant", "order_line"], name="returnline_orderline")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.order_line.sku or self.order_line.title}"


def photo_upload_to(instance: ReturnPhoto, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/photos/{instance.public_id}.{filename.rsplit('.', 1)[-1]}"


class ReturnPhoto(TenantOwned):
    """A photo of a return line, re-encoded without metadata; served only through a
    permission-checked view by its `public_id`."""

    return_line = models.ForeignKey(ReturnLine, on_delete=models.CASCADE, related_name="photos")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    file = models.FileField(upload_to=photo_upload_to)
    content_type = models.CharField(max_length=50)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)


# --------------------------------------------------------------------------
# Shipments (the return's parcels)
# --------------------------------------------------------------------------
class ShipmentDirection(models.TextChoices):
    INBOUND = "inbound", _("Inbound (customer to return centre)")
    OUTBOUND = "outbound", _("Outbound (replacement to customer)")


class ShipmentStatus(models.TextChoices):
    """Normalized shipment status (DESIGN.md section 5). Never null."""

    UNKNOWN = "unknown", _("Unknown")
    LABEL_CREATED = "label_created", _("Label created")
    ACCEPTED = "accepted", _("Accepted by carrier")
    IN_TRANSIT = "in_transit", _("In transit")
    OUT_FOR_DELIVERY = "out_for_delivery", _("Out for delivery")
    DELIVERED = "delivered", _("Delivered")
    EXCEPTION = "exception", _("Exception")


class ExceptionReason(models.TextChoices):
    DELAYED = "delayed", _("Delayed")
    FAILED_ATTEMPT = "failed_attempt", _("Failed delivery attempt")
    ADDRESS_ISSUE = "address_issue", _("Address issue")
    DAMAGED = "damaged", _("Damaged")
    LOST = "lost", _("Lost")
    HELD = "held", _("Held (customs or regulatory)")
    AWAITING_PICKUP = "awaiting_pickup", _("Awaiting pickup")
    RETURNED_TO_SENDER = "returned_to_sender", _("Returned to sender")
    REFUSED = "refused", _("Refused")
    CANCELLED = "cancelled", _("Cancelled")
    MISROUTED = "misrouted", _("Misrouted")
    OTHER = "other", _("Other")


class LabelState(models.TextChoices):
    NONE = "none", _("No label (number given)")
    PENDING = "pending", _("Pending")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


def label_upload_to(instance: Shipment, filename: str) -> str:
    return f"tenants/{instance.tenant_id}/labels/{uuid.uuid4().hex}.pdf"


class Shipment(TenantOwned):
    """A parcel of a return. `carrier` is the physical carrier's code (an
    aggregator's only when the physical carrier is unknown); `tracking_provider`
    reports its events. Unique `(tenant, carrier, tracking_number, leg)`.

    `status`, `exception_reason`, `last_scan_*` are derived from tracking events
    by the tracking app and written through `rma.services.shipment_summary_update`.
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="shipments"
    )
    direction = models.CharField(
        max_length=10, choices=ShipmentDirection.choices, default=ShipmentDirection.INBOUND
    )
    is_primary = models.BooleanField(default=True)
    carrier = models.CharField(max_length=32)
    tracking_provider = models.CharField(max_length=32)
    tracking_number = models.CharField(max_length=64)
    leg = models.PositiveSmallIntegerField(default=1)
    number_check = models.CharField(
        max_length=10,
        default="unknown",
        help_text=_("Check digit: valid, invalid (flagged) or unknown"),
    )
    status = models.CharField(
        max_length=20, choices=ShipmentStatus.choices, default=ShipmentStatus.UNKNOWN
    )
    exception_reason = models.CharField(max_length=20, choices=ExceptionReason.choices, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_scan_location = models.CharField(max_length=255, blank=True)
    last_scan_time_zone = models.CharField(max_length=64, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    label_state = models.CharField(
        max_length=10, choices=LabelState.choices, default=LabelState.NONE
    )
    label_file = models.FileField(upload_to=label_upload_to, blank=True)
    label_error = models.CharField(max_length=500, blank=True)
    label_attempts = models.PositiveSmallIntegerField(default=0)
    label_next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a pending label is tried again (rma.labels)")
    )
    label_cost = money_field(null=True, blank=True, default=None)
    label_currency = models.CharField(max_length=3, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True)
    origin_country = models.CharField(max_length=2, blank=True)
    destination_country = models.CharField(max_length=2, blank=True)
    # Due columns and polling schedule (partial indexes on open rows).
    first_scan_due_at = models.DateTimeField(null=True, blank=True)
    next_event_due_at = models.DateTimeField(null=True, blank=True)
    transit_due_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "carrier", "tracking_number", "leg"],
                condition=~Q(tracking_number=""),
                name="shipment_unique_number_leg",
            ),
            models.UniqueConstraint(
                fields=["tenant", "return_request", "direction"],
                condition=Q(is_primary=True),
                name="shipment_one_primary",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "tracking_number"], name="shipment_tenant_number"),
            models.Index(
                fields=["first_scan_due_at"],
                condition=Q(first_scan_due_at__isnull=False),
                name="shipment_first_scan_due",
            ),
            models.Index(
                fields=["next_event_due_at"],
                condition=Q(next_event_due_at__isnull=False),
                name="shipment_next_event_due",
            ),
            models.Index(
                fields=["transit_due_at"],
                condition=Q(transit_due_at__isnull=False),
                name="shipment_transit_due",
            ),
            models.Index(
                fields=["next_poll_at"],
                condition=Q(next_poll_at__isnull=False),
                name="shipment_poll_due",
            ),
            models.Index(
                fields=["created_at"],
                condition=Q(label_state="pending"),
                name="shipment_label_pending",
            ),
            # Detection (issue 5): shipments the carrier reports in exception,
            # and shipments whose events are all unmapped, since when.
            models.Index(
                fields=["status_at"],
                condition=Q(status="exception"),
                name="shipment_in_exception",
            ),
            models.Index(
                Coalesce(F("status_at"), F("last_event_at")),
                condition=Q(status="unknown", last_event_at__isnull=False),
                name="shipment_unmapped_since",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}" + (
            f" (leg {self.leg})" if self.leg > 1 else ""
        )


# --------------------------------------------------------------------------
# The return's clock: milestones and exceptions
# --------------------------------------------------------------------------
class Milestone(TenantOwned):
    """A reached milestone of a return; unique per (return, name).

    Written only by `rma.services.milestone_reach`. A row with `dispatched_at`
    null is an outbox entry: its reactions (returns_portal/workflows.py) are
    still owed.
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="milestones"
    )
    name = models.CharField(max_length=20, choices=MilestoneName.choices)
    reached_at = models.DateTimeField()
    precision = models.CharField(max_length=10, choices=Precision.choices, default=Precision.SECOND)
    source = models.CharField(max_length=10, choices=MilestoneSource.choices)
    actor = models.CharField(max_length=200, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "return_request", "name"], name="milestone_unique_name"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=Q(dispatched_at__isnull=True),
                name="milestone_outbox",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.reached_at:%Y-%m-%d %H:%M}"


class ExceptionKind(models.TextChoices):
    NO_FIRST_SCAN = "no_first_scan", _("No first scan")
    NO_MOVEMENT = "no_movement", _("No movement")
    CLAIMED_DROPOFF_NO_SCAN = "claimed_dropoff_no_scan", _("Dropped off, no carrier scan")
    CARRIER_EXCEPTION = "carrier_exception", _("Carrier exception")
    TRANSIT_OVERDUE = "transit_overdue", _("Transit overdue")
    DELIVERED_NOT_RECEIVED = "delivered_not_received", _("Delivered, not checked in")
    INSPECTION_OVERDUE = "inspection_overdue", _("Inspection overdue")
    REFUND_OVERDUE = "refund_overdue", _("Refund overdue")
    WAREHOUSE_MISMATCH = "warehouse_mismatch", _("Warehouse mismatch")
    DAMAGED_PACKAGE = "damaged_package", _("Damaged package")
    UNMAPPED_STATUS = "unmapped_status", _("Unmapped carrier status")


class ExceptionState(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class ReturnException(TenantOwned):
    """A missed milestone or a problem with a return (DESIGN.md section 5).

    At most one open per (return, shipment, kind), by a database constraint
    that treats a missing shipment as one value. Assignment, priority,
    escalation and trace are fields, never states.
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="exceptions"
    )
    shipment = models.ForeignKey(
        Shipment, null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions"
    )
    kind = models.CharField(max_length=32, choices=ExceptionKind.choices)
    state = models.CharField(
        max_length=10, choices=ExceptionState.choices, default=ExceptionState.OPEN
    )
    reason = models.CharField(max_length=100, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    condition_key = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("What condition opened it; a staff-resolved one is not reopened for it"),
    )
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_code = models.CharField(max_length=50, blank=True)
    resolution_note = models.TextField(blank=True)
    resolved_by_staff = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_exceptions",
    )
    priority = models.PositiveSmallIntegerField(default=2, help_text=_("1 highest"))
    escalated_at = models.DateTimeField(null=True, blank=True)
    trace_ref = models.CharField(max_length=100, blank=True)
    trace_follow_up_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "When the missed target was due (or the problem began); with the "
            "reason, it identifies the condition"
        ),
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                F("tenant"),
                F("return_request"),
                Coalesce(F("shipment"), Value(0)),
                F("kind"),
                condition=Q(state="open"),
                name="exception_one_open",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "kind", "opened_at"], name="exception_queue"),
            # The staff queue's default order: oldest overdue first.
            models.Index(fields=["tenant", "state", "due_at"], name="exception_queue_due"),
            # Detection: the open exceptions of a kind (self-resolution), and
            # those not yet escalated (auto-escalation by age).
            models.Index(fields=["kind"], condition=Q(state="open"), name="exception_open_kind"),
            models.Index(
                fields=["opened_at"],
                condition=Q(state="open", escalated_at__isnull=True),
                name="exception_escalation_due",
            ),
            # Detection: "resolved by staff for this condition, do not reopen".
            models.Index(
                fields=["return_request"],
                condition=Q(resolved_by_staff=True),
                name="exception_staff_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.state})"


class ExceptionAction(models.TextChoices):
    ASSIGNED = "assigned", _("Assigned")
    NOTE = "note", _("Note")
    TRACE_STARTED = "trace_started", _("Carrier trace started")
    PROOF_REQUESTED = "proof_requested", _("Proof of drop-off requested")
    REPLACEMENT_OFFERED = "replacement_offered", _("Replacement offered")
    ESCALATED = "escalated", _("Escalated")
    AUTO_ESCALATED = "auto_escalated", _("Escalated automatically")
    RESOLVED = "resolved", _("Resolved")


class ExceptionActivity(TenantOwned):
    """Audit row for every staff action on an exception (who, when, what).

    Written only by `rma.exception_services`; the queue's detail page shows
    them in order. `actor` is null for the system (auto-escalation).
    """

    exception = models.ForeignKey(
        ReturnException, on_delete=models.CASCADE, related_name="activities"
    )
    action = models.CharField(max_length=20, choices=ExceptionAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    detail = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "exception activities"
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["tenant", "exception", "at"], name="exceptionactivity_exception")
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor_label or 'system'}"


class ReplacementOfferState(models.TextChoices):
    OFFERED = "offered", _("Offered")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled")


class ReplacementOffer(TenantOwned):
    """An exchange request staff made for a loyal customer from the exception queue
    (MISSION: "offer a replacement to loyal buyers"). At most one `offered` per return;
    the refunds/exchange flow takes it from here.
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="replacement_offers"
    )
    exception = models.ForeignKey(
        ReturnException, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(
        max_length=10, choices=ReplacementOfferState.choices, default=ReplacementOfferState.OFFERED
    )
    loyalty_reason = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    offered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    offered_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "return_request"],
                condition=Q(state="offered"),
                name="replacementoffer_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"Replacement for {self.return_request_id} ({self.state})"


# --------------------------------------------------------------------------
# Notifications
# --------------------------------------------------------------------------
class NotificationState(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SUPPRESSED = "suppressed", _("Suppressed")


class Notification(TenantOwned):
    """An e-mail owed to a customer or staff; unique per (tenant, key), so it is sent once.

    A `queued` row is an outbox entry; `rma.tasks.notification_send` sends it.
    """

    return_request = models.ForeignKey(
        ReturnRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=50)
    key = models.CharField(max_length=200)
    to_email = models.CharField(max_length=254)
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    state = models.CharField(
        max_length=12, choices=NotificationState.choices, default=NotificationState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="notification_unique_key")
        ]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(state="queued"), name="notification_outbox"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to_email} ({self.state})"


# --------------------------------------------------------------------------
# Warehouse: check-in and inspection (refunds issue; services in rma/warehouse.py)
# --------------------------------------------------------------------------
class PackageCondition(models.TextChoices):
    """Check-in `condition` (DESIGN.md section 5, contract)."""

    INTACT = "intact", _("Intact")
    DAMAGED = "damaged", _("Damaged")


class InspectionGrade(models.TextChoices):
    """Inspection `grade` (DESIGN.md section 5, contract)."""

    A = "A", _("A: as new")
    B = "B", _("B: opened, light wear")
    C = "C", _("C: worn or damaged, refurbishable")
    D = "D", _("D: unsellable")


class Disposition(models.TextChoices):
    RESTOCK = "restock", _("Restock")
    REFURBISH = "refurbish", _("Refurbish")
    LIQUIDATE = "liquidate", _("Liquidate")
    DISPOSE = "dispose", _("Dispose")


class CheckInChannel(models.TextChoices):
    SCANNER = "scanner", _("Staff check-in page")
    API = "api", _("API")
    ADMIN = "admin", _("Admin")


class CheckIn(TenantOwned):
    """The warehouse check-in of a return: one per return (a repeat returns this row).

    Written only by `rma.warehouse.checkin_record`. `checked_in_at` is UTC;
    `actor` names who did it (a user name or `api:<key name>`).
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="checkins"
    )
    condition = models.CharField(max_length=10, choices=PackageCondition.choices)
    checked_in_at = models.DateTimeField()
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=CheckInChannel.choices)
    scanned_code = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "check-in"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "return_request"], name="checkin_one_per_return"
            )
        ]
        indexes = [models.Index(fields=["tenant", "checked_in_at"], name="checkin_tenant_time")]

    def __str__(self) -> str:
        return f"check-in {self.return_request_id} ({self.condition})"


def inspection_photo_upload_to(instance: Inspection, filename: str) -> str:
    return (
        f"tenants/{instance.tenant_id}/inspections/{uuid.uuid4().hex}.{filename.rsplit('.', 1)[-1]}"
    )


class Inspection(TenantOwned):
    """Inspection of `quantity` units of one return line (several rows may cover a line).

    Written only by `rma.warehouse.inspection_record`. The units of a line
    inspected never exceed its returned quantity. `matches` false means the
    item received is not what the line says (opens `warehouse_mismatch`).
    """

    return_request = models.ForeignKey(
        ReturnRequest, on_delete=models.CASCADE, related_name="inspections"
    )
    return_line = models.ForeignKey(
        ReturnLine, on_delete=models.CASCADE, related_name="inspections"
    )
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    grade = models.CharField(max_length=1, choices=InspectionGrade.choices)
    disposition = models.CharField(max_length=10, choices=Disposition.choices)
    matches = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    photo = models.FileField(upload_to=inspection_photo_upload_to, blank=True)
    inspected_at = models.DateTimeField()
    inspected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=CheckInChannel.choices)

    class Meta:
        ordering = ["inspected_at", "pk"]
        indexes = [
            models.Index(fields=["tenant", "return_request"], name="inspection_tenant_return"),
            models.Index(
                fields=["tenant", "disposition", "inspected_at"], name="inspection_disposition"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.return_line_id}: {self.grade}/{self.disposition}"
