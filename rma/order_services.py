"""rma order services: the one writer of orders and their lines, for the Shopify
CSV import (`order_import_csv`, `manage.py import_orders`) and the API
(`order_upsert_from_api`, `PUT /api/v1/orders/<number>/`).

Both go through `order_upsert`: each order in its own transaction, re-import
is an upsert keyed as DESIGN.md section 4 says, and a line that already has
returns is never changed (reported instead).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, cast

from django.db import DataError, IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from returns_portal.tenancy.models import Tenant
from rma.importers.shopify import ExportFileError, ParsedOrder, RowIssue, open_export, read_orders
from rma.models import (
    Customer,
    Order,
    OrderLine,
    OrderSource,
    ReturnLine,
    ReturnRequest,
)
from rma.money import format_amount, quantize
from rma.orders import (
    KNOWN_CURRENCIES,
    OrderData,
    OrderLineData,
    order_time_in_range,
    refunded_units,
)
from rma.services import Refusal, ReturnRefused

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------
# Orders: one writer for the Shopify CSV import and the API
# --------------------------------------------------------------------------
class OrderDataError(ValueError):
    """`OrderData` cannot be written: `message` says why; `line` is the physical
    CSV line concerned when the data came from an export (else None)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class OrderNotice:
    """Something `order_upsert` did not do on purpose (a line with returns kept)."""

    line: int | None
    message: str


@dataclass(frozen=True)
class OrderUpsertResult:
    """What `order_upsert` did. Unpacks as `(order, created)`.

    `changed` is False when an existing order already had exactly this data
    (nothing was written); `notices` list the changes that were refused
    because a line has returns."""

    order: Order
    created: bool
    changed: bool
    notices: tuple[OrderNotice, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.order, self.created))


_ORDER_TEXT_FIELDS = (
    "email",
    "discount_code",
    "risk_level",
    "source_name",
    "shipping_method",
    "shipping_name",
    "shipping_company",
    "shipping_address1",
    "shipping_address2",
    "shipping_city",
    "shipping_zip",
    "shipping_province",
    "shipping_country",
    "shipping_phone",
    "payment_method",
    "payment_reference",
    "note",
    "note_attributes",
    "phone",
    "financial_status",
    "fulfillment_status",
)
_ORDER_MONEY_FIELDS = (
    "total",
    "subtotal",
    "shipping",
    "taxes",
    "duties",
    "discount_amount",
    "refunded_amount",
    "outstanding_balance",
)
_LINE_TEXT_FIELDS = ("sku", "title", "vendor", "fulfillment_status")


def _check_lengths(
    model: type[Any], values: dict[str, Any], *, what: str, line: int | None
) -> None:
    for name, value in values.items():
        if isinstance(value, str):
            max_length = model._meta.get_field(name).max_length
            if max_length is not None and len(value) > max_length:
                raise OrderDataError(
                    f"{what} {name} is {len(value)} characters long (at most {max_length})",
                    line=line,
                )


def _order_values(data: OrderData, currency: str, now: datetime) -> dict[str, Any]:
    """The `Order` columns for `data` (money quantized, tags and tax lines as JSON).
    Times must be aware and within `order_time_in_range` of `now`."""
    values: dict[str, Any] = {name: getattr(data, name).strip() for name in _ORDER_TEXT_FIELDS}
    values["note"] = data.note
    values["note_attributes"] = data.note_attributes
    values["financial_status"] = values["financial_status"].lower()
    values["fulfillment_status"] = values["fulfillment_status"].lower()
    for name in _ORDER_MONEY_FIELDS:
        amount = getattr(data, name)
        if amount < 0:
            raise OrderDataError(f"negative {name}: {amount}", line=data.source_row)
        values[name] = quantize(amount, currency)
    values.update(
        number=data.number.strip(),
        currency=currency,
        placed_at=data.placed_at,
        paid_at=data.paid_at,
        fulfilled_at=data.fulfilled_at,
        cancelled_at=data.cancelled_at,
        is_cancelled=data.cancelled_at is not None,
        is_voided=data.financial_status.strip().lower() == "voided",
        taxes_included=data.taxes_included,
        tags=list(data.tags),
        tax_lines=[
            {"name": tax.name, "amount": format_amount(tax.amount, currency)}
            for tax in data.tax_lines
        ],
        accepts_marketing=data.accepts_marketing,
        export_extra=dict(data.extra),
    )
    for name in ("placed_at", "paid_at", "fulfilled_at", "cancelled_at"):
        value = values[name]
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise OrderDataError(f"{name} has no time zone", line=data.source_row)
        if value is not None and not order_time_in_range(value, now=now):
            raise OrderDataError(
                f"{name} {value.isoformat()} is out of range (1970 to one year ahead)",
                line=data.source_row,
            )
    return values


def _line_values(line: OrderLineData, currency: str, refunded_quantity: int) -> dict[str, Any]:
    """The `OrderLine` columns for `line` (money quantized)."""
    if line.quantity < 0:
        raise OrderDataError(f"negative quantity {line.quantity}", line=line.source_row)
    for name, amount in (("unit price", line.unit_price), ("discount", line.discount)):
        if amount < 0:
            raise OrderDataError(f"negative {name}: {amount}", line=line.source_row)
    unit_price = quantize(line.unit_price, currency)
    discount = quantize(line.discount, currency)
    if discount > unit_price * line.quantity:
        raise OrderDataError(
            f"line discount {discount} is more than the line's price "
            f"{quantize(unit_price * line.quantity, currency)}",
            line=line.source_row,
        )
    values: dict[str, Any] = {name: getattr(line, name).strip() for name in _LINE_TEXT_FIELDS}
    values["fulfillment_status"] = values["fulfillment_status"].lower()
    values.update(
        quantity=line.quantity,
        unit_price=unit_price,
        compare_at_price=(
            None if line.compare_at_price is None else quantize(line.compare_at_price, currency)
        ),
        discount=discount,
        requires_shipping=line.requires_shipping,
        taxable=line.taxable,
        is_gift_card=line.is_gift_card,
        fulfilled_quantity=max(0, min(line.fulfilled_quantity, line.quantity)),
        refunded_quantity=max(0, min(refunded_quantity, line.quantity)),
    )
    return values


def _differences(obj: Any, values: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields of `obj` whose stored value differs from `values` (Decimal compares by value)."""
    return {
        name: (getattr(obj, name), value)
        for name, value in values.items()
        if getattr(obj, name) != value
    }


@dataclass(frozen=True)
class _OrderPlan:
    """`OrderData` turned into column values, before any database access.

    `values` lacks `shopify_id` and `customer`, which depend on the stored order."""

    data: OrderData
    number: str
    number_key: str
    email_normalized: str
    values: dict[str, Any]
    line_values: list[dict[str, Any]]

    def match(self, tenant: Tenant) -> Q:
        """`tenant`'s rows that may be this order: same number key, or same Shopify id.

        The tenant is repeated in each branch so that each can use its index
        (SQLite's multi-index OR; PostgreSQL's bitmap OR)."""
        match = Q(tenant=tenant, number_key=self.number_key)
        if self.data.shopify_id:
            match |= Q(tenant=tenant, shopify_id=self.data.shopify_id)
        return match


def _has_returns(order: Order) -> bool:
    """True when any return (whatever its state) was made for `order`."""
    return ReturnRequest.objects.filter(tenant_id=order.tenant_id, order=order).exists()


def _order_plan(data: OrderData, *, now: datetime) -> _OrderPlan:
    """Validate `data` and compute every column `order_upsert` would write.

    Raises `OrderDataError` (see `order_upsert`)."""
    number = data.number.strip()
    number_key = Order.normalize_number(number)
    if not number_key:
        raise OrderDataError("missing order number", line=data.source_row)
    currency = data.currency.strip().upper()
    if currency not in KNOWN_CURRENCIES:
        raise OrderDataError(f"unknown currency {data.currency!r}", line=data.source_row)
    values = _order_values(data, currency, now)
    _check_lengths(
        Order, {**values, "shopify_id": data.shopify_id}, what="order", line=data.source_row
    )
    email_normalized = ""
    if data.email.strip():
        email_normalized = Customer.normalize_email(data.email)
        _check_lengths(
            Customer, {"email_normalized": email_normalized}, what="customer", line=data.source_row
        )
    quantized_lines = tuple(
        replace(
            line,
            unit_price=quantize(line.unit_price, currency),
            discount=quantize(line.discount, currency),
        )
        for line in data.lines
    )
    refunded = refunded_units(
        lines=quantized_lines,
        refunded_amount=values["refunded_amount"],
        financial_status=values["financial_status"],
        currency=currency,
        taxes_included=data.taxes_included,
        order_taxes=values["taxes"],
    )
    line_values = []
    for line, refunded_quantity in zip(data.lines, refunded, strict=True):
        one = _line_values(line, currency, refunded_quantity)
        _check_lengths(OrderLine, one, what="line", line=line.source_row)
        line_values.append(one)
    return _OrderPlan(
        data=data,
        number=number,
        number_key=number_key,
        email_normalized=email_normalized,
        values=values,
        line_values=line_values,
    )


def _order_resolve(plan: _OrderPlan, candidates: list[Order]) -> Order | None:
    """The stored order `plan` updates, among `candidates` (rows matching `plan.match()`),
    or None for a new order. Raises `OrderDataError` when the Shopify id and the
    number point at different orders."""
    data = plan.data
    by_id = next(
        (o for o in candidates if data.shopify_id and o.shopify_id == data.shopify_id), None
    )
    by_number = next((o for o in candidates if o.number_key == plan.number_key), None)
    if by_id is not None and by_number is not None and by_id.pk != by_number.pk:
        raise OrderDataError(
            f"Shopify order {data.shopify_id} is now numbered {plan.number}, "
            "which another order already has",
            line=data.source_row,
        )
    if (
        by_id is None
        and by_number is not None
        and data.shopify_id
        and by_number.shopify_id
        and by_number.shopify_id != data.shopify_id
    ):
        raise OrderDataError(
            f"order number {plan.number} already belongs to Shopify order "
            f"{by_number.shopify_id}, not {data.shopify_id}",
            line=data.source_row,
        )
    return by_id or by_number


def _order_unchanged(plan: _OrderPlan, order: Order, stored_lines: list[OrderLine]) -> bool:
    """True when `order_upsert(plan.data)` would write nothing to `order` (whose
    customer is loaded) and its `stored_lines` (in position order)."""
    data = plan.data
    if data.shopify_id and data.shopify_id != order.shopify_id:
        return False
    if data.source_row is not None and data.source_row != order.source_row:
        return False
    if _differences(order, plan.values):
        return False
    customer = order.customer
    if plan.email_normalized:
        if customer is None or customer.email_normalized != plan.email_normalized:
            return False
        if not customer.name and data.customer_name:
            return False
    elif customer is not None:
        return False
    if len(stored_lines) != len(plan.line_values):
        return False
    return all(
        stored.position == position and not _differences(stored, one)
        for position, (stored, one) in enumerate(
            zip(stored_lines, plan.line_values, strict=True), 1
        )
    )


@transaction.atomic
def order_upsert(
    *,
    tenant: Tenant,
    data: OrderData,
    now: datetime,
    source: str = OrderSource.API,
) -> OrderUpsertResult:
    """Create or update `tenant`'s order from `data`; the only writer of orders and lines.

    Key (DESIGN.md section 4): `(tenant, shopify_id)` when `data.shopify_id` is
    set, else `(tenant, normalized number)` (`#1001` and `1001` are the same
    order). An order found by number that has no Shopify id yet adopts
    `data.shopify_id`; one with a different Shopify id is refused.

    Lines are matched by position (index + 1 in `data.lines`) and checked
    against SKU and title: a mismatch raises `OrderDataError` and writes
    nothing. A line that has returns (`ReturnLine` rows) is never changed or
    deleted: the refused change is listed in `notices`. Other lines are
    updated in place (their `line_id` stays), added, or deleted when the data
    has fewer lines.

    `refunded_quantity` per line follows `rma.orders.refunded_units`
    (DESIGN.md section 7); `fulfilled_quantity` is taken from the data. The
    order is linked to the tenant's `Customer` with its e-mail lower-cased in
    Python (created when missing); no e-mail means no customer (the order
    cannot be looked up in the portal). `is_cancelled` is set when
    `cancelled_at` is, `is_voided` when `financial_status` is `voided`.
    Money is quantized ROUND_HALF_UP at the currency's exponent.

    Idempotent: the same data again writes nothing and returns `changed=False`.
    Runs in its own transaction (a savepoint when nested) and locks the order
    row. `source` (`OrderSource`) is recorded when the order is created.
    Raises `OrderDataError` for data that cannot be stored (unknown currency,
    number clash, SKU/title mismatch, over-long text, naive times).
    """
    plan = _order_plan(data, now=now)
    candidates = list(
        Order.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(plan.match(tenant))
    )
    existing = _order_resolve(plan, candidates)
    values = dict(plan.values)
    values["shopify_id"] = data.shopify_id or (existing.shopify_id if existing else "")

    customer: Customer | None = None
    if plan.email_normalized:
        linked = existing.customer if existing is not None else None
        if linked is not None and linked.email_normalized == plan.email_normalized:
            customer = linked
        else:
            customer, _created = Customer.objects.get_or_create(
                tenant=tenant,
                email_normalized=plan.email_normalized,
                defaults={"name": data.customer_name[:200], "created_at": now},
            )
        if not customer.name and data.customer_name:
            customer.name = data.customer_name[:200]
            Customer.objects.filter(pk=customer.pk).update(name=customer.name)
    values["customer"] = customer
    line_values = plan.line_values

    if existing is None:
        order = Order(
            tenant=tenant,
            source=source,
            source_row=data.source_row,
            imported_at=now,
            **values,
        )
        order.save()
        OrderLine.objects.bulk_create(
            [
                OrderLine(tenant=tenant, order=order, position=position, **one)
                for position, one in enumerate(line_values, start=1)
            ]
        )
        return OrderUpsertResult(order=order, created=True, changed=True)

    order = existing
    if values["currency"] != order.currency and _has_returns(order):
        raise OrderDataError(
            f"currency cannot change from {order.currency} to {values['currency']}: "
            "the order has returns",
            line=data.source_row,
        )
    stored_lines = list(OrderLine.objects.filter(tenant=tenant, order=order).order_by("position"))
    _order_lines_check(stored_lines, data.lines, line_values)
    changes = _differences(order, values)
    if changes:
        for name, (_old, new) in changes.items():
            setattr(order, name, new)
        update_fields = [*changes, "number_key", "updated_at"]
        if data.source_row is not None:
            order.source_row = data.source_row
            update_fields.append("source_row")
        order.save(update_fields=update_fields)
    elif data.source_row is not None and order.source_row != data.source_row:
        Order.objects.filter(pk=order.pk).update(source_row=data.source_row)
        order.source_row = data.source_row
    lines_changed, notices = _order_lines_sync(
        tenant=tenant,
        order=order,
        stored_lines=stored_lines,
        lines=data.lines,
        line_values=line_values,
    )
    return OrderUpsertResult(
        order=order,
        created=False,
        changed=bool(changes) or lines_changed,
        notices=tuple(notices),
    )


def _order_lines_check(
    stored_lines: list[OrderLine],
    lines: tuple[OrderLineData, ...],
    line_values: list[dict[str, Any]],
) -> None:
    """Lines are matched by position and must keep their SKU and title (DESIGN.md
    section 4): raise `OrderDataError` for the first line that does not."""
    by_position = {line.position: line for line in stored_lines}
    for position, (line, one) in enumerate(zip(lines, line_values, strict=True), start=1):
        stored = by_position.get(position)
        if stored is not None and (stored.sku, stored.title) != (one["sku"], one["title"]):
            raise OrderDataError(
                f"line {position} is SKU {one['sku']!r} {one['title']!r} in the export but "
                f"SKU {stored.sku!r} {stored.title!r} in the stored order (lines are matched "
                "by position); the order was not updated",
                line=line.source_row,
            )


def _order_lines_sync(
    *,
    tenant: Tenant,
    order: Order,
    stored_lines: list[OrderLine],
    lines: tuple[OrderLineData, ...],
    line_values: list[dict[str, Any]],
) -> tuple[bool, list[OrderNotice]]:
    """Bring `order`'s lines (`stored_lines`, already checked by
    `_order_lines_check`) to `line_values` by position; see `order_upsert`.
    Returns (anything written, notices)."""
    by_position = {line.position: line for line in stored_lines}
    to_create: list[OrderLine] = []
    to_change: list[tuple[int, OrderLineData, OrderLine, dict[str, tuple[Any, Any]]]] = []
    for position, (line, one) in enumerate(zip(lines, line_values, strict=True), start=1):
        stored = by_position.pop(position, None)
        if stored is None:
            to_create.append(OrderLine(tenant=tenant, order=order, position=position, **one))
            continue
        changes = _differences(stored, one)
        if changes:
            to_change.append((position, line, stored, changes))
    written = False
    notices: list[OrderNotice] = []
    if not (to_change or by_position or to_create):
        return written, notices
    with_returns = set(
        ReturnLine.objects.filter(tenant=tenant, order_line__order=order).values_list(
            "order_line_id", flat=True
        )
    )
    for position, line, stored, changes in to_change:
        if stored.pk in with_returns:
            described = ", ".join(
                f"{name} {_shown(old)} -> {_shown(new)}" for name, (old, new) in changes.items()
            )
            notices.append(
                OrderNotice(
                    line.source_row,
                    f"line {position} (SKU {stored.sku!r}) has returns, so it was left "
                    f"unchanged (the export has {described})",
                )
            )
            continue
        for name, (_old, new) in changes.items():
            setattr(stored, name, new)
        stored.save(update_fields=list(changes))
        written = True
    if to_create:
        OrderLine.objects.bulk_create(to_create)
        written = True
    for position, stored in sorted(by_position.items()):
        if stored.pk in with_returns:
            notices.append(
                OrderNotice(
                    None,
                    f"line {position} (SKU {stored.sku!r}) is not in the export but has "
                    "returns, so it was kept",
                )
            )
            continue
        stored.delete()
        written = True
    return written, notices


def _shown(value: Any) -> str:
    return "none" if value is None else str(value)


@dataclass
class ImportResult:
    """Summary of one `order_import_csv` run.

    Counts are orders: `created`, `updated` (stored data changed),
    `unchanged` (re-imported exactly as stored: nothing written) and `failed`
    (nothing of that order written). `lines` counts the line items of created
    and updated orders. `errors` are the failed records (physical line, order,
    reason), `warnings` what was imported with a caveat (lines with returns
    kept, unknown risk level, totals that fit no tax equation). `stopped_at`
    is set when reading stopped early (a line that is not UTF-8): the orders
    before it are imported, the rest is not.
    """

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    lines: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    stopped_at: RowIssue | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.stopped_at is None


#: Orders read before the stored ones are fetched together to spot unchanged orders.
IMPORT_CHUNK = 500


def order_import_csv(
    *,
    tenant: Tenant,
    stream_or_path: str | Path | IO[bytes] | IO[str],
    now: datetime,
) -> ImportResult:
    """Import a Shopify orders export (Admin > Orders > Export) into `tenant`.

    `stream_or_path` is a path, a binary stream (UTF-8, BOM optional) or a
    text stream; see `rma.importers.shopify` for the file's shape. Every order
    goes through `order_upsert` in its own transaction, so a bad record fails
    its order only and re-importing the same file changes nothing (orders are
    counted `unchanged`). `now` (aware) stamps created orders and customers.

    The file is streamed; orders are handled in file order, in chunks of
    `IMPORT_CHUNK` whose stored orders and lines are read with two queries, so
    an order that is already stored exactly as exported costs no query of its
    own (it is not locked either: nothing is written to it).

    Raises `ExportFileError` when the file cannot be opened or is not an
    orders export (no header, required columns missing): nothing is imported.
    A line that is not UTF-8 further down stops the import there
    (`ImportResult.stopped_at`); orders before it stay imported.
    """
    result = ImportResult()
    chunk: list[ParsedOrder] = []
    with open_export(stream_or_path) as lines:
        orders = read_orders(lines)
        while True:
            try:
                parsed = next(orders)
            except StopIteration:
                break
            except ExportFileError as exc:
                if exc.in_header:
                    raise
                _import_chunk(tenant=tenant, chunk=chunk, now=now, result=result)
                chunk = []
                result.stopped_at = RowIssue(
                    exc.line or 0, "", f"{exc.message}; this line and the rest were not imported"
                )
                result.failed += 1
                break
            chunk.append(parsed)
            if len(chunk) >= IMPORT_CHUNK:
                _import_chunk(tenant=tenant, chunk=chunk, now=now, result=result)
                chunk = []
    _import_chunk(tenant=tenant, chunk=chunk, now=now, result=result)
    return result


def _import_chunk(
    *, tenant: Tenant, chunk: list[ParsedOrder], now: datetime, result: ImportResult
) -> None:
    """Import `chunk` in order; orders stored exactly as exported are only counted."""
    plans: dict[int, _OrderPlan] = {}
    for index, parsed in enumerate(chunk):
        if parsed.data is not None:
            try:
                plans[index] = _order_plan(parsed.data, now=now)
            except OrderDataError:
                continue  # order_upsert raises it again and it is reported there
    stored = _orders_prefetch(tenant=tenant, plans=list(plans.values()))
    touched: set[int] = set()
    for index, parsed in enumerate(chunk):
        plan = plans.get(index)
        if plan is not None:
            order = stored.resolve(plan)
            if (
                order is not None
                and order.pk not in touched
                and _order_unchanged(plan, order, stored.lines.get(order.pk, []))
            ):
                result.warnings.extend(parsed.warnings)
                result.unchanged += 1
                continue
        written = _import_one(tenant=tenant, parsed=parsed, now=now, result=result)
        if written is not None:
            touched.add(written)


@dataclass
class _StoredOrders:
    """Stored orders that the plans of a chunk may update, with their lines."""

    by_number: dict[str, Order]
    by_shopify_id: dict[str, Order]
    lines: dict[int, list[OrderLine]]

    def resolve(self, plan: _OrderPlan) -> Order | None:
        candidates = [
            o
            for o in (
                self.by_number.get(plan.number_key),
                self.by_shopify_id.get(plan.data.shopify_id) if plan.data.shopify_id else None,
            )
            if o is not None
        ]
        try:
            return _order_resolve(plan, candidates)
        except OrderDataError:
            return None


def _orders_prefetch(*, tenant: Tenant, plans: list[_OrderPlan]) -> _StoredOrders:
    """The tenant's orders matching any of `plans` (with customers), and their lines."""
    if not plans:
        return _StoredOrders({}, {}, {})
    match = Q(tenant=tenant, number_key__in={plan.number_key for plan in plans})
    shopify_ids = {plan.data.shopify_id for plan in plans if plan.data.shopify_id}
    if shopify_ids:
        match |= Q(tenant=tenant, shopify_id__in=shopify_ids)
    orders = list(Order.objects.filter(match).select_related("customer"))
    lines: dict[int, list[OrderLine]] = {}
    for line in OrderLine.objects.filter(tenant=tenant, order__in=[o.pk for o in orders]).order_by(
        "order_id", "position"
    ):
        lines.setdefault(line.order_id, []).append(line)
    return _StoredOrders(
        by_number={o.number_key: o for o in orders},
        by_shopify_id={o.shopify_id: o for o in orders if o.shopify_id},
        lines=lines,
    )


def _import_one(
    *, tenant: Tenant, parsed: ParsedOrder, now: datetime, result: ImportResult
) -> int | None:
    """Write one parsed order through `order_upsert` and count it; returns the pk of
    the order written, or None."""
    result.warnings.extend(parsed.warnings)
    if parsed.data is None:
        result.failed += 1
        result.errors.extend(parsed.errors)
        return None
    try:
        outcome = order_upsert(
            tenant=tenant, data=parsed.data, now=now, source=OrderSource.SHOPIFY_CSV
        )
    except OrderDataError as exc:
        result.failed += 1
        result.errors.append(RowIssue(exc.line or parsed.first_line, parsed.number, exc.message))
        return None
    except (IntegrityError, DataError) as exc:
        result.failed += 1
        result.errors.append(
            RowIssue(parsed.first_line, parsed.number, f"the database refused the order: {exc}")
        )
        return None
    for notice in outcome.notices:
        result.warnings.append(
            RowIssue(notice.line or parsed.first_line, parsed.number, notice.message)
        )
    if outcome.created:
        result.created += 1
    elif outcome.changed:
        result.updated += 1
    else:
        result.unchanged += 1
        return outcome.order.pk
    result.lines += len(parsed.data.lines)
    return outcome.order.pk


# --------------------------------------------------------------------------
# Orders from the API (the CSV importer has its own service)
# --------------------------------------------------------------------------
#: Order fields the API writes (the Shopify export's columns, DESIGN.md section 4).
ORDER_API_FIELDS = (
    "number",
    "email",
    "currency",
    "placed_at",
    "paid_at",
    "fulfilled_at",
    "delivered_at",
    "cancelled_at",
    "financial_status",
    "fulfillment_status",
    "is_voided",
    "taxes_included",
    "subtotal",
    "shipping",
    "taxes",
    "discount_amount",
    "discount_code",
    "total",
    "refunded_amount",
    "outstanding_balance",
    "risk_level",
    "tags",
    "shipping_method",
    "shipping_name",
    "shipping_address1",
    "shipping_address2",
    "shipping_city",
    "shipping_zip",
    "shipping_province",
    "shipping_country",
    "shipping_phone",
    "payment_method",
    "payment_reference",
    "note",
)
ORDER_MONEY_FIELDS = (
    "subtotal",
    "shipping",
    "taxes",
    "discount_amount",
    "total",
    "refunded_amount",
    "outstanding_balance",
)
LINE_API_FIELDS = (
    "sku",
    "title",
    "vendor",
    "quantity",
    "unit_price",
    "compare_at_price",
    "discount",
    "requires_shipping",
    "taxable",
    "is_gift_card",
    "fulfillment_status",
    "fulfilled_quantity",
    "refunded_quantity",
    "tags",
)
#: Order times the API writes; each must be within `order_time_in_range`.
ORDER_API_TIME_FIELDS = ("placed_at", "paid_at", "fulfilled_at", "delivered_at", "cancelled_at")
#: What may not change on a line that already has returns (DESIGN.md section 4).
LINE_FROZEN_WITH_RETURNS = ("sku", "unit_price", "discount")


@transaction.atomic
def order_upsert_from_api(
    *,
    tenant: Tenant,
    number: str,
    fields: dict[str, Any],
    lines: list[dict[str, Any]],
    now: datetime,
) -> tuple[Order, bool]:
    """Create or replace the tenant's order `number` from `PUT /api/v1/orders/<number>/`.

    `fields` holds `ORDER_API_FIELDS` (money as `Decimal`, times aware), `lines`
    each `LINE_API_FIELDS` plus an optional `line_id`. Upsert key: the
    normalized number. Lines match by `line_id`, else by position; lines
    left out are deleted. Money is quantized to the currency's exponent.
    `is_cancelled` follows `cancelled_at`; a line without `fulfilled_quantity`
    counts as fully fulfilled when its `fulfillment_status` is `fulfilled`.
    A line that has returns keeps its SKU, price and discount, keeps at least
    its returned units and is never deleted: otherwise `ReturnRefused`
    (`line_has_returns`), writing nothing. Returns `(order, created)`.
    Kept thin on purpose: the CSV importer owns the Shopify export rules.
    """
    key = Order.normalize_number(number)
    if not key:
        raise ReturnRefused([Refusal("number", "required", _("Give the order number."))])
    longest = cast(int, Order._meta.get_field("number").max_length)
    if len(number.strip()) > longest:
        raise ReturnRefused(
            [
                Refusal(
                    "number",
                    "too_long",
                    _("The order number may have at most %(n)d characters.") % {"n": longest},
                )
            ]
        )
    order = Order.objects.select_for_update().filter(tenant=tenant, number_key=key).first()
    created = order is None
    if order is None:
        order = Order(tenant=tenant, number=number.strip(), source=OrderSource.API, imported_at=now)
    currency = (fields.get("currency") or order.currency or tenant.currency).upper()
    if currency not in KNOWN_CURRENCIES:
        raise ReturnRefused(
            [Refusal("currency", "unknown_currency", _("Unknown ISO 4217 currency code."))]
        )
    if not created and currency != order.currency and _has_returns(order):
        # Refunds are in the order's currency and never summed across currencies.
        raise ReturnRefused(
            [
                Refusal(
                    "currency",
                    "order_has_returns",
                    _("The currency of an order with returns cannot change."),
                )
            ]
        )
    for name in ORDER_API_TIME_FIELDS:
        value = fields.get(name)
        if value is not None and not order_time_in_range(value, now=now):
            raise ReturnRefused(
                [
                    Refusal(
                        name,
                        "out_of_range",
                        _("Give a time between 1970 and one year from now."),
                    )
                ]
            )
    for name in ORDER_API_FIELDS:
        if name not in fields or (name == "number" and not fields[name]):
            continue
        value = fields[name]
        if name in ORDER_MONEY_FIELDS and value is not None:
            value = quantize(value, currency)
        setattr(order, name, value)
    order.currency = currency
    order.number = order.number if Order.normalize_number(order.number) == key else number.strip()
    order.is_cancelled = order.cancelled_at is not None
    if order.email:
        order.email = order.email.strip()
        customer, _created = Customer.objects.get_or_create(
            tenant=tenant, email_normalized=Customer.normalize_email(order.email)
        )
        order.customer = customer
    order.save()

    existing = list(OrderLine.objects.select_for_update().filter(tenant=tenant, order=order))
    by_id = {ol.line_id: ol for ol in existing}
    by_position = {ol.position: ol for ol in existing}
    in_returns = dict(
        ReturnLine.objects.filter(tenant=tenant, order_line__order=order)
        .values("order_line_id")
        .annotate(units=Sum("quantity"))
        .values_list("order_line_id", "units")
    )
    refusals: list[Refusal] = []
    plan: list[tuple[OrderLine, dict[str, Any]]] = []
    for i, data in enumerate(lines):
        if data.get("line_id"):
            line = by_id.get(data["line_id"])
            if line is None:
                refusals.append(
                    Refusal(f"lines.{i}.line_id", "unknown_line", _("Unknown line_id."), i)
                )
                continue
        else:
            line = by_position.get(i + 1) or OrderLine(tenant=tenant, order=order)
        returned = in_returns.get(line.pk, 0) if line.pk else 0
        if returned:
            for name in LINE_FROZEN_WITH_RETURNS:
                if name in data and data[name] is not None:
                    new = data[name]
                    old = getattr(line, name)
                    if name != "sku":
                        new = quantize(new, currency)
                    if new != old:
                        refusals.append(
                            Refusal(
                                f"lines.{i}.{name}",
                                "line_has_returns",
                                _("This line has returns; its %(field)s can't change.")
                                % {"field": name},
                                i,
                            )
                        )
            if "quantity" in data and data["quantity"] < returned:
                refusals.append(
                    Refusal(
                        f"lines.{i}.quantity",
                        "line_has_returns",
                        _("This line has %(n)d returned units.") % {"n": returned},
                        i,
                    )
                )
        plan.append((line, data))
    kept = {line.pk for line, _data in plan if line.pk}
    for ol in existing:
        if ol.pk not in kept and in_returns.get(ol.pk):
            refusals.append(
                Refusal(
                    "lines",
                    "line_has_returns",
                    _("Line %(id)s has returns and can't be removed.") % {"id": ol.line_id},
                )
            )
    if refusals:
        raise ReturnRefused(refusals)
    OrderLine.objects.filter(tenant=tenant, order=order).exclude(pk__in=kept).delete()
    # Move kept lines out of the way of the (order, position) constraint first.
    for line in existing:
        if line.pk in kept:
            OrderLine.objects.filter(pk=line.pk).update(position=line.position + 100000)
    for position, (line, data) in enumerate(plan, start=1):
        for name in LINE_API_FIELDS:
            if name not in data or (data[name] is None and name != "compare_at_price"):
                continue
            value = data[name]
            if name in ("unit_price", "compare_at_price", "discount") and value is not None:
                value = quantize(value, currency)
            setattr(line, name, value)
        if data.get("fulfilled_quantity") is None and line.pk is None:
            line.fulfilled_quantity = (
                line.quantity if (line.fulfillment_status or "").lower() == "fulfilled" else 0
            )
        line.fulfilled_quantity = min(line.fulfilled_quantity, line.quantity)
        line.position = position
        line.tenant = tenant
        line.order = order
        line.save()
    _order_totals_derive(order=order, given=fields, currency=currency)
    order.refresh_from_db()
    return order, created


def _order_totals_derive(*, order: Order, given: dict[str, Any], currency: str) -> None:
    """Fill the totals an API client left out, from the lines (Shopify's definitions:
    subtotal = line prices after line discounts; total = subtotal + shipping +
    duties + taxes unless prices include taxes). A total left at 0.00 would cap
    every refund of the order at 0.00 (DESIGN.md section 7)."""
    derived: dict[str, Decimal] = {}
    if given.get("subtotal") is None:
        lines = OrderLine.objects.filter(tenant_id=order.tenant_id, order=order)
        derived["subtotal"] = quantize(
            sum((ol.unit_price * ol.quantity - ol.discount for ol in lines), Decimal(0)), currency
        )
    if given.get("total") is None:
        subtotal = derived.get("subtotal", order.subtotal)
        taxes = Decimal(0) if order.taxes_included else order.taxes
        derived["total"] = quantize(subtotal + order.shipping + order.duties + taxes, currency)
    if derived:
        Order.objects.filter(pk=order.pk, tenant_id=order.tenant_id).update(**derived)
