"""A manager's dashboard in a real browser: the charts draw, each can be saved as an image,
and a number's link opens the records behind it."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import user_of
from tests.e2e.test_rep_phone_flow import screenshots_on_failure, sign_in
from tests.reports.test_dashboards import figures  # noqa: F401 - the fixture
from weiying.customers import services as customers
from weiying.pipeline.models import Stage
from weiying.pipeline.services import opportunities as deals
from weiying.pipeline.services.opportunities import default_pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def open_deals(figures: SimpleNamespace) -> SimpleNamespace:  # noqa: F811
    """Team A: 门禁系统改造 (rep_a, 10 %) and 仓储管理软件 (rep_a2, 25 %); team B: 冷链监控
    (rep_b, 10 %)."""
    stages = {s.probability: s for s in Stage.objects.filter(pipeline=default_pipeline())}
    made = {}
    for rep, customer_name, name, amount, stage in (
        (figures.rep_a, "长江电子", "门禁系统改造", "50000.00", stages[10]),
        (figures.rep_a2, "黄浦物流", "仓储管理软件", "20000.00", stages[25]),
        (figures.rep_b, "燕山食品", "冷链监控", "9000.00", stages[10]),
    ):
        actor = user_of(rep)
        customer = customers.create_customer(actor=actor, name=customer_name, owner=rep)
        made[name] = deals.create_opportunity(actor=actor, customer=customer, name=name,
                                              amount=Decimal(amount), stage=stage)
    return SimpleNamespace(deals=made, stages=stages, company=figures)


def test_the_managers_dashboard_draws_its_charts_and_drills_down(
    live_server: Any, open_deals: SimpleNamespace, desk: Any,
) -> None:
    c = open_deals.company
    base = live_server.url
    with screenshots_on_failure("manager-dashboard", desk=desk):
        # given: the manager of team A opens their dashboard for March 2026
        sign_in(desk, base, c.manager_a)
        desk.goto(f"{base}/reports/dashboard/?period=2026-03")

        # then: the team's figure, and every chart container holds a drawn canvas
        signed = desk.locator("[data-figure=signed_amount] .value")
        assert signed.inner_text() == "¥17,000.00"
        containers = desk.locator("[data-chart]")
        assert containers.count() == 2
        for i in range(containers.count()):
            containers.nth(i).locator("canvas").first.wait_for()
        # and each chart offers "save as image" in its toolbox
        saves = desk.evaluate("""() => Array.from(document.querySelectorAll('[data-chart]'))
            .map(el => { const o = window.echarts.getInstanceByDom(el).getOption();
                         return !!(o.toolbox && o.toolbox[0].feature.saveAsImage); })""")
        assert saves == [True, True]

        # when: the manager follows the opportunity count of the 10 % stage
        row = desk.locator("#table-pipeline tbody tr", has_text=open_deals.stages[10].name)
        assert row.locator("td").nth(1).inner_text() == "1"
        row.locator("td").nth(1).locator("a").click()
        desk.wait_for_load_state()

        # then: the list shows that stage's deal of team A, not the other stage's nor team B's
        assert "/pipeline/opportunities/" in desk.url
        body = desk.locator("main").inner_text()
        assert "门禁系统改造" in body
        assert "仓储管理软件" not in body
        assert "冷链监控" not in body
