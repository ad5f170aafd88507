"""API input serializers (they parse and validate shapes; the services decide) and
output serializers that document the JSON shapes for drf-spectacular."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from rest_framework import serializers

from rma.models import ReturnMethod, RiskLevel
from rma.states import ReturnStatus


# --------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------
def money() -> serializers.DecimalField:
    """An optional money amount: Decimal(18, 3) in major units (DESIGN.md section 7), not
    negative."""
    return serializers.DecimalField(
        max_digits=18, decimal_places=3, required=False, allow_null=True, min_value=Decimal(0)
    )


class InstantField(serializers.DateTimeField):
    """ISO 8601 date-time whose UTC instant exists: `9999-12-31T23:59:59-14:00` is a 400
    (`invalid`), not the OverflowError DRF lets through."""

    def to_internal_value(self, value: Any) -> datetime:
        try:
            return super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid", format="ISO 8601 with a year the UTC calendar holds")


class OrderLineIn(serializers.Serializer):
    line_id = serializers.CharField(required=False, allow_blank=True, max_length=32)
    sku = serializers.CharField(required=False, allow_blank=True, max_length=255)
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    vendor = serializers.CharField(required=False, allow_blank=True, max_length=255)
    quantity = serializers.IntegerField(min_value=0, max_value=1_000_000)
    unit_price = money()
    compare_at_price = money()
    discount = money()
    requires_shipping = serializers.BooleanField(required=False)
    taxable = serializers.BooleanField(required=False)
    is_gift_card = serializers.BooleanField(required=False)
    fulfillment_status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    fulfilled_quantity = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=1_000_000
    )
    refunded_quantity = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=100
    )


class OrderIn(serializers.Serializer):
    """The Shopify orders export's fields (DESIGN.md section 4); money in major units."""

    number = serializers.CharField(required=False, max_length=64)
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
    placed_at = InstantField(required=False)
    paid_at = InstantField(required=False, allow_null=True)
    fulfilled_at = InstantField(required=False, allow_null=True)
    delivered_at = InstantField(required=False, allow_null=True)
    cancelled_at = InstantField(required=False, allow_null=True)
    financial_status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    fulfillment_status = serializers.CharField(required=False, allow_blank=True, max_length=32)
    is_voided = serializers.BooleanField(required=False)
    taxes_included = serializers.BooleanField(required=False)
    subtotal = money()
    shipping = money()
    taxes = money()
    discount_amount = money()
    discount_code = serializers.CharField(required=False, allow_blank=True, max_length=255)
    total = money()
    refunded_amount = money()
    outstanding_balance = money()
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=100
    )
    shipping_method = serializers.CharField(required=False, allow_blank=True, max_length=255)
    shipping_name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    shipping_address1 = serializers.CharField(required=False, allow_blank=True, max_length=255)
    shipping_address2 = serializers.CharField(required=False, allow_blank=True, max_length=255)
    shipping_city = serializers.CharField(required=False, allow_blank=True, max_length=255)
    shipping_zip = serializers.CharField(required=False, allow_blank=True, max_length=32)
    shipping_province = serializers.CharField(required=False, allow_blank=True, max_length=64)
    shipping_country = serializers.CharField(required=False, allow_blank=True, max_length=2)
    shipping_phone = serializers.CharField(required=False, allow_blank=True, max_length=64)
    payment_method = serializers.CharField(required=False, allow_blank=True, max_length=255)
    payment_reference = serializers.CharField(required=False, allow_blank=True, max_length=255)
    note = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    lines = OrderLineIn(many=True, allow_empty=False, max_length=500)  # type: ignore[call-arg]

    def validate(self, attrs: dict) -> dict:
        if self.context.get("creating") and not attrs.get("placed_at"):
            raise serializers.ValidationError({"placed_at": ["Required for a new order."]})
        for name in ("placed_at",):
            if name in attrs and attrs[name] is None:
                raise serializers.ValidationError({name: ["May not be null."]})
        return attrs


class ReturnLineIn(serializers.Serializer):
    line_id = serializers.CharField(required=False, allow_blank=True, max_length=32)
    sku = serializers.CharField(required=False, allow_blank=True, max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    reason = serializers.CharField(max_length=50)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    resolution = serializers.ChoiceField(
        choices=["refund", "store_credit", "exchange"], default="refund"
    )
    exchange_sku = serializers.CharField(required=False, allow_blank=True, max_length=255)


class PickupIn(serializers.Serializer):
    address = serializers.CharField(max_length=1000)
    window_start = InstantField()
    window_end = InstantField()


class ShipmentIn(serializers.Serializer):
    carrier = serializers.CharField(max_length=32)
    tracking_number = serializers.CharField(max_length=80)


class ReturnCreateIn(serializers.Serializer):
    """`POST /api/v1/returns/`. Multipart: this JSON in the part `data`, photos in
    `lines.<i>.photos`."""

    order_number = serializers.CharField(max_length=64)
    email = serializers.CharField(max_length=254)
    method = serializers.ChoiceField(choices=ReturnMethod.choices, default=ReturnMethod.DROP_OFF)
    lines = ReturnLineIn(many=True, min_length=1, max_length=200)  # type: ignore[call-arg]
    pickup = PickupIn(required=False, allow_null=True)
    shipment = ShipmentIn(required=False, allow_null=True)
    language = serializers.ChoiceField(
        choices=[code for code, _name in settings.LANGUAGES],
        default=settings.LANGUAGE_CODE,
        help_text="The customer's language for e-mails and the tracking page's texts.",
    )


class ReturnListFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=ReturnStatus.choices, required=False)
    created_after = InstantField(required=False)
    created_before = InstantField(required=False)


# --------------------------------------------------------------------------
# Output (documentation of the shapes built by `presenters`)
# --------------------------------------------------------------------------
class MilestoneOut(serializers.Serializer):
    name = serializers.CharField()
    reached_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    source = serializers.CharField(allow_null=True)  # type: ignore[assignment]  # a field named source
    precision = serializers.CharField(allow_null=True)


class ShipmentOut(serializers.Serializer):
    carrier = serializers.CharField()
    tracking_provider = serializers.CharField()
    tracking_number = serializers.CharField(allow_null=True)
    direction = serializers.CharField()
    is_primary = serializers.BooleanField()
    status = serializers.CharField()
    exception_reason = serializers.CharField(allow_null=True)
    last_scan_at = serializers.DateTimeField(allow_null=True)
    last_scan_location = serializers.CharField(allow_null=True)
    label_state = serializers.CharField()
    label_error = serializers.CharField(allow_null=True)


class ExceptionOut(serializers.Serializer):
    kind = serializers.CharField()
    state = serializers.CharField()
    reason = serializers.CharField(allow_null=True)
    opened_at = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)


class EstimateOut(serializers.Serializer):
    # `from` is a Python keyword: declared through the fields mapping below.
    to = serializers.DateTimeField(allow_null=True)
    text = serializers.CharField(allow_null=True)

    def get_fields(self) -> dict:
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(allow_null=True)
        return fields


class RefundOut(serializers.Serializer):
    state = serializers.CharField()
    amount = serializers.CharField(allow_null=True, help_text="Exact decimals of the currency")
    currency = serializers.CharField()
    method = serializers.CharField()
    rule = serializers.CharField(allow_null=True)
    explanation = serializers.CharField(allow_null=True)
    estimate = EstimateOut()


class ReturnLineOut(serializers.Serializer):
    line_id = serializers.CharField()
    sku = serializers.CharField()
    title = serializers.CharField()
    quantity = serializers.IntegerField()
    reason = serializers.CharField()
    note = serializers.CharField()
    resolution = serializers.CharField()
    photos = serializers.IntegerField(help_text="Number of photos")


class ReturnSummaryOut(serializers.Serializer):
    rma_number = serializers.CharField()
    token = serializers.CharField()
    status = serializers.CharField()
    order_number = serializers.CharField()
    email = serializers.CharField()
    method = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    tracking_url = serializers.URLField()


class ReturnDetailOut(ReturnSummaryOut):
    label_url = serializers.URLField(allow_null=True, help_text="Null while the label is pending")
    current_milestone = serializers.CharField()
    next_milestone = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)
    milestones = MilestoneOut(many=True)
    shipment = ShipmentOut(allow_null=True)
    shipments = ShipmentOut(many=True)
    lines = ReturnLineOut(many=True)
    events = serializers.ListField(child=serializers.DictField(), help_text="Tracking events")
    exceptions = ExceptionOut(many=True)
    refund = RefundOut(allow_null=True)


class OrderOut(OrderIn):
    """The order as stored; money as strings with the currency's decimals."""

    source = serializers.CharField()  # type: ignore[assignment]
    is_cancelled = serializers.BooleanField()


class ErrorOut(serializers.Serializer):
    detail = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    codes = serializers.DictField(required=False, help_text="Error codes, same shape as the errors")
