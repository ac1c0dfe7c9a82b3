"""The sales funnel of a pipeline, read from the pipeline's own records through the data scope.

Cohort: the opportunities CREATED in the period (in the company's time zone) in the chosen
pipeline, inside the viewer's scope and the slice (department subtree, rep, lead source).
Each is followed as far as it got, up to now:

- its *furthest stage* is the highest-ordered open stage its stage history (StageChange)
  ever entered; an opportunity that is won now counts as having reached every open stage
  (a deal won straight from the second stage passed the later ones by being won);
- "reached stage k" = furthest stage at or after k, or won. Conversion from stage k to the
  next = reached(next) / reached(k); for the last open stage the next step is won. Drop-off
  at k = reached(k) - reached(next): the opportunities whose furthest stage is k and that
  are not won, split into lost and still open;
- won and lost are the cohort's current statuses, with amounts; loss reasons from
  Opportunity.lost_reason (counts and amounts);
- time in stage: every completed stay in an open stage by a cohort opportunity (each
  StageChange out of the stage carries the seconds spent in it); a stay still going on is
  not counted. The average is exact (whole seconds, rounded half up); the median is that of
  the stays counted in whole hours (so it can be read off an hourly histogram, which the
  roll-up keeps), given in seconds.

Query cost: the funnel is two aggregate statements over the cohort (the furthest stage of
each opportunity grouped with its status and loss reason; the stays grouped by stage and
hour), the breakdowns by team, source and month one more, whatever the number of
opportunities. For a viewer who sees the whole company without a slice, the two come from
the roll-up (weiying.reports.rollup): a few thousand rows instead of every opportunity. The
cohort is the ORM's scoped queryset compiled to SQL, so the scope comes from the one scoping
function; only the grouping around it is written here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    BigIntegerField,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Round, Substr, TruncMonth
from django.utils.translation import gettext as _

from weiying.core import tree
from weiying.core.errors import ValidationFailed
from weiying.core.money import ZERO, from_fen, money
from weiying.core.scope import data_scope_of, scoped
from weiying.org.choices import DataScope
from weiying.org.models import Department
from weiying.pipeline.choices import LostReason, OpportunityStatus, StageKind
from weiying.pipeline.models import Opportunity, Pipeline, Stage, StageChange
from weiying.reports import rollup
from weiying.reports.filters import (
    NO_SOURCE,
    Filters,
    default_pipeline,
    local_midnight,
    source_label,
    teams_base,
)

RATE = Decimal("0.0001")
WON, LOST, OPEN = OpportunityStatus.WON, OpportunityStatus.LOST, OpportunityStatus.OPEN


def rate(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part / whole as a fraction rounded half up to four places; None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATE, rounding=ROUND_HALF_UP)


def _half_up(value: Any) -> int | None:
    if value is None:
        return None
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- results --------------------------------------------------------------------------------
@dataclass
class StageRow:
    stage_id: int
    name: str
    order: int
    probability: int
    reached: int = 0
    reached_amount: Decimal = ZERO
    next_reached: int = 0
    conversion: Decimal | None = None  # to the next stage (won after the last)
    dropped: int = 0
    dropped_lost: int = 0
    dropped_open: int = 0
    stays: int = 0
    avg_seconds: int | None = None
    median_seconds: int | None = None


@dataclass
class ReasonRow:
    code: str
    label: str
    count: int
    amount: Decimal


@dataclass
class Funnel:
    filters: Filters
    stages: list[StageRow]
    created: int = 0
    created_amount: Decimal = ZERO
    won: int = 0
    won_amount: Decimal = ZERO
    lost: int = 0
    lost_amount: Decimal = ZERO
    open: int = 0
    open_amount: Decimal = ZERO
    reasons: list[ReasonRow] = field(default_factory=list)

    @property
    def win_rate(self) -> Decimal | None:
        return rate(self.won, self.created)

    @property
    def close_rate(self) -> Decimal | None:
        """Won among the closed (won + lost)."""
        return rate(self.won, self.won + self.lost)

    def figures(self) -> dict[str, Any]:
        """Plain figures (ints, Decimal strings) — what the API returns and the benchmark
        compares with hand-written SQL."""
        def d(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        return {
            "created": self.created, "created_amount": d(self.created_amount),
            "won": self.won, "won_amount": d(self.won_amount),
            "lost": self.lost, "lost_amount": d(self.lost_amount),
            "open": self.open, "open_amount": d(self.open_amount),
            "win_rate": d(self.win_rate),
            "stages": [{
                "stage_id": s.stage_id, "name": s.name, "reached": s.reached,
                "reached_amount": d(s.reached_amount), "conversion": d(s.conversion),
                "dropped": s.dropped, "dropped_lost": s.dropped_lost,
                "dropped_open": s.dropped_open, "stays": s.stays,
                "avg_seconds": s.avg_seconds, "median_seconds": s.median_seconds,
            } for s in self.stages],
            "reasons": [{"code": r.code, "count": r.count, "amount": d(r.amount)}
                        for r in self.reasons],
        }


@dataclass
class BreakdownRow:
    key: str
    label: str
    params: dict[str, str]  # the drill-down parameters naming this row's records
    created: int = 0
    reached: list[int] = field(default_factory=list)  # per open stage, in order
    won: int = 0
    won_amount: Decimal = ZERO
    lost: int = 0
    open: int = 0

    @property
    def win_rate(self) -> Decimal | None:
        return rate(self.won, self.created)


@dataclass
class Breakdowns:
    teams: list[BreakdownRow]
    sources: list[BreakdownRow]
    months: list[BreakdownRow]


@dataclass
class Change:
    label: str
    current: Any
    previous: Any
    year_ago: Any
    is_rate: bool = False

    @staticmethod
    def _delta(now: Any, then: Any) -> Any:
        if now is None or then is None:
            return None
        return now - then

    @property
    def mom(self) -> Any:
        return self._delta(self.current, self.previous)

    @property
    def yoy(self) -> Any:
        return self._delta(self.current, self.year_ago)

    @property
    def mom_pct(self) -> Decimal | None:
        return None if self.is_rate or not self.previous else rate(self.mom, self.previous)

    @property
    def yoy_pct(self) -> Decimal | None:
        return None if self.is_rate or not self.year_ago else rate(self.yoy, self.year_ago)


@dataclass
class Comparison:
    previous: Funnel
    year_ago: Funnel
    rows: list[Change]


# --- the cohort -----------------------------------------------------------------------------
def open_stages(pipeline: Pipeline) -> list[Stage]:
    return list(pipeline.stages.filter(kind=StageKind.OPEN).order_by("order"))


def cohort(user: Any, filters: Filters) -> QuerySet[Opportunity]:
    """The opportunities the funnel follows: created in the period, in the pipeline, inside
    the viewer's scope and the slice."""
    lo, hi = filters.bounds
    qs = Opportunity.objects.filter(pipeline=filters.pipeline, created_at__gte=lo,
                                    created_at__lt=hi)
    return scoped(qs, user).filter(filters.slice_q()).order_by()


def _amount_expr() -> Any:
    # PostgreSQL sums numeric exactly; SQLite keeps decimals as floats, so sum whole fen.
    if connection.vendor == "postgresql":
        return F("amount")
    return Cast(Round(F("amount") * 100), BigIntegerField())


def _yuan(value: Any) -> Decimal:
    if value is None:
        return ZERO
    if connection.vendor == "postgresql":
        return money(value)
    return from_fen(value)


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _furthest_sql(stages: list[Stage]) -> tuple[str, list[Any]]:
    """SELECT opportunity id, furthest open stage order over the cohort `c` (a CTE)."""
    cases = " ".join("WHEN %s THEN %s" for _s in stages)
    params: list[Any] = []
    for s in stages:
        params += [s.pk, s.order]
    marks = ", ".join("%s" for _s in stages)
    sql = (f"SELECT sc.opportunity_id AS oid, MAX(CASE sc.to_stage_id {cases} END) AS top "
           f"FROM {_table(StageChange)} sc "
           f"WHERE sc.to_stage_id IN ({marks}) AND sc.opportunity_id IN (SELECT id FROM c) "
           f"GROUP BY sc.opportunity_id")
    return sql, params + [s.pk for s in stages]


def _levels(qs: QuerySet[Opportunity], stages: list[Stage], keys: dict[str, Any]
            ) -> list[tuple[Any, ...]]:
    """Rows (*keys, furthest order, status, count, amount) — one statement."""
    names = list(keys)
    base = qs.annotate(amt=_amount_expr(), **keys).values_list("id", "status", "amt", *names)
    cohort_sql, cohort_params = base.query.sql_with_params()
    columns = ", ".join(["id", "status", "amt", *[f"k{i}" for i in range(len(names))]])
    if not stages:
        return []
    furthest, furthest_params = _furthest_sql(stages)
    key_cols = "".join(f"c.k{i}, " for i in range(len(names)))
    group = ", ".join(str(i + 1) for i in range(len(names) + 2))
    sql = (f"WITH c ({columns}) AS ({cohort_sql}) "
           f"SELECT {key_cols}COALESCE(t.top, 0), c.status, COUNT(*), SUM(c.amt) "
           f"FROM c LEFT JOIN ({furthest}) t ON t.oid = c.id GROUP BY {group}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*cohort_params, *furthest_params])
        return list(cursor.fetchall())


def _stays(qs: QuerySet[Opportunity], stages: list[Stage]) -> rollup.Histogram:
    """The cohort's completed stays by stage and whole hours — one grouped statement (no
    sort: the median is read off the histogram)."""
    out: rollup.Histogram = defaultdict(dict)
    if not stages:
        return out
    cohort_sql, cohort_params = qs.values_list("id").query.sql_with_params()
    marks = ", ".join("%s" for _s in stages)
    hours = f"sc.seconds_in_previous / {rollup.HOUR}"
    sql = (f"WITH c (id) AS ({cohort_sql}) "
           f"SELECT sc.from_stage_id, {hours}, COUNT(*), SUM(sc.seconds_in_previous) "
           f"FROM {_table(StageChange)} sc "
           f"WHERE sc.opportunity_id IN (SELECT id FROM c) AND sc.from_stage_id IN ({marks}) "
           f"AND sc.seconds_in_previous IS NOT NULL GROUP BY sc.from_stage_id, {hours}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*cohort_params, *[s.pk for s in stages]])
        for stage_id, h, n, total in cursor.fetchall():
            out[stage_id][int(h)] = [int(n), int(total)]
    return out


def _merge(into: rollup.Histogram, more: rollup.Histogram) -> rollup.Histogram:
    for stage_id, by_hours in more.items():
        mine = into.setdefault(stage_id, {})
        for h, (n, total) in by_hours.items():
            slot = mine.setdefault(h, [0, 0])
            slot[0] += n
            slot[1] += total
    return into


def median_hours(by_hours: dict[int, list[int]]) -> Decimal | None:
    """The median of the stays in whole hours (the mean of the middle two for an even
    count), from {hours: [stays, seconds]}."""
    n = sum(v[0] for v in by_hours.values())
    if not n:
        return None
    wanted = [(n + 1) // 2, (n + 2) // 2]
    found: list[int] = []
    seen = 0
    for h in sorted(by_hours):
        seen += by_hours[h][0]
        while wanted and wanted[0] <= seen:
            found.append(h)
            wanted.pop(0)
        if not wanted:
            break
    return Decimal(found[0] + found[1]) / 2


# --- the funnel -----------------------------------------------------------------------------
def _cumulate(stages: list[Stage], per_top: dict[int, dict[str, list[Any]]],
              won: tuple[int, Decimal]) -> list[StageRow]:
    """Reached counts from "furthest stage" counts: reached(k) = furthest ≥ k, plus won.
    `per_top` = {furthest order: {status: [count, amount]}} for the not-won."""
    rows = []
    for s in stages:
        row = StageRow(stage_id=s.pk, name=s.name, order=s.order, probability=s.probability)
        row.reached, row.reached_amount = won
        for top, by_status in per_top.items():
            if top >= s.order:
                for count, amount in by_status.values():
                    row.reached += count
                    row.reached_amount += amount
            if top == s.order:
                row.dropped_lost += by_status.get(LOST, [0, ZERO])[0]
                row.dropped_open += by_status.get(OPEN, [0, ZERO])[0]
        row.dropped = row.dropped_lost + row.dropped_open
        row.next_reached = row.reached - row.dropped
        row.conversion = rate(row.next_reached, row.reached)
        rows.append(row)
    return rows


def uses_rollup(user: Any, filters: Filters) -> bool:
    """The company-wide roll-up answers for a viewer who sees everything, without a
    department, rep or source chosen; every other slice reads the pipeline's tables."""
    return (data_scope_of(user) == DataScope.ALL and filters.department is None
            and filters.owner is None and not filters.source)


def build_funnel(user: Any, filters: Filters, *, use_rollup: bool | None = None) -> Funnel:
    """The funnel of the filters' cohort: two grouped statements (furthest stage with status
    and loss reason; stays by stage and whole hours), read from the roll-up when it answers
    (uses_rollup); nothing per opportunity in Python."""
    stages = open_stages(filters.pipeline)
    qs = cohort(user, filters)
    from_rollup = uses_rollup(user, filters) if use_rollup is None else use_rollup
    if from_rollup:
        rows = rollup.levels(filters.pipeline, filters.start, filters.end)
        stays = rollup.stays(filters.pipeline, filters.start, filters.end)
    else:
        rows = _levels(qs, stages, {"reason": F("lost_reason")})
        stays = _stays(qs, stages)
    funnel = Funnel(filters=filters, stages=[])
    per_top: dict[int, dict[str, list[Any]]] = defaultdict(dict)
    reasons: dict[str, list[Any]] = {}
    for reason, top, status, count, amount in rows:
        amount = from_fen(amount) if from_rollup else _yuan(amount)
        funnel.created += count
        funnel.created_amount += amount
        if status == WON:
            funnel.won += count
            funnel.won_amount += amount
            continue
        slot = per_top[int(top)].setdefault(status, [0, ZERO])
        slot[0] += count
        slot[1] += amount
        if status == LOST:
            funnel.lost += count
            funnel.lost_amount += amount
            entry = reasons.setdefault(reason or "", [0, ZERO])
            entry[0] += count
            entry[1] += amount
        else:
            funnel.open += count
            funnel.open_amount += amount
    funnel.stages = _cumulate(stages, per_top, (funnel.won, funnel.won_amount))
    for row in funnel.stages:
        by_hours = stays.get(row.stage_id, {})
        count = sum(v[0] for v in by_hours.values())
        total = sum(v[1] for v in by_hours.values())
        row.stays = count
        row.avg_seconds = _half_up(Decimal(total) / count) if count else None
        median = median_hours(by_hours)
        row.median_seconds = _half_up(median * rollup.HOUR) if median is not None else None
    labels = dict(LostReason.choices)
    funnel.reasons = sorted(
        (ReasonRow(code=code, label=str(labels.get(code, code or "—")), count=n, amount=a)
         for code, (n, a) in reasons.items()),
        key=lambda r: (-r.count, -r.amount, r.code))
    return funnel


def company_funnel(user: Any, start: dt.date, end: dt.date,
                   pipeline: Pipeline | None = None) -> Funnel:
    """The funnel of everything the user may see, opportunities created from `start` to
    `end` (inclusive), in `pipeline` (default: the default pipeline). The benchmark's entry
    point; bench/funnel_sql.py:hand_funnel computes the same figures in hand-written SQL."""
    filters = Filters(start=start, end=end, pipeline=pipeline or default_pipeline())
    return build_funnel(user, filters)


# --- breakdowns -----------------------------------------------------------------------------
def breakdowns(user: Any, filters: Filters) -> Breakdowns:
    """The funnel by team (child departments of the chosen department), by lead source and
    by creation month: one statement grouped by all three, summed up here."""
    stages = open_stages(filters.pipeline)
    base = teams_base(user, filters)
    width = len(base.path) + tree.SEGMENT if base is not None else tree.SEGMENT
    keys = {
        "team": Substr("department__path", 1, width),
        "src": F("lead__source"),
        "month": TruncMonth("created_at"),
    }
    rows = _levels(cohort(user, filters), stages, keys)
    teams: dict[str, dict[int, dict[str, list[Any]]]] = defaultdict(lambda: defaultdict(dict))
    sources: dict[str, dict[int, dict[str, list[Any]]]] = defaultdict(lambda: defaultdict(dict))
    months: dict[str, dict[int, dict[str, list[Any]]]] = defaultdict(lambda: defaultdict(dict))
    for team, src, month, top, status, count, amount in rows:
        amount = _yuan(amount)
        for bucket, key in ((teams, team or ""), (sources, src or NO_SOURCE),
                            (months, str(month)[:7] if month else "")):
            slot = bucket[key][int(top)].setdefault(status, [0, ZERO])
            slot[0] += count
            slot[1] += amount

    team_paths = [k for k in teams if k]
    by_path = {d.path: d for d in Department.objects.filter(path__in=team_paths)}

    def team_row(key: str) -> BreakdownRow:
        dept = by_path.get(key)
        if dept is None:
            return BreakdownRow(key=key, label="—", params={"team": "none"})
        label = dept.name
        if base is not None and dept.pk == base.pk:
            label = f"{dept.name} ({_direct_label()})"
        return BreakdownRow(key=key, label=label, params={"team": str(dept.pk)})

    def fill(row: BreakdownRow, per_top: dict[int, dict[str, list[Any]]]) -> BreakdownRow:
        for by_status in per_top.values():
            for status, (count, amount) in by_status.items():
                row.created += count
                if status == WON:
                    row.won += count
                    row.won_amount += amount
                elif status == LOST:
                    row.lost += count
                else:
                    row.open += count
        won_count = row.won
        row.reached = [
            won_count + sum(c for top, bs in per_top.items() if top >= s.order
                            for st, (c, _a) in bs.items() if st != WON)
            for s in stages]
        return row

    team_rows = sorted((fill(team_row(k), v) for k, v in teams.items()),
                       key=lambda r: (-r.created, r.label))
    source_rows = sorted(
        (fill(BreakdownRow(key=k, label=source_label(k), params={"src": k}), v)
         for k, v in sources.items()), key=lambda r: (-r.created, r.label))
    month_rows = sorted(
        (fill(BreakdownRow(key=k, label=k, params={"month": k}), v) for k, v in months.items()),
        key=lambda r: r.key)
    return Breakdowns(teams=team_rows, sources=source_rows, months=month_rows)


def _direct_label() -> str:
    return _("directly")


# --- comparison -----------------------------------------------------------------------------
def compare(user: Any, current: Funnel) -> Comparison:
    """The same figures for the period before and the same period a year earlier. For a
    twelve-month period the two are the same period, computed once."""
    prev_filters = current.filters.previous()
    year_filters = current.filters.year_earlier()
    previous = build_funnel(user, prev_filters)
    year_ago = (previous if (year_filters.start, year_filters.end)
                == (prev_filters.start, prev_filters.end) else build_funnel(user, year_filters))
    rows = [
        Change(_("Opportunities created"), current.created, previous.created, year_ago.created),
        Change(_("Amount created"), current.created_amount, previous.created_amount,
               year_ago.created_amount),
        Change(_("Won"), current.won, previous.won, year_ago.won),
        Change(_("Amount won"), current.won_amount, previous.won_amount, year_ago.won_amount),
        Change(_("Lost"), current.lost, previous.lost, year_ago.lost),
        Change(_("Win rate"), current.win_rate, previous.win_rate, year_ago.win_rate,
               is_rate=True),
    ]
    for now, then, ago in zip(current.stages, previous.stages, year_ago.stages, strict=False):
        rows.append(Change(_("Reached %(stage)s") % {"stage": now.name}, now.reached,
                           then.reached, ago.reached))
        rows.append(Change(_("Conversion after %(stage)s") % {"stage": now.name},
                           now.conversion, then.conversion, ago.conversion, is_rate=True))
    return Comparison(previous=previous, year_ago=year_ago, rows=rows)


# --- drill-down -----------------------------------------------------------------------------
def furthest_order() -> Any:
    """Per opportunity: the highest order of the open stages its history entered (0: none)."""
    sub = (StageChange.objects.filter(opportunity=OuterRef("pk"), to_stage__kind=StageKind.OPEN)
           .order_by().values("opportunity").annotate(m=Max("to_stage__order")).values("m"))
    return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))


def records(user: Any, filters: Filters, params: dict[str, Any]) -> QuerySet[Opportunity]:
    """The cohort opportunities behind one number of the funnel page. `params` (strings, as
    in the query string): stage=<id> reached that stage; dropped=<id> reached it and went
    no further; outcome=won|lost|open; reason=<lost reason>; team=<department id> (the
    department itself when it is the breakdown's base, else its subtree); src=<source or
    "none">; month=YYYY-MM (created in that month)."""
    from weiying.pipeline.selectors.opportunities import month_range

    qs = cohort(user, filters).select_related("customer", "stage", "owner", "lead")
    stage_filter = params.get("stage") or params.get("dropped")
    if stage_filter:
        stage = (Stage.objects.filter(pk=stage_filter, pipeline=filters.pipeline,
                                      kind=StageKind.OPEN).first()
                 if str(stage_filter).isdigit() else None)
        if stage is None:
            raise ValidationFailed(_("That is not an open stage of this pipeline."),
                                   field="stage")
        qs = qs.annotate(top=furthest_order())
        if params.get("stage"):
            qs = qs.filter(Q(top__gte=stage.order) | Q(status=WON))
        else:
            qs = qs.filter(top=stage.order).exclude(status=WON)
    outcome = params.get("outcome") or ""
    if outcome:
        if outcome not in OpportunityStatus.values:
            raise ValidationFailed(_("The outcome is won, lost or open."), field="outcome")
        qs = qs.filter(status=outcome)
    if params.get("reason") is not None and params.get("reason") != "":
        reason = params["reason"]
        qs = qs.filter(status=LOST, lost_reason="" if reason == "none" else reason)
    team = params.get("team") or ""
    if team:
        base = teams_base(user, filters)
        dept = Department.objects.filter(pk=team).first() if team.isdigit() else None
        if team == "none":
            qs = qs.filter(department__isnull=True)
        elif dept is None:
            qs = qs.none()
        elif base is not None and dept.pk == base.pk:
            qs = qs.filter(department=dept)
        else:
            qs = qs.filter(tree.subtree_q("department__path", dept.path))
    src = params.get("src") or ""
    if src:
        qs = qs.filter(lead__isnull=True) if src == NO_SOURCE else qs.filter(lead__source=src)
    month = params.get("month") or ""
    if month:
        bounds = month_range(month)
        if bounds is None:
            raise ValidationFailed(_("Write the month as YYYY-MM."), field="month")
        qs = qs.filter(created_at__gte=local_midnight(bounds[0]),
                       created_at__lt=local_midnight(bounds[1]))
    return qs
