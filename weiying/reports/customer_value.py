"""Customer value: RFM segments, repurchase cohorts, lifetime value, churn risk and upsell.

Everything is read from the signed contracts in the viewer's scope (signed, in delivery or
completed; a cancelled contract is no purchase), sliced by department subtree and rep, and
computed in the database with grouped queries: the pages hold one page of customers at a
time, whatever the number of customers.

Definitions:
- RFM over the contracts signed in the period: recency = days from the customer's last
  signed contract to the period's end, frequency = contracts signed, monetary = their total
  (VAT included). Each is scored 1–5 by quintile: with the customers' values in ascending
  order and b1…b4 the values at positions ⌈k·n/5⌉, a value scores 1 + the number of
  breakpoints it exceeds (recency the other way round: 5 − that number), so equal values
  always score alike. A score of 3 or more is "high"; high/low on R, F and M name the eight
  standard segments.
- Cohorts: customers by the month of their first signed contract (among the contracts in
  view, up to the period's end); cell k = the share of the cohort who signed a contract in
  the k-th month after it.
- Lifetime value to date = contract value signed per customer (VAT included, cancelled
  contracts excluded), from the first contract up to the period's end.
- Churn risk: a customer with two or more purchases whose time since the last one exceeds
  1.5 × their usual interval = the mean gap between their purchases ((last − first) ÷
  (purchases − 1)), so the database answers it in one grouped query (a median would need
  every gap of every customer). Products past their life cycle without a renewal come from
  the after-sale repurchase reminders (weiying.pipeline.selectors.aftersale).
- Upsell: product B is a usual companion of A when at least MIN_PAIR customers bought both;
  each A keeps its COMPANIONS companions bought together most often (confidence = customers
  with both ÷ customers with A). A candidate owns A in view and has never bought B.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, ExtractMonth, ExtractYear, Round
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.catalog.models import Product
from weiying.core.errors import ValidationFailed
from weiying.core.money import ZERO, fen_sum, from_fen
from weiying.core.pagination import PAGE_SIZE, Page
from weiying.core.permissions import require
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.models import Contract, ContractLine
from weiying.pipeline.selectors.aftersale import PURCHASED, repurchase_due
from weiying.reports.channels import Figure, ratio
from weiying.reports.filters import Filters

HIGH = 3  # a score of 3–5 is high
CHURN_FACTOR = (3, 2)  # 1.5 as a fraction: the database compares whole numbers
MIN_PAIR = 2
COMPANIONS = 3
MAX_PAGE = 200
EXPORT_BATCH = 2000
UPSELL_EXPORT = 100_000  # rows of the upsell export at most (one query with a limit)

SEGMENTS: list[tuple[str, Any]] = [
    ("hhh", gettext_lazy("Important value customers")),
    ("lhh", gettext_lazy("Important customers to keep")),
    ("hlh", gettext_lazy("Important customers to develop")),
    ("llh", gettext_lazy("Important customers to win back")),
    ("hhl", gettext_lazy("General value customers")),
    ("lhl", gettext_lazy("General customers to keep")),
    ("hll", gettext_lazy("General customers to develop")),
    ("lll", gettext_lazy("General customers to win back")),
]
SEGMENT_NAMES = dict(SEGMENTS)


class Days(Func):
    """A date as a whole number of days (for differences of dates in SQL)."""

    output_field = IntegerField()
    template = "(%(expressions)s - DATE '2000-01-01')"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection,
                           template="CAST(julianday(%(expressions)s) AS INTEGER)", **extra)


def _size(size: int, cap: int = MAX_PAGE) -> int:
    return max(1, min(int(size), cap))


def _offset(page: int) -> int:
    if page < 1:
        raise ValidationFailed(_("Pages are numbered from 1."), field="page")
    return page


def _customers(ids: Iterable[int]) -> dict[int, Customer]:
    return Customer.objects.select_related("owner").in_bulk(list(ids))


def _paged(qs: QuerySet[Any], page: int, size: int,
           build: Callable[[dict[str, Any], dict[int, Customer]], Any]) -> Page:
    """One page of a grouped per-customer query (offset paging: the number is the cursor)."""
    size = _size(size)
    start = (_offset(page) - 1) * size
    rows = list(qs[start:start + size + 1])
    customers = _customers(r["customer_id"] for r in rows[:size])
    items = [build(r, customers) for r in rows[:size]]
    return Page(items=items, next_cursor=str(page + 1) if len(rows) > size else None)


def _streamed(qs: QuerySet[Any], build: Callable[[dict[str, Any], dict[int, Customer]], Any]
              ) -> Iterator[Any]:
    """Every row of a grouped per-customer query, for an export: one query, the customers
    fetched per batch."""
    batch: list[dict[str, Any]] = []
    for row in qs.iterator(chunk_size=EXPORT_BATCH):
        batch.append(row)
        if len(batch) == EXPORT_BATCH:
            customers = _customers(r["customer_id"] for r in batch)
            yield from (build(r, customers) for r in batch)
            batch = []
    customers = _customers(r["customer_id"] for r in batch)
    yield from (build(r, customers) for r in batch)


def purchases(user: Any, f: Filters, *, since: dt.date | None = None) -> QuerySet[Contract]:
    """The signed contracts in view up to the period's end (from `since` when given)."""
    qs = scoped(Contract.objects.filter(status__in=PURCHASED, signed_on__isnull=False,
                                        signed_on__lte=f.end), user)
    qs = qs.filter(f.slice_q(source=None))
    return qs if since is None else qs.filter(signed_on__gte=since)


def per_customer(qs: QuerySet[Contract], as_of: dt.date) -> QuerySet[Any]:
    """One row per customer: last and first purchase, count, total (fen), days since last."""
    return (qs.order_by().values("customer_id").annotate(
        first_on=Min("signed_on"), last_on=Max("signed_on"), n=Count("pk"),
        m_fen=fen_sum("total"),
        recency=ExpressionWrapper(Days(Value(as_of, output_field=DateField()))
                                  - Days(Max("signed_on")), output_field=IntegerField()),
        span=ExpressionWrapper(Days(Max("signed_on")) - Days(Min("signed_on")),
                               output_field=IntegerField()),
    ))


def _sql(qs: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


def _fetch(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- RFM ---------------------------------------------------------------------------------------
@dataclass
class Breakpoints:
    customers: int
    recency: list[int]
    frequency: list[int]
    monetary: list[int]  # fen

    @property
    def monetary_yuan(self) -> list[Decimal]:
        return [from_fen(v) for v in self.monetary]


@dataclass
class SegmentRow:
    code: str
    name: str
    customers: int = 0
    amount: Decimal = ZERO
    share: Decimal | None = None  # of the customers, in per cent


@dataclass
class RFMRow:
    customer: Customer
    last_on: dt.date
    recency: int
    frequency: int
    monetary: Decimal
    r: int
    f: int
    m: int

    @property
    def segment(self) -> str:
        return "".join("h" if s >= HIGH else "l" for s in (self.r, self.f, self.m))

    @property
    def segment_name(self) -> str:
        return str(SEGMENT_NAMES[self.segment])


def _positions(n: int) -> list[int]:
    return [math.ceil(k * n / 5) for k in (1, 2, 3, 4)]


def breakpoints(user: Any, f: Filters) -> Breakpoints:
    """The quintile breakpoints of recency, frequency and monetary: two queries."""
    grouped = per_customer(purchases(user, f, since=f.start), f.end)
    n = grouped.count()
    if n == 0:
        return Breakpoints(0, [], [], [])
    spots = _positions(n)
    inner, params = _sql(grouped)
    wanted = ", ".join(str(p) for p in sorted(set(spots)))
    rows = _fetch(
        "SELECT t.rr, t.rf, t.rm, t.recency, t.n, t.m_fen FROM ("
        " SELECT g.recency, g.n, g.m_fen,"
        " ROW_NUMBER() OVER (ORDER BY g.recency) AS rr,"
        " ROW_NUMBER() OVER (ORDER BY g.n) AS rf,"
        " ROW_NUMBER() OVER (ORDER BY g.m_fen) AS rm"
        f" FROM ({inner}) g) t"
        f" WHERE t.rr IN ({wanted}) OR t.rf IN ({wanted}) OR t.rm IN ({wanted})", params)
    at: dict[str, dict[int, int]] = {"r": {}, "f": {}, "m": {}}
    for rr, rf, rm, recency, count, fen in rows:
        at["r"][rr], at["f"][rf], at["m"][rm] = int(recency), int(count), int(fen)
    return Breakpoints(n, [at["r"][p] for p in spots], [at["f"][p] for p in spots],
                       [at["m"][p] for p in spots])


def _up(column: str, cuts: list[int]) -> Case:
    """1 + the number of breakpoints the value exceeds."""
    return Case(*[When(**{f"{column}__lte": cut}, then=Value(i + 1))
                  for i, cut in enumerate(cuts)], default=Value(5), output_field=IntegerField())


def _down(column: str, cuts: list[int]) -> Case:
    """5 − the number of breakpoints the value exceeds (fewer days since is better)."""
    return Case(*[When(**{f"{column}__lte": cut}, then=Value(5 - i))
                  for i, cut in enumerate(cuts)], default=Value(1), output_field=IntegerField())


def scored(user: Any, f: Filters, cuts: Breakpoints) -> QuerySet[Any]:
    return per_customer(purchases(user, f, since=f.start), f.end).annotate(
        r=_down("recency", cuts.recency), fq=_up("n", cuts.frequency),
        ms=_up("m_fen", cuts.monetary))


def _segment_filter(qs: QuerySet[Any], segment: str) -> QuerySet[Any]:
    if segment not in SEGMENT_NAMES:
        raise ValidationFailed(_("%(value)s is not a segment; pick one of the table's.")
                               % {"value": segment}, field="segment")
    for column, flag in zip(("r", "fq", "ms"), segment, strict=True):
        qs = qs.filter(**{f"{column}__gte" if flag == "h" else f"{column}__lt": HIGH})
    return qs


@dataclass
class RFMReport:
    cuts: Breakpoints
    segments: list[SegmentRow]
    customers: int
    amount: Decimal


def rfm(user: Any, f: Filters, cuts: Breakpoints | None = None) -> RFMReport:
    """Customers and contract value per segment (all eight, in the standard order), with the
    breakpoints used (`cuts`: already read for this viewer and period)."""
    require(user, "reports.view")
    cuts = cuts or breakpoints(user, f)
    rows = {code: SegmentRow(code, str(name)) for code, name in SEGMENTS}
    if cuts.customers:
        inner, params = _sql(scored(user, f, cuts))
        for rh, fh, mh, count, fen in _fetch(
                f"SELECT CASE WHEN s.r >= {HIGH} THEN 1 ELSE 0 END,"
                f" CASE WHEN s.fq >= {HIGH} THEN 1 ELSE 0 END,"
                f" CASE WHEN s.ms >= {HIGH} THEN 1 ELSE 0 END, COUNT(*), SUM(s.m_fen)"
                f" FROM ({inner}) s GROUP BY 1, 2, 3", params):
            code = "".join("h" if x else "l" for x in (rh, fh, mh))
            rows[code].customers, rows[code].amount = int(count), from_fen(fen)
    total = sum((r.amount for r in rows.values()), ZERO)
    for row in rows.values():
        row.share = ratio(Decimal(row.customers * 100), cuts.customers, Decimal("0.1"))
    return RFMReport(cuts=cuts, segments=list(rows.values()), customers=cuts.customers,
                     amount=total)


def rfm_queryset(user: Any, f: Filters, segment: str = "",
                 cuts: Breakpoints | None = None) -> QuerySet[Any] | None:
    """Customers with their RFM values and scores, of one segment (or all), largest
    monetary first; None when nobody bought in the period."""
    cuts = cuts or breakpoints(user, f)
    if not cuts.customers:
        if segment:
            _segment_filter(per_customer(purchases(user, f), f.end), segment)
        return None
    qs = scored(user, f, cuts)
    if segment:
        qs = _segment_filter(qs, segment)
    return qs.order_by("-m_fen", "customer_id")


def _rfm_row(r: dict[str, Any], customers: dict[int, Customer]) -> RFMRow:
    return RFMRow(customer=customers[r["customer_id"]], last_on=r["last_on"],
                  recency=r["recency"], frequency=r["n"], monetary=from_fen(r["m_fen"]),
                  r=r["r"], f=r["fq"], m=r["ms"])


def rfm_customers(user: Any, f: Filters, *, segment: str = "", page: int = 1,
                  size: int = PAGE_SIZE, cuts: Breakpoints | None = None) -> Page:
    """One page of customers with their RFM values and scores (see rfm_queryset).
    `next_cursor` is the next page's number."""
    require(user, "reports.view")
    qs = rfm_queryset(user, f, segment, cuts)
    if qs is None:
        return Page(items=[], next_cursor=None)
    return _paged(qs, page, size, _rfm_row)


def all_rfm_customers(user: Any, f: Filters, *, segment: str = "") -> Iterator[RFMRow]:
    require(user, "reports.view")
    qs = rfm_queryset(user, f, segment)
    return iter(()) if qs is None else _streamed(qs, _rfm_row)


# --- cohorts and lifetime value ------------------------------------------------------------------
def _ym(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_of(ym: int) -> dt.date:
    return dt.date(ym // 12, ym % 12 + 1, 1)


def _ym_expr() -> Any:
    return ExpressionWrapper(ExtractYear("signed_on") * 12 + ExtractMonth("signed_on") - 1,
                             output_field=IntegerField())


def _contract_months(user: Any, f: Filters) -> tuple[str, tuple[Any, ...]]:
    qs = purchases(user, f).order_by().values(
        "customer_id", ym=_ym_expr(),
        fen=Cast(Round(F("total") * Value(100)), BigIntegerField()))
    return _sql(qs)


@dataclass
class Cohort:
    month: dt.date
    customers: int
    again: int  # bought a second time, any time up to the period's end
    amount: Decimal
    cells: list[tuple[int, Decimal | None]] = field(default_factory=list)  # (customers, %)

    @property
    def again_share(self) -> Decimal | None:
        return ratio(Decimal(self.again * 100), self.customers, Decimal("0.1"))

    @property
    def lifetime_value(self) -> Decimal | None:
        return ratio(self.amount, self.customers)


@dataclass
class CohortReport:
    cohorts: list[Cohort]
    width: int  # months since, 1…width
    customers: int  # every customer in view who has bought, up to the period's end
    amount: Decimal

    @property
    def lifetime_value(self) -> Decimal | None:
        return ratio(self.amount, self.customers)


def cohorts(user: Any, f: Filters) -> CohortReport:
    """The repurchase triangle of the cohorts whose first month falls in the period, and the
    lifetime value to date overall and per cohort: three grouped queries."""
    require(user, "reports.view")
    lo, hi = _ym(f.start), _ym(f.end)
    inner, params = _contract_months(user, f)
    firsts = (f"WITH c AS ({inner}), fc AS (SELECT customer_id, MIN(ym) AS first_ym,"
              " COUNT(*) AS n, SUM(fen) AS fen FROM c GROUP BY customer_id) ")
    overall = _fetch(firsts + "SELECT COUNT(*), SUM(fen) FROM fc", params)[0]
    sizes = _fetch(firsts + "SELECT first_ym, COUNT(*), SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END),"
                   f" SUM(fen) FROM fc WHERE first_ym BETWEEN {lo} AND {hi} GROUP BY first_ym",
                   params)
    later = _fetch(firsts + "SELECT fc.first_ym, c.ym - fc.first_ym, COUNT(DISTINCT c.customer_id)"
                   " FROM c JOIN fc ON c.customer_id = fc.customer_id"
                   f" WHERE fc.first_ym BETWEEN {lo} AND {hi} AND c.ym > fc.first_ym"
                   " GROUP BY fc.first_ym, c.ym - fc.first_ym", params)
    bought: dict[int, dict[int, int]] = defaultdict(dict)
    for first, k, count in later:
        bought[int(first)][int(k)] = int(count)
    out = []
    for first, count, again, fen in sorted(sizes):
        first, count = int(first), int(count)
        cohort = Cohort(month=_month_of(first), customers=count, again=int(again or 0),
                        amount=from_fen(fen))
        for k in range(1, hi - first + 1):
            n = bought[first].get(k, 0)
            cohort.cells.append((n, ratio(Decimal(n * 100), count, Decimal("0.1"))))
        out.append(cohort)
    return CohortReport(cohorts=out, width=hi - lo, customers=int(overall[0] or 0),
                        amount=from_fen(overall[1]))


# --- headline ----------------------------------------------------------------------------------
@dataclass
class Summary:
    buyers: int
    signed: Decimal
    returning: int
    customers_to_date: int
    signed_to_date: Decimal

    @property
    def per_buyer(self) -> Decimal | None:
        return ratio(self.signed, self.buyers)

    @property
    def returning_share(self) -> Decimal | None:
        return ratio(Decimal(self.returning * 100), self.buyers, Decimal("0.1"))

    @property
    def lifetime_value(self) -> Decimal | None:
        return ratio(self.signed_to_date, self.customers_to_date)


def summary(user: Any, f: Filters) -> Summary:
    period = purchases(user, f, since=f.start)
    row = period.aggregate(buyers=Count("customer_id", distinct=True), s=fen_sum("total"))
    returning = period.filter(Exists(purchases(user, f).filter(
        customer_id=OuterRef("customer_id"), signed_on__lt=f.start))).aggregate(
        n=Count("customer_id", distinct=True))["n"]
    to_date = purchases(user, f).aggregate(n=Count("customer_id", distinct=True),
                                           s=fen_sum("total"))
    return Summary(buyers=row["buyers"], signed=from_fen(row["s"]), returning=returning,
                   customers_to_date=to_date["n"], signed_to_date=from_fen(to_date["s"]))


HEADLINE = [
    ("buyers", gettext_lazy("Customers who signed"), "count"),
    ("signed", gettext_lazy("Signed amount"), "money"),
    ("per_buyer", gettext_lazy("Signed per customer"), "money"),
    ("returning", gettext_lazy("Returning customers (bought before the period)"), "count"),
    ("returning_share", gettext_lazy("Share returning (%)"), "ratio"),
    ("lifetime_value", gettext_lazy("Lifetime value to date (signed per customer)"), "money"),
]


def headline(user: Any, f: Filters) -> list[Figure]:
    require(user, "reports.view")
    now, before, year_ago = summary(user, f), summary(user, f.previous()), \
        summary(user, f.year_earlier())
    return [Figure(key, str(label), getattr(now, key), getattr(before, key),
                   getattr(year_ago, key), kind) for key, label, kind in HEADLINE]


# --- drill-down: the customers behind a figure -----------------------------------------------------
CUSTOMER_KINDS = ("buyers", "returning", "to_date", "cohort")


@dataclass
class CustomerRow:
    customer: Customer
    contracts: int
    amount: Decimal
    first_on: dt.date
    last_on: dt.date


def customer_queryset(user: Any, f: Filters, kind: str, *, cohort: dt.date | None = None,
                      k: int = 0) -> QuerySet[Any]:
    """The customers behind a headline figure or a cohort cell, largest amount first.
    buyers / returning: who signed in the period (returning: and before it); to_date: every
    customer in view up to the period's end; cohort: the cohort of `cohort`'s month (k = 0)
    or those of it who signed in the k-th month after."""
    require(user, "reports.view")
    if kind not in CUSTOMER_KINDS:
        raise ValidationFailed(_("Show one of: %(kinds)s.")
                               % {"kinds": ", ".join(CUSTOMER_KINDS)}, field="kind")
    if kind == "buyers":
        qs = per_customer(purchases(user, f, since=f.start), f.end)
    elif kind == "returning":
        qs = per_customer(purchases(user, f, since=f.start).filter(Exists(
            purchases(user, f).filter(customer_id=OuterRef("customer_id"),
                                      signed_on__lt=f.start))), f.end)
    elif kind == "to_date":
        qs = per_customer(purchases(user, f), f.end)
    else:
        if cohort is None:
            raise ValidationFailed(_("Name the cohort's month (YYYY-MM)."), field="cohort")
        if not 0 <= k <= 600:
            raise ValidationFailed(_("Months since the first purchase run from 0."), field="k")
        qs = per_customer(purchases(user, f), f.end).annotate(
            first_ym=Min(_ym_expr())).filter(first_ym=_ym(cohort))
        if k:
            qs = qs.filter(Exists(purchases(user, f).annotate(ym=_ym_expr()).filter(
                customer_id=OuterRef("customer_id"), ym=_ym(cohort) + k)))
    return qs.order_by("-m_fen", "customer_id")


def _customer_row(r: dict[str, Any], customers: dict[int, Customer]) -> CustomerRow:
    return CustomerRow(customer=customers[r["customer_id"]], contracts=r["n"],
                       amount=from_fen(r["m_fen"]), first_on=r["first_on"],
                       last_on=r["last_on"])


def customer_rows(user: Any, f: Filters, kind: str, *, cohort: dt.date | None = None,
                  k: int = 0, page: int = 1, size: int = PAGE_SIZE) -> Page:
    return _paged(customer_queryset(user, f, kind, cohort=cohort, k=k), page, size,
                  _customer_row)


def all_customer_rows(user: Any, f: Filters, kind: str, *, cohort: dt.date | None = None,
                      k: int = 0) -> Iterator[CustomerRow]:
    return _streamed(customer_queryset(user, f, kind, cohort=cohort, k=k), _customer_row)


# --- churn risk --------------------------------------------------------------------------------
@dataclass
class ChurnRow:
    customer: Customer
    purchases: int
    first_on: dt.date
    last_on: dt.date
    days_since: int
    span: int
    amount: Decimal

    @property
    def usual_interval(self) -> Decimal:
        """The mean gap between purchases, in days."""
        return (Decimal(self.span) / (self.purchases - 1)).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def times_usual(self) -> Decimal:
        return (Decimal(self.days_since) * (self.purchases - 1) / self.span).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)


def churn_queryset(user: Any, f: Filters) -> QuerySet[Any]:
    num, den = CHURN_FACTOR
    return (per_customer(purchases(user, f), f.end)
            .filter(n__gte=2, span__gt=0)
            .annotate(over=ExpressionWrapper(
                den * (F("n") - 1) * F("recency") - num * F("span"),
                output_field=IntegerField()))
            .filter(over__gt=0)
            .annotate(risk=ExpressionWrapper(
                Cast(F("recency") * (F("n") - 1), FloatField()) / Cast(F("span"), FloatField()),
                output_field=FloatField()))
            .order_by("-risk", "-m_fen", "customer_id"))


def _churn_row(r: dict[str, Any], customers: dict[int, Customer]) -> ChurnRow:
    return ChurnRow(customer=customers[r["customer_id"]], purchases=r["n"],
                    first_on=r["first_on"], last_on=r["last_on"], days_since=r["recency"],
                    span=r["span"], amount=from_fen(r["m_fen"]))


def churn_risk(user: Any, f: Filters, *, page: int = 1, size: int = PAGE_SIZE) -> Page:
    """Customers overdue by their own rhythm, as of the period's end: the longest overdue
    (in multiples of their usual interval) first, then the largest amount."""
    require(user, "reports.view")
    return _paged(churn_queryset(user, f), page, size, _churn_row)


def all_churn_risk(user: Any, f: Filters) -> Iterator[ChurnRow]:
    require(user, "reports.view")
    return _streamed(churn_queryset(user, f), _churn_row)


def lifecycle_overdue(user: Any, f: Filters, *, cursor: str | None = None,
                      size: int = PAGE_SIZE) -> Page:
    """Products whose life cycle has run out without a renewal, as of the period's end: the
    after-sale repurchase reminders that are already due.

    Limitation: these follow the viewer's scope of customers, not the department and rep
    chosen on the page (the reminders have no such filter); the page says so. A contract
    signed after an end in the past counts as a renewal already."""
    require(user, "reports.view")
    page = repurchase_due(user, within_days=0, today=f.end, cursor=cursor, size=size)
    page.items = [r for r in page.items if r.days_overdue > 0]
    return page


# --- upsell --------------------------------------------------------------------------------------
@dataclass
class Companion:
    product_id: int
    companion_id: int
    together: int  # customers who bought both
    buyers: int  # customers who bought the product

    @property
    def confidence(self) -> Decimal:
        return (Decimal(self.together * 100) / self.buyers).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class UpsellRow:
    customer: Customer
    product: Product  # the companion to offer
    because: Product  # what they own that it usually goes with
    rule: Companion


def _owned(qs: QuerySet[ContractLine]) -> tuple[str, tuple[Any, ...]]:
    return _sql(qs.order_by().values(cust=F("contract__customer_id"),
                                     prod=F("product_id")).distinct())


def _all_owned(f: Filters) -> QuerySet[ContractLine]:
    return ContractLine.objects.filter(contract__status__in=PURCHASED,
                                       contract__signed_on__lte=f.end)


def companions(f: Filters) -> dict[int, list[Companion]]:
    """Each product's usual companions, mined from the whole company's purchases up to the
    period's end (counts of customers only; no customer is named): two grouped queries.

    Limitation: the pairs are counted at request time with a self-join of every customer's
    products; on a very large history this wants a nightly roll-up of product pairs."""
    inner, params = _owned(_all_owned(f))
    buyers = dict(_fetch(f"SELECT a.prod, COUNT(*) FROM ({inner}) a GROUP BY a.prod", params))
    pairs = _fetch(
        f"WITH a AS ({inner}) SELECT x.prod, y.prod, COUNT(*) FROM a x JOIN a y"
        " ON x.cust = y.cust AND x.prod <> y.prod GROUP BY x.prod, y.prod"
        f" HAVING COUNT(*) >= {MIN_PAIR}", params)
    out: dict[int, list[Companion]] = defaultdict(list)
    for a, b, n in pairs:
        out[int(a)].append(Companion(int(a), int(b), int(n), int(buyers[a])))
    for a in out:
        out[a] = sorted(out[a], key=lambda c: (-c.together, c.companion_id))[:COMPANIONS]
    return dict(out)


def upsell(user: Any, f: Filters, *, page: int = 1, size: int = PAGE_SIZE,
           cap: int = MAX_PAGE, rules: dict[int, list[Companion]] | None = None) -> Page:
    """Customers who own a product in view but not one of its usual companions, the surest
    companion (highest confidence) first; one row per customer and product to offer. `cap`:
    the largest page (an export asks for UPSELL_EXPORT)."""
    require(user, "reports.view")
    rules = [c for group in (rules if rules is not None else companions(f)).values()
             for c in group]
    if not rules:
        return Page(items=[], next_cursor=None)
    size = _size(size, cap)
    start = (_offset(page) - 1) * size
    mine, mine_params = _owned(ContractLine.objects.filter(contract__in=purchases(user, f)))
    every, every_params = _owned(_all_owned(f))
    weight = {(c.product_id, c.companion_id): c for c in rules}
    values = " UNION ALL ".join(["SELECT %s AS pa, %s AS pb, %s AS w"] * len(rules))
    rule_params: list[Any] = []
    for c in rules:
        rule_params += [c.product_id, c.companion_id, c.together * 1_000_000 // c.buyers]
    rows = _fetch(
        f"WITH o AS ({mine}), a AS ({every}), r AS ({values})"
        " SELECT o.cust, r.pb, MAX(r.w) FROM o JOIN r ON o.prod = r.pa"
        " WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.cust = o.cust AND a.prod = r.pb)"
        " GROUP BY o.cust, r.pb ORDER BY MAX(r.w) DESC, o.cust, r.pb"
        f" LIMIT {size + 1} OFFSET {start}",
        mine_params + every_params + tuple(rule_params))
    shown = rows[:size]
    ids = {int(r[0]) for r in shown}
    owned: dict[int, set[int]] = defaultdict(set)
    for cust, prod in (ContractLine.objects.filter(contract__in=purchases(user, f),
                                                   contract__customer_id__in=ids)
                       .values_list("contract__customer_id", "product_id").distinct()):
        owned[cust].add(prod)
    customers = _customers(ids)
    products = Product.objects.in_bulk({int(r[1]) for r in shown}
                                       | {p for s in owned.values() for p in s})
    items = []
    for cust, pb, _w in shown:
        cust, pb = int(cust), int(pb)
        best = max((weight[(a, pb)] for a in owned[cust] if (a, pb) in weight),
                   key=lambda c: (c.together / c.buyers, -c.product_id))
        items.append(UpsellRow(customer=customers[cust], product=products[pb],
                               because=products[best.product_id], rule=best))
    return Page(items=items, next_cursor=str(page + 1) if len(rows) > size else None)


def companion_table(f: Filters, rules: dict[int, list[Companion]] | None = None
                    ) -> list[tuple[Product, Product, Companion]]:
    """The companion rules for the page: product, companion, figures."""
    rules_list = [c for group in (rules if rules is not None else companions(f)).values()
                  for c in group]
    products = Product.objects.in_bulk({c.product_id for c in rules_list}
                                       | {c.companion_id for c in rules_list})
    rows = [(products[c.product_id], products[c.companion_id], c) for c in rules_list]
    rows.sort(key=lambda r: (-r[2].together, r[0].code, r[1].code))
    return rows

