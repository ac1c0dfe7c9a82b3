"""Keeping the daily facts and the department months.

Two ways in, one definition (weiying.performance.measures):

- `recompute(employee_ids, families)` rewrites the facts of some employees for some measure
  families from the records as they now stand, and moves the department months by the
  difference. Event subscribers call it after a change; it is idempotent, so a replayed
  event changes nothing.
- `rebuild()` rewrites everything from scratch (the nightly job and `weiying rebuild-facts`).

Either way a fact's department is the one the employee held on the fact's day, by the HR
history, so a department's month is always the sum of the facts of the people who were in it
on each day of the month. Both run in one transaction; recompute locks the employees' rows
first, so two recomputations of one person follow each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

from weiying.org.models import Employee
from weiying.performance.measures import FAMILIES, MEASURES, sources

log = logging.getLogger(__name__)

FACT = "performance_dailyfact"
MONTH = "performance_departmentmonth"


def _month_of(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(date_trunc('month', {column}) AS date)"
    return f"date({column}, 'start of month')"


def _insert_sql(family: str, where: str) -> list[str]:
    """INSERT … SELECT statements writing one family's facts, each attributed through the HR
    history to the department of its day. A zero is no fact (a lead answered within the
    second it was assigned adds a response, not response seconds)."""
    out = []
    for select, emp in sources(family):
        body = select.replace("{where}", where.replace("{emp}", emp) if where else "")
        out.append(
            f"INSERT INTO {FACT} (day, employee_id, department_id, department_path, measure, "
            f"line, value) SELECT s.day, s.emp, a.department_id, d.path, s.measure, s.line, "
            f"s.value FROM ({body}) s JOIN org_assignment a ON a.employee_id = s.emp "
            f"AND a.starts_on <= s.day AND (a.ends_on IS NULL OR s.day < a.ends_on) "
            f"JOIN org_department d ON d.id = a.department_id WHERE s.value <> 0"
        )
    return out


def _measures_of(families: Iterable[str]) -> list[str]:
    wanted = set(families)
    return sorted(code for code, m in MEASURES.items() if m.family in wanted)


def _in(ids: Iterable[Any]) -> str:
    return ", ".join(str(int(i)) for i in ids)


def _quoted(codes: Iterable[str]) -> str:
    return ", ".join(f"'{c}'" for c in codes)  # measure codes are ours, never input


def _month_totals(cursor: Any, employees: str, measures: str) -> dict[tuple, int]:
    cursor.execute(
        f"SELECT department_id, department_path, {_month_of('day')} AS m, measure, line, "
        f"SUM(value) FROM {FACT} WHERE employee_id IN ({employees}) AND measure IN "
        f"({measures}) GROUP BY department_id, department_path, {_month_of('day')}, measure, "
        f"line"
    )
    return {tuple(row[:5]): int(row[5]) for row in cursor.fetchall()}


def _apply(cursor: Any, before: dict[tuple, int], after: dict[tuple, int]) -> int:
    """Move the department months by after − before; rows that reach zero go."""
    deltas = []
    for key in before.keys() | after.keys():
        delta = after.get(key, 0) - before.get(key, 0)
        if delta:
            deltas.append((*key, delta))
    if not deltas:
        return 0
    cursor.executemany(
        f"INSERT INTO {MONTH} (department_id, department_path, month, measure, line, value) "
        f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (department_id, measure, line, month) "
        f"DO UPDATE SET value = {MONTH}.value + excluded.value",
        deltas,
    )
    departments = _in({d[0] for d in deltas})
    cursor.execute(f"DELETE FROM {MONTH} WHERE value = 0 AND department_id IN ({departments})")
    return len(deltas)


@transaction.atomic
def recompute(employee_ids: Iterable[int], families: Iterable[str] | None = None) -> int:
    """Rewrite the facts of these employees for these families (all by default) from the
    records; returns how many department-month cells moved."""
    ids = sorted({int(i) for i in employee_ids if i})
    if not ids:
        return 0
    families = sorted(set(families or FAMILIES))
    # Lock the people, in id order: a concurrent recomputation of the same person waits.
    list(Employee.objects.select_for_update().filter(pk__in=ids).order_by("pk")
         .values_list("pk", flat=True))
    employees, measures = _in(ids), _quoted(_measures_of(families))
    with connection.cursor() as cursor:
        before = _month_totals(cursor, employees, measures)
        cursor.execute(f"DELETE FROM {FACT} WHERE employee_id IN ({employees}) "
                       f"AND measure IN ({measures})")
        for family in families:
            for sql in _insert_sql(family, f"AND {{emp}} IN ({employees})"):
                cursor.execute(sql)
        after = _month_totals(cursor, employees, measures)
        return _apply(cursor, before, after)


def rebuild(*, families: Iterable[str] | None = None) -> dict[str, Any]:
    """Rewrite every fact (of the given families, all by default) and the department months
    from scratch. Returns the row counts and seconds per step."""
    from weiying.org import history

    families = sorted(set(families or FAMILIES))
    measures = _quoted(_measures_of(families))
    timings: dict[str, Any] = {}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        timings["assignments_opened"] = history.ensure_all()
        everything = set(families) == set(FAMILIES)
        bulk = everything and connection.vendor == "postgresql"
        if bulk:
            # Deferred foreign-key checks still pending in this transaction would refuse the
            # TRUNCATE and the ALTER TABLEs; run them now (deferred again at the end: the
            # setting lasts the transaction, and a caller's transaction, the demo's wipe say,
            # relies on deferred checks).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"TRUNCATE {FACT}, {MONTH}")
            # Millions of rows load faster into a bare table whose indexes and constraints are
            # built once afterwards than row by row into six indexes and two foreign keys.
            cursor.execute("SET LOCAL work_mem = '128MB'")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            bare = _strip(cursor, FACT) + _strip(cursor, MONTH)
        else:
            cursor.execute(f"DELETE FROM {FACT} WHERE measure IN ({measures})")
            cursor.execute(f"DELETE FROM {MONTH} WHERE measure IN ({measures})")
        for family in families:
            t = time.perf_counter()
            rows = 0
            for sql in _insert_sql(family, ""):
                cursor.execute(sql)
                rows += max(cursor.rowcount, 0)
            timings[f"facts:{family}"] = (rows, round(time.perf_counter() - t, 2))
        t = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {MONTH} (department_id, department_path, month, measure, line, value) "
            f"SELECT department_id, department_path, {_month_of('day')}, measure, line, "
            f"SUM(value) FROM {FACT} WHERE measure IN ({measures}) GROUP BY department_id, "
            f"department_path, {_month_of('day')}, measure, line HAVING SUM(value) <> 0"
        )
        timings["months"] = (max(cursor.rowcount, 0), round(time.perf_counter() - t, 2))
        if bulk:
            t = time.perf_counter()
            for statement in bare:
                cursor.execute(statement)
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            timings["indexes"] = (len(bare), round(time.perf_counter() - t, 2))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {FACT}")
            cursor.execute(f"ANALYZE {MONTH}")
    timings["seconds"] = round(time.perf_counter() - started, 2)
    log.info("performance facts rebuilt: %s", timings)
    return timings


def _strip(cursor: Any, table: str) -> list[str]:
    """PostgreSQL: drop the table's secondary indexes, unique constraints and foreign keys
    (the primary key stays); returns the statements that put them back as they were."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
        [table])
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = %s AND indexname NOT IN (SELECT conname FROM pg_constraint "
        "WHERE conrelid = %s::regclass) ORDER BY indexname", [table, table])
    indexes = cursor.fetchall()
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    # Indexes first, then the unique constraints (their own index), then the foreign keys
    # (each checked in one pass over the table).
    return ([definition for _name, definition in indexes]
            + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
               for name, definition in constraints])


def move_paths(old_path: str, new_path: str) -> int:
    """A department moved in the tree: the path copies follow (one UPDATE per table)."""
    from weiying.core import tree
    from weiying.performance.models import DailyFact, DepartmentMonth

    moved = tree.move_subtree(DailyFact.objects.all(), "department_path", old_path, new_path)
    moved += tree.move_subtree(DepartmentMonth.objects.all(), "department_path", old_path,
                               new_path)
    return moved
