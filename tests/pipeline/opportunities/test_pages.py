import re
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import make_customer, stages
from weiying.pipeline.models import Opportunity
from weiying.pipeline.selectors.opportunities import board
from weiying.pipeline.services.opportunities import create_opportunity, mark_won, move_stage

pytestmark = pytest.mark.django_db


def _opp(company, owner, name, amount, stage="初步接洽", **kw):
    customer = make_customer(owner, name="客户" + name)
    opp = create_opportunity(actor=user_of(owner), customer=customer, name=name,
                             amount=amount, **kw)
    if stage != "初步接洽":
        move_stage(actor=user_of(owner), opportunity=opp, stage=stages()[stage])
    return opp


@pytest.fixture
def deals(company, clock):
    return {
        "a1": _opp(company, company.rep_a, "A1", "10000"),
        "a2": _opp(company, company.rep_a, "A2", "30000", stage="方案报价"),
        "a3": _opp(company, company.rep_a2, "A3", "20000.50", stage="方案报价"),
        "b1": _opp(company, company.rep_b, "B1", "99999"),
    }


def test_board_totals_and_weighted_amounts_for_a_manager(company, deals):
    mark_won(actor=user_of(company.rep_a), opportunity=_opp(company, company.rep_a, "W", "777"))

    result = board(user_of(company.manager_a), stages()["赢单"].pipeline)

    by_stage = {c.stage.name: c for c in result.columns}
    assert list(by_stage) == ["初步接洽", "需求确认", "方案报价", "商务谈判"]
    assert (by_stage["初步接洽"].count, by_stage["初步接洽"].total) == (1, Decimal("10000.00"))
    assert by_stage["初步接洽"].weighted == Decimal("1000.00")
    assert by_stage["方案报价"].total == Decimal("50000.50")
    assert by_stage["方案报价"].weighted == Decimal("25000.25")
    assert [c.name for c in by_stage["方案报价"].cards] == ["A2", "A3"]
    assert (result.total, result.weighted) == (Decimal("60000.50"), Decimal("26000.25"))
    assert (result.won_count, result.won_total, result.lost_count) == (1, Decimal("777.00"), 0)


def test_board_caps_cards_per_column(company, deals):
    result = board(user_of(company.manager_a), stages()["赢单"].pipeline, cap=1)

    column = next(c for c in result.columns if c.stage.name == "方案报价")
    assert [c.name for c in column.cards] == ["A2"]
    assert column.more == 1


def test_board_filters_by_owner(company, deals):
    result = board(user_of(company.manager_a), stages()["赢单"].pipeline,
                   owner=company.rep_a2.pk)

    assert [card.name for c in result.columns for card in c.cards] == ["A3"]


def test_kanban_page_renders_with_totals(company, deals, login):
    response = login(company.manager_a).get(reverse("pipeline:opportunity_board"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "¥60,000.50" in html
    assert "¥26,000.25" in html
    assert "客户A2" in html and "客户A3" in html
    assert "客户B1" not in html


def test_kanban_page_for_rep_b_shows_only_their_deal(company, deals, login):
    html = login(company.rep_b).get(reverse("pipeline:opportunity_board")).content.decode()

    # by the customers' names: a bare "A1" can turn up inside a random CSRF token
    assert "客户B1" in html
    assert "客户A1" not in html


def test_htmx_move_rerenders_the_board(company, deals, login):
    opp = deals["a1"]

    response = login(company.rep_a).post(
        reverse("pipeline:opportunity_move", args=[opp.pk]),
        {"stage": stages()["商务谈判"].pk, "pipeline": opp.pipeline_id},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert 'class="kanban"' in response.content.decode()
    assert Opportunity.objects.get(pk=opp.pk).stage.name == "商务谈判"


def test_htmx_move_to_won_shows_the_refusal(company, deals, login):
    opp = deals["a1"]

    response = login(company.rep_a).post(
        reverse("pipeline:opportunity_move", args=[opp.pk]),
        {"stage": stages()["赢单"].pk}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 422
    assert "mark it won or lost instead" in response.content.decode()


def test_move_of_other_branch_deal_is_404(company, deals, login):
    response = login(company.rep_b).post(
        reverse("pipeline:opportunity_move", args=[deals["a1"].pk]),
        {"stage": stages()["需求确认"].pk},
    )

    assert response.status_code == 404


def test_list_is_scoped_filtered_and_sorted(company, deals, login):
    client = login(company.manager_a)

    html = client.get(reverse("pipeline:opportunity_list"), {"sort": "-amount"}).content.decode()
    names = re.findall(r'/pipeline/opportunities/\d+/">([^<]+)<', html)
    assert names == ["A2", "A3", "A1"]

    html = client.get(reverse("pipeline:opportunity_list"),
                      {"stage": stages()["方案报价"].pk, "owner": company.rep_a2.pk}).content
    assert re.findall(r'/pipeline/opportunities/\d+/">([^<]+)<', html.decode()) == ["A3"]


def test_list_pages_with_a_cursor_sorted_by_close(company, clock, login, monkeypatch):
    import datetime as dt

    from weiying.pipeline.views import opportunities as views

    for i, day in enumerate([None, 5, 3, None, 1]):
        close = dt.date(2025, 4, day) if day else None
        _opp(company, company.rep_a, f"D{i}", "1", expected_close=close)
    client = login(company.rep_a)
    seen, after = [], ""
    original = views.list_page

    def two_per_page(*args, **kwargs):
        return original(*args, **{**kwargs, "size": 2})

    monkeypatch.setattr(views, "list_page", two_per_page)
    for _ in range(5):
        response = client.get(reverse("pipeline:opportunity_list"),
                              {"sort": "close", **({"after": after} if after else {})})
        seen += [o.name for o in response.context["rows"]]
        after = response.context["state"].page.next_cursor
        if not after:
            break

    assert seen == ["D4", "D2", "D1", "D0", "D3"]


def test_list_filters_by_close_month(company, clock, login):
    import datetime as dt

    _opp(company, company.rep_a, "三月", "1", expected_close=dt.date(2025, 3, 31))
    _opp(company, company.rep_a, "四月", "1", expected_close=dt.date(2025, 4, 1))

    response = login(company.rep_a).get(reverse("pipeline:opportunity_list"),
                                        {"close_month": "2025-03"})

    assert [o.name for o in response.context["rows"]] == ["三月"]


def test_detail_shows_history_and_actions(company, deals, login, clock):
    opp = deals["a2"]

    response = login(company.rep_a).get(reverse("pipeline:opportunity_detail", args=[opp.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert [s.stage.name for s in response.context["stays"]] == ["初步接洽", "方案报价"]
    assert reverse("pipeline:opportunity_won", args=[opp.pk]) in html
    assert "¥30,000.00" in html
    assert 'class="timeline"' in html


def test_detail_of_other_branch_is_404(company, deals, login):
    response = login(company.rep_b).get(
        reverse("pipeline:opportunity_detail", args=[deals["a1"].pk]))

    assert response.status_code == 404


def test_lost_form_marks_lost(company, deals, login):
    opp = deals["a1"]

    response = login(company.rep_a).post(reverse("pipeline:opportunity_lost", args=[opp.pk]),
                                         {"reason": "price", "note": ""})

    assert response.status_code == 302
    assert Opportunity.objects.get(pk=opp.pk).status == "lost"


def test_new_form_creates_an_opportunity(company, clock, login):
    customer = make_customer(company.rep_a, name="新客户")

    response = login(company.rep_a).post(
        reverse("pipeline:opportunity_new") + f"?customer={customer.pk}",
        {"customer": customer.pk, "name": "首单", "amount": "1200.50",
         "expected_close": "2025-04-30"},
    )

    opp = Opportunity.objects.get(name="首单")
    assert response.status_code == 302
    assert response["Location"] == reverse("pipeline:opportunity_detail", args=[opp.pk])
    assert (opp.amount, opp.owner, opp.stage.name) == (Decimal("1200.50"), company.rep_a,
                                                        "初步接洽")


def test_new_form_cannot_pick_another_branch_customer(company, clock, login):
    customer = make_customer(company.rep_b)

    response = login(company.rep_a).post(reverse("pipeline:opportunity_new"),
                                         {"customer": customer.pk, "name": "偷单"})

    assert response.status_code == 200
    assert response.context["form"].errors["customer"]
    assert not Opportunity.objects.filter(name="偷单").exists()


def _queries(client, url, params=None):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, params or {}).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("name", ["pipeline:opportunity_board", "pipeline:opportunity_list"])
def test_page_queries_do_not_grow_with_rows(company, deals, login, name):
    client = login(company.manager_a)
    _queries(client, reverse(name))
    before = _queries(client, reverse(name))
    for i in range(6):
        _opp(company, company.rep_a2, f"More{i}", str(1000 + i), stage="方案报价")

    assert _queries(client, reverse(name)) == before


def test_closed_detail_offers_reopen(company, deals, login):
    opp = deals["a1"]
    mark_won(actor=user_of(company.rep_a), opportunity=opp)
    client = login(company.rep_a)

    html = client.get(reverse("pipeline:opportunity_detail", args=[opp.pk])).content.decode()
    response = client.post(reverse("pipeline:opportunity_reopen", args=[opp.pk]))

    assert reverse("pipeline:opportunity_reopen", args=[opp.pk]) in html
    assert reverse("pipeline:opportunity_won", args=[opp.pk]) not in html
    assert response.status_code == 302
    assert Opportunity.objects.get(pk=opp.pk).status == "open"
