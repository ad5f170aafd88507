"""Money rules (DESIGN.md section 7).

Amounts are `Decimal` in major units with their ISO 4217 currency; never summed
across currencies; rounded ROUND_HALF_UP at the currency's exponent (JPY 0,
USD 2, KWD 3). The exponent comes from CLDR through Babel, which agrees with
ISO 4217 for every currency we price in.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision

MONEY_FIELD_KWARGS = {"max_digits": 18, "decimal_places": 3}


class MoneyError(ValueError):
    """An amount could not be read, or currencies were mixed."""


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


def parse_amount(text: str, currency: str) -> Decimal:
    """Read an amount as written in an export (`"1,234.50"`, `" 12 "`, `""` -> 0), quantized.

    Raises `MoneyError` for anything that is not a number.
    """
    cleaned = (text or "").strip().replace(",", "")
    if cleaned == "":
        return quantize(Decimal(0), currency)
    return quantize(cleaned, currency)
