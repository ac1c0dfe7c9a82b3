"""The dashboard pages: /reports/dashboard/ opens the viewer's own role's dashboard,
/reports/dashboard/<role>/ another one they may open (a director's view of a team, their own
month). ?period=2026-03|2026-Q1|2026 and ?department=<id> choose the slice (inside the
viewer's scope); ?table=<name>&export=xlsx|csv downloads one of the page's tables."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.errors import NotFound, ValidationFailed
from weiying.performance.selectors import Period
from weiying.reports import dashboards
from weiying.reports.desk import table_links
from weiying.web.errors import domain_errors
from weiying.web.exports import table_response, wants_export


def _period(request: HttpRequest) -> Period:
    text = request.GET.get("period", "").strip()
    return Period.parse(text) if text else Period.of(timezone.localdate())


def _department(request: HttpRequest) -> int | None:
    raw = request.GET.get("department", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationFailed(_("%(value)s is not a department id; pick a department from "
                                 "the list.") % {"value": raw}, field="department")
    return int(raw)


def _page(request: HttpRequest, role: str) -> HttpResponse:
    try:
        period = _period(request)
        department = _department(request)
    except ValidationFailed as exc:
        return render(request, "reports/dashboard.html", {"error": str(exc.message),
                                                          "role": role}, status=400)
    board = dashboards.build(request.user, role, period=period, department=department)
    fmt = wants_export(request)
    if fmt:
        table = board.table(request.GET.get("table", ""))
        if table is None:
            raise NotFound(_("This dashboard has no table of that name."))
        return table_response(request, name=f"dashboard-{role}-{table.name}",
                              what=f"reports.dashboard.{role}.{table.name}",
                              headers=table.headers, rows=table.export_rows(), fmt=fmt)
    switch = [{"role": r, "label": dashboards.ROLE_LABELS[r],
               "url": reverse("reports:dashboard_role", args=[r]), "active": r == role}
              for r in dashboards.roles_for(request.user)]
    return render(request, "reports/dashboard.html", {
        "board": board, "role": role, "switch": switch if len(switch) > 1 else [],
        "period_text": request.GET.get("period", "") or period.label,
        "tables": [{"table": t, "links": table_links(request, t.name)} for t in board.tables],
        "charts": [{"chart": c, "id": f"chart-{c.name}"} for c in board.charts],
    })


@login_required
@domain_errors
def dashboard(request: HttpRequest) -> HttpResponse:
    return _page(request, dashboards.role_for(request.user))


@login_required
@domain_errors
def dashboard_role(request: HttpRequest, role: str) -> HttpResponse:
    return _page(request, role)


urlpatterns: list[Any] = [
    path("dashboard/", dashboard, name="dashboard"),
    path("dashboard/<slug:role>/", dashboard_role, name="dashboard_role"),
]
