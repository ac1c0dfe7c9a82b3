"""Money: Decimal only, CNY, rounded half-up to the fen in this one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FEN = Decimal("0.01")
MONEY_FIELD = {"max_digits": 18, "decimal_places": 2}
RATE_FIELD = {"max_digits": 7, "decimal_places": 4}
QUANTITY_FIELD = {"max_digits": 14, "decimal_places": 3}
CURRENCY = "CNY"
ZERO = Decimal("0.00")


def to_decimal(value: Any) -> Decimal:
    """Turn user input into a Decimal; floats are refused so no binary fraction sneaks in."""
    if isinstance(value, float):
        raise TypeError("money must not be a float; pass a str or Decimal")
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value).strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


def money(value: Any) -> Decimal:
    """Round half-up to the fen."""
    return to_decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def split_vat(gross: Any, rate: Any) -> tuple[Decimal, Decimal]:
    """Split a VAT-inclusive amount: net = gross / (1 + rate) rounded; VAT = gross - net."""
    gross = money(gross)
    net = money(gross / (Decimal(1) + to_decimal(rate)))
    return net, gross - net


def allocate(total: Any, weights: list[Decimal]) -> list[Decimal]:
    """Split total in proportion to weights; each part rounded, the last takes the remainder."""
    total = money(total)
    weight_sum = sum(weights, Decimal(0))
    if not weights:
        return []
    if weight_sum == 0:
        raise ValueError("cannot allocate over weights that sum to zero")
    parts = [money(total * w / weight_sum) for w in weights[:-1]]
    parts.append(total - sum(parts, Decimal(0)))
    return parts


def format_cny(value: Decimal | None) -> str:
    if value is None:
        return "—"
    amount = money(value)
    return f"-¥{-amount:,.2f}" if amount < 0 else f"¥{amount:,.2f}"


def fen_sum(column: Any, **extra: Any) -> Any:
    """A SQL sum of a money column that is exact on every backend: SQLite keeps decimals as
    floating point, so the sum runs over whole fen (integers, exact up to 2**53) and
    `from_fen` turns the result back into yuan. `extra` takes Sum's `filter=`."""
    from django.db.models import BigIntegerField, F, Sum, Value
    from django.db.models.functions import Coalesce, Round

    expression = F(column) if isinstance(column, str) else column
    return Coalesce(Sum(Round(expression * Value(100)), output_field=BigIntegerField(), **extra),
                    Value(0), output_field=BigIntegerField())


def from_fen(value: Any) -> Decimal:
    return (Decimal(int(value or 0)) / 100).quantize(FEN)
