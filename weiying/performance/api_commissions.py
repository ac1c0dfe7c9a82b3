"""HTTP API of the commissions, mounted at /api/commissions: a month's statements for a payroll
system (scoped like the desk: a rep their own, a manager their subtree's, finance all), each
with its lines; money as strings exact to the fen."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from weiying.core.pagination import PAGE_SIZE, keyset_page
from weiying.performance import commissions as svc
from weiying.performance.models import CommissionStatement

router = Router(tags=["commissions"])


def _m(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


def _p(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


class StatementsIn(Schema):
    month: str = Field(..., description="the month, YYYY-MM")
    status: str = Field("", description="draft | submitted | approved | rejected")
    department_id: int | None = Field(None, description="the department's whole subtree")
    cursor: str | None = None
    limit: int = Field(PAGE_SIZE, ge=1, le=200)


class LineOut(Schema):
    plan_id: int
    plan: str
    line: str
    kpi: str
    basis: str
    actual: str | None
    target: str | None
    achievement: str | None = Field(None, description="percent, two decimals")
    tier: int | None
    rate: str = Field(..., description="percent")
    uncapped: str
    amount: str
    capped: bool
    note: str


class StatementOut(Schema):
    id: int
    employee_id: int
    employee_number: str
    employee_name: str
    payroll_number: str
    department_id: int
    department: str
    month: str
    status: str
    basis: str
    achievement: str | None = Field(None, description="percent, two decimals")
    amount: str
    approved_at: dt.datetime | None
    lines: list[LineOut]


class StatementPage(Schema):
    items: list[StatementOut]
    next_cursor: str | None


def _out(s: CommissionStatement) -> dict[str, Any]:
    return {
        "id": s.pk, "employee_id": s.employee_id, "employee_number": s.employee.number,
        "employee_name": s.employee.name,
        "payroll_number": getattr(s.employee, "payroll_number", "") or "",
        "department_id": s.department_id, "department": s.department.name,
        "month": f"{s.month:%Y-%m}", "status": s.status, "basis": _m(s.basis),
        "achievement": _p(s.achievement), "amount": _m(s.amount), "approved_at": s.approved_at,
        "lines": [{
            "plan_id": x.plan_id, "plan": x.plan.name, "line": x.line, "kpi": x.kpi,
            "basis": _m(x.basis), "actual": None if x.actual is None else str(x.actual),
            "target": None if x.target is None else str(x.target),
            "achievement": _p(x.achievement), "tier": x.tier, "rate": str(x.rate.normalize()),
            "uncapped": _m(x.uncapped), "amount": _m(x.amount), "capped": x.capped,
            "note": x.note} for x in s.lines.all()],
    }


@router.get("/statements", response=StatementPage)
def statements(request: HttpRequest, q: Query[StatementsIn]) -> dict[str, Any]:
    qs = svc.statements_for(request.user, month=q.month, status=q.status,
                            department=q.department_id).prefetch_related("lines__plan")
    page = keyset_page(qs, ["employee__number", "id"], cursor=q.cursor, size=q.limit)
    return {"items": [_out(s) for s in page.items], "next_cursor": page.next_cursor}


@router.get("/statements/{statement_id}", response=StatementOut)
def statement(request: HttpRequest, statement_id: int) -> dict[str, Any]:
    return _out(svc.statement_detail(request.user, statement_id))
