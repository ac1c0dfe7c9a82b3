"""Benchmarks: build (or reuse) a demo company in its own database, time the reads and the
import that must stay fast, and write a table of figures and ORM/hand-SQL ratios.

    uv run python -m bench.run [--size small|demo|xl] [--scale X] [--db sqlite|postgres]

Every ORM figure is paired with one hand-written SQL query doing the same work in the same
run, and the two must return the same ids (the run stops if they do not). A row whose code
is not written yet is skipped with a note. See bench/README.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/"


@dataclass
class Row:
    what: str
    orm: str = ""
    sql: str = ""
    ratio: str = ""
    queries: str = ""
    note: str = ""


def _today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()


class Rollback(Exception):
    """Raised to undo a measured write."""


# --- Set-up ---------------------------------------------------------------------------------
def _configure(args: argparse.Namespace) -> str:
    """Point settings at the benchmark's own data folder and database; returns a label."""
    tag = args.size if args.scale == 1 else f"{args.size}-s{str(args.scale).replace('.', 'p')}"
    data_dir = HERE / ".data" / tag
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["WEIYING_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "weiying.conf.settings"
    if args.db == "postgres":
        base = args.pg_url.rstrip("/") + "/"
        name = "wy_bench_" + tag.replace("-", "_")
        _create_pg_database(base, name)
        os.environ["DATABASE_URL"] = base + name
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    return tag


def _create_pg_database(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(base + "postgres", autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')


def _build(args: argparse.Namespace) -> tuple[Row | None, str]:
    """Migrate and generate the company unless this exact one is already there."""
    from django.core.management import call_command

    from weiying.core.models import AuditLog
    from weiying.demo.generate import generate, is_generated
    from weiying.org.services import ensure_builtin_roles

    call_command("migrate", interactive=False, verbosity=0)
    ensure_builtin_roles()
    made = AuditLog.objects.filter(action="demo.generate").order_by("-pk").first()
    wanted = {"size": args.size, "seed": args.seed, "scale": args.scale}
    same = made is not None and all(made.after.get(k) == v for k, v in wanted.items())
    if is_generated() and same and not args.rebuild:
        return None, str(made.after.get("today"))
    started = time.perf_counter()
    summary = generate(size=args.size, seed=args.seed, fresh=True, scale=args.scale)
    seconds = time.perf_counter() - started
    _analyze()
    print(f"generated in {seconds:.1f}s: {summary}", file=sys.stderr)
    return Row(f"generate the '{args.size}' company", orm=f"{seconds:.1f} s",
               note=summary.split(": ", 1)[1]), _today().isoformat()


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- Timing helpers -------------------------------------------------------------------------
def _timings(fn: Callable[[], Any], runs: int) -> list[float]:
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {_p(values, 0.5):.2f} / p95 {_p(values, 0.95):.2f} ms"


def _queries(fn: Callable[[], Any]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def _sql(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _same(what: str, orm_ids: list[int], sql_ids: list[int]) -> None:
    if orm_ids != sql_ids:
        raise AssertionError(
            f"{what}: the ORM and the SQL disagree ({len(orm_ids)} vs {len(sql_ids)} ids; "
            f"first ORM {orm_ids[:5]}, first SQL {sql_ids[:5]}); the comparison is void"
        )


def _fresh_user(pk: int) -> Any:
    """A user as a request sees it: nothing cached from earlier calls."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=pk)


def _users(pk: int, n: int) -> Callable[[], Any]:
    """Hand out fresh copies of a user, loaded before the clock starts (as the session
    middleware loads request.user before a view runs)."""
    copies = [_fresh_user(pk) for _ in range(n)]
    return copies.pop


def _login_for(employee: Any) -> Any:
    from django.contrib.auth import get_user_model

    if employee.user_id:
        return employee.user
    User = get_user_model()
    user, _created = User.objects.get_or_create(username=f"bench-{employee.number.lower()}")
    type(employee).objects.filter(pk=employee.pk).update(user=user)
    return user


# --- The measurements -------------------------------------------------------------------------
def _mid_manager() -> Any:
    """The area manager (区域经理) whose subtree holds the most leads."""
    from django.db.models import Count

    from weiying.core import tree
    from weiying.org.models import Department, Employee
    from weiying.pipeline.models import Lead

    per_team = Lead.objects.values("department_id").annotate(n=Count("pk"))
    paths = dict(Department.objects.values_list("pk", "path"))
    leads: dict[int, int] = {}
    for row in per_team:
        for ancestor in tree.ancestor_ids(paths[row["department_id"]]):
            leads[ancestor] = leads.get(ancestor, 0) + row["n"]
    areas = Department.objects.filter(kind="area", manager__isnull=False)
    best = max(areas, key=lambda d: (leads.get(d.pk, 0), -d.pk), default=None)
    if best is None:
        raise LookupError("no area with a manager")
    return Employee.objects.select_related("department").get(pk=best.manager_id)


# The hand-written side does the same work as the selector: it reads the caller's employee,
# department path and role (the scope), then the page with every column the ORM loads.
SCOPE_SQL = """
SELECT e.*, d.path, r.data_scope, r.permissions
FROM org_employee e
JOIN org_department d ON d.id = e.department_id
LEFT JOIN org_role r ON r.id = e.role_id
WHERE e.user_id = %s
"""

LEAD_PAGE_SQL = """
SELECT l.*, e.*
FROM pipeline_lead l
JOIN org_department d ON d.id = l.department_id
LEFT JOIN org_employee e ON e.id = l.owner_id
WHERE l.status = %s AND d.path >= %s AND d.path < %s
ORDER BY l.last_activity_at DESC, l.id DESC
LIMIT 51
"""

LEAD_DETAIL_SQL = """
SELECT l.*, e.*, t.*, c.*, o.*
FROM pipeline_lead l
JOIN org_department t ON t.id = l.department_id
LEFT JOIN org_employee e ON e.id = l.owner_id
LEFT JOIN customers_customer c ON c.id = l.customer_id
LEFT JOIN pipeline_opportunity o ON o.id = l.opportunity_id
WHERE l.id = %s AND t.path >= %s AND t.path < %s
"""


def _hand_scope(user_pk: int) -> tuple[str, str]:
    """(department path, upper bound) of the caller, read by hand as the selector reads it."""
    from weiying.core import tree

    row = _sql(SCOPE_SQL, [user_pk])[0]
    path = row[-3]
    return path, tree.upper_bound(path)


SUBTREE_SQL = """
SELECT e.id FROM org_employee e
WHERE e.department_path >= %s AND e.department_path < %s ORDER BY e.id
"""


def bench_lead_list(runs: int, status: str) -> tuple[list[Row], int | None]:

    try:
        from weiying.pipeline.selectors.leads import list_leads
    except ImportError as exc:
        return [Row("lead list, manager's subtree", note=f"skipped: {exc}")], None
    manager = _mid_manager()
    user_pk = _login_for(manager).pk
    next_user = _users(user_pk, 2 * runs + 10)

    def orm() -> list[int]:
        page = list_leads(next_user(), status=status, sort="-activity")
        return [lead.pk for lead in page.items]

    def sql() -> list[int]:
        low, high = _hand_scope(user_pk)
        return [r[0] for r in _sql(LEAD_PAGE_SQL, [status, low, high])][:50]

    ids = orm()
    _same("lead list", ids, sql())
    orm_ms, sql_ms = _timings(orm, runs), _timings(sql, runs)
    row = Row(
        f"lead list: first page, status={status}, sort -activity, subtree of "
        f"{manager.department.name} ({manager.position})",
        orm=_ms(orm_ms), sql=_ms(sql_ms), ratio=f"{_p(orm_ms, .5) / _p(sql_ms, .5):.1f}×",
        queries=str(_queries(orm)), note=f"{len(ids)} rows, {runs} runs; same ids",
    )
    return [row], user_pk if ids else None


def bench_lead_detail(runs: int, user_pk: int | None) -> list[Row]:

    try:
        from weiying.pipeline.selectors.leads import lead_detail, list_leads
    except ImportError as exc:
        return [Row("lead detail", note=f"skipped: {exc}")]
    if user_pk is None:
        return [Row("lead detail", note="skipped: no lead in the manager's subtree")]
    user = _fresh_user(user_pk)
    pk = list_leads(user, sort="-activity", size=1).items[0].pk

    next_user = _users(user_pk, 2 * runs + 10)

    def orm() -> list[int]:
        return [lead_detail(next_user(), pk).pk]

    def sql() -> list[int]:
        low, high = _hand_scope(user_pk)
        return [r[0] for r in _sql(LEAD_DETAIL_SQL, [pk, low, high])]

    _same("lead detail", orm(), sql())
    orm_ms, sql_ms = _timings(orm, runs), _timings(sql, runs)
    return [Row("lead detail (`lead_detail`) with owner, team, customer, opportunity",
                orm=_ms(orm_ms), sql=_ms(sql_ms),
                ratio=f"{_p(orm_ms, .95) / _p(sql_ms, .95):.1f}× (p95)",
                queries=str(_queries(orm)), note=f"{runs} runs; same id")]


def bench_pages(runs: int, user_pk: int | None, status: str) -> list[Row]:
    """The desk pages a manager opens, through Django's whole request cycle (middleware,
    session, view, template): what a person waits for, minus the network."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import reverse

    from weiying.pipeline.selectors.leads import list_leads

    if user_pk is None:
        return [Row("lead pages", note="skipped: no lead in the manager's subtree")]
    user = get_user_model().objects.get(pk=user_pk)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(user)
        first = reverse("pipeline:lead_list") + f"?status={status}&sort=-activity"
        page = list_leads(_fresh_user(user_pk), status=status, sort="-activity")
        second = first + f"&after={page.next_cursor}" if page.next_cursor else first
        detail = reverse("pipeline:lead_detail", args=[page.items[0].pk])

        rows = []
        for label, url in (("lead list page 1", first), ("lead list page 2", second),
                           ("lead detail page", detail)):
            def get(url: str = url) -> None:
                response = client.get(url)
                if response.status_code != 200:
                    raise AssertionError(f"{url}: status {response.status_code}")

            ms = _timings(get, runs)
            rows.append(Row(f"{label} (HTML, whole request)", orm=_ms(ms),
                            queries=str(_queries(get)),
                            note=f"{runs} runs; session, view and template included"))
    return rows


def _subtree_department() -> tuple[Any, int, int]:
    """The department whose subtree is closest to 10,000 people (a fifth of a small company)."""
    from collections import Counter

    from weiying.core import tree
    from weiying.org.models import Department, Employee

    per_dept = Counter(Employee.objects.values_list("department_id", flat=True))
    total = sum(per_dept.values())
    paths = dict(Department.objects.values_list("pk", "path"))
    size: Counter[int] = Counter()
    for dept_id, n in per_dept.items():
        for ancestor in tree.ancestor_ids(paths[dept_id]):
            size[ancestor] += n
    # The case is a manager over 10,000 people; smaller companies get a fifth of theirs.
    target = 10_000 if total >= 50_000 else max(total // 5, 1)
    best = min(size, key=lambda d: (abs(size[d] - target), d))
    return Department.objects.get(pk=best), size[best], total


def bench_subtree(runs: int) -> list[Row]:
    from weiying.core import tree

    try:
        from weiying.org.selectors import subtree_employees
    except ImportError as exc:
        return [Row("subtree of a manager", note=f"skipped: {exc}")]
    dept, people, total = _subtree_department()
    bounds = [dept.path, tree.upper_bound(dept.path)]

    def orm() -> list[int]:
        return list(subtree_employees(dept).order_by("id").values_list("id", flat=True))

    def sql() -> list[int]:
        return [r[0] for r in _sql(SUBTREE_SQL, bounds)]

    _same("subtree", orm(), sql())
    orm_ms, sql_ms = _timings(orm, runs), _timings(sql, runs)
    return [Row(f"subtree ids of {dept.name} ({people} of {total} people)",
                orm=_ms(orm_ms), sql=_ms(sql_ms),
                ratio=f"{_p(orm_ms, .5) / _p(sql_ms, .5):.1f}×", queries=str(_queries(orm)),
                note=f"{runs} runs; same ids")]


def _csv(path: Path, n: int, start: int) -> list[dict[str, str]]:
    """n leads with phones 170xxxxxxxx (a prefix the generator never uses)."""
    from weiying.demo import data

    rows = []
    cities = [(c, region) for region, cs in data.REGIONS for c, _d in cs]
    for i in range(n):
        city, region = cities[i % len(cities)]
        rows.append({
            "姓名": data.SURNAMES[i % 40][0] + data.GIVEN_CHARS[i % 90],
            "手机": f"170{start + i:08d}",
            "公司": f"{city}{data.BRAND_WORDS[i % 70]}科技有限公司",
            "城市": city, "区域": region, "来源": "展会", "渠道": "展会·名单",
            "意向": data.PRODUCTS[i % 20][1],
        })
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _measure_import(fn: Callable[[], Any]) -> tuple[float, Any]:
    from django.db import transaction

    result: Any = None
    started = time.perf_counter()
    try:
        with transaction.atomic():
            result = fn()
            elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        pass
    return elapsed, result


def _peak(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        _measure_import(fn)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_import(sizes: list[int]) -> list[Row]:
    from django.contrib.auth import get_user_model

    from weiying.org.models import Employee
    from weiying.pipeline.models import Lead

    try:
        from weiying.pipeline.imports import import_leads
    except ImportError as exc:
        return [Row("lead import", note=f"skipped: {exc}")]
    admin = get_user_model().objects.filter(username="admin").first()
    if admin is None:
        return [Row("lead import", note="skipped: no admin login")]
    owner = Employee.objects.filter(role__code="rep", status="active").order_by("pk").first()
    rows_out = []
    with tempfile.TemporaryDirectory(prefix="wy-bench-") as tmp:
        for k, n in enumerate(sizes):
            path = Path(tmp) / f"leads-{n}.csv"
            rows = _csv(path, n, start=k * 10_000_000)

            def orm(path: Path = path) -> Any:
                return import_leads(str(path), actor=admin, valid_only=False)

            def bare(rows: list[dict[str, str]] = rows) -> int:
                now = dt.datetime.now(dt.UTC)
                objs = [Lead(name=r["姓名"], phone=r["手机"], company_name=r["公司"],
                             city=r["城市"], region=r["区域"], source="exhibition",
                             channel=r["渠道"], interest=r["意向"], owner_id=owner.pk,
                             department_id=owner.department_id, status="assigned",
                             assigned_at=now, created_at=now, last_activity_at=now)
                        for r in rows]
                Lead.objects.bulk_create(objs, batch_size=2000)
                return len(objs)

            seconds, report = _measure_import(orm)
            imported = getattr(report, "imported", None)
            if imported != n:
                raise AssertionError(f"import of {n} rows imported {imported}: {report}")
            bare_seconds, count = _measure_import(bare)
            assert count == n
            peak = _peak(orm)
            rows_out.append(Row(
                f"import {n:,} leads from CSV (`import_leads`) vs bare bulk_create",
                orm=f"{n / seconds:,.0f} rows/s", sql=f"{n / bare_seconds:,.0f} rows/s",
                ratio=f"{seconds / bare_seconds:.1f}× slower",
                note=f"peak Python memory {peak / 2**20:.1f} MiB (tracemalloc); rolled back",
            ))
    return rows_out


# --- Report ---------------------------------------------------------------------------------
def _table(rows: list[Row], args: argparse.Namespace, tag: str, data_date: str) -> str:
    from django.db import connection

    head = [
        f"# Benchmarks {_today():%Y-%m-%d} · {args.db} · {tag}",
        "",
        f"- data: '{args.size}' company (seed {args.seed}, scale {args.scale}), generated for "
        f"{data_date}; database {connection.vendor} {_version()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end",
        "- ORM = the project's selector or service; SQL = one hand-written query doing the "
        "same work, checked to return the same ids.",
        "",
        "| what | ORM / service | hand SQL / bare | ratio | queries | note |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    body = [f"| {r.what} | {r.orm} | {r.sql} | {r.ratio} | {r.queries} | {r.note} |"
            for r in rows]
    return "\n".join(head + body) + "\n"


def _version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sqlite_version()" if connection.vendor == "sqlite"
                       else "SHOW server_version")
        return str(cursor.fetchone()[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--size", choices=["small", "demo", "xl"], default="demo")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG),
                        help="server URL without a database name")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--status", default="contacted", help="lead status to filter on")
    parser.add_argument("--import-sizes", default="",
                        help="comma-separated row counts (default by size)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data set")
    args = parser.parse_args(argv)
    if args.runs < 50:
        parser.error("--runs must be at least 50 for a p95 worth reading")
    tag = _configure(args)

    import django

    django.setup()
    rows: list[Row] = []
    built, data_date = _build(args)
    if built:
        rows.append(built)
    lead_rows, user_pk = bench_lead_list(args.runs, args.status)
    rows += lead_rows
    rows += bench_lead_detail(args.runs, user_pk)
    rows += bench_pages(args.runs, user_pk, args.status)
    rows += bench_subtree(args.runs)
    default_sizes = {"small": "500,5000", "demo": "2000,20000", "xl": "10000,100000"}
    sizes = [int(s) for s in (args.import_sizes or default_sizes[args.size]).split(",")]
    rows += bench_import(sizes)

    publish(_table(rows, args, tag, data_date), f"{_today():%Y-%m-%d}-{args.db}.md")
    return 0


def publish(table: str, name: str) -> None:
    """Show a benchmark's table (this is a command-line tool) and keep it in bench/results/."""
    print(table)
    out = HERE / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(table, encoding="utf-8")
    print(f"written to {out.relative_to(HERE.parent)}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
