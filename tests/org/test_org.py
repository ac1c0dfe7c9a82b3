import pytest

from tests.conftest import user_of
from weiying.core.errors import ValidationFailed
from weiying.core.models import AuditLog
from weiying.org import services
from weiying.org.models import Department, Employee
from weiying.org.selectors import reporting_line, subtree_employees

pytestmark = pytest.mark.django_db


def test_moving_a_department_moves_its_whole_subtree(company):
    admin = user_of(company.admin)
    services.move_department(actor=admin, department=company.team_a, parent=company.north)
    team_a = Department.objects.get(pk=company.team_a.pk)
    assert team_a.path.startswith(company.north.path)
    assert team_a.depth == 3
    names = set(subtree_employees(company.north).values_list("name", flat=True))
    assert {"王经理", "李销售", "赵销售", "孙经理", "钱销售"} == names


def test_a_department_cannot_move_under_itself(company):
    with pytest.raises(ValidationFailed) as err:
        services.move_department(actor=user_of(company.admin), department=company.east,
                                 parent=company.team_a)
    assert err.value.field == "parent"


def test_changing_a_leader_moves_the_reporting_line(company):
    services.change_leader(actor=user_of(company.admin), employee=company.manager_a,
                           leader=company.manager_b)
    names = set(reporting_line(Employee.objects.get(pk=company.manager_b.pk))
                .values_list("name", flat=True))
    assert names == {"孙经理", "钱销售", "王经理", "李销售", "赵销售"}
    assert AuditLog.objects.filter(action="employee.change_leader").count() == 1


def test_a_reporting_line_cannot_loop(company):
    with pytest.raises(ValidationFailed):
        services.change_leader(actor=user_of(company.admin), employee=company.director,
                               leader=company.rep_a)


def test_leaving_deactivates_the_login(company):
    import datetime as dt

    services.mark_left(actor=user_of(company.admin), employee=company.rep_a2,
                       leave_date=dt.date(2026, 11, 30))
    assert not user_of(company.rep_a2).is_active


def test_org_api_lists_only_visible_employees(company, login):
    body = login(company.manager_a).get("/api/org/employees").json()
    assert {e["name"] for e in body["items"]} == {"王经理", "李销售", "赵销售"}
    assert login(company.rep_b).get(f"/api/org/employees/{company.rep_a.pk}").status_code == 404
