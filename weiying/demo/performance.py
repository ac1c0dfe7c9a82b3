"""The demo company's targets, commission plan and marketing spend, so the performance pages
have something to measure against and channel economics a cost to divide by: each rep's
monthly targets for the signed amount, cash collected and leads, a
tenth above what they averaged over the history (rounded to ¥1,000), each department's the sum
of its people's (so the bottom-up check balances), for the twelve months before today and this
month; and one banded commission plan on cash collected.

The spend is a month's leads of each paid channel times what a lead costs there (±15 %),
recorded without vouchers like the rest of the history; `weiying open-books` books them.

Written in bulk like the rest of the demo's history (one audit row says the demo made it);
the plan goes through the commissions service, which checks its tiers.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from decimal import ROUND_CEILING, Decimal

from django.db import models
from django.db.models import Sum

from weiying.core import tree
from weiying.org.models import Department, Employee
from weiying.performance.models import DailyFact, Kpi, Target

# KPI → (measure, how a target is rounded up)
TARGETED = {"signed_amount": ("signed_amount", Decimal("1000")),
            "collected": ("collected", Decimal("1000")),
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
    return {"targets": len(rows), "plans": _plan(today), "spends": _spend(today)}


# What a lead costs per channel, in yuan (the demo's channels; others cost nothing).
LEAD_COST = {"百度推广": 180, "抖音": 120, "巨量引擎": 150, "官网表单": 60, "公众号": 40,
             "企业微信": 20, "400热线": 80, "展会·": 600}


def _spend(today: dt.date) -> int:
    """Each paid channel's month of spend, split over the regions (the departments below the
    top) by the leads each brought in, so a regional director sees what their leads cost."""
    import random

    from django.db.models.functions import TruncMonth

    from weiying.finance.models import MarketingSpend
    from weiying.pipeline.models import Lead

    rng = random.Random(7)
    width = 2 * tree.SEGMENT
    regions = dict(Department.objects.filter(depth__lte=2).values_list("path", "pk"))
    per_month = (Lead.objects.exclude(channel="").annotate(m=TruncMonth("created_at"))
                 .values_list("channel", "m", "department__path").annotate(n=models.Count("pk"))
                 .order_by("m", "channel", "department__path"))
    leads: dict[tuple[str, dt.date, int | None], int] = defaultdict(int)
    for channel, month, path, n in per_month:
        month = month.date() if isinstance(month, dt.datetime) else month
        leads[(channel, month, regions.get((path or "")[:width]))] += n
    rows = []
    for (channel, month, region), n in sorted(leads.items(), key=lambda kv: (
            kv[0][1], kv[0][0], kv[0][2] or 0)):
        cost = next((c for prefix, c in LEAD_COST.items() if channel.startswith(prefix)), 0)
        if not cost or month > today:
            continue
        amount = Decimal(round(n * cost * rng.uniform(0.85, 1.15), -2))
        if amount > 0:
            rows.append(MarketingSpend(channel=channel, spent_on=month, amount=amount,
                                       department_id=region, note="demo"))
    MarketingSpend.objects.bulk_create(rows)
    return len(rows)


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
