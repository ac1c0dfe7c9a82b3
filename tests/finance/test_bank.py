from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import Workbook

from tests.conftest import user_of
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.finance import bank
from weiying.finance.models import BankLine, BankStatement
from weiying.pipeline.models import Receipt
from weiying.pipeline.services import contracts as svc

D = Decimal
DAY = dt.date(2026, 11, 20)


def csv_file(rows: list[list[str]], header: list[str] | None = None) -> io.BytesIO:
    header = header or ["交易日期", "贷方金额", "借方金额", "对方户名", "对方账号", "摘要",
                        "交易流水号"]
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    return io.BytesIO(text.encode("utf-8-sig"))


@pytest.fixture
def signed(deal, products):
    return deal([{"product": products.box, "quantity": "10", "unit_price": "1130.00"}],
                signed_on=dt.date(2026, 11, 2))


def test_a_line_naming_the_contract_is_matched(company, signed):
    finance = user_of(company.finance)
    f = csv_file([["2026-11-20", "3390.00", "", "上海甲公司", "6222001", f"货款 {signed.number}",
                   "B0001"],
                  ["2026-11-20", "", "50.00", "手续费", "", "手续费", "B0002"]])
    report = bank.import_statement(f, actor=finance, file_name="nov.csv")
    assert report.ok
    assert (report.rows, report.credit, report.debit_skipped, report.new, report.matched) == (
        2, 1, 1, 1, 1)
    line = BankLine.objects.get(bank_ref="B0001")
    assert line.status == "matched" and line.contract_id == signed.pk
    receipt = Receipt.objects.get(external_id="bank:B0001")
    assert (receipt.amount, receipt.received_on, receipt.method, receipt.reference) == (
        D("3390.00"), DAY, "bank", "B0001")
    assert line.receipt_id == receipt.pk
    signed.refresh_from_db()
    assert signed.collected == D("3390.00")
    assert AuditLog.objects.filter(action="bank_line.match", object_id=str(line.pk)).exists()
    assert AuditLog.objects.filter(action="bank_statement.import").count() == 1


def test_a_line_from_the_customer_paying_one_instalment_exactly_is_matched(company, signed):
    finance = user_of(company.finance)
    svc.plan_instalments(actor=user_of(company.rep_a), contract=signed, plan=[
        (dt.date(2026, 11, 10), "5000.00"), (dt.date(2026, 12, 10), "6300.00")])
    f = csv_file([["2026/11/20", "6300.00", "", "上海甲公司", "", "第二期", "B0101"]])
    report = bank.import_statement(f, actor=finance)
    assert report.matched == 1
    receipt = Receipt.objects.get(external_id="bank:B0101")
    assert receipt.instalment.seq == 2
    assert receipt.instalment.collected == D("6300.00")


def test_lines_that_fit_no_rule_wait_in_the_queue(company, signed):
    finance = user_of(company.finance)
    svc.plan_instalments(actor=user_of(company.rep_a), contract=signed, plan=[
        (dt.date(2026, 11, 10), "5000.00"), (dt.date(2026, 12, 10), "6300.00")])
    f = csv_file([
        # the number, but more than is outstanding; the payer pays no instalment exactly
        ["20261120", "11300.01", "", "上海甲公司", "", signed.number, "B0201"],
        ["2026-11-20", "4999.99", "", "上海甲公司", "", "", "B0202"],
        ["2026-11-20", "5000.00", "", "别的公司", "", "", "B0203"],
    ])
    report = bank.import_statement(f, actor=finance)
    assert (report.new, report.matched, report.unmatched) == (3, 0, 3)
    assert list(bank.waiting_lines().values_list("bank_ref", flat=True)) == [
        "B0201", "B0202", "B0203"]
    assert not Receipt.objects.exists()


def test_a_waiting_line_is_matched_by_hand_and_the_receipt_recorded(company, signed):
    finance = user_of(company.finance)
    bank.import_statement(csv_file([["2026-11-20", "1000.00", "", "张三", "", "", "B0301"]]),
                          actor=finance)
    line = BankLine.objects.get(bank_ref="B0301")
    bank.match_line(actor=finance, line=line, contract=signed)
    line.refresh_from_db()
    assert line.status == "matched" and line.matched_by == company.finance
    assert Receipt.objects.get(external_id="bank:B0301").amount == D("1000.00")
    assert AuditLog.objects.filter(action="bank_line.match", after__how="manual").exists()


def test_matching_more_than_is_due_is_refused_and_nothing_written(company, deal, products):
    finance = user_of(company.finance)
    small = deal([{"product": products.box, "quantity": "1", "unit_price": "1130.00"}],
                 signed_on=dt.date(2026, 11, 2))
    bank.import_statement(csv_file([["2026-11-20", "2000.00", "", "张三", "", "", "B0401"]]),
                          actor=finance)
    line = BankLine.objects.get(bank_ref="B0401")
    audits = AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        bank.match_line(actor=finance, line=line, contract=small)
    assert exc.value.code == "receipt_exceeds_due"
    line.refresh_from_db()
    assert line.status == "unmatched" and line.receipt_id is None
    assert not Receipt.objects.exists()
    assert AuditLog.objects.count() == audits


def test_an_ignored_line_needs_a_note_and_leaves_the_queue(company):
    finance = user_of(company.finance)
    bank.import_statement(csv_file([["2026-11-20", "3.21", "", "本行", "", "利息", "B0501"]]),
                          actor=finance)
    line = BankLine.objects.get(bank_ref="B0501")
    with pytest.raises(ValidationFailed):
        bank.ignore_line(actor=finance, line=line, note=" ")
    bank.ignore_line(actor=finance, line=line, note="结息")
    line.refresh_from_db()
    assert (line.status, line.note) == ("ignored", "结息")
    assert not bank.waiting_lines().exists()
    assert AuditLog.objects.filter(action="bank_line.ignore").count() == 1


def test_the_same_file_twice_changes_nothing(company, signed):
    finance = user_of(company.finance)
    rows = [["2026-11-20", "3390.00", "", "上海甲公司", "", signed.number, "B0601"],
            ["2026-11-21", "10.00", "", "张三", "", "", "B0602"]]
    bank.import_statement(csv_file(rows), actor=finance)
    counts = (BankLine.objects.count(), BankStatement.objects.count(), Receipt.objects.count())
    report = bank.import_statement(csv_file(rows), actor=finance)
    assert (report.already, report.new, report.matched) == (2, 0, 0)
    assert (BankLine.objects.count(), BankStatement.objects.count(),
            Receipt.objects.count()) == counts
    signed.refresh_from_db()
    assert signed.collected == D("3390.00")


def test_an_invalid_file_is_refused_with_row_errors_and_nothing_applied(company, signed):
    finance = user_of(company.finance)
    f = csv_file([
        ["2026-11-20", "3390.00", "", "上海甲公司", "", signed.number, "B0701"],
        ["2026-13-45", "12.5x", "", "张三", "", "", "B0702"],
        ["2026-11-21", "10.00", "", "张三", "", "", ""],
        ["2026-11-21", "10.00", "", "张三", "", "", "B0701"],
    ])
    report = bank.import_statement(f, actor=finance)
    assert not report.ok
    found = {(e.row, e.column) for e in report.errors}
    assert found == {(3, "贷方金额"), (4, "交易流水号"), (5, "交易流水号")}
    assert "row 2" in report.errors[-1].message or "2" in report.errors[-1].message
    assert not BankLine.objects.exists() and not Receipt.objects.exists()
    assert not BankStatement.objects.exists()


def test_a_bad_date_and_a_future_date_are_named(company):
    finance = user_of(company.finance)
    f = csv_file([["yesterday", "1.00", "", "", "", "", "B0801"],
                  ["2099-01-01", "1.00", "", "", "", "", "B0802"]])
    report = bank.import_statement(f, actor=finance)
    assert [(e.row, e.column) for e in report.errors] == [(2, "交易日期"), (3, "交易日期")]


def test_a_file_without_the_serial_column_is_refused(company):
    f = csv_file([["2026-11-20", "1.00"]], header=["交易日期", "金额"])
    with pytest.raises(ValidationFailed) as exc:
        bank.import_statement(f, actor=user_of(company.finance))
    assert exc.value.code == "bad_file" and "流水号" in str(exc.value.message)


def test_an_excel_statement_with_english_headers_and_signed_amounts(company, signed):
    book = Workbook()
    sheet = book.active
    sheet.append(["date", "amount", "payer", "memo", "bank serial"])
    sheet.append([dt.datetime(2026, 11, 20, 9, 30), 3390, "上海甲公司", signed.number, "X1"])
    sheet.append([dt.datetime(2026, 11, 20, 9, 31), -20, "电费", "", "X2"])
    handle = io.BytesIO()
    book.save(handle)
    report = bank.import_statement(handle, actor=user_of(company.finance), file_name="a.xlsx")
    assert report.ok, report.errors
    assert (report.credit, report.debit_skipped, report.matched) == (1, 1, 1)


def test_a_rep_cannot_import_or_match(company, signed):
    with pytest.raises(PermissionDenied):
        bank.import_statement(csv_file([]), actor=user_of(company.rep_a))


def test_posted_lines_are_idempotent_by_serial(company, signed):
    finance = user_of(company.finance)
    items = [{"date": "2026-11-20", "amount": "3390.00", "payer": "上海甲公司",
              "memo": signed.number, "bank_ref": "API-1"}]
    first = bank.receive_lines(items, actor=finance)
    again = bank.receive_lines(items, actor=finance)
    assert (first.new, first.matched, again.new, again.already) == (1, 1, 0, 1)
    assert Receipt.objects.count() == 1
