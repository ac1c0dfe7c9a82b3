"""Changes to the organisation: departments, employees, roles and logins.

Every change writes an audit row and emits a domain event in the same transaction. The tree
paths (departments and the reporting line) are rewritten with weiying.core.tree: a move is one
UPDATE over a range of the path column, never a walk over the rows in Python.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, events, tree
from weiying.core.errors import Conflict, InvalidTransition, ValidationFailed
from weiying.core.masking import normalise_phone
from weiying.core.permissions import require
from weiying.org import history
from weiying.org.choices import DepartmentKind, EmployeeStatus, EmploymentType
from weiying.org.models import Company, Department, Employee, Role

DEPARTMENT_FIELDS = ["name", "kind", "city", "region", "manager"]
EMPLOYEE_FIELDS = ["name", "position", "level", "role", "phone", "email", "city", "hire_date",
                   "status", "employment_type", "payroll_number"]
# The statuses update_employee may set; "left" is recorded by mark_left only.
CURRENT_STATUSES = (EmployeeStatus.ACTIVE, EmployeeStatus.PROBATION)


def _placeholder() -> str:
    return "~" + uuid.uuid4().hex


def get_company() -> Company:
    company = Company.objects.order_by("pk").first()
    if company is None:
        company = Company.objects.create(name="Weiying")
    return company


# --- checks shared by the services ----------------------------------------------------------
def _clean_text(raw: str | None) -> str:
    return (raw or "").strip()


def _clean_department_name(raw: str | None) -> str:
    name = _clean_text(raw)
    if not name:
        raise ValidationFailed(_("A department needs a name."), field="name")
    return name


def _clean_kind(kind: str) -> str:
    if kind not in DepartmentKind.values:
        raise ValidationFailed(
            _("%(value)s is not a valid choice here; pick one of: %(choices)s.")
            % {"value": kind, "choices": ", ".join(DepartmentKind.values)},
            field="kind",
        )
    return kind


def _clean_phone(raw: str | None) -> str:
    phone = normalise_phone(raw)
    if raw and raw.strip() and not phone:
        raise ValidationFailed(_("A phone number needs digits."), field="phone")
    if phone and not 7 <= len(phone) <= 20:
        raise ValidationFailed(
            _("A phone number has 7 to 20 digits (a mobile has 11); check the number."),
            field="phone",
        )
    return phone


def _clean_email(raw: str | None) -> str:
    email = _clean_text(raw)
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed(
                _("%(email)s is not an email address; check it or leave it empty.")
                % {"email": email},
                field="email",
            ) from None
    return email


def _clean_employment_type(raw: str) -> str:
    if raw not in EmploymentType.values:
        raise ValidationFailed(
            _("%(value)s is not a valid choice here; pick one of: %(choices)s.")
            % {"value": raw, "choices": ", ".join(EmploymentType.values)},
            field="employment_type",
        )
    return raw


def _clean_payroll_number(raw: str | None, employee_id: int | None) -> str:
    """A payroll number (工资号) is optional, and unique when given."""
    number = _clean_text(raw)
    if len(number) > 32:
        raise ValidationFailed(_("A payroll number has 32 characters at most."),
                               field="payroll_number")
    if number:
        holder = Employee.objects.filter(payroll_number=number).exclude(pk=employee_id).first()
        if holder is not None:
            raise Conflict(
                _("Payroll number %(payroll)s already belongs to %(name)s (%(number)s); "
                  "check the number.")
                % {"payroll": number, "name": holder.name, "number": holder.number},
                field="payroll_number",
            )
    return number


def _check_open_department(department: Department, field: str = "department") -> None:
    if not department.is_active:
        raise ValidationFailed(
            _("%(department)s is closed; pick an active department.")
            % {"department": department.name},
            field=field,
        )


def _check_manager(manager: Employee | None) -> None:
    if manager is not None and not manager.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick a current employee as the head.")
            % {"name": manager.name},
            field="manager",
        )


def _check_leader(employee_id: int | None, leader: Employee | None) -> None:
    if leader is None:
        return
    if employee_id is not None and leader.pk == employee_id:
        raise ValidationFailed(_("An employee cannot be their own leader."), field="leader")
    if not leader.is_active:
        raise ValidationFailed(
            _("%(name)s has left the company; pick a current employee as the direct leader.")
            % {"name": leader.name},
            field="leader",
        )


def _check_current(employee: Employee) -> None:
    if not employee.is_active:
        raise InvalidTransition(
            _("%(name)s has left the company; the record of a former employee stays as it "
              "was.") % {"name": employee.name},
        )


# --- departments ----------------------------------------------------------------------------
@transaction.atomic
def create_department(
    *, actor: Any, name: str, parent: Department | None = None, kind: str = "team",
    city: str = "", region: str = "", check: bool = True, wecom_id: str = "",
) -> Department:
    """A new department under `parent` (a root when None). `check=False` is the system's
    path (the WeCom directory sync, fixtures): no permission check, same audit and event."""
    if check:
        require(actor, "org.manage")
    name = _clean_department_name(name)
    _clean_kind(kind)
    if parent is not None:
        _check_open_department(parent, "parent")
    department = Department.objects.create(
        company=parent.company if parent else get_company(), parent=parent, name=name,
        kind=kind, city=_clean_text(city), region=_clean_text(region), path=_placeholder(),
        wecom_id=_clean_text(wecom_id),
    )
    department.path = tree.child_path(parent.path if parent else "", department.pk)
    department.depth = tree.depth(department.path)
    department.save(update_fields=["path", "depth"])
    audit.record(actor, "department.create", department, after=audit.snapshot(department))
    events.emit("department.created", department, actor=actor,
                parent=parent.pk if parent else None)
    return department


@transaction.atomic
def update_department(
    *, actor: Any, department: Department, name: str, kind: str, city: str, region: str,
    manager: Employee | None, check: bool = True,
) -> Department:
    """Change a department's own fields. Its place in the tree changes with move_department."""
    if check:
        require(actor, "org.manage")
    department = Department.objects.select_for_update().get(pk=department.pk)
    clean = {
        "name": _clean_department_name(name), "kind": _clean_kind(kind),
        "city": _clean_text(city), "region": _clean_text(region), "manager": manager,
    }
    _check_manager(manager)
    before = audit.snapshot(department, DEPARTMENT_FIELDS)
    for field, value in clean.items():
        setattr(department, field, value)
    after = audit.snapshot(department, DEPARTMENT_FIELDS)
    changed = audit.changes(before, after)
    if not changed:
        return department
    department.save(update_fields=DEPARTMENT_FIELDS)
    audit.record(actor, "department.update", department, before=before, after=after)
    events.emit("department.updated", department, actor=actor, changes=changed)
    return department


@transaction.atomic
def move_department(*, actor: Any, department: Department, parent: Department,
                    check: bool = True) -> Department:
    """Put a department (and everything below it) under another parent department."""
    if check:
        require(actor, "org.manage")
    department.refresh_from_db()
    parent.refresh_from_db()
    if parent.path.startswith(department.path):
        raise ValidationFailed(
            _("A department cannot move under itself or one of its own sub-departments."),
            field="parent",
        )
    if department.parent_id == parent.pk:
        raise Conflict(
            _("%(name)s is already directly under %(parent)s; pick another parent department.")
            % {"name": department.name, "parent": parent.name},
            field="parent",
        )
    _check_open_department(parent, "parent")
    old_parent = department.parent_id
    old_path = department.path
    new_path = tree.child_path(parent.path, department.pk)
    tree.move_subtree(Department.objects.all(), "path", old_path, new_path)
    tree.move_subtree(Employee.objects.all(), "department_path", old_path, new_path)
    shift = tree.depth(new_path) - tree.depth(old_path)
    if shift:
        Department.objects.filter(tree.subtree_q("path", new_path)).update(
            depth=F("depth") + shift
        )
    Department.objects.filter(pk=department.pk).update(parent=parent)
    audit.record(
        actor, "department.move", department,
        before={"parent": old_parent}, after={"parent": parent.pk},
    )
    events.emit("department.moved", department, actor=actor, from_parent=old_parent,
                to_parent=parent.pk, from_path=old_path, to_path=new_path)
    department.refresh_from_db()
    return department


@transaction.atomic
def close_department(*, actor: Any, department: Department, check: bool = True) -> Department:
    """Close a department that no longer exists (WeCom deleted it). Only an empty one: its
    people and sub-departments must move first. Closing a closed one changes nothing."""
    if check:
        require(actor, "org.manage")
    department = Department.objects.select_for_update().get(pk=department.pk)
    if not department.is_active:
        return department
    if department.employees.exclude(status=EmployeeStatus.LEFT).exists() or \
            department.children.filter(is_active=True).exists():
        raise Conflict(
            _("%(name)s still has people or open sub-departments; move them before closing "
              "it.") % {"name": department.name},
            code="department_not_empty",
        )
    department.is_active = False
    department.save(update_fields=["is_active"])
    audit.record(actor, "department.close", department, before={"is_active": True},
                 after={"is_active": False})
    events.emit("department.updated", department, actor=actor,
                changes={"is_active": [True, False]})
    return department


# --- employees ------------------------------------------------------------------------------
@transaction.atomic
def create_employee(
    *, actor: Any, number: str, name: str, department: Department,
    leader: Employee | None = None, role: Role | None = None, position: str = "",
    level: str = "", hire_date: dt.date | None = None, phone: str = "", email: str = "",
    city: str = "", check: bool = True, wecom_userid: str = "",
    employment_type: str = EmploymentType.FULL_TIME, payroll_number: str = "",
    status: str = EmployeeStatus.ACTIVE,
) -> Employee:
    if check:
        require(actor, "org.manage")
    number = _clean_text(number)
    name = _clean_text(name)
    if not number:
        raise ValidationFailed(_("An employee needs an employee number."), field="number")
    if not name:
        raise ValidationFailed(_("An employee needs a name."), field="name")
    if Employee.objects.filter(number=number).exists():
        raise Conflict(
            _("Employee number %(number)s is already used; pick another.") % {"number": number},
            field="number",
        )
    if status not in CURRENT_STATUSES:
        raise ValidationFailed(
            _("%(value)s is not a valid choice here; pick one of: %(choices)s.")
            % {"value": status, "choices": ", ".join(CURRENT_STATUSES)},
            field="status",
        )
    _check_open_department(department)
    _check_leader(None, leader)
    employee = Employee.objects.create(
        number=number, name=name, department=department, leader=leader, role=role,
        position=_clean_text(position), level=_clean_text(level), hire_date=hire_date,
        phone=_clean_phone(phone), email=_clean_email(email), city=_clean_text(city),
        path=_placeholder(), department_path=department.path,
        wecom_userid=_clean_text(wecom_userid), status=status,
        employment_type=_clean_employment_type(employment_type),
        payroll_number=_clean_payroll_number(payroll_number, None),
    )
    employee.path = tree.child_path(leader.path if leader else "", employee.pk)
    employee.save(update_fields=["path"])
    history.open_first(employee)
    audit.record(actor, "employee.create", employee, after=audit.snapshot(employee))
    events.emit("employee.created", employee, actor=actor, department=department.pk,
                leader=leader.pk if leader else None)
    return employee


@transaction.atomic
def update_employee(
    *, actor: Any, employee: Employee, name: str, position: str, level: str,
    role: Role | None, phone: str, email: str, city: str, hire_date: dt.date | None,
    status: str, check: bool = True, employment_type: str | None = None,
    payroll_number: str | None = None,
) -> Employee:
    """Change an employee's profile and role. The department changes with transfer_employee,
    the direct leader with change_leader, a departure with mark_left. A new position or level
    is recorded in the HR history from today (promote_employee takes an effective date).
    `employment_type` and `payroll_number` left as None stay as they are."""
    if check:
        require(actor, "org.manage")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    _check_current(employee)
    name = _clean_text(name)
    if not name:
        raise ValidationFailed(_("An employee needs a name."), field="name")
    if status not in CURRENT_STATUSES:
        raise ValidationFailed(
            _("%(value)s is not a valid choice here; pick one of: %(choices)s.")
            % {"value": status, "choices": ", ".join(CURRENT_STATUSES)},
            field="status",
        )
    clean = {
        "name": name, "position": _clean_text(position), "level": _clean_text(level),
        "role": role, "phone": _clean_phone(phone), "email": _clean_email(email),
        "city": _clean_text(city), "hire_date": hire_date, "status": status,
        "employment_type": employee.employment_type if employment_type is None
        else _clean_employment_type(employment_type),
        "payroll_number": employee.payroll_number if payroll_number is None
        else _clean_payroll_number(payroll_number, employee.pk),
    }
    if (clean["position"], clean["level"]) != (employee.position, employee.level):
        # Limitation: when a change dated ahead (a transfer from next month) already opened
        # the current stretch, the new position is recorded from that day, not from today.
        current = history.current(employee)
        on = timezone.localdate()
        if current is not None and current.starts_on > on:
            on = current.starts_on
        history.split(employee, on=on, reason="update", position=clean["position"],
                      level=clean["level"])
    before = audit.snapshot(employee, EMPLOYEE_FIELDS)
    for field, value in clean.items():
        setattr(employee, field, value)
    after = audit.snapshot(employee, EMPLOYEE_FIELDS)
    changed = audit.changes(before, after)
    if not changed:
        return employee
    employee.save(update_fields=EMPLOYEE_FIELDS)
    audit.record(actor, "employee.update", employee, before=before, after=after)
    # The event names the changed fields only: a subscriber has no business with the phone.
    events.emit("employee.updated", employee, actor=actor, fields=sorted(changed))
    return employee


@transaction.atomic
def set_wecom_userid(*, actor: Any, employee: Employee, wecom_userid: str,
                     check: bool = True) -> Employee:
    """Tie an employee to their WeCom account (or change the tie: WeCom lets an admin rename
    a user id once). Another employee's id is refused."""
    if check:
        require(actor, "org.manage")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    wecom_userid = _clean_text(wecom_userid)
    if employee.wecom_userid == wecom_userid:
        return employee
    if wecom_userid and Employee.objects.filter(wecom_userid=wecom_userid).exclude(
            pk=employee.pk).exists():
        raise Conflict(
            _("WeCom user id %(userid)s already belongs to another employee; untie it there "
              "first.") % {"userid": wecom_userid},
            field="wecom_userid",
        )
    before = {"wecom_userid": employee.wecom_userid}
    employee.wecom_userid = wecom_userid
    employee.save(update_fields=["wecom_userid"])
    audit.record(actor, "employee.wecom_userid", employee, before=before,
                 after={"wecom_userid": wecom_userid})
    events.emit("employee.updated", employee, actor=actor, fields=["wecom_userid"])
    return employee


@transaction.atomic
def change_leader(*, actor: Any, employee: Employee, leader: Employee | None,
                  check: bool = True) -> Employee:
    """Move an employee (and everyone reporting to them) under a new direct leader."""
    if check:
        require(actor, "org.manage")
    employee.refresh_from_db()
    _check_leader(employee.pk, leader)
    if leader is not None and leader.path.startswith(employee.path):
        raise ValidationFailed(
            _("%(leader)s reports to %(name)s; a reporting line cannot loop.")
            % {"leader": leader.name, "name": employee.name},
            field="leader",
        )
    if employee.leader_id == (leader.pk if leader else None):
        if leader is None:
            message = _("%(name)s has no direct leader already; pick a leader to set one.") % {
                "name": employee.name}
        else:
            message = _("%(name)s already reports to %(leader)s; pick another leader.") % {
                "name": employee.name, "leader": leader.name}
        raise Conflict(message, field="leader")
    before = {"leader": employee.leader_id}
    new_path = tree.child_path(leader.path if leader else "", employee.pk)
    tree.move_subtree(Employee.objects.all(), "path", employee.path, new_path)
    Employee.objects.filter(pk=employee.pk).update(leader=leader)
    after = {"leader": leader.pk if leader else None}
    audit.record(actor, "employee.change_leader", employee, before=before, after=after)
    events.emit("employee.leader_changed", employee, actor=actor, from_leader=before["leader"],
                to_leader=after["leader"])
    employee.refresh_from_db()
    return employee


@transaction.atomic
def transfer_employee(*, actor: Any, employee: Employee, department: Department,
                      on: dt.date | None = None, check: bool = True) -> Employee:
    """Move an employee to another department from `on` (default today); the records they own
    move with them, while the HR history (weiying.org.history) keeps the days before `on` in
    the old department, so the facts of those days stay there."""
    from django.utils import timezone

    from weiying.core.scope import follow_owner

    if check:
        require(actor, "org.manage")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    department.refresh_from_db()
    _check_current(employee)
    if department.pk == employee.department_id:
        raise Conflict(
            _("%(name)s is already in %(department)s; pick another department.")
            % {"name": employee.name, "department": department.name},
            field="department",
        )
    _check_open_department(department)
    on = on or timezone.localdate()
    history.split(employee, on=on, reason="transfer", department=department)
    before = {"department": employee.department_id}
    employee.department = department
    employee.department_path = department.path
    employee.save(update_fields=["department", "department_path"])
    moved = follow_owner(employee, department)
    audit.record(actor, "employee.transfer", employee, before=before,
                 after={"department": department.pk, "records_moved": moved,
                        "on": on.isoformat()})
    events.emit("employee.transferred", employee, actor=actor,
                from_department=before["department"], to_department=department.pk,
                on=on.isoformat())
    return employee


@transaction.atomic
def promote_employee(*, actor: Any, employee: Employee, position: str, level: str,
                     on: dt.date | None = None, check: bool = True) -> Employee:
    """Give an employee a new position and/or level from `on` (default today): the HR history
    keeps the days before `on` at the old ones. (A demotion is recorded the same way.)"""
    if check:
        require(actor, "org.manage")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    _check_current(employee)
    position, level = _clean_text(position), _clean_text(level)
    if (position, level) == (employee.position, employee.level):
        raise Conflict(
            _("%(name)s already holds the position %(position)s at level %(level)s; change the "
              "position or the level.")
            % {"name": employee.name, "position": position or "—", "level": level or "—"},
            code="no_change",
        )
    on = on or timezone.localdate()
    history.split(employee, on=on, reason="promotion", position=position, level=level)
    before = {"position": employee.position, "level": employee.level}
    employee.position, employee.level = position, level
    employee.save(update_fields=["position", "level"])
    after = {"position": position, "level": level, "on": on.isoformat()}
    audit.record(actor, "employee.promote", employee, before=before, after=after)
    events.emit("employee.promoted", employee, actor=actor, from_position=before["position"],
                from_level=before["level"], to_position=position, to_level=level,
                on=on.isoformat())
    return employee


@transaction.atomic
def mark_left(*, actor: Any, employee: Employee, leave_date: dt.date,
              successor: Employee | None = None, check: bool = True) -> Employee:
    """Record a departure. With a `successor` (a current colleague), the "employee.left"
    event names them and the subscribers hand the leaver's customers, open opportunities,
    open leads and WeCom contacts over to them; without one the records stay the leaver's
    until a hand-over reassigns them."""
    if check:
        require(actor, "org.manage")
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    if not employee.is_active:
        raise InvalidTransition(
            _("%(name)s already left on %(date)s; a departure is recorded only once.")
            % {"name": employee.name,
               "date": employee.leave_date.isoformat() if employee.leave_date else "?"},
        )
    if employee.hire_date and leave_date < employee.hire_date:
        raise ValidationFailed(
            _("The leave date %(leave)s is before the hire date %(hire)s; enter a date on or "
              "after the hire date.")
            % {"leave": leave_date.isoformat(), "hire": employee.hire_date.isoformat()},
            field="leave_date",
        )
    if successor is not None:
        successor = Employee.objects.get(pk=successor.pk)
        if successor.pk == employee.pk:
            raise ValidationFailed(
                _("A leaver cannot be their own successor; pick a colleague who stays."),
                field="successor",
            )
        if not successor.is_active:
            raise ValidationFailed(
                _("%(name)s has left the company; pick a current employee as the successor.")
                % {"name": successor.name},
                field="successor",
            )
    before = audit.snapshot(employee, ["status", "leave_date"])
    employee.status = EmployeeStatus.LEFT
    employee.leave_date = leave_date
    employee.save(update_fields=["status", "leave_date"])
    if employee.user_id:
        get_user_model().objects.filter(pk=employee.user_id).update(is_active=False)
    after = audit.snapshot(employee, ["status", "leave_date"]) or {}
    after["successor"] = successor.pk if successor else None
    audit.record(actor, "employee.leave", employee, before=before, after=after)
    events.emit("employee.left", employee, actor=actor, leave_date=leave_date,
                successor_id=successor.pk if successor else None)
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
