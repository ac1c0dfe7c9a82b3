import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from tests.customers.conftest import make_customer
from weiying.core.errors import NotFound, ValidationFailed
from weiying.customers import selectors, services
from weiying.customers.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(company):
    """One customer per holder, and one in each pool."""
    return {
        "rep_a": make_customer(company.rep_a, name="甲一"),
        "rep_a2": make_customer(company.rep_a2, name="甲二"),
        "manager_a": make_customer(company.manager_a, name="甲经理"),
        "director": make_customer(company.director, name="华东总监"),
        "rep_b": make_customer(company.rep_b, name="乙一"),
        "pool_east": make_customer(None, name="东池", pool_department=company.east),
        "pool_north": make_customer(None, name="北池", pool_department=company.north),
        "pool_all": make_customer(None, name="总池"),
    }


def names(user, **filters):
    page = selectors.list_customers(user, size=200, **filters)
    return {c.name for c in page.items}


def test_rep_a_sees_own_and_the_pools_of_their_branch(company, book):
    assert names(user_of(company.rep_a)) == {"甲一", "东池", "总池"}


def test_rep_b_never_sees_rep_a_customers(company, book):
    seen = names(user_of(company.rep_b))

    assert seen == {"乙一", "北池", "总池"}
    with pytest.raises(NotFound):
        selectors.customer_detail(user_of(company.rep_b), book["rep_a"].pk)


def test_manager_a_sees_team_a(company, book):
    assert names(user_of(company.manager_a)) == {"甲一", "甲二", "甲经理", "东池", "总池"}


def test_director_sees_the_east_branch(company, book):
    assert names(user_of(company.director)) == {"甲一", "甲二", "甲经理", "华东总监", "东池",
                                                "总池"}


def test_finance_sees_all(company, book):
    assert names(user_of(company.finance)) == {c.name for c in book.values()}


def test_pool_customers_lists_only_the_pools_a_user_may_see(company, book):
    page = selectors.pool_customers(user_of(company.rep_a))

    assert {c.name for c in page.items} == {"东池", "总池"}


def test_merged_rows_are_left_out_of_lists(company, book):
    services.merge_customers(actor=user_of(company.manager_a), survivor=book["rep_a"],
                             duplicate=book["rep_a2"])

    assert "甲二" not in names(user_of(company.manager_a))
    # The row itself still resolves, pointing at the survivor.
    row = selectors.customer_detail(user_of(company.manager_a), book["rep_a2"].pk)
    assert row.merged_into_id == book["rep_a"].pk


def test_search_matches_name_phone_digits_and_contact_names(company):
    a = make_customer(company.rep_a, name="星辰科技", phone="13812345678")
    b = make_customer(company.rep_a, name="月光贸易")
    services.add_contact(actor=None, customer=b, name="王小明")
    rep = user_of(company.rep_a)

    assert names(rep, q="星辰") == {a.name}
    assert names(rep, q="1234 5678") == {a.name}
    assert names(rep, q="小明") == {b.name}


def test_filters_by_level_tag_and_owner(company):
    make_customer(company.rep_a, name="A级", level="A", tags=["重点"])
    make_customer(company.rep_a2, name="C级", level="C")
    manager = user_of(company.manager_a)

    assert names(manager, level="A") == {"A级"}
    assert names(manager, tag="重点") == {"A级"}
    assert names(manager, owner_id=company.rep_a2.pk) == {"C级"}


def test_keyset_pages_follow_the_sort_without_gaps(company):
    for i in range(7):
        make_customer(company.rep_a, name=f"客户{i}")
    Customer.objects.filter(name="客户3").update(total_signed=Decimal("999.00"))
    base = timezone.now()
    for i, c in enumerate(Customer.objects.order_by("pk")):
        Customer.objects.filter(pk=c.pk).update(last_activity_at=base - dt.timedelta(hours=i))
    rep = user_of(company.rep_a)

    first = selectors.list_customers(rep, size=3)
    second = selectors.list_customers(rep, size=3, cursor=first.next_cursor)
    third = selectors.list_customers(rep, size=3, cursor=second.next_cursor)
    by_value = selectors.list_customers(rep, sort="-value", size=1)

    seen = [c.name for c in first.items + second.items + third.items]
    assert seen == [f"客户{i}" for i in range(7)]
    assert third.next_cursor is None
    assert by_value.items[0].name == "客户3"


def test_unknown_sort_is_refused(company):
    with pytest.raises(ValidationFailed) as exc:
        selectors.list_customers(user_of(company.rep_a), sort="phone")

    assert exc.value.field == "sort"
