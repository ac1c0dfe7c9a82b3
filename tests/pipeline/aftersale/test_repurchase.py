import datetime as dt

import pytest

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.core.errors import ValidationFailed
from weiying.pipeline.selectors.aftersale import repurchase_due

pytestmark = pytest.mark.django_db

TODAY = dt.date(2025, 3, 10)
D = dt.date


@pytest.fixture
def shop(company):
    p60 = f.product("P60", category="耗材", lifecycle_days=60)
    p365 = f.product("P365", category="服务", lifecycle_days=365)
    plain = f.product("PNONE", category="耗材")
    retired = f.product("POLD", lifecycle_days=30, active=False)

    a = f.customer("甲", company.rep_a)
    f.contract(a, status="completed", signed_on=D(2024, 6, 1), products=(p60,))
    f.contract(a, status="completed", signed_on=D(2024, 12, 1), products=(p60, plain))
    f.contract(a, status="in_delivery", signed_on=D(2024, 4, 1), products=(p365,))

    a2 = f.customer("乙", company.rep_a)
    f.contract(a2, signed_on=D(2025, 2, 20), products=(p60,))       # too recent
    f.contract(a2, signed_on=D(2024, 4, 20), products=(p365,))      # due in 41 days

    c = f.customer("丙", company.rep_a)
    f.contract(c, signed_on=D(2024, 11, 1), products=(p60,))
    f.contract(c, status="draft", products=(p60,))                 # repurchase under way

    d = f.customer("丁", company.rep_a)
    f.contract(d, status="cancelled", signed_on=D(2024, 10, 1), products=(p60,))

    e = f.customer("戊", company.rep_a)
    f.contract(e, signed_on=D(2024, 1, 1), products=(retired,))

    b = f.customer("北京", company.rep_b)
    f.contract(b, status="completed", signed_on=D(2024, 12, 15), products=(p60,))

    pooled = f.customer("公海", None)
    f.contract(pooled, signed_on=D(2023, 1, 1), products=(p60,))
    return {"p60": p60, "p365": p365}


def _rows(user, **kwargs):
    page = repurchase_due(user, today=TODAY, **kwargs)
    return [(r.customer.name, r.product.code, r.last_purchase, r.due_on, r.days_overdue)
            for r in page.items], page.next_cursor


def test_repurchase_due_computed_by_hand(company, shop):
    rows, cursor = _rows(user_of(company.rep_a))
    assert rows == [
        # last P60 purchase 2024-12-01 + 60 days = 2025-01-30; 39 days overdue
        ("甲", "P60", D(2024, 12, 1), D(2025, 1, 30), 39),
        # P365 bought 2024-04-01: due 2025-04-01, 22 days ahead, inside the 30-day window
        ("甲", "P365", D(2024, 4, 1), D(2025, 4, 1), -22),
    ]
    assert cursor is None


def test_window_of_zero_days_lists_only_what_is_overdue(company, shop):
    rows, _cursor = _rows(user_of(company.rep_a), within_days=0)
    assert rows == [("甲", "P60", D(2024, 12, 1), D(2025, 1, 30), 39)]


def test_rep_b_sees_only_their_customer(company, shop):
    rows, _cursor = _rows(user_of(company.rep_b))
    assert rows == [("北京", "P60", D(2024, 12, 15), D(2025, 2, 13), 25)]
    assert _rows(user_of(company.rep_a2)) == ([], None)


def test_pages_merge_cycles_in_due_order(company, shop):
    admin = user_of(company.admin)
    seen = []
    cursor = None
    for _page in range(4):
        rows, cursor = _rows(admin, size=1, cursor=cursor)
        seen += rows
        if cursor is None:
            break
    assert [(name, code) for name, code, *_rest in seen] == [
        ("甲", "P60"), ("北京", "P60"), ("甲", "P365"),
    ]


def test_window_outside_limits_is_refused(company, shop):
    with pytest.raises(ValidationFailed) as exc:
        repurchase_due(user_of(company.rep_a), within_days=400, today=TODAY)
    assert exc.value.field == "within_days"
    assert str(exc.value.message) == "Look ahead between 0 and 365 days."


def test_query_count_does_not_grow_with_customers(company, shop, django_assert_max_num_queries):
    user = user_of(company.admin)
    # scope + cycles + one grouped query per cycle + customers + products
    with django_assert_max_num_queries(6):
        repurchase_due(user, today=TODAY)
