"""Channel economics: from the channel a lead came through to the money it brought, and what
it cost.

The channel of a record is its `channel` text when set, else its lead `source` (as the finance
ledger books a movement's channel): a WeCom channel code or an Official Account code names
its leads after the channel (weiying.wechat.channels), a lead typed in or imported carries a
source (web form, referral, advertising…). Leads count by their own channel, the later stages
by their customer's, which a converted lead hands on.

Per channel and month:
- leads created, opportunities opened, contracts signed (count and amount, VAT included) and
  new customers (whose first signed contract ever was signed then);
- from the finance layer (`finance.reports.marketing_return`, needs finance.view): the spend
  (finance.MarketingSpend), the cash collected as booked, revenue recognised and its cost of
  sales;
- cost per lead = spend ÷ leads, acquisition cost = spend ÷ new customers, cash return =
  cash ÷ spend, accrual return = (revenue − cost of sales) ÷ spend.
Spend belongs to a department, not a rep: with a rep chosen it is not shown (nor the ratios
on it).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    When,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import tree
from weiying.core.errors import ValidationFailed
from weiying.core.money import ZERO, fen_sum, from_fen
from weiying.core.pagination import PAGE_SIZE, Page, keyset_page
from weiying.core.permissions import has_perm, require
from weiying.core.scope import scoped
from weiying.customers.choices import Source
from weiying.finance.models import MarketingSpend, Movement
from weiying.finance.reports import Slice, marketing_return, movements
from weiying.pipeline.models import Contract, Lead, Opportunity
from weiying.pipeline.selectors.aftersale import PURCHASED
from weiying.reports.filters import Filters, add_months, month_start
from weiying.wechat.models import Channel

RATE = Decimal("0.01")
PERCENT = Decimal("0.1")


# --- comparisons ---------------------------------------------------------------------------------
@dataclass
class Figure:
    """A headline figure with the same figure for the period before (month on month for a
    month) and the same period a year earlier. `kind`: "count", "money" or "ratio"."""

    key: str
    label: str
    value: Decimal | int | None
    previous: Decimal | int | None
    year_ago: Decimal | int | None
    kind: str = "count"
    link: str = ""

    @staticmethod
    def _change(now: Any, then: Any) -> Decimal | None:
        if now is None or then is None or then == 0:
            return None
        return (Decimal(now - then) * 100 / abs(Decimal(then))).quantize(
            PERCENT, rounding=ROUND_HALF_UP)

    @property
    def mom(self) -> Decimal | None:
        """Change against the period before, in per cent."""
        return self._change(self.value, self.previous)

    @property
    def yoy(self) -> Decimal | None:
        """Change against the same period a year earlier, in per cent."""
        return self._change(self.value, self.year_ago)


def months_of(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first days of the months the period touches."""
    out, month = [], month_start(start)
    while month <= end:
        out.append(month)
        month = add_months(month, 1)
    return out


def ratio(a: Decimal | None, b: Decimal | int | None, unit: Decimal = RATE) -> Decimal | None:
    if a is None or not b:
        return None
    return (Decimal(a) / Decimal(b)).quantize(unit, rounding=ROUND_HALF_UP)


# --- the channel of a record -----------------------------------------------------------------
def channel_key(prefix: str = "") -> Case:
    """The channel text, or the source when there is none, as a SQL expression."""
    return Case(When(**{f"{prefix}channel": ""}, then=F(f"{prefix}source")),
                default=F(f"{prefix}channel"), output_field=CharField())


KINDS = {
    "wecom": gettext_lazy("WeCom channel code"),
    "oa": gettext_lazy("Official Account code"),
    "source": gettext_lazy("Lead source"),
    "other": gettext_lazy("Other channel"),
}


def channel_label(key: str) -> str:
    if not key:
        return _("No channel")
    if key in Source.values:
        return str(Source(key).label)
    return key


def channel_kinds(keys: Iterable[str]) -> dict[str, str]:
    """What each channel key is: a WeChat code (by the channel's name), a lead source or
    another channel (a campaign typed in by hand, a spend line's channel)."""
    keys = set(keys)
    # The codes' names and kinds only (no figures of theirs): a lead keeps the name of the code
    # it came through whoever may see the code's own row.
    codes = dict(Channel.objects.filter(name__in=keys).values_list("name", "kind"))
    out = {}
    for key in keys:
        if key in codes:
            out[key] = str(KINDS["oa" if codes[key] == Channel.Kind.OA else "wecom"])
        elif key in Source.values:
            out[key] = str(KINDS["source"])
        else:
            out[key] = str(KINDS["other"])
    return out


# --- the report ------------------------------------------------------------------------------
@dataclass
class ChannelRow:
    channel: str
    label: str = ""
    kind: str = ""
    leads: int = 0
    opportunities: int = 0
    contracts: int = 0
    signed: Decimal = ZERO
    new_customers: int = 0
    # None: not shown to this viewer (no finance.view), or not attributable (spend to a rep).
    spend: Decimal | None = None
    cash: Decimal | None = None
    revenue: Decimal | None = None
    cost_of_sales: Decimal | None = None

    @property
    def margin(self) -> Decimal | None:
        if self.revenue is None or self.cost_of_sales is None:
            return None
        return self.revenue - self.cost_of_sales

    @property
    def cost_per_lead(self) -> Decimal | None:
        return ratio(self.spend, self.leads)

    @property
    def acquisition_cost(self) -> Decimal | None:
        return ratio(self.spend, self.new_customers)

    @property
    def cash_return(self) -> Decimal | None:
        return ratio(self.cash, self.spend)

    @property
    def accrual_return(self) -> Decimal | None:
        return ratio(self.margin, self.spend)

    def add(self, other: ChannelRow) -> None:
        for name in ("leads", "opportunities", "contracts", "new_customers"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.signed += other.signed
        for name in ("spend", "cash", "revenue", "cost_of_sales"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, (mine or ZERO) + theirs)


@dataclass
class ChannelReport:
    filters: Filters
    channel: str | None
    rows: list[ChannelRow]  # per channel, over the period
    months: list[tuple[dt.date, ChannelRow]]  # per month, all channels
    by_month: dict[str, dict[dt.date, ChannelRow]]  # channel → month → figures
    total: ChannelRow
    headline: list[Figure] = field(default_factory=list)
    finance_shown: bool = True
    spend_shown: bool = True


def _month(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).date().replace(day=1) if timezone.is_aware(value) \
            else value.date().replace(day=1)
    return value.replace(day=1)


def lead_rows(user: Any, f: Filters, channel: str | None = None) -> QuerySet[Lead]:
    lo, hi = f.bounds
    qs = scoped(Lead.objects.all(), user).filter(created_at__gte=lo, created_at__lt=hi)
    qs = qs.filter(f.slice_q(source=None)).annotate(key=channel_key())
    return qs if channel is None else qs.filter(key=channel)


def opportunity_rows(user: Any, f: Filters, channel: str | None = None) -> QuerySet[Opportunity]:
    lo, hi = f.bounds
    qs = scoped(Opportunity.objects.all(), user).filter(created_at__gte=lo, created_at__lt=hi)
    qs = qs.filter(f.slice_q(source=None)).annotate(key=channel_key("customer__"))
    return qs if channel is None else qs.filter(key=channel)


def contract_rows(user: Any, f: Filters, channel: str | None = None, *,
                  new_only: bool = False) -> QuerySet[Contract]:
    """Contracts signed in the period (not cancelled); `new_only`: only each customer's first
    signed contract ever (the earliest, whoever's scope it is in)."""
    qs = scoped(Contract.objects.all(), user).filter(
        status__in=PURCHASED, signed_on__gte=f.start, signed_on__lte=f.end)
    qs = qs.filter(f.slice_q(source=None)).annotate(key=channel_key("customer__"))
    if new_only:
        qs = qs.exclude(Exists(Contract.objects.filter(
            customer_id=OuterRef("customer_id"), status__in=PURCHASED,
            signed_on__lt=OuterRef("signed_on"))))
    return qs if channel is None else qs.filter(key=channel)


def spend_rows(user: Any, f: Filters, channel: str | None = None) -> QuerySet[MarketingSpend]:
    require(user, "finance.view")
    qs = scoped(MarketingSpend.objects.all(), user).filter(spent_on__gte=f.start,
                                                           spent_on__lte=f.end)
    if f.department is not None:
        qs = qs.filter(tree.subtree_q("department__path", f.department.path))
    return qs if channel is None else qs.filter(channel=channel)


def movement_rows(user: Any, f: Filters, channel: str | None = None) -> QuerySet[Movement]:
    qs = movements(user, Slice(department=f.department, owner=f.owner)).filter(
        on__gte=f.start, on__lte=f.end)
    return qs if channel is None else qs.filter(channel=channel)


def _pipeline(user: Any, f: Filters, channel: str | None
              ) -> dict[tuple[str, dt.date], ChannelRow]:
    """The pipeline's figures per (channel, month): four grouped queries."""
    cells: dict[tuple[str, dt.date], ChannelRow] = {}

    def cell(key: str, month: Any) -> ChannelRow:
        at = (key or "", _month(month))
        if at not in cells:
            cells[at] = ChannelRow(at[0])
        return cells[at]

    tz = timezone.get_current_timezone()
    for r in (lead_rows(user, f, channel).annotate(m=TruncMonth("created_at", tzinfo=tz))
              .values("key", "m").annotate(n=Count("pk")).order_by()):
        cell(r["key"], r["m"]).leads = r["n"]
    for r in (opportunity_rows(user, f, channel)
              .annotate(m=TruncMonth("created_at", tzinfo=tz))
              .values("key", "m").annotate(n=Count("pk")).order_by()):
        cell(r["key"], r["m"]).opportunities = r["n"]
    for r in (contract_rows(user, f, channel).annotate(m=TruncMonth("signed_on"))
              .values("key", "m").annotate(n=Count("pk"), s=fen_sum("total")).order_by()):
        row = cell(r["key"], r["m"])
        row.contracts, row.signed = r["n"], from_fen(r["s"])
    for r in (contract_rows(user, f, channel, new_only=True)
              .annotate(m=TruncMonth("signed_on"))
              .values("key", "m").annotate(n=Count("customer_id", distinct=True)).order_by()):
        cell(r["key"], r["m"]).new_customers = r["n"]
    return cells


def _finance(user: Any, f: Filters, channel: str | None, month: dt.date,
             cells: dict[tuple[str, dt.date], ChannelRow], *, whole: bool = False) -> None:
    """Spend, cash, revenue and cost of sales of one month (the part inside the period), or of
    the whole period (`whole`, filed under `month`), from the finance layer's marketing
    return."""
    start, end = max(f.start, month), min(f.end, add_months(month, 1) - dt.timedelta(days=1))
    if whole:
        start, end = f.start, f.end
    where = Slice(department=f.department, owner=f.owner, channel=channel or "")
    for r in marketing_return(user, start, end, where):
        if channel is not None and r.channel != channel:
            continue
        row = cells.setdefault((r.channel, month), ChannelRow(r.channel))
        row.cash, row.revenue = r.cash, r.revenue
        row.cost_of_sales = r.revenue - r.margin
        row.spend = None if f.owner is not None else r.spend


def _cells(user: Any, f: Filters, channel: str | None, *, monthly: bool = True
           ) -> tuple[dict[tuple[str, dt.date], ChannelRow], bool]:
    """The figures per (channel, month); with `monthly` off the finance figures are read for
    the whole period at once (two queries), for totals."""
    cells = _pipeline(user, f, channel)
    shown = has_perm(user, "finance.view")
    if shown and monthly:
        for month in months_of(f.start, f.end):
            _finance(user, f, channel, month, cells)
    elif shown:
        _finance(user, f, channel, month_start(f.start), cells, whole=True)
    return cells, shown


def _empty(shown: bool, spend: bool, key: str = "") -> ChannelRow:
    row = ChannelRow(key)
    if shown:
        row.cash = row.revenue = row.cost_of_sales = ZERO
        row.spend = ZERO if spend else None
    return row


def totals(user: Any, f: Filters, channel: str | None = None) -> ChannelRow:
    """The period's figures over every channel (the comparisons' side)."""
    cells, shown = _cells(user, f, channel, monthly=False)
    total = _empty(shown, f.owner is None)
    for row in cells.values():
        total.add(row)
    return total


HEADLINE = [
    ("leads", gettext_lazy("Leads"), "count"),
    ("opportunities", gettext_lazy("Opportunities"), "count"),
    ("contracts", gettext_lazy("Contracts signed"), "count"),
    ("signed", gettext_lazy("Signed amount"), "money"),
    ("new_customers", gettext_lazy("New customers"), "count"),
    ("spend", gettext_lazy("Spend"), "money"),
    ("cash", gettext_lazy("Cash collected"), "money"),
    ("revenue", gettext_lazy("Revenue recognised (VAT excl.)"), "money"),
    ("margin", gettext_lazy("Revenue less cost of sales"), "money"),
    ("cost_per_lead", gettext_lazy("Cost per lead"), "money"),
    ("acquisition_cost", gettext_lazy("Acquisition cost per new customer"), "money"),
    ("cash_return", gettext_lazy("Cash return (collected ÷ spend)"), "ratio"),
    ("accrual_return", gettext_lazy("Accrual return (margin ÷ spend)"), "ratio"),
]


def headline(now: ChannelRow, before: ChannelRow, year_ago: ChannelRow) -> list[Figure]:
    return [Figure(key, str(label), getattr(now, key), getattr(before, key),
                   getattr(year_ago, key), kind)
            for key, label, kind in HEADLINE]


def channel_report(user: Any, f: Filters, channel: str | None = None) -> ChannelReport:
    """The channel economics of the period, per channel and per month, with the headline
    figures against the period before and a year earlier."""
    require(user, "reports.view")
    cells, shown = _cells(user, f, channel)
    spend = f.owner is None
    per_channel: dict[str, ChannelRow] = {}
    per_month = {m: _empty(shown, spend) for m in months_of(f.start, f.end)}
    by_month: dict[str, dict[dt.date, ChannelRow]] = defaultdict(dict)
    for (key, month), row in cells.items():
        per_channel.setdefault(key, _empty(shown, spend, key)).add(row)
        per_month.setdefault(month, _empty(shown, spend)).add(row)
        by_month[key][month] = row
    kinds = channel_kinds(per_channel)
    for key, row in per_channel.items():
        row.label, row.kind = channel_label(key), kinds[key]
    rows = sorted(per_channel.values(),
                  key=lambda r: (-(r.spend or ZERO), -r.signed, -r.leads, r.channel))
    total = _empty(shown, spend)
    for row in rows:
        total.add(row)
    report = ChannelReport(filters=f, channel=channel, rows=rows,
                           months=sorted(per_month.items()), by_month=dict(by_month),
                           total=total, finance_shown=shown, spend_shown=spend)
    report.headline = headline(total, totals(user, f.previous(), channel),
                               totals(user, f.year_earlier(), channel))
    return report


# --- drill-down ---------------------------------------------------------------------------------
RECORD_KINDS = ("leads", "opportunities", "contracts", "new_customers", "spend", "cash",
                "revenue")


def record_queryset(user: Any, f: Filters, kind: str, channel: str | None
                    ) -> tuple[QuerySet[Any], list[str]]:
    """The records behind one figure of the report, and their order (newest first)."""
    require(user, "reports.view")
    if kind not in RECORD_KINDS:
        raise ValidationFailed(_("Show one of: %(kinds)s.") % {"kinds": ", ".join(RECORD_KINDS)},
                               field="kind")
    if kind == "leads":
        return lead_rows(user, f, channel).select_related("owner"), ["-created_at", "-id"]
    if kind == "opportunities":
        return (opportunity_rows(user, f, channel).select_related("customer", "owner", "stage"),
                ["-created_at", "-id"])
    if kind in ("contracts", "new_customers"):
        return (contract_rows(user, f, channel, new_only=kind == "new_customers")
                .select_related("customer", "owner"), ["-signed_on", "-id"])
    if kind == "spend":
        if f.owner is not None:
            raise ValidationFailed(_("Spend belongs to a department, not a rep; clear the rep "
                                     "to see it."), field="owner")
        return spend_rows(user, f, channel).select_related("department"), ["-spent_on", "-id"]
    qs = movement_rows(user, f, channel).select_related("contract", "customer", "owner",
                                                        "product")
    qs = qs.exclude(bank=0) if kind == "cash" else qs.filter(~Q(revenue=0) | ~Q(cost=0))
    return qs, ["-on", "-id"]


def records(user: Any, f: Filters, kind: str, channel: str | None, *,
            cursor: str | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the records behind a figure."""
    qs, order = record_queryset(user, f, kind, channel)
    return keyset_page(qs, order, cursor=cursor, size=size)
