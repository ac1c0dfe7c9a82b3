"""The customer value desk page (/reports/customers/): headline figures compared, RFM segments,
the repurchase triangle with lifetime value, churn risk, products past their life cycle and
upsell candidates; and the whole lists behind them (/reports/customers/list/), paged and
exportable. Seeing needs reports.view; everything is the viewer's scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core.errors import ValidationFailed
from weiying.core.pagination import Page
from weiying.core.permissions import require
from weiying.reports import customer_value as cv
from weiying.reports.desk import FilterForm, chart, drill_query, table_links
from weiying.reports.filters import Filters, add_months, month_start, parse
from weiying.web.errors import domain_errors
from weiying.web.exports import export_links, table_response, wants_export

TABLES = ("headline", "segments", "cohorts", "companions")
LISTS = ("segment", "churn", "lifecycle", "upsell", "customers", "cohort")
SHOWN = 10  # rows of each list on the desk page; the list page holds them all
HEADLINE_LISTS = {"buyers": "buyers", "signed": "buyers", "per_buyer": "buyers",
                  "returning": "returning", "returning_share": "returning",
                  "lifetime_value": "to_date"}


def default_start() -> dt.date:
    """Twelve months up to today by default."""
    return add_months(month_start(timezone.localdate()), -11)


def _filters(request: HttpRequest) -> Filters:
    return parse(request.user, request.GET, default_start=default_start())


def _form(request: HttpRequest) -> FilterForm:
    return FilterForm(request.GET, user=request.user, source=False, pipeline=False)


def _base(f: Filters) -> dict[str, str]:
    return {k: v for k, v in f.query().items() if k != "pipeline"}


def _list_url(base: dict[str, str], **params: Any) -> str:
    return reverse("reports:customer_value_list") + drill_query(base, **params)


def _int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    if not raw.lstrip("-").isdigit():
        raise ValidationFailed(_("%(value)s is not a whole number.") % {"value": raw},
                               field=name)
    return int(raw)


def _month(raw: str) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(f"{raw}-01")
    except ValueError:
        raise ValidationFailed(_("%(value)s is not a month; write it as YYYY-MM.")
                               % {"value": raw}, field="cohort") from None


# --- tables ------------------------------------------------------------------------------------
def _headline_table(figures: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    return ([_("Figure"), _("This period"), _("Previous period"), _("Change (%)"),
             _("A year earlier"), _("Change (%)")],
            [[f.label, f.value, f.previous, f.mom, f.year_ago, f.yoy] for f in figures])


def _segment_table(report: cv.RFMReport) -> tuple[list[Any], list[list[Any]]]:
    return ([_("Segment"), _("Code"), _("Customers"), _("Share of customers (%)"),
             _("Signed amount")],
            [[s.name, s.code.upper(), s.customers, s.share, s.amount] for s in report.segments])


def _cohort_table(report: cv.CohortReport) -> tuple[list[Any], list[list[Any]]]:
    heads = [_("First month"), _("Customers"), _("Bought again (%)"),
             _("Lifetime value to date"),
             *[_("Month %(k)s (%%)") % {"k": k} for k in range(1, report.width + 1)]]
    return heads, [[c.month.strftime("%Y-%m"), c.customers, c.again_share, c.lifetime_value,
                    *[p for _n, p in c.cells]] for c in report.cohorts]


def _companion_table(rows: list[Any]) -> tuple[list[Any], list[list[Any]]]:
    return ([_("Product"), _("Usual companion"), _("Customers with both"),
             _("Confidence (%)")],
            [[a.name, b.name, x.together, x.confidence] for a, b, x in rows])


@login_required
@domain_errors
def customer_value_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    form = _form(request)
    try:
        f = _filters(request)
        segment = request.GET.get("segment", "")
        cuts = cv.breakpoints(request.user, f)
        segment_rows = cv.rfm_customers(request.user, f, segment=segment, size=SHOWN,
                                        cuts=cuts)
    except ValidationFailed as exc:
        hx = bool(request.headers.get("HX-Request"))
        return render(request, "reports/customer_value_results.html" if hx
                      else "reports/customer_value.html",
                      {"form": form, "error": str(exc.message)}, status=200 if hx else 400)
    user = request.user
    fmt = wants_export(request)
    table = request.GET.get("table", "segments")
    table = table if table in TABLES else "segments"
    if fmt:
        if table == "headline":
            headers, rows = _headline_table(cv.headline(user, f))
        elif table == "cohorts":
            headers, rows = _cohort_table(cv.cohorts(user, f))
        elif table == "companions":
            headers, rows = _companion_table(cv.companion_table(f))
        else:
            headers, rows = _segment_table(cv.rfm(user, f))
        return table_response(request, name=f"customer-value-{table}",
                              what=f"reports.customer_value.{table}", headers=headers,
                              rows=rows, fmt=fmt)

    base = _base(f)
    figures = cv.headline(user, f)
    for fig in figures:
        fig.link = _list_url(base, list="customers", kind=HEADLINE_LISTS[fig.key])
    report = cv.rfm(user, f, cuts)
    for s in report.segments:
        s.url = drill_query({k: v for k, v in request.GET.items() if k != "segment"},
                            segment=s.code) + "#segment"
        s.list_url = _list_url(base, list="segment", segment=s.code)
    cohorts = cv.cohorts(user, f)
    for c in cohorts.cohorts:
        month = c.month.strftime("%Y-%m")
        c.url = _list_url(base, list="cohort", cohort=month)
        c.links = [(n, p, _list_url(base, list="cohort", cohort=month, k=k))
                   for k, (n, p) in enumerate(c.cells, start=1)]
    churn = cv.churn_risk(user, f, size=SHOWN)
    lifecycle = cv.lifecycle_overdue(user, f, size=SHOWN)
    rules = cv.companions(f)
    upsell = cv.upsell(user, f, size=SHOWN, rules=rules)
    companions = cv.companion_table(f, rules)
    form.prefill(start=f.start, end=f.end)
    named = [s for s in report.segments if s.customers]
    context = {
        "form": form, "filters": f, "figures": figures, "rfm": report, "segment": segment,
        "segment_name": cv.SEGMENT_NAMES.get(segment, ""), "segment_rows": segment_rows,
        "cohorts": cohorts, "cohort_ks": range(1, cohorts.width + 1), "churn": churn, "lifecycle": lifecycle, "upsell": upsell,
        "companions": companions[:SHOWN], "companions_more": len(companions) > SHOWN,
        "links": {t: table_links(request, t) for t in TABLES},
        "lists": {name: _list_url(base, list=name, **({"segment": segment}
                                                       if name == "segment" else {}))
                  for name in LISTS if name not in ("customers", "cohort")},
        "ltv_url": _list_url(base, list="customers", kind="to_date"),
        "segment_chart": chart("pie", [s.name for s in named],
                               [(_("Customers"), [s.customers for s in named])],
                               title=_("Customers per segment")),
        "amount_chart": chart("bar", [s.name for s in named],
                              [(_("Signed amount"), [s.amount for s in named])],
                              title=_("Signed amount per segment")),
        "cohort_chart": chart("line", [_("Month %(k)s") % {"k": k}
                                       for k in range(1, cohorts.width + 1)],
                              [(c.month.strftime("%Y-%m"),
                                [p for _n, p in c.cells]) for c in cohorts.cohorts],
                              title=_("Share who bought again, by months since the first")),
    }
    template = ("reports/customer_value_results.html" if request.headers.get("HX-Request")
                else "reports/customer_value.html")
    return render(request, template, context)


# --- the whole lists ------------------------------------------------------------------------------
LIST_TITLES = {
    "segment": gettext_lazy("Customers by RFM"), "churn": gettext_lazy("Churn risk"),
    "lifecycle": gettext_lazy("Past their life cycle without a renewal"),
    "upsell": gettext_lazy("Upsell candidates"), "customers": gettext_lazy("Customers"),
    "cohort": gettext_lazy("Cohort"),
}


def _rows(name: str, items: Iterable[Any]) -> tuple[list[Any], Iterable[list[Any]]]:
    """The columns and rows of a list, for the page and the export alike."""
    if name == "segment":
        return ([_("Customer"), _("Owner"), _("Last purchase"), _("Days since"),
                 _("Contracts"), _("Signed amount"), "R", "F", "M", _("Segment")],
                ([r.customer.name, _owner(r.customer), r.last_on, r.recency, r.frequency,
                  r.monetary, r.r, r.f, r.m, r.segment_name] for r in items))
    if name == "churn":
        return ([_("Customer"), _("Owner"), _("Purchases"), _("Last purchase"),
                 _("Days since"), _("Usual interval (days)"), _("Times the usual interval"),
                 _("Signed amount")],
                ([r.customer.name, _owner(r.customer), r.purchases, r.last_on, r.days_since,
                  r.usual_interval, r.times_usual, r.amount] for r in items))
    if name == "lifecycle":
        return ([_("Customer"), _("Owner"), _("Product"), _("Last purchase"), _("Due on"),
                 _("Days overdue")],
                ([r.customer.name, _owner(r.customer), r.product.name, r.last_purchase,
                  r.due_on, r.days_overdue] for r in items))
    if name == "upsell":
        return ([_("Customer"), _("Owner"), _("Offer"), _("Because they own"),
                 _("Customers with both"), _("Confidence (%)")],
                ([r.customer.name, _owner(r.customer), r.product.name, r.because.name,
                  r.rule.together, r.rule.confidence] for r in items))
    return ([_("Customer"), _("Owner"), _("Contracts"), _("Signed amount"),
             _("First purchase"), _("Last purchase")],
            ([r.customer.name, _owner(r.customer), r.contracts, r.amount, r.first_on,
              r.last_on] for r in items))


def _owner(customer: Any) -> str:
    return customer.owner.name if customer.owner_id else ""


def _page(request: HttpRequest, f: Filters, name: str, everything: bool) -> Any:
    """One page of the list, or (for an export) every row of it."""
    user, page = request.user, _int(request, "page", 1)
    if name == "segment":
        segment = request.GET.get("segment", "")
        return (cv.all_rfm_customers(user, f, segment=segment) if everything
                else cv.rfm_customers(user, f, segment=segment, page=page))
    if name == "churn":
        return cv.all_churn_risk(user, f) if everything else cv.churn_risk(user, f, page=page)
    if name == "lifecycle":
        return cv.lifecycle_overdue(user, f, cursor=request.GET.get("after") or None,
                                    size=cv.MAX_PAGE if everything else 50)
    if name == "upsell":
        if everything:
            return cv.upsell(user, f, size=cv.UPSELL_EXPORT, cap=cv.UPSELL_EXPORT).items
        return cv.upsell(user, f, page=page)
    if name == "cohort":
        cohort = _month(request.GET.get("cohort", ""))
        k = _int(request, "k", 0)
        return (cv.all_customer_rows(user, f, "cohort", cohort=cohort, k=k) if everything
                else cv.customer_rows(user, f, "cohort", cohort=cohort, k=k, page=page))
    kind = request.GET.get("kind", "buyers")
    return (cv.all_customer_rows(user, f, kind) if everything
            else cv.customer_rows(user, f, kind, page=page))


@login_required
@domain_errors
def customer_value_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    name = request.GET.get("list", "segment")
    try:
        if name not in LISTS:
            raise ValidationFailed(_("Show one of: %(lists)s.") % {"lists": ", ".join(LISTS)},
                                   field="list")
        f = _filters(request)
        fmt = wants_export(request)
        if fmt:
            result = _page(request, f, name, everything=True)
            if name == "lifecycle":
                # Limitation: the lifecycle export holds the first MAX_PAGE reminders (the
                # reminders page by cursor, not by number).
                result = result.items
            headers, rows = _rows(name, result)
            return table_response(request, name=f"customer-value-{name}",
                                  what=f"reports.customer_value.{name}", headers=headers,
                                  rows=rows, fmt=fmt)
        page: Page = _page(request, f, name, everything=False)
        headers, rows = _rows(name, page.items)
        rows = list(rows)
    except ValidationFailed as exc:
        return render(request, "reports/customer_value_list.html",
                      {"error": str(exc.message), "title": LIST_TITLES.get(name, "")},
                      status=400)
    params = {k: v for k, v in request.GET.items() if k not in ("page", "after")}
    next_url = ""
    if page.next_cursor:
        key = "after" if name == "lifecycle" else "page"
        next_url = drill_query(params, **{key: page.next_cursor})
    title = LIST_TITLES[name]
    if name == "segment" and request.GET.get("segment") in cv.SEGMENT_NAMES:
        title = cv.SEGMENT_NAMES[request.GET["segment"]]
    return render(request, "reports/customer_value_list.html", {
        "title": title, "filters": f, "headers": headers,
        "rows": list(zip(page.items, rows, strict=True)), "next_url": next_url,
        "first_url": drill_query(params), "export_links": export_links(request),
        "back": reverse("reports:customer_value") + drill_query(_base(f)),
        "note": _("These reminders follow your scope of customers; the department and rep "
                  "chosen do not narrow them.") if name == "lifecycle" else "",
    })


urlpatterns = [
    path("customers/", customer_value_page, name="customer_value"),
    path("customers/list/", customer_value_list, name="customer_value_list"),
]
