"""Reads for the portal and the API (STYLE.md "Layers"). Every query is scoped to
the tenant passed in; a missing row and another tenant's row look alike.

Selectors return what a template or serializer needs (flags, plain words,
due times), so templates only format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Sum
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from returns_portal.tenancy.models import Tenant
from rma.carriers import carrier_name, carrier_tracking_url
from rma.eligibility import (
    LineEligibility,
    LineFacts,
    OrderFacts,
    PolicyFacts,
    ReturnWindow,
    line_eligibility,
    return_window,
)
from rma.exceptions_text import customer_message
from rma.models import (
    ExceptionState,
    Milestone,
    Order,
    OrderLine,
    ReturnCentre,
    ReturnException,
    ReturnLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    Shipment,
    ShipmentDirection,
    SlaPolicy,
)
from rma.sla import BusinessCalendar, SlaTargets
from rma.states import MilestoneName, ReturnStatus
from rma.timeline import MilestoneFact, Timeline, build_timeline, next_step_text

#: Returns in these statuses no longer hold their units (DESIGN.md section 8).
RELEASED_STATUSES = (ReturnStatus.CANCELLED, ReturnStatus.REJECTED)


# --------------------------------------------------------------------------
# Orders and eligibility
# --------------------------------------------------------------------------
def order_get_by_number(*, tenant: Tenant, number: str) -> Order | None:
    """The tenant's order whose number customers type as `number` (`1001` or `#1001`)."""
    key = Order.normalize_number(number)
    if not key:
        return None
    return Order.objects.filter(tenant=tenant, number_key=key).first()


def order_for_lookup(*, tenant: Tenant, email: str, order_number: str) -> Order | None:
    """The order a customer may open with `email` + `order_number`, else None.

    None alike for an unknown number, a wrong e-mail and an order without
    e-mail (DESIGN.md section 10: enumeration-safe). E-mails compare
    lower-cased and stripped.
    """
    order = order_get_by_number(tenant=tenant, number=order_number)
    wanted = (email or "").strip().lower()
    if order is None or not order.email or not wanted:
        return None
    if order.email.strip().lower() != wanted:
        return None
    return order


def return_policy_get(*, tenant: Tenant) -> ReturnPolicy:
    """The tenant's return policy (provisioned; an unsaved default if missing)."""
    return ReturnPolicy.objects.filter(tenant=tenant).first() or ReturnPolicy(tenant=tenant)


def policy_facts(*, tenant: Tenant, policy: ReturnPolicy) -> PolicyFacts:
    return PolicyFacts.build(
        window_days=policy.window_days,
        skus=list(policy.final_sale_skus or []),
        tags=list(policy.final_sale_tags or []),
        time_zone=tenant.time_zone,
    )


def return_reasons_active(*, tenant: Tenant) -> list[ReturnReason]:
    """The tenant's active reasons in display order."""
    return list(
        ReturnReason.objects.filter(tenant=tenant, active=True).order_by("position", "code")
    )


@dataclass(frozen=True)
class EligibleLine:
    """An order line with its eligibility, for the portal's form and the service."""

    line: OrderLine
    eligibility: LineEligibility

    @property
    def line_id(self) -> str:
        return self.line.line_id


@dataclass(frozen=True)
class OrderEligibility:
    order: Order
    policy: ReturnPolicy
    window: ReturnWindow
    lines: tuple[EligibleLine, ...]

    @property
    def eligible(self) -> tuple[EligibleLine, ...]:
        return tuple(line for line in self.lines if line.eligibility.eligible)

    @property
    def ineligible(self) -> tuple[EligibleLine, ...]:
        return tuple(line for line in self.lines if not line.eligibility.eligible)

    def by_line_id(self) -> dict[str, EligibleLine]:
        return {line.line_id: line for line in self.lines}


def units_in_returns(*, tenant: Tenant, order: Order) -> dict[int, int]:
    """`{order_line_id: units}` in the order's returns that are not cancelled or rejected."""
    rows = (
        ReturnLine.objects.filter(tenant=tenant, order_line__order=order)
        .exclude(return_request__status__in=RELEASED_STATUSES)
        .values("order_line_id")
        .annotate(units=Sum("quantity"))
    )
    return {row["order_line_id"]: row["units"] or 0 for row in rows}


def order_eligibility(*, tenant: Tenant, order: Order, now: datetime) -> OrderEligibility:
    """Each line of `order` with its returnable quantity or the reason in plain words
    (rules: `rma.eligibility`). Three queries whatever the number of lines."""
    policy = return_policy_get(tenant=tenant)
    facts = policy_facts(tenant=tenant, policy=policy)
    order_facts = OrderFacts(
        placed_at=order.placed_at,
        fulfilled_at=order.fulfilled_at,
        delivered_at=order.delivered_at,
        is_cancelled=order.is_cancelled or order.cancelled_at is not None,
        is_voided=order.is_voided,
        tags=tuple(order.tags or ()),
    )
    window = return_window(order_facts, facts)
    in_returns = units_in_returns(tenant=tenant, order=order)
    lines = []
    for line in OrderLine.objects.filter(tenant=tenant, order=order).order_by("position"):
        line_facts = LineFacts(
            line_id=line.line_id,
            sku=line.sku,
            quantity=line.quantity,
            fulfilled_quantity=line.fulfilled_quantity,
            refunded_quantity=line.refunded_quantity,
            units_in_returns=in_returns.get(line.pk, 0),
            requires_shipping=line.requires_shipping,
            is_gift_card=line.is_gift_card,
            tags=tuple(line.tags or ()),
        )
        lines.append(
            EligibleLine(line, line_eligibility(line_facts, order_facts, facts, window, now))
        )
    return OrderEligibility(order=order, policy=policy, window=window, lines=tuple(lines))


# --------------------------------------------------------------------------
# Returns
# --------------------------------------------------------------------------
def return_get_by_token(*, tenant: Tenant, token: str) -> ReturnRequest:
    """The tenant's return with this public token; `ReturnRequest.DoesNotExist` for a
    missing and another tenant's token alike."""
    return ReturnRequest.objects.select_related("order", "tenant", "return_centre").get(
        tenant=tenant, token=token
    )


def return_get_by_rma_number(*, tenant: Tenant, rma_number: str) -> ReturnRequest:
    """The tenant's return by `RMA-100001` (case-insensitive); `DoesNotExist` otherwise."""
    return ReturnRequest.objects.select_related("order", "tenant", "return_centre").get(
        tenant=tenant, rma_number=(rma_number or "").strip().upper()
    )


def sla_policy_for(tenant_id: int) -> SlaPolicy:
    """The tenant's SLA policy; an unsaved one with the DESIGN.md section 6 defaults if missing."""
    policy = SlaPolicy.objects.filter(tenant_id=tenant_id).first()
    return policy if policy is not None else SlaPolicy(tenant_id=tenant_id)


def within_field_bounds(model: type[models.Model], name: str, value: int) -> int:
    """`value` moved into the field's Min/MaxValueValidator bounds. Forms refuse values
    outside them; this keeps a row stored before the bounds existed from pushing a
    due time past what the calendar and the database hold."""
    field = model._meta.get_field(name)
    for validator in getattr(field, "validators", ()):
        if isinstance(validator, MinValueValidator):
            value = max(value, validator.limit_value)
        elif isinstance(validator, MaxValueValidator):
            value = min(value, validator.limit_value)
    return value


def sla_targets(policy: SlaPolicy | None) -> SlaTargets:
    """The policy's targets as the pure `rma.sla.SlaTargets` (hours elapsed, business
    days), each within its field's bounds; the DESIGN.md section 6 defaults without
    a policy."""
    if policy is None:
        return SlaTargets()
    names = (
        "first_scan_hours",
        "transit_domestic_business_days",
        "transit_international_business_days",
        "checkin_hours",
        "inspection_hours",
        "refund_business_days",
        "no_movement_days",
        "claimed_dropoff_scan_hours",
    )
    return SlaTargets(
        **{name: within_field_bounds(SlaPolicy, name, getattr(policy, name)) for name in names}
    )


def business_calendar(*, tenant: Tenant, centre: ReturnCentre | None) -> BusinessCalendar:
    """The return centre's calendar, else the tenant's (DESIGN.md section 6)."""
    if centre is not None:
        return BusinessCalendar(centre.time_zone, centre.country, centre.subdivision)
    return BusinessCalendar(tenant.time_zone, tenant.country, tenant.subdivision)


def business_calendar_for(return_request: ReturnRequest) -> BusinessCalendar:
    """The return's business-day calendar: its return centre's zone, country and
    subdivision; else the tenant's default return centre's; else the tenant's own."""
    centre = return_request.return_centre
    if centre is None:
        centre = ReturnCentre.objects.filter(
            tenant_id=return_request.tenant_id, is_default=True
        ).first()
    return business_calendar(tenant=return_request.tenant, centre=centre)


def is_domestic(*, order: Order, centre: ReturnCentre | None, tenant: Tenant) -> bool:
    """Domestic when the order ships from the return centre's country (or it is unknown)."""
    destination = (centre.country if centre else tenant.country).upper()
    origin = (order.shipping_country or destination).upper()
    return origin == destination


def return_timeline(
    *,
    return_request: ReturnRequest,
    milestones: list[Milestone],
    sla: SlaPolicy | None,
    now: datetime,
) -> Timeline:
    """The return's timeline (`rma.timeline`) from rows already loaded: no queries."""
    centre = return_request.return_centre
    return build_timeline(
        [MilestoneFact(m.name, m.reached_at, m.source, m.precision) for m in milestones],
        targets=sla_targets(sla),
        calendar=business_calendar(tenant=return_request.tenant, centre=centre),
        domestic=is_domestic(
            order=return_request.order, centre=centre, tenant=return_request.tenant
        ),
        now=now,
    )


def primary_shipment(shipments: list[Shipment]) -> Shipment | None:
    """The primary inbound shipment among `shipments` (else the first inbound one)."""
    inbound = [s for s in shipments if s.direction == ShipmentDirection.INBOUND]
    return next((s for s in inbound if s.is_primary), inbound[0] if inbound else None)


@dataclass(frozen=True)
class ScanTime:
    """A scan instant shown in the scan location's zone (`zone_abbr`, e.g. `CET`) and as
    UTC ISO 8601 for JavaScript to convert to the browser's zone (DESIGN.md section 6)."""

    utc: datetime
    local: datetime
    zone_abbr: str

    @property
    def iso_utc(self) -> str:
        return self.utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scan_time(at: datetime | None, zone_name: str) -> ScanTime | None:
    if at is None:
        return None
    try:
        zone = ZoneInfo(zone_name) if zone_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone)
    return ScanTime(utc=at, local=local, zone_abbr=local.tzname() or "UTC")


@dataclass(frozen=True)
class TrackingPage:
    """Everything `/r/<token>/` shows (it reads only `rma`: DESIGN.md section 2)."""

    return_request: ReturnRequest
    timeline: Timeline
    next_step: str
    shipment: Shipment | None
    shipments: tuple[Shipment, ...]
    carrier_name: str
    tracking_url: str
    last_scan: ScanTime | None
    lines: tuple[ReturnLine, ...]
    exceptions: tuple[tuple[ReturnException, str], ...]
    label_ready: bool
    label_pending: bool
    label_failed: bool
    can_claim_dropoff: bool
    outcome_label: str
    refund_estimate: str
    steps: tuple = field(default=())


def tracking_page_get(*, tenant: Tenant, token: str, now: datetime) -> TrackingPage:
    """The tracking page of the tenant's return with `token`.

    Raises `ReturnRequest.DoesNotExist` for a missing or another tenant's
    token. Six queries whatever the number of lines, milestones, shipments or
    exceptions: the return (with order and return centre), milestones,
    shipments, open exceptions, lines (with order lines), the SLA policy.
    """
    rr = return_get_by_token(tenant=tenant, token=token)
    milestones = list(Milestone.objects.filter(tenant=tenant, return_request=rr))
    shipments = list(
        Shipment.objects.filter(tenant=tenant, return_request=rr).order_by("-is_primary", "pk")
    )
    exceptions = list(
        ReturnException.objects.filter(
            tenant=tenant, return_request=rr, state=ExceptionState.OPEN
        ).order_by("opened_at")
    )
    lines = tuple(
        ReturnLine.objects.filter(tenant=tenant, return_request=rr)
        .select_related("order_line")
        .order_by("pk")
    )
    sla = SlaPolicy.objects.filter(tenant=tenant).first()
    timeline = return_timeline(return_request=rr, milestones=milestones, sla=sla, now=now)
    shipment = primary_shipment(shipments)
    label_state = shipment.label_state if shipment else ""
    reached = {m.name for m in milestones}
    next_step = next_step_text(
        timeline,
        method=rr.method,
        label_state=label_state,
        refund_state=rr.refund_state,
        targets=sla_targets(sla),
    )
    can_claim = (
        "label_created" in reached
        and "dropped_off" not in reached
        and "first_scan" not in reached
        and not rr.is_closed
    )
    # The stored text is in the return's language; a page in another one takes that
    # language's text, so one page never mixes two.
    estimate = rr.refund_estimate_text
    language = get_language() or ""
    if language != (rr.language or "en"):
        estimate = (rr.refund_estimate_texts or {}).get(language) or estimate
    if not estimate and rr.refund_estimate_from and rr.refund_estimate_to:
        estimate = _("Expected between %(start)s and %(end)s.") % {
            "start": rr.refund_estimate_from.date().isoformat(),
            "end": rr.refund_estimate_to.date().isoformat(),
        }
    return TrackingPage(
        return_request=rr,
        timeline=timeline,
        next_step=next_step,
        shipment=shipment,
        shipments=tuple(shipments),
        carrier_name=carrier_name(shipment.carrier) if shipment else "",
        tracking_url=(
            carrier_tracking_url(shipment.carrier, shipment.tracking_number) if shipment else ""
        ),
        last_scan=(
            scan_time(shipment.last_scan_at, shipment.last_scan_time_zone) if shipment else None
        ),
        lines=lines,
        exceptions=tuple(
            (exc, message)
            for exc in exceptions
            if (message := customer_message(exc.kind, exc.reason)) is not None
        ),
        label_ready=bool(shipment and shipment.label_state == "ready" and shipment.label_file),
        label_pending=label_state == "pending",
        label_failed=label_state == "failed",
        can_claim_dropoff=can_claim,
        outcome_label=(str(MilestoneName(timeline.outcome.name).label) if timeline.outcome else ""),
        refund_estimate=estimate,
        steps=timeline.steps,
    )
