"""Money rules (DESIGN.md section 7).

Amounts are `Decimal` in major units with their ISO 4217 currency; never summed
across currencies; rounded ROUND_HALF_UP at the currency's exponent (JPY 0,
USD 2, KWD 3). The exponent comes from CLDR through Babel, which agrees with
ISO 4217 for every currency we price in.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from babel.numbers import get_currency_precision, list_currencies

MONEY_FIELD_KWARGS = {"max_digits": 18, "decimal_places": 3}
#: The largest amount a money column (`Decimal(18, 3)`) holds.
MONEY_MAX = Decimal("999999999999999.999")


class MoneyError(ValueError):
    """An amount could not be read, or currencies were mixed.

    `code` says which rule failed (`invalid`, `unknown_currency`, `not_finite`,
    `negative`, `too_large`, `too_precise`, `not_a_map`) so a form can word it;
    `currency` and `amount` are the offending entry when there is one.
    """

    def __init__(
        self, message: str, *, code: str = "invalid", currency: str = "", amount: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.currency = currency
        self.amount = amount


@functools.cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: Any) -> bool:
    """True for an ISO 4217 code CLDR (Babel) knows, in any case: `usd`, `JPY`; not `XYZ`."""
    return isinstance(code, str) and code.upper() in _known_currencies()


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits for `currency` (ISO 4217), e.g. 2 for USD, 0 for JPY, 3 for KWD."""
    return int(get_currency_precision(currency.upper()))


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """`amount` rounded half-up to `currency`'s exponent."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation as exc:
        raise MoneyError(f"Not an amount: {amount!r}") from exc
    exponent = currency_exponent(currency)
    return value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal | int | str, currency: str) -> str:
    """The API string form: exactly the currency's number of decimals (`31.00`, `9899`, `1.500`)."""
    value = quantize(amount, currency)
    exponent = currency_exponent(currency)
    return f"{value:.{exponent}f}"


def amount_check(value: Any, currency: str) -> Decimal:
    """A configured amount (a threshold, a fee) read exactly, without rounding.

    Refuses (`MoneyError` with its `code`) an unknown currency, anything that
    is not a finite number, a negative amount, more decimals than the
    currency's exponent (`10.5` JPY) and more than a money column holds.
    `bool` and containers are not numbers, whatever `str()` makes of them.
    """
    cur = str(currency).upper()
    if not is_currency(cur):
        raise MoneyError(
            f"{currency!r} is not an ISO 4217 currency", code="unknown_currency", currency=cur
        )
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise InvalidOperation
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"{cur} {value!r} is not an amount", currency=cur, amount=value) from exc
    if not amount.is_finite():
        raise MoneyError(
            f"{cur} {value!r} is not a finite amount", code="not_finite", currency=cur, amount=value
        )
    if amount < 0:
        raise MoneyError(
            f"{cur} {value!r} is negative", code="negative", currency=cur, amount=value
        )
    if amount > MONEY_MAX:
        raise MoneyError(
            f"{cur} {value!r} is too large", code="too_large", currency=cur, amount=value
        )
    if amount != quantize(amount, cur):
        raise MoneyError(
            f"{cur} {value!r} has more than {currency_exponent(cur)} decimals",
            code="too_precise",
            currency=cur,
            amount=value,
        )
    return amount


def money_map_read(raw: Any) -> dict[str, Decimal]:
    """A per-currency map as configured (`{"USD": "5.00", "jpy": 700}`) with upper-cased
    ISO 4217 keys and exact amounts (`amount_check`). Empty or None is `{}`.

    Raises `MoneyError` for a map that is not an object, an unknown currency
    or a bad amount (the first problem found, in key order).
    """
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, Mapping):
        raise MoneyError(f"{raw!r} is not a per-currency map", code="not_a_map")
    return {str(cur).upper(): amount_check(amount, str(cur)) for cur, amount in raw.items()}


def parse_amount(text: str, currency: str) -> Decimal:
    """Read an amount as written in an export (`"1,234.50"`, `" 12 "`, `""` -> 0), quantized.

    Raises `MoneyError` for anything that is not a number.
    """
    cleaned = (text or "").strip().replace(",", "")
    if cleaned == "":
        return quantize(Decimal(0), currency)
    return quantize(cleaned, currency)
