"""The activity desk page (/reports/activity/): follow-ups per rep per day, the response
time of leads, neglected customers (?view=followups|response|neglected). Seeing needs
reports.view; the figures are the viewer's scope."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core.errors import ValidationFailed
from weiying.core.permissions import require
from weiying.pipeline.views.opportunities import duration
from weiying.reports import activity
from weiying.reports.desk import FilterForm, chart, drill_query, pct, table_links
from weiying.reports.filters import parse
from weiying.web.errors import domain_errors
from weiying.web.exports import (
    Column,
    export_links,
    export_response,
    name_of,
    table_response,
    wants_export,
)
from weiying.web.lists import list_page, whole_list

VIEWS = ("followups", "response", "neglected")
NEGLECTED_COLUMNS: list[Column] = [
    (gettext_lazy("Customer"), lambda c: c.name),
    (gettext_lazy("Owner"), lambda c: name_of(c.owner)),
    (gettext_lazy("Level"), lambda c: c.level),
    (gettext_lazy("Last follow-up"), lambda c: c.last_followup_at),
    (gettext_lazy("Next follow-up"), lambda c: c.next_followup_at),
    (gettext_lazy("Total signed"), lambda c: c.total_signed),
]
LEAD_COLUMNS: list[Column] = [
    (gettext_lazy("Lead"), lambda lead: str(lead)),
    (gettext_lazy("Owner"), lambda lead: name_of(lead.owner)),
    (gettext_lazy("Source"), lambda lead: lead.get_source_display()),
    (gettext_lazy("Assigned at"), lambda lead: lead.assigned_at),
    (gettext_lazy("First response"), lambda lead: lead.first_response_at),
    (gettext_lazy("Seconds to first response"), lambda lead: lead.first_response_seconds),
]


def _render(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    hx = bool(request.headers.get("HX-Request"))
    template = "reports/activity_results.html" if hx else "reports/activity.html"
    return render(request, template, context, status=200 if hx else status)


@login_required
@domain_errors
def activity_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    g = request.GET
    view = g.get("view") if g.get("view") in VIEWS else "followups"
    form = FilterForm(g, user=request.user, pipeline=False, period=view == "response",
                      source=view != "followups")
    context: dict[str, Any] = {"form": form, "view": view, "views": [
        ("followups", _("Follow-ups per rep and day")), ("response", _("Response time")),
        ("neglected", _("Neglected customers"))], "month": g.get("month", ""),
        "days": g.get("days", "")}
    fmt = wants_export(request)
    try:
        filters = parse(request.user, g)
        if view == "followups":
            month = activity.parse_month(g.get("month"))
            page = int(g["page"]) if g.get("page", "").isdigit() else 1
            if fmt:
                days, rows = activity.all_rep_rows(request.user, filters, month)
                return table_response(
                    request, name=f"followups-{month:%Y-%m}", what="reports.activity.followups",
                    headers=[_("Rep"), *[f"{d:%d}" for d in days], _("Total")],
                    rows=([r.employee.name, *r.days, r.total] for r in rows), fmt=fmt)
            matrix = activity.followup_matrix(request.user, filters, month, page=page)
            context.update(matrix=matrix, month=f"{month:%Y-%m}", pages=[
                (n, drill_query({k: v for k, v in g.items() if k != "page"}, page=n))
                for n in _pager(matrix.page, matrix.pages)],
                chart_spec=chart("bar", [f"{d:%d}" for d in matrix.days],
                                 [(_("Follow-ups"), matrix.day_totals)],
                                 title=_("Follow-ups per day")))
        elif view == "response":
            bucket = g.get("bucket", "")
            if bucket:
                leads = activity.response_leads(request.user, filters, bucket)
                if fmt:
                    return export_response(request, leads.order_by("-assigned_at", "-id"),
                                           LEAD_COLUMNS, name="lead-response", fmt=fmt)
                state = list_page(request, leads, sorts={"-assigned": ["-assigned_at", "-id"]},
                                  default="-assigned")
                context.update(leads=state.page.items, state=state, bucket=bucket,
                               next_url=state.with_params(after=state.page.next_cursor),
                               first_url=state.with_params(after=""),
                               export_links=export_links(request))
            times = activity.response_times(request.user, filters)
            if fmt:
                return table_response(
                    request, name="lead-response-times", what="reports.activity.response",
                    headers=[_("Response time"), _("Leads"), _("Share (%)")],
                    rows=([b.label, b.count, None if b.share is None else b.share * 100]
                          for b in times.buckets), fmt=fmt)
            base = {k: v for k, v in g.items() if k not in ("bucket", "after", "export")}
            for b in times.buckets:
                b.url = drill_query(base, bucket=b.key)
                b.share_text = pct(b.share)
            context.update(times=times, filters=filters,
                           average=duration(times.average_seconds)
                           if times.average_seconds is not None else "—",
                           chart_spec=chart("pie", [b.label for b in times.buckets],
                                            [(_("Leads"), [b.count for b in times.buckets])],
                                            title=_("Time to first response")))
        else:
            days = activity.parse_days(g.get("days"))
            customers = activity.neglected_customers(request.user, filters, days=days)
            sorts = activity.NEGLECT_SORTS
            if fmt:
                return export_response(request, whole_list(request, customers, sorts=sorts,
                                                           default="last"),
                                       NEGLECTED_COLUMNS, name="neglected-customers",
                                       fmt=fmt)
            state = list_page(request, customers, sorts=sorts, default="last")
            context.update(customers=state.page.items, state=state, days=days,
                           total=customers.count(),
                           next_url=state.with_params(after=state.page.next_cursor),
                           first_url=state.with_params(after=""),
                           export_links=export_links(request),
                           sort_links={
                               key: state.with_params(
                                   sort=f"-{key}" if state.sort == key else key, after="")
                               for key in ("name", "last")})
    except ValidationFailed as exc:
        context["error"] = str(exc.message)
        return _render(request, context, status=400)
    context["links"] = table_links(request, view)
    return _render(request, context)


def _pager(page: int, pages: int) -> list[int]:
    """Page numbers around the current one, with the first and the last."""
    near = set(range(max(1, page - 3), min(pages, page + 3) + 1)) | {1, pages}
    return sorted(near)


urlpatterns = [path("activity/", activity_page, name="activity")]
