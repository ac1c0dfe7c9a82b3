"""A rep's "my targets" on a phone, in a real browser: this month's KPIs against target, the
achievement bar, the pace and the rank in the team; colleagues' figures stay hidden."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.e2e.test_rep_phone_flow import screenshots_on_failure, sign_in
from tests.performance.helpers import put_facts
from weiying.performance import kpis
from weiying.performance.selectors import Period
from weiying.performance.targets import set_target

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def this_month(company: Any) -> Period:
    """Rep A: ¥3,000 signed this month of a ¥4,000 target; rep A2: ¥1,000 of ¥1,000."""
    kpis.ensure_builtin()  # a transactional test before this one flushed the seeded catalogue
    today = timezone.localdate()
    put_facts([(company.rep_a, today.replace(day=1), "signed_amount", 300_000),
               (company.rep_a2, today.replace(day=1), "signed_amount", 100_000)])
    period = Period.of(today)
    for rep, value in ((company.rep_a, "4000"), (company.rep_a2, "1000")):
        set_target(actor=user_of(company.director), kpi="signed_amount", period=period,
                   employee=rep, value=value)
    set_target(actor=user_of(company.director), kpi="leads", period=period,
               employee=company.rep_a, value=20)
    return period


def test_a_rep_opens_my_targets_on_the_phone(live_server: Any, company: Any,
                                             this_month: Period, phone: Any) -> None:
    base = live_server.url
    with screenshots_on_failure("rep-targets", phone=phone):
        # given: the rep is signed in on the phone
        sign_in(phone, base, company.rep_a)

        # when: they open "my targets"
        phone.goto(f"{base}/m/performance/")

        # then: the KPIs with a target this month are listed, with actual, target and bar
        rows = phone.locator("[data-testid=my-kpis] [data-kpi]")
        assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.kpi)")) == [
            "leads", "signed_amount"]
        signed = phone.locator("[data-kpi=signed_amount]")
        assert signed.locator("[data-testid=actual]").inner_text() == "¥3,000.00"
        assert signed.locator("[data-testid=target]").inner_text() == "¥4,000.00"
        assert signed.locator("[data-testid=achievement]").inner_text() == "75.0%"
        bar = signed.locator(".weui-progress__inner-bar")
        assert bar.get_attribute("style") == "width:75%"
        assert bar.bounding_box()["width"] > 0
        assert "2" in signed.inner_text() and "3" in signed.inner_text()  # rank 2 of 3
        leads = phone.locator("[data-kpi=leads]")
        assert leads.locator("[data-testid=achievement]").inner_text() == "0.0%"
        assert phone.locator("[data-testid=pace]").is_visible()

        # and a colleague's figures are nowhere on the page
        assert "¥1,000.00" not in phone.content()
        assert "赵销售" not in phone.content()

        # and the team page is for managers only
        response = phone.goto(f"{base}/m/performance/team/")
        assert response is not None and response.status == 403
