"""HTTP API of the finance layer, mounted at /api/finance: the bridge, revenue and margin and
receivables ageing as JSON (money as strings, exact to the fen), the vouchers with their
entries, and bank statement lines posted by a bank connector (idempotent by bank serial)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from weiying.catalog.models import Product
from weiying.core.errors import NotFound
from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.core.scope import visible_employees
from weiying.finance import bank, reports, selectors
from weiying.finance.exports import auxiliary
from weiying.org.selectors import visible_departments

router = Router(tags=["finance"])


def _m(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


class SliceIn(Schema):
    start: dt.date | None = Field(None, description="default: the first day of this month")
    end: dt.date | None = Field(None, description="default: today")
    department_id: int | None = Field(None, description="the department's whole subtree")
    owner_id: int | None = None
    product_id: int | None = None
    channel: str = ""


def _slice(request: HttpRequest, q: SliceIn, *, products: bool = True) -> reports.Slice:
    department = owner = product = None
    if q.department_id is not None:
        department = visible_departments(request.user).filter(pk=q.department_id).first()
        if department is None:
            raise NotFound(_("This department does not exist or is outside what you may see."))
    if q.owner_id is not None:
        owner = visible_employees(request.user).filter(pk=q.owner_id).first()
        if owner is None:
            raise NotFound(_("This employee does not exist or is outside what you may see."))
    if products and q.product_id is not None:
        product = Product.objects.filter(pk=q.product_id).first()
        if product is None:
            raise NotFound(_("There is no such product."))
    return reports.Slice(department=department, owner=owner, product=product,
                         channel=q.channel.strip())


def _range(q: SliceIn) -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return q.start or today.replace(day=1), q.end or today


class BridgeItemOut(Schema):
    label: str
    amount: str


class BridgeOut(Schema):
    start: dt.date
    end: dt.date
    cash: str
    revenue: str
    output_vat: str
    receivable_open: str
    receivable_close: str
    receivable_increase: str
    liability_open: str
    liability_close: str
    liability_increase: str
    refund_open: str
    refund_close: str
    refund_increase: str
    explained: str
    difference: str
    sales_cash: str | None
    timing: str | None
    items: list[BridgeItemOut]


@router.get("/bridge", response=BridgeOut)
def bridge(request: HttpRequest, q: Query[SliceIn]) -> dict[str, Any]:
    start, end = _range(q)
    b = reports.bridge(request.user, start, end, _slice(request, q))
    out: dict[str, Any] = {"start": b.start, "end": b.end}
    for name in ("cash", "revenue", "output_vat", "receivable_open", "receivable_close",
                 "receivable_increase", "liability_open", "liability_close",
                 "liability_increase", "refund_open", "refund_close", "refund_increase",
                 "explained", "difference", "sales_cash", "timing"):
        out[name] = _m(getattr(b, name))
    out["items"] = [{"label": str(label), "amount": _m(amount)} for label, amount in b.items()]
    return out


class RevenueIn(SliceIn):
    by: str = Field("department", description="department, owner, product, channel, "
                                                "contract or customer")


class RevenueRowOut(Schema):
    key: Any
    label: str
    revenue: str
    output_vat: str
    cost: str
    margin: str
    margin_rate: str | None


class RevenueOut(Schema):
    start: dt.date
    end: dt.date
    by: str
    rows: list[RevenueRowOut]


@router.get("/revenue", response=RevenueOut)
def revenue(request: HttpRequest, q: Query[RevenueIn]) -> dict[str, Any]:
    start, end = _range(q)
    rows = reports.revenue_by(request.user, start, end, q.by, _slice(request, q))
    return {"start": start, "end": end, "by": q.by, "rows": [
        {"key": r["key"], "label": str(r["label"]), "revenue": _m(r["revenue"]),
         "output_vat": _m(r["output_vat"]), "cost": _m(r["cost"]), "margin": _m(r["margin"]),
         "margin_rate": None if r["margin_rate"] is None else str(r["margin_rate"])}
        for r in rows]}


class AgeingIn(SliceIn):
    as_of: dt.date | None = Field(None, description="default: today")


class AgeingRowOut(Schema):
    contract_id: int
    contract_number: str
    customer_name: str
    owner_id: int | None
    buckets: dict[str, str]
    total: str


class AgeingOut(Schema):
    as_of: dt.date
    totals: dict[str, str]
    rows: list[AgeingRowOut]


@router.get("/ageing", response=AgeingOut)
def ageing(request: HttpRequest, q: Query[AgeingIn]) -> dict[str, Any]:
    as_of = q.as_of or timezone.localdate()
    rows = reports.receivables_ageing(request.user, as_of, _slice(request, q, products=False))
    totals = reports.ageing_totals(rows)
    return {"as_of": as_of, "totals": {k: _m(v) for k, v in totals.items()}, "rows": [
        {"contract_id": r["contract"].pk, "contract_number": r["contract"].number,
         "customer_name": r["customer"].name, "owner_id": r["contract"].owner_id,
         "buckets": {k: _m(v) for k, v in r["buckets"].items()}, "total": _m(r["total"])}
        for r in rows]}


class EntryOut(Schema):
    line: int
    account_code: str
    account_name: str
    summary: str
    debit: str
    credit: str
    auxiliary: str
    department_id: int | None
    owner_id: int | None
    customer_id: int | None
    contract_id: int | None


class VoucherOut(Schema):
    id: int
    number: str
    word: str
    seq: int
    on: dt.date
    summary: str
    source: str
    contract_id: int | None
    reverses_id: int | None
    is_manual: bool
    entries: list[EntryOut]


class VoucherPage(Schema):
    items: list[VoucherOut]
    next_cursor: str | None = None


class VoucherIn(Schema):
    period: str = Field("", description="YYYY-MM")
    source: str = ""
    cursor: str | None = None
    limit: int = Field(PAGE_SIZE, ge=1, le=200)


def _voucher_out(v: Any) -> dict[str, Any]:
    return {
        "id": v.pk, "number": v.number, "word": v.word, "seq": v.seq, "on": v.on,
        "summary": v.summary, "source": v.source, "contract_id": v.contract_id,
        "reverses_id": v.reverses_id, "is_manual": v.is_manual,
        "entries": [{"line": e.line, "account_code": e.account.code,
                     "account_name": e.account.name, "summary": e.summary,
                     "debit": _m(e.debit), "credit": _m(e.credit), "auxiliary": auxiliary(e),
                     "department_id": e.department_id, "owner_id": e.owner_id,
                     "customer_id": e.customer_id, "contract_id": e.contract_id}
                    for e in v.entries.all()],
    }


@router.get("/vouchers", response=VoucherPage)
def vouchers(request: HttpRequest, q: Query[VoucherIn]) -> dict[str, Any]:
    year = month = None
    if q.period:
        try:
            year, month = (int(x) for x in q.period.split("-"))
        except ValueError:
            from weiying.core.errors import ValidationFailed

            raise ValidationFailed(_("Give the period as YYYY-MM."), code="invalid_period",
                                   field="period") from None
    qs = selectors.vouchers_for(request.user, year=year, month=month, source=q.source) \
        .prefetch_related("entries__account", "entries__customer", "entries__department",
                          "entries__owner")
    page = keyset_page(qs, ["on", "seq", "id"], cursor=q.cursor, size=q.limit)
    return {"items": [_voucher_out(v) for v in page.items], "next_cursor": page.next_cursor}


class BankLineIn(Schema):
    bank_ref: str = Field(..., description="the bank's serial (流水号); the idempotency key")
    date: dt.date
    amount: str = Field(..., description="yuan, two decimals at most; negative = debit")
    payer: str = ""
    payer_account: str = ""
    memo: str = ""
    direction: str = Field("", description="借/贷 or debit/credit; empty: by the sign")


class BankLinesIn(Schema):
    lines: list[BankLineIn] = Field(..., min_length=1, max_length=5000)


class BankLinesOut(Schema):
    rows: int
    credit: int
    debit_skipped: int
    already_imported: int
    new: int
    matched: int
    unmatched: int
    statement_id: int | None


@router.post("/bank-lines", response=BankLinesOut)
def post_bank_lines(request: HttpRequest, payload: BankLinesIn) -> dict[str, Any]:
    items = [{**line.dict(), "date": line.date.isoformat()} for line in payload.lines]
    report = bank.receive_lines(items, actor=request.user, source="api")
    data = report.as_dict()
    data.pop("errors")
    data.pop("file_name")
    return data
