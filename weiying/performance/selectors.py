"""Reads of the performance figures, always through the data scope.

Every function returns raw summed measures ({measure: int} in fen, seconds or counts) for a
slice — a department's subtree, an employee, a product line — over a `Period`; KPIs are
evaluated from them with `weiying.performance.kpis.Evaluator`. A department's figures over
whole months come from its subtree months when it is near the top of the tree (a few rows a
month), else from the department months (one range over the tree path); anything finer from
the daily facts. All three hold the same sums, which the tests check.

A department's figure is the facts of the people who were in its subtree on each day (the HR
history), so someone who transferred mid-month counts in each department for their days there.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Q, QuerySet, Sum, When
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.scope import data_scope_of, scoped, visible_employees
from weiying.org.choices import DataScope
from weiying.org.models import Assignment, Department, Employee
from weiying.performance.models import SUBTREE_DEPTH, DailyFact, DepartmentMonth, SubtreeMonth

Raw = dict[str, int]


@dataclass(frozen=True)
class Period:
    """A span of whole days, both ends included."""

    start: dt.date
    end: dt.date
    kind: str = "days"  # month | quarter | year | days

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        last = calendar.monthrange(year, month)[1]
        return cls(dt.date(year, month, 1), dt.date(year, month, last), "month")

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        first = 3 * (quarter - 1) + 1
        last = calendar.monthrange(year, first + 2)[1]
        return cls(dt.date(year, first, 1), dt.date(year, first + 2, last), "quarter")

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31), "year")

    @classmethod
    def of(cls, day: dt.date, kind: str = "month") -> Period:
        if kind == "quarter":
            return cls.quarter(day.year, (day.month - 1) // 3 + 1)
        if kind == "year":
            return cls.year(day.year)
        return cls.month(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Period:
        """'2026-03', '2026-Q1' or '2026' (as target files and URLs write periods)."""
        raw = (text or "").strip().upper()
        try:
            if len(raw) == 4:
                return cls.year(int(raw))
            if len(raw) == 7 and raw[4:6] == "-Q" and raw[6] in "1234":
                return cls.quarter(int(raw[:4]), int(raw[6]))
            if len(raw) in (6, 7) and raw[4] == "-":
                return cls.month(int(raw[:4]), int(raw[5:]))
        except ValueError:
            pass
        raise ValidationFailed(
            _("%(text)s is not a period; write a month (2026-03), a quarter (2026-Q1) or a year "
              "(2026).") % {"text": text}, field="period")

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start:%Y-%m-%d}…{self.end:%Y-%m-%d}"

    @property
    def whole_months(self) -> bool:
        return (self.start.day == 1
                and self.end.day == calendar.monthrange(self.end.year, self.end.month)[1])

    def contains(self, other: Period) -> bool:
        return self.start <= other.start and other.end <= self.end

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end

    def previous(self) -> Period:
        """The period just before (month-on-month, quarter-on-quarter…)."""
        if self.kind in ("month", "quarter", "year"):
            return Period.of(self.start - dt.timedelta(days=1), self.kind)
        length = self.end - self.start
        end = self.start - dt.timedelta(days=1)
        return Period(end - length, end)

    def year_ago(self) -> Period:
        def back(day: dt.date) -> dt.date:
            try:
                return day.replace(year=day.year - 1)
            except ValueError:  # 29 February
                return day.replace(year=day.year - 1, day=28)
        if self.kind in ("month", "quarter", "year"):
            return Period.of(back(self.start), self.kind)
        return Period(back(self.start), back(self.end))

    def days(self) -> list[dt.date]:
        """Every day of the period. Reads of the daily facts name them (day IN …) rather than
        a range: each (measure, day) is then one range of the slice index over a subtree."""
        return [self.start + dt.timedelta(days=i)
                for i in range((self.end - self.start).days + 1)]

    def months(self) -> list[dt.date]:
        out, day = [], self.start.replace(day=1)
        while day <= self.end:
            out.append(day)
            day = (day + dt.timedelta(days=32)).replace(day=1)
        return out


# --- what the viewer may read ------------------------------------------------------------------
def _in_view(user: Any, kind: str, pk: int, queryset: QuerySet, message: str) -> Any:
    """The row of `queryset` (the viewer's view) with this pk, else NotFound; checked once per
    user object (a request's), because a dashboard asks for the same one in every figure."""
    seen: dict[int, Any] = user.__dict__.setdefault(f"_weiying_perf_{kind}", {})
    if pk not in seen:
        found = queryset.filter(pk=pk).first()
        if found is None:
            raise NotFound(message)
        seen[pk] = found
    return seen[pk]


def department_for(user: Any, department: Department | int | None) -> Department | None:
    """The department, if the viewer may see its figures; NotFound otherwise."""
    if department is None:
        return None
    from weiying.org.selectors import visible_departments

    pk = department.pk if isinstance(department, Department) else int(department)
    return _in_view(user, "departments", pk, visible_departments(user),
                    _("No department with that id is in your view."))


def employee_for(user: Any, employee: Employee | int | None) -> Employee | None:
    if employee is None:
        return None
    pk = employee.pk if isinstance(employee, Employee) else int(employee)
    return _in_view(user, "employees", pk,
                    visible_employees(user).select_related("department"),
                    _("No employee with that id is in your view."))


def _facts(user: Any, period: Period, *, department: Department | None,
           employee: Employee | None, line: str, measures: Iterable[str] | None) -> QuerySet:
    qs = scoped(DailyFact.objects.filter(day__in=period.days(), line=line), user)
    if department is not None:
        qs = qs.filter(tree.subtree_q("department_path", department.path))
    if employee is not None:
        qs = qs.filter(employee_id=employee.pk)
    if measures is not None:
        qs = qs.filter(measure__in=list(measures))
    return qs


def _months(user: Any, period: Period, *, department: Department | None, line: str,
            measures: Iterable[str] | None) -> QuerySet | None:
    """Department months for the slice, or None when the daily facts must answer (a period
    that is not whole months, or a viewer whose scope is narrower than departments)."""
    if not period.whole_months or data_scope_of(user) not in (DataScope.ALL, DataScope.SUBTREE):
        return None
    qs = scoped(DepartmentMonth.objects.filter(month__gte=period.start, month__lte=period.end,
                                               line=line), user)
    if department is not None:
        qs = qs.filter(tree.subtree_q("department_path", department.path))
    if measures is not None:
        qs = qs.filter(measure__in=list(measures))
    return qs


def _subtrees(user: Any, period: Period, *, departments: list[Department] | None,
              line: str | None, measures: Iterable[str] | None) -> QuerySet | None:
    """The subtree months of these departments (None: the whole company, through its roots)
    for one product line ('' for all lines together, None for every line on its own); or
    None when they do not all have them (one deeper than SUBTREE_DEPTH) or the department
    months would not answer either. The departments are in the viewer's view
    (department_for), so their subtrees are too."""
    if not period.whole_months:
        return None
    scope = data_scope_of(user)
    if departments is None:
        if scope != DataScope.ALL:
            return None
        qs = SubtreeMonth.objects.filter(depth=1)
    else:
        if (not departments or scope not in (DataScope.ALL, DataScope.SUBTREE)
                or any(tree.depth(d.path) > SUBTREE_DEPTH for d in departments)):
            return None
        qs = SubtreeMonth.objects.filter(department_id__in=[d.pk for d in departments])
    qs = qs.filter(month__gte=period.start, month__lte=period.end)
    qs = scoped(qs.exclude(line="") if line is None else qs.filter(line=line), user)
    if measures is not None:
        qs = qs.filter(measure__in=list(measures))
    return qs


def _rolled(user: Any, period: Period, *, department: Department | None, line: str,
            measures: Iterable[str] | None) -> QuerySet | None:
    """The month rows that answer for a department (or the company): its subtree months, else
    the department months; None when only the daily facts can."""
    qs = _subtrees(user, period, departments=[department] if department else None, line=line,
                   measures=measures)
    if qs is None:
        qs = _months(user, period, department=department, line=line, measures=measures)
    return qs


def _sum_by(qs: QuerySet, *keys: str) -> list[dict[str, Any]]:
    return list(qs.order_by().values(*keys).annotate(v=Sum("value")))


def totals(user: Any, *, period: Period, department: Department | int | None = None,
           employee: Employee | int | None = None, line: str = "",
           measures: Iterable[str] | None = None) -> Raw:
    department = department_for(user, department)
    employee = employee_for(user, employee)
    qs = None if employee is not None else _rolled(user, period, department=department,
                                                   line=line, measures=measures)
    if qs is None:
        qs = _facts(user, period, department=department, employee=employee, line=line,
                    measures=measures)
    return {row["measure"]: int(row["v"] or 0) for row in _sum_by(qs, "measure")}


def compare(user: Any, *, period: Period, today: dt.date | None = None,
            **slice_: Any) -> dict[str, Raw]:
    """The slice's figures now, the period before (MoM/QoQ) and a year earlier (YoY). While
    the period is still running, the two it is compared with are cut to the same number of
    days (this month to date against the same days of last month), so a month four days old
    is not set against a whole one."""
    previous, year_ago = period.previous(), period.year_ago()
    today = today or timezone.localdate()
    if period.start <= today < period.end:
        elapsed = today - period.start
        previous = Period(previous.start, min(previous.start + elapsed, previous.end))
        year_ago = Period(year_ago.start, min(year_ago.start + elapsed, year_ago.end))
    return {"current": totals(user, period=period, **slice_),
            "previous": totals(user, period=previous, **slice_),
            "year_ago": totals(user, period=year_ago, **slice_)}


def by_employee(user: Any, *, period: Period, department: Department | int | None = None,
                line: str = "", measures: Iterable[str] | None = None,
                employees: Iterable[int] | None = None) -> dict[int, Raw]:
    """{employee id: figures} for everyone with facts in the slice (in the viewer's scope),
    or for these employees of it."""
    department = department_for(user, department)
    qs = _facts(user, period, department=department, employee=None, line=line,
                measures=measures)
    if employees is not None:
        qs = qs.filter(employee_id__in=list(employees))
    out: dict[int, Raw] = defaultdict(dict)
    for row in _sum_by(qs, "employee_id", "measure"):
        out[row["employee_id"]][row["measure"]] = int(row["v"] or 0)
    return dict(out)


def top_employees(user: Any, *, period: Period, department: Department | int | None = None,
                  line: str = "", measures: Iterable[str], by: Iterable[str],
                  limit: int = 10) -> list[int]:
    """The ids of the `limit` people with facts of `measures` in the slice who have the most
    of the first measure of `by`, then of the next…, then the lowest id (in the viewer's
    scope). The ranking is one aggregate in the database: a subtree of 10,000 people ranks
    without its figures coming to Python."""
    department = department_for(user, department)
    keys = list(by)
    qs = _facts(user, period, department=department, employee=None, line=line,
                measures=sorted(set(measures) | set(keys)))
    sums = {f"rank_{i}": Sum(Case(When(measure=m, then="value"), default=0))
            for i, m in enumerate(keys)}
    rows = (qs.order_by().values("employee_id").annotate(**sums)
            .order_by(*[f"-rank_{i}" for i in range(len(keys))], "employee_id")[:limit])
    return [row["employee_id"] for row in rows]


def by_child(user: Any, *, period: Period, department: Department | int, line: str = "",
             measures: Iterable[str] | None = None) -> dict[int, Raw]:
    """{child department id: its subtree's figures}; the department's own members (not in any
    child) under the department's own id."""
    department = department_for(user, department)
    assert department is not None
    kids = list(Department.objects.filter(parent=department))
    children = {c.path: c.pk for c in kids}
    below = _subtrees(user, period, departments=kids, line=line, measures=measures)
    own = _months(user, period, department=None, line=line, measures=measures)
    if below is not None and own is not None:
        out = {}
        for row in _sum_by(below, "department_id", "measure"):
            out.setdefault(row["department_id"], {})[row["measure"]] = int(row["v"] or 0)
        for row in _sum_by(own.filter(department_id=department.pk), "measure"):
            out.setdefault(department.pk, {})[row["measure"]] = int(row["v"] or 0)
        return out
    qs = _months(user, period, department=department, line=line, measures=measures)
    if qs is None:
        qs = _facts(user, period, department=department, employee=None, line=line,
                    measures=measures)
    width = len(department.path) + tree.SEGMENT
    out: dict[int, Raw] = defaultdict(dict)
    for row in _sum_by(qs, "department_path", "measure"):
        key = children.get(row["department_path"][:width], department.pk)
        bucket = out[key]
        bucket[row["measure"]] = bucket.get(row["measure"], 0) + int(row["v"] or 0)
    return dict(out)


def monthly(user: Any, *, period: Period, department: Department | int | None = None,
            employee: Employee | int | None = None, line: str = "",
            measures: Iterable[str] | None = None) -> dict[dt.date, Raw]:
    """{first of month: figures} over the period (a trend line)."""
    department = department_for(user, department)
    employee = employee_for(user, employee)
    out: dict[dt.date, Raw] = {m: {} for m in period.months()}
    qs = None if employee is not None else _rolled(user, period, department=department,
                                                   line=line, measures=measures)
    if qs is not None:
        rows = _sum_by(qs, "month", "measure")
        key = "month"
    else:
        qs = _facts(user, period, department=department, employee=employee, line=line,
                    measures=measures).annotate(m=TruncMonth("day"))
        rows = _sum_by(qs, "m", "measure")
        key = "m"
    for row in rows:
        month = row[key]
        month = month.date() if isinstance(month, dt.datetime) else month
        out.setdefault(month, {})[row["measure"]] = int(row["v"] or 0)
    return out


def daily(user: Any, *, period: Period, department: Department | int | None = None,
          employee: Employee | int | None = None, line: str = "",
          measures: Iterable[str] | None = None) -> dict[dt.date, Raw]:
    department = department_for(user, department)
    employee = employee_for(user, employee)
    qs = _facts(user, period, department=department, employee=employee, line=line,
                measures=measures)
    out: dict[dt.date, Raw] = defaultdict(dict)
    for row in _sum_by(qs, "day", "measure"):
        out[row["day"]][row["measure"]] = int(row["v"] or 0)
    return dict(out)


def by_line(user: Any, *, period: Period, department: Department | int | None = None,
            employee: Employee | int | None = None,
            measures: Iterable[str] | None = None) -> dict[str, Raw]:
    """{product line: figures} for the measures kept per line."""
    department = department_for(user, department)
    employee = employee_for(user, employee)
    qs = None if employee is not None else _subtrees(
        user, period, departments=[department] if department else None, line=None,
        measures=measures)
    if qs is None:
        qs = scoped(DailyFact.objects.filter(day__in=period.days()).exclude(line=""), user)
        if department is not None:
            qs = qs.filter(tree.subtree_q("department_path", department.path))
        if employee is not None:
            qs = qs.filter(employee_id=employee.pk)
    if measures is not None:
        qs = qs.filter(measure__in=list(measures))
    out: dict[str, Raw] = defaultdict(dict)
    for row in _sum_by(qs, "line", "measure"):
        out[row["line"]][row["measure"]] = int(row["v"] or 0)
    return dict(out)


def members(department: Department, period: Period) -> QuerySet[Employee]:
    """Everyone who held a post in the department's subtree on some day of the period (by
    the HR history), whether or not they have facts: the people a ranking must list."""
    held = Assignment.objects.filter(
        tree.subtree_q("department__path", department.path),
        starts_on__lte=period.end,
    ).filter(Q(ends_on__isnull=True) | Q(ends_on__gt=period.start))
    return Employee.objects.filter(pk__in=held.values("employee_id"))
