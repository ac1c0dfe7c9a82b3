"""Org API: who am I, departments, employees (the HR roster), roles and API tokens."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from weiying.api.models import ApiToken
from weiying.api.tokens import issue_token, revoke_token
from weiying.core.errors import NotFound, ValidationFailed
from weiying.core.pagination import keyset_page
from weiying.core.permissions import PERMISSIONS, employee_of, has_perm, require
from weiying.core.scope import data_scope_of
from weiying.org import services
from weiying.org.models import Department, Employee, Role
from weiying.org.selectors import visible_departments, visible_employees

router = Router(tags=["org"])


class MeOut(Schema):
    username: str
    employee_id: int | None
    name: str | None
    department: str | None
    role: str | None
    data_scope: str
    permissions: list[str]


class DepartmentOut(Schema):
    id: int
    name: str
    kind: str
    parent_id: int | None
    depth: int
    city: str
    region: str
    manager_id: int | None
    is_active: bool


class DepartmentIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    parent_id: int | None = None
    kind: str = "team"
    city: str = ""
    region: str = ""


class DepartmentPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=128)
    kind: str | None = None
    city: str | None = Field(None, max_length=64)
    region: str | None = Field(None, max_length=64)
    manager_id: int | None = None


class MoveIn(Schema):
    parent_id: int


class EmployeeOut(Schema):
    id: int
    number: str
    name: str
    department_id: int
    position: str
    level: str
    leader_id: int | None
    hire_date: dt.date | None
    status: str
    leave_date: dt.date | None
    role: str | None = None

    @staticmethod
    def resolve_role(obj: Employee) -> str | None:
        return obj.role.code if obj.role_id else None


class EmployeeIn(Schema):
    number: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=64)
    department_id: int
    leader_id: int | None = None
    role: str | None = None
    position: str = ""
    level: str = ""
    hire_date: dt.date | None = None


class EmployeePatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=64)
    position: str | None = Field(None, max_length=64)
    level: str | None = Field(None, max_length=16)
    role: str | None = None
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    city: str | None = Field(None, max_length=64)
    hire_date: dt.date | None = None
    status: str | None = None


class TransferIn(Schema):
    department_id: int


class LeaderIn(Schema):
    leader_id: int | None


class LeaveIn(Schema):
    leave_date: dt.date


class EmployeePage(Schema):
    items: list[EmployeeOut]
    next_cursor: str | None


class RoleOut(Schema):
    code: str
    name: str
    data_scope: str
    permissions: list[str]


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=64)
    role: str
    username: str | None = None
    expires_at: dt.datetime | None = None


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    role: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @staticmethod
    def resolve_role(obj: ApiToken) -> str:
        return obj.role.code


class TokenIssued(TokenOut):
    token: str


@router.get("/me", response=MeOut)
def me(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    employee = employee_of(user)
    return {
        "username": user.get_username(),
        "employee_id": employee.pk if employee else None,
        "name": employee.name if employee else None,
        "department": employee.department.name if employee else None,
        "role": employee.role.code if employee and employee.role_id else None,
        "data_scope": data_scope_of(user),
        "permissions": [code for code in PERMISSIONS if has_perm(user, code)],
    }


@router.get("/departments", response=list[DepartmentOut])
def list_departments(request: HttpRequest) -> Any:
    return visible_departments(request.user).order_by("path")[:5000]


@router.post("/departments", response={201: DepartmentOut})
def create_department(request: HttpRequest, payload: DepartmentIn) -> Any:
    parent = None
    if payload.parent_id is not None:
        parent = visible_departments(request.user).filter(pk=payload.parent_id).first()
        if parent is None:
            raise ValidationFailed(_("The parent department does not exist."), field="parent_id")
    return 201, services.create_department(
        actor=request.user, name=payload.name, parent=parent, kind=payload.kind,
        city=payload.city, region=payload.region,
    )


def _department(request: HttpRequest, department_id: int) -> Department:
    """A department the caller may see; any other is not found."""
    department = visible_departments(request.user).filter(pk=department_id).first()
    if department is None:
        raise NotFound()
    return department


def _employee(request: HttpRequest, employee_id: int) -> Employee:
    """An employee the caller may see; anyone else is not found."""
    employee = visible_employees(request.user).select_related("role").filter(
        pk=employee_id).first()
    if employee is None:
        raise NotFound()
    return employee


def _role(code: str | None) -> Role | None:
    if not code:
        return None
    role = Role.objects.filter(code=code).first()
    if role is None:
        raise ValidationFailed(
            _("Unknown role %(role)s; see GET /api/org/roles.") % {"role": code}, field="role",
        )
    return role


@router.patch("/departments/{department_id}", response=DepartmentOut,
              summary="Change a department")
def update_department(request: HttpRequest, department_id: int,
                      payload: DepartmentPatch) -> Any:
    department = _department(request, department_id)
    require(request.user, "org.manage")
    fields = payload.dict(exclude_unset=True)
    values = {f: getattr(department, f) for f in services.DEPARTMENT_FIELDS}
    if "manager_id" in fields:
        manager_id = fields.pop("manager_id")
        values["manager"] = None
        if manager_id is not None:
            values["manager"] = visible_employees(request.user).filter(pk=manager_id).first()
            if values["manager"] is None:
                raise ValidationFailed(_("The department head does not exist."),
                                       field="manager_id")
    values.update(fields)
    return services.update_department(actor=request.user, department=department, **values)


@router.post("/departments/{department_id}/move", response=DepartmentOut,
             summary="Move a department under another parent")
def move_department(request: HttpRequest, department_id: int, payload: MoveIn) -> Any:
    department = _department(request, department_id)
    require(request.user, "org.manage")
    parent = visible_departments(request.user).filter(pk=payload.parent_id).first()
    if parent is None:
        raise ValidationFailed(_("The parent department does not exist."), field="parent_id")
    return services.move_department(actor=request.user, department=department, parent=parent)


@router.get("/employees", response=EmployeePage)
def list_employees(
    request: HttpRequest, q: str = "", department_id: int | None = None,
    cursor: str | None = None, size: int = 50,
) -> Any:
    qs = visible_employees(request.user).select_related("role")
    if q:
        qs = qs.filter(name__contains=q) | qs.filter(number=q)
    if department_id is not None:
        qs = qs.filter(department_id=department_id)
    page = keyset_page(qs, ["id"], cursor=cursor, size=size)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/employees/{employee_id}", response=EmployeeOut)
def get_employee(request: HttpRequest, employee_id: int) -> Any:
    return _employee(request, employee_id)


@router.post("/employees", response={201: EmployeeOut})
def create_employee(request: HttpRequest, payload: EmployeeIn) -> Any:
    require(request.user, "org.manage")
    department = visible_departments(request.user).filter(pk=payload.department_id).first()
    if department is None:
        raise ValidationFailed(_("The department does not exist."), field="department_id")
    leader = None
    if payload.leader_id is not None:
        leader = visible_employees(request.user).filter(pk=payload.leader_id).first()
        if leader is None:
            raise ValidationFailed(_("The direct leader does not exist."), field="leader_id")
    role = None
    if payload.role:
        role = Role.objects.filter(code=payload.role).first()
        if role is None:
            raise ValidationFailed(
                _("Unknown role %(role)s; see GET /api/org/roles.") % {"role": payload.role},
                field="role",
            )
    return 201, services.create_employee(
        actor=request.user, number=payload.number, name=payload.name, department=department,
        leader=leader, role=role, position=payload.position, level=payload.level,
        hire_date=payload.hire_date,
    )


@router.patch("/employees/{employee_id}", response=EmployeeOut,
              summary="Change an employee's profile and role")
def update_employee(request: HttpRequest, employee_id: int, payload: EmployeePatch) -> Any:
    employee = _employee(request, employee_id)
    require(request.user, "org.manage")
    fields = payload.dict(exclude_unset=True)
    values = {f: getattr(employee, f) for f in services.EMPLOYEE_FIELDS}
    if "role" in fields:
        values["role"] = _role(fields.pop("role"))
    values.update(fields)
    return services.update_employee(actor=request.user, employee=employee, **values)


@router.post("/employees/{employee_id}/transfer", response=EmployeeOut,
             summary="Move an employee to another department")
def transfer_employee(request: HttpRequest, employee_id: int, payload: TransferIn) -> Any:
    employee = _employee(request, employee_id)
    require(request.user, "org.manage")
    department = visible_departments(request.user).filter(pk=payload.department_id).first()
    if department is None:
        raise ValidationFailed(_("The department does not exist."), field="department_id")
    return services.transfer_employee(actor=request.user, employee=employee,
                                      department=department)


@router.post("/employees/{employee_id}/leader", response=EmployeeOut,
             summary="Change an employee's direct leader (null: nobody)")
def change_leader(request: HttpRequest, employee_id: int, payload: LeaderIn) -> Any:
    employee = _employee(request, employee_id)
    require(request.user, "org.manage")
    leader = None
    if payload.leader_id is not None:
        leader = visible_employees(request.user).filter(pk=payload.leader_id).first()
        if leader is None:
            raise ValidationFailed(_("The direct leader does not exist."), field="leader_id")
    return services.change_leader(actor=request.user, employee=employee, leader=leader)


@router.post("/employees/{employee_id}/leave", response=EmployeeOut,
             summary="Record that an employee leaves")
def mark_left(request: HttpRequest, employee_id: int, payload: LeaveIn) -> Any:
    employee = _employee(request, employee_id)
    require(request.user, "org.manage")
    return services.mark_left(actor=request.user, employee=employee,
                              leave_date=payload.leave_date)


@router.get("/roles", response=list[RoleOut])
def list_roles(request: HttpRequest) -> Any:
    return Role.objects.order_by("pk")


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request: HttpRequest) -> Any:
    require(request.user, "api.tokens")
    return ApiToken.objects.select_related("role").order_by("-pk")[:500]


@router.post("/tokens", response={201: TokenIssued})
def create_token(request: HttpRequest, payload: TokenIn) -> Any:
    require(request.user, "api.tokens")
    role = Role.objects.filter(code=payload.role).first()
    if role is None:
        raise ValidationFailed(_("Unknown role %(role)s.") % {"role": payload.role}, field="role")
    user = request.user
    if payload.username:
        user = get_user_model().objects.filter(username=payload.username).first()
        if user is None:
            raise ValidationFailed(_("No login named %(u)s.") % {"u": payload.username},
                                   field="username")
    token, raw = issue_token(actor=request.user, name=payload.name, user=user, role=role,
                             expires_at=payload.expires_at)
    token.token = raw  # shown once, never stored
    return 201, token


@router.delete("/tokens/{token_id}", response={204: None})
def delete_token(request: HttpRequest, token_id: int) -> Any:
    require(request.user, "api.tokens")
    token = get_object_or_404(ApiToken, pk=token_id)
    revoke_token(actor=request.user, token=token)
    return 204, None
