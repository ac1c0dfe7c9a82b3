"""Keeps the funnel's roll-up (weiying.reports.models_funnel) and reads it.

Kept from the pipeline's events: on every opportunity.created / stage_changed / won / lost
the opportunity's position is recomputed from its own row and its new stage changes — its
old contribution to FunnelLevel taken out, the new one put in, and each stay not yet
counted added to FunnelStay — all in one transaction under a lock on the position, so a
replayed event changes nothing. `rebuild()` recomputes everything from the pipeline's
tables in three set-based statements (after a bulk load, e.g. the demo generator).

Read by the company funnel (weiying.reports.funnel) when the viewer sees everything and no
department, rep or source is chosen: the levels by creation day straight from FunnelLevel,
the stays of whole months from FunnelStay and those of the days of a month only partly in
the period from FunnelStayDay.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Sum
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone

from weiying.core import events
from weiying.core.models import DomainEvent
from weiying.pipeline.choices import OpportunityStatus, StageKind
from weiying.pipeline.models import Opportunity, Pipeline, Stage, StageChange
from weiying.reports.models_funnel import (
    FunnelLevel,
    FunnelPosition,
    FunnelStay,
    FunnelStayDay,
)

HOUR = 3600
# {stage id: {whole hours: [stays, seconds]}}
Histogram = dict[int, dict[int, list[int]]]


def _fen(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _bump(model: Any, keys: dict[str, Any], **amounts: int) -> None:
    row, created = model.objects.get_or_create(**keys, defaults=amounts)
    if not created:
        model.objects.filter(pk=row.pk).update(
            **{name: F(name) + value for name, value in amounts.items()})


@transaction.atomic
def refresh_position(opportunity_id: int) -> None:
    """Bring one opportunity's position and its share of the roll-up up to date."""
    opp = (Opportunity.objects.filter(pk=opportunity_id)
           .values("pipeline_id", "created_at", "status", "lost_reason", "amount").first())
    if opp is None:
        return
    position = FunnelPosition.objects.select_for_update().filter(pk=opportunity_id).first()
    orders = dict(Stage.objects.filter(pipeline_id=opp["pipeline_id"], kind=StageKind.OPEN)
                  .values_list("pk", "order"))
    after = position.last_change if position else 0
    changes = list(StageChange.objects.filter(opportunity_id=opportunity_id, pk__gt=after)
                   .order_by("pk").values_list("pk", "to_stage_id", "from_stage_id",
                                               "seconds_in_previous"))
    day = timezone.localtime(opp["created_at"]).date()
    month = day.replace(day=1)
    furthest = max([position.furthest if position else 0]
                   + [orders[to] for _pk, to, _from, _s in changes if to in orders])
    for _pk, _to, came_from, seconds in changes:
        if came_from in orders and seconds is not None:
            _bump(FunnelStay, {"pipeline_id": opp["pipeline_id"], "month": month,
                               "stage_id": came_from, "hours": seconds // HOUR},
                  count=1, seconds=seconds)
            _bump(FunnelStayDay, {"pipeline_id": opp["pipeline_id"], "day": day,
                                  "stage_id": came_from, "hours": seconds // HOUR},
                  count=1, seconds=seconds)
    status = opp["status"]
    reason = opp["lost_reason"] if status == OpportunityStatus.LOST else ""
    fen = _fen(opp["amount"])
    if position is not None:
        _bump(FunnelLevel, {"pipeline_id": position.pipeline_id, "day": position.day,
                            "furthest": position.furthest, "status": position.status,
                            "lost_reason": position.lost_reason},
              count=-1, amount_fen=-position.amount_fen)
    _bump(FunnelLevel, {"pipeline_id": opp["pipeline_id"], "day": day, "furthest": furthest,
                        "status": status, "lost_reason": reason}, count=1, amount_fen=fen)
    FunnelPosition.objects.update_or_create(
        opportunity_id=opportunity_id,
        defaults={"pipeline_id": opp["pipeline_id"], "day": day, "furthest": furthest,
                  "status": status, "lost_reason": reason, "amount_fen": fen,
                  "last_change": changes[-1][0] if changes else after})


@events.subscribe("opportunity.created")
@events.subscribe("opportunity.stage_changed")
@events.subscribe("opportunity.won")
@events.subscribe("opportunity.lost")
def on_opportunity_changed(event: DomainEvent) -> None:
    refresh_position(int(event.subject_id))


def _table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@transaction.atomic
def rebuild() -> dict[str, int]:
    """Recompute the whole roll-up from the opportunities and their stage changes, in one
    transaction (readers see the old roll-up until it commits)."""
    with transaction.atomic():
        return _rebuild()


def _rebuild() -> dict[str, int]:
    models_ = (FunnelStayDay, FunnelStay, FunnelLevel, FunnelPosition)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # No foreign keys (models_funnel), so no pending check refuses the TRUNCATE.
            cursor.execute(f"TRUNCATE {', '.join(_table(m) for m in models_)}")
            # A million opportunities joined to their stage changes: hashing beats an index
            # lookup per row (see facts.rebuild).
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL enable_nestloop = off")
    else:
        for model in models_:
            model.objects.all().delete()
    opps = Opportunity.objects.order_by().annotate(
        d=TruncDate("created_at"), fen=Cast(Round(F("amount") * 100), BigIntegerField()),
    ).values_list("id", "pipeline_id", "d", "status", "lost_reason", "fen")
    opp_sql, opp_params = opps.query.sql_with_params()
    sc, st, pos = _table(StageChange), _table(Stage), _table(FunnelPosition)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH o (id, pipeline_id, d, status, lost_reason, fen) AS ({opp_sql}), "
            f"t AS (SELECT sc.opportunity_id AS oid, "
            f"MAX(CASE WHEN s.kind = 'open' THEN s.\"order\" END) AS top, MAX(sc.id) AS last "
            f"FROM {sc} sc JOIN {st} s ON s.id = sc.to_stage_id GROUP BY sc.opportunity_id) "
            f"INSERT INTO {pos} (opportunity_id, pipeline_id, day, furthest, status, "
            f"lost_reason, amount_fen, last_change) "
            f"SELECT o.id, o.pipeline_id, o.d, COALESCE(t.top, 0), o.status, "
            f"CASE WHEN o.status = 'lost' THEN o.lost_reason ELSE '' END, o.fen, "
            f"COALESCE(t.last, 0) FROM o LEFT JOIN t ON t.oid = o.id", opp_params)
        cursor.execute(
            f"INSERT INTO {_table(FunnelLevel)} (pipeline_id, day, furthest, status, "
            f"lost_reason, count, amount_fen) "
            f"SELECT pipeline_id, day, furthest, status, lost_reason, COUNT(*), "
            f"SUM(amount_fen) FROM {pos} GROUP BY pipeline_id, day, furthest, status, "
            f"lost_reason")
        cursor.execute(
            f"INSERT INTO {_table(FunnelStayDay)} (pipeline_id, day, stage_id, hours, count, "
            f"seconds) "
            f"SELECT p.pipeline_id, p.day, sc.from_stage_id, sc.seconds_in_previous / {HOUR}, "
            f"COUNT(*), SUM(sc.seconds_in_previous) FROM {sc} sc "
            f"JOIN {pos} p ON p.opportunity_id = sc.opportunity_id "
            f"JOIN {st} s ON s.id = sc.from_stage_id "
            f"WHERE s.kind = 'open' AND sc.seconds_in_previous IS NOT NULL "
            f"AND sc.id <= p.last_change "
            f"GROUP BY p.pipeline_id, p.day, sc.from_stage_id, sc.seconds_in_previous / {HOUR}")
        month = ("CAST(date_trunc('month', d.day) AS date)" if connection.vendor == "postgresql"
                 else "date(d.day, 'start of month')")
        cursor.execute(
            f"INSERT INTO {_table(FunnelStay)} (pipeline_id, month, stage_id, hours, count, "
            f"seconds) "
            f"SELECT d.pipeline_id, {month}, d.stage_id, d.hours, SUM(d.count), SUM(d.seconds) "
            f"FROM {_table(FunnelStayDay)} d GROUP BY d.pipeline_id, {month}, d.stage_id, "
            f"d.hours")
    return {"positions": FunnelPosition.objects.count(), "levels": FunnelLevel.objects.count(),
            "stays": FunnelStay.objects.count(), "stay_days": FunnelStayDay.objects.count()}


# --- reading --------------------------------------------------------------------------------
def levels(pipeline: Pipeline, start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    """Rows (loss reason, furthest order, status, count, amount in fen) for opportunities
    created from `start` to `end` — the shape of the funnel's own grouped query."""
    rows = (FunnelLevel.objects.filter(pipeline=pipeline, day__gte=start, day__lte=end)
            .values_list("lost_reason", "furthest", "status").order_by()
            .annotate(n=Sum("count"), a=Sum("amount_fen")))
    return [(reason, top, status, int(n), int(a or 0)) for reason, top, status, n, a in rows
            if n]


def whole_months(start: dt.date, end: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The first and last month (first days) lying wholly inside [start, end]."""
    first = start if start.day == 1 else _next_month(start)
    last_end = end + dt.timedelta(days=1)
    last = last_end.replace(day=1)  # months strictly before this one end inside the period
    if first >= last:
        return None, None
    return first, _prev_month(last)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def _prev_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def stays(pipeline: Pipeline, start: dt.date, end: dt.date) -> Histogram:
    """The stays of the opportunities created from `start` to `end`: the whole months from
    FunnelStay, the days of a month partly outside from FunnelStayDay."""
    out: Histogram = defaultdict(dict)
    first, last = whole_months(start, end)
    parts: list[Any] = []
    if first is None or last is None:
        parts.append(FunnelStayDay.objects.filter(day__gte=start, day__lte=end))
    else:
        parts.append(FunnelStay.objects.filter(month__gte=first, month__lte=last))
        if start < first:
            parts.append(FunnelStayDay.objects.filter(day__gte=start, day__lt=first))
        after = _next_month(last)
        if end >= after:
            parts.append(FunnelStayDay.objects.filter(day__gte=after, day__lte=end))
    # One grouped statement per part, read through the cursor: the histogram has a few
    # thousand rows and the ORM's per-row cost would be most of the time here.
    with connection.cursor() as cursor:
        for qs in parts:
            sql, params = (qs.filter(pipeline=pipeline).order_by()
                           .values_list("stage_id", "hours")
                           .annotate(n=Sum("count"), s=Sum("seconds"))
                           .query.sql_with_params())
            cursor.execute(sql, params)
            for stage_id, hours, n, seconds in cursor.fetchall():
                if n:
                    slot = out[stage_id].setdefault(int(hours), [0, 0])
                    slot[0] += int(n)
                    slot[1] += int(seconds)
    return out
