"""Reads of the finance desk that the reports module does not cover: vouchers, invoices,
periods and one contract's finance figures, each through the caller's data scope."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import F, QuerySet

from weiying.core.money import fen_sum, from_fen
from weiying.core.permissions import require
from weiying.core.scope import data_scope_of, scoped
from weiying.finance.models import Invoice, InvoiceStatus, Movement, Period, Voucher
from weiying.org.choices import DataScope
from weiying.pipeline.models import Contract


def vouchers_for(user: Any, *, year: int | None = None, month: int | None = None,
                 source: str = "") -> QuerySet[Voucher]:
    """The journal. A company-wide reader sees every voucher; a manager sees the vouchers of
    the contracts in their scope (the month's close and manual vouchers span the company)."""
    require(user, "finance.view")
    qs = Voucher.objects.all()
    if data_scope_of(user) != DataScope.ALL:
        qs = qs.filter(contract__in=scoped(Contract.objects.all(), user))
    if year:
        qs = qs.filter(year=year)
    if month:
        qs = qs.filter(month=month)
    if source:
        qs = qs.filter(source=source)
    return qs


def voucher_sources() -> list[str]:
    return sorted(set(Voucher.objects.values_list("source", flat=True).distinct()))


def invoices_for(user: Any, *, status: str = "", contract: Any = None) -> QuerySet[Invoice]:
    require(user, "finance.view")
    qs = scoped(Invoice.objects.select_related("contract", "contract__customer"), user)
    if status:
        qs = qs.filter(status=status)
    if contract is not None:
        qs = qs.filter(contract=contract)
    return qs


def periods(today: dt.date) -> list[Period]:
    """Every period known, plus the current month (so the page always has a row)."""
    Period.objects.get_or_create(year=today.year, month=today.month)
    return list(Period.objects.select_related("closed_by").order_by("-year", "-month"))


def next_to_close(today: dt.date) -> Period | None:
    """The earliest open period that has ended: the one the close button closes."""
    for p in Period.objects.filter(status="open").order_by("year", "month"):
        if (p.year, p.month) < (today.year, today.month):
            return p
        break
    return None


def contract_figures(contract: Contract) -> dict[str, Decimal]:
    """Invoiced, recognised, collected and contract liability (VAT included) of a contract."""
    row = Movement.objects.filter(contract=contract).aggregate(
        recognised=fen_sum(F("revenue") + F("output_vat")),
        liability=fen_sum(F("contract_liability") + F("pending_vat")),
        refund_owed=fen_sum("refund_payable"))
    invoiced = Invoice.objects.filter(contract=contract, status=InvoiceStatus.ISSUED).aggregate(
        s=fen_sum("gross"))["s"]
    return {"invoiced": from_fen(invoiced), "recognised": from_fen(row["recognised"]),
            "collected": contract.collected, "liability": from_fen(row["liability"]),
            "refund_owed": from_fen(row["refund_owed"])}
