"""HR system API (/api/hr): put the roster (all or nothing, the same checks as the file
import: weiying.org.roster_import) and read an employee's HR history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.utils.translation import ngettext
from ninja import Field, Router, Schema

from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.scope import scoped, visible_employees
from weiying.org import roster_import
from weiying.org.models import Assignment

router = Router(tags=["hr"])


class RowsRejected(ValidationFailed):
    """Some records are wrong; `errors` lists them all ({row, column, message}) and nothing
    was applied."""

    code = "invalid_rows"
    status = 422


class EmployeeRecord(Schema):
    """One employee as the HR system holds them. A field left out (or an empty string) stays
    as it is; null clears it (number, name and department cannot be cleared)."""

    number: str = Field(max_length=64, description="工号, the key")
    name: str | None = None
    department: str | None = Field(
        None, description="Name path from the top, separated by '/' (总部/华东分公司/上海一组); "
                          "the top department's name may be left out")
    position: str | None = None
    level: str | None = None
    leader: str | None = Field(None, description="The direct leader's employee number")
    hire_date: str | None = Field(None, description="YYYY-MM-DD")
    phone: str | None = None
    email: str | None = None
    employment_type: str | None = Field(None, description="full_time, part_time, agent, intern "
                                                          "(or 全职, 兼职, 外包代理, 实习)")
    payroll_number: str | None = None
    status: str | None = Field(None, description="active, probation, left (在职, 试用, 离职)")
    leave_date: str | None = Field(None, description="YYYY-MM-DD; with status left")
    successor: str | None = Field(None, description="Who takes over a leaver's customers")
    effective_date: str | None = Field(
        None, description="YYYY-MM-DD: when a transfer or promotion takes effect (today)")
    role: str | None = Field(None, description="The role's code or name (rep, manager, 销售代表…); "
                                               "null takes the role away")


class RosterResult(Schema):
    rows: int
    created: int
    updated: int
    transferred: int
    promoted: int
    leaders_changed: int
    left: int
    unchanged: int


class AssignmentOut(Schema):
    department_id: int
    department: str
    position: str
    level: str
    starts_on: dt.date
    ends_on: dt.date | None
    reason: str

    @staticmethod
    def resolve_department(obj: Assignment) -> str:
        return obj.department.name


@router.put("/employees", response=RosterResult,
            summary="Create and update employees (all or nothing)")
def put_employees(request: HttpRequest, payload: list[EmployeeRecord]) -> Any:
    """Each record is applied like a row of the roster file. If any record is wrong the answer
    is 422 with every problem (`errors`: row = the record's position from 1, column = the
    field) and nothing is applied. Sending the same records again changes nothing."""
    records = roster_import.records_from_api(
        item.model_dump(exclude_unset=True) for item in payload
    )
    report = roster_import.apply_records(records, actor=request.user)
    if not report.ok:
        raise RowsRejected(
            ngettext("%(count)s problem in the records; nothing was applied. Fix it and send "
                     "the records again.",
                     "%(count)s problems in the records; nothing was applied. Fix them and "
                     "send the records again.", len(report.errors))
            % {"count": len(report.errors)},
            errors=report.error_dicts(),
        )
    return report.counts()


@router.get("/employees/{number}/history", response=list[AssignmentOut],
            summary="An employee's departments, positions and levels over time")
def employee_history(request: HttpRequest, number: str) -> Any:
    employee = visible_employees(request.user).filter(number=number).first()
    if employee is None:
        raise NotFound()
    # The stretches themselves follow the data scope: a manager sees the time the employee
    # spent in their part of the tree.
    return scoped(Assignment.objects.filter(employee=employee), request.user).select_related(
        "department").order_by("starts_on")
