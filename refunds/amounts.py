"""Refund amounts, exactly as DESIGN.md section 7 says. Pure: dataclasses in and out.

All amounts are `Decimal` in major units of ONE currency (the order's);
nothing here ever adds two currencies. Rounding is ROUND_HALF_UP at the
currency's ISO 4217 exponent (`rma.money.quantize`).

The algorithm (`refund_amount`):

1. **Units.** A line of quantity Q with total discount D gives each unit a
   share of D by the *largest remainder* method in minor units: every unit
   gets `floor(D / Q)` and the first `D mod Q` units one minor unit more
   (10.00 over 3 units -> 3.34, 3.33, 3.33). Unit `i` (0-based) is worth
   `unit_price - share_i`. A return takes the next units not yet consumed on
   that line: `first_unit` = units the export marks refunded plus units in
   earlier live returns, so two returns never get the same unit's share.
2. **Tax.** When the order's prices exclude tax (and the tenant's option,
   on by default, says so), add `order taxes x units' net / order net
   subtotal`, computed exactly and rounded once.
3. **Shipping** is added only when the tenant refunds shipping and no other
   return of the order has taken it yet.
4. **Deductions**: the restocking fee (percent of the units' net, rounded
   once, and/or a fixed amount) and the return label's cost when the
   tenant deducts it (only a label priced in the order's currency).
5. **Never below zero**, then **capped** by what is left on the order:
   `total - refunded_amount (export) - other returns' approved, issuing
   and issued refunds` (the caller computes that under the order's row lock).
6. A store-credit bonus (percent of the capped amount, rounded once) is
   reported separately: it is the merchant's gift, so it never uses the cap.

Exchange lines are not refunded; their price difference
(`replacement unit price - net unit value`, per unit, times quantity) is
reported when the replacement's price is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from rma.money import currency_exponent, format_amount, quantize


def _minor(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


def unit_discount_shares(discount: Decimal, quantity: int, currency: str) -> list[Decimal]:
    """The line discount split over `quantity` units by largest remainder, in minor units.

    `sum(shares) == quantize(discount)`; the first units get the extra minor units.
    """
    if quantity <= 0:
        return []
    minor = _minor(currency)
    total_minor = int((quantize(discount, currency) / minor).to_integral_value())
    base, extra = divmod(total_minor, quantity)
    return [(Decimal(base + (1 if i < extra else 0)) * minor) for i in range(quantity)]


@dataclass(frozen=True)
class LineUnits:
    """Returned units of one order line.

    `unit_price` and `discount` (the line's TOTAL discount) as on the order
    line; `line_quantity` the order line's quantity; `first_unit` the index
    of the first unit this return takes; `quantity` how many it takes.
    `exchange` lines are not refunded; `replacement_unit_price` (if known)
    gives the price difference.
    """

    line_id: str
    unit_price: Decimal
    discount: Decimal
    line_quantity: int
    quantity: int
    first_unit: int = 0
    exchange: bool = False
    replacement_unit_price: Decimal | None = None


@dataclass(frozen=True)
class RefundPolicy:
    """The tenant's refund settings that change the amount (all default to DESIGN.md section 7)."""

    refund_taxes: bool = True
    refund_shipping: bool = False
    restocking_fee_percent: Decimal = Decimal("0")
    restocking_fee_fixed: Decimal = Decimal("0")
    deduct_label_cost: bool = False
    store_credit_bonus_percent: Decimal = Decimal("0")


@dataclass(frozen=True)
class OrderMoney:
    """The order's figures. `net_subtotal` is the sum of line prices after discounts
    (the tax base); `remaining` is what is left to refund on the order (step 5)."""

    currency: str
    taxes_included: bool
    taxes: Decimal
    net_subtotal: Decimal
    shipping: Decimal
    remaining: Decimal
    shipping_already_refunded: bool = False


@dataclass(frozen=True)
class LineResult:
    line_id: str
    quantity: int
    net: Decimal
    unit_values: tuple[Decimal, ...]
    exchange: bool = False
    price_difference: Decimal | None = None


@dataclass(frozen=True)
class AmountResult:
    """The computed refund (`amount`, what counts against the order) and its parts."""

    currency: str
    amount: Decimal
    units_net: Decimal
    tax: Decimal
    shipping: Decimal
    restocking_fee: Decimal
    label_cost: Decimal
    uncapped: Decimal
    cap: Decimal
    capped: bool
    bonus: Decimal
    lines: tuple[LineResult, ...] = field(default_factory=tuple)
    exchange_price_difference: Decimal | None = None

    def breakdown(self) -> dict:
        """JSON-ready breakdown: every amount as a string at the currency's exponent."""
        c = self.currency

        def f(v: Decimal | None) -> str | None:
            return None if v is None else format_amount(v, c)

        return {
            "currency": c,
            "units_net": f(self.units_net),
            "tax": f(self.tax),
            "shipping": f(self.shipping),
            "restocking_fee": f(self.restocking_fee),
            "label_cost": f(self.label_cost),
            "uncapped": f(self.uncapped),
            "cap": f(self.cap),
            "capped": self.capped,
            "amount": f(self.amount),
            "bonus": f(self.bonus),
            "exchange_price_difference": f(self.exchange_price_difference),
            "lines": [
                {
                    "line_id": line.line_id,
                    "quantity": line.quantity,
                    "net": f(line.net),
                    "unit_values": [f(v) for v in line.unit_values],
                    "exchange": line.exchange,
                    "price_difference": f(line.price_difference),
                }
                for line in self.lines
            ],
        }


def line_units_value(line: LineUnits, currency: str) -> tuple[Decimal, tuple[Decimal, ...]]:
    """Net value of the returned units of `line` and each unit's value (step 1)."""
    shares = unit_discount_shares(line.discount, line.line_quantity, currency)
    unit_price = quantize(line.unit_price, currency)
    values = []
    for i in range(line.first_unit, line.first_unit + line.quantity):
        # Units beyond the line's quantity (bad input) take no discount share.
        share = shares[i] if 0 <= i < len(shares) else Decimal(0)
        values.append(unit_price - share)
    return sum(values, Decimal(0)), tuple(values)


def refund_amount(
    *,
    lines: list[LineUnits] | tuple[LineUnits, ...],
    order: OrderMoney,
    policy: RefundPolicy,
    label_cost: Decimal = Decimal("0"),
) -> AmountResult:
    """The refund for `lines` of one order (module docstring, steps 1-6)."""
    cur = order.currency
    zero = quantize(0, cur)
    results = []
    units_net = Decimal(0)
    difference: Decimal | None = None
    for line in lines:
        net, values = line_units_value(line, cur)
        diff = None
        if line.exchange:
            if line.replacement_unit_price is not None:
                diff = quantize(line.replacement_unit_price, cur) * line.quantity - net
                difference = (difference or Decimal(0)) + diff
        else:
            units_net += net
        results.append(
            LineResult(
                line_id=line.line_id,
                quantity=line.quantity,
                net=net,
                unit_values=values,
                exchange=line.exchange,
                price_difference=diff,
            )
        )
    tax = zero
    if not order.taxes_included and policy.refund_taxes and order.net_subtotal > 0 and units_net:
        tax = quantize(Decimal(order.taxes) * units_net / Decimal(order.net_subtotal), cur)
    shipping = zero
    if policy.refund_shipping and not order.shipping_already_refunded and units_net > 0:
        shipping = quantize(order.shipping, cur)
    fee = zero
    if units_net > 0:
        if policy.restocking_fee_percent:
            fee += quantize(units_net * policy.restocking_fee_percent / 100, cur)
        if policy.restocking_fee_fixed:
            fee += quantize(policy.restocking_fee_fixed, cur)
    label = quantize(label_cost, cur) if (policy.deduct_label_cost and units_net > 0) else zero
    uncapped = max(units_net + tax + shipping - fee - label, zero)
    cap = max(quantize(order.remaining, cur), zero)
    amount = min(uncapped, cap)
    bonus = zero
    if policy.store_credit_bonus_percent and amount > 0:
        bonus = quantize(amount * policy.store_credit_bonus_percent / 100, cur)
    return AmountResult(
        currency=cur,
        amount=quantize(amount, cur),
        units_net=quantize(units_net, cur),
        tax=tax,
        shipping=shipping,
        restocking_fee=fee,
        label_cost=label,
        uncapped=quantize(uncapped, cur),
        cap=cap,
        capped=uncapped > cap,
        bonus=bonus,
        lines=tuple(results),
        exchange_price_difference=None if difference is None else quantize(difference, cur),
    )


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` in the currency's minor units as an integer (1.50 USD -> 150, 9899 JPY -> 9899)."""
    q = quantize(amount, currency)
    return int((q.scaleb(currency_exponent(currency))).to_integral_value(rounding=ROUND_FLOOR))
