"""Reads of opportunities, their history and the kanban, always through the data scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from weiying.core import tree
from weiying.core.errors import NotFound
from weiying.core.money import ZERO, money
from weiying.core.scope import scoped
from weiying.org.models import Department, Employee
from weiying.pipeline.choices import OpportunityStatus, StageKind
from weiying.pipeline.models import Opportunity, Pipeline, Stage, StageChange

BOARD_CAP = 50


# Keyset paging cannot step over NULLs the same way on SQLite and PostgreSQL, so an empty
# expected close sorts as the far future.
NO_CLOSE = dt.date(9999, 12, 31)


def opportunities_for(user: Any) -> QuerySet[Opportunity]:
    return (
        scoped(Opportunity.objects.all(), user)
        .select_related("customer", "stage", "owner", "pipeline")
        .annotate(close_key=Coalesce("expected_close", Value(NO_CLOSE)))
    )


def get_opportunity(user: Any, pk: Any) -> Opportunity:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound() from None
    opportunity = opportunities_for(user).filter(pk=pk).first()
    if opportunity is None:
        raise NotFound()
    return opportunity


def month_range(value: str) -> tuple[dt.date, dt.date] | None:
    """The first day of a "YYYY-MM" month and of the next one; None when it is not a month."""
    try:
        year, month = (int(p) for p in value.split("-"))
        start = dt.date(year, month, 1)
    except (ValueError, TypeError):
        return None
    end = dt.date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def filter_opportunities(
    qs: QuerySet[Opportunity], *, stage: Any = None, status: str = "", owner: Any = None,
    team: Any = None, close_month: str = "", q: str = "", pipeline: Any = None,
    customer: Any = None,
) -> QuerySet[Opportunity]:
    """Filters from a query string or API call. An empty value does not filter; a value
    that names nothing (an unknown team, a malformed month) matches nothing."""
    if stage:
        qs = qs.filter(stage_id=stage)
    if status:
        qs = qs.filter(status=status)
    if owner:
        qs = qs.filter(owner_id=owner)
    if pipeline:
        qs = qs.filter(pipeline_id=pipeline)
    if customer:
        qs = qs.filter(customer_id=customer)
    if team:
        department = Department.objects.filter(pk=team).first()
        qs = (qs.filter(tree.subtree_q("owner__department__path", department.path))
              if department else qs.none())
    if close_month:
        bounds = month_range(close_month)
        qs = (qs.filter(expected_close__gte=bounds[0], expected_close__lt=bounds[1])
              if bounds else qs.none())
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(customer__name__icontains=q))
    return qs


# Public sort keys → keyset orderings (last field unique).
SORTS = {
    "-activity": ["-last_activity_at", "-id"],
    "activity": ["last_activity_at", "id"],
    "-amount": ["-amount", "-id"],
    "amount": ["amount", "id"],
    "close": ["close_key", "id"],
    "-close": ["-close_key", "-id"],
}


@dataclass
class StageStay:
    stage: Stage
    entered_at: dt.datetime
    seconds: int
    current: bool
    by: Employee | None


def stage_history(opportunity: Opportunity, *, now: dt.datetime | None = None) -> list[StageStay]:
    """Each stage the opportunity has been in, with how long it stayed (one query)."""
    now = now or timezone.now()
    changes = list(
        StageChange.objects.filter(opportunity=opportunity)
        .select_related("to_stage", "by").order_by("at", "pk")
    )
    stays = []
    for i, change in enumerate(changes):
        nxt = changes[i + 1] if i + 1 < len(changes) else None
        if nxt is not None:
            seconds = nxt.seconds_in_previous or 0
        else:
            seconds = max(0, int((now - change.at).total_seconds()))
        stays.append(StageStay(stage=change.to_stage, entered_at=change.at, seconds=seconds,
                               current=nxt is None, by=change.by))
    return stays


def pipelines_with_stages() -> list[Pipeline]:
    """Every pipeline with its stages (configuration, not business data: no scope)."""
    return list(Pipeline.objects.prefetch_related("stages").order_by("-is_default", "name"))


# --- kanban ---------------------------------------------------------------------------------
@dataclass
class Column:
    stage: Stage
    count: int = 0
    total: Decimal = ZERO
    weighted: Decimal = ZERO
    cards: list[Opportunity] = field(default_factory=list)

    @property
    def more(self) -> int:
        return self.count - len(self.cards)


@dataclass
class Board:
    pipeline: Pipeline
    columns: list[Column]
    won_count: int
    won_total: Decimal
    lost_count: int
    total: Decimal
    weighted: Decimal


def board(
    user: Any, pipeline: Pipeline, *, owner: Any = None, team: Any = None, cap: int = BOARD_CAP,
    now: dt.datetime | None = None,
) -> Board:
    """The kanban of a pipeline: one column per open stage.

    Query cost: one grouped aggregate for all counts and totals, then one capped query per
    open stage for its cards (the biggest deals first). Won/lost are counted, not listed.
    """
    now = now or timezone.now()
    stages = list(pipeline.stages.order_by("order"))
    base = filter_opportunities(
        scoped(Opportunity.objects.all(), user).filter(pipeline=pipeline), owner=owner, team=team,
    )
    weighted_expr = ExpressionWrapper(
        F("amount") * F("stage__probability"), output_field=DecimalField(max_digits=24,
                                                                         decimal_places=2)
    )
    sums = {
        row["stage_id"]: row
        for row in base.values("stage_id").order_by("stage_id").annotate(
            n=Count("id"), total=Sum("amount"), weighted=Sum(weighted_expr)
        )
    }
    columns = []
    won_count = lost_count = 0
    won_total = ZERO
    for stage in stages:
        row = sums.get(stage.pk, {})
        if stage.kind == StageKind.WON:
            won_count, won_total = row.get("n", 0), money(row.get("total") or 0)
            continue
        if stage.kind == StageKind.LOST:
            lost_count = row.get("n", 0)
            continue
        column = Column(
            stage=stage, count=row.get("n", 0), total=money(row.get("total") or 0),
            weighted=money((row.get("weighted") or 0) / Decimal(100)),
        )
        if column.count:
            column.cards = list(
                base.filter(stage=stage, status=OpportunityStatus.OPEN)
                .select_related("customer", "owner").order_by("-amount", "-id")[:cap]
            )
            for card in column.cards:
                card.days_in_stage = max(0, (now - card.stage_entered_at).days)
        columns.append(column)
    return Board(
        pipeline=pipeline, columns=columns, won_count=won_count, won_total=won_total,
        lost_count=lost_count, total=money(sum((c.total for c in columns), ZERO)),
        weighted=money(sum((c.weighted for c in columns), ZERO)),
    )


def closing_this_month(user: Any, employee: Employee, *, today: dt.date | None = None) -> Any:
    """The employee's open opportunities expected to close this month (or overdue)."""
    today = today or timezone.localdate()
    start = today.replace(day=1)
    end = month_range(f"{start.year}-{start.month}")[1]  # type: ignore[index]
    return (
        opportunities_for(user)
        .filter(owner=employee, status=OpportunityStatus.OPEN, expected_close__lt=end)
        .order_by("expected_close", "id")
    )
