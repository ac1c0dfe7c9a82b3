"""The demo company's targets and commission plan, so the performance pages have something to
measure against: each rep's monthly targets for the signed amount, cash collected and leads, a
tenth above what they averaged over the history (rounded to ¥1,000), each department's the sum
of its people's (so the bottom-up check balances), for the twelve months before today and this
month; and one banded commission plan on cash collected.

Written in bulk like the rest of the demo's history (one audit row says the demo made it);
the plan goes through the commissions service, which checks its tiers.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from decimal import ROUND_CEILING, Decimal

from django.db.models import Sum

from weiying.core import tree
from weiying.org.models import Department, Employee
from weiying.performance.models import DailyFact, Kpi, Target

# KPI → (measure, how a target is rounded up)
TARGETED = {"signed_amount": ("signed_amount", Decimal("100000")),
            "collected": ("collected", Decimal("100000")),
            "leads": ("leads", Decimal("1"))}
STRETCH = Decimal("1.1")


def _months(today: dt.date, back: int) -> list[tuple[dt.date, dt.date]]:
    out = []
    year, month = today.year, today.month
    for _ in range(back + 1):
        out.append((dt.date(year, month, 1),
                    dt.date(year, month, calendar.monthrange(year, month)[1])))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def seed(today: dt.date, *, history_months: int) -> dict[str, int]:
    kpis = {k.code: k for k in Kpi.objects.filter(code__in=TARGETED)}
    months = _months(today, 12)
    people = {e.pk: e for e in Employee.objects.filter(role__code="rep").only(
        "pk", "department_id")}
    paths = dict(Department.objects.values_list("pk", "path"))
    rows: list[Target] = []
    for code, (measure, step) in TARGETED.items():
        totals = dict(DailyFact.objects.filter(measure=measure, line="",
                                               employee_id__in=list(people))
                      .values_list("employee_id").annotate(v=Sum("value")))
        per_department: dict[tuple[int, dt.date], Decimal] = defaultdict(Decimal)
        for pk, total in totals.items():
            average = Decimal(total) / history_months
            if code != "leads":
                average /= 100  # fen → yuan
            value = (average * STRETCH / step).to_integral_value(ROUND_CEILING) * step
            if value <= 0:
                continue
            employee = people[pk]
            for start, end in months:
                rows.append(Target(kpi=kpis[code], kind="month", start=start, end=end,
                                   employee=employee, holder_id=employee.department_id,
                                   value=value, note="demo"))
                for ancestor in tree.ancestor_ids(paths[employee.department_id]):
                    per_department[(ancestor, start)] += value
        ends = dict(months)
        rows += [Target(kpi=kpis[code], kind="month", start=start, end=ends[start],
                        department_id=dept, holder_id=dept, value=value, note="demo")
                 for (dept, start), value in per_department.items()]
    Target.objects.bulk_create(rows, batch_size=5000)
    return {"targets": len(rows), "plans": _plan(today)}


def _plan(today: dt.date) -> int:
    from weiying.performance import commissions

    admin = (Employee.objects.filter(role__code="admin", user__isnull=False)
             .select_related("user").first())
    if admin is None:
        return 0
    commissions.save_plan(
        actor=admin.user, name="销售提成（按回款，超额累进）", basis="collected",
        accumulation="banded", valid_from=dt.date(today.year - 1, 1, 1), tiers=[
            {"from_pct": "0", "to_pct": "80", "rate": "2"},
            {"from_pct": "80", "to_pct": "100", "rate": "3"},
            {"from_pct": "100", "to_pct": "", "rate": "5"}])
    return 1
