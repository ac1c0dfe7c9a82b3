"""Shared helpers for the targets and achievement tests: daily facts written directly (the
facts' own tests prove how records become facts), with the department months summed from
them as the rebuild does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Sum
from django.db.models.functions import TruncMonth

from weiying.performance.models import DailyFact, DepartmentMonth


def put_facts(rows: list[tuple[Any, dt.date, str, int]], *, line: str = "") -> None:
    """(employee, day, measure, raw value) each, attributed to the employee's department."""
    DailyFact.objects.bulk_create([
        DailyFact(day=day, employee=e, department=e.department,
                  department_path=e.department.path, measure=measure, line=line, value=value)
        for e, day, measure, value in rows])
    DepartmentMonth.objects.all().delete()
    months = (DailyFact.objects.annotate(m=TruncMonth("day")).order_by()
              .values("department_id", "department_path", "m", "measure", "line")
              .annotate(v=Sum("value")))
    DepartmentMonth.objects.bulk_create([
        DepartmentMonth(department_id=r["department_id"], department_path=r["department_path"],
                        month=r["m"].date() if isinstance(r["m"], dt.datetime) else r["m"],
                        measure=r["measure"], line=r["line"], value=r["v"])
        for r in months])
