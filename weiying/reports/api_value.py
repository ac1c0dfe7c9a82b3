"""HTTP API of the value reports: channel economics and customer value (RFM segments, cohorts,
churn risk, upsell), the same figures as the desk pages, through the same data scope (money
as strings, exact to the fen). A router of its own, mounted beside the other reports; its
URL names (api:value_…) find it wherever it is mounted."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from weiying.core.permissions import require
from weiying.reports import channels, customer_value
from weiying.reports.filters import Filters, add_months, month_start, parse

router = Router(tags=["reports"])


def _m(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


def _n(value: Any) -> Any:
    """A count as a number, an amount or a ratio as an exact string."""
    return f"{value}" if isinstance(value, Decimal) else value


class FiltersIn(Schema):
    start: dt.date | None = Field(None, description="default: see each report")
    end: dt.date | None = Field(None, description="default: today")
    department: int | None = Field(None, description="a department: its whole subtree")
    owner: int | None = Field(None, description="a rep")


def _filters(request: HttpRequest, q: FiltersIn, months: int) -> Filters:
    require(request.user, "reports.view")
    data = {k: v for k, v in q.dict().items() if v is not None}
    default = add_months(month_start(timezone.localdate()), -(months - 1))
    return parse(request.user, data, default_start=default)


class FigureOut(Schema):
    key: str
    label: str
    kind: str
    value: Any
    previous: Any
    year_ago: Any
    mom_percent: str | None
    yoy_percent: str | None


def _figures(figures: list[channels.Figure]) -> list[dict[str, Any]]:
    return [{"key": f.key, "label": f.label, "kind": f.kind, "value": _n(f.value),
             "previous": _n(f.previous), "year_ago": _n(f.year_ago),
             "mom_percent": _n(f.mom), "yoy_percent": _n(f.yoy)} for f in figures]


# --- channels ----------------------------------------------------------------------------------
class ChannelOut(Schema):
    channel: str
    label: str
    kind: str
    leads: int
    opportunities: int
    contracts: int
    signed: str
    new_customers: int
    spend: str | None
    cash: str | None
    revenue: str | None
    cost_of_sales: str | None
    margin: str | None
    cost_per_lead: str | None
    acquisition_cost: str | None
    cash_return: str | None
    accrual_return: str | None


class MonthOut(ChannelOut):
    month: dt.date


class ChannelsOut(Schema):
    start: dt.date
    end: dt.date
    finance_shown: bool
    spend_shown: bool
    headline: list[FigureOut]
    rows: list[ChannelOut]
    months: list[MonthOut]
    total: ChannelOut


def _channel(r: channels.ChannelRow) -> dict[str, Any]:
    return {"channel": r.channel, "label": r.label, "kind": r.kind, "leads": r.leads,
            "opportunities": r.opportunities, "contracts": r.contracts, "signed": _m(r.signed),
            "new_customers": r.new_customers, "spend": _m(r.spend), "cash": _m(r.cash),
            "revenue": _m(r.revenue), "cost_of_sales": _m(r.cost_of_sales),
            "margin": _m(r.margin), "cost_per_lead": _m(r.cost_per_lead),
            "acquisition_cost": _m(r.acquisition_cost), "cash_return": _m(r.cash_return),
            "accrual_return": _m(r.accrual_return)}


@router.get("/channels", url_name="value_channels", response=ChannelsOut, summary="Channel economics")
def channel_economics(request: HttpRequest, q: Query[FiltersIn],
                      channel: str | None = None) -> dict[str, Any]:
    """Per channel and month: leads, opportunities, contracts signed, new customers, spend,
    cash, revenue less cost of sales, cost per lead, acquisition cost and return; the headline
    figures against the period before and a year earlier. Default period: six months."""
    f = _filters(request, q, 6)
    report = channels.channel_report(request.user, f, channel.strip()[:64] if channel else None)
    return {"start": f.start, "end": f.end, "finance_shown": report.finance_shown,
            "spend_shown": report.spend_shown, "headline": _figures(report.headline),
            "rows": [_channel(r) for r in report.rows],
            "months": [{**_channel(r), "month": m} for m, r in report.months],
            "total": _channel(report.total)}


# --- customer value ------------------------------------------------------------------------------
class SegmentOut(Schema):
    code: str
    name: str
    customers: int
    amount: str
    share_percent: str | None


class RFMOut(Schema):
    start: dt.date
    end: dt.date
    customers: int
    amount: str
    recency_breakpoints: list[int]
    frequency_breakpoints: list[int]
    monetary_breakpoints: list[str]
    headline: list[FigureOut]
    segments: list[SegmentOut]


@router.get("/customers/rfm", url_name="value_rfm", response=RFMOut, summary="RFM segments")
def rfm_segments(request: HttpRequest, q: Query[FiltersIn]) -> dict[str, Any]:
    """Customers and contract value per RFM segment over the period (default twelve months),
    with the quintile breakpoints used and the headline figures compared."""
    f = _filters(request, q, 12)
    report = customer_value.rfm(request.user, f)
    return {"start": f.start, "end": f.end, "customers": report.customers,
            "amount": _m(report.amount), "recency_breakpoints": report.cuts.recency,
            "frequency_breakpoints": report.cuts.frequency,
            "monetary_breakpoints": [_m(v) for v in report.cuts.monetary_yuan],
            "headline": _figures(customer_value.headline(request.user, f)),
            "segments": [{"code": s.code, "name": s.name, "customers": s.customers,
                          "amount": _m(s.amount), "share_percent": _n(s.share)}
                         for s in report.segments]}


class RFMCustomerOut(Schema):
    customer_id: int
    customer: str
    last_purchase: dt.date
    recency_days: int
    frequency: int
    monetary: str
    r: int
    f: int
    m: int
    segment: str
    segment_name: str


class RFMPageOut(Schema):
    items: list[RFMCustomerOut]
    next_page: int | None


def _next(page: Any) -> int | None:
    return int(page.next_cursor) if page.next_cursor else None


@router.get("/customers/rfm/customers", url_name="value_rfm_customers", response=RFMPageOut, summary="Customers by RFM")
def rfm_customers(request: HttpRequest, q: Query[FiltersIn], segment: str = "",
                  page: int = 1, size: int = 50) -> dict[str, Any]:
    """One page of customers with their RFM values, scores and segment, largest first."""
    f = _filters(request, q, 12)
    result = customer_value.rfm_customers(request.user, f, segment=segment, page=page,
                                          size=size)
    return {"items": [{"customer_id": r.customer.pk, "customer": r.customer.name,
                       "last_purchase": r.last_on, "recency_days": r.recency,
                       "frequency": r.frequency, "monetary": _m(r.monetary), "r": r.r,
                       "f": r.f, "m": r.m, "segment": r.segment,
                       "segment_name": r.segment_name} for r in result.items],
            "next_page": _next(result)}


class CohortOut(Schema):
    month: dt.date
    customers: int
    bought_again: int
    bought_again_percent: str | None
    lifetime_value: str | None
    months_since: list[int]
    months_since_percent: list[str | None]


class CohortsOut(Schema):
    start: dt.date
    end: dt.date
    customers: int
    lifetime_value: str | None
    cohorts: list[CohortOut]


@router.get("/customers/cohorts", url_name="value_cohorts", response=CohortsOut, summary="Repurchase cohorts")
def repurchase_cohorts(request: HttpRequest, q: Query[FiltersIn]) -> dict[str, Any]:
    """Customers by month of first contract × months since: who signed again; lifetime value
    (contract value signed per customer to the period's end) overall and per cohort."""
    f = _filters(request, q, 12)
    report = customer_value.cohorts(request.user, f)
    return {"start": f.start, "end": f.end, "customers": report.customers,
            "lifetime_value": _m(report.lifetime_value),
            "cohorts": [{"month": c.month, "customers": c.customers, "bought_again": c.again,
                         "bought_again_percent": _n(c.again_share),
                         "lifetime_value": _m(c.lifetime_value),
                         "months_since": [n for n, _p in c.cells],
                         "months_since_percent": [_n(p) for _n_, p in c.cells]}
                        for c in report.cohorts]}


class ChurnOut(Schema):
    customer_id: int
    customer: str
    purchases: int
    last_purchase: dt.date
    days_since: int
    usual_interval_days: str
    times_usual: str
    amount: str


class ChurnPageOut(Schema):
    items: list[ChurnOut]
    next_page: int | None


@router.get("/customers/churn", url_name="value_churn", response=ChurnPageOut, summary="Churn risk")
def churn_risk(request: HttpRequest, q: Query[FiltersIn], page: int = 1,
               size: int = 50) -> dict[str, Any]:
    """Customers whose time since their last purchase exceeds 1.5 × their usual interval,
    as of the period's end, most overdue first."""
    f = _filters(request, q, 12)
    result = customer_value.churn_risk(request.user, f, page=page, size=size)
    return {"items": [{"customer_id": r.customer.pk, "customer": r.customer.name,
                       "purchases": r.purchases, "last_purchase": r.last_on,
                       "days_since": r.days_since, "usual_interval_days": str(r.usual_interval),
                       "times_usual": str(r.times_usual), "amount": _m(r.amount)}
                      for r in result.items], "next_page": _next(result)}


class UpsellOut(Schema):
    customer_id: int
    customer: str
    offer_product_id: int
    offer: str
    because_product_id: int
    because: str
    confidence_percent: str
    customers_with_both: int


class UpsellPageOut(Schema):
    items: list[UpsellOut]
    next_page: int | None


@router.get("/customers/upsell", url_name="value_upsell", response=UpsellPageOut, summary="Upsell candidates")
def upsell_candidates(request: HttpRequest, q: Query[FiltersIn], page: int = 1,
                      size: int = 50) -> dict[str, Any]:
    """Customers owning a product but not one of its usual companions, surest first."""
    f = _filters(request, q, 12)
    result = customer_value.upsell(request.user, f, page=page, size=size)
    return {"items": [{"customer_id": r.customer.pk, "customer": r.customer.name,
                       "offer_product_id": r.product.pk, "offer": r.product.name,
                       "because_product_id": r.because.pk, "because": r.because.name,
                       "confidence_percent": str(r.rule.confidence),
                       "customers_with_both": r.rule.together} for r in result.items],
            "next_page": _next(result)}
