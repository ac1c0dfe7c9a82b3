"""Phone pages (WeUI) of the performance layer: "my targets" for every rep (this month's KPIs
against target, the pace, the rank in the team) and "my team" for managers (members'
achievement, sortable, each drilling to the member's own page)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.errors import PermissionDenied
from weiying.core.permissions import employee_of
from weiying.org.models import Employee
from weiying.performance import achievement, selectors
from weiying.performance.achievement import DEFAULT_KPIS, display, percent
from weiying.performance.models import Kpi
from weiying.performance.selectors import Period
from weiying.performance.targets import targets_of
from weiying.performance.views import sees_departments
from weiying.web.errors import domain_errors

SORTS = ("achievement", "actual", "name")


def _lines(request: HttpRequest, employee: Employee, period: Period) -> list[Any]:
    """The KPIs that carry a target this month (the defaults when none does), with the
    person's rank in the team on each."""
    user = request.user
    goals = targets_of(user, period=period, employee=employee)
    chosen = [k for k in Kpi.objects.filter(is_active=True)
              if k.code in goals] or list(Kpi.objects.filter(code__in=DEFAULT_KPIS))
    lines = achievement.card(user, period=period, employee=employee, kpis=chosen)
    for line in lines:
        line.rank, line.team_size = achievement.rank_in_team(user, employee=employee,
                                                             period=period, kpi=line.kpi)
    return lines


def _member_page(request: HttpRequest, employee: Employee, *, own: bool) -> HttpResponse:
    period = Period.of(timezone.localdate())
    return render(request, "mobile/performance_mine.html", {
        "employee": employee, "period": period, "own": own,
        "pace": percent(achievement.pace(period)),
        "lines": _lines(request, employee, period),
    })


@login_required
@domain_errors
def my_targets(request: HttpRequest) -> HttpResponse:
    me = employee_of(request.user)
    if me is None:
        return render(request, "mobile/performance_mine.html", {"no_employee": True})
    return _member_page(request, me, own=True)


@login_required
@domain_errors
def member(request: HttpRequest, pk: int) -> HttpResponse:
    employee = selectors.employee_for(request.user, pk)
    return _member_page(request, employee, own=employee.pk == getattr(
        employee_of(request.user), "pk", None))


@login_required
@domain_errors
def my_team(request: HttpRequest) -> HttpResponse:
    user = request.user
    me = employee_of(user)
    if me is None or not sees_departments(user):
        raise PermissionDenied(_("My team is for managers; your own figures are under My "
                                 "targets."))
    period = Period.of(timezone.localdate())
    kpis = list(Kpi.objects.filter(is_active=True))
    code = request.GET.get("kpi") or "signed_amount"
    kpi = next((k for k in kpis if k.code == code), kpis[0])
    sort = request.GET.get("sort") if request.GET.get("sort") in SORTS else "achievement"
    rows = achievement.ranking(user, period=period, kpi=kpi, among="team",
                               department=me.department,
                               by="actual" if sort == "actual" else "achievement")
    rows = [r for r in rows if r.employee.pk != me.pk]
    if sort == "name":
        rows.sort(key=lambda r: r.employee.number)
    for r in rows:
        r.shown = {"actual": display(kpi, r.actual), "target": display(kpi, r.target),
                   "achievement": percent(r.achievement)}
        r.bar = 0 if r.achievement is None else max(0, min(100, int(r.achievement * 100)))
    return render(request, "mobile/performance_team.html", {
        "department": me.department, "period": period, "kpi": kpi, "kpis": kpis,
        "sort": sort, "rows": rows, "pace": percent(achievement.pace(period)),
    })


urlpatterns = [
    path("performance/", my_targets, name="performance_mine"),
    path("performance/team/", my_team, name="performance_team"),
    path("performance/member/<int:pk>/", member, name="performance_member"),
]
