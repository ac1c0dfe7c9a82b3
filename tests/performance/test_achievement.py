"""Achievement against hand-computed figures (up and down KPIs), pace, MoM and YoY, rankings
with ties and people who did nothing, and the trend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import user_of
from tests.performance.helpers import put_facts
from weiying.core.errors import NotFound
from weiying.org.models import Employee
from weiying.performance import achievement
from weiying.performance.achievement import card, pace, rank_in_team, ranking, trend
from weiying.performance.models import Kpi
from weiying.performance.selectors import Period
from weiying.performance.targets import set_target

MARCH = Period.month(2026, 3)
D = Decimal


@pytest.fixture(autouse=True)
def _english(english: None) -> None:
    """Messages are asserted in English (the msgids); the pages ask for English too."""


@pytest.fixture
def figures(company: Any) -> Any:
    """Rep A: ¥30,000 signed in March 2026 (¥20,000 in February, ¥60,000 in March 2025), two
    leads answered after 30 and 90 minutes. Rep A2: ¥30,000 in March. Rep B: ¥10,000."""
    put_facts([
        (company.rep_a, dt.date(2026, 3, 2), "signed_amount", 2_000_000),
        (company.rep_a, dt.date(2026, 3, 9), "signed_amount", 1_000_000),
        (company.rep_a, dt.date(2026, 2, 9), "signed_amount", 2_000_000),
        (company.rep_a, dt.date(2025, 3, 9), "signed_amount", 6_000_000),
        (company.rep_a, dt.date(2026, 3, 2), "responded", 2),
        (company.rep_a, dt.date(2026, 3, 2), "response_seconds", 7200),
        (company.rep_a2, dt.date(2026, 3, 5), "signed_amount", 3_000_000),
        (company.rep_a2, dt.date(2026, 3, 5), "responded", 1),
        (company.rep_a2, dt.date(2026, 3, 5), "response_seconds", 1800),
        (company.rep_b, dt.date(2026, 3, 5), "signed_amount", 1_000_000),
    ])
    director = user_of(company.director)
    set_target(actor=director, kpi="signed_amount", period=MARCH, employee=company.rep_a,
               value="40000")
    set_target(actor=director, kpi="first_response", period=MARCH, employee=company.rep_a,
               value="1800")
    set_target(actor=director, kpi="signed_amount", period=MARCH, employee=company.rep_a2,
               value="30000")
    set_target(actor=director, kpi="signed_amount", period=MARCH, department=company.team_a,
               value="100000")
    return company


def lines_of(user: Any, **subject: Any) -> dict[str, Any]:
    return {line.kpi.code: line for line in card(user, period=MARCH,
                                                 today=dt.date(2026, 3, 10), **subject)}


def test_achievement_for_up_and_down_kpis_mom_yoy_and_pace(figures: Any) -> None:
    lines = lines_of(user_of(figures.rep_a), employee=figures.rep_a)
    signed = lines["signed_amount"]
    assert signed.actual == D("30000.00") and signed.target == D("40000.00")
    assert signed.achievement == D("0.75")
    assert signed.previous == D("20000.00") and signed.mom == D("0.5")
    assert signed.year_ago == D("60000.00") and signed.yoy == D("-0.5")
    assert signed.pace == D(10) / D(31)
    assert signed.on_track is True and signed.bar == 75
    # lower is better: an hour against a target of half an hour is 50 %
    response = lines["first_response"]
    assert response.actual == D(3600) and response.achievement == D("0.5")
    # no target, no achievement
    assert lines["leads"].target is None and lines["leads"].achievement is None

    team = lines_of(user_of(figures.manager_a), department=figures.team_a)
    assert team["signed_amount"].actual == D("60000.00")
    assert team["signed_amount"].achievement == D("0.6")
    # the team's response time is its summed seconds over its summed answers: 9000 / 3
    assert team["first_response"].actual == D(3000)


def test_pace_runs_from_zero_to_one() -> None:
    assert pace(MARCH, dt.date(2026, 2, 28)) == 0
    assert pace(MARCH, dt.date(2026, 3, 1)) == D(1) / D(31)
    assert pace(MARCH, dt.date(2026, 3, 31)) == 1
    assert pace(Period.quarter(2026, 1), dt.date(2026, 2, 14)) == D(45) / D(90)


def test_a_rep_cannot_read_a_colleague_or_the_team(figures: Any) -> None:
    with pytest.raises(NotFound):
        card(user_of(figures.rep_a), period=MARCH, employee=figures.rep_a2)
    with pytest.raises(NotFound):
        card(user_of(figures.manager_b), period=MARCH, department=figures.team_a)


def test_team_ranking_shares_ranks_on_ties_and_lists_people_with_zero(figures: Any) -> None:
    kpi = Kpi.objects.get(code="signed_amount")
    by_actual = ranking(user_of(figures.manager_a), period=MARCH, kpi=kpi, among="team",
                        department=figures.team_a, by="actual")
    assert [(r.employee.number, r.actual, r.rank) for r in by_actual] == [
        ("E030", D("30000.00"), 1), ("E031", D("30000.00"), 1), ("E020", D("0.00"), 3)]

    by_achievement = ranking(user_of(figures.manager_a), period=MARCH, kpi=kpi, among="team",
                             department=figures.team_a)
    assert [(r.employee.number, r.achievement, r.rank) for r in by_achievement] == [
        ("E031", D(1), 1), ("E030", D("0.75"), 2), ("E020", None, None)]


def test_a_down_kpi_ranks_the_lowest_first(figures: Any) -> None:
    kpi = Kpi.objects.get(code="first_response")
    rows = ranking(user_of(figures.manager_a), period=MARCH, kpi=kpi, among="team",
                   department=figures.team_a, by="actual")
    assert [(r.employee.number, r.actual, r.rank) for r in rows] == [
        ("E031", D(1800), 1), ("E030", D(3600), 2), ("E020", None, None)]


def test_level_and_company_rankings_stay_within_the_viewers_scope(figures: Any) -> None:
    Employee.objects.filter(pk__in=[figures.rep_a.pk, figures.rep_a2.pk, figures.rep_b.pk]) \
        .update(level="P2")
    kpi = Kpi.objects.get(code="signed_amount")
    everyone = ranking(user_of(figures.admin), period=MARCH, kpi=kpi, among="level",
                       level="P2", by="actual")
    assert [(r.employee.number, r.rank) for r in everyone] == [("E030", 1), ("E031", 1),
                                                               ("E050", 3)]
    mine = ranking(user_of(figures.manager_a), period=MARCH, kpi=kpi, among="level",
                   level="P2", by="actual")
    assert [r.employee.number for r in mine] == ["E030", "E031"]
    company_wide = ranking(user_of(figures.admin), period=MARCH, kpi=kpi, among="company",
                           by="actual")
    assert [r.employee.number for r in company_wide] == ["E030", "E031", "E050"]
    assert [r.employee.number for r in ranking(user_of(figures.rep_a), period=MARCH, kpi=kpi,
                                               among="company", by="actual")] == ["E030"]
    # a rep's view of the team holds only themself
    assert [r.employee.number for r in ranking(user_of(figures.rep_a), period=MARCH, kpi=kpi,
                                               among="team", department=figures.team_a)] == [
        "E030"]
    with pytest.raises(NotFound):
        ranking(user_of(figures.manager_b), period=MARCH, kpi=kpi, among="team",
                department=figures.team_a)


def test_a_rep_learns_their_rank_in_the_team(figures: Any) -> None:
    kpi = Kpi.objects.get(code="signed_amount")
    assert rank_in_team(user_of(figures.rep_a), employee=figures.rep_a, period=MARCH,
                        kpi=kpi) == (2, 3)
    assert rank_in_team(user_of(figures.rep_a2), employee=figures.rep_a2, period=MARCH,
                        kpi=kpi) == (1, 3)


def test_the_trend_has_twelve_months_with_targets(figures: Any) -> None:
    kpi = Kpi.objects.get(code="signed_amount")
    data = trend(user_of(figures.rep_a), kpis=[kpi], employee=figures.rep_a,
                 today=dt.date(2026, 3, 10))
    assert data["months"][0] == "2025-04" and data["months"][-1] == "2026-03"
    assert len(data["months"]) == 12
    assert data["series"]["signed_amount"][-2:] == [20000.0, 30000.0]
    assert data["targets"]["signed_amount"][-1] == 40000.0
    assert data["targets"]["signed_amount"][0] is None
    assert achievement.last_months(dt.date(2026, 3, 10), 3) == Period(
        dt.date(2026, 1, 1), dt.date(2026, 3, 31))


# --- the desk page ------------------------------------------------------------------------------
def test_the_overview_shows_the_viewers_department_or_own_figures(figures: Any,
                                                                  login: Any) -> None:
    html = login(figures.manager_a, language="en").get(
        "/performance/?period=2026-03").content.decode()
    assert "上海一组" in html and "¥60,000.00" in html and "60.0%" in html
    assert 'data-chart="chart-trend"' in html and 'id="chart-trend"' in html
    rep = login(figures.rep_a, language="en").get("/performance/?period=2026-03")
    assert rep.status_code == 200
    text = rep.content.decode()
    assert "李销售" in text and "¥30,000.00" in text and "75.0%" in text
    assert '<td class="num">¥60,000.00</td>' not in text  # the team's figure


def test_the_rankings_tab(figures: Any, login: Any) -> None:
    html = login(figures.manager_a, language="en").get(
        "/performance/?period=2026-03&tab=rankings&kpi=signed_amount&by=actual").content.decode()
    table = html[html.index('data-testid="ranking"'):]
    assert table.index("李销售") < table.index("王经理") and table.index("赵销售") < table.index(
        "王经理")
    rep = login(figures.rep_a, language="en").get(
        "/performance/?period=2026-03&tab=rankings&kpi=signed_amount").content.decode()
    assert "Your rank in your team: 2 of 3" in rep and "赵销售" not in rep


@pytest.mark.parametrize(("who", "query", "status"), [
    ("rep_a", "", 200),
    ("rep_a", "employee=rep_a", 200),
    ("rep_a", "employee=rep_a2", 404),
    ("rep_a", "department=team_a", 404),
    ("rep_a", "tab=rankings&department=team_a", 404),
    ("manager_a", "department=team_a", 200),
    ("manager_a", "employee=rep_a2", 200),
    ("manager_a", "department=east", 404),
    ("manager_a", "department=team_b", 404),
    ("manager_a", "employee=rep_b", 404),
    ("manager_a", "tab=rankings&department=team_b", 404),
    ("director", "department=east", 200),
    ("director", "department=team_b", 404),
    ("admin", "department=team_b", 200),
    ("manager_a", "department=xyz", 404),
])
def test_the_overview_keeps_to_the_scope(figures: Any, login: Any, who: str, query: str,
                                         status: int) -> None:
    parts = []
    for pair in query.split("&") if query else []:
        key, value = pair.split("=")
        obj = getattr(figures, value, None)
        parts.append(f"{key}={obj.pk if obj is not None else value}")
    url = "/performance/?period=2026-03&" + "&".join(parts)
    assert login(getattr(figures, who)).get(url).status_code == status


@pytest.mark.parametrize(("who", "query", "status"), [
    ("rep_a", "export=xlsx", 403),
    ("manager_a", "export=xlsx", 200),
    ("manager_a", "export=csv&tab=rankings", 200),
    ("manager_a", "export=xlsx&department=team_b", 404),
])
def test_exports_need_the_export_permission_and_keep_to_the_scope(
        figures: Any, login: Any, who: str, query: str, status: int) -> None:
    query = query.replace("team_b", str(figures.team_b.pk))
    response = login(getattr(figures, who)).get(f"/performance/?period=2026-03&{query}")
    assert response.status_code == status


def test_the_ranking_export_holds_the_team_only(figures: Any, login: Any) -> None:
    body = login(figures.manager_a, language="en").get(
        "/performance/?period=2026-03&tab=rankings&kpi=signed_amount&by=actual&export=csv"
    ).content.decode("utf-8-sig")
    lines = body.strip().splitlines()
    assert lines[0].startswith("Rank,Employee number")
    assert [ln.split(",")[1] for ln in lines[1:]] == ["E030", "E031", "E020"]
    assert "E050" not in body
