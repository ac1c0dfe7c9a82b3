"""Bank statements: import (CSV or .xlsx, or lines posted by a bank connector), automatic
matching to contracts, and the queue of lines a person matches or ignores.

1. Validate every row first (date, amount, serial, duplicates inside the file); a file with a
   bad row imports nothing, and the report names each row and column.
2. Keep each credit line as a `BankLine`, keyed by the bank's serial: a line seen before is
   counted as already imported and changes nothing. Debit lines are skipped and counted.
3. Match each new line: a contract number in the memo whose outstanding covers the amount,
   else the payer's name equal to a customer's and the amount equal to exactly one open
   instalment of that customer's signed contracts. A match records the receipt through the
   pipeline (`record_receipt`, external id `bank:<serial>`), so a line is never collected
   twice; anything else waits in the queue.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit
from weiying.core.errors import Conflict, DomainError, ValidationFailed
from weiying.core.events import emit
from weiying.core.money import money
from weiying.core.permissions import employee_of, require
from weiying.finance.models import BankLine, BankLineStatus, BankStatement
from weiying.pipeline.imports import read_rows
from weiying.pipeline.models import Contract, Instalment

# Header aliases per field, in priority order; Chinese first, as the banks write them.
HEADERS: dict[str, tuple[str, ...]] = {
    "date": ("交易日期", "记账日期", "日期", "交易时间", "date", "booked_on"),
    "amount": ("贷方金额", "收入金额", "贷方发生额", "金额", "交易金额", "amount", "credit"),
    "debit": ("借方金额", "支出金额", "借方发生额", "debit"),
    "direction": ("借贷标志", "借贷方向", "收支方向", "direction"),
    "payer": ("对方户名", "对方名称", "付款人名称", "付款人", "payer", "counterparty"),
    "payer_account": ("对方账号", "付款人账号", "payer_account", "payeraccount"),
    "memo": ("摘要", "用途", "附言", "备注", "memo", "purpose"),
    "bank_ref": ("交易流水号", "流水号", "凭证号", "bank_serial", "serial", "bank_ref",
                 "reference"),
}
REQUIRED = ("date", "amount", "bank_ref")
_HEADER_JUNK = re.compile(r"[\s*＊:：()（）_\-]+")
_DEBIT_MARKS = {"借", "借方", "支出", "付", "d", "dr", "debit", "out"}
_NUMBER_IN_MEMO = re.compile(r"[A-Za-z]{1,4}\d{8,}")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
MAX_ROWS = 50_000
_LIMITS = {"payer": 128, "payer_account": 64, "memo": 255, "bank_ref": 59}


@dataclass
class RowError:
    row: int
    column: str
    message: str


@dataclass
class BankImportReport:
    """What an import did. `credit` counts the credit lines of the file; `debit_skipped` the
    debit lines left out; `already` the credit lines imported before."""

    file_name: str = ""
    rows: int = 0
    credit: int = 0
    debit_skipped: int = 0
    already: int = 0
    new: int = 0
    matched: int = 0
    errors: list[RowError] = field(default_factory=list)
    statement_id: int | None = None
    line_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unmatched(self) -> int:
        return self.new - self.matched

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_name": self.file_name, "rows": self.rows, "credit": self.credit,
            "debit_skipped": self.debit_skipped, "already_imported": self.already,
            "new": self.new, "matched": self.matched, "unmatched": self.unmatched,
            "statement_id": self.statement_id,
            "errors": [{"row": e.row, "column": e.column, "message": e.message}
                       for e in self.errors],
        }


@dataclass
class _Line:
    row: int
    booked_on: dt.date
    amount: Decimal
    payer: str
    payer_account: str
    memo: str
    bank_ref: str


# --- parsing -----------------------------------------------------------------------------------
def _norm(header: str) -> str:
    return _HEADER_JUNK.sub("", header or "").lower()


def _map_header(header: list[str]) -> dict[str, int]:
    normalised = [_norm(h) for h in header]
    mapping: dict[str, int] = {}
    for name, aliases in HEADERS.items():
        for alias in aliases:
            key = _norm(alias)
            if key in normalised and normalised.index(key) not in mapping.values():
                mapping[name] = normalised.index(key)
                break
    return mapping


def parse_date(raw: str) -> dt.date | None:
    text = (raw or "").strip()
    if not text:
        return None
    head = text.split("T")[0].split(" ")[0]
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(head, fmt).date()  # noqa: DTZ007 - a calendar day
        except ValueError:
            continue
    return None


def parse_amount(raw: str) -> Decimal | None:
    text = (raw or "").strip().replace(",", "").replace("，", "").replace("¥", "")
    text = text.replace("￥", "").replace("元", "").strip()
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or money(value) != value:
        return None
    return value


def _is_debit(values: dict[str, str], amount: Decimal | None) -> bool:
    direction = values.get("direction", "").strip().lower()
    if direction in _DEBIT_MARKS:
        return True
    debit = parse_amount(values.get("debit", ""))
    if (amount is None or amount == 0) and debit is not None and debit != 0:
        return True
    return amount is not None and amount < 0


def _check_row(row: int, values: dict[str, str], columns: dict[str, str],
               report: BankImportReport, seen: dict[str, int]) -> _Line | None:
    """One data row: a credit line, None for a skipped debit line or a bad row (errors go
    into the report)."""
    def problem(name: str, message: str) -> None:
        report.errors.append(RowError(row, columns.get(name, name), message))

    raw_amount = values.get("amount", "")
    amount = parse_amount(raw_amount)
    if raw_amount.strip() and amount is None:
        problem("amount", _("Not an amount; write it in yuan with at most two decimals, e.g. "
                            "12800.00."))
        return None
    if _is_debit(values, amount):
        report.debit_skipped += 1
        return None
    before = len(report.errors)
    if amount is None or amount <= 0:
        problem("amount", _("A credit line needs an amount above zero."))
    booked_on = parse_date(values.get("date", ""))
    if booked_on is None:
        problem("date", _("Not a date; write it as YYYY-MM-DD."))
    elif booked_on > timezone.localdate():
        problem("date", _("This date is in the future; a statement lists money already "
                          "received."))
    bank_ref = values.get("bank_ref", "").strip()
    if not bank_ref:
        problem("bank_ref", _("Each line needs the bank's serial number (流水号)."))
    elif bank_ref in seen:
        problem("bank_ref", _("The same serial number is on row %(row)s of this file.")
                % {"row": seen[bank_ref]})
    else:
        seen[bank_ref] = row
    for name, limit in _LIMITS.items():
        if len(values.get(name, "")) > limit:
            problem(name, _("Too long (%(limit)s characters at most).") % {"limit": limit})
    if len(report.errors) > before:
        return None
    report.credit += 1
    return _Line(row=row, booked_on=booked_on, amount=amount,  # type: ignore[arg-type]
                 payer=values.get("payer", "").strip(),
                 payer_account=values.get("payer_account", "").strip(),
                 memo=values.get("memo", "").strip(), bank_ref=bank_ref)


def _file_lines(source: Any, report: BankImportReport) -> list[_Line]:
    rows = read_rows(source)
    try:
        return _lines_of(rows, report)
    finally:
        rows.close()  # a refusal before the end: close the reader while the file is open


def _lines_of(rows: Any, report: BankImportReport) -> list[_Line]:
    header = next(rows, None)
    if header is None or not any(header):
        raise ValidationFailed(_("The file is empty; the first row must hold the column "
                                 "names."), code="bad_file", field="file")
    mapping = _map_header(header)
    missing = [name for name in REQUIRED if name not in mapping]
    if missing:
        names = {"date": "交易日期 / date", "amount": "贷方金额 / amount",
                 "bank_ref": "流水号 / bank serial"}
        raise ValidationFailed(
            _("The file has no %(columns)s column; name the columns as the bank's export "
              "does.") % {"columns": ", ".join(names[m] for m in missing)},
            code="bad_file", field="file")
    columns = {name: header[i] for name, i in mapping.items()}
    seen: dict[str, int] = {}
    lines = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        report.rows += 1
        if report.rows > MAX_ROWS:
            raise ValidationFailed(_("A statement may have at most %(n)s lines; split the "
                                     "file.") % {"n": MAX_ROWS}, code="bad_file", field="file")
        width = len(cells)
        values = {name: (cells[i] if i < width else "") for name, i in mapping.items()}
        line = _check_row(number, values, columns, report, seen)
        if line is not None:
            lines.append(line)
    return lines


def _posted_lines(items: list[dict[str, Any]], report: BankImportReport) -> list[_Line]:
    seen: dict[str, int] = {}
    lines = []
    columns = {name: name for name in HEADERS}
    for number, item in enumerate(items, start=1):
        report.rows += 1
        values = {k: ("" if item.get(k) is None else str(item.get(k))) for k in HEADERS}
        line = _check_row(number, values, columns, report, seen)
        if line is not None:
            lines.append(line)
    return lines


# --- matching ----------------------------------------------------------------------------------
def _sold() -> tuple[str, ...]:
    from weiying.pipeline.services.contracts import SOLD_STATUSES

    return tuple(SOLD_STATUSES)


def find_match(line: Any) -> tuple[Contract, Instalment | None] | None:
    """The contract (and instalment) a line pays, by the rules in the module's docstring."""
    numbers = {m.upper() for m in _NUMBER_IN_MEMO.findall(line.memo or "")}
    if numbers:
        contracts = list(Contract.objects.filter(number__in=numbers, status__in=_sold()))
        if len(contracts) == 1 and line.amount <= contracts[0].outstanding:
            return contracts[0], None
    payer = (line.counterparty or "").strip()
    if payer:
        open_ones = [
            i for i in Instalment.objects.filter(
                contract__customer__name=payer,
                contract__customer__merged_into__isnull=True,
                contract__status__in=_sold()).select_related("contract")
            if i.outstanding == line.amount
        ]
        if len(open_ones) == 1:
            return open_ones[0].contract, open_ones[0]
    return None


def _receive(actor: Any, line: BankLine, contract: Contract,
             instalment: Instalment | None) -> Any:
    from weiying.pipeline.services.contracts import record_receipt

    return record_receipt(actor=actor, contract=contract, amount=line.amount,
                          received_on=line.booked_on, method="bank", reference=line.bank_ref,
                          instalment=instalment, external_id=f"bank:{line.bank_ref}")


def _mark_matched(actor: Any, line: BankLine, receipt: Any, *, how: str) -> None:
    line.status = BankLineStatus.MATCHED
    line.contract_id = receipt.contract_id
    line.receipt = receipt
    line.matched_by = employee_of(actor) if actor is not None else None
    line.matched_at = timezone.now()
    line.save(update_fields=["status", "contract", "receipt", "matched_by", "matched_at",
                             "note"])
    audit.record(actor, "bank_line.match", line, after={
        "bank_ref": line.bank_ref, "contract_id": receipt.contract_id,
        "receipt_id": receipt.pk, "amount": line.amount, "how": how})
    emit("bank_line.matched", line, actor=actor, contract_id=receipt.contract_id,
         receipt_id=receipt.pk, amount=line.amount, how=how)


def _auto_match(actor: Any, line: BankLine) -> bool:
    found = find_match(line)
    if found is None:
        return False
    contract, instalment = found
    try:
        with transaction.atomic():
            receipt = _receive(actor, line, contract, instalment)
            _mark_matched(actor, line, receipt, how="auto")
    except DomainError:
        # A refusal (the contract moved on meanwhile): the line waits for a person.
        line.refresh_from_db()
        return False
    return True


# --- services ----------------------------------------------------------------------------------
def _store(actor: Any, lines: list[_Line], report: BankImportReport, file_name: str) -> None:
    """Keep the new lines and match them, in one transaction."""
    with transaction.atomic():
        known = set(BankLine.objects.filter(bank_ref__in=[x.bank_ref for x in lines])
                    .values_list("bank_ref", flat=True))
        fresh = [x for x in lines if x.bank_ref not in known]
        report.already = len(lines) - len(fresh)
        if not fresh:
            return
        statement = BankStatement.objects.create(
            file_name=file_name[:255], imported_by=employee_of(actor), lines_total=len(lines))
        report.statement_id = statement.pk
        for x in fresh:
            try:
                with transaction.atomic():
                    line = BankLine.objects.create(
                        statement=statement, bank_ref=x.bank_ref, booked_on=x.booked_on,
                        amount=x.amount, counterparty=x.payer, counterparty_account=x.payer_account,
                        memo=x.memo)
            except IntegrityError:  # a connector racing with itself: the other one keeps it
                report.already += 1
                continue
            report.new += 1
            report.line_ids.append(line.pk)
            if _auto_match(actor, line):
                report.matched += 1
        statement.lines_new = report.new
        statement.lines_matched = report.matched
        statement.save(update_fields=["lines_new", "lines_matched"])
        audit.record(actor, "bank_statement.import", statement, after=report.as_dict())


def import_statement(source: Any, *, actor: Any, file_name: str = "") -> BankImportReport:
    """Import a bank statement file (a path or an open binary file, CSV or .xlsx). A file with
    any bad row imports nothing: the report lists the errors. File-level problems (empty,
    unreadable, a required column missing) raise ValidationFailed "bad_file"."""
    require(actor, "finance.post")
    file_name = file_name or str(getattr(source, "name", source)).rsplit("/", 1)[-1]
    report = BankImportReport(file_name=file_name)
    lines = _file_lines(source, report)
    if report.errors:
        return report
    _store(actor, lines, report, file_name)
    return report


def receive_lines(items: list[dict[str, Any]], *, actor: Any,
                  source: str = "api") -> BankImportReport:
    """Lines posted by a bank connector, each a dict with the keys of HEADERS (date, amount,
    payer, payer_account, memo, bank_ref; direction/debit optional). Idempotent by bank_ref:
    sending the same lines again changes nothing. Any bad line refuses the whole request."""
    require(actor, "finance.post")
    report = BankImportReport(file_name=source)
    lines = _posted_lines(items, report)
    if report.errors:
        first = report.errors[0]
        raise ValidationFailed(
            _("Line %(row)s, %(column)s: %(problem)s")
            % {"row": first.row, "column": first.column, "problem": first.message},
            code="invalid_lines", field=f"lines.{first.row}.{first.column}")
    _store(actor, lines, report, source)
    return report


def _locked_line(line: BankLine) -> BankLine:
    return BankLine.objects.select_for_update().get(pk=line.pk)


@transaction.atomic
def match_line(*, actor: Any, line: BankLine, contract: Contract,
               instalment: Instalment | None = None) -> BankLine:
    """Match a waiting line to a contract (and instalment) by hand: the receipt is recorded
    through the pipeline, which refuses more than is due (and then nothing is written)."""
    require(actor, "finance.post")
    line = _locked_line(line)
    if line.status == BankLineStatus.MATCHED:
        raise Conflict(_("This bank line is already matched to a receipt."),
                       code="bank_line_matched")
    if instalment is not None and instalment.contract_id != contract.pk:
        raise ValidationFailed(_("This instalment belongs to another contract."),
                               code="instalment_mismatch", field="instalment")
    receipt = _receive(actor, line, contract, instalment)
    line.note = ""
    _mark_matched(actor, line, receipt, how="manual")
    return line


@transaction.atomic
def ignore_line(*, actor: Any, line: BankLine, note: str) -> BankLine:
    """Set a line aside (not a customer's payment: interest, a transfer between own
    accounts), with a note saying why."""
    require(actor, "finance.post")
    line = _locked_line(line)
    if line.status != BankLineStatus.UNMATCHED:
        raise Conflict(_("Only a line waiting to be matched can be ignored."),
                       code="bank_line_not_waiting")
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(_("Say why the line is ignored, e.g. interest or a transfer "
                                 "between own accounts."), field="note")
    line.status = BankLineStatus.IGNORED
    line.note = note[:255]
    line.matched_by = employee_of(actor)
    line.matched_at = timezone.now()
    line.save(update_fields=["status", "note", "matched_by", "matched_at"])
    audit.record(actor, "bank_line.ignore", line, before={"status": "unmatched"},
                 after={"status": "ignored", "note": line.note})
    return line


def waiting_lines() -> Any:
    return BankLine.objects.filter(status=BankLineStatus.UNMATCHED).order_by("booked_on", "pk")
