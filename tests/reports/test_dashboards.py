from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from tests.conftest import user_of
from weiying.org import services as org
from weiying.org.models import Role
from weiying.performance import facts, selectors
from weiying.performance.kpis import ensure_builtin
from weiying.performance.models import DailyFact
from weiying.performance.selectors import Period
from weiying.reports import dashboards

pytestmark = pytest.mark.django_db

MARCH = Period.month(2026, 3)
TODAY = dt.date(2026, 3, 20)


def fact(employee: Any, day: dt.date, measure: str, value: int, department: Any = None) -> None:
    """One daily fact, with the department and subtree months summed again as facts.py keeps
    them."""
    department = department or employee.department
    DailyFact.objects.create(day=day, month=day.replace(day=1), employee=employee,
                             department=department, department_path=department.path,
                             measure=measure, value=value)
    facts.resum()


@pytest.fixture
def figures(company: SimpleNamespace) -> SimpleNamespace:
    """March 2026 (fen): rep_a signs ¥10,000 on 3/2 and ¥5,000 on 3/9, collects ¥8,000;
    rep_a2 signs ¥2,000; rep_b (north) signs ¥7,000. February: rep_a ¥6,000. March 2025:
    rep_a ¥3,000. Won/lost: rep_a 2 won 1 lost, rep_a2 1 lost."""
    ensure_builtin()
    c = company
    fact(c.rep_a, dt.date(2026, 3, 2), "signed_amount", 1_000_000)
    fact(c.rep_a, dt.date(2026, 3, 9), "signed_amount", 500_000)
    fact(c.rep_a, dt.date(2026, 3, 9), "signed_contracts", 2)
    fact(c.rep_a, dt.date(2026, 3, 9), "new_customers", 2)
    fact(c.rep_a, dt.date(2026, 3, 10), "collected", 800_000)
    fact(c.rep_a, dt.date(2026, 3, 10), "won", 2)
    fact(c.rep_a, dt.date(2026, 3, 11), "lost", 1)
    fact(c.rep_a2, dt.date(2026, 3, 5), "signed_amount", 200_000)
    fact(c.rep_a2, dt.date(2026, 3, 5), "lost", 1)
    fact(c.rep_b, dt.date(2026, 3, 3), "signed_amount", 700_000)
    fact(c.rep_a, dt.date(2026, 2, 14), "signed_amount", 600_000)
    fact(c.rep_a, dt.date(2025, 3, 14), "signed_amount", 300_000)
    return c


def value(board: dashboards.Dashboard, code: str) -> Any:
    return next(f for f in board.figures if f.code == code)


def test_role_follows_the_role_and_scope(company: SimpleNamespace) -> None:
    c = company
    assert dashboards.role_for(user_of(c.rep_a)) == "rep"
    assert dashboards.role_for(user_of(c.manager_a)) == "manager"
    assert dashboards.role_for(user_of(c.director)) == "director"
    assert dashboards.role_for(user_of(c.finance)) == "finance"
    assert dashboards.role_for(user_of(c.admin)) == "executive"
    assert dashboards.roles_for(user_of(c.rep_a)) == ["rep"]
    assert dashboards.roles_for(user_of(c.manager_a)) == ["manager", "rep", "director"]
    assert dashboards.roles_for(user_of(c.admin))[0] == "executive"
    assert "finance" in dashboards.roles_for(user_of(c.admin))


def test_a_custom_subtree_role_is_a_director_over_children_and_a_manager_without(
        company: SimpleNamespace) -> None:
    c = company
    custom = Role.objects.create(code="lead", name="Lead", data_scope="subtree",
                                 permissions=["reports.view"])
    head = org.create_employee(actor=None, number="E090", name="分部长", department=c.north,
                               role=custom, check=False)
    org.give_login(actor=None, employee=head, username="e090", password="x-pass-123456",
                   check=False)
    head.refresh_from_db()
    assert dashboards.role_for(user_of(head)) == "director"  # North has team B below it
    org.transfer_employee(actor=None, employee=head, department=c.team_b, check=False)
    assert dashboards.role_for(user_of(head)) == "manager"  # team B has nothing below it
    assert dashboards.roles_for(user_of(head)) == ["manager", "rep", "director"]


def test_rep_dashboard_shows_own_figures_and_comparisons(figures: SimpleNamespace) -> None:
    c = figures
    user = user_of(c.rep_a)
    with mock.patch("django.utils.timezone.localdate", return_value=TODAY):
        board = dashboards.rep_dashboard(user, MARCH)
    assert value(board, "signed_amount").value == Decimal("15000.00")
    assert value(board, "signed_amount").previous == Decimal("6000.00")
    assert value(board, "signed_amount").year_ago == Decimal("3000.00")
    assert value(board, "signed_amount").mom == Decimal("150.0")
    assert value(board, "signed_amount").yoy == Decimal("400.0")
    assert value(board, "collected").value == Decimal("8000.00")
    assert value(board, "win_rate").value == Decimal(2) / Decimal(3)
    raw = selectors.totals(user, period=MARCH, employee=c.rep_a)
    assert value(board, "signed_amount").value == Decimal(raw["signed_amount"]) / 100
    daily = next(ch for ch in board.charts if ch.name == "daily")
    assert len(daily.spec["categories"]) == 20  # 1 … 20 March
    assert daily.spec["series"][0]["data"][1] == 10000.0  # 2 March


def test_manager_dashboard_ranks_every_member_zeros_included(figures: SimpleNamespace) -> None:
    c = figures
    user = user_of(c.manager_a)
    board = dashboards.manager_dashboard(user, None, MARCH)
    assert board.department == c.team_a
    assert value(board, "signed_amount").value == Decimal("17000.00")
    members = board.table("members")
    names = [row[1].value for row in members.rows]
    assert names == [c.rep_a.name, c.rep_a2.name, c.manager_a.name]
    assert members.rows[0][3].value == Decimal("15000.00")
    assert members.rows[2][3].value == Decimal("0.00")
    assert value(board, "win_rate").value == Decimal(2) / Decimal(4)


def test_a_manager_view_larger_than_the_limit_lists_the_people_with_figures_first(
        figures: SimpleNamespace) -> None:
    c = figures
    with mock.patch.object(dashboards, "MEMBER_LIMIT", 2):
        board = dashboards.manager_dashboard(user_of(c.manager_a), None, MARCH)
    members = board.table("members")
    # three members, two of them with figures: the one without drops out, the rest is a link
    assert [row[1].value for row in members.rows] == [c.rep_a.name, c.rep_a2.name]
    assert "tab=rankings" in members.more


def test_director_dashboard_equals_the_selectors(figures: SimpleNamespace) -> None:
    c = figures
    user = user_of(c.director)
    board = dashboards.director_dashboard(user, None, MARCH)
    assert board.department == c.east
    assert value(board, "signed_amount").value == Decimal("17000.00")
    assert value(board, "signed_amount").previous == Decimal("6000.00")
    children = board.table("children")
    assert [(r[0].value, r[1].value) for r in children.rows] == [
        (c.team_a.name, Decimal("17000.00"))]
    top = board.table("top_reps")
    assert [r[1].value for r in top.rows] == [c.rep_a.name, c.rep_a2.name]
    trend = next(ch for ch in board.charts if ch.name == "trend")
    assert trend.spec["categories"][0] == "2025-04"
    assert trend.spec["categories"][-1] == "2026-03"
    assert trend.spec["series"][0]["data"][-2:] == [6000.0, 17000.0]
    by_child = selectors.by_child(user, period=MARCH, department=c.east)
    assert by_child[c.team_a.pk]["signed_amount"] == 1_700_000


def test_executive_dashboard_compares_branches(figures: SimpleNamespace) -> None:
    c = figures
    board = dashboards.executive_dashboard(user_of(c.admin), MARCH)
    assert value(board, "signed_amount").value == Decimal("24000.00")
    branches = {r[0].value: r[1].value for r in board.table("branches").rows}
    assert branches == {c.east.name: Decimal("17000.00"), c.north.name: Decimal("7000.00"),
                        c.finance_dept.name: Decimal("0.00"), c.ops_dept.name: Decimal("0.00")}
    assert [r[0].value for r in board.table("branches").rows][:2] == [c.east.name, c.north.name]


def test_director_dashboard_queries_do_not_grow_with_children_or_people(
        figures: SimpleNamespace, django_assert_max_num_queries: Any) -> None:
    c = figures
    user = user_of(c.director)
    dashboards.director_dashboard(user, None, MARCH)  # warm the role caches
    with django_assert_max_num_queries(20) as small:
        dashboards.director_dashboard(user, None, MARCH)
    for i in range(6):
        team = org.create_department(actor=None, name=f"新组{i}", parent=c.east, kind="team",
                                     check=False)
        for j in range(4):
            person = org.create_employee(actor=None, number=f"N{i}{j}", name=f"新人{i}{j}",
                                         department=team, check=False)
            fact(person, dt.date(2026, 3, 4), "signed_amount", 10_000 * (j + 1))
    with django_assert_max_num_queries(20) as large:
        board = dashboards.director_dashboard(user, None, MARCH)
    assert len(board.table("children").rows) == 7
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_rep_cannot_open_the_manager_dashboard(figures: SimpleNamespace, login: Any) -> None:
    c = figures
    client = login(c.rep_a)
    assert client.get("/reports/dashboard/manager/").status_code == 403
    assert client.get("/reports/dashboard/director/").status_code == 403
    page = client.get("/reports/dashboard/?period=2026-03")
    assert page.status_code == 200
    assert "¥15,000.00" in page.content.decode()
    assert client.get("/reports/dashboard/rep/?period=2026-03&table=pipeline&export=xlsx") \
        .status_code == 403  # reps have no export right


def test_a_manager_sees_only_their_subtree(figures: SimpleNamespace, login: Any) -> None:
    c = figures
    client = login(c.manager_a)
    assert client.get(f"/reports/dashboard/manager/?department={c.team_b.pk}").status_code \
        == 404
    assert client.get(f"/reports/dashboard/director/?department={c.hq.pk}").status_code == 404
    page = client.get("/reports/dashboard/?period=2026-03").content.decode()
    assert "¥17,000.00" in page
    assert "¥7,000.00" not in page


def test_an_export_holds_the_table_of_the_viewers_scope(figures: SimpleNamespace,
                                                       login: Any) -> None:
    from openpyxl import load_workbook

    c = figures
    client = login(c.manager_a)
    response = client.get("/reports/dashboard/manager/?period=2026-03&table=members"
                          "&export=xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert [r[1] for r in rows[1:]] == [c.rep_a.name, c.rep_a2.name, c.manager_a.name]
    assert rows[1][3] == 15000
    assert c.rep_b.name not in {r[1] for r in rows}
    assert client.get("/reports/dashboard/manager/?table=nope&export=xlsx").status_code == 404


def test_a_bad_period_is_refused_with_a_message(figures: SimpleNamespace, login: Any) -> None:
    response = login(figures.manager_a).get("/reports/dashboard/?period=March")
    assert response.status_code == 400
    assert "March" in response.content.decode()


def test_hand_written_sql_gives_the_director_dashboards_figures(
        figures: SimpleNamespace) -> None:
    from django.db import connection

    from bench.dashboard_sql import board_figures, hand_director, hand_figures

    if connection.vendor != "postgresql":
        pytest.skip("the hand-written SQL is PostgreSQL's")
    c = figures
    fact(c.director, dt.date(2026, 3, 6), "collected", 120_000)  # an own member of East
    fact(c.rep_a, dt.date(2026, 3, 6), "responded", 2)
    fact(c.rep_a, dt.date(2026, 3, 6), "response_seconds", 5_400)
    board = dashboards.director_dashboard(user_of(c.director), None, MARCH)
    with connection.cursor() as cursor:
        hand = hand_figures(hand_director(cursor, c.east.path, MARCH.start, MARCH.end))
    assert board_figures(board) == hand
    assert hand["children"] == {c.team_a.path: 1_700_000}
    assert hand["top"] == [(c.rep_a.pk, 1_500_000), (c.rep_a2.pk, 200_000)]


def test_every_number_links_to_the_records_of_its_slice(figures: SimpleNamespace) -> None:
    c = figures
    board = dashboards.manager_dashboard(user_of(c.manager_a), None, MARCH)
    assert all(f.link for f in board.figures)
    rep_row = board.table("members").rows[0]
    assert rep_row[1].key == c.rep_a.pk
    signed = rep_row[3].link
    assert f"owner={c.rep_a.pk}" in signed or f"employee={c.rep_a.pk}" in signed
    team = value(board, "opportunities").link
    assert f"team={c.team_a.pk}" in team or f"department={c.team_a.pk}" in team


def test_finance_and_company_dashboards_are_for_whole_company_roles(
        figures: SimpleNamespace, login: Any) -> None:
    c = figures
    page = login(c.finance).get("/reports/dashboard/?period=2026-03")
    assert page.status_code == 200
    assert "data-chart=\"chart-cash_revenue\"" in page.content.decode()
    assert login(c.finance).get("/reports/dashboard/executive/?period=2026-03") \
        .status_code == 200
    manager = login(c.manager_a)
    assert manager.get("/reports/dashboard/finance/").status_code == 403
    assert manager.get("/reports/dashboard/executive/").status_code == 403
    assert manager.get("/reports/dashboard/nope/").status_code == 404
    assert login(c.admin).get("/reports/dashboard/?period=2026-03").status_code == 200


def test_the_rep_sees_achievement_against_their_target(figures: SimpleNamespace) -> None:
    from weiying.performance.models import Kpi, Target

    c = figures
    Target.objects.create(kpi=Kpi.objects.get(code="signed_amount"), kind="month",
                          start=MARCH.start, end=MARCH.end, employee=c.rep_a,
                          holder=c.team_a, value=Decimal("20000"))
    with mock.patch("django.utils.timezone.localdate", return_value=TODAY):
        board = dashboards.rep_dashboard(user_of(c.rep_a), MARCH)
    signed = value(board, "signed_amount")
    assert signed.target == Decimal("20000")
    assert signed.achievement == Decimal("75.0")
    assert value(board, "collected").target is None
