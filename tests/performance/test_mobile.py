"""The phone pages ("my targets", "my team", a member's page) and the daily WeCom card:
content, scope and idempotency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.performance.helpers import put_facts
from weiying.org.models import Employee
from weiying.performance.selectors import Period
from weiying.performance.targets import set_target
from weiying.performance.tasks_targets import card_content, send_daily_cards
from weiying.wechat.models import OutboxMessage


@pytest.fixture
def month(company: Any) -> Any:
    """This month: rep A signed ¥3,000 of a ¥4,000 target; rep A2 ¥1,000 of ¥1,000."""
    today = timezone.localdate()
    first = today.replace(day=1)
    put_facts([(company.rep_a, first, "signed_amount", 300_000),
               (company.rep_a2, first, "signed_amount", 100_000),
               (company.rep_b, first, "signed_amount", 900_000)])
    period = Period.of(today)
    director = user_of(company.director)
    set_target(actor=director, kpi="signed_amount", period=period, employee=company.rep_a,
               value="4000")
    set_target(actor=director, kpi="signed_amount", period=period, employee=company.rep_a2,
               value="1000")
    return period


def test_my_targets_shows_the_reps_kpis_achievement_and_rank(company: Any, month: Any,
                                                             login: Any) -> None:
    page = login(company.rep_a, language="en").get("/m/performance/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-kpi="signed_amount"' in html
    assert "¥3,000.00" in html and "¥4,000.00" in html and "75.0%" in html
    assert "rank 2 of 3 in the team" in html
    # a rep sees nothing of colleagues' figures
    assert "¥1,000.00" not in html and "赵销售" not in html


def test_a_rep_without_targets_sees_the_default_kpis(company: Any, login: Any) -> None:
    html = login(company.rep_b, language="en").get("/m/performance/").content.decode()
    for code in ("signed_amount", "collected", "followups", "leads"):
        assert f'data-kpi="{code}"' in html


def test_my_team_lists_members_sorted_and_drills_down(company: Any, month: Any,
                                                      login: Any) -> None:
    client = login(company.manager_a, language="en")
    page = client.get("/m/performance/team/")
    assert page.status_code == 200
    html = page.content.decode()
    order = [html.index(f'data-employee="{n}"') for n in ("E031", "E030")]
    assert order == sorted(order)  # 100 % before 75 %
    by_name = client.get("/m/performance/team/?sort=name").content.decode()
    assert by_name.index('data-employee="E030"') < by_name.index('data-employee="E031"')
    assert client.get(f"/m/performance/member/{company.rep_a.pk}/").status_code == 200


@pytest.mark.parametrize(("who", "path", "status"), [
    ("rep_a", "/m/performance/team/", 403),
    ("rep_a", "member:rep_a2", 404),
    ("rep_a", "member:rep_a", 200),
    ("manager_a", "member:rep_b", 404),
    ("manager_b", "member:rep_b", 200),
    ("manager_b", "/m/performance/team/", 200),
    ("director", "member:rep_a", 200),
])
def test_phone_pages_keep_to_the_scope(company: Any, login: Any, who: str, path: str,
                                       status: int) -> None:
    if path.startswith("member:"):
        path = f"/m/performance/member/{getattr(company, path[7:]).pk}/"
    assert login(getattr(company, who)).get(path).status_code == status


def test_manager_b_does_not_see_team_a_in_my_team(company: Any, month: Any,
                                                  login: Any) -> None:
    html = login(company.manager_b).get("/m/performance/team/").content.decode()
    assert 'data-employee="E050"' in html and 'data-employee="E030"' not in html


def test_the_daily_card_has_yesterdays_figures_and_the_month_so_far(company: Any) -> None:
    day = dt.date(2026, 3, 10)
    put_facts([(company.rep_a, day, "signed_amount", 150_000),
               (company.rep_a, dt.date(2026, 3, 2), "signed_amount", 250_000),
               (company.rep_a, day, "followups", 4),
               (company.rep_a2, day, "signed_amount", 990_000)])
    set_target(actor=user_of(company.director), kpi="signed_amount",
               period=Period.month(2026, 3), employee=company.rep_a, value="10000")
    set_target(actor=user_of(company.director), kpi="signed_amount",
               period=Period.month(2026, 3), department=company.team_a, value="20000")
    from django.utils import translation

    with translation.override("en"):
        card = card_content(Employee.objects.get(pk=company.rep_a.pk), day)["textcard"]
        team = card_content(Employee.objects.get(pk=company.manager_a.pk), day)["textcard"]
    assert card["title"] == "Your daily figures for 03-10"
    assert "Yesterday: Signed amount ¥1,500.00" in card["description"]
    assert "Signed amount this month: ¥4,000.00 of ¥10,000.00 (40.0%)" in card["description"]
    assert "Time elapsed: 32.3% of the month" in card["description"]
    assert card["url"].endswith("/m/performance/")
    assert "上海一组" in team["title"]
    assert "Yesterday: Signed amount ¥11,400.00" in team["description"]
    assert "¥13,900.00 of ¥20,000.00 (69.5%)" in team["description"]
    assert team["url"].endswith("/m/performance/team/")


def test_the_daily_cards_go_once_per_day_to_people_with_wecom(company: Any) -> None:
    Employee.objects.filter(pk__in=[company.rep_a.pk, company.manager_a.pk,
                                    company.finance.pk]).update(wecom_userid="wx")
    Employee.objects.filter(pk=company.rep_a.pk).update(wecom_userid="rep-a")
    Employee.objects.filter(pk=company.manager_a.pk).update(wecom_userid="mgr-a")
    today = dt.date(2026, 3, 11)
    assert send_daily_cards(today=today) == 2
    rows = OutboxMessage.objects.filter(kind="performance.daily")
    assert sorted(rows.values_list("to_userid", flat=True)) == ["mgr-a", "rep-a"]
    assert all(key.endswith(":2026-03-10") for key in rows.values_list("dedup_key", flat=True))
    # a second run the same day sends nothing; the next day sends again
    assert send_daily_cards(today=today) == 0
    assert rows.count() == 2
    assert send_daily_cards(today=today + dt.timedelta(days=1)) == 2
    assert rows.count() == 4
