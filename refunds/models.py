"""Refunds: one per return and outcome, with its rule decision and its state."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from refunds.states import RefundState
from returns_portal.tenancy.models import TenantOwned
from rma.models import ReturnRequest, money_field


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
