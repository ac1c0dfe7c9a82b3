"""The director's dashboard in hand-written SQL, for the benchmark to set beside
`weiying.reports.dashboards.director_dashboard` (same slice, same definitions, same figures).

`hand_director(cursor, department_path, start, end)` reads what the dashboard reads for a
viewer who sees the whole subtree:
- the headline measures of the period, the period before and the same period a year earlier
  (the department's subtree months, whole months; the department is at depth ≤ 4);
- the child departments' measures (their subtree months; the department's own members from
  its department months, under its own path);
- the 12 months up to the period's last month (the subtree months, grouped by month);
- everyone's measures over the period from performance_dailyfact (one range per measure and
  day), of which the ten best by signed amount, then collected, then id;
- the open pipeline by expected close month, for the three months from `today`.

`hand_figures(hand)` and `board_figures(board)` put both into the same comparable shape:
{"headline": {kpi: value}, "children": {path: signed fen}, "trend": {month: signed fen},
"top": [(employee id, signed fen)], "forecast": [(month, count, amount, weighted)]}.
PostgreSQL (EXTRACT in the forecast's query).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

SEGMENT = 8
MEASURES = ("signed_amount", "collected", "revenue", "new_customers", "won", "lost",
            "response_seconds", "responded", "signed_contracts", "opportunities",
            "followups")
TOP = 10


def _upper(path: str) -> str:
    return str(int(path) + 1).zfill(len(path))


def _first_of(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _last_of(first: dt.date) -> dt.date:
    return _first_of(first, -1) - dt.timedelta(days=1)


def _in(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _months_total(cursor: Any, department: int, start: dt.date, end: dt.date) -> dict[str, int]:
    cursor.execute(
        f"SELECT measure, SUM(value) FROM performance_subtreemonth "
        f"WHERE department_id = %s AND line = '' AND month >= %s AND month <= %s "
        f"AND measure IN ({_in(MEASURES)}) GROUP BY measure",
        [department, start, end])
    return {m: int(v) for m, v in cursor.fetchall()}


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _shift_year(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def hand_director(cursor: Any, department_path: str, start: dt.date, end: dt.date,
                  today: dt.date | None = None) -> dict[str, Any]:
    """The dashboard's figures for the subtree at `department_path` over whole months
    [start, end]."""
    path, upper = department_path, _upper(department_path)
    department = int(path[-SEGMENT:])  # a path's last segment is the department's id
    months = (end.year * 12 + end.month) - (start.year * 12 + start.month) + 1
    prev_end = start - dt.timedelta(days=1)
    prev_start = _first_of(prev_end, months - 1)
    out: dict[str, Any] = {
        "current": _months_total(cursor, department, start, end),
        "previous": _months_total(cursor, department, prev_start, prev_end),
        "year_ago": _months_total(cursor, department, _shift_year(start),
                                  _last_of(_shift_year(end).replace(day=1))),
    }
    # The children's subtrees from the subtree months, the department's own members from its
    # department months.
    cursor.execute(
        f"SELECT d.path, s.measure, SUM(s.value) FROM performance_subtreemonth s "
        f"JOIN org_department d ON d.id = s.department_id WHERE d.parent_id = %s "
        f"AND s.line = '' AND s.month >= %s AND s.month <= %s "
        f"AND s.measure IN ({_in(MEASURES)}) GROUP BY d.path, s.measure "
        f"UNION ALL SELECT department_path, measure, SUM(value) "
        f"FROM performance_departmentmonth WHERE department_id = %s AND line = '' "
        f"AND month >= %s AND month <= %s AND measure IN ({_in(MEASURES)}) "
        f"GROUP BY department_path, measure",
        [department, start, end, department, start, end])
    children: dict[str, dict[str, int]] = {}
    for child, measure, value in cursor.fetchall():
        children.setdefault(child, {})[measure] = int(value)
    out["children"] = children
    trend_start = _first_of(end, 11)
    cursor.execute(
        f"SELECT month, measure, SUM(value) FROM performance_subtreemonth "
        f"WHERE department_id = %s AND line = '' "
        f"AND month >= %s AND month <= %s AND measure IN ({_in(MEASURES)}) "
        f"GROUP BY month, measure",
        [department, trend_start, end])
    trend: dict[dt.date, dict[str, int]] = {}
    for month, measure, value in cursor.fetchall():
        month = month if isinstance(month, dt.date) else dt.date.fromisoformat(str(month))
        trend.setdefault(month, {})[measure] = int(value)
    out["trend"] = trend
    cursor.execute(
        "SELECT employee_id, "
        "SUM(CASE WHEN measure = 'signed_amount' THEN value ELSE 0 END) AS signed, "
        "SUM(CASE WHEN measure = 'collected' THEN value ELSE 0 END) AS collected "
        "FROM performance_dailyfact WHERE department_path >= %s AND department_path < %s "
        "AND line = '' AND day = ANY(%s) "
        "AND measure IN ('signed_amount', 'collected', 'new_customers', 'won', 'lost') "
        "GROUP BY employee_id ORDER BY signed DESC, collected DESC, employee_id LIMIT %s",
        [path, upper, _days(start, end), TOP])
    out["top"] = [(int(e), int(s)) for e, s, _c in cursor.fetchall()]
    if today is None:
        from django.utils import timezone

        today = timezone.localdate()
    first = today.replace(day=1)
    stop = _first_of(first, -3)
    cursor.execute(
        "SELECT EXTRACT(YEAR FROM o.expected_close), EXTRACT(MONTH FROM o.expected_close), "
        "s.probability, COUNT(*), SUM(ROUND(o.amount * 100)) "
        "FROM pipeline_opportunity o JOIN pipeline_stage s ON s.id = o.stage_id "
        "JOIN org_department d ON d.id = o.department_id "
        "WHERE o.status = 'open' AND d.path >= %s AND d.path < %s "
        "AND o.expected_close >= %s AND o.expected_close < %s GROUP BY 1, 2, 3",
        [path, upper, first, stop])
    forecast: dict[str, list[Any]] = {}
    fen = Decimal("0.01")
    for year, month, probability, n, amount_fen in cursor.fetchall():
        key = f"{int(year):04d}-{int(month):02d}"
        cell = forecast.setdefault(key, [0, Decimal(0), Decimal(0)])
        amount = Decimal(int(amount_fen)) / 100
        cell[0] += int(n)
        cell[1] += amount
        cell[2] += (amount * int(probability) / 100).quantize(fen)
    out["forecast"] = forecast
    return out


def _rate(part: int, whole: int) -> Decimal | None:
    return None if not whole else Decimal(part) / Decimal(whole)


def hand_figures(hand: dict[str, Any]) -> dict[str, Any]:
    now = hand["current"]
    headline = {
        "signed_amount": Decimal(now.get("signed_amount", 0)) / 100,
        "collected": Decimal(now.get("collected", 0)) / 100,
        "revenue": Decimal(now.get("revenue", 0)) / 100,
        "new_customers": Decimal(now.get("new_customers", 0)),
        "win_rate": _rate(now.get("won", 0), now.get("won", 0) + now.get("lost", 0)),
        "first_response": _rate(now.get("response_seconds", 0), now.get("responded", 0)),
    }
    return {
        "headline": {k: None if v is None else Decimal(v).quantize(Decimal("0.0001"))
                     for k, v in headline.items()},
        "previous_signed": Decimal(hand["previous"].get("signed_amount", 0)) / 100,
        "year_ago_signed": Decimal(hand["year_ago"].get("signed_amount", 0)) / 100,
        "children": {p: v.get("signed_amount", 0) for p, v in hand["children"].items()
                     if v.get("signed_amount", 0)},
        "trend": {m: v.get("signed_amount", 0) for m, v in hand["trend"].items()
                  if v.get("signed_amount", 0)},
        "top": [t for t in hand["top"] if t[1]],
        "forecast": {k: tuple(v) for k, v in hand["forecast"].items()},
    }


def board_figures(board: Any) -> dict[str, Any]:
    """The same shape from a Dashboard that director_dashboard returned."""
    headline = {f.code: None if f.value is None else Decimal(f.value).quantize(
        Decimal("0.0001")) for f in board.figures}
    signed = next(f for f in board.figures if f.code == "signed_amount")
    children = {row[0].key: int(row[1].value * 100)
                for row in board.table("children").rows if row[1].value}
    trend_chart = next(c for c in board.charts if c.name == "trend")
    trend = {dt.date.fromisoformat(m + "-01"): int(round(Decimal(str(v)) * 100))
             for m, v in zip(trend_chart.spec["categories"],
                             trend_chart.spec["series"][0]["data"], strict=True) if v}
    top = [(r[1].key, int(r[3].value * 100)) for r in board.table("top_reps").rows
           if r[3].value]
    forecast = {r[0].value: (r[1].value, r[2].value, r[3].value)
                for r in board.table("forecast").rows if r[1].value}
    return {"headline": headline, "previous_signed": signed.previous,
            "year_ago_signed": signed.year_ago, "children": children, "trend": trend,
            "top": top, "forecast": forecast}
