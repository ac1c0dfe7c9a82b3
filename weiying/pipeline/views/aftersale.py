"""The after-sale page: repurchase reminders, upsell candidates and customer value, as tabs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext_lazy as _

from weiying.core.pagination import Page
from weiying.pipeline.selectors import aftersale as selectors
from weiying.web.errors import domain_errors

TABS = [
    ("repurchase", _("Repurchase due")),
    ("upsell", _("Upsell candidates")),
    ("value", _("Customer value")),
]
VALUE_SORT_LABELS = [
    ("-signed", _("Total signed")),
    ("-collected", _("Collected")),
    ("-outstanding", _("Outstanding")),
    ("-last_purchase", _("Last purchase")),
    ("-contracts", _("Contracts")),
    ("-open_tickets", _("Open tickets")),
]
WITHIN_CHOICES = [0, 7, 15, 30, 60, 90]


def _query(params: dict[str, Any]) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})


@login_required
@domain_errors
def aftersale(request: HttpRequest) -> HttpResponse:
    g = request.GET
    tab = g.get("tab", "repurchase")
    if tab not in dict(TABS):
        tab = "repurchase"
    cursor = g.get("after") or None
    params: dict[str, Any] = {"tab": tab}
    tabs = [(key, label, _query({"tab": key})) for key, label in TABS]
    context: dict[str, Any] = {"tab": tab, "tabs": tabs}

    page: Page
    if tab == "repurchase":
        within = int(g["within"]) if g.get("within", "").isdigit() else 30
        within = min(within, 365)
        params["within"] = within
        page = selectors.repurchase_due(request.user, within_days=within, cursor=cursor)
        context.update(within=within, within_choices=WITHIN_CHOICES)
    elif tab == "upsell":
        page = selectors.upsell_candidates(request.user, cursor=cursor)
    else:
        sort = g.get("sort", selectors.DEFAULT_VALUE_SORT)
        if sort not in selectors.VALUE_SORTS:
            sort = selectors.DEFAULT_VALUE_SORT
        params["sort"] = sort
        page = selectors.customer_value(request.user, sort=sort, cursor=cursor)
        context.update(sort=sort, sorts=VALUE_SORT_LABELS)

    context.update(
        page=page,
        first_url=_query(params),
        next_url=_query({**params, "after": page.next_cursor}) if page.next_cursor else "",
        is_later_page=bool(cursor),
    )
    return render(request, "pipeline/aftersale.html", context)


urlpatterns = [
    path("aftersale/", aftersale, name="aftersale"),
]
