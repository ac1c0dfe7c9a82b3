import datetime as dt

import pytest
from django.utils import timezone, translation

from tests.conftest import user_of
from weiying.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.org import services
from weiying.org.models import Department, Employee, Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def event(name, obj):
    return DomainEvent.objects.get(name=name, subject_type=obj._meta.label_lower,
                                   subject_id=str(obj.pk))


def audit_row(action, obj):
    return AuditLog.objects.get(action=action, object_id=str(obj.pk))


def refusal(excinfo):
    return excinfo.value.code, str(excinfo.value.message), excinfo.value.field


# --- departments ----------------------------------------------------------------------------
def test_creating_a_department_writes_audit_and_event(company):
    admin = user_of(company.admin)

    team = services.create_department(actor=admin, name=" 上海二组 ", parent=company.east,
                                      city="上海")

    assert team.name == "上海二组" and team.depth == 3
    assert audit_row("department.create", team).actor_id == admin.pk
    created = event("department.created", team)
    assert created.actor_id == admin.pk and created.data == {"parent": company.east.pk}


def test_a_department_of_an_unknown_kind_is_refused(company):
    with pytest.raises(ValidationFailed) as err:
        services.create_department(actor=user_of(company.admin), name="X", parent=company.hq,
                                   kind="galaxy")

    assert refusal(err) == (
        "invalid", "galaxy is not a valid choice here; pick one of: hq, branch, region, area, "
        "team, other.", "kind")


def test_updating_a_department_records_the_change(company):
    admin = user_of(company.admin)

    team = services.update_department(
        actor=admin, department=company.team_a, name="上海一组（旗舰）", kind="team",
        city="上海", region="华东", manager=company.manager_a)

    assert (team.name, team.manager_id) == ("上海一组（旗舰）", company.manager_a.pk)
    row = audit_row("department.update", team)
    assert row.before["name"] == "上海一组" and row.after["manager"] == company.manager_a.pk
    assert event("department.updated", team).data["changes"] == {
        "manager": [None, company.manager_a.pk], "name": ["上海一组", "上海一组（旗舰）"]}


def test_updating_a_department_without_a_change_writes_nothing(company):
    team = company.team_a
    services.update_department(actor=user_of(company.admin), department=team, name=team.name,
                               kind=team.kind, city=team.city, region=team.region, manager=None)

    assert not AuditLog.objects.filter(action="department.update").exists()
    assert not DomainEvent.objects.filter(name="department.updated").exists()


@pytest.mark.parametrize(("changes", "expected"), [
    ({"name": "  "}, ("invalid", "A department needs a name.", "name")),
    ({"kind": "x"}, ("invalid", "x is not a valid choice here; pick one of: hq, branch, region, "
                                "area, team, other.", "kind")),
    ({"manager": "left"}, ("invalid", "赵销售 has left the company; pick a current employee as "
                                      "the head.", "manager")),
])
def test_a_department_update_is_refused_with_a_reason(company, changes, expected):
    admin = user_of(company.admin)
    if changes.get("manager") == "left":
        services.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 1, 1))
        changes = {"manager": Employee.objects.get(pk=company.rep_a2.pk)}
    fields = {"name": "上海一组", "kind": "team", "city": "", "region": "", "manager": None,
              **changes}

    with pytest.raises(ValidationFailed) as err:
        services.update_department(actor=admin, department=company.team_a, **fields)

    assert refusal(err) == expected
    assert Department.objects.get(pk=company.team_a.pk).name == "上海一组"


def test_a_rep_may_not_change_a_department(company):
    with pytest.raises(PermissionDenied) as err:
        services.update_department(actor=user_of(company.rep_a), department=company.team_a,
                                   name="X", kind="team", city="", region="", manager=None)

    assert err.value.code == "forbidden"
    assert str(err.value.message) == (
        "Your role does not allow this (Manage departments, employees and roles). Ask an "
        "administrator.")


def test_moving_a_department_emits_the_move(company):
    old_path = company.team_a.path
    services.move_department(actor=user_of(company.admin), department=company.team_a,
                             parent=company.north)

    moved = event("department.moved", company.team_a)
    company.team_a.refresh_from_db()
    assert moved.data == {"from_parent": company.east.pk, "to_parent": company.north.pk,
                          "from_path": old_path, "to_path": company.team_a.path}
    assert company.team_a.path.startswith(company.north.path)
    assert audit_row("department.move", company.team_a).before == {"parent": company.east.pk}


def test_moving_a_department_to_its_own_parent_is_refused(company):
    with pytest.raises(Conflict) as err:
        services.move_department(actor=user_of(company.admin), department=company.team_a,
                                 parent=company.east)

    assert refusal(err) == (
        "conflict", "上海一组 is already directly under 华东分公司; pick another parent "
        "department.", "parent")


def test_a_department_cannot_move_under_its_own_subtree(company):
    with pytest.raises(ValidationFailed) as err:
        services.move_department(actor=user_of(company.admin), department=company.east,
                                 parent=company.team_a)

    assert refusal(err) == (
        "invalid", "A department cannot move under itself or one of its own sub-departments.",
        "parent")


# --- employees ------------------------------------------------------------------------------
def test_creating_an_employee_writes_audit_and_event(company):
    admin = user_of(company.admin)

    employee = services.create_employee(
        actor=admin, number="E099", name="新同事", department=company.team_a,
        leader=company.manager_a, phone="138-0013-8000")

    assert employee.phone == "13800138000"
    assert employee.path.startswith(company.manager_a.path)
    assert audit_row("employee.create", employee).actor_id == admin.pk
    assert event("employee.created", employee).data == {
        "department": company.team_a.pk, "leader": company.manager_a.pk}


def test_the_system_creating_an_employee_emits_the_event_too(company):
    assert event("employee.created", company.rep_a).actor_id is None


def test_an_employee_in_a_closed_department_is_refused(company):
    Department.objects.filter(pk=company.team_b.pk).update(is_active=False)
    company.team_b.refresh_from_db()

    with pytest.raises(ValidationFailed) as err:
        services.create_employee(actor=user_of(company.admin), number="E099", name="新同事",
                                 department=company.team_b)

    assert refusal(err) == ("invalid", "北京一组 is closed; pick an active department.",
                            "department")


def _profile(employee, **changes):
    fields = {f: getattr(employee, f) for f in services.EMPLOYEE_FIELDS}
    return {**fields, **changes}


def test_updating_an_employee_records_only_the_changed_fields_in_the_event(company):
    admin = user_of(company.admin)
    manager = Role.objects.get(code="manager")

    rep = services.update_employee(actor=admin, employee=company.rep_a, **_profile(
        company.rep_a, position="资深销售", role=manager, phone="+86 139 1234 5678",
        status="probation"))

    assert (rep.position, rep.role_id, rep.phone, rep.status) == (
        "资深销售", manager.pk, "13912345678", "probation")
    row = audit_row("employee.update", rep)
    assert row.before["phone"] == "13800000030" and row.after["phone"] == "13912345678"
    assert event("employee.updated", rep).data == {
        "fields": ["phone", "position", "role", "status"]}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"name": ""}, ("invalid", "An employee needs a name.", "name")),
    ({"status": "left"}, ("invalid", "left is not a valid choice here; pick one of: active, "
                                     "probation.", "status")),
    ({"phone": "12-34"}, ("invalid", "A phone number has 7 to 20 digits (a mobile has 11); "
                                     "check the number.", "phone")),
    ({"email": "li@"}, ("invalid", "li@ is not an email address; check it or leave it empty.",
                        "email")),
])
def test_an_employee_update_is_refused_with_a_reason(company, changes, expected):
    with pytest.raises(ValidationFailed) as err:
        services.update_employee(actor=user_of(company.admin), employee=company.rep_a,
                                 **_profile(company.rep_a, **changes))

    assert refusal(err) == expected
    assert not AuditLog.objects.filter(action="employee.update").exists()


def test_a_former_employee_cannot_be_edited(company):
    admin = user_of(company.admin)
    services.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 6, 30))

    with pytest.raises(InvalidTransition) as err:
        services.update_employee(actor=admin, employee=company.rep_a2,
                                 **_profile(company.rep_a2, status="active"))

    assert refusal(err) == (
        "invalid_transition",
        "赵销售 has left the company; the record of a former employee stays as it was.", None)
    assert Employee.objects.get(pk=company.rep_a2.pk).status == "left"


def test_changing_a_leader_emits_the_change(company):
    services.change_leader(actor=user_of(company.admin), employee=company.rep_a,
                           leader=company.director)

    assert event("employee.leader_changed", company.rep_a).data == {
        "from_leader": company.manager_a.pk, "to_leader": company.director.pk}


def test_a_leader_change_to_the_same_leader_is_refused(company):
    with pytest.raises(Conflict) as err:
        services.change_leader(actor=user_of(company.admin), employee=company.rep_a,
                               leader=company.manager_a)

    assert refusal(err) == ("conflict", "李销售 already reports to 王经理; pick another leader.",
                            "leader")


def test_removing_the_leader_of_someone_without_one_is_refused(company):
    with pytest.raises(Conflict) as err:
        services.change_leader(actor=user_of(company.admin), employee=company.manager_b,
                               leader=None)

    assert refusal(err) == (
        "conflict", "孙经理 has no direct leader already; pick a leader to set one.", "leader")


def test_a_former_employee_cannot_become_a_leader(company):
    admin = user_of(company.admin)
    services.mark_left(actor=admin, employee=company.manager_b, leave_date=dt.date(2026, 6, 30))

    with pytest.raises(ValidationFailed) as err:
        services.change_leader(actor=admin, employee=company.rep_a,
                               leader=Employee.objects.get(pk=company.manager_b.pk))

    assert refusal(err) == (
        "invalid", "孙经理 has left the company; pick a current employee as the direct leader.",
        "leader")


def test_transferring_an_employee_emits_the_transfer(company):
    services.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                               department=company.team_b)

    assert Employee.objects.get(pk=company.rep_a.pk).department_id == company.team_b.pk
    assert event("employee.transferred", company.rep_a).data == {
        "from_department": company.team_a.pk, "to_department": company.team_b.pk,
        "on": timezone.localdate().isoformat()}
    assert audit_row("employee.transfer", company.rep_a).before == {
        "department": company.team_a.pk}


def test_a_transfer_to_the_same_department_is_refused(company):
    with pytest.raises(Conflict) as err:
        services.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                                   department=company.team_a)

    assert refusal(err) == ("conflict", "李销售 is already in 上海一组; pick another department.",
                            "department")
    assert not DomainEvent.objects.filter(name="employee.transferred").exists()


def test_a_transfer_to_a_closed_department_is_refused(company):
    Department.objects.filter(pk=company.team_b.pk).update(is_active=False)

    with pytest.raises(ValidationFailed) as err:
        services.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                                   department=company.team_b)

    assert refusal(err) == ("invalid", "北京一组 is closed; pick an active department.",
                            "department")
    assert Employee.objects.get(pk=company.rep_a.pk).department_id == company.team_a.pk


def test_marking_left_writes_audit_event_and_switches_off_the_login(company):
    services.mark_left(actor=user_of(company.admin), employee=company.rep_a2,
                       leave_date=dt.date(2026, 11, 30))

    rep = Employee.objects.get(pk=company.rep_a2.pk)
    assert (rep.status, rep.leave_date) == ("left", dt.date(2026, 11, 30))
    assert not user_of(company.rep_a2).is_active
    after = audit_row("employee.leave", rep).after
    assert (after["status"], after["leave_date"]) == ("left", "2026-11-30")
    assert event("employee.left", rep).data["leave_date"] == "2026-11-30"


def test_leaving_twice_is_refused(company):
    admin = user_of(company.admin)
    services.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 11, 30))

    with pytest.raises(InvalidTransition) as err:
        services.mark_left(actor=admin, employee=company.rep_a2, leave_date=dt.date(2026, 12, 1))

    assert refusal(err) == (
        "invalid_transition",
        "赵销售 already left on 2026-11-30; a departure is recorded only once.", None)
    assert Employee.objects.get(pk=company.rep_a2.pk).leave_date == dt.date(2026, 11, 30)
    assert DomainEvent.objects.filter(name="employee.left").count() == 1


def test_a_leave_date_before_the_hire_date_is_refused(company):
    with pytest.raises(ValidationFailed) as err:
        services.mark_left(actor=user_of(company.admin), employee=company.rep_a2,
                           leave_date=dt.date(2023, 12, 31))

    assert refusal(err) == (
        "invalid", "The leave date 2023-12-31 is before the hire date 2024-01-01; enter a date "
        "on or after the hire date.", "leave_date")
    assert Employee.objects.get(pk=company.rep_a2.pk).status == "active"
    assert user_of(company.rep_a2).is_active


def test_a_manager_may_not_record_a_departure(company):
    with pytest.raises(PermissionDenied):
        services.mark_left(actor=user_of(company.manager_a), employee=company.rep_a2,
                           leave_date=dt.date(2026, 11, 30))

    assert Employee.objects.get(pk=company.rep_a2.pk).status == "active"
