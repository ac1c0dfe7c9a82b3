"""Keeping the daily facts and the department months.

Two ways in, one definition (weiying.performance.measures):

- `recompute(employee_ids, families)` rewrites the facts of some employees for some measure
  families from the records as they now stand, and moves the department months by the
  difference. Event subscribers call it after a change; it is idempotent, so a replayed
  event changes nothing.
- `rebuild()` rewrites everything from scratch (the nightly job and `weiying rebuild-facts`).

Either way a fact's department is the one the employee held on the fact's day, by the HR
history, so a department's month is always the sum of the facts of the people who were in it
on each day of the month, and a subtree month (departments at depth ≤ SUBTREE_DEPTH) the sum
of the department months below it. Both run in one transaction; recompute locks the
employees' rows first, so two recomputations of one person follow each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction

from weiying.core import tree
from weiying.org.models import Employee
from weiying.performance.measures import FAMILIES, MEASURES, sources
from weiying.performance.models import SUBTREE_DEPTH

log = logging.getLogger(__name__)

FACT = "performance_dailyfact"
MONTH = "performance_departmentmonth"
SUBTREE = "performance_subtreemonth"


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
            f"INSERT INTO {FACT} (day, month, employee_id, department_id, department_path, "
            f"measure, line, value) SELECT s.day, {_month_of('s.day')}, s.emp, a.department_id, "
            f"d.path, s.measure, s.line, s.value FROM ({body}) s "
            f"JOIN org_assignment a ON a.employee_id = s.emp AND a.starts_on <= s.day "
            f"AND (a.ends_on IS NULL OR s.day < a.ends_on) "
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
        f"SELECT department_id, department_path, month, measure, line, SUM(value) FROM {FACT} "
        f"WHERE employee_id IN ({employees}) AND measure IN ({measures}) "
        f"GROUP BY department_id, department_path, month, measure, line"
    )
    return {tuple(row[:5]): int(row[5]) for row in cursor.fetchall()}


def _apply(cursor: Any, before: dict[tuple, int], after: dict[tuple, int]) -> int:
    """Move the department months, and the subtree months above them, by after − before;
    rows that reach zero go."""
    deltas = []
    subtree: dict[tuple, int] = {}
    for key in before.keys() | after.keys():
        delta = after.get(key, 0) - before.get(key, 0)
        if delta:
            deltas.append((*key, delta))
            _department, path, month, measure, line = key
            for depth, ancestor in enumerate(tree.ancestor_ids(path)[:SUBTREE_DEPTH], 1):
                cell = (ancestor, depth, month, measure, line)
                subtree[cell] = subtree.get(cell, 0) + delta
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
    moved = [(*cell, delta) for cell, delta in subtree.items() if delta]
    if moved:
        cursor.executemany(
            f"INSERT INTO {SUBTREE} (department_id, depth, month, measure, line, value) "
            f"VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (department_id, measure, line, month) "
            f"DO UPDATE SET value = {SUBTREE}.value + excluded.value",
            moved,
        )
        ancestors = _in({cell[0] for cell in subtree})
        cursor.execute(f"DELETE FROM {SUBTREE} WHERE value = 0 AND department_id IN ({ancestors})")
    return len(deltas)


def _subtree_sql(measures: str | None = None) -> list[str]:
    """INSERT … SELECT statements summing the department months into the subtree months, one
    per depth: a department's path holds its ancestors' ids, so the ancestor at depth k is the
    k-th segment."""
    out = []
    for depth in range(1, SUBTREE_DEPTH + 1):
        ancestor = (f"CAST(substr(department_path, {(depth - 1) * tree.SEGMENT + 1}, "
                    f"{tree.SEGMENT}) AS bigint)")
        where = f" AND measure IN ({measures})" if measures else ""
        out.append(
            f"INSERT INTO {SUBTREE} (department_id, depth, month, measure, line, value) "
            f"SELECT {ancestor}, {depth}, month, measure, line, SUM(value) FROM {MONTH} "
            f"WHERE length(department_path) >= {depth * tree.SEGMENT}{where} "
            f"GROUP BY {ancestor}, month, measure, line HAVING SUM(value) <> 0")
    return out


def _sum_months(cursor: Any, measures: str) -> dict[str, tuple[int, float]]:
    """Sum the department months from the daily facts, then the subtree months from those
    (the tables empty of these measures); the rows and seconds of each."""
    t = time.perf_counter()
    cursor.execute(
        f"INSERT INTO {MONTH} (department_id, department_path, month, measure, line, value) "
        f"SELECT department_id, department_path, month, measure, line, SUM(value) "
        f"FROM {FACT} WHERE measure IN ({measures}) GROUP BY department_id, "
        f"department_path, month, measure, line HAVING SUM(value) <> 0"
    )
    out = {"months": (max(cursor.rowcount, 0), round(time.perf_counter() - t, 2))}
    t, rows = time.perf_counter(), 0
    for sql in _subtree_sql(measures):
        cursor.execute(sql)
        rows += max(cursor.rowcount, 0)
    out["subtrees"] = (rows, round(time.perf_counter() - t, 2))
    return out


def resum() -> None:
    """Sum the department and subtree months again from the daily facts as they stand (for
    facts written directly, as tests and the benchmark's hand side do)."""
    measures = _quoted(MEASURES)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {MONTH}")
        cursor.execute(f"DELETE FROM {SUBTREE}")
        _sum_months(cursor, measures)


def rebuild_subtrees() -> int:
    """Sum the subtree months again from the department months (after a department moved:
    its old ancestors lose its figures and the new ones gain them)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {SUBTREE}")
        rows = 0
        for sql in _subtree_sql():
            cursor.execute(sql)
            rows += max(cursor.rowcount, 0)
    return rows


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
            # The tables have no foreign keys (models.py), so no deferred check of the
            # caller's transaction is pending on them to refuse the TRUNCATE or ALTER TABLE.
            cursor.execute(f"TRUNCATE {FACT}, {MONTH}, {SUBTREE}")
            # Millions of rows load faster into a bare table whose indexes are built once
            # afterwards than row by row into them. Memory measured on the xl company: 256 MB
            # for grouping and for each index build was as fast as 1 GB, and for the index
            # builds faster (1 GB took 60 s for the slice index, 256 MB 49 s).
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            # Every source is grouped per person and day, then joined to the HR history and
            # the departments: tens of millions of groups against 100,000 stretches. The
            # planner's pick, an index lookup per group (or a sort of all of them), took twice
            # as long as hashing the stretches once.
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
            bare = _strip(cursor, FACT) + _strip(cursor, MONTH) + _strip(cursor, SUBTREE)
        else:
            for table in (FACT, MONTH, SUBTREE):
                cursor.execute(f"DELETE FROM {table} WHERE measure IN ({measures})")
        for family in families:
            t = time.perf_counter()
            rows = 0
            for sql in _insert_sql(family, ""):
                cursor.execute(sql)
                rows += max(cursor.rowcount, 0)
            timings[f"facts:{family}"] = (rows, round(time.perf_counter() - t, 2))
        timings.update(_sum_months(cursor, measures))
        if bulk:
            t = time.perf_counter()
            for name, statement in bare:
                started_one = time.perf_counter()
                cursor.execute(statement)
                timings[f"index:{name}"] = round(time.perf_counter() - started_one, 2)
            timings["indexes"] = (len(bare), round(time.perf_counter() - t, 2))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in (FACT, MONTH, SUBTREE):
                cursor.execute(f"ANALYZE {table}")
    timings["seconds"] = round(time.perf_counter() - started, 2)
    log.info("performance facts rebuilt: %s", timings)
    return timings


def _strip(cursor: Any, table: str) -> list[tuple[str, str]]:
    """PostgreSQL: drop the table's secondary indexes and unique constraints (the primary key
    stays); returns (name, statement) for putting each back as it was."""
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'u' ORDER BY conname", [table])
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
    return (list(indexes)
            + [(name, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
               for name, definition in constraints])


def move_paths(old_path: str, new_path: str) -> int:
    """A department moved in the tree: the path copies follow (one UPDATE per table), and the
    subtree months are summed again over the new tree."""
    from weiying.performance.models import DailyFact, DepartmentMonth

    moved = tree.move_subtree(DailyFact.objects.all(), "department_path", old_path, new_path)
    moved += tree.move_subtree(DepartmentMonth.objects.all(), "department_path", old_path,
                               new_path)
    rebuild_subtrees()
    return moved
