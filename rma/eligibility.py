"""Which units of an order may be returned, and if not, why, in plain words. Pure:
no database, no clock (the caller passes `now`).

Rules (MISSION "Customer portal"; DESIGN.md sections 4 and 8; issue 3):

- Voided and cancelled orders are never returnable.
- Lines that do not ship (`requires_shipping` false) and gift cards are never
  returnable.
- Returnable units of a line = fulfilled units minus units in any return that
  is not cancelled or rejected minus units the export marks refunded
  (`OrderLine.refunded_quantity`), never below zero. Fulfilled units are
  capped at the ordered quantity.
- Final sale: the line's SKU is in the policy's final-sale SKUs, or a line or
  order tag is in its final-sale tags (both compared case-insensitively).
- The window is `window_days` from the outbound delivery when known, else
  from fulfillment, else (our fallback, so an order exported without dates is
  still handled) from the order date. It closes at the end of the local day
  (the tenant's zone) `window_days` after its start; the customer is told
  which start was used and the closing date.

When several reasons apply the first in `Ineligible` order is given: the
order's state, the kind of item, nothing shipped, final sale, everything
already returned, window closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from django.utils.formats import date_format
from django.utils.translation import gettext as _


class Ineligible(StrEnum):
    """Why a line cannot be returned; the value is the API error code."""

    ORDER_CANCELLED = "order_cancelled"
    NOT_RETURNABLE_ITEM = "not_returnable_item"
    NOT_SHIPPED = "not_shipped"
    FINAL_SALE = "final_sale"
    ALREADY_RETURNED = "already_returned"
    WINDOW_CLOSED = "window_closed"


class WindowBasis(StrEnum):
    DELIVERY = "delivery"
    FULFILLMENT = "fulfillment"
    ORDER_DATE = "order_date"


@dataclass(frozen=True)
class PolicyFacts:
    """The policy as eligibility needs it. `time_zone` is the tenant's IANA zone."""

    window_days: int
    final_sale_skus: frozenset[str] = frozenset()
    final_sale_tags: frozenset[str] = frozenset()
    time_zone: str = "UTC"

    @classmethod
    def build(
        cls, *, window_days: int, skus: list[str], tags: list[str], time_zone: str
    ) -> PolicyFacts:
        return cls(
            window_days=window_days,
            final_sale_skus=frozenset(s.strip().lower() for s in skus if s and s.strip()),
            final_sale_tags=frozenset(t.strip().lower() for t in tags if t and t.strip()),
            time_zone=time_zone,
        )


@dataclass(frozen=True)
class OrderFacts:
    """Aware datetimes (UTC) of the order; tags as exported."""

    placed_at: datetime
    fulfilled_at: datetime | None = None
    delivered_at: datetime | None = None
    is_cancelled: bool = False
    is_voided: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineFacts:
    """One order line; `units_in_returns` counts units in returns not cancelled or rejected."""

    line_id: str
    sku: str
    quantity: int
    fulfilled_quantity: int
    refunded_quantity: int = 0
    units_in_returns: int = 0
    requires_shipping: bool = True
    is_gift_card: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnWindow:
    """`starts_at` (UTC) on `basis`; open while `now < closes_at` (UTC, exclusive);
    `closes_on` is the last local day customers may start a return."""

    basis: WindowBasis
    starts_at: datetime
    closes_at: datetime
    closes_on: date

    def is_open(self, now: datetime) -> bool:
        return now < self.closes_at

    @property
    def basis_text(self) -> str:
        return {
            WindowBasis.DELIVERY: _("from delivery"),
            WindowBasis.FULFILLMENT: _("from shipping"),
            WindowBasis.ORDER_DATE: _("from the order date"),
        }[self.basis]


@dataclass(frozen=True)
class LineEligibility:
    """`returnable_quantity` > 0 exactly when `reason` is None; `message` is plain words."""

    line_id: str
    returnable_quantity: int
    reason: Ineligible | None
    message: str

    @property
    def eligible(self) -> bool:
        return self.reason is None


def return_window(order: OrderFacts, policy: PolicyFacts) -> ReturnWindow:
    """The order's return window (rules in the module docstring)."""
    if order.delivered_at is not None:
        basis, start = WindowBasis.DELIVERY, order.delivered_at
    elif order.fulfilled_at is not None:
        basis, start = WindowBasis.FULFILLMENT, order.fulfilled_at
    else:
        basis, start = WindowBasis.ORDER_DATE, order.placed_at
    zone = ZoneInfo(policy.time_zone)
    closes_on = start.astimezone(zone).date() + timedelta(days=policy.window_days)
    next_midnight = datetime.combine(closes_on + timedelta(days=1), time(0, 0), tzinfo=zone)
    return ReturnWindow(
        basis=basis,
        starts_at=start,
        closes_at=next_midnight.astimezone(ZoneInfo("UTC")),
        closes_on=closes_on,
    )


def _is_final_sale(line: LineFacts, order: OrderFacts, policy: PolicyFacts) -> bool:
    if line.sku and line.sku.strip().lower() in policy.final_sale_skus:
        return True
    tags = {t.strip().lower() for t in (*line.tags, *order.tags)}
    return bool(tags & policy.final_sale_tags)


def available_units(line: LineFacts) -> int:
    """Fulfilled (capped at ordered) minus units in live returns minus refunded units, >= 0."""
    fulfilled = min(line.fulfilled_quantity, line.quantity)
    return max(0, fulfilled - line.units_in_returns - line.refunded_quantity)


def line_eligibility(
    line: LineFacts,
    order: OrderFacts,
    policy: PolicyFacts,
    window: ReturnWindow,
    now: datetime,
) -> LineEligibility:
    """Eligibility of one line at `now` (rules and precedence in the module docstring)."""

    def no(reason: Ineligible, message: str) -> LineEligibility:
        return LineEligibility(line.line_id, 0, reason, message)

    if order.is_cancelled or order.is_voided:
        return no(Ineligible.ORDER_CANCELLED, _("This order was cancelled."))
    if line.is_gift_card:
        return no(Ineligible.NOT_RETURNABLE_ITEM, _("Gift cards can't be returned."))
    if not line.requires_shipping:
        return no(
            Ineligible.NOT_RETURNABLE_ITEM,
            _("This item wasn't shipped, so there is nothing to send back."),
        )
    if min(line.fulfilled_quantity, line.quantity) <= 0:
        return no(Ineligible.NOT_SHIPPED, _("Not shipped yet."))
    if _is_final_sale(line, order, policy):
        return no(Ineligible.FINAL_SALE, _("Final sale: this item can't be returned."))
    units = available_units(line)
    if units <= 0:
        if line.refunded_quantity and not line.units_in_returns:
            return no(Ineligible.ALREADY_RETURNED, _("Already refunded."))
        return no(Ineligible.ALREADY_RETURNED, _("Already returned."))
    if not window.is_open(now):
        return no(
            Ineligible.WINDOW_CLOSED,
            _("The return window closed on %(date)s.")
            % {"date": date_format(window.closes_on, "DATE_FORMAT")},
        )
    return LineEligibility(line.line_id, units, None, "")
