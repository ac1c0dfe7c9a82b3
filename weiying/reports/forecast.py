"""The sales forecast: open opportunities by expected close month, and how good past
forecasts were. Read from the pipeline's records through the data scope.

By month (overdue, this month and the five after, later, no date):
- best case: every open opportunity's amount;
- commit: the open ones in a stage with a win probability of at least COMMIT_PROBABILITY
  (the stage kinds are only open / won / lost, so the probability decides);
- weighted: amount × the stage's probability, summed in fen and rounded half up;
- won: opportunities marked won with the close in that month (any expected close).

Accuracy, for each of the six months before this one: what the forecast would have said at
00:00 on the 1st — the opportunities open at that moment (created before it, and the last
stage change before it into an open stage, from the stage history) whose expected close is
in the month, weighted by the probability of the stage they were in then — against what
was actually won in the month. accuracy = 1 - |won - weighted| / weighted (0 at worst; none
when nothing was forecast).

Limitation: the expected close date and the amount are not kept in history, so past
forecasts use each opportunity's current ones; an opportunity whose close date slipped is
counted in the month it is expected now. The page says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import (
    BigIntegerField,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Round, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.money import ZERO, fen_sum, from_fen
from weiying.core.scope import scoped
from weiying.pipeline.choices import OpportunityStatus, StageKind
from weiying.pipeline.models import Opportunity, Stage, StageChange
from weiying.reports.filters import Filters, add_months, local_midnight

COMMIT_PROBABILITY = 70
HORIZON = 6  # this month and the five after
HISTORY = 6  # past months whose accuracy is shown


@dataclass
class MonthRow:
    key: str  # "overdue", "YYYY-MM", "later", "none"
    label: str
    month: dt.date | None = None
    count: int = 0
    best_case: Decimal = ZERO
    commit: Decimal = ZERO
    weighted: Decimal = ZERO
    won_count: int = 0
    won: Decimal = ZERO


@dataclass
class AccuracyRow:
    month: dt.date
    count: int = 0  # open on the 1st with the close expected in the month
    best_case: Decimal = ZERO
    commit: Decimal = ZERO
    weighted: Decimal = ZERO
    won: Decimal = ZERO  # everything won in the month
    won_forecast: Decimal = ZERO  # of which forecast on the 1st

    @property
    def accuracy(self) -> Decimal | None:
        if not self.weighted:
            return None
        miss = abs(self.won - self.weighted) / self.weighted
        return max(Decimal(0), Decimal(1) - miss).quantize(Decimal("0.0001"),
                                                          rounding=ROUND_HALF_UP)


@dataclass
class Forecast:
    filters: Filters
    today: dt.date
    months: list[MonthRow] = field(default_factory=list)
    accuracy: list[AccuracyRow] = field(default_factory=list)

    def total(self, name: str) -> Any:
        """The sum of one column over every row (counts as ints, money as Decimal)."""
        start: Any = 0 if name in ("count", "won_count") else ZERO
        return sum((getattr(m, name) for m in self.months), start)


def _scoped(user: Any, filters: Filters) -> QuerySet[Opportunity]:
    qs = Opportunity.objects.filter(pipeline=filters.pipeline)
    return scoped(qs, user).filter(filters.slice_q()).order_by()


def _weighted_fen(total: Any) -> Decimal:
    """Σ fen × probability, divided by 100 and rounded half up to the fen."""
    return (Decimal(int(total or 0)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)


def _fen_times_probability(probability: Any) -> Any:
    return Coalesce(Sum(Round(F("amount") * Value(100)) * probability,
                        output_field=BigIntegerField()), Value(0),
                    output_field=BigIntegerField())


def build_forecast(user: Any, filters: Filters, *, today: dt.date | None = None) -> Forecast:
    """Three grouped statements for the months ahead, one per past month for accuracy."""
    today = today or timezone.localdate()
    this_month = today.replace(day=1)
    horizon = add_months(this_month, HORIZON)
    out = Forecast(filters=filters, today=today)

    rows = {m: MonthRow(key=f"{m:%Y-%m}", label=f"{m:%Y-%m}", month=m)
            for m in (add_months(this_month, i) for i in range(HORIZON))}
    overdue = MonthRow(key="overdue", label=_("Overdue (expected before this month)"))
    later = MonthRow(key="later", label=_("Later"))
    undated = MonthRow(key="none", label=_("No expected close"))

    open_qs = _scoped(user, filters).filter(status=OpportunityStatus.OPEN)
    grouped = (open_qs.annotate(m=TruncMonth("expected_close")).values("m").order_by("m")
               .annotate(n=Count("id"), best=fen_sum("amount"),
                         commit=fen_sum("amount", filter=Q(
                             stage__probability__gte=COMMIT_PROBABILITY)),
                         weighted=_fen_times_probability(F("stage__probability"))))
    for g in grouped:
        m = g["m"]
        if isinstance(m, dt.datetime):
            m = m.date()
        if m is None:
            row = undated
        elif m < this_month:
            row = overdue
        elif m >= horizon:
            row = later
        else:
            row = rows[m]
        row.count += g["n"]
        row.best_case += from_fen(g["best"])
        row.commit += from_fen(g["commit"])
        row.weighted += from_fen(_weighted_fen(g["weighted"]))

    lo, hi = local_midnight(this_month), local_midnight(horizon)
    won = (_scoped(user, filters).filter(status=OpportunityStatus.WON, closed_at__gte=lo,
                                         closed_at__lt=hi)
           .annotate(m=TruncMonth("closed_at")).values("m").order_by("m")
           .annotate(n=Count("id"), amount=fen_sum("amount")))
    for g in won:
        m = g["m"].date() if isinstance(g["m"], dt.datetime) else g["m"]
        if m in rows:
            rows[m].won_count += g["n"]
            rows[m].won += from_fen(g["amount"])
    out.months = [overdue, *rows.values(), later, undated]
    out.accuracy = [past_forecast(user, filters, add_months(this_month, -i))
                    for i in range(HISTORY, 0, -1)]
    return out


def stage_at(moment: dt.datetime) -> Any:
    """Per opportunity: the stage its history had put it in just before `moment`."""
    sub = (StageChange.objects.filter(opportunity=OuterRef("pk"), at__lt=moment)
           .order_by("-at", "-pk").values("to_stage_id")[:1])
    return Subquery(sub, output_field=IntegerField())


def past_forecast(user: Any, filters: Filters, month: dt.date) -> AccuracyRow:
    """What the forecast said at 00:00 on the 1st of `month`, and what was won in it. One
    statement grouped by the stage each opportunity was in then, one for what was won."""
    start, end = local_midnight(month), local_midnight(add_months(month, 1))
    row = AccuracyRow(month=month)
    stages = {s.pk: s for s in Stage.objects.filter(pipeline=filters.pipeline)}
    candidates = (_scoped(user, filters)
                  .filter(expected_close__gte=month, expected_close__lt=add_months(month, 1),
                          created_at__lt=start)
                  .filter(Q(closed_at__isnull=True) | Q(closed_at__gte=start))
                  .annotate(then=stage_at(start)).values("then").order_by("then")
                  .annotate(n=Count("id"), fen=fen_sum("amount"),
                            won=fen_sum("amount", filter=Q(
                                status=OpportunityStatus.WON, closed_at__gte=start,
                                closed_at__lt=end))))
    weighted = 0
    for g in candidates:
        stage = stages.get(g["then"])
        if stage is None or stage.kind != StageKind.OPEN:
            continue
        row.count += g["n"]
        row.best_case += from_fen(g["fen"])
        if stage.probability >= COMMIT_PROBABILITY:
            row.commit += from_fen(g["fen"])
        weighted += int(g["fen"]) * stage.probability
        row.won_forecast += from_fen(g["won"])
    row.weighted = from_fen(_weighted_fen(weighted))
    won = _scoped(user, filters).filter(status=OpportunityStatus.WON, closed_at__gte=start,
                                        closed_at__lt=end).aggregate(a=fen_sum("amount"))
    row.won = from_fen(won["a"])
    return row
