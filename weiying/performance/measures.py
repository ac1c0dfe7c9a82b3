"""The base measures every KPI is built from, and the SQL that derives them from the records.

A measure is additive: a count, an amount in whole fen or a duration in whole seconds, summed
per employee and day (and product line where it is kept per line). Ratios and averages are
KPIs (weiying.performance.kpis) computed from the summed measures of a slice.

Each source below is one SELECT yielding (measure, employee, day, line, value) for every
employee or, with a filter, for some; the same text serves the nightly rebuild and the
recomputation an event asks for, so the two cannot disagree. Who a fact belongs to is the
record's owner as it stands; which department, the HR history of that owner on that day
(weiying.org.history), joined in weiying.performance.facts.

The day of a timestamp is its date in the company's time zone. China keeps no daylight saving,
so on SQLite a fixed offset does what AT TIME ZONE does on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils.translation import gettext_lazy as _

# The line of a product without a category (the empty line is "all lines").
NO_LINE = "_"


@dataclass(frozen=True)
class Measure:
    code: str
    label: object
    unit: str  # count | money | seconds
    by_line: bool = False
    # The record families whose changes move it (see weiying.performance.subscribers).
    family: str = ""


MEASURES: dict[str, Measure] = {m.code: m for m in [
    Measure("leads", _("Leads received"), "count", family="lead"),
    Measure("responded", _("Leads answered"), "count", family="lead"),
    Measure("response_seconds", _("Time to first response"), "seconds", family="lead"),
    Measure("followups", _("Follow-ups"), "count", family="followup"),
    Measure("opportunities", _("Opportunities opened"), "count", family="opportunity"),
    Measure("won", _("Opportunities won"), "count", family="opportunity"),
    Measure("won_amount", _("Amount won"), "money", family="opportunity"),
    Measure("lost", _("Opportunities lost"), "count", family="opportunity"),
    Measure("signed_contracts", _("Contracts signed"), "count", family="contract"),
    Measure("signed_amount", _("Amount signed"), "money", by_line=True, family="contract"),
    Measure("new_customers", _("New customers"), "count", family="contract"),
    Measure("repeat_contracts", _("Repeat purchases"), "count", family="contract"),
    Measure("collected", _("Cash collected"), "money", family="receipt"),
    Measure("collected_by_line", _("Cash collected (by product line)"), "money",
            by_line=True, family="finance"),
    Measure("revenue", _("Revenue recognised"), "money", by_line=True, family="finance"),
    Measure("cost", _("Cost of sales"), "money", by_line=True, family="finance"),
]}

FAMILIES = sorted({m.family for m in MEASURES.values()})


def _is_pg() -> bool:
    return connection.vendor == "postgresql"


def day_of(column: str) -> str:
    """SQL for the local date of a timestamp column."""
    if _is_pg():
        return f"({column} AT TIME ZONE '{settings.TIME_ZONE}')::date"
    offset = dt.datetime.now(ZoneInfo(settings.TIME_ZONE)).utcoffset() or dt.timedelta()
    return f"date({column}, '{int(offset.total_seconds())} seconds')"


def seconds_between(later: str, earlier: str) -> str:
    if _is_pg():
        return f"ROUND(EXTRACT(EPOCH FROM ({later} - {earlier})))"
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400)"


def fen(column: str) -> str:
    """Whole fen of a money column (exact: the column holds two decimals)."""
    return f"CAST(ROUND({column} * 100) AS BIGINT)"


def _line(column: str) -> str:
    return f"COALESCE(NULLIF({column}, ''), '{NO_LINE}')"


def sources(family: str) -> list[tuple[str, str]]:
    """[(SQL, employee column)] for one family; the SQL holds `{where}`, which the caller
    fills with an extra condition on the employee column (or nothing)."""
    lead_day = day_of("l.assigned_at")
    answered = day_of("l.first_response_at")
    if family == "lead":
        return [
            (f"SELECT 'leads' AS measure, l.owner_id AS emp, {lead_day} AS day, '' AS line, "
             f"COUNT(*) AS value FROM pipeline_lead l WHERE l.owner_id IS NOT NULL "
             f"AND l.assigned_at IS NOT NULL {{where}} GROUP BY l.owner_id, {lead_day}",
             "l.owner_id"),
            (f"SELECT 'responded' AS measure, l.owner_id AS emp, {answered} AS day, '' AS line, "
             f"COUNT(*) AS value FROM pipeline_lead l WHERE l.owner_id IS NOT NULL "
             f"AND l.assigned_at IS NOT NULL AND l.first_response_at IS NOT NULL {{where}} "
             f"GROUP BY l.owner_id, {answered}", "l.owner_id"),
            (f"SELECT 'response_seconds' AS measure, l.owner_id AS emp, {answered} AS day, "
             f"'' AS line, SUM(CAST(GREATEST_0 AS BIGINT)) AS value FROM pipeline_lead l "
             f"WHERE l.owner_id IS NOT NULL AND l.assigned_at IS NOT NULL "
             f"AND l.first_response_at IS NOT NULL {{where}} GROUP BY l.owner_id, {answered}"
             .replace("GREATEST_0", _non_negative(
                 seconds_between("l.first_response_at", "l.assigned_at"))),
             "l.owner_id"),
        ]
    if family == "followup":
        day = day_of("f.at")
        return [(f"SELECT 'followups' AS measure, f.owner_id AS emp, {day} AS day, '' AS line, "
                 f"COUNT(*) AS value FROM pipeline_followup f WHERE f.owner_id IS NOT NULL "
                 f"{{where}} GROUP BY f.owner_id, {day}", "f.owner_id")]
    if family == "opportunity":
        opened = day_of("o.created_at")
        closed = day_of("o.closed_at")
        return [
            (f"SELECT 'opportunities' AS measure, o.owner_id AS emp, {opened} AS day, "
             f"'' AS line, COUNT(*) AS value FROM pipeline_opportunity o "
             f"WHERE o.owner_id IS NOT NULL {{where}} GROUP BY o.owner_id, {opened}",
             "o.owner_id"),
            (f"SELECT o.status AS measure, o.owner_id AS emp, {closed} AS day, '' AS line, "
             f"COUNT(*) AS value FROM pipeline_opportunity o WHERE o.owner_id IS NOT NULL "
             f"AND o.status IN ('won', 'lost') AND o.closed_at IS NOT NULL {{where}} "
             f"GROUP BY o.status, o.owner_id, {closed}", "o.owner_id"),
            (f"SELECT 'won_amount' AS measure, o.owner_id AS emp, {closed} AS day, "
             f"'' AS line, SUM({fen('o.amount')}) AS value FROM pipeline_opportunity o "
             f"WHERE o.owner_id IS NOT NULL AND o.status = 'won' AND o.closed_at IS NOT NULL "
             f"{{where}} GROUP BY o.owner_id, {closed}", "o.owner_id"),
        ]
    if family == "contract":
        # Signed and not cancelled (a cancellation takes the signing out of the figures).
        signed = "c.signed_on IS NOT NULL AND c.status IN ('signed', 'in_delivery', 'completed')"
        earlier = (
            "EXISTS (SELECT 1 FROM pipeline_contract p WHERE p.customer_id = c.customer_id "
            "AND p.signed_on IS NOT NULL AND p.status IN ('signed', 'in_delivery', 'completed') "
            "AND (p.signed_on < c.signed_on OR "
            "(p.signed_on = c.signed_on AND p.id < c.id)))"
        )
        return [
            (f"SELECT 'signed_contracts' AS measure, c.owner_id AS emp, c.signed_on AS day, "
             f"'' AS line, COUNT(*) AS value FROM pipeline_contract c "
             f"WHERE c.owner_id IS NOT NULL AND {signed} {{where}} "
             f"GROUP BY c.owner_id, c.signed_on", "c.owner_id"),
            (f"SELECT 'signed_amount' AS measure, c.owner_id AS emp, c.signed_on AS day, "
             f"'' AS line, SUM({fen('c.total')}) AS value FROM pipeline_contract c "
             f"WHERE c.owner_id IS NOT NULL AND {signed} {{where}} "
             f"GROUP BY c.owner_id, c.signed_on", "c.owner_id"),
            (f"SELECT 'signed_amount' AS measure, c.owner_id AS emp, c.signed_on AS day, "
             f"{_line('pr.category')} AS line, SUM({fen('cl.amount')}) AS value "
             f"FROM pipeline_contractline cl JOIN pipeline_contract c ON c.id = cl.contract_id "
             f"JOIN catalog_product pr ON pr.id = cl.product_id "
             f"WHERE c.owner_id IS NOT NULL AND {signed} {{where}} "
             f"GROUP BY c.owner_id, c.signed_on, {_line('pr.category')}", "c.owner_id"),
            (f"SELECT 'new_customers' AS measure, c.owner_id AS emp, c.signed_on AS day, "
             f"'' AS line, COUNT(*) AS value FROM pipeline_contract c "
             f"WHERE c.owner_id IS NOT NULL AND {signed} AND NOT {earlier} {{where}} "
             f"GROUP BY c.owner_id, c.signed_on", "c.owner_id"),
            (f"SELECT 'repeat_contracts' AS measure, c.owner_id AS emp, c.signed_on AS day, "
             f"'' AS line, COUNT(*) AS value FROM pipeline_contract c "
             f"WHERE c.owner_id IS NOT NULL AND {signed} AND {earlier} {{where}} "
             f"GROUP BY c.owner_id, c.signed_on", "c.owner_id"),
        ]
    if family == "receipt":
        return [(f"SELECT 'collected' AS measure, c.owner_id AS emp, r.received_on AS day, "
                 f"'' AS line, SUM({fen('r.amount')}) AS value FROM pipeline_receipt r "
                 f"JOIN pipeline_contract c ON c.id = r.contract_id "
                 f"WHERE c.owner_id IS NOT NULL {{where}} GROUP BY c.owner_id, r.received_on",
                 "c.owner_id")]
    if family == "finance":
        line = _line("pr.category")
        booked = 'm."on"'
        base = ("FROM finance_movement m JOIN catalog_product pr ON pr.id = m.product_id "
                "WHERE m.owner_id IS NOT NULL {where}")
        out = []
        for measure, column, kinds in [("collected_by_line", "m.bank", "AND m.kind = 'receipt'"),
                                       ("revenue", "m.revenue", ""), ("cost", "m.cost", "")]:
            out.append((
                f"SELECT '{measure}' AS measure, m.owner_id AS emp, {booked} AS day, {line} AS line, "
                f"SUM({fen(column)}) AS value {base} {kinds} GROUP BY m.owner_id, {booked}, {line} "
                f"HAVING SUM({fen(column)}) <> 0", "m.owner_id"))
            if measure != "collected_by_line":
                out.append((
                    f"SELECT '{measure}' AS measure, m.owner_id AS emp, {booked} AS day, '' AS line, "
                    f"SUM({fen(column)}) AS value {base} {kinds} GROUP BY m.owner_id, {booked} "
                    f"HAVING SUM({fen(column)}) <> 0", "m.owner_id"))
        return out
    raise KeyError(f"unknown measure family {family!r}")


def _non_negative(expr: str) -> str:
    # A first response stamped before the assignment (a clock skew) counts as zero seconds.
    return f"CASE WHEN {expr} < 0 THEN 0 ELSE {expr} END"
