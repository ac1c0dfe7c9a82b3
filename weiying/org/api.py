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
from weiying.org.models import Employee, Role
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


class DepartmentIn(Schema):
    name: str = Field(min_length=1, max_length=128)
    parent_id: int | None = None
    kind: str = "team"
    city: str = ""
    region: str = ""


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
    employee = visible_employees(request.user).select_related("role").filter(pk=employee_id)
    found = employee.first()
    if found is None:
        raise NotFound()
    return found


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
