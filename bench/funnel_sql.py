"""The company funnel in hand-written SQL, for the benchmark to set beside
`weiying.reports.funnel.company_funnel` (same cohort, same definitions, same figures as
`Funnel.figures()`). PostgreSQL only.

- `hand_funnel`: the same work as company_funnel for a viewer who sees everything — the
  levels from the roll-up by creation day (reports_funnellevel), the stays of whole months
  from reports_funnelstay and those of the days of a month only partly in the period from
  reports_funnelstayday; the median read off the hourly histogram.
- `hand_funnel_raw`: the same figures straight from the opportunities and every stage
  change (what the roll-up saves; percentile_cont for the median).

Definitions (see weiying/reports/funnel.py): the cohort is the pipeline's opportunities
created in [start, end] in Asia/Shanghai; an opportunity's furthest stage is the highest
open-stage order its StageChange history entered; reached(k) = furthest ≥ k or won; the
median time in stage is that of the stays in whole hours, given in seconds.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RATE = Decimal("0.0001")
FEN = Decimal("0.01")

LEVELS = """
WITH c AS (
    SELECT id, status, lost_reason, amount FROM pipeline_opportunity
    WHERE pipeline_id = %(p)s
      AND created_at >= (%(start)s::date)::timestamp AT TIME ZONE 'Asia/Shanghai'
      AND created_at < (%(end)s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
), t AS (
    SELECT sc.opportunity_id AS oid, MAX(s."order") AS top
    FROM pipeline_stagechange sc JOIN pipeline_stage s ON s.id = sc.to_stage_id
    WHERE s.pipeline_id = %(p)s AND s.kind = 'open'
      AND sc.opportunity_id IN (SELECT id FROM c)
    GROUP BY sc.opportunity_id
)
SELECT COALESCE(t.top, 0), c.status, c.lost_reason, COUNT(*), SUM(c.amount)
FROM c LEFT JOIN t ON t.oid = c.id
GROUP BY 1, 2, 3
"""

STAYS = """
WITH c AS (
    SELECT id FROM pipeline_opportunity
    WHERE pipeline_id = %(p)s
      AND created_at >= (%(start)s::date)::timestamp AT TIME ZONE 'Asia/Shanghai'
      AND created_at < (%(end)s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
)
SELECT sc.from_stage_id, COUNT(*), SUM(sc.seconds_in_previous),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY sc.seconds_in_previous / 3600) * 3600
FROM pipeline_stagechange sc JOIN pipeline_stage s ON s.id = sc.from_stage_id
WHERE s.pipeline_id = %(p)s AND s.kind = 'open' AND sc.seconds_in_previous IS NOT NULL
  AND sc.opportunity_id IN (SELECT id FROM c)
GROUP BY 1
"""


def _rate(part: int, whole: int) -> str | None:
    if not whole:
        return None
    return str((Decimal(part) / Decimal(whole)).quantize(RATE, rounding=ROUND_HALF_UP))


def _int(value: Any) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _m(value: Decimal) -> str:
    return str(Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP))


ROLLUP_LEVELS = """
SELECT furthest, status, lost_reason, SUM(count), SUM(amount_fen) / 100.0
FROM reports_funnellevel
WHERE pipeline_id = %(p)s AND day BETWEEN %(start)s AND %(end)s
GROUP BY 1, 2, 3 HAVING SUM(count) <> 0
"""

ROLLUP_STAYS = """
SELECT stage_id, hours, SUM(count), SUM(seconds) FROM reports_funnelstay
WHERE pipeline_id = %(p)s AND month BETWEEN %(first)s AND %(last)s
GROUP BY 1, 2
"""

EDGE_STAYS = """
SELECT stage_id, hours, SUM(count), SUM(seconds) FROM reports_funnelstayday
WHERE pipeline_id = %(p)s AND day BETWEEN %(start)s AND %(end)s
GROUP BY 1, 2
"""


def _month(day: dt.date, step: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + step
    return dt.date(index // 12, index % 12 + 1, 1)


def _median(by_hours: dict[int, list[int]]) -> Decimal:
    n = sum(v[0] for v in by_hours.values())
    wanted = [(n + 1) // 2, (n + 2) // 2]
    seen, found = 0, []
    for h in sorted(by_hours):
        seen += by_hours[h][0]
        while wanted and wanted[0] <= seen:
            found.append(h)
            wanted.pop(0)
    return Decimal(found[0] + found[1]) / 2 * 3600


def hand_funnel(cursor: Any, start: dt.date, end: dt.date, pipeline_id: int) -> dict[str, Any]:
    args: dict[str, Any] = {"p": pipeline_id, "start": start, "end": end}
    cursor.execute('SELECT id, name, "order" FROM pipeline_stage '
                   "WHERE pipeline_id = %(p)s AND kind = 'open' ORDER BY \"order\"", args)
    stages = cursor.fetchall()
    cursor.execute(ROLLUP_LEVELS, args)
    levels = [(top, status, reason, int(n), Decimal(a)) for top, status, reason, n, a
              in cursor.fetchall()]
    first = start if start.day == 1 else _month(start, 1)
    after = _month(end + dt.timedelta(days=1), 0)  # months before this one end in the period
    hist: dict[int, dict[int, list[int]]] = {}

    def add(rows: list[Any]) -> None:
        for stage_id, h, n, total in rows:
            slot = hist.setdefault(stage_id, {}).setdefault(int(h), [0, 0])
            slot[0] += int(n)
            slot[1] += int(total)

    if first < after:
        cursor.execute(ROLLUP_STAYS, {**args, "first": first, "last": _month(after, -1)})
        add(cursor.fetchall())
        edges = [(start, first - dt.timedelta(days=1)), (after, end)]
    else:
        edges = [(start, end)]
    for lo, hi in edges:
        if lo <= hi:
            cursor.execute(EDGE_STAYS, {**args, "start": lo, "end": hi})
            add(cursor.fetchall())
    stays = {stage_id: (sum(v[0] for v in h.values()), sum(v[1] for v in h.values()),
                        _median(h)) for stage_id, h in hist.items()}
    return _figures(stages, levels, stays)


def hand_funnel_raw(cursor: Any, start: dt.date, end: dt.date, pipeline_id: int
                    ) -> dict[str, Any]:
    args = {"p": pipeline_id, "start": start, "end": end}
    cursor.execute('SELECT id, name, "order" FROM pipeline_stage '
                   "WHERE pipeline_id = %(p)s AND kind = 'open' ORDER BY \"order\"", args)
    stages = cursor.fetchall()
    cursor.execute(LEVELS, args)
    levels = cursor.fetchall()
    cursor.execute(STAYS, args)
    stays = {row[0]: row[1:] for row in cursor.fetchall()}
    return _figures(stages, levels, stays)


def _figures(stages: list[Any], levels: list[Any], stays: dict[int, Any]) -> dict[str, Any]:

    zero = Decimal(0)
    total = {"created": [0, zero], "won": [0, zero], "lost": [0, zero], "open": [0, zero]}
    reasons: dict[str, list[Any]] = {}
    for _top, status, reason, n, amount in levels:
        for key in ("created", status):
            total[key][0] += n
            total[key][1] += amount
        if status == "lost":
            entry = reasons.setdefault(reason, [0, zero])
            entry[0] += n
            entry[1] += amount
    won_n, won_amount = total["won"]
    out_stages = []
    for stage_id, name, order in stages:
        reached = won_n + sum(n for top, st, _r, n, _a in levels if top >= order and st != "won")
        amount = won_amount + sum(a for top, st, _r, _n, a in levels
                                  if top >= order and st != "won")
        lost = sum(n for top, st, _r, n, _a in levels if top == order and st == "lost")
        still = sum(n for top, st, _r, n, _a in levels if top == order and st == "open")
        count, seconds, median = stays.get(stage_id, (0, 0, None))
        out_stages.append({
            "stage_id": stage_id, "name": name, "reached": reached,
            "reached_amount": _m(amount), "conversion": _rate(reached - lost - still, reached),
            "dropped": lost + still, "dropped_lost": lost, "dropped_open": still,
            "stays": count, "avg_seconds": _int(Decimal(seconds) / count) if count else None,
            "median_seconds": _int(median) if count else None,
        })
    return {
        "created": total["created"][0], "created_amount": _m(total["created"][1]),
        "won": won_n, "won_amount": _m(won_amount),
        "lost": total["lost"][0], "lost_amount": _m(total["lost"][1]),
        "open": total["open"][0], "open_amount": _m(total["open"][1]),
        "win_rate": _rate(won_n, total["created"][0]),
        "stages": out_stages,
        "reasons": [{"code": code, "count": n, "amount": _m(a)} for code, (n, a) in
                    sorted(reasons.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))],
    }
