import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.core.errors import ValidationFailed
from weiying.pipeline.models import Opportunity, Pipeline
from weiying.pipeline.selectors.aftersale import customer_value, upsell_candidates

pytestmark = pytest.mark.django_db

D = dt.date


def _open_opportunity(buyer, status="open"):
    pipeline = Pipeline.objects.get(is_default=True)
    now = timezone.now()
    return Opportunity.objects.create(
        name="再来一单", customer=buyer, pipeline=pipeline, stage=pipeline.stages.first(),
        status=status, owner=buyer.owner, department=buyer.department, stage_entered_at=now,
        last_activity_at=now, created_at=now,
    )


@pytest.fixture
def market(company):
    p = {code: f.product(code, category=cat) for code, cat in [
        ("C0", "耗材"), ("X1", "耗材"), ("X2", "耗材"), ("X3", "耗材"), ("X4", "耗材"),
        ("S1", "服务"), ("S2", "服务"), ("N1", ""),
    ]}
    f.product("X0", category="耗材", active=False)

    a = f.customer("甲", company.rep_a)
    f.contract(a, status="completed", signed_on=D(2024, 5, 1), products=(p["C0"],),
               total="5000.00", collected="5000.00")

    busy = f.customer("乙", company.rep_a)          # an opportunity is open
    f.contract(busy, status="completed", signed_on=D(2024, 5, 1), products=(p["C0"],),
               total="8000.00", collected="8000.00")
    _open_opportunity(busy)

    upset = f.customer("丙", company.rep_a)         # an urgent ticket is open
    f.contract(upset, status="completed", signed_on=D(2024, 5, 1), products=(p["C0"],),
               total="9000.00", collected="9000.00")
    f.ticket_row(upset, priority="urgent", status="waiting")

    calm = f.customer("丁", company.rep_a)          # only a closed high and an open low ticket
    f.contract(calm, status="completed", signed_on=D(2024, 6, 1), products=(p["S1"], p["N1"]),
               total="6000.00", collected="6000.00")
    f.ticket_row(calm, priority="high", status="closed")
    f.ticket_row(calm, priority="low", status="open")
    _open_opportunity(calm, status="won")

    signed_only = f.customer("戊", company.rep_a)   # nothing completed yet; buys X2 and X3
    f.contract(signed_only, signed_on=D(2025, 1, 1), products=(p["X2"], p["X3"]),
               total="2000.00", collected="500.00")
    f.contract(signed_only, status="draft", products=(p["X4"],), total="300.00")

    b = f.customer("北京", company.rep_b)
    f.contract(b, status="completed", signed_on=D(2024, 7, 1), products=(p["X2"],),
               total="7000.00", collected="7000.00")
    f.contract(b, status="cancelled", signed_on=D(2024, 8, 1), products=(p["X1"],),
               total="100.00")
    f.ticket_row(b, priority="normal", status="in_progress")
    return p


def _upsell(user):
    page = upsell_candidates(user)
    return [(row.customer.name, [x.code for x in row.suggestions]) for row in page.items]


def test_upsell_candidates_and_their_suggestions(company, market):
    assert _upsell(user_of(company.rep_a)) == [
        # 丁 collected 6000: only S2 is left in 服务; N1 has no category to match
        ("丁", ["S2"]),
        # 甲 collected 5000: X2 (2 buyers), X3 (1 buyer), then X1 before X4 by code;
        # the retired X0 is never suggested
        ("甲", ["X2", "X3", "X1"]),
    ]


def test_upsell_is_scoped(company, market):
    assert _upsell(user_of(company.rep_b)) == [("北京", ["C0", "X3", "X1"])]
    assert _upsell(user_of(company.rep_a2)) == []
    assert [name for name, _s in _upsell(user_of(company.admin))] == ["北京", "丁", "甲"]


def test_upsell_pages_by_collected(company, market):
    admin = user_of(company.admin)
    first = upsell_candidates(admin, size=2)
    assert [r.customer.name for r in first.items] == ["北京", "丁"]
    second = upsell_candidates(admin, size=2, cursor=first.next_cursor)
    assert [r.customer.name for r in second.items] == ["甲"]
    assert second.next_cursor is None


def _value(user, **kwargs):
    page = customer_value(user, **kwargs)
    return [(c.name, c.total_signed, c.total_collected, c.outstanding, c.last_purchase_at,
             c.contract_count, c.open_ticket_count) for c in page.items]


def test_customer_value_figures(company, market):
    rows = _value(user_of(company.rep_a))
    assert rows == [
        ("丙", Decimal("9000.00"), Decimal("9000.00"), Decimal("0.00"), D(2024, 5, 1), 1, 1),
        ("乙", Decimal("8000.00"), Decimal("8000.00"), Decimal("0.00"), D(2024, 5, 1), 1, 0),
        ("丁", Decimal("6000.00"), Decimal("6000.00"), Decimal("0.00"), D(2024, 6, 1), 1, 1),
        ("甲", Decimal("5000.00"), Decimal("5000.00"), Decimal("0.00"), D(2024, 5, 1), 1, 0),
        ("戊", Decimal("2000.00"), Decimal("500.00"), Decimal("1500.00"), D(2025, 1, 1), 1, 0),
    ]


def test_customer_value_sorts(company, market):
    rep = user_of(company.rep_a)
    assert [r[0] for r in _value(rep, sort="-outstanding")][0] == "戊"
    assert [r[0] for r in _value(rep, sort="-last_purchase")] == ["戊", "丁", "丙", "乙", "甲"]
    assert [r[0] for r in _value(rep, sort="-open_tickets")][:2] == ["丁", "丙"]
    with pytest.raises(ValidationFailed) as exc:
        customer_value(rep, sort="name")
    assert exc.value.field == "sort"


def test_customer_value_is_scoped_and_keyset_paged(company, market):
    assert _value(user_of(company.rep_b)) == [
        ("北京", Decimal("7000.00"), Decimal("7000.00"), Decimal("0.00"), D(2024, 7, 1), 1, 1),
    ]
    admin = user_of(company.admin)
    names = []
    cursor = None
    while True:
        page = customer_value(admin, sort="-contracts", size=2, cursor=cursor)
        names += [c.name for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(names) == sorted(["丙", "乙", "丁", "甲", "戊", "北京"])
    assert len(names) == 6
