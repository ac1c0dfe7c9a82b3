"""The forecast desk page (/reports/forecast/): open opportunities by expected close month
and the accuracy of past forecasts. Seeing needs reports.view; the figures are the viewer's
scope."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _

from weiying.core.errors import ValidationFailed
from weiying.core.permissions import require
from weiying.reports import forecast
from weiying.reports.desk import FilterForm, chart, drill_query, pct, table_links
from weiying.reports.filters import Filters, parse
from weiying.web.errors import domain_errors
from weiying.web.exports import table_response, wants_export

TABLES = ("months", "accuracy")


def _table(name: str, fc: forecast.Forecast) -> tuple[list[Any], list[list[Any]]]:
    if name == "accuracy":
        return ([_("Month"), _("Open on the 1st"), _("Best case"), _("Commit"), _("Weighted"),
                 _("Won in the month"), _("of which forecast"), _("Accuracy (%)")],
                [[f"{r.month:%Y-%m}", r.count, r.best_case, r.commit, r.weighted, r.won,
                  r.won_forecast, None if r.accuracy is None else r.accuracy * 100]
                 for r in fc.accuracy])
    return ([_("Expected close"), _("Open opportunities"), _("Best case"), _("Commit"),
             _("Weighted"), _("Won so far"), _("Amount won")],
            [[m.label, m.count, m.best_case, m.commit, m.weighted, m.won_count, m.won]
             for m in fc.months])


def _list_link(filters: Filters, month: forecast.MonthRow) -> str:
    """The opportunity list showing a month's open opportunities, when it can filter by
    exactly this slice (it filters by close month, rep and team, not by lead source)."""
    if month.month is None or filters.source:
        return ""
    params = {"status": "open", "close_month": f"{month.month:%Y-%m}",
              "pipeline": str(filters.pipeline.pk)}
    if filters.owner is not None:
        params["owner"] = str(filters.owner.pk)
    if filters.department is not None:
        params["team"] = str(filters.department.pk)
    return reverse("pipeline:opportunity_list") + drill_query(params)


@login_required
@domain_errors
def forecast_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    form = FilterForm(request.GET, user=request.user, period=False)
    hx = bool(request.headers.get("HX-Request"))
    try:
        filters = parse(request.user, {k: v for k, v in request.GET.items()
                                       if k not in ("start", "end")})
    except ValidationFailed as exc:
        return render(request, "reports/forecast_results.html" if hx else
                      "reports/forecast.html", {"form": form, "error": str(exc.message)},
                      status=200 if hx else 400)
    fc = forecast.build_forecast(request.user, filters)
    fmt = wants_export(request)
    if fmt:
        table = request.GET.get("table", "months")
        table = table if table in TABLES else "months"
        headers, rows = _table(table, fc)
        return table_response(request, name=f"forecast-{table}",
                              what=f"reports.forecast.{table}", headers=headers, rows=rows,
                              fmt=fmt)
    for m in fc.months:
        m.url = _list_link(filters, m)
    for r in fc.accuracy:
        r.accuracy_text = pct(r.accuracy)
    form.prefill(pipeline=filters.pipeline.pk)
    ahead = [m for m in fc.months if m.month is not None]
    context = {
        "form": form, "fc": fc, "filters": filters,
        "links": {t: table_links(request, t) for t in TABLES},
        "commit_probability": forecast.COMMIT_PROBABILITY,
        "totals": {k: fc.total(k) for k in ("count", "best_case", "commit", "weighted",
                                            "won_count", "won")},
        "months_chart": chart("bar", [m.label for m in ahead], [
            (_("Weighted"), [m.weighted for m in ahead]),
            (_("Commit"), [m.commit for m in ahead]),
            (_("Best case"), [m.best_case for m in ahead]),
            (_("Won"), [m.won for m in ahead])], title=_("Forecast by close month")),
        "accuracy_chart": chart("line", [f"{r.month:%Y-%m}" for r in fc.accuracy], [
            (_("Weighted forecast on the 1st"), [r.weighted for r in fc.accuracy]),
            (_("Won in the month"), [r.won for r in fc.accuracy])],
            title=_("Forecast against what was won")),
    }
    return render(request, "reports/forecast_results.html" if hx else "reports/forecast.html",
                  context)


urlpatterns = [path("forecast/", forecast_page, name="forecast")]
