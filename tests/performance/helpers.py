"""Shared helpers for the targets and achievement tests: daily facts written directly (the
facts' own tests prove how records become facts), with the department and subtree months
summed from them as the rebuild does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from weiying.performance import facts
from weiying.performance.models import DailyFact


def put_facts(rows: list[tuple[Any, dt.date, str, int]], *, line: str = "") -> None:
    """(employee, day, measure, raw value) each, attributed to the employee's department."""
    DailyFact.objects.bulk_create([
        DailyFact(day=day, month=day.replace(day=1), employee=e, department=e.department,
                  department_path=e.department.path, measure=measure, line=line, value=value)
        for e, day, measure, value in rows])
    facts.resum()
