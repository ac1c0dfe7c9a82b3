from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from tests.conftest import user_of
from tests.finance.desk import booked_fixture  # noqa: F401 - the fixture
from weiying.core.models import AuditLog
from weiying.finance import services
from weiying.finance.exports import VOUCHER_COLUMNS

D = Decimal
NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def sheet_rows(response):
    book = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True)
    return [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]


def amount(value):
    return D(str(value)).quantize(D("0.01"))


def test_voucher_sheet_has_the_ledger_columns_and_balances_per_voucher(company, booked,
                                                                       login):
    services.post_manual_voucher(actor=user_of(company.finance), on=dt.date(2026, 11, 30),
                                 summary="计提", lines=[
                                     {"account": "6601", "debit": "12.34"},
                                     {"account": "1002", "credit": "12.34"}])
    response = login(company.finance).get(reverse("finance:voucher_list"),
                                          {"period": "2026-11", "export": "xlsx"})
    rows = sheet_rows(response)
    assert rows[0] == VOUCHER_COLUMNS
    per_voucher = defaultdict(lambda: [D(0), D(0)])
    for row in rows[1:]:
        date, word, seq, _summary, code, name, debit, credit, _aux = row
        assert word == "记" and str(date).startswith("2026-11")
        per_voucher[seq][0] += amount(debit)
        per_voucher[seq][1] += amount(credit)
    assert len(per_voucher) >= 3  # receipt, acceptance, marketing, manual
    for debit, credit in per_voucher.values():
        assert debit == credit > 0
    receipt_rows = [r for r in rows[1:] if r[2] == 1]
    assert [(r[4], r[5], amount(r[6]), amount(r[7])) for r in receipt_rows] == [
        ("1002", "银行存款", D("3390.00"), D("0.00")),
        ("2204", "合同负债", D("0.00"), D("3000.00")),
        ("222102", "应交税费—待转销项税额", D("0.00"), D("390.00"))]
    assert receipt_rows[0][8] == f"客户:上海甲公司;部门:上海一组;职员:{company.rep_a.name}"
    assert AuditLog.objects.filter(action="export", object_type="finance.voucher").exists()


def test_voucher_csv_holds_the_same_rows(company, booked, login):
    client = login(company.finance)
    response = client.get(reverse("finance:voucher_list"), {"period": "2026-11",
                                                             "export": "csv"})
    text = response.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == VOUCHER_COLUMNS
    xlsx = sheet_rows(client.get(reverse("finance:voucher_list"), {"period": "2026-11",
                                                                   "export": "xlsx"}))
    assert len(rows) == len(xlsx)
    assert [r[6] for r in rows[1:]] == [f"{amount(r[6])}" for r in xlsx[1:]]
    assert rows[1][6] == "3390.00"


def test_another_period_exports_no_rows(company, booked, login):
    rows = sheet_rows(login(company.finance).get(reverse("finance:voucher_list"),
                                                 {"period": "2026-10", "export": "xlsx"}))
    assert rows == [VOUCHER_COLUMNS]


def test_the_bridge_exports_every_item_and_a_zero_difference(company, booked, login):
    rows = sheet_rows(login(company.finance, language="en").get(
        reverse("finance:bridge"), {**NOV, "export": "xlsx"}))
    figures = {r[0]: amount(r[1]) for r in rows[1:]}
    assert rows[0] == ["Item", "Amount"]
    assert figures["Cash collected"] == D("3390.00")
    assert figures["Revenue recognised (VAT excluded)"] == D("10000.00")
    assert figures["Less: increase in receivables"] == D("-7910.00")
    assert figures["Difference"] == D("0.00")


def test_report_exports_columns_and_amounts(company, booked, login):
    client = login(company.finance, language="en")
    revenue = sheet_rows(client.get(reverse("finance:revenue"),
                                    {**NOV, "by": "product", "export": "xlsx"}))
    assert revenue[0][:5] == ["Group", "Revenue (VAT excl.)", "Output VAT", "Cost of sales",
                              "Gross margin"]
    assert [revenue[1][0], *map(amount, revenue[1][1:5])] == [
        "智能柜", D("10000.00"), D("1300.00"), D("6000.00"), D("4000.00")]
    ageing = sheet_rows(client.get(reverse("finance:ageing"), {"export": "xlsx"}))
    assert ageing[0] == ["Contract", "Customer", "Owner", "0-30", "31-90", "91-180", "180+",
                         "Total"]
    assert ageing[1][0] == booked.number and amount(ageing[1][-1]) == D("7910.00")
    invoiced = sheet_rows(client.get(reverse("finance:invoiced_not_collected"),
                                     {"export": "xlsx"}))
    assert [amount(v) for v in invoiced[1][2:]] == [
        D("5000.00"), D("3390.00"), D("11300.00"), D("1610.00")]
    marketing = sheet_rows(client.get(reverse("finance:marketing"), {**NOV, "export": "xlsx"}))
    assert marketing[1][0] == "广告" and amount(marketing[1][1]) == D("800.00")
    liabilities = sheet_rows(client.get(reverse("finance:liabilities"), {"export": "xlsx"}))
    assert liabilities[0][0] == "Contract" and len(liabilities) == 1
    invoices = sheet_rows(client.get(reverse("finance:invoice_list"), {"export": "xlsx"}))
    assert invoices[1][0] == "FP0001" and amount(invoices[1][5]) == D("5000.00")
    assert AuditLog.objects.filter(action="export").count() == 6


def test_a_manager_exports_only_their_subtree(company, booked, login):
    rows = sheet_rows(login(company.manager_b).get(reverse("finance:ageing"),
                                                   {"export": "xlsx"}))
    assert len(rows) == 1


@pytest.mark.parametrize("name", ["finance:bridge", "finance:voucher_list"])
def test_exports_need_the_export_permission(company, booked, login, name):
    assert login(company.rep_a).get(reverse(name), {"export": "xlsx"}).status_code == 403
