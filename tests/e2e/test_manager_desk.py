"""The manager's kanban at the desk, in a real browser: figures, moving a card, scope."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.e2e.test_rep_phone_flow import screenshots_on_failure, sign_in
from weiying.customers import services as customers
from weiying.pipeline.models import Opportunity, Stage, StageChange
from weiying.pipeline.services import opportunities as deals
from weiying.pipeline.services.opportunities import default_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def board_deals(company: Any) -> SimpleNamespace:
    """rep_a: ¥50,000 in 初步接洽 (10 %); rep_a2: ¥20,000 in 需求确认 (25 %)."""
    stages = {s.probability: s for s in Stage.objects.filter(pipeline=default_pipeline())}
    made = {}
    for rep, customer_name, name, amount, stage in (
        (company.rep_a, "长江电子", "门禁系统改造", "50000.00", stages[10]),
        (company.rep_a2, "黄浦物流", "仓储管理软件", "20000.00", stages[25]),
    ):
        actor = user_of(rep)
        customer = customers.create_customer(actor=actor, name=customer_name, owner=rep)
        made[rep.number] = deals.create_opportunity(
            actor=actor, customer=customer, name=name, amount=Decimal(amount), stage=stage,
        )
    return SimpleNamespace(a=made["E030"], a2=made["E031"], stages=stages)


def _stat(page: Any, index: int) -> str:
    return str(page.locator("#board .board-totals .stat .value").nth(index).inner_text())


def test_manager_moves_a_card_and_the_board_refigures_without_a_reload(
    live_server: Any, company: Any, board_deals: SimpleNamespace, desk: Any,
) -> None:
    base = live_server.url
    deal = board_deals.a
    target = board_deals.stages[50]

    with screenshots_on_failure("manager-move", desk=desk):
        # given: the manager's kanban shows both reps' deals and the team's figures
        sign_in(desk, base, company.manager_a)
        desk.goto(f"{base}/pipeline/opportunities/board/")
        assert desk.locator(f"section.column[data-stage='{deal.stage_id}'] #deal-{deal.pk}") \
            .count() == 1
        assert desk.locator(f"#deal-{board_deals.a2.pk}").count() == 1
        assert _stat(desk, 0) == "¥70,000.00"
        assert _stat(desk, 1) == "¥10,000.00"  # 50,000 × 10 % + 20,000 × 25 %
        desk.evaluate("window.__same_page = true")

        # when: the manager moves rep_a's card to 方案报价 (50 %) with its stage picker
        desk.select_option(f"#deal-{deal.pk} select[name=stage]", str(target.pk))

        # then: the card lands in that column, the figures follow, and the page stayed put
        desk.locator(f"section.column[data-stage='{target.pk}'] #deal-{deal.pk}").wait_for()
        assert desk.locator(f"#deal-{deal.pk}").count() == 1
        assert _stat(desk, 0) == "¥70,000.00"
        assert _stat(desk, 1) == "¥30,000.00"  # 50,000 × 50 % + 20,000 × 25 %
        assert desk.evaluate("window.__same_page") is True

    # and the database agrees, with the move recorded as the manager's
    deal.refresh_from_db()
    assert deal.stage_id == target.pk
    change = StageChange.objects.filter(opportunity=deal).order_by("-at", "-pk").first()
    assert change is not None
    assert (change.to_stage_id, change.by_id) == (target.pk, company.manager_a.pk)


def test_the_kanban_shows_each_person_only_their_scope(
    live_server: Any, company: Any, board_deals: SimpleNamespace, desk: Any,
) -> None:
    base = live_server.url
    a, a2 = board_deals.a, board_deals.a2

    with screenshots_on_failure("kanban-scope", desk=desk):
        # when: rep_a2 (same team, sees only their own) opens the kanban
        sign_in(desk, base, company.rep_a2)
        desk.goto(f"{base}/pipeline/opportunities/board/")

        # then: only their own card, and rep_a's deal page is a 404
        desk.locator(f"#deal-{a2.pk}").wait_for()
        assert desk.locator(f"#deal-{a.pk}").count() == 0
        assert _stat(desk, 0) == "¥20,000.00"
        response = desk.goto(f"{base}/pipeline/opportunities/{a.pk}/")
        assert response is not None
        assert response.status == 404
        desk.context.clear_cookies()

        # when: the north branch's manager opens the kanban
        sign_in(desk, base, company.manager_b)
        desk.goto(f"{base}/pipeline/opportunities/board/")

        # then: no card of the east branch, an empty total, and 404 on both deals
        desk.locator("#board .kanban").wait_for()
        assert desk.locator("#board article.deal").count() == 0
        assert _stat(desk, 0) == "¥0.00"
        for deal in (a, a2):
            response = desk.goto(f"{base}/pipeline/opportunities/{deal.pk}/")
            assert response is not None
            assert response.status == 404

        # when: the manager of both reps filters the kanban to rep_a2
        desk.context.clear_cookies()
        sign_in(desk, base, company.manager_a)
        desk.goto(f"{base}/pipeline/opportunities/board/")
        desk.select_option("select[name=owner]", str(company.rep_a2.pk))
        desk.click("form.toolbar button:not(.link)")
        desk.wait_for_url(f"**/board/?*owner={company.rep_a2.pk}*")

        # then: only rep_a2's card is left
        assert desk.locator(f"#deal-{a2.pk}").count() == 1
        assert desk.locator(f"#deal-{a.pk}").count() == 0

    assert Opportunity.objects.filter(pk__in=[a.pk, a2.pk]).count() == 2
