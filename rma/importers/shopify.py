"""Reader for Shopify's orders export (Admin > Orders > Export, "CSV for Excel,
Numbers, or other spreadsheet programs").

Shape of the file (Shopify's export as the merchant downloads it; column names
are those of `COLUMNS`, matched exactly after trimming spaces):

- UTF-8, with or without a byte-order mark. Anything else is refused with the
  physical line that is not UTF-8 (`ExportFileError`).
- RFC 4180 quoting: fields may hold commas, doubled quotes and line breaks, so
  one record can span several physical lines. Every position reported here is
  the PHYSICAL line (1-based, the header is line 1) where the record starts.
- One record per line item. An order's first record carries the order
  fields; later records of the same `Name` repeat `Name` and `Email` only (or
  less) and carry their own `Lineitem ...` fields. Records of one order are
  consecutive; a `Name` that comes back later is an error.
- Times look like `2026-10-01 09:14:58 -0400` (ISO 8601 with `T` and an offset
  is accepted too) and become aware UTC datetimes; a time without an offset is
  an error (its zone is unknown).
- Amounts are dot-decimal major units (`1234.50`, `13200`, `1.500`),
  quantized half-up at the currency's ISO 4217 exponent (JPY 0, KWD 3).
- `Lineitem discount` is the whole line's discount; `Refunded Amount` is the
  order's refunded total; `Tags` is a comma-separated list; `Risk Level` is
  `Low`/`Medium`/`High`.

The export has no "taxes included" column; `rma.orders.infer_taxes_included`
derives it from `Subtotal`, `Shipping`, `Taxes`, `Duties` and `Total` (rule and
sources there). Gift cards are recognised by `rma.orders.is_gift_card_line`.

`read_orders` yields one `ParsedOrder` per order, in file order, streaming (the
file is never held in memory). A bad record (unparseable date, bad amount or
quantity, missing `Name`, unknown currency, a record the CSV grammar cannot
read, ...) fails its order only: the order comes back with `errors` and no
`data`, and reading goes on. Problems that do not stop an order (an unknown
risk level, totals that fit neither tax equation, an invalid-looking e-mail)
come back as `warnings`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from rma.money import MONEY_FIELD_KWARGS, quantize
from rma.orders import (
    FINANCIAL_STATUSES,
    KNOWN_CURRENCIES,
    RISK_LEVELS,
    OrderData,
    OrderLineData,
    TaxLineData,
    fulfilled_quantity_for,
    infer_taxes_included,
    is_gift_card_line,
)

#: Every column of Shopify's orders export, in Shopify's order.
COLUMNS: tuple[str, ...] = (
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Tax 2 Name",
    "Tax 2 Value",
    "Tax 3 Name",
    "Tax 3 Value",
    "Tax 4 Name",
    "Tax 4 Value",
    "Tax 5 Name",
    "Tax 5 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
)

#: Without these a file is not an orders export (refused as a whole).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "Name",
    "Currency",
    "Created at",
    "Total",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
)

#: Order-level columns kept verbatim in `OrderData.extra` (not modelled fields).
EXTRA_ORDER_COLUMNS: tuple[str, ...] = (
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Billing Province Name",
    "Shipping Street",
    "Shipping Province Name",
    "Employee",
    "Location",
    "Device ID",
    "Receipt Number",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
)

#: A first record must carry these (the order fields).
ORDER_FIELD_COLUMNS: tuple[str, ...] = ("Currency", "Created at", "Total")

_TAX_COLUMN = re.compile(r"^Tax (\d+) (Name|Value)$")
_AMOUNT = re.compile(r"^-?(?:\d+|\d{1,3}(?:,\d{3})+)(?:\.\d+)?$|^-?\.\d+$")
#: The money columns are Decimal(18, 3) (`rma.money.MONEY_FIELD_KWARGS`): 15 digits
#: before the point. Quantities follow the API's bound (`OrderLineIn.quantity`).
MAX_AMOUNT = Decimal(10) ** (
    MONEY_FIELD_KWARGS["max_digits"] - MONEY_FIELD_KWARGS["decimal_places"]
)
MAX_QUANTITY = 1_000_000
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})


class ExportFileError(Exception):
    """The file as a whole cannot be read as a Shopify orders export (cannot be
    opened, not UTF-8, no header, required columns missing, repeated column).

    `line` is the physical line concerned, when there is one; `in_header` is
    True when nothing after the header was read (so nothing was imported)."""

    def __init__(self, message: str, *, line: int | None = None, in_header: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.in_header = in_header

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class RowIssue:
    """A problem with one record: its physical start `line`, the order's `Name`
    as written (empty when unknown) and a human-readable `message`."""

    line: int
    order_number: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.order_number:
            where += f" (order {self.order_number})"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ParsedOrder:
    """One order of the export. `data` is None exactly when `errors` is not empty.

    `first_line` is the physical line of the order's first record;
    `last_line` the line where its last record starts."""

    number: str
    first_line: int
    last_line: int
    data: OrderData | None
    errors: tuple[RowIssue, ...] = ()
    warnings: tuple[RowIssue, ...] = ()


# --------------------------------------------------------------------------
# Opening: physical lines, decoded one by one so a bad byte has a line number
# --------------------------------------------------------------------------
def _decoded_lines(binary: IO[bytes]) -> Iterator[str]:
    for number, raw in enumerate(binary, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ExportFileError(
                f"not UTF-8 text (byte {exc.start + 1} of the line); export the file as UTF-8",
                line=number,
                in_header=False,
            ) from exc
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def _text_lines(text: IO[str]) -> Iterator[str]:
    for number, line in enumerate(text, start=1):
        yield line.removeprefix("\ufeff") if number == 1 else line


@contextmanager
def open_export(stream_or_path: str | Path | IO[bytes] | IO[str]) -> Iterator[Iterator[str]]:
    """The export's physical lines as text, BOM removed.

    Accepts a path, a binary stream (decoded as UTF-8 line by line) or a text
    stream. A path is opened and closed here; a stream is left open. Raises
    `ExportFileError` when the path cannot be opened, and (while iterating)
    for a line that is not UTF-8.
    """
    if isinstance(stream_or_path, str | Path):
        path = Path(stream_or_path)
        try:
            handle = path.open("rb")
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise ExportFileError(f"cannot open {path}: {reason}") from exc
        with handle:
            yield _decoded_lines(handle)
        return
    probe = stream_or_path.read(0)
    if isinstance(probe, bytes):
        yield _decoded_lines(stream_or_path)  # type: ignore[arg-type]
    else:
        yield _text_lines(stream_or_path)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Field parsers: each returns a value or raises _FieldError(message)
# --------------------------------------------------------------------------
class _FieldError(ValueError):
    pass


def parse_time(text: str, column: str) -> datetime | None:
    """`2026-10-01 09:14:58 -0400` (or ISO 8601 with an offset) -> aware UTC; blank -> None."""
    value = text.strip()
    if not value:
        return None
    parsed: datetime | None = None
    for fmt in ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z"):
        try:
            parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - every format has %z
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _FieldError(f"unparseable date in {column}: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise _FieldError(f"date without a UTC offset in {column}: {value!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01 +1400, 9999-12-31 -1400: no UTC instant exists
        raise _FieldError(f"date out of range in {column}: {value!r}") from None


def parse_amount(text: str, column: str, currency: str, *, required: bool = False) -> Decimal:
    """A dot-decimal amount, quantized half-up at `currency`'s exponent; blank -> 0
    (or an error when `required`). Thousands commas (`1,234.50`) are accepted only
    in groups of three; negative amounts are refused."""
    value = text.strip()
    if not value:
        if required:
            raise _FieldError(f"missing {column}")
        return quantize(Decimal(0), currency)
    if not _AMOUNT.match(value):
        raise _FieldError(f"bad amount in {column}: {value!r}")
    try:
        amount = Decimal(value.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern already refuses these
        raise _FieldError(f"bad amount in {column}: {value!r}") from None
    if amount < 0:
        raise _FieldError(f"negative amount in {column}: {value!r}")
    if amount >= MAX_AMOUNT:
        raise _FieldError(f"amount too large in {column}: {value!r}")
    return quantize(amount, currency)


def parse_quantity(text: str, column: str) -> int:
    """A whole number of units >= 0 (`2`, or `2.0` as spreadsheets write it)."""
    value = text.strip()
    if not value:
        raise _FieldError(f"missing {column}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _FieldError(f"bad quantity in {column}: {value!r}") from None
    if not number.is_finite() or number != number.to_integral_value() or number < 0:
        raise _FieldError(f"bad quantity in {column}: {value!r}")
    if number > MAX_QUANTITY:
        raise _FieldError(f"quantity too large in {column}: {value!r}")
    return int(number)


def parse_bool(text: str, column: str, *, default: bool | None) -> bool | None:
    """`true`/`false`, `yes`/`no`, `1`/`0` (any case); blank -> `default`."""
    value = text.strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _FieldError(f"bad yes/no value in {column}: {text.strip()!r}")


def parse_currency(text: str) -> str:
    """An ISO 4217 code known to CLDR (Babel), upper-cased."""
    value = text.strip().upper()
    if not value:
        raise _FieldError("missing Currency")
    if value not in KNOWN_CURRENCIES:
        raise _FieldError(f"unknown currency {text.strip()!r}")
    return value


def parse_tags(text: str) -> tuple[str, ...]:
    """Shopify's comma-separated `Tags` -> tags in order, trimmed, empties and repeats dropped."""
    tags: list[str] = []
    for tag in text.split(","):
        tag = tag.strip()
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


# --------------------------------------------------------------------------
# Records and orders
# --------------------------------------------------------------------------
@dataclass
class _Group:
    """The records of one order while they are being read."""

    name: str
    shopify_id: str
    records: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    errors: list[RowIssue] = field(default_factory=list)

    @property
    def first_line(self) -> int:
        return self.records[0][0] if self.records else 0


def _has_order_fields(record: dict[str, str]) -> bool:
    return any(record.get(column, "").strip() for column in ORDER_FIELD_COLUMNS)


def _check_header(header: list[str], line: int) -> list[str]:
    names = [name.strip() for name in header]
    if not any(names):
        raise ExportFileError("the file is empty (no header row)", line=line)
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise ExportFileError(f"column {name!r} appears twice in the header", line=line)
        seen.add(name)
    missing = [column for column in REQUIRED_COLUMNS if column not in seen]
    if missing:
        raise ExportFileError(
            "not a Shopify orders export: missing column(s) " + ", ".join(missing), line=line
        )
    return names


def _records(
    lines: Iterable[str],
) -> Iterator[tuple[int, list[str] | None, str]]:
    """(start line, fields or None, csv error message) per record, header included."""
    reader = csv.reader(lines, strict=True)
    previous_end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            start = previous_end + 1
            previous_end = reader.line_num
            yield start, None, str(exc)
            continue
        start = previous_end + 1
        previous_end = reader.line_num
        yield start, fields, ""


def read_orders(lines: Iterable[str]) -> Iterator[ParsedOrder]:
    """Parse an export's physical lines (see `open_export`) into orders, streaming.

    Yields `ParsedOrder`s in file order. Raises `ExportFileError` for a missing
    or unusable header (before anything is yielded) and for a line that is not
    UTF-8 (mid-way: the orders yielded before stay valid; the order being read
    when it happened is yielded as failed first, as the line may be one of its).
    """
    records = _records(lines)
    header: list[str] | None = None
    try:
        for start, fields, error in records:
            if error:
                raise ExportFileError(f"the header cannot be read as CSV: {error}", line=start)
            if fields:
                header = _check_header(fields, start)
                break
    except ExportFileError as exc:
        exc.in_header = True
        raise
    if header is None:
        raise ExportFileError("the file is empty (no header row)", line=1)
    grouper = _Grouper(header)
    try:
        for start, fields, error in records:
            yield from grouper.feed(start, fields, error)
    except ExportFileError as exc:
        yield from grouper.abort(exc)
        raise
    yield from grouper.close()


class _Grouper:
    """Gathers consecutive records into orders (see the module docstring)."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.width = len(header)
        self.name_index = header.index("Name")
        self.id_index = header.index("Id") if "Id" in header else None
        self.seen_numbers: set[str] = set()
        self.current: _Group | None = None

    def _finish(self) -> list[ParsedOrder]:
        group, self.current = self.current, None
        return [] if group is None else [_parse_group(group, self.header)]

    def close(self) -> list[ParsedOrder]:
        return self._finish()

    def abort(self, exc: ExportFileError) -> list[ParsedOrder]:
        if self.current is not None:
            self.current.errors.append(
                RowIssue(
                    exc.line or self.current.first_line,
                    self.current.name,
                    f"{exc.message}; the order is not imported because that line may "
                    "be one of its lines",
                )
            )
        return self._finish()

    def feed(self, start: int, fields: list[str] | None, error: str) -> list[ParsedOrder]:
        """Take one record; returns the orders it finished (zero or one, or two)."""
        current = self.current
        if error or fields is None:
            if current is not None:
                # The record may have been one of this order's lines: importing the
                # order without it would shift its lines' positions (DESIGN section 4).
                current.errors.append(
                    RowIssue(
                        start,
                        current.name,
                        f"unreadable CSV record ({error}); the order is not imported "
                        "because the record may be one of its lines",
                    )
                )
                return []
            issue = RowIssue(start, "", f"unreadable CSV record ({error})")
            return [ParsedOrder("", start, start, None, errors=(issue,))]
        if not any(value.strip() for value in fields):
            return []  # a blank line, or a spreadsheet's row of empty cells
        problems: list[str] = []
        if len(fields) != self.width:
            problems.append(f"expected {self.width} fields, found {len(fields)}")
        if any("\x00" in value for value in fields):
            problems.append("NUL character in the record")
        record = dict(zip(self.header, fields, strict=True)) if len(fields) == self.width else {}
        name = fields[self.name_index].strip() if len(fields) > self.name_index else ""
        shopify_id = ""
        if self.id_index is not None and len(fields) > self.id_index:
            shopify_id = fields[self.id_index].strip()
        finished: list[ParsedOrder] = []
        if not name:
            if current is not None and not _has_order_fields(record):
                current.records.append((start, record))
                for message in ["missing Name on a line item record", *problems]:
                    current.errors.append(RowIssue(start, current.name, message))
                return finished
            finished = self._finish()
            self.current = _Group(name="", shopify_id=shopify_id)
            self.current.records.append((start, record))
            for message in ["missing Name", *problems]:
                self.current.errors.append(RowIssue(start, "", message))
            return finished
        same_order = (
            current is not None
            and name == current.name
            and (not shopify_id or not current.shopify_id or shopify_id == current.shopify_id)
        )
        if not same_order:
            finished = self._finish()
            self.current = _Group(name=name, shopify_id=shopify_id)
            key = name.lstrip("#").strip().lower()
            if key in self.seen_numbers:
                self.current.errors.append(
                    RowIssue(
                        start,
                        name,
                        f"order {name} appears again (an order's records must be consecutive)",
                    )
                )
            self.seen_numbers.add(key)
        group = self.current
        assert group is not None
        group.records.append((start, record))
        if shopify_id and not group.shopify_id:
            group.shopify_id = shopify_id
        for message in problems:
            group.errors.append(RowIssue(start, name, message))
        return finished


def _parse_group(group: _Group, header: list[str]) -> ParsedOrder:
    """Turn one order's records into `OrderData`, or its errors."""
    errors = list(group.errors)
    warnings: list[RowIssue] = []
    name = group.name
    first_line = group.first_line
    last_line = group.records[-1][0] if group.records else first_line
    if not group.records or not group.records[0][1]:
        return ParsedOrder(name, first_line, last_line, None, tuple(errors))
    first = group.records[0][1]

    def err(line: int, message: str) -> None:
        errors.append(RowIssue(line, name, message))

    def warn(line: int, message: str) -> None:
        warnings.append(RowIssue(line, name, message))

    if not _has_order_fields(first) and name:
        err(
            first_line,
            "the order's first record has no order fields (Currency, Created at, Total)",
        )
        return ParsedOrder(name, first_line, last_line, None, tuple(errors))

    currency = ""
    try:
        currency = parse_currency(first["Currency"])
    except _FieldError as exc:
        err(first_line, str(exc))

    def time_of(column: str, *, required: bool = False) -> datetime | None:
        try:
            value = parse_time(first.get(column, ""), column)
        except _FieldError as exc:
            err(first_line, str(exc))
            return None
        if value is None and required:
            err(first_line, f"missing {column}")
        return value

    placed_at = time_of("Created at", required=True)
    paid_at = time_of("Paid at")
    fulfilled_at = time_of("Fulfilled at")
    cancelled_at = time_of("Cancelled at")

    def amount_of(record: dict[str, str], line: int, column: str, **kw: bool) -> Decimal:
        if not currency:
            return Decimal(0)
        try:
            return parse_amount(record.get(column, ""), column, currency, **kw)
        except _FieldError as exc:
            err(line, str(exc))
            return Decimal(0)

    subtotal = amount_of(first, first_line, "Subtotal")
    shipping = amount_of(first, first_line, "Shipping")
    taxes = amount_of(first, first_line, "Taxes")
    duties = amount_of(first, first_line, "Duties")
    total = amount_of(first, first_line, "Total", required=True)
    discount_amount = amount_of(first, first_line, "Discount Amount")
    refunded_amount = amount_of(first, first_line, "Refunded Amount")
    outstanding_balance = amount_of(first, first_line, "Outstanding Balance")

    tax_lines: list[TaxLineData] = []
    tax_numbers = sorted({int(m.group(1)) for column in header if (m := _TAX_COLUMN.match(column))})
    for number in tax_numbers:
        tax_name = first.get(f"Tax {number} Name", "").strip()
        raw_value = first.get(f"Tax {number} Value", "")
        if tax_name or raw_value.strip():
            tax_value = amount_of(first, first_line, f"Tax {number} Value")
            tax_lines.append(TaxLineData(name=tax_name, amount=tax_value))

    email = first.get("Email", "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            warn(first_line, f"e-mail {email!r} does not look valid; imported as given")

    financial_status = first.get("Financial Status", "").strip().lower()
    if financial_status and financial_status not in FINANCIAL_STATUSES:
        warn(first_line, f"unknown Financial Status {financial_status!r}; kept as given")

    raw_risk = first.get("Risk Level", "").strip()
    risk_level = RISK_LEVELS.get(raw_risk.lower(), "")
    if raw_risk and not risk_level:
        warn(first_line, f"unknown Risk Level {raw_risk!r}; stored as unknown")

    accepts_marketing: bool | None = None
    try:
        accepts_marketing = parse_bool(
            first.get("Accepts Marketing", ""), "Accepts Marketing", default=None
        )
    except _FieldError as exc:
        warn(first_line, f"{exc}; stored as unknown")

    lines: list[OrderLineData] = []
    for line_no, record in group.records:
        if not record:
            continue  # a record that could not be split into the header's columns
        try:
            quantity = parse_quantity(record.get("Lineitem quantity", ""), "Lineitem quantity")
        except _FieldError as exc:
            err(line_no, str(exc))
            quantity = 0
        unit_price = amount_of(record, line_no, "Lineitem price", required=True)
        compare_raw = record.get("Lineitem compare at price", "")
        compare_at = (
            amount_of(record, line_no, "Lineitem compare at price") if compare_raw.strip() else None
        )
        line_discount = amount_of(record, line_no, "Lineitem discount")
        try:
            requires_shipping = bool(
                parse_bool(
                    record.get("Lineitem requires shipping", ""),
                    "Lineitem requires shipping",
                    default=True,
                )
            )
            taxable = bool(
                parse_bool(record.get("Lineitem taxable", ""), "Lineitem taxable", default=True)
            )
        except _FieldError as exc:
            err(line_no, str(exc))
            requires_shipping = taxable = True
        if currency and quantity and line_discount > unit_price * quantity:
            err(
                line_no,
                f"Lineitem discount {line_discount} is more than the line's price "
                f"{quantize(unit_price * quantity, currency)}",
            )
        title = record.get("Lineitem name", "").strip()
        status = record.get("Lineitem fulfillment status", "").strip().lower()
        lines.append(
            OrderLineData(
                sku=record.get("Lineitem sku", "").strip(),
                title=title,
                quantity=quantity,
                unit_price=unit_price,
                discount=line_discount,
                compare_at_price=compare_at,
                requires_shipping=requires_shipping,
                taxable=taxable,
                is_gift_card=is_gift_card_line(title=title, requires_shipping=requires_shipping),
                vendor=record.get("Vendor", "").strip(),
                fulfillment_status=status,
                fulfilled_quantity=fulfilled_quantity_for(status, quantity),
                source_row=line_no,
            )
        )

    if errors or placed_at is None:
        return ParsedOrder(name, first_line, last_line, None, tuple(errors), tuple(warnings))

    inclusion = infer_taxes_included(
        subtotal=subtotal,
        shipping=shipping,
        taxes=taxes,
        duties=duties,
        total=total,
        currency=currency,
    )
    if not inclusion.consistent:
        warn(first_line, inclusion.detail)

    extra = {
        column: first[column].strip()
        for column in EXTRA_ORDER_COLUMNS
        if first.get(column, "").strip()
    }
    data = OrderData(
        number=name,
        shopify_id=group.shopify_id,
        currency=currency,
        placed_at=placed_at,
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        cancelled_at=cancelled_at,
        total=total,
        subtotal=subtotal,
        shipping=shipping,
        taxes=taxes,
        duties=duties,
        taxes_included=inclusion.taxes_included,
        discount_code=first.get("Discount Code", "").strip(),
        discount_amount=discount_amount,
        refunded_amount=refunded_amount,
        outstanding_balance=outstanding_balance,
        email=email,
        customer_name=(first.get("Billing Name", "") or first.get("Shipping Name", "")).strip(),
        phone=first.get("Phone", "").strip(),
        financial_status=financial_status,
        fulfillment_status=first.get("Fulfillment Status", "").strip().lower(),
        risk_level=risk_level,
        tags=parse_tags(first.get("Tags", "")),
        tax_lines=tuple(tax_lines),
        accepts_marketing=accepts_marketing,
        source_name=first.get("Source", "").strip(),
        shipping_method=first.get("Shipping Method", "").strip(),
        shipping_name=first.get("Shipping Name", "").strip(),
        shipping_company=first.get("Shipping Company", "").strip(),
        shipping_address1=first.get("Shipping Address1", "").strip(),
        shipping_address2=first.get("Shipping Address2", "").strip(),
        shipping_city=first.get("Shipping City", "").strip(),
        shipping_zip=first.get("Shipping Zip", "").strip(),
        shipping_province=first.get("Shipping Province", "").strip(),
        shipping_country=first.get("Shipping Country", "").strip().upper(),
        shipping_phone=first.get("Shipping Phone", "").strip(),
        payment_method=first.get("Payment Method", "").strip(),
        payment_reference=first.get("Payment Reference", "").strip(),
        note=first.get("Notes", ""),
        note_attributes=first.get("Note Attributes", ""),
        lines=tuple(lines),
        source_row=first_line,
        extra=extra,
    )
    return ParsedOrder(name, first_line, last_line, data, (), tuple(warnings))
