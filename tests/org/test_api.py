import json

import pytest

from tests.conftest import _person
from weiying.core.models import AuditLog
from weiying.org.models import Department, Employee, Role

pytestmark = pytest.mark.django_db


def send(client, method, url, body):
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def hr_east(company):
    """An HR officer of the east branch: manages the organisation, sees only the branch."""
    Role.objects.create(code="hr_east", name="华东人事", data_scope="subtree",
                        permissions=["org.manage"])
    return _person("E080", "人事专员", company.east, "hr_east")


def test_an_admin_changes_a_profile(company, login):
    response = send(login(company.admin), "patch", f"/api/org/employees/{company.rep_a.pk}",
                    {"position": "资深销售", "role": "manager", "city": "苏州"})

    assert response.status_code == 200
    body = response.json()
    assert (body["position"], body["role"], body["name"]) == ("资深销售", "manager", "李销售")
    rep = Employee.objects.get(pk=company.rep_a.pk)
    assert (rep.city, rep.phone) == ("苏州", "13800000030")


def test_a_profile_change_with_an_unknown_role_is_refused(company, login):
    response = send(login(company.admin, language="en"), "patch",
                    f"/api/org/employees/{company.rep_a.pk}", {"role": "boss"})

    assert response.status_code == 400
    assert response.json() == {"code": "invalid", "field": "role",
                               "message": "Unknown role boss; see GET /api/org/roles."}


def test_a_manager_may_see_but_not_change_their_rep(company, login):
    client = login(company.manager_a, language="en")

    response = send(client, "patch", f"/api/org/employees/{company.rep_a.pk}", {"name": "X"})

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Employee.objects.get(pk=company.rep_a.pk).name == "李销售"


def test_an_employee_outside_the_scope_is_not_found_for_every_write(company, login, hr_east):
    client = login(hr_east)
    pk = company.rep_b.pk
    written = AuditLog.objects.count()

    for method, path, body in [
        ("patch", "", {"name": "X"}), ("post", "/transfer", {"department_id": company.east.pk}),
        ("post", "/leader", {"leader_id": None}), ("post", "/leave", {"leave_date": "2026-11-30"}),
    ]:
        response = send(client, method, f"/api/org/employees/{pk}{path}", body)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
    assert AuditLog.objects.count() == written
    assert Employee.objects.get(pk=pk).name == "钱销售"


def test_a_transfer_to_a_department_outside_the_scope_is_refused(company, login, hr_east):
    response = send(login(hr_east, language="en"), "post",
                    f"/api/org/employees/{company.rep_a.pk}/transfer",
                    {"department_id": company.team_b.pk})

    assert response.status_code == 400
    assert response.json() == {"code": "invalid", "field": "department_id",
                               "message": "The department does not exist."}
    assert Employee.objects.get(pk=company.rep_a.pk).department_id == company.team_a.pk


def test_an_hr_officer_transfers_within_their_branch(company, login, hr_east):
    response = send(login(hr_east), "post", f"/api/org/employees/{company.rep_a.pk}/transfer",
                    {"department_id": company.east.pk})

    assert response.status_code == 200
    assert response.json()["department_id"] == company.east.pk


def test_a_transfer_to_the_same_department_is_a_conflict(company, login):
    response = send(login(company.admin, language="en"), "post",
                    f"/api/org/employees/{company.rep_a.pk}/transfer",
                    {"department_id": company.team_a.pk})

    assert response.status_code == 409
    assert response.json() == {"code": "conflict", "field": "department",
                               "message": "李销售 is already in 上海一组; pick another department."}


def test_the_leader_is_changed_and_removed(company, login):
    client = login(company.admin)
    url = f"/api/org/employees/{company.rep_a.pk}/leader"

    assert send(client, "post", url, {"leader_id": company.director.pk}).json()["leader_id"] \
        == company.director.pk
    assert send(client, "post", url, {"leader_id": None}).json()["leader_id"] is None


def test_a_leader_outside_the_scope_is_refused(company, login, hr_east):
    response = send(login(hr_east, language="en"), "post",
                    f"/api/org/employees/{company.rep_a.pk}/leader",
                    {"leader_id": company.manager_b.pk})

    assert response.status_code == 400
    assert response.json()["message"] == "The direct leader does not exist."


def test_the_leader_field_is_required_even_when_it_is_null(company, login):
    response = send(login(company.admin), "post",
                    f"/api/org/employees/{company.rep_a.pk}/leader", {})

    assert response.status_code == 422


def test_leaving_is_recorded_once(company, login):
    client = login(company.admin, language="en")
    url = f"/api/org/employees/{company.rep_a2.pk}/leave"

    first = send(client, "post", url, {"leave_date": "2026-11-30"})
    again = send(client, "post", url, {"leave_date": "2026-12-01"})

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["leave_date"]) == ("left", "2026-11-30")
    assert again.status_code == 409
    assert again.json() == {
        "code": "invalid_transition",
        "message": "赵销售 already left on 2026-11-30; a departure is recorded only once."}


def test_a_department_is_changed(company, login):
    response = send(login(company.admin), "patch", f"/api/org/departments/{company.team_a.pk}",
                    {"city": "苏州", "manager_id": company.manager_a.pk})

    assert response.status_code == 200
    assert (response.json()["city"], response.json()["manager_id"]) == ("苏州",
                                                                        company.manager_a.pk)
    assert Department.objects.get(pk=company.team_a.pk).name == "上海一组"


def test_a_department_head_can_be_cleared(company, login):
    client = login(company.admin)
    url = f"/api/org/departments/{company.team_a.pk}"
    send(client, "patch", url, {"manager_id": company.manager_a.pk})

    assert send(client, "patch", url, {"manager_id": None}).json()["manager_id"] is None


def test_a_department_of_an_unknown_kind_is_refused(company, login):
    response = send(login(company.admin, language="en"), "patch",
                    f"/api/org/departments/{company.team_a.pk}", {"kind": "galaxy"})

    assert response.status_code == 400
    assert response.json()["field"] == "kind"


def test_a_department_outside_the_scope_is_not_found(company, login, hr_east):
    client = login(hr_east)

    assert send(client, "patch", f"/api/org/departments/{company.team_b.pk}",
                {"name": "X"}).status_code == 404
    assert send(client, "post", f"/api/org/departments/{company.team_b.pk}/move",
                {"parent_id": company.east.pk}).status_code == 404
    assert Department.objects.get(pk=company.team_b.pk).name == "北京一组"


def test_a_department_moves_with_its_subtree(company, login):
    response = send(login(company.admin), "post",
                    f"/api/org/departments/{company.team_a.pk}/move",
                    {"parent_id": company.north.pk})

    assert response.status_code == 200
    assert (response.json()["parent_id"], response.json()["depth"]) == (company.north.pk, 3)
    assert Department.objects.get(pk=company.team_a.pk).path.startswith(company.north.path)


def test_a_move_under_its_own_subtree_is_refused(company, login):
    response = send(login(company.admin, language="en"), "post",
                    f"/api/org/departments/{company.east.pk}/move",
                    {"parent_id": company.team_a.pk})

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid", "field": "parent",
        "message": "A department cannot move under itself or one of its own sub-departments."}


def test_a_move_under_a_parent_outside_the_scope_is_refused(company, login, hr_east):
    response = send(login(hr_east, language="en"), "post",
                    f"/api/org/departments/{company.team_a.pk}/move",
                    {"parent_id": company.north.pk})

    assert response.status_code == 400
    assert response.json()["message"] == "The parent department does not exist."
