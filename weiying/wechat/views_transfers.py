"""The departure transfers page (离职继承): what WeCom was asked to move to whom, failures
first with WeCom's reason, for the managers whose people took the customers over."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from weiying.web.errors import domain_errors
from weiying.web.lists import list_page
from weiying.wechat import departure
from weiying.wechat.choices import TransferStatus

SORTS = {"failed": ["failed_first", "-requested_at", "-id"]}


@login_required
@domain_errors
def transfer_list(request: HttpRequest) -> HttpResponse:
    qs = departure.transfers_for(request.user)
    status = request.GET.get("status", "")
    if status in TransferStatus.values:
        qs = qs.filter(status=status)
    state = list_page(request, qs, sorts=SORTS, default="failed")
    rows = [{"transfer": t, "reason": departure.reason_text(t.error)} for t in state.page.items]
    return render(request, "wechat/transfer_list.html", {
        "state": state, "rows": rows, "statuses": TransferStatus.choices,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(),
    })


urlpatterns = [
    path("transfers/", transfer_list, name="transfer_list"),
]
