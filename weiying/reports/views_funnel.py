"""The funnel desk page (/reports/funnel/) and the records behind each of its numbers
(/reports/funnel/records/). Seeing needs reports.view; the figures are the viewer's scope."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core.errors import ValidationFailed
from weiying.core.permissions import require
from weiying.pipeline.models import Opportunity
from weiying.pipeline.views.opportunities import duration
from weiying.reports import funnel
from weiying.reports.desk import (
    FilterForm,
    chart,
    drill_query,
    pct,
    signed,
    signed_pct,
    table_links,
)
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
from weiying.web.lists import list_page, whole_list

TABLES = ("stages", "reasons", "comparison", "teams", "sources", "months")


def default_start() -> Any:
    """Twelve months up to today by default."""
    return add_months(month_start(timezone.localdate()), -11)


def bad_input(request: HttpRequest, template: str, form: Any, exc: ValidationFailed
              ) -> HttpResponse:
    """The page with the message and no figures: 400, or 200 for HTMX (which swaps only
    successful answers)."""
    hx = bool(request.headers.get("HX-Request"))
    name = template.replace(".html", "_results.html") if hx else template
    return render(request, name, {"form": form, "error": str(exc.message)},
                  status=200 if hx else 400)


def _pct(value: Any) -> Any:
    return None if value is None else (value * 100).quantize(value.__class__("0.01"))


def _table(name: str, f: funnel.Funnel, cmp: funnel.Comparison, b: funnel.Breakdowns
           ) -> tuple[list[Any], list[list[Any]]]:
    stage_names = [s.name for s in f.stages]
    if name == "stages":
        return ([_("Stage"), _("Reached"), _("Amount reached"), _("Went on"),
                 _("Conversion to next (%)"), _("Dropped"), _("Lost"), _("Still open"),
                 _("Completed stays"), _("Average seconds in stage"),
                 _("Median seconds in stage")],
                [[s.name, s.reached, s.reached_amount, s.next_reached, _pct(s.conversion),
                  s.dropped, s.dropped_lost, s.dropped_open, s.stays, s.avg_seconds,
                  s.median_seconds] for s in f.stages])
    if name == "reasons":
        return ([_("Outcome"), _("Reason"), _("Opportunities"), _("Amount")],
                [[_("Won"), "", f.won, f.won_amount]]
                + [[_("Lost"), r.label, r.count, r.amount] for r in f.reasons])
    if name == "comparison":
        return ([_("Figure"), _("This period"), _("Previous period"), _("Change"),
                 _("Same period a year earlier"), _("Change")],
                [[c.label, c.current, c.previous, c.mom, c.year_ago, c.yoy]
                 for c in cmp.rows])
    rows = {"teams": b.teams, "sources": b.sources, "months": b.months}[name]
    return ([_("Group"), _("Created"), *[_("Reached %(stage)s") % {"stage": n}
                                         for n in stage_names],
             _("Won"), _("Amount won"), _("Lost"), _("Open"), _("Win rate (%)")],
            [[r.label, r.created, *r.reached, r.won, r.won_amount, r.lost, r.open,
              _pct(r.win_rate)] for r in rows])


@login_required
@domain_errors
def funnel_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    form = FilterForm(request.GET, user=request.user)
    try:
        filters = parse(request.user, request.GET, default_start=default_start())
    except ValidationFailed as exc:
        return bad_input(request, "reports/funnel.html", form, exc)
    figures = funnel.build_funnel(request.user, filters)
    comparison = funnel.compare(request.user, figures)
    split = funnel.breakdowns(request.user, filters)
    fmt = wants_export(request)
    table = request.GET.get("table", "stages")
    if fmt:
        if table not in TABLES:
            table = "stages"
        headers, rows = _table(table, figures, comparison, split)
        return table_response(request, name=f"funnel-{table}", what=f"reports.funnel.{table}",
                              headers=headers, rows=rows, fmt=fmt)

    base = filters.query()
    for s in figures.stages:
        s.conversion_text = pct(s.conversion)
        s.avg_text = duration(s.avg_seconds) if s.avg_seconds is not None else "—"
        s.median_text = duration(s.median_seconds) if s.median_seconds is not None else "—"
        s.reached_url = drill_query(base, stage=s.stage_id)
        s.dropped_url = drill_query(base, dropped=s.stage_id)
    for r in figures.reasons:
        r.url = drill_query(base, outcome="lost", reason=r.code or "none")
    for rows in (split.teams, split.sources, split.months):
        for r in rows:
            r.url = drill_query(base, **r.params)
            r.won_url = drill_query(base, outcome="won", **r.params)
            r.lost_url = drill_query(base, outcome="lost", **r.params)
            r.win_rate_text = pct(r.win_rate)
            r.cells = [(n, drill_query(base, stage=s.stage_id, **r.params))
                       for n, s in zip(r.reached, figures.stages, strict=False)]
    for c in comparison.rows:
        c.cells = _change_cells(c)
    form.prefill(start=filters.start, end=filters.end, pipeline=filters.pipeline.pk)
    categories = [s.name for s in figures.stages] + [_("Won")]
    context = {
        "form": form, "f": figures, "filters": filters, "cmp": comparison,
        "split": split, "win_rate": pct(figures.win_rate),
        "breakdowns": [(_("By team"), "teams", split.teams),
                       (_("By lead source"), "sources", split.sources),
                       (_("By month created"), "months", split.months)],
        "links": {t: table_links(request, t) for t in TABLES},
        "urls": {k: drill_query(base, **p) for k, p in (
            ("created", {}), ("won", {"outcome": "won"}), ("lost", {"outcome": "lost"}),
            ("open", {"outcome": "open"}))},
        "funnel_chart": chart("funnel", categories, [
            (_("Reached"), [s.reached for s in figures.stages] + [figures.won])],
            title=_("Funnel")),
        "month_chart": chart("bar", [r.label for r in split.months], [
            (_("Created"), [r.created for r in split.months]),
            (_("Won"), [r.won for r in split.months]),
            (_("Lost"), [r.lost for r in split.months])], title=_("By month")),
        "reason_chart": chart("pie", [r.label for r in figures.reasons], [
            (_("Lost"), [r.count for r in figures.reasons])], title=_("Why deals were lost")),
    }
    template = ("reports/funnel_results.html" if request.headers.get("HX-Request")
                else "reports/funnel.html")
    return render(request, template, context)


def _change_cells(c: funnel.Change) -> list[str]:
    from weiying.core.money import format_cny

    def show(v: Any) -> str:
        if v is None:
            return "—"
        if c.is_rate:
            return pct(v)
        return format_cny(v) if isinstance(v, Decimal) else str(v)

    def delta(d: Any, p: Decimal | None) -> str:
        if c.is_rate:
            return signed_pct(d)
        text = signed(d)
        return f"{text} ({signed_pct(p)[:-3]}%)" if p is not None else text

    return [show(c.current), show(c.previous), delta(c.mom, c.mom_pct), show(c.year_ago),
            delta(c.yoy, c.yoy_pct)]


# --- the records behind a number ------------------------------------------------------------
DRILL_KEYS = ("stage", "dropped", "outcome", "reason", "team", "src", "month")
SORTS = {"-created": ["-created_at", "-id"], "created": ["created_at", "id"],
         "-amount": ["-amount", "-id"], "amount": ["amount", "id"]}
EXPORT_COLUMNS: list[Column] = [
    (gettext_lazy("Opportunity"), lambda o: o.name),
    (gettext_lazy("Customer"), lambda o: o.customer.name),
    (gettext_lazy("Stage"), lambda o: o.stage.name),
    (gettext_lazy("Status"), lambda o: o.get_status_display()),
    (gettext_lazy("Amount"), lambda o: money_text(o.amount)),
    (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
    (gettext_lazy("Lost because"), lambda o: o.get_lost_reason_display()),
    (gettext_lazy("Created at"), lambda o: o.created_at),
    (gettext_lazy("Closed at"), lambda o: o.closed_at),
]


@login_required
@domain_errors
def funnel_records(request: HttpRequest) -> HttpResponse:
    require(request.user, "reports.view")
    params = {k: request.GET.get(k, "") for k in DRILL_KEYS}
    try:
        filters = parse(request.user, request.GET, default_start=default_start())
        qs = funnel.records(request.user, filters, params)
    except ValidationFailed as exc:
        return render(request, "reports/funnel_records.html", {"error": str(exc.message)},
                      status=400)
    fmt = wants_export(request)
    if fmt:
        return export_response(request, whole_list(request, qs, sorts=SORTS,
                                                   default="-created"),
                               EXPORT_COLUMNS, name="funnel-records", fmt=fmt)
    state = list_page(request, qs, sorts=SORTS, default="-created")
    return render(request, "reports/funnel_records.html", {
        "state": state, "rows": state.page.items, "filters": filters,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "back_url": drill_query(filters.query()), "export_links": export_links(request),
        "total": qs.count(), "what": _describe(filters, params),
    })


def _describe(filters: Filters, params: dict[str, str]) -> str:
    from weiying.pipeline.models import Stage

    parts = [f"{filters.start:%Y-%m-%d} – {filters.end:%Y-%m-%d}"]
    for key in ("stage", "dropped"):
        if params.get(key):
            stage = Stage.objects.filter(pk=params[key]).first()
            label = _("reached %(stage)s") if key == "stage" else _("went no further than "
                                                                     "%(stage)s")
            parts.append(label % {"stage": stage.name if stage else "?"})
    if params.get("outcome"):
        parts.append(dict(Opportunity._meta.get_field("status").choices).get(
            params["outcome"], params["outcome"]))
    if params.get("month"):
        parts.append(params["month"])
    return " · ".join(str(p) for p in parts)


urlpatterns = [
    path("funnel/", funnel_page, name="funnel"),
    path("funnel/records/", funnel_records, name="funnel_records"),
]
