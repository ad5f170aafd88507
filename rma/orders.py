"""Orders as plain data, and the pure rules about their amounts.

`OrderData` / `OrderLineData` are what both order writers take: the Shopify
orders-export importer (`rma.importers.shopify`) builds them from CSV rows and
the API's `PUT /api/v1/orders/<number>/` builds them from JSON; both call
`rma.order_services.order_upsert`, so there is one writer.

The rules here take plain values and return plain values (no database), so
they are tested exhaustively on their own:

- `discount_shares` / `units_discount_share`: a line's discount spread over
  its units by largest remainder (DESIGN.md section 7).
- `units_net_amount`: what k whole units of a line cost the customer.
- `refunded_units`: which units Shopify's order-level `Refunded Amount`
  refunded (DESIGN.md section 7).
- `infer_taxes_included`: whether an export's prices include tax.

Money is `Decimal` in major units of the order's currency, quantized
ROUND_HALF_UP at the ISO 4217 exponent (`rma.money`). Times are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from babel.numbers import list_currencies

from rma.money import currency_exponent, quantize

#: ISO 4217 codes known to CLDR (through Babel); an order in any other currency is refused.
KNOWN_CURRENCIES = frozenset(list_currencies())

#: An order's times (placed, paid, fulfilled, delivered, cancelled) lie between this
#: instant and `ORDER_TIME_AHEAD` after now. Outside it they are typing errors (year 9999,
#: 0001), and windows and due times computed from them would leave the calendar.
ORDER_TIME_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
ORDER_TIME_AHEAD = timedelta(days=366)


def order_time_in_range(value: datetime, *, now: datetime) -> bool:
    """True when the aware `value` is plausible for an order (see `ORDER_TIME_EARLIEST`)."""
    return ORDER_TIME_EARLIEST <= value <= now + ORDER_TIME_AHEAD


# --------------------------------------------------------------------------
# Plain order data
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderLineData:
    """One line item as the shop recorded it.

    `unit_price` and `compare_at_price` are per unit; `discount` is the whole
    line's discount (all units together), as Shopify's `Lineitem discount`.
    `fulfilled_quantity` is in units. `source_row` is the physical line of the
    CSV record the line came from (None for the API), used in error reports.
    """

    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)
    compare_at_price: Decimal | None = None
    requires_shipping: bool = True
    taxable: bool = True
    is_gift_card: bool = False
    vendor: str = ""
    fulfillment_status: str = ""
    fulfilled_quantity: int = 0
    source_row: int | None = None


@dataclass(frozen=True)
class TaxLineData:
    """One of the export's `Tax N Name` / `Tax N Value` pairs (an order-level tax)."""

    name: str
    amount: Decimal


@dataclass(frozen=True)
class OrderData:
    """An order with the fields of a Shopify orders export.

    `number` is as shown (`#1001`); `shopify_id` is the export's `Id` (empty when
    unknown); times are aware datetimes (stored as UTC); amounts are `Decimal`
    major units of `currency`. `taxes_included` says whether line prices,
    `subtotal` and `shipping` include `taxes` (the CSV reader infers it, see
    `infer_taxes_included`). `tags` is a list of strings. `lines` keep their
    order: a line's position is its index + 1.
    """

    number: str
    currency: str
    placed_at: datetime
    total: Decimal
    lines: tuple[OrderLineData, ...]
    taxes_included: bool = False
    shopify_id: str = ""
    email: str = ""
    customer_name: str = ""
    phone: str = ""
    paid_at: datetime | None = None
    fulfilled_at: datetime | None = None
    cancelled_at: datetime | None = None
    financial_status: str = ""
    fulfillment_status: str = ""
    subtotal: Decimal = Decimal(0)
    shipping: Decimal = Decimal(0)
    taxes: Decimal = Decimal(0)
    duties: Decimal = Decimal(0)
    discount_code: str = ""
    discount_amount: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    outstanding_balance: Decimal = Decimal(0)
    risk_level: str = ""
    tags: tuple[str, ...] = ()
    tax_lines: tuple[TaxLineData, ...] = ()
    accepts_marketing: bool | None = None
    source_name: str = ""
    shipping_method: str = ""
    shipping_name: str = ""
    shipping_company: str = ""
    shipping_address1: str = ""
    shipping_address2: str = ""
    shipping_city: str = ""
    shipping_zip: str = ""
    shipping_province: str = ""
    shipping_country: str = ""
    shipping_phone: str = ""
    payment_method: str = ""
    payment_reference: str = ""
    note: str = ""
    note_attributes: str = ""
    source_row: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------
#: Shopify's order `Financial Status` values (Shopify Help Center, "Order CSV
#: column descriptions" of the Transporter app,
#: https://help.shopify.com/en/manual/migrating-to-shopify/transporter-app/csv-orders).
FINANCIAL_STATUSES = frozenset(
    {
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
        "expired",
    }
)

#: `Risk Level` as exported (`Low`, `Medium`, `High`) -> `rma.models.RiskLevel`.
RISK_LEVELS = {"low": "low", "medium": "medium", "high": "high"}


def fulfilled_quantity_for(status: str, quantity: int) -> int:
    """Units shipped, from a line's `Lineitem fulfillment status`.

    `fulfilled` -> all `quantity` units; anything else (`pending`,
    `unfulfilled`, `restocked`, empty) -> 0. A `partial` line also gives 0: the
    export does not say how many of its units shipped, and a returns portal
    must not offer units that may never have left the warehouse (staff see the
    raw status on the line).
    """
    return quantity if status.strip().lower() == "fulfilled" else 0


#: Words that name a gift card in a line title (the export has no gift-card
#: column). English plus the languages of Shopify's own gift card product
#: template translations we have seen in exports.
GIFT_CARD_WORDS = (
    "gift card",
    "giftcard",
    "gift-card",
    "e-gift",
    "geschenkkarte",
    "gutschein",
    "carte cadeau",
    "carte-cadeau",
    "tarjeta de regalo",
    "carta regalo",
    "cadeaukaart",
    "presentkort",
    "ギフトカード",
    "礼品卡",
)


def is_gift_card_line(*, title: str, requires_shipping: bool) -> bool:
    """A gift card line: it does not ship and its title names a gift card.

    Shopify gift cards are products that never require shipping (Shopify Help
    Center, "Gift cards"), and the orders export has no gift-card column, so
    the title decides among non-shipping lines: "Gift Wrap" or a service is
    not a gift card, "Gift Card 50 EUR" is.
    """
    if requires_shipping:
        return False
    lowered = title.casefold()
    return any(word in lowered for word in GIFT_CARD_WORDS)


# --------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------
def _minor(amount: Decimal, currency: str) -> int:
    """`amount` in integer minor units of `currency` (after half-up quantizing)."""
    return int(quantize(amount, currency).scaleb(currency_exponent(currency)))


def _major(minor: int, currency: str) -> Decimal:
    return quantize(Decimal(minor).scaleb(-currency_exponent(currency)), currency)


def discount_shares(*, discount: Decimal, quantity: int, currency: str) -> list[Decimal]:
    """The line discount's share of each unit, by largest remainder (DESIGN.md section 7).

    Every unit weighs the same, so each gets `discount // quantity` minor units
    and the `discount % quantity` leftover minor units go one each to the first
    units (ties of the largest-remainder method broken by unit order). The
    shares sum exactly to `discount`. Example: 10.00 USD over 3 units ->
    [3.34, 3.33, 3.33]; 1000 JPY over 3 -> [334, 333, 333].
    """
    if quantity <= 0:
        return []
    total = _minor(discount, currency)
    base, rest = divmod(total, quantity)
    return [_major(base + (1 if i < rest else 0), currency) for i in range(quantity)]


def units_discount_share(*, discount: Decimal, quantity: int, units: int, currency: str) -> Decimal:
    """The discount share of `units` whole units of a line: the first `units` shares
    of `discount_shares` (so k units always carry the same share, whichever k)."""
    return sum(
        discount_shares(discount=discount, quantity=quantity, currency=currency)[:units],
        Decimal(0),
    )


def line_net_amount(line: OrderLineData, currency: str) -> Decimal:
    """A whole line after its discount: `quantity x unit_price - discount`."""
    return quantize(line.unit_price * line.quantity - line.discount, currency)


def units_net_amount(
    *,
    line: OrderLineData,
    units: int,
    currency: str,
    taxes_included: bool,
    order_taxes: Decimal,
    order_net_subtotal: Decimal,
) -> Decimal:
    """What `units` whole units of `line` cost the customer (DESIGN.md section 7).

    `units x unit_price - the units' discount share`, plus, when the order's
    prices exclude tax, the units' share of the order's taxes:
    `order_taxes x units' net / order_net_subtotal`, computed exactly and
    rounded once (half-up at the currency exponent). With tax-inclusive prices
    the tax is already inside the unit price. `order_net_subtotal` is the sum
    of every line's net amount (`line_net_amount`); when it is zero there is no
    tax share.
    """
    net = line.unit_price * units - units_discount_share(
        discount=line.discount, quantity=line.quantity, units=units, currency=currency
    )
    if not taxes_included and order_taxes and order_net_subtotal:
        net += order_taxes * net / order_net_subtotal
    return quantize(net, currency)


def refunded_units(
    *,
    lines: tuple[OrderLineData, ...] | list[OrderLineData],
    refunded_amount: Decimal,
    financial_status: str,
    currency: str,
    taxes_included: bool,
    order_taxes: Decimal,
) -> list[int]:
    """Refunded units per line (same order as `lines`), from the order-level refund.

    Rule (DESIGN.md section 7): Shopify's export gives only an order-level
    `Refunded Amount`, not which units were refunded, so:

    1. `financial_status == "refunded"` (fully refunded, Shopify's status
       values: Help Center "Order CSV column descriptions") -> every unit of
       every line is refunded.
    2. Otherwise, if `refunded_amount > 0` and there is exactly one pair
       (line, k), 1 <= k <= line quantity, whose `units_net_amount` equals
       `refunded_amount` exactly, those k units of that line are refunded.
    3. Otherwise (no refund, no pair, or two or more pairs) no unit is marked;
       the amount still caps later refunds (`Order.refunded_amount`).

    Examples (USD, prices excluding tax, order taxes 8.00, net subtotal 100.00):
    lines A 2 x 30.00 (discount 0) and B 1 x 40.00 (discount 0): refunded 32.40
    -> A: 1 unit (30.00 + 8.00 x 30/100 = 32.40); refunded 64.80 -> A: 2 units;
    refunded 43.20 -> B: 1 unit; refunded 10.00 -> nothing (no pair). Lines A
    1 x 25.00 and B 1 x 25.00 (same net): refunded 25.00 with no taxes -> two
    pairs, ambiguous -> nothing marked.
    """
    if financial_status.strip().lower() == "refunded":
        return [line.quantity for line in lines]
    marked = [0] * len(lines)
    if refunded_amount <= 0:
        return marked
    net_subtotal = sum((line_net_amount(line, currency) for line in lines), Decimal(0))
    target = quantize(refunded_amount, currency)
    matches: list[tuple[int, int]] = []
    for index, line in enumerate(lines):
        for units in range(1, line.quantity + 1):
            amount = units_net_amount(
                line=line,
                units=units,
                currency=currency,
                taxes_included=taxes_included,
                order_taxes=order_taxes,
                order_net_subtotal=net_subtotal,
            )
            if amount == target:
                matches.append((index, units))
            if len(matches) > 1:
                return marked
    if len(matches) == 1:
        index, units = matches[0]
        marked[index] = units
    return marked


@dataclass(frozen=True)
class TaxInclusion:
    """`infer_taxes_included`'s answer: the flag, and `consistent` False when
    neither of Shopify's equations held (the flag is then the closer one)."""

    taxes_included: bool
    consistent: bool
    detail: str = ""


def infer_taxes_included(
    *,
    subtotal: Decimal,
    shipping: Decimal,
    taxes: Decimal,
    duties: Decimal,
    total: Decimal,
    currency: str,
) -> TaxInclusion:
    """Whether an exported order's prices include tax (the export has no column for it).

    Source: Shopify documents the order subtotal as the line items' prices
    after discounts, without shipping, and with taxes "not included unless
    the order is a taxes-included order" (Storefront API `Order.subtotalPrice`
    / `currentSubtotalPrice`, https://shopify.dev/docs/api/storefront/2025-04/objects/Order;
    Liquid `order.subtotal_price`: "sum of line item prices after
    discounts"). The export's `Subtotal` is that subtotal, so its
    `Discount Amount` is already taken off and must not be subtracted again,
    and `Taxes` is the tax charged (inside the prices or on top of them).
    Hence, exactly, in the currency's minor units:

    - taxes excluded: `Total = Subtotal + Shipping + Taxes + Duties`
    - taxes included: `Total = Subtotal + Shipping + Duties`

    When exactly one equation holds it decides. When `Taxes` is zero both hold
    and the answer is False (nothing to split out, so no amount depends on it).
    When neither holds (tips, edits, hand-made files) the closer one is taken,
    ties going to False, and `consistent` is False so the importer reports it.
    """
    subtotal, shipping, taxes, duties, total = (
        quantize(v, currency) for v in (subtotal, shipping, taxes, duties, total)
    )
    excluded_gap = total - (subtotal + shipping + taxes + duties)
    included_gap = total - (subtotal + shipping + duties)
    if excluded_gap == 0:
        return TaxInclusion(taxes_included=False, consistent=True)
    if included_gap == 0:
        return TaxInclusion(taxes_included=True, consistent=True)
    included = abs(included_gap) < abs(excluded_gap)
    detail = (
        f"Total {total} is neither Subtotal + Shipping + Taxes + Duties "
        f"({subtotal + shipping + taxes + duties}) nor Subtotal + Shipping + Duties "
        f"({subtotal + shipping + duties}); taken as taxes "
        f"{'included' if included else 'excluded'}"
    )
    return TaxInclusion(taxes_included=included, consistent=False, detail=detail)
