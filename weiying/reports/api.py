"""HTTP API of the analysis layer, mounted at /api/reports. Every endpoint needs reports.view
and answers the caller's data scope; money is a string exact to the fen, rates are fractions
as strings ("0.6667"). Each report keeps its own section below."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from weiying.core.permissions import require
from weiying.reports.filters import parse

router = Router(tags=["reports"])


class SliceIn(Schema):
    start: dt.date | None = Field(None, description="default: see each report")
    end: dt.date | None = Field(None, description="default: today")
    department: int | None = Field(None, description="a department id: its whole subtree")
    owner: int | None = Field(None, description="an employee id")
    source: str = Field("", description="a lead source code, or 'none' for no lead")
    pipeline: int | None = Field(None, description="default: the default pipeline")


def _filters(request: HttpRequest, q: SliceIn, **defaults: Any) -> Any:
    require(request.user, "reports.view")
    data = {k: v for k, v in q.dict().items() if v not in (None, "")}
    return parse(request.user, data, **defaults)


# --- funnel ---------------------------------------------------------------------------------
class FunnelStageOut(Schema):
    stage_id: int
    name: str
    reached: int
    reached_amount: str
    conversion: str | None
    dropped: int
    dropped_lost: int
    dropped_open: int
    stays: int
    avg_seconds: int | None
    median_seconds: int | None


class FunnelReasonOut(Schema):
    code: str
    count: int
    amount: str


class FunnelFiguresOut(Schema):
    created: int
    created_amount: str
    won: int
    won_amount: str
    lost: int
    lost_amount: str
    open: int
    open_amount: str
    win_rate: str | None
    stages: list[FunnelStageOut]
    reasons: list[FunnelReasonOut]


class FunnelGroupOut(Schema):
    key: str
    label: str
    created: int
    reached: list[int]
    won: int
    won_amount: str
    lost: int
    open: int


class FunnelOut(Schema):
    start: dt.date
    end: dt.date
    pipeline_id: int
    figures: FunnelFiguresOut
    previous: FunnelFiguresOut
    year_ago: FunnelFiguresOut
    teams: list[FunnelGroupOut] = []
    sources: list[FunnelGroupOut] = []
    months: list[FunnelGroupOut] = []


class FunnelIn(SliceIn):
    breakdowns: bool = Field(False, description="add the funnel by team, source and month")


def _groups(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"key": r.key, "label": r.label, "created": r.created, "reached": r.reached,
             "won": r.won, "won_amount": f"{r.won_amount:.2f}", "lost": r.lost,
             "open": r.open} for r in rows]


@router.get("/funnel", response=FunnelOut)
def funnel_report(request: HttpRequest, q: Query[FunnelIn]) -> dict[str, Any]:
    """The funnel of the opportunities created in the period (default: the last twelve
    months), with the same figures for the previous period and a year earlier."""
    from weiying.reports import funnel
    from weiying.reports.views_funnel import default_start

    filters = _filters(request, q, default_start=default_start())
    figures = funnel.build_funnel(request.user, filters)
    cmp = funnel.compare(request.user, figures)
    out: dict[str, Any] = {
        "start": filters.start, "end": filters.end, "pipeline_id": filters.pipeline.pk,
        "figures": figures.figures(), "previous": cmp.previous.figures(),
        "year_ago": cmp.year_ago.figures(),
    }
    if q.breakdowns:
        split = funnel.breakdowns(request.user, filters)
        out.update(teams=_groups(split.teams), sources=_groups(split.sources),
                   months=_groups(split.months))
    return out


# --- forecast -------------------------------------------------------------------------------
class ForecastMonthOut(Schema):
    key: str
    count: int
    best_case: str
    commit: str
    weighted: str
    won_count: int
    won: str


class ForecastAccuracyOut(Schema):
    month: dt.date
    count: int
    best_case: str
    commit: str
    weighted: str
    won: str
    won_forecast: str
    accuracy: str | None


class ForecastOut(Schema):
    pipeline_id: int
    commit_probability: int
    months: list[ForecastMonthOut]
    accuracy: list[ForecastAccuracyOut]


@router.get("/forecast", response=ForecastOut)
def forecast_report(request: HttpRequest, q: Query[SliceIn]) -> dict[str, Any]:
    """Open opportunities by expected close month (overdue, this month and the five after,
    later, no date) and the accuracy of the forecasts of the six months before. The period
    parameters are ignored."""
    from weiying.reports import forecast

    q.start = q.end = None
    filters = _filters(request, q)
    fc = forecast.build_forecast(request.user, filters)
    return {
        "pipeline_id": filters.pipeline.pk, "commit_probability": forecast.COMMIT_PROBABILITY,
        "months": [{"key": m.key, "count": m.count, "best_case": f"{m.best_case:.2f}",
                    "commit": f"{m.commit:.2f}", "weighted": f"{m.weighted:.2f}",
                    "won_count": m.won_count, "won": f"{m.won:.2f}"} for m in fc.months],
        "accuracy": [{"month": r.month, "count": r.count, "best_case": f"{r.best_case:.2f}",
                      "commit": f"{r.commit:.2f}", "weighted": f"{r.weighted:.2f}",
                      "won": f"{r.won:.2f}", "won_forecast": f"{r.won_forecast:.2f}",
                      "accuracy": None if r.accuracy is None else str(r.accuracy)}
                     for r in fc.accuracy],
    }


# --- activity -------------------------------------------------------------------------------
class ActivityRepOut(Schema):
    employee_id: int
    name: str
    days: list[int]
    total: int


class FollowupMatrixOut(Schema):
    month: dt.date
    days: list[dt.date]
    reps: int
    page: int
    pages: int
    rows: list[ActivityRepOut]
    day_totals: list[int]
    total: int


class MatrixIn(SliceIn):
    month: str = Field("", description="YYYY-MM; default this month")
    page: int = Field(1, ge=1, description="reps are paged by name, 50 a page")


@router.get("/activity/followups", response=FollowupMatrixOut)
def activity_followups(request: HttpRequest, q: Query[MatrixIn]) -> dict[str, Any]:
    """Follow-ups per rep per day of a month, with the totals over every rep in the slice."""
    from weiying.reports import activity

    filters = _filters(request, q)
    m = activity.followup_matrix(request.user, filters, activity.parse_month(q.month),
                                 page=q.page)
    return {"month": m.month, "days": m.days, "reps": m.reps, "page": m.page,
            "pages": m.pages, "day_totals": m.day_totals, "total": m.total,
            "rows": [{"employee_id": r.employee.pk, "name": r.employee.name, "days": r.days,
                      "total": r.total} for r in m.rows]}


class ResponseBucketOut(Schema):
    key: str
    label: str
    count: int
    share: str | None


class ResponseTimesOut(Schema):
    start: dt.date
    end: dt.date
    assigned: int
    answered: int
    average_seconds: int | None
    buckets: list[ResponseBucketOut]


@router.get("/activity/response-times", response=ResponseTimesOut)
def activity_response_times(request: HttpRequest, q: Query[SliceIn]) -> dict[str, Any]:
    """Leads assigned in the period (default this month) by time to the first follow-up."""
    from weiying.reports import activity

    filters = _filters(request, q)
    t = activity.response_times(request.user, filters)
    return {"start": filters.start, "end": filters.end, "assigned": t.assigned,
            "answered": t.answered, "average_seconds": t.average_seconds,
            "buckets": [{"key": b.key, "label": b.label, "count": b.count,
                         "share": None if b.share is None else str(b.share)}
                        for b in t.buckets]}


class NeglectedOut(Schema):
    customer_id: int
    name: str
    owner_id: int | None
    last_followup_at: dt.datetime | None


class NeglectedPageOut(Schema):
    days: int
    total: int
    items: list[NeglectedOut]
    next_cursor: str | None


class NeglectedIn(SliceIn):
    days: int = Field(30, ge=1, le=3650, description="no follow-up for more than this many days")
    after: str = Field("", description="the next_cursor of the previous page")


@router.get("/activity/neglected", response=NeglectedPageOut)
def activity_neglected(request: HttpRequest, q: Query[NeglectedIn]) -> dict[str, Any]:
    """Owned customers without a follow-up for more than `days` days, the longest first."""
    from weiying.core.pagination import keyset_page
    from weiying.reports import activity

    filters = _filters(request, q)
    qs = activity.neglected_customers(request.user, filters, days=q.days)
    page = keyset_page(qs, activity.NEGLECT_SORTS["last"], cursor=q.after or None, size=50)
    return {"days": q.days, "total": qs.count(), "next_cursor": page.next_cursor,
            "items": [{"customer_id": c.pk, "name": c.name, "owner_id": c.owner_id,
                       "last_followup_at": c.last_followup_at} for c in page.items]}
