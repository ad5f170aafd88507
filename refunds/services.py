"""Refund services: the rule decision at creation, approval, amounts under the order
lock, issuing exactly once, gateway outcomes, exchanges, the estimate and closing.

Sources: MISSION "Refund rules"; DESIGN.md sections 5 (refund states, rule
chosen once), 7 (money, normative), 8.6 (issuing with key `refund:<uuid>`).

Exactly once, in one paragraph: a refund is approved by a conditional state
change (`pending -> approved`) under the order, return and refund row locks,
so duplicate milestone reaches and check-ins approve it once. The issue task
claims `approved -> issuing` with a conditional update; only the winner calls
the gateway, OUTSIDE any transaction, with the refund's fixed idempotency key.
A worker that dies after the call leaves the refund `issuing`; after 10
minutes the sweeper re-enqueues it and the recovery path LOOKS IT UP by the
same key (re-sending, with the same key, only when the gateway never saw it).
The sandbox's UNIQUE key and Stripe's `Idempotency-Key` make even that safe.

Refund state changes go through `refunds.states.refund_transition`;
milestones and exceptions through `rma.services`. Lock order: order, return,
refund.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import translation
from django.utils.translation import gettext

from refunds import amounts as amounts_lib
from refunds import rules as rules_lib
from refunds.due_times import refund_due_times_refresh
from refunds.estimate import EstimateInput, bank_delay_text, refund_estimate
from refunds.gateways import RefundRequest, gateway_for
from refunds.gateways.base import ERROR, FAILED, NOT_FOUND, PENDING, SUCCEEDED, GatewayResult
from refunds.gateways.stripe import is_stripe_reference
from refunds.models import (
    Exchange,
    GatewayAccount,
    GatewayProvider,
    Refund,
    RefundDecisionChange,
    RefundMethod,
    RefundOutcome,
    RefundRule,
    RefundSettings,
    RefundTransaction,
    RefundTrigger,
    TransactionKind,
    TransactionStatus,
)
from refunds.states import RefundRaceLost, RefundState, refund_transition
from returns_portal.tenancy.models import Tenant
from returns_portal.tenancy.services import tenant_absolute_url
from rma.models import (
    ExceptionKind,
    ExceptionState,
    LineResolution,
    Milestone,
    Order,
    ReturnException,
    ReturnLine,
    ReturnRequest,
    Shipment,
    ShipmentDirection,
)
from rma.money import MoneyError, format_amount, money_map_read, quantize
from rma.services import (
    business_calendar_for,
    enqueue_on_commit,
    exception_open,
    milestone_reach,
    notification_queue,
    return_outcome_close,
    return_refund_summary_update,
    sla_policy_for,
    sla_targets,
    within_field_bounds,
)
from rma.sla import refund_due
from rma.states import PARCEL_RANK, MilestoneName, MilestoneSource

log = logging.getLogger(__name__)

REFUND_ISSUE_TASK = "refunds.refund_issue"
REFUND_RECHECK_TASK = "refunds.refund_recheck"
ISSUING_STALE_AFTER = timedelta(minutes=10)
#: Open exceptions that hold a refund (DESIGN.md section 5).
HOLDING_EXCEPTIONS = (ExceptionKind.WAREHOUSE_MISMATCH, ExceptionKind.DAMAGED_PACKAGE)
HOLD_EXCEPTION_REASON = "open warehouse exception"
HOLD_MANUAL_REASON = "manual approval required"
HOLD_ZERO_AMOUNT_REASON = "computed amount is zero"
HOLD_SETTINGS_REASON = "invalid refund settings"
LIVE_STATES = (RefundState.APPROVED, RefundState.ISSUING, RefundState.ISSUED)


# --------------------------------------------------------------------------
# Configuration readers
# --------------------------------------------------------------------------
def refund_settings_for(tenant: Tenant | int) -> RefundSettings:
    """The tenant's refund settings (created with DESIGN.md section 7 defaults if missing)."""
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    found, _ = RefundSettings.objects.get_or_create(tenant_id=tenant_id)
    return found


def _money_map(raw: Any, *, what: str) -> dict[str, Decimal]:
    """A stored per-currency map read as `rma.money.money_map_read` reads it. The admin
    refuses bad maps; one stored before it did raises `MoneyError` naming `what`."""
    try:
        return money_map_read(raw)
    except MoneyError as exc:
        raise MoneyError(f"{what}: {exc}", code=exc.code, currency=exc.currency) from exc


def rule_spec_from_model(rule: RefundRule) -> rules_lib.RuleSpec:
    """The pure engine's view of a stored rule. Raises `MoneyError` (a `ValueError`)
    for a value condition stored with a bad amount."""

    def money(name: str) -> dict[str, Decimal]:
        return _money_map(getattr(rule, name), what=f"rule '{rule.name}' {name}")

    return rules_lib.RuleSpec(
        rule_id=rule.pk,
        name=rule.name,
        position=rule.position,
        trigger=rule.trigger,
        method=rule.method,
        store_credit_bonus_percent=rule.store_credit_bonus_percent or Decimal("0"),
        risk_levels=frozenset(rule.risk_levels or []),
        order_total_min=money("order_total_min"),
        order_total_max=money("order_total_max"),
        line_value_min=money("line_value_min"),
        line_value_max=money("line_value_max"),
        reason_codes=frozenset(rule.reason_codes or []),
        skus=frozenset(rule.skus or []),
        line_tags=frozenset(rule.line_tags or []),
        order_tags=frozenset(rule.order_tags or []),
        shipping_countries=frozenset(rule.shipping_countries or []),
        prior_returns_min_count=rule.prior_returns_min_count,
        prior_returns_min_rate=rule.prior_returns_min_rate,
        prior_returns_days=within_field_bounds(
            RefundRule, "prior_returns_days", rule.prior_returns_days
        ),
    )


def rule_specs_for(tenant: Tenant | int) -> list[rules_lib.RuleSpec]:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return [
        rule_spec_from_model(r)
        for r in RefundRule.objects.filter(tenant_id=tenant_id, is_active=True).order_by(
            "position", "pk"
        )
    ]


# --------------------------------------------------------------------------
# Facts for the pure modules
# --------------------------------------------------------------------------
def _earlier_units(return_request: ReturnRequest) -> dict[int, int]:
    """`{order_line_id: units}` in the order's other live returns created before this one."""
    earlier = (
        ReturnLine.objects.filter(
            tenant_id=return_request.tenant_id, return_request__order_id=return_request.order_id
        )
        .exclude(return_request_id=return_request.pk)
        .exclude(return_request__status__in=["cancelled", "rejected"])
        .filter(
            Q(return_request__created_at__lt=return_request.created_at)
            | Q(
                return_request__created_at=return_request.created_at,
                return_request_id__lt=return_request.pk,
            )
        )
        .values("order_line_id")
        .annotate(n=Sum("quantity"))
    )
    return {row["order_line_id"]: row["n"] or 0 for row in earlier}


def line_units_for(
    return_request: ReturnRequest, lines: list[ReturnLine] | None = None
) -> list[tuple[ReturnLine, amounts_lib.LineUnits]]:
    """Each return line as `LineUnits` with its first unit index (refunds.amounts step 1):
    the export's refunded units, then earlier live returns' units, come first."""
    if lines is None:
        lines = list(
            ReturnLine.objects.filter(
                tenant_id=return_request.tenant_id, return_request=return_request
            ).select_related("order_line")
        )
    offsets = _earlier_units(return_request)
    taken: dict[int, int] = {}
    exchanges = {
        e.return_line_id: e
        for e in Exchange.objects.filter(
            tenant_id=return_request.tenant_id, return_request=return_request
        )
    }
    result = []
    for line in lines:
        ol = line.order_line
        first = ol.refunded_quantity + offsets.get(ol.pk, 0) + taken.get(ol.pk, 0)
        taken[ol.pk] = taken.get(ol.pk, 0) + line.quantity
        exchange = exchanges.get(line.pk)
        result.append(
            (
                line,
                amounts_lib.LineUnits(
                    line_id=ol.line_id,
                    unit_price=ol.unit_price,
                    discount=ol.discount,
                    line_quantity=ol.quantity,
                    quantity=line.quantity,
                    first_unit=first,
                    exchange=line.resolution == LineResolution.EXCHANGE,
                    replacement_unit_price=exchange.replacement_unit_price if exchange else None,
                ),
            )
        )
    return result


def _customer_history(return_request: ReturnRequest) -> rules_lib.CustomerHistory:
    order = return_request.order
    customer_q = (
        Q(customer_id=order.customer_id) if order.customer_id else Q(email__iexact=order.email)
    )
    if not order.customer_id and not order.email:
        return rules_lib.CustomerHistory()
    orders = Order.objects.filter(customer_q, tenant_id=return_request.tenant_id)
    returns = ReturnRequest.objects.filter(
        tenant_id=return_request.tenant_id, order__in=orders
    ).exclude(pk=return_request.pk)
    return rules_lib.CustomerHistory(
        return_times=tuple(returns.values_list("created_at", flat=True)),
        order_times=tuple(orders.values_list("placed_at", flat=True)),
    )


def refund_facts_build(return_request: ReturnRequest, *, now: datetime) -> rules_lib.RefundFacts:
    """The rule engine's facts for a return (line values per `refunds.amounts` step 1)."""
    order = return_request.order
    lines = []
    for line, units in line_units_for(return_request):
        value, _values = amounts_lib.line_units_value(units, order.currency)
        lines.append(
            rules_lib.LineFacts(
                line_id=units.line_id,
                sku=line.order_line.sku,
                quantity=line.quantity,
                value=value,
                reason=line.reason,
                tags=tuple(line.order_line.tags or ()),
            )
        )
    return rules_lib.RefundFacts(
        currency=order.currency,
        order_total=order.total,
        risk_level=order.risk_level or "",
        lines=tuple(lines),
        now=now,
        order_tags=tuple(order.tags or ()),
        shipping_country=order.shipping_country or "",
        history=_customer_history(return_request),
    )


# --------------------------------------------------------------------------
# Creation (the return-created hook) and re-evaluation
# --------------------------------------------------------------------------
def _method_for(decision: rules_lib.Decision, return_request: ReturnRequest) -> str:
    resolutions = set(
        ReturnLine.objects.filter(
            tenant_id=return_request.tenant_id, return_request=return_request
        ).values_list("resolution", flat=True)
    )
    if resolutions and resolutions <= {LineResolution.EXCHANGE}:
        return RefundMethod.EXCHANGE
    if resolutions and resolutions <= {LineResolution.STORE_CREDIT, LineResolution.EXCHANGE}:
        return RefundMethod.STORE_CREDIT
    return decision.method


def _decision_at_creation(return_request: ReturnRequest, *, now: datetime) -> rules_lib.Decision:
    """The rule decision for a new return. A rule stored with a bad amount (before the
    admin refused them) must not stop the return: the refund then waits for manual
    approval and the explanation names the rule and the amount."""
    facts = refund_facts_build(return_request, now=now)
    try:
        specs = rule_specs_for(return_request.tenant_id)
    except MoneyError as exc:
        log.warning("tenant %s: %s", return_request.tenant_id, exc)
        return rules_lib.Decision(
            rule_id=None,
            rule_name="",
            trigger=RefundTrigger.MANUAL,
            method=RefundMethod.ORIGINAL_PAYMENT,
            store_credit_bonus_percent=Decimal("0"),
            explanation=f"manual approval: {exc}",
            snapshot={"rule": None, "error": str(exc), "matched_because": [], "skipped": []},
        )
    return rules_lib.choose_rule(specs, facts)


@transaction.atomic
def refund_create_for_return(return_request: ReturnRequest, *, now: datetime) -> Refund:
    """Create the return's `Refund` (state `pending`; `held` for a `manual` rule) with
    the rule chosen ONCE, here (DESIGN.md section 5). Idempotent per return.

    Called by `rma` through its return-created hook, inside the return's
    creation transaction, after the return's lines exist. Also records an
    `Exchange` per exchange line and writes the return's refund summary
    (state, rule snapshot, estimate).
    """
    existing = Refund.objects.filter(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        outcome=RefundOutcome.REFUND,
    ).first()
    if existing is not None:
        return existing
    decision = _decision_at_creation(return_request, now=now)
    method = _method_for(decision, return_request)
    refund = Refund.objects.create(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        outcome=RefundOutcome.REFUND,
        currency=return_request.order.currency,
        method=method,
        trigger=decision.trigger,
        rule_id=decision.rule_id,
        rule_name=decision.rule_name,
        explanation=decision.explanation[:500],
        condition_snapshot=decision.snapshot,
        store_credit_bonus_percent=(
            decision.store_credit_bonus_percent if method == RefundMethod.STORE_CREDIT else 0
        ),
        created_at=now,
        updated_at=now,
    )
    for line in ReturnLine.objects.filter(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        resolution=LineResolution.EXCHANGE,
    ):
        Exchange.objects.get_or_create(
            tenant_id=return_request.tenant_id,
            return_line=line,
            defaults={
                "return_request": return_request,
                "exchange_sku": line.exchange_sku,
                "currency": refund.currency,
                "created_at": now,
            },
        )
    if decision.trigger == RefundTrigger.MANUAL:
        _transition(
            refund,
            RefundState.HELD,
            actor="system",
            reason=HOLD_MANUAL_REASON,
            now=now,
            hold_reason=HOLD_MANUAL_REASON,
        )
    return_refund_summary_update(
        return_request=return_request,
        now=now,
        refund_state=refund.state,
        refund_rule_snapshot={
            "rule_id": decision.rule_id,
            "rule": decision.rule_name,
            "trigger": decision.trigger,
            "method": method,
            "explanation": decision.explanation,
        },
    )
    refund_estimate_refresh(return_request=return_request, refund=refund, now=now)
    return refund


@transaction.atomic
def refund_reevaluate(*, refund: Refund, actor: str, now: datetime) -> Refund:
    """Staff re-run the rules for a refund not yet approved (recorded in
    `RefundDecisionChange`). Raises `ValueError` once approved or later."""
    rr = ReturnRequest.objects.select_related("order").get(pk=refund.return_request_id)
    Order.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=rr.order_id
    )  # lock order: order, return, refund
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("order", "tenant")
        .get(pk=rr.pk)
    )
    locked = Refund.objects.select_for_update(no_key=True, of=("self",)).get(pk=refund.pk)
    if locked.state not in (RefundState.PENDING, RefundState.HELD):
        raise ValueError(f"refund is {locked.state}; only pending or held refunds are re-evaluated")
    decision = rules_lib.choose_rule(rule_specs_for(rr.tenant_id), refund_facts_build(rr, now=now))
    RefundDecisionChange.objects.create(
        tenant_id=locked.tenant_id,
        refund=locked,
        old_rule_name=locked.rule_name,
        new_rule_name=decision.rule_name,
        old_explanation=locked.explanation,
        new_explanation=decision.explanation[:500],
        old_trigger=locked.trigger,
        new_trigger=decision.trigger,
        actor=actor[:200],
        at=now,
    )
    method = _method_for(decision, rr)
    Refund.objects.filter(pk=locked.pk).update(
        rule_id=decision.rule_id,
        rule_name=decision.rule_name,
        explanation=decision.explanation[:500],
        condition_snapshot=decision.snapshot,
        trigger=decision.trigger,
        method=method,
        store_credit_bonus_percent=(
            decision.store_credit_bonus_percent if method == RefundMethod.STORE_CREDIT else 0
        ),
        updated_at=now,
    )
    locked.refresh_from_db()
    return_refund_summary_update(
        return_request=rr,
        now=now,
        refund_rule_snapshot={
            "rule_id": decision.rule_id,
            "rule": decision.rule_name,
            "trigger": decision.trigger,
            "method": method,
            "explanation": decision.explanation,
        },
    )
    if locked.trigger == RefundTrigger.MANUAL and locked.state == RefundState.PENDING:
        _transition(
            locked,
            RefundState.HELD,
            actor=actor,
            reason=HOLD_MANUAL_REASON,
            now=now,
            hold_reason=HOLD_MANUAL_REASON,
        )
    elif locked.trigger != RefundTrigger.MANUAL and locked.hold_reason == HOLD_MANUAL_REASON:
        _transition(
            locked, RefundState.PENDING, actor=actor, reason="re-evaluated", now=now, hold_reason=""
        )
    refund_approve_if_due(tenant=rr.tenant, return_request=rr, now=now, actor=actor)
    refund.refresh_from_db()
    return refund


# --------------------------------------------------------------------------
# State changes with the summary kept current
# --------------------------------------------------------------------------
def _transition(
    refund: Refund, to_state: str, *, actor: str, reason: str, now: datetime, **fields: Any
) -> Refund:
    refund_transition(
        refund=refund, to_state=to_state, actor=actor, reason=reason, now=now, **fields
    )
    rr = ReturnRequest(pk=refund.return_request_id, tenant_id=refund.tenant_id)
    return_refund_summary_update(return_request=rr, now=now, refund_state=refund.state)
    # The refund's SLA clock and the queue's value at risk follow every state change.
    refund_due_times_refresh(refund=refund, now=now)
    return refund


def _blocking_exceptions(return_request: ReturnRequest) -> list[str]:
    return list(
        ReturnException.objects.filter(
            tenant_id=return_request.tenant_id,
            return_request=return_request,
            state=ExceptionState.OPEN,
            kind__in=HOLDING_EXCEPTIONS,
        ).values_list("kind", flat=True)
    )


def trigger_reached(trigger: str, reached: set[str]) -> bool:
    """The trigger milestone or ANY later parcel milestone is reached (DESIGN.md section 5)."""
    if trigger not in PARCEL_RANK:
        return False
    rank = PARCEL_RANK[trigger]
    return any(PARCEL_RANK.get(name, -1) >= rank for name in reached)


# --------------------------------------------------------------------------
# Amount under the order lock
# --------------------------------------------------------------------------
def _label_cost(return_request: ReturnRequest, currency: str) -> Decimal:
    total = Decimal(0)
    for cost, cur in Shipment.objects.filter(
        tenant_id=return_request.tenant_id,
        return_request=return_request,
        direction=ShipmentDirection.INBOUND,
        label_cost__isnull=False,
    ).values_list("label_cost", "label_currency"):
        if (cur or currency).upper() == currency.upper():
            total += cost
    return total


def refund_amount_compute(
    *, refund: Refund, order: Order, return_request: ReturnRequest
) -> amounts_lib.AmountResult:
    """The refund's amount (DESIGN.md section 7). Call with the order row LOCKED
    (`select_for_update`), so the cap sees every other live refund of the order."""
    settings_ = refund_settings_for(refund.tenant_id)
    cur = order.currency
    others = Refund.objects.filter(
        tenant_id=refund.tenant_id, return_request__order=order, state__in=LIVE_STATES
    ).exclude(pk=refund.pk)
    others_total = others.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    shipping_taken = any(
        (b or {}).get("shipping") not in (None, format_amount(0, cur))
        for b in others.values_list("breakdown", flat=True)
    )
    net_subtotal = order.subtotal
    if not net_subtotal or net_subtotal <= 0:
        net_subtotal = sum(
            (
                quantize(line.unit_price * line.quantity - line.discount, cur)
                for line in order.lines.all()
            ),
            Decimal(0),
        )
    fixed = _money_map(
        settings_.restocking_fee_fixed, what="refund settings restocking_fee_fixed"
    ).get(cur.upper(), Decimal(0))
    policy = amounts_lib.RefundPolicy(
        refund_taxes=settings_.refund_taxes,
        refund_shipping=settings_.refund_shipping,
        restocking_fee_percent=settings_.restocking_fee_percent,
        restocking_fee_fixed=fixed,
        deduct_label_cost=settings_.deduct_label_cost,
        store_credit_bonus_percent=(
            refund.store_credit_bonus_percent
            if refund.method == RefundMethod.STORE_CREDIT
            else Decimal(0)
        ),
    )
    money = amounts_lib.OrderMoney(
        currency=cur,
        taxes_included=order.taxes_included,
        taxes=order.taxes,
        net_subtotal=net_subtotal,
        shipping=order.shipping,
        remaining=order.total - order.refunded_amount - others_total,
        shipping_already_refunded=shipping_taken,
    )
    units = [u for _line, u in line_units_for(return_request)]
    return amounts_lib.refund_amount(
        lines=units, order=money, policy=policy, label_cost=_label_cost(return_request, cur)
    )


# --------------------------------------------------------------------------
# Approval
# --------------------------------------------------------------------------
def _gateway_name(refund: Refund, order: Order) -> str:
    """Which gateway pays: the sandbox for store credit and by default; Shopify for an
    order imported from Shopify when connected; Stripe for a `ch_`/`pi_` payment."""
    if refund.method != RefundMethod.ORIGINAL_PAYMENT:
        return GatewayProvider.SANDBOX
    accounts = {
        a.provider: a
        for a in GatewayAccount.objects.filter(tenant_id=refund.tenant_id, is_active=True)
    }
    if order.shopify_id and GatewayProvider.SHOPIFY in accounts:
        return GatewayProvider.SHOPIFY
    if is_stripe_reference(order.payment_reference or "") and GatewayProvider.STRIPE in accounts:
        return GatewayProvider.STRIPE
    return GatewayProvider.SANDBOX


def _approval_email(refund: Refund, rr: ReturnRequest, now: datetime) -> None:
    """The customer's "refund approved" e-mail, in the language the return was made in."""
    settings_ = refund_settings_for(refund.tenant_id)
    days_min, days_max = settings_.bank_days(refund.method)
    total = (refund.amount or Decimal(0)) + (refund.bonus_amount or Decimal(0))
    amount = f"{format_amount(total, refund.currency)} {refund.currency}"
    url = tenant_absolute_url(rr.tenant, f"/r/{rr.token}/")
    with translation.override(rr.language or "en"):
        if refund.method == RefundMethod.STORE_CREDIT:
            delay = bank_delay_text(days_min, days_max)
            first = (
                gettext("Refund approved. Your store credit may take %(delay)s.") % {"delay": delay}
                if delay
                else gettext("Refund approved. Your store credit is issued right away.")
            )
        else:
            delay = bank_delay_text(days_min, days_max) or gettext("a few days")
            first = gettext("Refund approved. Your bank may take %(delay)s.") % {"delay": delay}
        subject = gettext("%(rma)s: refund approved") % {"rma": rr.rma_number}
        rest = gettext("Return %(rma)s, refund %(amount)s.\nTrack your return: %(url)s\n") % {
            "rma": rr.rma_number,
            "amount": amount,
            "url": url,
        }
    notification_queue(
        tenant=rr.tenant,
        key=f"refund-approved:{refund.uuid}",
        kind="refund_approved",
        to_email=rr.email or rr.order.email,
        subject=subject,
        body_text=f"{first}\n\n{rest}",
        now=now,
        return_request=rr,
    )


@dataclass(frozen=True)
class ApprovalResult:
    refund: Refund | None
    approved: bool
    held: bool = False


@transaction.atomic
def refund_approve_if_due(
    *, tenant: Tenant, return_request: ReturnRequest, now: datetime, actor: str = "system"
) -> ApprovalResult:
    """Approve the return's refund when its trigger (or any later parcel milestone) is
    reached; hold it while a `warehouse_mismatch` / `damaged_package` is open.

    Idempotent and race-safe: locks order, return, refund (in that order) and
    changes state conditionally. On approval: computes the amount, sets
    `refund_due_at` (SLA refund business days), queues the approval e-mail and
    enqueues `refunds.refund_issue` on commit. `manual` and `exchange` refunds
    are never approved here.
    """
    Order.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=return_request.order_id, tenant=tenant
    )
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("order", "tenant")
        .get(pk=return_request.pk, tenant=tenant)
    )
    refund = (
        Refund.objects.select_for_update(no_key=True, of=("self",))
        .filter(tenant=tenant, return_request=rr, outcome=RefundOutcome.REFUND)
        .first()
    )
    if refund is None or refund.method == RefundMethod.EXCHANGE:
        return ApprovalResult(refund, approved=False)
    if refund.state not in (RefundState.PENDING, RefundState.HELD):
        return ApprovalResult(refund, approved=False)
    if refund.trigger == RefundTrigger.MANUAL:
        return ApprovalResult(refund, approved=False, held=refund.state == RefundState.HELD)
    reached = set(
        Milestone.objects.filter(tenant=tenant, return_request=rr).values_list("name", flat=True)
    )
    if not trigger_reached(refund.trigger, reached):
        return ApprovalResult(refund, approved=False)
    blocking = _blocking_exceptions(rr)
    if blocking:
        if refund.state == RefundState.PENDING:
            _transition(
                refund,
                RefundState.HELD,
                actor=actor,
                reason=f"held: open {', '.join(sorted(set(blocking)))}",
                now=now,
                hold_reason=HOLD_EXCEPTION_REASON,
            )
        return ApprovalResult(refund, approved=False, held=True)
    if refund.state == RefundState.HELD and refund.hold_reason not in (
        HOLD_EXCEPTION_REASON,
        HOLD_SETTINGS_REASON,
    ):
        return ApprovalResult(refund, approved=False, held=True)  # held by staff
    try:
        result = refund_amount_compute(refund=refund, order=rr.order, return_request=rr)
    except MoneyError as exc:
        # Settings stored before the admin refused bad amounts: hold with the reason,
        # retried at the next milestone (or approved by staff once fixed).
        log.warning("refund %s: %s", refund.pk, exc)
        if refund.state == RefundState.PENDING:
            _transition(
                refund,
                RefundState.HELD,
                actor=actor,
                reason=f"held: {exc}"[:500],
                now=now,
                hold_reason=HOLD_SETTINGS_REASON,
            )
        return ApprovalResult(refund, approved=False, held=True)
    if result.amount + result.bonus <= 0:
        # Units came back but nothing would be paid (the order's total is used up,
        # or fees eat the value): a person looks before the customer is told
        # "refund 0.00". Staff approve or cancel it in the admin.
        if refund.state == RefundState.PENDING:
            _transition(
                refund,
                RefundState.HELD,
                actor=actor,
                reason=f"held: computed amount is 0.00 {refund.currency}",
                now=now,
                hold_reason=HOLD_ZERO_AMOUNT_REASON,
            )
        return ApprovalResult(refund, approved=False, held=True)
    _approve(
        refund, rr, actor=actor, reason=f"trigger {refund.trigger} reached", now=now, result=result
    )
    return ApprovalResult(refund, approved=True)


def _approve(
    refund: Refund,
    rr: ReturnRequest,
    *,
    actor: str,
    reason: str,
    now: datetime,
    result: amounts_lib.AmountResult | None = None,
) -> None:
    """Compute (unless given), approve, e-mail, enqueue. Caller holds order, return, refund locks."""
    order = rr.order
    if result is None:
        result = refund_amount_compute(refund=refund, order=order, return_request=rr)
    _transition(
        refund,
        RefundState.APPROVED,
        actor=actor,
        reason=reason,
        now=now,
        approved_at=now,
        amount=result.amount,
        bonus_amount=result.bonus,
        breakdown=result.breakdown(),
        exchange_price_difference=result.exchange_price_difference,
        refund_due_at=refund_due(
            now, sla_targets(sla_policy_for(refund.tenant_id)), business_calendar_for(rr)
        ),
        gateway=_gateway_name(refund, order),
        hold_reason="",
    )
    _approval_email(refund, rr, now)
    refund_estimate_refresh(return_request=rr, refund=refund, now=now)
    enqueue_on_commit(REFUND_ISSUE_TASK, refund.pk, refund.tenant_id)


@transaction.atomic
def refund_approve_by_staff(*, refund: Refund, actor: str, now: datetime) -> Refund:
    """Staff approve a `pending` or `held` refund (the `manual` trigger, or overriding a
    hold). Raises `ValueError` in any other state. Locks order, return, refund."""
    rr = ReturnRequest.objects.select_related("order").get(pk=refund.return_request_id)
    Order.objects.select_for_update(no_key=True, of=("self",)).get(pk=rr.order_id)
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("order", "tenant")
        .get(pk=rr.pk)
    )
    locked = Refund.objects.select_for_update(no_key=True, of=("self",)).get(pk=refund.pk)
    if locked.state not in (RefundState.PENDING, RefundState.HELD):
        raise ValueError(f"refund is {locked.state}; only pending or held refunds can be approved")
    if locked.method == RefundMethod.EXCHANGE:
        raise ValueError("an exchange is settled by shipping the replacement")
    _approve(locked, rr, actor=actor, reason="approved by staff", now=now)
    refund.refresh_from_db()
    return refund


@transaction.atomic
def refund_hold(*, refund: Refund, actor: str, reason: str, now: datetime) -> Refund:
    """Staff hold a `pending` or `approved` (not yet claimed) refund. Raises `ValueError`."""
    locked = Refund.objects.select_for_update(no_key=True, of=("self",)).get(pk=refund.pk)
    if locked.state not in (RefundState.PENDING, RefundState.APPROVED):
        raise ValueError(f"refund is {locked.state}; it cannot be held")
    _transition(
        locked,
        RefundState.HELD,
        actor=actor,
        reason=reason or "held by staff",
        now=now,
        hold_reason=(reason or "held by staff")[:200],
    )
    refund.refresh_from_db()
    return refund


@transaction.atomic
def refund_recheck(*, tenant_id: int, refund_id: int, now: datetime) -> str:
    """Re-try approval of a refund held for a warehouse exception (sweeper: its exceptions
    may have been resolved since). Returns `approved`, `held` or `skipped`."""
    refund = (
        Refund.objects.filter(pk=refund_id, tenant_id=tenant_id)
        .select_related("return_request__tenant")
        .first()
    )
    if refund is None:
        log.info("refund %s of tenant %s is gone", refund_id, tenant_id)
        return "skipped"
    rr = refund.return_request
    result = refund_approve_if_due(tenant=rr.tenant, return_request=rr, now=now)
    return "approved" if result.approved else ("held" if result.held else "skipped")


# --------------------------------------------------------------------------
# Issuing (the task body: NOT atomic, the gateway call is outside transactions)
# --------------------------------------------------------------------------
def _request_for(refund: Refund) -> RefundRequest:
    order = Order.objects.get(pk=refund.return_request.order_id)
    reference = ""
    if refund.gateway == GatewayProvider.SHOPIFY:
        reference = order.shopify_id
    elif refund.gateway == GatewayProvider.STRIPE:
        reference = order.payment_reference
    return RefundRequest(
        idempotency_key=refund.idempotency_key,
        amount=(refund.amount or Decimal(0)) + (refund.bonus_amount or Decimal(0)),
        currency=refund.currency,
        method=refund.method,
        order_reference=reference,
        order_number=order.number,
        note=refund.return_request.rma_number,
        tenant_id=refund.tenant_id,
    )


def _gateway(refund: Refund):
    account = None
    if refund.gateway != GatewayProvider.SANDBOX:
        account = GatewayAccount.objects.filter(
            tenant_id=refund.tenant_id, provider=refund.gateway
        ).first()
    return gateway_for(refund.gateway, account)


def refund_issue(*, tenant_id: int, refund_id: int, now: datetime) -> str:
    """Issue one refund exactly once (module docstring). Returns what happened:
    `issued`, `pending`, `failed`, `error`, `skipped` or `missing`.

    - `approved`: claim `approved -> issuing` (conditional update; a loser
      returns `skipped`), call the gateway OUTSIDE any transaction with
      `refund:<uuid>`, record a `RefundTransaction` and the outcome.
    - `issuing` for 10 minutes or more: `refund_recover` (look up by key).
    - anything else: `skipped`.
    """
    refund = (
        Refund.objects.select_related("return_request")
        .filter(pk=refund_id, tenant_id=tenant_id)
        .first()
    )
    if refund is None:
        log.info("refund %s of tenant %s is gone", refund_id, tenant_id)
        return "missing"
    if refund.state == RefundState.ISSUING:
        if refund.issuing_started_at and refund.issuing_started_at <= now - ISSUING_STALE_AFTER:
            return refund_recover(tenant_id=tenant_id, refund_id=refund_id, now=now)
        return "skipped"
    if refund.state != RefundState.APPROVED:
        return "skipped"
    try:
        with transaction.atomic():
            refund_transition(
                refund=refund,
                to_state=RefundState.ISSUING,
                actor="refund_issue",
                reason=f"claimed; key {refund.idempotency_key}",
                now=now,
                issuing_started_at=now,
            )
    except RefundRaceLost:
        return "skipped"
    if (refund.amount or 0) + (refund.bonus_amount or 0) <= 0:
        result = GatewayResult(status=SUCCEEDED, message="nothing to pay")
        return _record(refund, kind=TransactionKind.INTERNAL, result=result, now=now)
    request = _request_for(refund)
    try:
        result = _gateway(refund).create(request)
    except Exception as exc:  # an adapter bug or missing account: unknown outcome, look up later
        log.exception("gateway %s failed for refund %s", refund.gateway, refund.pk)
        result = GatewayResult(status=ERROR, message=f"{type(exc).__name__}: {exc}"[:500])
    return _record(refund, kind=TransactionKind.CREATE, result=result, now=now)


def refund_recover(*, tenant_id: int, refund_id: int, now: datetime) -> str:
    """Resolve a refund stuck in `issuing` for 10+ minutes: LOOK IT UP at the gateway by
    its key; only if the gateway never saw the key is it sent again, with the SAME key.

    The lookup is claimed by moving `issuing_started_at` forward with a
    conditional update, so two sweeps never look up (or re-send) at once.
    """
    refund = (
        Refund.objects.select_related("return_request")
        .filter(pk=refund_id, tenant_id=tenant_id)
        .first()
    )
    if refund is None or refund.state != RefundState.ISSUING:
        return "skipped"
    started = refund.issuing_started_at
    if started is not None and started > now - ISSUING_STALE_AFTER:
        return "skipped"
    claimed = Refund.objects.filter(
        pk=refund.pk, state=RefundState.ISSUING, issuing_started_at=started
    ).update(issuing_started_at=now, updated_at=now)
    if not claimed:
        return "skipped"
    refund.issuing_started_at = now
    request = _request_for(refund)
    gateway = _gateway(refund)
    result = gateway.lookup(request)
    _record_only(refund, kind=TransactionKind.LOOKUP, result=result, now=now)
    if result.status == NOT_FOUND:
        result = gateway.create(request)
        return _record(refund, kind=TransactionKind.CREATE, result=result, now=now)
    return _record(refund, kind=None, result=result, now=now)


def _record_only(refund: Refund, *, kind: str, result: GatewayResult, now: datetime) -> None:
    status = {
        SUCCEEDED: TransactionStatus.SUCCEEDED,
        PENDING: TransactionStatus.PENDING,
        FAILED: TransactionStatus.FAILED,
        ERROR: TransactionStatus.ERROR,
        NOT_FOUND: TransactionStatus.NOT_FOUND,
    }[result.status]
    RefundTransaction.objects.create(
        tenant_id=refund.tenant_id,
        refund=refund,
        kind=kind,
        gateway=refund.gateway,
        idempotency_key=refund.idempotency_key,
        status=status,
        amount=(refund.amount or Decimal(0)) + (refund.bonus_amount or Decimal(0)),
        currency=refund.currency,
        gateway_reference=result.reference[:200],
        message=result.message[:500],
        response=_jsonable(result.raw),
        created_at=now,
    )


def _jsonable(raw: Any) -> dict:
    import json

    try:
        return json.loads(json.dumps(raw, default=str)) if isinstance(raw, dict) else {}
    except (TypeError, ValueError):
        return {}


@transaction.atomic
def _record(refund: Refund, *, kind: str | None, result: GatewayResult, now: datetime) -> str:
    """Record a gateway answer and apply it (return, then refund row locks)."""
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tenant")
        .get(pk=refund.return_request_id)
    )
    locked = Refund.objects.select_for_update(no_key=True, of=("self",)).get(pk=refund.pk)
    if kind is not None:
        _record_only(locked, kind=kind, result=result, now=now)
    return _apply_outcome(locked, rr, result=result, now=now)


def _apply_outcome(
    refund: Refund, rr: ReturnRequest, *, result: GatewayResult, now: datetime
) -> str:
    if refund.state != RefundState.ISSUING:
        return "skipped"
    if result.status == SUCCEEDED:
        _transition(
            refund,
            RefundState.ISSUED,
            actor=f"gateway:{refund.gateway}",
            reason=result.message or "gateway confirmed",
            now=now,
            issued_at=now,
            gateway_reference=result.reference[:200],
            last_error="",
        )
        milestone_reach(
            tenant=rr.tenant,
            return_request=rr,
            name=MilestoneName.REFUNDED,
            reached_at=now,
            source=MilestoneSource.SYSTEM,
            now=now,
            actor=f"gateway:{refund.gateway}",
        )
        refund_estimate_refresh(return_request=rr, refund=refund, now=now)
        return "issued"
    if result.status == FAILED:
        _transition(
            refund,
            RefundState.FAILED,
            actor=f"gateway:{refund.gateway}",
            reason=result.message or "gateway refused",
            now=now,
            last_error=result.message[:500],
        )
        exception_open(
            tenant=rr.tenant,
            return_request=rr,
            kind=ExceptionKind.REFUND_OVERDUE,
            opened_at=now,
            reason="gateway_failed",
            detail=f"{refund.gateway}: {result.message}"[:500],
            condition_key=f"refund:{refund.uuid}",
        )
        refund_estimate_refresh(return_request=rr, refund=refund, now=now)
        return "failed"
    fields: dict[str, Any] = {"updated_at": now}
    if result.reference:
        fields["gateway_reference"] = result.reference[:200]
    if result.status == ERROR:
        fields["last_error"] = result.message[:500]
    Refund.objects.filter(pk=refund.pk).update(**fields)
    return "pending" if result.status == PENDING else "error"


@transaction.atomic
def refund_gateway_event(
    *, tenant: Tenant, refund: Refund, result: GatewayResult, now: datetime
) -> str:
    """Apply a gateway's asynchronous outcome (Stripe's refund webhook) for a refund in
    `issuing`; recorded as a `webhook` transaction. Idempotent: a refund already
    settled only gets the transaction row."""
    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tenant")
        .get(pk=refund.return_request_id, tenant=tenant)
    )
    locked = Refund.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=refund.pk, tenant=tenant
    )
    _record_only(locked, kind=TransactionKind.WEBHOOK, result=result, now=now)
    return _apply_outcome(locked, rr, result=result, now=now)


# --------------------------------------------------------------------------
# Exchanges
# --------------------------------------------------------------------------
class ExchangeAlreadyShipped(ValueError):
    """The replacement of this return already shipped under another tracking number."""


@transaction.atomic
def exchange_ship(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    carrier: str,
    tracking_number: str,
    now: datetime,
    actor: str,
    replacement_unit_prices: dict[int, Decimal] | None = None,
) -> list[Exchange]:
    """Ship the replacement(s) of a return's exchange lines: records an OUTBOUND
    shipment with its own tracking, the price difference per line (replacement
    unit price - returned net unit value, x quantity; positive = the customer
    owes) and reaches the `exchanged` outcome milestone (source `staff`) when the
    shipment is recorded. An `exchange`-method refund is then cancelled
    ("settled by exchange"). Raises `ValueError` without exchange lines.

    One replacement shipment per return, decided under the return's lock: a repeat
    with the same carrier and tracking number changes nothing (check
    `exchanges[0].shipment` against the request to tell a repeat); another number
    once shipped raises `ExchangeAlreadyShipped`.
    """
    from rma.warehouse import outbound_key, outbound_shipment_create

    rr = (
        ReturnRequest.objects.select_for_update(no_key=True, of=("self",))
        .select_related("order", "tenant")
        .get(pk=return_request.pk, tenant=tenant)
    )
    exchanges = list(
        Exchange.objects.filter(tenant=tenant, return_request=rr).select_related(
            "return_line__order_line", "shipment"
        )
    )
    if not exchanges:
        raise ValueError(f"{rr.rma_number} has no exchange lines")
    shipped = next((ex.shipment for ex in exchanges if ex.shipment_id is not None), None)
    if shipped is not None:
        if (shipped.carrier, shipped.tracking_number) == outbound_key(carrier, tracking_number):
            return exchanges
        raise ExchangeAlreadyShipped(
            gettext("The replacement already shipped with %(carrier)s %(number)s.")
            % {"carrier": shipped.carrier, "number": shipped.tracking_number}
        )
    shipment, _created = outbound_shipment_create(
        tenant=tenant, return_request=rr, carrier=carrier, tracking_number=tracking_number, now=now
    )
    prices = replacement_unit_prices or {}
    units = {line.pk: u for line, u in line_units_for(rr)}
    for ex in exchanges:
        price = prices.get(ex.return_line_id, ex.replacement_unit_price)
        diff = None
        if price is not None and ex.return_line_id in units:
            net, _ = amounts_lib.line_units_value(units[ex.return_line_id], rr.order.currency)
            diff = quantize(Decimal(price), rr.order.currency) * ex.return_line.quantity - net
        Exchange.objects.filter(pk=ex.pk).update(
            shipment=shipment,
            shipped_at=ex.shipped_at or now,
            replacement_unit_price=price,
            price_difference=diff,
        )
    milestone_reach(
        tenant=tenant,
        return_request=rr,
        name=MilestoneName.EXCHANGED,
        reached_at=now,
        source=MilestoneSource.STAFF,
        now=now,
        actor=actor,
    )
    refund = (
        Refund.objects.select_for_update(no_key=True, of=("self",))
        .filter(tenant=tenant, return_request=rr, outcome=RefundOutcome.REFUND)
        .first()
    )
    if (
        refund is not None
        and refund.method == RefundMethod.EXCHANGE
        and refund.state
        in (
            RefundState.PENDING,
            RefundState.HELD,
        )
    ):
        _transition(
            refund, RefundState.CANCELLED, actor=actor, reason="settled by exchange", now=now
        )
    return list(Exchange.objects.filter(tenant=tenant, return_request=rr))


# --------------------------------------------------------------------------
# Closing and the estimate
# --------------------------------------------------------------------------
@transaction.atomic
def return_settle_if_done(
    *,
    tenant: Tenant,
    return_request: ReturnRequest,
    now: datetime,
    actor: str = "system",
    staff: bool = False,
) -> str | None:
    """Close the return when the parcel track reached `inspected` (or `staff` closes it)
    and the outcome is settled: the refund issued (or cancelled/exchange-only) and
    every exchange shipped. Outcome `refunded` when money or store credit was
    issued, else `exchanged`. Returns the outcome, or None when not yet."""
    rr = ReturnRequest.objects.select_for_update(no_key=True, of=("self",)).get(
        pk=return_request.pk, tenant=tenant
    )
    if rr.closed_at is not None:
        return None
    names = set(
        Milestone.objects.filter(tenant=tenant, return_request=rr).values_list("name", flat=True)
    )
    if MilestoneName.INSPECTED not in names and not staff:
        return None
    refund = Refund.objects.filter(
        tenant=tenant, return_request=rr, outcome=RefundOutcome.REFUND
    ).first()
    exchanges = list(Exchange.objects.filter(tenant=tenant, return_request=rr))
    if refund is None and not exchanges:
        return None  # nothing recorded as owed, so nothing can be settled
    if any(e.shipped_at is None for e in exchanges):
        return None
    if refund is not None and refund.state not in (RefundState.ISSUED, RefundState.CANCELLED):
        return None
    paid = (
        refund is not None
        and refund.state == RefundState.ISSUED
        and (refund.amount or 0) + (refund.bonus_amount or 0) > 0
    )
    outcome = "refunded" if paid or not exchanges else "exchanged"
    return_outcome_close(
        tenant=tenant,
        return_request=rr,
        outcome=outcome,
        actor=actor,
        reason=f"outcome settled ({outcome}" + (f", {refund.method}" if refund else "") + ")",
        now=now,
    )
    return outcome


def refund_estimate_refresh(
    *, return_request: ReturnRequest, now: datetime, refund: Refund | None = None
) -> None:
    """Recompute `{from, to, text}` (refunds.estimate) and write it to the return; the
    text in the return's language (`ReturnRequest.language`)."""
    if refund is None:
        refund = Refund.objects.filter(
            tenant_id=return_request.tenant_id,
            return_request=return_request,
            outcome=RefundOutcome.REFUND,
        ).first()
    if refund is None:
        return
    rr = ReturnRequest.objects.select_related("tenant", "return_centre", "order").get(
        pk=return_request.pk
    )
    _refund_estimate_write(rr=rr, refund=refund, return_request=return_request, now=now)


def _refund_estimate_write(
    *, rr: ReturnRequest, refund: Refund, return_request: ReturnRequest, now: datetime
) -> None:
    """`refund_estimate_refresh`'s body: the dates once, the text in the return's language
    (`refund_estimate_text`, what the API shows) and in every language of
    `settings.LANGUAGES` (`refund_estimate_texts`, for pages in another language)."""
    start: datetime | None = None
    end: datetime | None = None
    text: Callable[[], str]
    if refund.method == RefundMethod.EXCHANGE:
        shipped = Exchange.objects.filter(
            tenant_id=rr.tenant_id, return_request=rr, shipped_at__isnull=False
        ).exists()

        def text() -> str:
            if shipped:
                return gettext("Exchange: your replacement is on its way.")
            return gettext("Exchange: we ship your replacement once your return is inspected.")

    else:
        settings_ = refund_settings_for(rr.tenant_id)
        bank_min, bank_max = settings_.bank_days(refund.method)
        reached = dict(
            Milestone.objects.filter(tenant_id=rr.tenant_id, return_request=rr).values_list(
                "name", "reached_at"
            )
        )
        centre_country = (rr.return_centre.country if rr.return_centre else rr.tenant.country) or ""
        domestic = (
            not rr.order.shipping_country
            or rr.order.shipping_country.upper() == centre_country.upper()
        )
        inputs = EstimateInput(
            trigger=refund.trigger,
            method=refund.method,
            state=refund.state,
            requested_at=rr.created_at,
            reached=reached,
            targets=sla_targets(sla_policy_for(rr.tenant_id)),
            calendar=business_calendar_for(rr),
            bank_days_min=bank_min,
            bank_days_max=bank_max,
            domestic=domestic,
            approved_at=refund.approved_at,
            issued_at=refund.issued_at,
            now=now,
        )
        est = refund_estimate(inputs)
        start, end = est.start, est.end

        def text() -> str:
            return refund_estimate(inputs).text

    texts: dict[str, str] = {}
    for code, _name in django_settings.LANGUAGES:
        with translation.override(code):
            texts[code] = text()[:300]
    own = texts.get(rr.language or "en")
    if own is None:  # a language no longer configured: render it on its own
        with translation.override(rr.language):
            own = text()[:300]
    return_refund_summary_update(
        return_request=return_request,
        now=now,
        refund_estimate_from=start,
        refund_estimate_to=end,
        refund_estimate_text=own,
        refund_estimate_texts=texts,
    )


# --------------------------------------------------------------------------
# The reaction to a milestone's first reach (returns_portal/workflows.py)
# --------------------------------------------------------------------------
#: First reaches after which a settled return may close.
SETTLING_MILESTONES = frozenset(
    {MilestoneName.INSPECTED, MilestoneName.REFUNDED, MilestoneName.EXCHANGED}
)


def refund_on_milestones(
    *, return_request: ReturnRequest, names: frozenset[str], now: datetime
) -> None:
    """Reaction to the first reach of the milestones `names` of `return_request`: approve
    when a parcel milestone is among them and the rule's trigger is reached, close when
    settled, refresh the estimate. Reads the return's state, so one call serves a batch.
    Idempotent."""
    tenant = return_request.tenant
    if names & PARCEL_RANK.keys():
        refund_approve_if_due(tenant=tenant, return_request=return_request, now=now)
    if names & SETTLING_MILESTONES:
        return_settle_if_done(tenant=tenant, return_request=return_request, now=now)
    refund_estimate_refresh(return_request=return_request, now=now)


# --------------------------------------------------------------------------
# Provisioning and gateway accounts
# --------------------------------------------------------------------------
def provision_tenant(tenant: Tenant) -> None:
    """Default rules (issue 6, in order: High risk, High value, Low risk, Standard) and
    refund settings for a new tenant. Idempotent: rules only when the tenant has none."""
    RefundSettings.objects.get_or_create(tenant=tenant)
    if RefundRule.objects.filter(tenant=tenant).exists():
        return
    for spec in rules_lib.default_rules():
        RefundRule.objects.create(
            tenant=tenant,
            name=spec.name,
            position=spec.position,
            risk_levels=sorted(spec.risk_levels),
            line_value_min={k: str(v) for k, v in spec.line_value_min.items()},
            trigger=spec.trigger,
            method=spec.method,
        )


@transaction.atomic
def gateway_account_set(
    *,
    tenant: Tenant,
    provider: str,
    credentials: dict[str, str],
    shop_domain: str = "",
    webhook_secret: str = "",
    api_version: str = "2025-01",
) -> GatewayAccount:
    """Connect (or update) a gateway for `tenant`; secrets are stored encrypted."""
    from returns_portal.tenancy.crypto import encrypt, encrypt_json

    if provider not in (GatewayProvider.SHOPIFY, GatewayProvider.STRIPE):
        raise ValueError(f"unknown provider {provider!r}")
    account, _ = GatewayAccount.objects.update_or_create(
        tenant=tenant,
        provider=provider,
        defaults={
            "shop_domain": shop_domain,
            "api_version": api_version,
            "credentials_encrypted": encrypt_json(credentials),
            "webhook_secret_encrypted": encrypt(webhook_secret),
            "is_active": True,
        },
    )
    return account
