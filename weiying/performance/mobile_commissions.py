"""Phone pages (WeUI) of one's own commission: the statements month by month, and one
statement with its lines. Everyone sees only their own here (a manager's team is on the
desk)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from weiying.core.permissions import employee_of
from weiying.performance import commissions as svc
from weiying.performance.models import CommissionStatement
from weiying.web.errors import domain_errors


def _mine(request: HttpRequest) -> QuerySet[CommissionStatement]:
    me = employee_of(request.user)
    if me is None:
        return CommissionStatement.objects.none()
    return svc.statements_for(request.user).filter(employee_id=me.pk)


@login_required
@domain_errors
def mobile_commissions(request: HttpRequest) -> HttpResponse:
    statements = list(_mine(request).order_by("-month")[:24])
    return render(request, "mobile/performance_commission_list.html",
                  {"statements": statements})


@login_required
@domain_errors
def mobile_commission_detail(request: HttpRequest, pk: int) -> HttpResponse:
    statement = _mine(request).filter(pk=pk).first()
    if statement is None:
        raise Http404
    return render(request, "mobile/performance_commission_detail.html",
                  {"statement": statement, "lines": svc.lines_of(statement)})


urlpatterns = [
    path("commissions/", mobile_commissions, name="commission_list"),
    path("commissions/<int:pk>/", mobile_commission_detail, name="commission_detail"),
]
