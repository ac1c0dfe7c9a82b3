"""Achievement: how far a person or a department has come against its targets, how that
compares with the period before and a year earlier, where people rank, and the trend.

- achievement = actual / target for a KPI where higher is better, target / actual where lower
  is better (a first-response time of 30 minutes against a target of 60 is 200 %); None when
  either side is missing or the divisor is zero.
- pace = the share of the period's days elapsed up to and including today (1 once it is over),
  so "achievement ≥ pace" reads "on track".
- rankings share a rank on ties (1, 1, 3); people without a target rank after everyone with
  one when ranking by achievement, without a rank of their own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.money import format_cny
from weiying.core.scope import visible_employees
from weiying.org.models import Department, Employee
from weiying.performance import selectors
from weiying.performance.kpis import Evaluator, measures_for
from weiying.performance.models import Direction, Kpi, Target, Unit
from weiying.performance.selectors import Period
from weiying.performance.targets import targets_of

AMONG = ("team", "level", "company")
# Shown to someone without a target this month: what every rep is measured on.
DEFAULT_KPIS = ("signed_amount", "collected", "followups", "leads")
BY = ("achievement", "actual")


def ratio(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def achievement_of(kpi: Kpi, actual: Decimal | None, target: Decimal | None) -> Decimal | None:
    if kpi.direction == Direction.DOWN:
        return ratio(target, actual)
    return ratio(actual, target)


def change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    """Relative change (now − before) / before: month-on-month, year-on-year."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) / abs(before)


def pace(period: Period, today: dt.date | None = None) -> Decimal:
    today = today or timezone.localdate()
    if today < period.start:
        return Decimal(0)
    if today >= period.end:
        return Decimal(1)
    total = (period.end - period.start).days + 1
    return Decimal((today - period.start).days + 1) / Decimal(total)


def display(kpi: Kpi, value: Decimal | None) -> str:
    """A KPI value as people read it: ¥1,234.00, 12, 45 min, 35.0 %; "—" for none."""
    if value is None:
        return "—"
    if kpi.unit == Unit.MONEY:
        return format_cny(value)
    if kpi.unit == Unit.RATIO:
        return percent(value)
    if kpi.unit == Unit.SECONDS:
        minutes = (value / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        return _("%(n)s min") % {"n": minutes}
    if value == value.to_integral_value():
        return f"{value.quantize(Decimal(1)):,}"
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"


def percent(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{(value * 100).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"


def signed_percent(value: Decimal | None) -> str:
    if value is None:
        return "—"
    shown = percent(value)
    return shown if value < 0 else "+" + shown


def active_kpis() -> list[Kpi]:
    return list(Kpi.objects.filter(is_active=True))


@dataclass
class Line:
    """One KPI of one subject over one period."""

    kpi: Kpi
    actual: Decimal | None
    target: Decimal | None
    achievement: Decimal | None
    pace: Decimal
    previous: Decimal | None
    year_ago: Decimal | None

    @property
    def mom(self) -> Decimal | None:
        return change(self.actual, self.previous)

    @property
    def yoy(self) -> Decimal | None:
        return change(self.actual, self.year_ago)

    @property
    def on_track(self) -> bool | None:
        return None if self.achievement is None else self.achievement >= self.pace

    @property
    def shown(self) -> dict[str, str]:
        return {"actual": display(self.kpi, self.actual), "target": display(self.kpi, self.target),
                "achievement": percent(self.achievement), "pace": percent(self.pace),
                "mom": signed_percent(self.mom), "yoy": signed_percent(self.yoy),
                "previous": display(self.kpi, self.previous),
                "year_ago": display(self.kpi, self.year_ago)}

    @property
    def bar(self) -> int:
        """The achievement as a whole percentage for a progress bar, 0..100."""
        if self.achievement is None:
            return 0
        return max(0, min(100, int(self.achievement * 100)))


def card(user: Any, *, period: Period, employee: Employee | int | None = None,
         department: Department | int | None = None, line: str = "",
         kpis: list[Kpi] | None = None, today: dt.date | None = None) -> list[Line]:
    """Every KPI of one subject: actual, target, achievement, pace, MoM and YoY. Three reads
    of the figures (now, before, a year ago) and one of the targets."""
    kpis = kpis if kpis is not None else active_kpis()
    catalogue = {k.code: k for k in Kpi.objects.all()}
    subject = {"employee": employee} if employee is not None else {"department": department}
    wanted = measures_for([k.code for k in kpis], catalogue)
    figures = selectors.compare(user, period=period, line=line, measures=wanted, **subject)
    now, before, ago = (Evaluator(figures[key], catalogue)
                        for key in ("current", "previous", "year_ago"))
    targets = targets_of(user, period=period, line=line, **subject)
    step = pace(period, today)
    out = []
    for kpi in kpis:
        actual = now.value(kpi.code)
        target = targets[kpi.code].value if kpi.code in targets else None
        out.append(Line(kpi, actual, target, achievement_of(kpi, actual, target), step,
                        before.value(kpi.code), ago.value(kpi.code)))
    return out


# --- rankings ------------------------------------------------------------------------------------
@dataclass
class Ranked:
    employee: Employee
    actual: Decimal | None
    target: Decimal | None
    achievement: Decimal | None
    rank: int | None = None


def _people(user: Any, among: str, *, period: Period, department: Department | None,
            level: str) -> QuerySet[Employee]:
    visible = visible_employees(user)
    if among == "team":
        assert department is not None
        return (selectors.members(department, period).filter(pk__in=visible.values("pk"))
                .select_related("department"))
    qs = visible.select_related("department")
    if among == "level":
        qs = qs.filter(level=level)
    return qs


def ranking(user: Any, *, period: Period, kpi: Kpi, among: str = "team",
            department: Department | int | None = None, level: str = "",
            by: str = "achievement", line: str = "") -> list[Ranked]:
    """People ranked on one KPI over one period.

    - team: everyone who held a post in the department's subtree during the period (by the HR
      history), figures of zero included; their figures are what they did inside it.
    - level: everyone at `level` the viewer may see (the whole company for an all-seeing role).
    - company: everyone the viewer may see who has a figure or a target for the KPI (people
      outside sales would otherwise fill the bottom with zeros).
    """
    department = selectors.department_for(user, department)
    if among == "team" and department is None:
        raise ValueError("a team ranking needs a department")
    catalogue = {k.code: k for k in Kpi.objects.all()}
    wanted = measures_for([kpi.code], catalogue)
    figures = selectors.by_employee(user, period=period, line=line, measures=wanted,
                                    department=department if among == "team" else None)
    targets = dict(
        Target.objects.filter(kpi=kpi, kind=period.kind, start=period.start, line=line,
                              employee__isnull=False)
        .filter(employee__in=visible_employees(user)).values_list("employee_id", "value"))
    people = list(_people(user, among, period=period, department=department, level=level))
    if among == "company":
        people = [p for p in people if p.pk in figures or p.pk in targets]
    rows = []
    for person in people:
        actual = Evaluator(figures.get(person.pk, {}), catalogue).value(kpi.code)
        target = targets.get(person.pk)
        rows.append(Ranked(person, actual, target, achievement_of(kpi, actual, target)))
    return rank(rows, key="achievement" if by == "achievement" else "actual",
                lower_is_better=by == "actual" and kpi.direction == Direction.DOWN)


def rank(rows: list[Ranked], *, key: str, lower_is_better: bool = False) -> list[Ranked]:
    """Sort best first and number them; equal values share a rank (1, 1, 3); rows without a
    value come last, unranked."""
    valued = [r for r in rows if getattr(r, key) is not None]
    blank = [r for r in rows if getattr(r, key) is None]
    valued.sort(key=lambda r: (getattr(r, key) if lower_is_better else -getattr(r, key),
                               r.employee.number))
    blank.sort(key=lambda r: r.employee.number)
    previous: Decimal | None = None
    for position, row in enumerate(valued, start=1):
        value = getattr(row, key)
        row.rank = valued[position - 2].rank if position > 1 and value == previous else position
        previous = value
    return valued + blank


def rank_in_team(user: Any, *, employee: Employee, period: Period, kpi: Kpi,
                 line: str = "") -> tuple[int | None, int]:
    """(the employee's rank, team size) in their department by achievement (by actual when
    they have no target). Reads the department's figures with the employee's own view, so a
    rep sees their rank without seeing their colleagues' figures."""
    department = employee.department
    people = list(selectors.members(department, period).select_related("department"))
    catalogue = {k.code: k for k in Kpi.objects.all()}
    wanted = measures_for([kpi.code], catalogue)
    figures = selectors.by_employee(_System(), period=period, department=department,
                                    line=line, measures=wanted)
    targets = dict(Target.objects.filter(
        kpi=kpi, kind=period.kind, start=period.start, line=line,
        employee__in=[p.pk for p in people]).values_list("employee_id", "value"))
    rows = []
    for person in people:
        actual = Evaluator(figures.get(person.pk, {}), catalogue).value(kpi.code)
        target = targets.get(person.pk)
        rows.append(Ranked(person, actual, target, achievement_of(kpi, actual, target)))
    use_achievement = employee.pk in targets
    ranked = rank(rows, key="achievement" if use_achievement else "actual",
                  lower_is_better=not use_achievement and kpi.direction == Direction.DOWN)
    mine = next((r.rank for r in ranked if r.employee.pk == employee.pk), None)
    return mine, len(ranked)


class _System:
    """A reader who sees everything, for the one figure a rep may know about colleagues: their
    own place in the team (the rank, never the colleagues' numbers)."""

    is_authenticated = True
    is_active = True
    is_superuser = True
    pk = None


# --- trends --------------------------------------------------------------------------------------
def last_months(today: dt.date, count: int = 12) -> Period:
    end = Period.of(today)
    start = end
    for _i in range(count - 1):
        start = start.previous()
    return Period(start.start, end.end)


def trend(user: Any, *, kpis: list[Kpi], employee: Employee | int | None = None,
          department: Department | int | None = None, line: str = "",
          today: dt.date | None = None, months: int = 12) -> dict[str, Any]:
    """Monthly series for the last `months` months: {"months": [labels], "series": {code:
    [value or None]}, "targets": {code: [value or None]}}."""
    span = last_months(today or timezone.localdate(), months)
    catalogue = {k.code: k for k in Kpi.objects.all()}
    subject = {"employee": employee} if employee is not None else {"department": department}
    data = selectors.monthly(user, period=span, line=line,
                             measures=measures_for([k.code for k in kpis], catalogue),
                             **subject)
    keys = sorted(data)
    qs = Target.objects.filter(kind="month", start__in=keys, line=line,
                               kpi__in=kpis)
    if employee is not None:
        qs = qs.filter(employee_id=getattr(employee, "pk", employee))
    else:
        qs = qs.filter(department_id=getattr(department, "pk", department))
    goals = {(t.kpi_id, t.start): t.value for t in qs}
    series: dict[str, list[Any]] = {}
    targets: dict[str, list[Any]] = {}
    for kpi in kpis:
        values = []
        for m in keys:
            v = Evaluator(data[m], catalogue).value(kpi.code)
            values.append(None if v is None else float(v))
        series[kpi.code] = values
        targets[kpi.code] = [None if (g := goals.get((kpi.pk, m))) is None else float(g)
                             for m in keys]
    return {"months": [f"{m:%Y-%m}" for m in keys], "series": series, "targets": targets}
