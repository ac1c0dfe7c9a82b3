"""Exports of the finance desk: every report to Excel (or CSV), and the vouchers as the sheet
Kingdee (金蝶) and Yonyou (用友) import, or a plain CSV of the same rows. Each export checks
the export permission and writes an audit row, as the list exports do."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from weiying.core.money import money
from weiying.finance.models import Entry, Voucher

# The voucher sheet's columns, as the ledgers' import templates name them.
VOUCHER_COLUMNS = ["日期", "凭证字", "凭证号", "摘要", "科目代码", "科目名称", "借方金额",
                   "贷方金额", "辅助核算"]


def _cell(value: Any, fmt: str) -> Any:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        value = money(value)
        return value if fmt == "xlsx" else str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value if isinstance(value, int | str) else str(value)


def table_response(request: HttpRequest, *, name: str, what: str, headers: list[Any],
                   rows: Iterable[list[Any]], fmt: str) -> HttpResponse:
    """An audited download of one table: .xlsx (amounts as numbers with two decimals) or
    UTF-8 CSV with a BOM, so Excel opens Chinese text right."""
    from weiying.web.exports import table_response as table

    return table(request, name=name, what=what, headers=headers, rows=rows, fmt=fmt,
                 cell=_cell)


def auxiliary(entry: Entry) -> str:
    """The auxiliary items (辅助核算) of an entry: 客户:…;部门:…;职员:…"""
    parts = []
    if entry.customer_id:
        parts.append(f"客户:{entry.customer.name}")
    if entry.department_id:
        parts.append(f"部门:{entry.department.name}")
    if entry.owner_id:
        parts.append(f"职员:{entry.owner.name}")
    return ";".join(parts)


def voucher_rows(vouchers: QuerySet[Voucher]) -> Iterator[list[Any]]:
    """One row per entry, vouchers in date and number order."""
    entries = (Entry.objects.filter(voucher__in=vouchers)
               .select_related("voucher", "account", "customer", "department", "owner")
               .order_by("voucher__year", "voucher__month", "voucher__seq", "line"))
    for e in entries.iterator(chunk_size=2000):
        v = e.voucher
        yield [v.on, v.word, v.seq, e.summary or v.summary, e.account.code, e.account.name,
               money(e.debit), money(e.credit), auxiliary(e)]


def vouchers_response(request: HttpRequest, vouchers: QuerySet[Voucher], *, fmt: str,
                      period: str = "") -> HttpResponse:
    name = f"vouchers-{period}" if period else "vouchers"
    return table_response(request, name=name, what="finance.voucher", headers=VOUCHER_COLUMNS,
                          rows=voucher_rows(vouchers), fmt=fmt)
