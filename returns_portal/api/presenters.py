"""JSON shapes of the API (DESIGN.md section 10), built from rows read in a fixed
number of queries. Money is a string with the currency's exact decimals
(`rma.money.format_amount`); times are ISO 8601 UTC with `Z`.

The composition root may read every app: the refund block comes from
`refunds.models.Refund`, the rest from `rma`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, F

from refunds.models import Refund, RefundOutcome
from returns_portal.tenancy.models import Tenant
from returns_portal.tenancy.services import tenant_absolute_url
from rma.models import (
    LabelState,
    Milestone,
    Order,
    OrderLine,
    ReturnException,
    ReturnLine,
    ReturnRequest,
    Shipment,
    SlaPolicy,
)
from rma.money import format_amount
from rma.order_services import ORDER_API_FIELDS, ORDER_API_TIME_FIELDS, ORDER_MONEY_FIELDS
from rma.selectors import primary_shipment, return_timeline
from tracking.models import TrackingEvent
from tracking.selectors import event_output


def iso_z(value: datetime | None) -> str | None:
    """`2026-11-16T15:00:00Z` (microseconds kept when present), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(value: Any, currency: str) -> str | None:
    return None if value is None else format_amount(value, currency)


class Urls:
    """Absolute portal URLs on the tenant's primary host (one query, then reused)."""

    def __init__(self, tenant: Tenant) -> None:
        self.base = tenant_absolute_url(tenant, "/").rstrip("/")

    def tracking(self, rr: ReturnRequest) -> str:
        return f"{self.base}/r/{rr.token}/"

    def label(self, rr: ReturnRequest) -> str:
        return f"{self.base}/r/{rr.token}/label.pdf"


# --------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------
#: What an order's JSON carries besides its number, source and lines: the fields the
#: API writes (`rma.order_services.ORDER_API_FIELDS`) plus the derived `is_cancelled`.
ORDER_PLAIN_FIELDS = (
    *(
        name
        for name in ORDER_API_FIELDS
        if name != "number" and name not in ORDER_API_TIME_FIELDS + ORDER_MONEY_FIELDS
    ),
    "is_cancelled",
)


def order_json(order: Order, lines: list[OrderLine]) -> dict[str, Any]:
    data: dict[str, Any] = {"number": order.number, "source": order.source}
    data.update({name: getattr(order, name) for name in ORDER_PLAIN_FIELDS})
    data.update({name: iso_z(getattr(order, name)) for name in ORDER_API_TIME_FIELDS})
    data.update({name: money(getattr(order, name), order.currency) for name in ORDER_MONEY_FIELDS})
    data["lines"] = [
        {
            "line_id": line.line_id,
            "position": line.position,
            "sku": line.sku,
            "title": line.title,
            "vendor": line.vendor,
            "quantity": line.quantity,
            "unit_price": money(line.unit_price, order.currency),
            "compare_at_price": money(line.compare_at_price, order.currency),
            "discount": money(line.discount, order.currency),
            "requires_shipping": line.requires_shipping,
            "taxable": line.taxable,
            "is_gift_card": line.is_gift_card,
            "fulfillment_status": line.fulfillment_status,
            "fulfilled_quantity": line.fulfilled_quantity,
            "refunded_quantity": line.refunded_quantity,
            "tags": line.tags,
        }
        for line in lines
    ]
    return data


def order_detail(*, tenant: Tenant, order: Order) -> dict[str, Any]:
    lines = list(OrderLine.objects.filter(tenant=tenant, order=order).order_by("position"))
    return order_json(order, lines)


# --------------------------------------------------------------------------
# Returns
# --------------------------------------------------------------------------
def shipment_json(shipment: Shipment, rr: ReturnRequest, urls: Urls) -> dict[str, Any]:
    return {
        "carrier": shipment.carrier,
        "tracking_provider": shipment.tracking_provider,
        "tracking_number": shipment.tracking_number or None,
        "direction": shipment.direction,
        "is_primary": shipment.is_primary,
        "status": shipment.status,
        "exception_reason": shipment.exception_reason or None,
        "last_scan_at": iso_z(shipment.last_scan_at),
        "last_scan_location": shipment.last_scan_location or None,
        "label_state": shipment.label_state,
        "label_error": shipment.label_error or None,
    }


def _label_url(rr: ReturnRequest, primary: Shipment | None, urls: Urls) -> str | None:
    """Null while the label is being bought (DESIGN.md section 10); else the PDF (the
    carrier's label when there is one, then the packing slip)."""
    if primary is not None and primary.label_state == LabelState.PENDING:
        return None
    return urls.label(rr)


def refund_json(refund: Refund | None, rr: ReturnRequest) -> dict[str, Any] | None:
    """The refund block, read from `refunds.models.Refund`; the estimate from the
    return's denormalized summary (filled by the refunds work)."""
    if refund is None:
        return None
    return {
        "state": refund.state,
        "amount": money(refund.amount, refund.currency),
        "currency": refund.currency,
        "method": refund.method,
        "rule": refund.rule_name or None,
        "explanation": refund.explanation or None,
        "estimate": {
            "from": iso_z(rr.refund_estimate_from),
            "to": iso_z(rr.refund_estimate_to),
            "text": rr.refund_estimate_text or None,
        },
    }


def return_summary(rr: ReturnRequest, urls: Urls) -> dict[str, Any]:
    return {
        "rma_number": rr.rma_number,
        "token": rr.token,
        "status": rr.status,
        "order_number": rr.order.number,
        "email": rr.email,
        "method": rr.method,
        "created_at": iso_z(rr.created_at),
        "updated_at": iso_z(rr.updated_at),
        "tracking_url": urls.tracking(rr),
    }


def return_detail(*, tenant: Tenant, return_request: ReturnRequest, now: datetime) -> dict:
    """The full return (DESIGN.md section 10). Eight queries whatever the number of
    lines, photos, milestones, shipments or exceptions: primary host,
    milestones, shipments, exceptions, lines (with order lines and photo
    counts), SLA policy, refund; the return itself is passed in.

    `milestones` lists every parcel milestone in order (reached or not, with
    its due time) and then the outcome when one is reached. `events` are the
    stored carrier events of every shipment with the `normalize_events` keys
    (DESIGN.md section 9), oldest first (undated ones by carrier order).
    """
    rr = return_request
    urls = Urls(tenant)
    milestones = list(Milestone.objects.filter(tenant=tenant, return_request=rr))
    shipments = list(
        Shipment.objects.filter(tenant=tenant, return_request=rr).order_by("-is_primary", "pk")
    )
    exceptions = list(
        ReturnException.objects.filter(tenant=tenant, return_request=rr).order_by("opened_at")
    )
    lines = list(
        ReturnLine.objects.filter(tenant=tenant, return_request=rr)
        .select_related("order_line")
        .annotate(photo_count=Count("photos"))
        .order_by("pk")
    )
    by_shipment = {s.pk: s for s in shipments}
    events = [
        event_output(
            row,
            carrier=by_shipment[row.shipment_id].carrier,
            tracking_number=by_shipment[row.shipment_id].tracking_number,
        )
        for row in TrackingEvent.objects.filter(tenant=tenant, shipment__return_request=rr)
        .exclude(source="summary")
        .order_by(F("occurred_at").asc(nulls_last=True), "shipment_id", "sequence", "pk")
        if row.shipment_id in by_shipment
    ]
    sla = SlaPolicy.objects.filter(tenant=tenant).first()
    refund = Refund.objects.filter(
        tenant=tenant, return_request=rr, outcome=RefundOutcome.REFUND
    ).first()
    timeline = return_timeline(return_request=rr, milestones=milestones, sla=sla, now=now)
    by_name = {m.name: m for m in milestones}
    milestone_rows = [
        {
            "name": step.name,
            "reached_at": iso_z(step.reached_at),
            "due_at": iso_z(step.due_at),
            "source": step.source,
            "precision": step.precision,
        }
        for step in timeline.steps
    ]
    if timeline.outcome is not None:
        outcome = by_name[timeline.outcome.name]
        milestone_rows.append(
            {
                "name": outcome.name,
                "reached_at": iso_z(outcome.reached_at),
                "due_at": None,
                "source": outcome.source,
                "precision": outcome.precision,
            }
        )
    primary = primary_shipment(shipments)
    data = return_summary(rr, urls)
    data.update(
        {
            "label_url": _label_url(rr, primary, urls),
            "current_milestone": timeline.current,
            "next_milestone": timeline.next_expected.name if timeline.next_expected else None,
            "outcome": timeline.outcome.name if timeline.outcome else None,
            "milestones": milestone_rows,
            "shipment": shipment_json(primary, rr, urls) if primary else None,
            "shipments": [shipment_json(s, rr, urls) for s in shipments],
            "lines": [
                {
                    "line_id": line.order_line.line_id,
                    "sku": line.order_line.sku,
                    "title": line.order_line.title,
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "note": line.note,
                    "resolution": line.resolution,
                    "photos": line.photo_count,
                }
                for line in lines
            ],
            "events": events,
            "exceptions": [
                {
                    "kind": exc.kind,
                    "state": exc.state,
                    "reason": exc.reason or None,
                    "opened_at": iso_z(exc.opened_at),
                    "resolved_at": iso_z(exc.resolved_at),
                }
                for exc in exceptions
            ],
            "refund": refund_json(refund, rr),
        }
    )
    return data


def return_list_queryset(*, tenant: Tenant, filters: dict[str, Any]):
    """The tenant's returns, newest first, filtered by `status`, `created_after`,
    `created_before` (aware datetimes; after is inclusive, before exclusive)."""
    qs = ReturnRequest.objects.filter(tenant=tenant).select_related("order")
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs.order_by("-created_at", "-pk")
