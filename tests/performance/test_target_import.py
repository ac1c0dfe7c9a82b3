"""The target file import: every bad row refused with its message, nothing written when any
row fails, and a re-import of the same file changes nothing."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import user_of
from weiying.core.errors import PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog
from weiying.performance.models import Target
from weiying.performance.targets import import_targets


@pytest.fixture(autouse=True)
def _english(english: None) -> None:
    """Messages are asserted in English (the msgids); the pages ask for English too."""


HEADER = "工号,部门,指标,期间,产品线,目标值\n"


def csv_file(body: str, header: str = HEADER) -> io.BytesIO:
    data = io.BytesIO((header + body).encode("utf-8"))
    data.name = "targets.csv"
    return data


def run(company: Any, body: str, who: str = "director") -> Any:
    return import_targets(csv_file(body), actor=user_of(getattr(company, who)))


def messages(report: Any) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.message) for e in report.errors]


def test_a_good_file_writes_every_row_and_a_second_import_changes_nothing(
        company: Any) -> None:
    body = ("E030,,signed_amount,2026-03,,12000.50\n"
            "E031,,Signed amount,2026-Q1,,30000\n"
            ",总部/华东分公司/上海一组,leads,2026,,120\n"
            ",上海一组,win_rate,2026-03,,35%\n"
            "E030,,signed_amount,2026-03,硬件,5000\n"
            "E030,,signed_amount,2026-01-01~2026-03-31,,36000\n")
    report = run(company, body)
    assert report.ok and report.rows == 6 and report.imported == 6, messages(report)
    rows = {(t.employee.number if t.employee_id else t.department.name, t.kpi.code, t.kind,
             f"{t.start:%Y-%m}", t.line): t.value
            for t in Target.objects.select_related("employee", "department", "kpi")}
    assert rows == {
        ("E030", "signed_amount", "month", "2026-03", ""): Decimal("12000.50"),
        ("E031", "signed_amount", "quarter", "2026-01", ""): Decimal("30000.00"),
        ("上海一组", "leads", "year", "2026-01", ""): Decimal("120"),
        ("上海一组", "win_rate", "month", "2026-03", ""): Decimal("0.35"),
        ("E030", "signed_amount", "month", "2026-03", "硬件"): Decimal("5000.00"),
        ("E030", "signed_amount", "quarter", "2026-01", ""): Decimal("36000.00"),
    }
    audits = AuditLog.objects.count()

    again = run(company, body)
    assert again.ok and again.imported == 0
    assert AuditLog.objects.count() == audits


def test_an_xlsx_file_is_read_too(company: Any) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["工号", "指标", "期间", "目标值"])
    sheet.append(["E030", "leads", "2026-03", 12])
    data = io.BytesIO()
    book.save(data)
    data.name = "targets.xlsx"
    report = import_targets(data, actor=user_of(company.manager_a))
    assert report.ok and report.imported == 1
    assert Target.objects.get().value == 12


@pytest.mark.parametrize(("row", "column", "expected"), [
    ("E999,,leads,2026-03,,5", "employee", "There is no employee with number E999"),
    (",总部/不存在,leads,2026-03,,5", "department", "There is no department 总部/不存在"),
    ("E030,,no_such_kpi,2026-03,,5", "kpi", "There is no KPI no_such_kpi"),
    ("E030,,leads,2026-03,,-5", "value", "cannot be negative"),
    ("E030,,signed_amount,2026-03,,-0.01", "value", "cannot be negative"),
    ("E030,,win_rate,2026-03,,120%", "value", "at most 100%"),
    ("E030,,win_rate,2026-03,,1.5", "value", "at most 100%"),
    ("E030,,leads,2026-03-01~2026-03-15,,5", "period", "not a whole month, quarter or year"),
    ("E030,,leads,2026-13,,5", "period", "is not a period"),
    ("E030,,leads,2026-03,硬件,5", "line", "not kept per product line"),
    ("E030,,leads,2026-03,,", "value", "empty"),
    ("E050,,leads,2026-03,,5", "employee", "outside your view"),
    ("E010,,leads,2026-03,,5", "employee", "set by your manager"),
    ("E030,上海一组,leads,2026-03,,5", "employee", "not both"),
])
def test_each_bad_row_is_refused_with_its_message_and_nothing_is_written(
        company: Any, row: str, column: str, expected: str) -> None:
    good = "E031,,leads,2026-03,,5\n"
    report = run(company, good + row + "\n")
    assert not report.ok
    assert [(r, c) for r, c, _m in messages(report)] == [(3, column)], messages(report)
    assert expected in report.errors[0].message
    assert not Target.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="target").exists()


def test_overlapping_rows_name_both_rows_and_the_fix(company: Any) -> None:
    body = ("E030,,leads,2026-03,,5\n"
            "E030,,leads,2026-Q1,,15\n"
            "E030,,leads,2026-03,,6\n"
            "E031,,leads,2026-03,,5\n"
            "E030,,leads,2026-01-01~2026-03-31,,16\n"
            "E030,,leads,2026-04,,5\n")
    report = run(company, body)
    assert [(r, c) for r, c, _m in messages(report)] == [(4, "period"), (6, "period")]
    first, second = (e.message for e in report.errors)
    assert "Row 4 and row 2" in first and "keep one of the two rows" in first
    assert "Row 6 and row 3" in second and "2026-Q1" in second
    assert "2026-01-01~2026-03-31" in second
    assert not Target.objects.exists()


def test_file_level_problems_and_permission(company: Any) -> None:
    with pytest.raises(ValidationFailed) as exc:
        import_targets(csv_file("E030,5\n", header="工号,目标值\n"),
                       actor=user_of(company.director))
    assert exc.value.code == "bad_file" and "指标" in str(exc.value.message)
    with pytest.raises(PermissionDenied):
        run(company, "E030,,leads,2026-03,,5\n", who="rep_a")
    assert not Target.objects.exists()
