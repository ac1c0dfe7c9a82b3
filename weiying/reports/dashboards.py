"""Dashboards per role: the figures a rep, a manager, a director, finance and the executive
look at first, each number linked to the page or the records behind it.

Every figure is read through the performance selectors (weiying.performance.selectors: whole
months from the department months, so a dashboard stays fast however large the subtree) and
the other layers' scoped selectors; nothing here filters rows by itself. A dashboard function
makes a small fixed number of queries: by_child and by_employee answer every child and every
person in one query each, and names are read in one query per table.

The role is picked from the viewer's role and data scope (`role_for`); `roles_for` lists the
dashboards a viewer may switch to (a director also sees a manager's view of their own team
and their own month as a rep).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import tree
from weiying.core.errors import NotFound, PermissionDenied
from weiying.core.money import ZERO, fen_sum, format_cny, from_fen, money
from weiying.core.permissions import employee_of, has_perm, role_of
from weiying.core.scope import data_scope_of, scoped
from weiying.org.choices import DataScope
from weiying.org.models import Department, Employee
from weiying.performance import selectors
from weiying.performance.kpis import Evaluator
from weiying.performance.models import Kpi, Unit
from weiying.performance.selectors import Period
from weiying.pipeline.models import Opportunity

ROLES = ("rep", "manager", "director", "finance", "executive")
ROLE_LABELS = {
    "rep": gettext_lazy("My month"),
    "manager": gettext_lazy("My team"),
    "director": gettext_lazy("My organisation"),
    "finance": gettext_lazy("Finance"),
    "executive": gettext_lazy("Company"),
}
# The KPIs each dashboard heads with, in order.
HEADLINE = {
    "rep": ["signed_amount", "collected", "new_customers", "leads", "followups", "win_rate",
            "first_response"],
    "manager": ["signed_amount", "collected", "new_customers", "opportunities", "win_rate",
                "followups", "first_response"],
    "director": ["signed_amount", "collected", "revenue", "new_customers", "win_rate",
                 "first_response"],
    "executive": ["signed_amount", "collected", "revenue", "gross_margin", "new_customers",
                  "win_rate", "repurchase_rate"],
}
# The measures every ranking and comparison table shows (read in the same query as the rest).
TABLE_MEASURES = ["signed_amount", "collected", "new_customers", "opportunities", "won", "lost",
                  "followups"]
TOP_REPS = 10
SHOWN_ROWS = 100  # a table longer than this shows its first rows; the export holds them all
# The manager view of a department larger than this (headquarters, say) ranks the people with
# figures and lists the first of them; the rankings page pages through everyone.
MEMBER_LIMIT = 2000
TOP_MEASURES = ["signed_amount", "collected", "new_customers", "won", "lost"]
RANKED_BY = ["signed_amount", "collected"]
TREND_MONTHS = 12
FORECAST_MONTHS = 3
PERCENT = Decimal("0.1")


# --- what a dashboard holds --------------------------------------------------------------------
@dataclass
class Figure:
    """One headline number with its comparisons, its target and where it drills down to."""

    code: str
    label: str
    unit: str
    value: Decimal | None
    previous: Decimal | None = None
    year_ago: Decimal | None = None
    target: Decimal | None = None
    link: str = ""
    compared: bool = False

    @staticmethod
    def _change(now: Decimal | None, then: Decimal | None) -> Decimal | None:
        if now is None or then is None or then == 0:
            return None
        return ((now - then) * 100 / abs(then)).quantize(PERCENT, rounding=ROUND_HALF_UP)

    @property
    def mom(self) -> Decimal | None:
        """Change against the period before, in per cent."""
        return self._change(self.value, self.previous)

    @property
    def yoy(self) -> Decimal | None:
        return self._change(self.value, self.year_ago)

    @property
    def achievement(self) -> Decimal | None:
        """Value over target, in per cent (for a lower-is-better KPI too: read it as such)."""
        if self.value is None or not self.target:
            return None
        return (self.value * 100 / self.target).quantize(PERCENT, rounding=ROUND_HALF_UP)

    @property
    def text(self) -> str:
        return show(self.value, self.unit)

    @property
    def target_text(self) -> str:
        return show(self.target, self.unit)


@dataclass
class Cell:
    value: Any
    unit: str = "text"
    link: str = ""
    key: Any = None  # the id the row is about (an employee, a department), for the bench

    @property
    def text(self) -> str:
        return show(self.value, self.unit)


@dataclass
class Table:
    """A table of the dashboard; `name` selects it for export (?export=xlsx&table=name)."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    more: str = ""  # the page listing everything, when the table shows only the first rows

    @property
    def shown(self) -> list[list[Cell]]:
        """The rows the page shows; the export holds them all."""
        return self.rows[:SHOWN_ROWS]

    @property
    def hidden(self) -> int:
        return max(0, len(self.rows) - SHOWN_ROWS)

    def export_rows(self) -> list[list[Any]]:
        return [[_plain(c) for c in row] for row in self.rows]


@dataclass
class Chart:
    """A chart: the spec static/reports/charts.js draws (weiying.reports.desk.chart), shown
    in a data-chart container."""

    name: str
    title: str
    spec: dict[str, Any]


@dataclass
class Dashboard:
    role: str
    period: Period
    department: Department | None = None
    employee: Employee | None = None
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(ROLE_LABELS[self.role])

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)


# --- formatting ----------------------------------------------------------------------------------
def show(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if unit == Unit.MONEY:
        return format_cny(value)
    if unit == Unit.RATIO:
        return f"{(Decimal(value) * 100).quantize(PERCENT, rounding=ROUND_HALF_UP)}%"
    if unit == Unit.SECONDS:
        seconds = int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if seconds < 3600:
            return _("%(m)d min") % {"m": round(seconds / 60)}
        return _("%(h).1f h") % {"h": seconds / 3600}
    if unit == Unit.COUNT:
        return f"{int(value):,}"
    if unit == "percent":
        return f"{value}%"
    return str(value)


def _plain(cell: Cell) -> Any:
    value = cell.value
    if value is None:
        return None
    if cell.unit == Unit.MONEY:
        return money(value)
    if cell.unit == Unit.RATIO:
        return Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    if cell.unit == Unit.SECONDS:
        return int(value)
    return value


def link(name: str, *args: Any, **query: Any) -> str:
    """A drill-down link, "" when that page is not installed."""
    try:
        url = reverse(name, args=args)
    except NoReverseMatch:
        return ""
    kept = {k: v for k, v in query.items() if v not in (None, "")}
    return url + ("?" + urlencode(kept) if kept else "")


def first_link(*candidates: tuple[Any, ...]) -> str:
    """The first of several (name, {query}) drill-downs that is installed."""
    for name, query in candidates:
        url = link(name, **query)
        if url:
            return url
    return ""


def _line_chart(name: str, title: str, labels: list[str],
                series: list[tuple[str, list[Decimal | None]]], kind: str = "bar") -> Chart:
    from weiying.reports.desk import chart

    return Chart(name, title, chart(kind, labels, series, title))


def _funnel_chart(name: str, title: str, stages: list[tuple[str, int]]) -> Chart:
    from weiying.reports.desk import chart

    return Chart(name, title, chart("funnel", [n for n, _v in stages],
                                    [(title, [v for _n, v in stages])], title))


# --- who sees which dashboard --------------------------------------------------------------------
def role_for(user: Any) -> str:
    """The dashboard a viewer opens by default: by the role's code for the built-in roles,
    else by the data scope (everything → company, a subtree → director or manager by whether
    the viewer's department has departments below it, narrower → their own month)."""
    scope = data_scope_of(user)
    role = role_of(user)
    code = getattr(role, "code", "")
    if scope == DataScope.NONE:
        raise PermissionDenied(_("Your login has no data scope; ask an administrator to give "
                                 "you a role."), code="forbidden")
    if code == "finance":
        return "finance"
    if scope == DataScope.ALL:
        return "executive"
    if code in ("manager", "director") and scope == DataScope.SUBTREE:
        return code
    if scope == DataScope.SUBTREE and has_perm(user, "reports.view"):
        me = employee_of(user)
        has_children = Department.objects.filter(parent_id=me.department_id).exists()
        return "director" if has_children else "manager"
    return "rep"


def roles_for(user: Any) -> list[str]:
    """Every dashboard the viewer may open, their default first."""
    default = role_for(user)
    scope = data_scope_of(user)
    allowed = {default}
    if employee_of(user) is not None:
        allowed.add("rep")
    if has_perm(user, "reports.view") and scope in (DataScope.SUBTREE, DataScope.ALL):
        allowed |= {"manager", "director"}
        if scope == DataScope.ALL:
            allowed.add("executive")
    if has_perm(user, "finance.view") and has_perm(user, "reports.view") \
            and scope == DataScope.ALL:
        allowed.add("finance")
    if employee_of(user) is None:
        allowed -= {"rep", "manager", "director"} - {default}
    return [default] + [r for r in ROLES if r in allowed and r != default]


def check_role(user: Any, role: str) -> None:
    if role not in ROLES:
        raise NotFound(_("There is no %(role)s dashboard; pick one of: %(roles)s.")
                       % {"role": role, "roles": ", ".join(ROLES)})
    if role not in roles_for(user):
        raise PermissionDenied(_("Your role does not open the %(role)s dashboard.")
                               % {"role": role}, code="forbidden")


def home_department(user: Any) -> Department | None:
    """The department a manager's or director's dashboard shows by default: their own (the
    company's root for an all-scope viewer without a department)."""
    me = employee_of(user)
    if me is not None and data_scope_of(user) != DataScope.ALL:
        return me.department
    return Department.objects.filter(parent__isnull=True).order_by("path").first()


# --- shared pieces -------------------------------------------------------------------------------
def _kpis() -> dict[str, Kpi]:
    return {k.code: k for k in Kpi.objects.all()}


def _measures(codes: list[str], kpis: dict[str, Kpi]) -> set[str]:
    from weiying.performance.kpis import measures_for

    return measures_for(codes, kpis) | set(TABLE_MEASURES)


def _figures(codes: list[str], kpis: dict[str, Kpi], compared: dict[str, selectors.Raw],
             links: dict[str, str], targets: dict[str, Decimal] | None = None) -> list[Figure]:
    now, before, year_ago = (Evaluator(compared.get(k, {}), kpis)
                             for k in ("current", "previous", "year_ago"))
    out = []
    for code in codes:
        kpi = kpis.get(code)
        if kpi is None:
            continue
        out.append(Figure(
            code=code, label=kpi.label, unit=kpi.unit, value=now.value(code),
            previous=before.value(code) if "previous" in compared else None,
            year_ago=year_ago.value(code) if "year_ago" in compared else None,
            target=(targets or {}).get(code), link=links.get(code, ""),
            compared="previous" in compared))
    return out


def _value(raw: selectors.Raw, code: str, kpis: dict[str, Kpi]) -> Decimal | None:
    return Evaluator(raw, kpis).value(code)


def trend_period(period: Period, months: int = TREND_MONTHS) -> Period:
    """The `months` whole months ending with the period's last month."""
    start = period.end.replace(day=1)
    for _i in range(months - 1):
        start = (start - dt.timedelta(days=1)).replace(day=1)
    return Period(start, Period.of(period.end).end)


def _period_query(period: Period) -> str:
    return period.label if period.kind != "days" else ""


def kpi_links(period: Period, *, department: Department | None = None,
              employee: Employee | None = None) -> dict[str, str]:
    """Where each headline KPI drills down to: the performance overview of the slice when it
    is installed, else the records behind the number (lists filtered to the slice)."""
    slice_q = {"department": department.pk if department else None,
               "employee": employee.pk if employee else None,
               "period": _period_query(period)}
    overview = link("performance:overview", **slice_q)
    owner = employee.pk if employee else None
    team = department.pk if department else None
    days = {"since": period.start.isoformat(), "until": period.end.isoformat()}
    records = {
        "leads": first_link(("pipeline:lead_list", {"owner": owner})),
        "followups": first_link(("pipeline:followup_list", {"owner": owner, **days})),
        "opportunities": first_link(("pipeline:opportunity_list", {"owner": owner,
                                                                    "team": team})),
        "win_rate": first_link(("reports:funnel", {"department": team, "owner": owner,
                                                   "start": period.start.isoformat(),
                                                   "end": period.end.isoformat()}),
                               ("pipeline:opportunity_list", {"owner": owner, "team": team})),
        "signed_amount": first_link(("pipeline:contract_list", {"owner": owner})),
        "new_customers": first_link(("pipeline:contract_list", {"owner": owner})),
        "collected": first_link(("pipeline:receivables", {"owner": owner})),
        "first_response": first_link(("reports:activity", {"department": team,
                                                           "owner": owner})),
        "revenue": first_link(("finance:revenue", {"start": period.start.isoformat(),
                                                   "end": period.end.isoformat(),
                                                   "department": team})),
        "gross_margin": first_link(("finance:revenue", {"start": period.start.isoformat(),
                                                        "end": period.end.isoformat(),
                                                        "department": team})),
        "repurchase_rate": first_link(("reports:customer_value", {"department": team})),
    }
    if overview:
        return {code: overview for code in records}
    return records


def _trend_chart(name: str, title: str, series_by_key: dict[Any, selectors.Raw],
                 kpis: dict[str, Kpi], label: Any) -> Chart:
    keys = sorted(series_by_key)
    return _line_chart(name, title, [label(k) for k in keys], [
        (kpis[code].label, [_value(series_by_key[k], code, kpis) for k in keys])
        for code in ("signed_amount", "collected")], kind="line")


def _people_table(name: str, title: str, figures: dict[int, selectors.Raw],
                  people: dict[int, Employee], order: list[int], kpis: dict[str, Kpi],
                  period: Period, *, followups: bool = True) -> Table:
    rows = []
    for rank, pk in enumerate(order, start=1):
        raw, person = figures.get(pk, {}), people.get(pk)
        links = kpi_links(period, employee=person) if person else {}
        rows.append([
            Cell(rank, Unit.COUNT),
            Cell(person.name if person else str(pk), "text",
                 link("org:employee_detail", pk) if person else "", key=pk),
            Cell(person.department.name if person else "", "text"),
            Cell(_value(raw, "signed_amount", kpis), Unit.MONEY, links.get("signed_amount", "")),
            Cell(_value(raw, "collected", kpis), Unit.MONEY, links.get("collected", "")),
            Cell(_value(raw, "new_customers", kpis), Unit.COUNT, links.get("new_customers", "")),
            Cell(_value(raw, "win_rate", kpis), Unit.RATIO, links.get("win_rate", "")),
        ])
        if followups:
            rows[-1].append(Cell(_value(raw, "followups", kpis), Unit.COUNT,
                                 links.get("followups", "")))
    headers = [_("Rank"), _("Name"), _("Department"), kpis["signed_amount"].label,
               kpis["collected"].label, kpis["new_customers"].label, kpis["win_rate"].label]
    if followups:
        headers.append(kpis["followups"].label)
    return Table(name, title, headers, rows)


def _rank(figures: dict[int, selectors.Raw], ids: list[int]) -> list[int]:
    """Best first by RANKED_BY, then the lowest id (selectors.top_employees ranks the same way
    in the database)."""
    return sorted(ids, key=lambda pk: (*(-figures.get(pk, {}).get(m, 0) for m in RANKED_BY),
                                       pk))


def _open_opportunities(user: Any, *, department: Department | None = None,
                        employee: Employee | None = None) -> Any:
    qs = scoped(Opportunity.objects.filter(status="open"), user)
    if department is not None:
        qs = qs.filter(tree.subtree_q("department__path", department.path))
    if employee is not None:
        qs = qs.filter(owner_id=employee.pk)
    return qs


def _pipeline_by_stage(user: Any, *, department: Department | None = None,
                       employee: Employee | None = None) -> tuple[Table, Chart]:
    """Open opportunities per stage (one query), with the list of each stage's records."""
    qs = _open_opportunities(user, department=department, employee=employee)
    rows = list(qs.order_by().values("stage_id", "stage__name", "stage__order",
                                     "stage__probability")
                .annotate(n=Count("id"), fen=fen_sum("amount"))
                .order_by("stage__order", "stage_id"))
    owner = employee.pk if employee else None
    team = department.pk if department else None
    table_rows = []
    for r in rows:
        to = link("pipeline:opportunity_list", stage=r["stage_id"], status="open", owner=owner,
                  team=team)
        amount = from_fen(r["fen"])
        weighted = money(amount * r["stage__probability"] / 100)
        table_rows.append([Cell(r["stage__name"], "text", to), Cell(r["n"], Unit.COUNT, to),
                           Cell(amount, Unit.MONEY, to), Cell(weighted, Unit.MONEY, to)])
    table = Table("pipeline", _("Open pipeline by stage"),
                  [_("Stage"), _("Opportunities"), _("Amount"), _("Weighted")], table_rows)
    chart = _funnel_chart("pipeline", _("Open pipeline by stage"),
                          [(r["stage__name"], r["n"]) for r in rows])
    return table, chart


def _forecast(user: Any, department: Department | None, today: dt.date) -> Table:
    """Open opportunities by expected close month, the next months (one query)."""
    first = today.replace(day=1)
    months = [first]
    for _i in range(FORECAST_MONTHS - 1):
        months.append((months[-1] + dt.timedelta(days=32)).replace(day=1))
    end = (months[-1] + dt.timedelta(days=32)).replace(day=1)
    qs = _open_opportunities(user, department=department).filter(
        expected_close__gte=first, expected_close__lt=end)
    found: dict[tuple[int, int], dict[str, Any]] = {}
    # Per month and probability, so the weighted sum is exact (amounts summed in fen).
    for r in qs.order_by().values("expected_close__year", "expected_close__month",
                                  "stage__probability").annotate(n=Count("id"),
                                                                 fen=fen_sum("amount")):
        cell = found.setdefault((r["expected_close__year"], r["expected_close__month"]),
                                {"n": 0, "amount": ZERO, "weighted": ZERO})
        amount = from_fen(r["fen"])
        cell["n"] += r["n"]
        cell["amount"] += amount
        cell["weighted"] += money(amount * r["stage__probability"] / 100)
    team = department.pk if department else None
    rows = []
    for m in months:
        r = found.get((m.year, m.month), {})
        to = first_link(("reports:forecast", {"department": team, "month": f"{m:%Y-%m}"}),
                        ("pipeline:opportunity_list", {"team": team, "status": "open",
                                                       "close_month": f"{m:%Y-%m}"}))
        rows.append([Cell(f"{m:%Y-%m}", "text", to), Cell(r.get("n", 0), Unit.COUNT, to),
                     Cell(r.get("amount", ZERO), Unit.MONEY, to),
                     Cell(r.get("weighted", ZERO), Unit.MONEY, to)])
    return Table("forecast", _("Forecast: open pipeline by expected close month"),
                 [_("Close month"), _("Opportunities"), _("Amount"), _("Weighted")], rows,
                 more=link("reports:forecast", department=team))


def _targets(user: Any, employee: Employee | None, department: Department | None,
             period: Period) -> dict[str, Decimal]:
    """{kpi code: target} for the slice and period."""
    from weiying.performance import targets

    found = targets.targets_of(user, period=period, employee=employee, department=department)
    return {code: t.value for code, t in found.items()}


# --- the dashboards ------------------------------------------------------------------------------
def rep_dashboard(user: Any, period: Period, *, now: dt.datetime | None = None) -> Dashboard:
    """The viewer's own month: KPIs against target, the daily trend, their pipeline by stage
    and the follow-ups due."""
    from weiying.pipeline.selectors.followups import due_followups

    me = employee_of(user)
    if me is None:
        raise NotFound(_("Your login is not linked to an employee, so there is no own month to "
                         "show."))
    now = now or timezone.now()
    kpis = _kpis()
    codes = HEADLINE["rep"]
    measures = _measures(codes, kpis)
    compared = selectors.compare(user, period=period, employee=me, measures=measures)
    board = Dashboard("rep", period, employee=me)
    board.figures = _figures(codes, kpis, compared, kpi_links(period, employee=me),
                             _targets(user, me, None, period))
    days = selectors.daily(user, period=period, employee=me, measures=measures)
    last = min(period.end, timezone.localdate(now))
    series = {period.start + dt.timedelta(days=i): days.get(period.start + dt.timedelta(days=i),
                                                                {})
              for i in range((last - period.start).days + 1)}
    board.charts.append(_trend_chart("daily", _("Day by day"), series, kpis,
                                     lambda d: f"{d:%m-%d}"))
    table, chart = _pipeline_by_stage(user, employee=me)
    board.tables.append(table)
    board.charts.append(chart)
    due = due_followups(user, until=now, mine=True)
    due_link = link("pipeline:followup_list", due=1, owner=me.pk)
    board.figures.append(Figure("due", _("Follow-ups due"), Unit.COUNT, Decimal(due.count()),
                                link=due_link))
    shown = list(due.select_related("customer", "lead", "opportunity")[:10])
    rows = []
    for f in shown:
        subject = f.customer or f.opportunity or f.lead
        to = due_link
        rows.append([Cell(timezone.localtime(f.next_at).strftime("%m-%d %H:%M"), "text", to),
                     Cell(str(subject) if subject else "—", "text", to),
                     Cell(f.note[:60], "text")])
    board.tables.append(Table("due", _("Follow-ups due"),
                              [_("Due"), _("With"), _("Last note")], rows,
                              more=due_link))
    return board


def manager_dashboard(user: Any, department: Department | int | None,
                      period: Period) -> Dashboard:
    """A team: KPIs against the month before and a year ago, its members ranked (everyone
    who held a post in it, zeros included), the daily trend and the open pipeline."""
    department = selectors.department_for(user, department or home_department(user))
    assert department is not None
    kpis = _kpis()
    codes = HEADLINE["manager"]
    measures = _measures(codes, kpis)
    compared = selectors.compare(user, period=period, department=department, measures=measures)
    board = Dashboard("manager", period, department=department)
    board.figures = _figures(codes, kpis, compared, kpi_links(period, department=department),
                             _targets(user, None, department, period))
    people_figures = selectors.by_employee(user, period=period, department=department,
                                           measures=measures)
    members = selectors.members(department, period)
    if members.count() <= MEMBER_LIMIT:
        people = {e.pk: e for e in members.select_related("department")}
        order = _rank(people_figures, sorted(set(people) | set(people_figures)))
        more = ""
    else:
        order = _rank(people_figures, list(people_figures))[:MEMBER_LIMIT]
        people = {e.pk: e for e in Employee.objects.filter(pk__in=order)
                  .select_related("department")}
        more = link("performance:overview", tab="rankings", department=department.pk,
                    period=_period_query(period))
    table = _people_table("members", _("Members ranked"), people_figures, people, order, kpis,
                          period)
    table.more = more
    board.tables.append(table)
    days = selectors.daily(user, period=period, department=department, measures=measures)
    series = {period.start + dt.timedelta(days=i): days.get(period.start + dt.timedelta(days=i),
                                                                {})
              for i in range((period.end - period.start).days + 1)}
    board.charts.append(_trend_chart("daily", _("Day by day"), series, kpis,
                                     lambda d: f"{d:%m-%d}"))
    table, chart = _pipeline_by_stage(user, department=department)
    table.more = link("reports:funnel", department=department.pk)
    board.tables.append(table)
    board.charts.append(chart)
    return board


def director_dashboard(user: Any, department: Department | int | None,
                       period: Period) -> Dashboard:
    """A subtree: KPIs with MoM and YoY, the child departments compared, the 12-month trend,
    the top reps and the forecast. A fixed number of queries whatever the subtree's size
    (tests pin it): no query per child or per person."""
    department = selectors.department_for(user, department or home_department(user))
    assert department is not None
    kpis = _kpis()
    codes = HEADLINE["director"]
    measures = _measures(codes, kpis)
    compared = selectors.compare(user, period=period, department=department, measures=measures)
    board = Dashboard("director", period, department=department)
    board.figures = _figures(codes, kpis, compared, kpi_links(period, department=department),
                             _targets(user, None, department, period))
    board.tables.append(_children_table(user, department, period, kpis, measures))
    board.charts.append(_children_chart(board.tables[-1], kpis))
    trend = selectors.monthly(user, period=trend_period(period), department=department,
                              measures=measures)
    board.charts.append(_trend_chart("trend", _("Last 12 months"), trend, kpis,
                                     lambda m: f"{m:%Y-%m}"))
    board.tables.append(_top_reps(user, department, period, kpis))
    board.tables.append(_forecast(user, department, timezone.localdate()))
    return board


def _children_table(user: Any, department: Department, period: Period,
                    kpis: dict[str, Kpi], measures: set[str]) -> Table:
    """The child departments side by side (one query for the figures, one for the names);
    the department's own members, not in any child, on a row of their own."""
    figures = selectors.by_child(user, period=period, department=department, measures=measures)
    children = list(Department.objects.filter(parent=department).order_by("path"))
    named = [(c, c.name) for c in children]
    if department.pk in figures:
        named.append((department, _("%(name)s (own members)") % {"name": department.name}))
    rows = []
    for dept, name in sorted(named, key=lambda p: -figures.get(p[0].pk, {}).get(
            "signed_amount", 0)):
        raw = figures.get(dept.pk, {})
        links = kpi_links(period, department=dept)
        to = link("reports:dashboard_role", "director", department=dept.pk,
                  period=_period_query(period))
        rows.append([
            Cell(name, "text", to, key=dept.path),
            Cell(_value(raw, "signed_amount", kpis), Unit.MONEY, links.get("signed_amount", "")),
            Cell(_value(raw, "collected", kpis), Unit.MONEY, links.get("collected", "")),
            Cell(_value(raw, "revenue", kpis), Unit.MONEY, links.get("revenue", "")),
            Cell(_value(raw, "new_customers", kpis), Unit.COUNT, links.get("new_customers", "")),
            Cell(_value(raw, "win_rate", kpis), Unit.RATIO, links.get("win_rate", "")),
        ])
    return Table("children", _("Departments compared"),
                 [_("Department"), kpis["signed_amount"].label, kpis["collected"].label,
                  kpis["revenue"].label, kpis["new_customers"].label, kpis["win_rate"].label],
                 rows)


def _children_chart(table: Table, kpis: dict[str, Kpi]) -> Chart:
    labels = [str(row[0].value) for row in table.rows]
    return _line_chart("children", _("Departments compared"), labels, [
        (kpis["signed_amount"].label, [row[1].value for row in table.rows]),
        (kpis["collected"].label, [row[2].value for row in table.rows])])


def _top_reps(user: Any, department: Department, period: Period,
              kpis: dict[str, Kpi]) -> Table:
    """The best reps of the subtree by signed amount, then collected: one query ranks
    everyone in the database, one reads the figures of the first ten and one their names.
    Only the sparse measures are read (a subtree of 10,000 people logs far more follow-ups
    than it signs contracts), so no follow-up column."""
    ranked = selectors.top_employees(user, period=period, department=department,
                                     measures=TOP_MEASURES, by=RANKED_BY, limit=TOP_REPS)
    figures = selectors.by_employee(user, period=period, department=department,
                                    measures=TOP_MEASURES, employees=ranked)
    order = ranked  # already best first
    people = {e.pk: e for e in Employee.objects.filter(pk__in=order)
              .select_related("department")}
    table = _people_table("top_reps", _("Top reps"), figures, people, order, kpis, period,
                          followups=False)
    table.more = link("performance:overview", tab="rankings", department=department.pk,
                      period=_period_query(period))
    return table


def finance_dashboard(user: Any, period: Period, *, months: int = 6) -> Dashboard:
    """Cash against revenue by month (the finance bridge of each month), revenue by
    department, and the receivables' ageing."""
    from weiying.finance import reports as finance

    if not has_perm(user, "finance.view"):
        raise PermissionDenied(_("The finance dashboard needs the right to see finance "
                                 "reports."), code="forbidden")
    board = Dashboard("finance", period)
    span = trend_period(period, months)
    labels, cash, revenue = [], [], []
    rows = []
    for first in span.months():
        month = Period.of(first)
        b = finance.bridge(user, month.start, month.end)
        labels.append(f"{first:%Y-%m}")
        cash.append(b.cash)
        revenue.append(b.revenue)
        to = link("finance:bridge", start=month.start.isoformat(), end=month.end.isoformat())
        rows.append([Cell(f"{first:%Y-%m}", "text", to), Cell(b.cash, Unit.MONEY, to),
                     Cell(b.revenue, Unit.MONEY, link("finance:revenue",
                                                      start=month.start.isoformat(),
                                                      end=month.end.isoformat())),
                     Cell(b.output_vat, Unit.MONEY, to),
                     Cell(b.receivable_increase, Unit.MONEY, to),
                     Cell(b.liability_increase, Unit.MONEY, to),
                     Cell(b.difference, Unit.MONEY, to)])
    board.tables.append(Table("cash_revenue", _("Cash and revenue by month"),
                              [_("Month"), _("Cash received (books)"),
                               _("Revenue recognised"), _("Output VAT"),
                               _("Increase in receivables"),
                               _("Increase in contract liabilities"), _("Difference")],
                              rows, more=link("finance:bridge")))
    board.charts.append(_line_chart("cash_revenue", _("Cash and revenue by month"), labels, [
        (_("Cash received (books)"), cash), (_("Revenue recognised"), revenue)]))
    this = finance.bridge(user, period.start, period.end)
    today = timezone.localdate()
    ageing = finance.ageing_totals(finance.receivables_ageing(user, min(today, period.end)))
    ageing_link = link("finance:ageing", as_of=min(today, period.end).isoformat())
    bridge_link = link("finance:bridge", start=period.start.isoformat(),
                       end=period.end.isoformat())
    revenue_link = link("finance:revenue", start=period.start.isoformat(),
                        end=period.end.isoformat())
    board.figures = [
        Figure("cash", _("Cash received (books)"), Unit.MONEY, this.cash, link=bridge_link),
        Figure("revenue", _("Revenue recognised"), Unit.MONEY, this.revenue, link=revenue_link),
        Figure("difference", _("Cash less explained"), Unit.MONEY, this.difference,
               link=bridge_link),
        Figure("receivables", _("Receivables outstanding"), Unit.MONEY, ageing["total"],
               link=ageing_link),
        Figure("overdue", _("Receivables over 90 days"), Unit.MONEY,
               ageing.get("91-180", ZERO) + ageing.get("180+", ZERO), link=ageing_link),
    ]
    board.tables.append(Table("ageing", _("Receivables ageing"), [_("Age (days)"), _("Amount")],
                              [[Cell(name, "text", ageing_link),
                                Cell(ageing[name], Unit.MONEY, ageing_link)]
                               for name, *_r in finance.AGE_BUCKETS]
                              + [[Cell(_("Total"), "text", ageing_link),
                                  Cell(ageing["total"], Unit.MONEY, ageing_link)]],
                              more=ageing_link))
    by_dept = finance.revenue_by(user, period.start, period.end, "department")[:15]
    board.tables.append(Table("revenue_by_department", _("Revenue by department"),
                              [_("Department"), _("Revenue recognised"), _("Cost of sales"),
                               _("Gross margin"), _("Margin rate")],
                              [[Cell(r["label"], "text", revenue_link),
                                Cell(r["revenue"], Unit.MONEY, revenue_link),
                                Cell(r["cost"], Unit.MONEY), Cell(r["margin"], Unit.MONEY),
                                Cell(r["margin_rate"], Unit.RATIO)] for r in by_dept],
                              more=revenue_link))
    return board


def executive_dashboard(user: Any, period: Period) -> Dashboard:
    """The company: the KPIs against the month before and a year ago, by branch, the 12-month
    trend and, for a viewer who sees finance, the marketing return per channel."""
    root = home_department(user)
    if data_scope_of(user) != DataScope.ALL:
        raise PermissionDenied(_("The company dashboard is for roles that see the whole "
                                 "company."), code="forbidden")
    kpis = _kpis()
    codes = HEADLINE["executive"]
    measures = _measures(codes, kpis)
    compared = selectors.compare(user, period=period, measures=measures)
    board = Dashboard("executive", period, department=root)
    board.figures = _figures(codes, kpis, compared, kpi_links(period),
                             _targets(user, None, root, period) if root else {})
    if root is not None:
        board.tables.append(_children_table(user, root, period, kpis, measures))
        board.tables[-1].name, board.tables[-1].title = "branches", _("By branch")
        board.charts.append(_children_chart(board.tables[-1], kpis))
    trend = selectors.monthly(user, period=trend_period(period), measures=measures)
    board.charts.append(_trend_chart("trend", _("Last 12 months"), trend, kpis,
                                     lambda m: f"{m:%Y-%m}"))
    if has_perm(user, "finance.view"):
        board.tables.append(_channel_return(user, period))
    return board


def _channel_return(user: Any, period: Period) -> Table:
    from weiying.finance.reports import marketing_return
    from weiying.reports.filters import source_label

    channels_link = link("reports:channels", start=period.start.isoformat(),
                         end=period.end.isoformat())
    rows = []
    for c in marketing_return(user, period.start, period.end)[:10]:
        to = first_link(("reports:channels", {"start": period.start.isoformat(),
                                              "end": period.end.isoformat(),
                                              "channel": c.channel}),
                        ("finance:marketing", {"start": period.start.isoformat(),
                                               "end": period.end.isoformat()}))
        rows.append([Cell(source_label(c.channel) if c.channel else _("No channel"), "text", to),
                     Cell(c.spend, Unit.MONEY, to), Cell(c.cash, Unit.MONEY, to),
                     Cell(c.revenue, Unit.MONEY, to),
                     Cell(c.cash_return, "text", to), Cell(c.accrual_return, "text", to)])
    return Table("channels", _("Channel return"),
                 [_("Channel"), _("Spend"), _("Cash collected"), _("Revenue recognised"),
                  _("Cash return (×)"), _("Accrual return (×)")], rows, more=channels_link)


def build(user: Any, role: str, *, period: Period, department: Any = None) -> Dashboard:
    """The dashboard of `role` for the viewer (check_role first)."""
    check_role(user, role)
    if role == "rep":
        return rep_dashboard(user, period)
    if role == "manager":
        return manager_dashboard(user, department, period)
    if role == "director":
        return director_dashboard(user, department, period)
    if role == "finance":
        return finance_dashboard(user, period)
    return executive_dashboard(user, period)


def headline(user: Any, role: str, *, period: Period, limit: int = 4) -> list[Figure]:
    """The first figures of a dashboard, without its tables and charts (a scheduled card):
    a few queries per recipient."""
    check_role(user, role)
    if role == "finance":
        from weiying.finance import reports as finance

        b = finance.bridge(user, period.start, period.end)
        return [Figure("cash", _("Cash received (books)"), Unit.MONEY, b.cash),
                Figure("revenue", _("Revenue recognised"), Unit.MONEY, b.revenue),
                Figure("difference", _("Cash less explained"), Unit.MONEY, b.difference)]
    kpis = _kpis()
    codes = HEADLINE[role][:limit]
    measures = _measures(codes, kpis)
    if role == "rep":
        slice_: dict[str, Any] = {"employee": employee_of(user)}
    elif role == "executive":
        slice_ = {}
    else:
        slice_ = {"department": home_department(user)}
    compared = selectors.compare(user, period=period, measures=measures, **slice_)
    return _figures(codes, kpis, compared, {})
