import pytest

from tests.conftest import user_of
from weiying.core import tree
from weiying.core.scope import data_scope_of, visible_employees
from weiying.org.selectors import reporting_line, subtree_employees

pytestmark = pytest.mark.django_db


def test_subtree_range_excludes_siblings_with_a_common_prefix():
    assert tree.upper_bound("0000000100000009") == "0000000100000010"
    q = tree.subtree_q("path", "00000001")
    assert q.children == [("path__gte", "00000001"), ("path__lt", "00000002")]


def test_subtree_employees_of_the_east_branch(company):
    names = set(subtree_employees(company.east).values_list("name", flat=True))
    assert names == {"周总监", "王经理", "李销售", "赵销售"}


def test_reporting_line_follows_direct_leaders(company):
    names = set(reporting_line(company.manager_a).values_list("name", flat=True))
    assert names == {"王经理", "李销售", "赵销售"}


def test_scope_kind_comes_from_the_role(company):
    assert data_scope_of(user_of(company.rep_a)) == "self"
    assert data_scope_of(user_of(company.manager_a)) == "subtree"
    assert data_scope_of(user_of(company.finance)) == "all"


def test_user_without_employee_sees_nothing(db, django_user_model):
    user = django_user_model.objects.create_user(username="stranger", password="x" * 10)
    assert data_scope_of(user) == "none"
    assert visible_employees(user).count() == 0


def test_rep_sees_only_themselves_among_employees(company):
    assert list(visible_employees(user_of(company.rep_a))) == [company.rep_a]
