"""The arithmetic of revenue recognition, as pure functions of Decimals and dates.

The rules (shared/domain/finance.md): a split rounds each part half-up to the fen and gives
the last part the remainder; a sum of rounded parts is never rounded again. The VAT inside
any cumulative amount x of an obligation with price G and VAT V is `vat_of(x)`, so every
piece of the obligation (paid, recognised, refunded) splits into net and VAT consistently and
the pieces add up to V exactly when x reaches G.
"""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from weiying.core.money import FEN, ZERO, allocate, money


def vat_of(x: Decimal, gross: Decimal, vat: Decimal) -> Decimal:
    """The VAT inside the first `x` of an obligation priced `gross` with `vat` in it."""
    if x >= gross:
        return vat
    if x <= 0 or gross <= 0:
        return ZERO
    # The arguments are Decimals already: round directly (the close calls this millions of times).
    return (vat * x / gross).quantize(FEN, rounding=ROUND_HALF_UP)


def share_of(x: Decimal, gross: Decimal, whole: Decimal) -> Decimal:
    """`whole` (a cost, say) in proportion to the first `x` of `gross`; exact at the end."""
    return vat_of(x, gross, whole)


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def service_end(start: dt.date, months: int) -> dt.date:
    """The last day of a service of `months` months from `start`: 15 Jan + 12 → 14 Jan."""
    return add_months(start, months) - dt.timedelta(days=1)


def month_days(start: dt.date, end: dt.date) -> list[tuple[tuple[int, int], int]]:
    """((year, month), days of the service in that month) for every month from start to end."""
    out = []
    day = start
    while day <= end:
        last = dt.date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        stop = min(last, end)
        out.append(((day.year, day.month), (stop - day).days + 1))
        day = stop + dt.timedelta(days=1)
    return out


def service_parts(gross: Decimal, start: dt.date, end: dt.date) -> list[tuple[tuple[int, int], Decimal]]:
    """`gross` spread evenly by day over the service: one part per month, each rounded, the
    last taking the remainder."""
    months = month_days(start, end)
    parts = allocate(gross, [Decimal(days) for _ym, days in months])
    return [(ym, part) for (ym, _days), part in zip(months, parts, strict=True)]


def service_due_through(gross: Decimal, start: dt.date, end: dt.date, year: int, month: int) -> Decimal:
    """How much of the service should be recognised once (year, month) is closed."""
    if (year, month) >= (end.year, end.month):
        return money(gross)
    if (year, month) < (start.year, start.month):
        return ZERO
    total = ZERO
    for ym, part in service_parts(gross, start, end):
        if ym > (year, month):
            break
        total += part
    return total


def point_due(quantity_done: Decimal, quantity: Decimal, gross: Decimal) -> Decimal:
    """Of an obligation of `quantity` units priced `gross`, what `quantity_done` accepted
    units are worth; exactly the price once all are accepted."""
    if quantity_done >= quantity or quantity <= 0:
        return money(gross)
    if quantity_done <= 0:
        return ZERO
    return money(gross * quantity_done / quantity)


def recognition_amounts(*, gross: Decimal, vat: Decimal, cost: Decimal, r0: Decimal,
                        vat0: Decimal, cost0: Decimal, paid: Decimal,
                        r1: Decimal) -> dict[str, Decimal]:
    """What recognising an obligation from `r0` to `r1` (cumulative, VAT included) books, per
    balance column. `vat0` and `cost0` are the VAT and cost booked so far, which are exactly
    vat_of(r0) and share_of(r0) because the pieces telescope. What was paid ahead (`paid`
    beyond r0) is taken from the contract liability and its pending VAT; the rest becomes a
    receivable."""
    vat1 = vat_of(r1, gross, vat)
    piece_vat = vat1 - vat0
    out = {"revenue": (r1 - r0) - piece_vat, "output_vat": piece_vat}
    if paid > r0:
        upto = min(paid, r1)
        covered_vat = (vat1 if upto == r1 else vat_of(upto, gross, vat)) - vat0
        out["contract_liability"] = -((upto - r0) - covered_vat)
        out["pending_vat"] = -covered_vat
    owed = r1 - max(paid, r0)
    if owed > 0:
        out["receivable"] = owed
    out["cost"] = (cost - cost0) if gross == 0 else share_of(r1, gross, cost) - cost0
    return out
