import pytest

from tests.conftest import user_of
from weiying.org import services as org
from weiying.org.models import Employee
from weiying.org.selectors import subtree_employees

pytestmark = pytest.mark.django_db


def _paths_agree() -> list[str]:
    return [e.number for e in Employee.objects.select_related("department")
            if e.department_path != e.department.path]


def test_every_persona_carries_its_departments_path(company):
    assert _paths_agree() == []


def test_a_transfer_carries_the_new_departments_path(company):
    org.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                          department=company.team_b)

    assert _paths_agree() == []
    assert company.rep_a.pk in set(subtree_employees(company.north).values_list("pk", flat=True))
    assert company.rep_a.pk not in set(subtree_employees(company.east).values_list("pk",
                                                                                   flat=True))


def test_moving_a_department_rewrites_its_peoples_paths(company):
    org.move_department(actor=user_of(company.admin), department=company.team_a,
                        parent=company.north)

    assert _paths_agree() == []
    north = set(subtree_employees(company.north).values_list("name", flat=True))
    assert {"王经理", "李销售", "赵销售", "钱销售"} <= north
    assert set(subtree_employees(company.east).values_list("name", flat=True)) == {"周总监"}
