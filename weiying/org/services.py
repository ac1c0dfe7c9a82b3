"""Changes to the organisation: departments, employees, roles and logins."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from weiying.core import audit, tree
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.permissions import require
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Company, Department, Employee, Role


def _placeholder() -> str:
    return "~" + uuid.uuid4().hex


def get_company() -> Company:
    company = Company.objects.order_by("pk").first()
    if company is None:
        company = Company.objects.create(name="Weiying")
    return company


@transaction.atomic
def create_department(
    *, actor: Any, name: str, parent: Department | None = None, kind: str = "team",
    city: str = "", region: str = "", check: bool = True,
) -> Department:
    if check:
        require(actor, "org.manage")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("A department needs a name."), field="name")
    department = Department.objects.create(
        company=parent.company if parent else get_company(), parent=parent, name=name,
        kind=kind, city=city, region=region, path=_placeholder(),
    )
    department.path = tree.child_path(parent.path if parent else "", department.pk)
    department.depth = tree.depth(department.path)
    department.save(update_fields=["path", "depth"])
    audit.record(actor, "department.create", department, after=audit.snapshot(department))
    return department


@transaction.atomic
def move_department(*, actor: Any, department: Department, parent: Department) -> Department:
    require(actor, "org.manage")
    department.refresh_from_db()
    parent.refresh_from_db()
    if parent.path.startswith(department.path):
        raise ValidationFailed(
            _("A department cannot move under itself or one of its own sub-departments."),
            field="parent",
        )
    old_path = department.path
    new_path = tree.child_path(parent.path, department.pk)
    tree.move_subtree(Department.objects.all(), "path", old_path, new_path)
    shift = tree.depth(new_path) - tree.depth(old_path)
    if shift:
        from django.db.models import F

        Department.objects.filter(tree.subtree_q("path", new_path)).update(
            depth=F("depth") + shift
        )
    Department.objects.filter(pk=department.pk).update(parent=parent)
    audit.record(
        actor, "department.move", department,
        before={"parent": department.parent_id}, after={"parent": parent.pk},
    )
    department.refresh_from_db()
    return department


def _check_leader(employee_id: int | None, leader: Employee | None) -> None:
    if leader is None:
        return
    if employee_id is not None and leader.pk == employee_id:
        raise ValidationFailed(_("An employee cannot be their own leader."), field="leader")


@transaction.atomic
def create_employee(
    *, actor: Any, number: str, name: str, department: Department,
    leader: Employee | None = None, role: Role | None = None, position: str = "",
    level: str = "", hire_date: dt.date | None = None, phone: str = "", email: str = "",
    city: str = "", check: bool = True,
) -> Employee:
    if check:
        require(actor, "org.manage")
    number = (number or "").strip()
    name = (name or "").strip()
    if not number:
        raise ValidationFailed(_("An employee needs an employee number."), field="number")
    if not name:
        raise ValidationFailed(_("An employee needs a name."), field="name")
    if Employee.objects.filter(number=number).exists():
        raise Conflict(
            _("Employee number %(number)s is already used; pick another.") % {"number": number},
            field="number",
        )
    employee = Employee.objects.create(
        number=number, name=name, department=department, leader=leader, role=role,
        position=position, level=level, hire_date=hire_date, phone=phone, email=email,
        city=city, path=_placeholder(),
    )
    employee.path = tree.child_path(leader.path if leader else "", employee.pk)
    employee.save(update_fields=["path"])
    audit.record(actor, "employee.create", employee, after=audit.snapshot(employee))
    return employee


@transaction.atomic
def change_leader(*, actor: Any, employee: Employee, leader: Employee | None) -> Employee:
    """Move an employee (and everyone reporting to them) under a new direct leader."""
    require(actor, "org.manage")
    employee.refresh_from_db()
    _check_leader(employee.pk, leader)
    if leader is not None and leader.path.startswith(employee.path):
        raise ValidationFailed(
            _("%(leader)s reports to %(name)s; a reporting line cannot loop.")
            % {"leader": leader.name, "name": employee.name},
            field="leader",
        )
    before = {"leader": employee.leader_id}
    new_path = tree.child_path(leader.path if leader else "", employee.pk)
    tree.move_subtree(Employee.objects.all(), "path", employee.path, new_path)
    Employee.objects.filter(pk=employee.pk).update(leader=leader)
    audit.record(actor, "employee.change_leader", employee, before=before,
                 after={"leader": leader.pk if leader else None})
    employee.refresh_from_db()
    return employee


@transaction.atomic
def transfer_employee(*, actor: Any, employee: Employee, department: Department) -> Employee:
    require(actor, "org.manage")
    before = {"department": employee.department_id}
    employee.department = department
    employee.save(update_fields=["department"])
    audit.record(actor, "employee.transfer", employee, before=before,
                 after={"department": department.pk})
    return employee


@transaction.atomic
def mark_left(*, actor: Any, employee: Employee, leave_date: dt.date) -> Employee:
    """Record a departure. Their records stay theirs until a hand-over reassigns them."""
    require(actor, "org.manage")
    before = audit.snapshot(employee, ["status", "leave_date"])
    employee.status = EmployeeStatus.LEFT
    employee.leave_date = leave_date
    employee.save(update_fields=["status", "leave_date"])
    if employee.user_id:
        get_user_model().objects.filter(pk=employee.user_id).update(is_active=False)
    audit.record(actor, "employee.leave", employee, before=before,
                 after=audit.snapshot(employee, ["status", "leave_date"]))
    return employee


@transaction.atomic
def give_login(
    *, actor: Any, employee: Employee, username: str, password: str, check: bool = True
) -> Any:
    if check:
        require(actor, "org.manage")
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise Conflict(_("The login name %(u)s is taken.") % {"u": username}, field="username")
    user = User.objects.create_user(username=username, password=password,
                                    first_name=employee.name[:150])
    employee.user = user
    employee.save(update_fields=["user"])
    audit.record(actor, "employee.give_login", employee, after={"username": username})
    return user


def ensure_builtin_roles() -> dict[str, Role]:
    from weiying.core.permissions import BUILTIN_ROLES

    roles = {}
    for spec in BUILTIN_ROLES:
        role, _created = Role.objects.update_or_create(
            code=spec["code"],
            defaults={"name": spec["name"], "data_scope": spec["data_scope"],
                      "permissions": list(spec["permissions"]), "is_builtin": True},
        )
        roles[role.code] = role
    return roles
