"""The channel economics desk page (/reports/channels/) and the records behind each of its
numbers (/reports/channels/records/). Seeing needs reports.view; the figures are the viewer's
scope, the money after the contract from the finance layer (finance.view)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core.errors import ValidationFailed
from weiying.core.permissions import require
from weiying.reports import channels
from weiying.reports.desk import FilterForm, chart, drill_query, table_links
from weiying.reports.filters import Filters, add_months, month_start, parse
from weiying.web.errors import domain_errors
from weiying.web.exports import (
    Column,
    export_links,
    export_response,
    money_text,
    name_of,
    table_response,
    wants_export,
)

TABLES = ("headline", "channels", "months")
# Which records each figure of a row stands on.
FIGURE_RECORDS = {
    "leads": "leads", "opportunities": "opportunities", "contracts": "contracts",
    "signed": "contracts", "new_customers": "new_customers", "spend": "spend", "cash": "cash",
    "revenue": "revenue", "margin": "revenue", "cost_per_lead": "leads",
    "acquisition_cost": "new_customers", "cash_return": "cash", "accrual_return": "revenue",
}
ROW_FIGURES = ("leads", "opportunities", "contracts", "new_customers", "spend", "cash",
               "revenue")


def default_start() -> dt.date:
    """The last six months by default, this one included."""
    return add_months(month_start(timezone.localdate()), -5)


def _channel(request: HttpRequest, *, records: bool = False) -> str | None:
    """The channel asked for: None for all; on the records page an empty one means the records
    without any channel (the report's "no channel" row)."""
    value = request.GET.get("channel")
    if value is None or (not records and not value.strip()):
        return None
    return value.strip()[:64]


def _form(request: HttpRequest) -> FilterForm:
    return FilterForm(request.GET, user=request.user, source=False, pipeline=False)


def bad_input(request: HttpRequest, template: str, form: Any, exc: ValidationFailed
              ) -> HttpResponse:
    hx = bool(request.headers.get("HX-Request"))
    name = template.replace(".html", "_results.html") if hx else template
    return render(request, name, {"form": form, "error": str(exc.message)},
                  status=200 if hx else 400)


def _headers() -> list[Any]:
    return [_("Channel"), _("Kind"), _("Code"), _("Leads"), _("Opportunities"),
            _("Contracts signed"), _("Signed amount"), _("New customers"), _("Spend"),
            _("Cash collected"), _("Revenue recognised (VAT excl.)"), _("Cost of sales"),
            _("Revenue less cost of sales"), _("Cost per lead"),
            _("Acquisition cost per new customer"), _("Cash return"), _("Accrual return")]


def _cells(r: channels.ChannelRow) -> list[Any]:
    return [r.leads, r.opportunities, r.contracts, r.signed, r.new_customers, r.spend, r.cash,
            r.revenue, r.cost_of_sales, r.margin, r.cost_per_lead, r.acquisition_cost,
            r.cash_return, r.accrual_return]


def _table(name: str, report: channels.ChannelReport) -> tuple[list[Any], list[list[Any]]]:
    if name == "headline":
        return ([_("Figure"), _("This period"), _("Previous period"), _("Change (%)"),
                 _("A year earlier"), _("Change (%)")],
                [[f.label, f.value, f.previous, f.mom, f.year_ago, f.yoy]
                 for f in report.headline])
    if name == "months":
        heads = _headers()
        return ([_("Month"), *heads[3:]],
                [[m.strftime("%Y-%m"), *_cells(r)] for m, r in report.months]
                + [[_("Total"), *_cells(report.total)]])
    return (_headers(),
            [[r.label, r.kind, r.channel, *_cells(r)] for r in report.rows]
            + [[_("Total"), "", "", *_cells(report.total)]])


def _links(base: dict[str, str], channel: str | None, f: Filters | None = None
           ) -> dict[str, str]:
    query = dict(base)
    if f is not None:
        query.update(start=f.start.isoformat(), end=f.end.isoformat())
    extra = {} if channel is None else {"channel": channel}
    url = reverse("reports:channel_records")
    out = {kind: url + drill_query(query, kind=kind, **extra) for kind in channels.RECORD_KINDS}
    if channel == "":
        out = {k: v + "&channel=" for k, v in out.items()}
    return out


def _month_filters(f: Filters, month: dt.date) -> Filters:
    last = add_months(month, 1) - dt.timedelta(days=1)
    return dataclasses.replace(f, start=max(f.start, month), end=min(f.end, last))


@login_required
@domain_errors
def channels_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    form = _form(request)
    try:
        filters = parse(request.user, request.GET, default_start=default_start())
    except ValidationFailed as exc:
        return bad_input(request, "reports/channels.html", form, exc)
    channel = _channel(request)
    report = channels.channel_report(request.user, filters, channel)
    fmt = wants_export(request)
    if fmt:
        table = request.GET.get("table", "channels")
        table = table if table in TABLES else "channels"
        headers, rows = _table(table, report)
        return table_response(request, name=f"channels-{table}",
                              what="reports.channels" if table == "channels"
                              else f"reports.channels.{table}",
                              headers=headers, rows=rows, fmt=fmt)

    base = {k: v for k, v in filters.query().items() if k != "pipeline"}
    everything = _links(base, channel)
    for fig in report.headline:
        fig.link = everything[FIGURE_RECORDS[fig.key]]
    rows = [(r, _links(base, r.channel)) for r in report.rows]
    months = [(m, r, _links(base, channel, _month_filters(filters, m)))
              for m, r in report.months]
    form.prefill(start=filters.start, end=filters.end)
    labels = [r.label for r in report.rows]
    month_labels = [m.strftime("%Y-%m") for m, _r in report.months]
    money_series = [(_("Signed amount"), [r.signed for r in report.rows])]
    if report.finance_shown:
        money_series += [(_("Cash collected"), [r.cash for r in report.rows])]
        if report.spend_shown:
            money_series.insert(0, (_("Spend"), [r.spend for r in report.rows]))
    context = {
        "form": form, "filters": filters, "report": report, "rows": rows, "months": months,
        "channel": channel or "", "totals_links": everything,
        "links": {t: table_links(request, t) for t in TABLES},
        "money_chart": chart("bar", labels, money_series, title=_("Money per channel")),
        "lead_chart": chart("pie", labels, [(_("Leads"), [r.leads for r in report.rows])],
                            title=_("Leads per channel")),
        "month_chart": chart("line", month_labels, [
            (_("Leads"), [r.leads for _m, r in report.months]),
            (_("New customers"), [r.new_customers for _m, r in report.months]),
            (_("Contracts signed"), [r.contracts for _m, r in report.months])],
            title=_("By month")),
    }
    template = ("reports/channels_results.html" if request.headers.get("HX-Request")
                else "reports/channels.html")
    return render(request, template, context)


# --- the records behind a number --------------------------------------------------------------
KIND_TITLES = {
    "leads": gettext_lazy("Leads"), "opportunities": gettext_lazy("Opportunities"),
    "contracts": gettext_lazy("Contracts signed"),
    "new_customers": gettext_lazy("First contracts of new customers"),
    "spend": gettext_lazy("Marketing spend"), "cash": gettext_lazy("Cash booked"),
    "revenue": gettext_lazy("Revenue and cost of sales booked"),
}
EXPORT_COLUMNS: dict[str, list[Column]] = {
    "leads": [
        (gettext_lazy("Lead"), lambda o: str(o)), (gettext_lazy("Channel"), lambda o: o.key),
        (gettext_lazy("Status"), lambda o: o.get_status_display()),
        (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
        (gettext_lazy("Created at"), lambda o: o.created_at)],
    "opportunities": [
        (gettext_lazy("Opportunity"), lambda o: o.name),
        (gettext_lazy("Customer"), lambda o: o.customer.name),
        (gettext_lazy("Channel"), lambda o: o.key),
        (gettext_lazy("Amount"), lambda o: money_text(o.amount)),
        (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
        (gettext_lazy("Created at"), lambda o: o.created_at)],
    "contracts": [
        (gettext_lazy("Contract"), lambda o: o.number),
        (gettext_lazy("Customer"), lambda o: o.customer.name),
        (gettext_lazy("Channel"), lambda o: o.key),
        (gettext_lazy("Amount"), lambda o: money_text(o.total)),
        (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
        (gettext_lazy("Signed on"), lambda o: o.signed_on)],
    "spend": [
        (gettext_lazy("Spent on"), lambda o: o.spent_on),
        (gettext_lazy("Channel"), lambda o: o.channel),
        (gettext_lazy("Amount"), lambda o: money_text(o.amount)),
        (gettext_lazy("Department"), lambda o: name_of(o.department)),
        (gettext_lazy("Note"), lambda o: o.note)],
    "movements": [
        (gettext_lazy("Booked on"), lambda o: o.on),
        (gettext_lazy("Kind"), lambda o: o.get_kind_display()),
        (gettext_lazy("Contract"), lambda o: o.contract.number),
        (gettext_lazy("Customer"), lambda o: name_of(o.customer)),
        (gettext_lazy("Channel"), lambda o: o.channel),
        (gettext_lazy("Cash"), lambda o: money_text(o.bank)),
        (gettext_lazy("Revenue"), lambda o: money_text(o.revenue)),
        (gettext_lazy("Cost of sales"), lambda o: money_text(o.cost)),
        (gettext_lazy("Owner"), lambda o: name_of(o.owner))],
}


def _columns(kind: str) -> list[Column]:
    if kind == "new_customers":
        return EXPORT_COLUMNS["contracts"]
    if kind in ("cash", "revenue"):
        return EXPORT_COLUMNS["movements"]
    return EXPORT_COLUMNS[kind]


@login_required
@domain_errors
def channel_records(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    kind = request.GET.get("kind", "leads")
    try:
        filters = parse(request.user, request.GET, default_start=default_start())
        channel = _channel(request, records=True)
        qs, order = channels.record_queryset(request.user, filters, kind, channel)
        fmt = wants_export(request)
        if fmt:
            return export_response(request, qs.order_by(*order), _columns(kind),
                                   name=f"channel-{kind}", fmt=fmt)
        page = channels.records(request.user, filters, kind, channel,
                                cursor=request.GET.get("after") or None)
    except ValidationFailed as exc:
        return render(request, "reports/channels_records.html", {"error": str(exc.message)},
                      status=400)
    params = {k: v for k, v in request.GET.items() if k != "after"}
    next_url = drill_query(params, after=page.next_cursor) if page.next_cursor else ""
    return render(request, "reports/channels_records.html", {
        "page": page, "kind": kind, "title": KIND_TITLES[kind], "filters": filters,
        "channel": channel, "channel_label": None if channel is None
        else channels.channel_label(channel),
        "next_url": next_url, "first_url": drill_query(params),
        "export_links": export_links(request),
        "back": reverse("reports:channels") + drill_query(
            {k: v for k, v in params.items() if k in ("start", "end", "department", "owner")}),
    })


urlpatterns = [
    path("channels/", channels_page, name="channels"),
    path("channels/records/", channel_records, name="channel_records"),
]
