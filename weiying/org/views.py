"""Desktop pages of the organisation: the department chart, the roster, an employee's page and
the forms that change them. Thin: parse, call an org service, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.masking import mask_phone
from weiying.core.permissions import has_perm, require
from weiying.org import selectors, services
from weiying.org.choices import EmployeeStatus
from weiying.org.forms import (
    DepartmentForm,
    DepartmentNewForm,
    EmployeeEditForm,
    EmployeeForm,
    LeaderForm,
    LeaveForm,
    MoveForm,
    PromoteForm,
    TransferForm,
)
from weiying.org.models import Employee, Role
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, name_of, wants_export
from weiying.web.forms import show_error
from weiying.web.lists import list_page, whole_list

SORT_LABELS = [
    ("number", gettext_lazy("Employee number")), ("name", gettext_lazy("Name")),
    ("department", gettext_lazy("Department")),
]


def _can(user: Any) -> dict[str, bool]:
    return {"org_manage": has_perm(user, "org.manage"),
            "unmask": has_perm(user, "customer.unmask")}


def _phone_text(employee: Employee, unmask: bool) -> str:
    return employee.phone if unmask else mask_phone(employee.phone)


def _audit_unmask(user: Any, employees: list[Employee], **extra: Any) -> None:
    """Full numbers shown to a role with customer.unmask leave one audit row."""
    ids = [e.pk for e in employees if e.phone]
    if not ids and not extra:
        return
    with transaction.atomic():
        audit.record(user, "customer.unmask", object_type="org.employee",
                     object_id=ids[0] if len(ids) == 1 else "",
                     after={"field": "phone", "ids": ids, **extra})


# --- the chart ------------------------------------------------------------------------------
@login_required
@domain_errors
def chart(request: HttpRequest) -> HttpResponse:
    """The departments the user may see, in tree order, with the head count of each subtree."""
    departments = list(
        selectors.visible_departments(request.user).select_related("manager").order_by("path")
    )
    counts = selectors.head_counts(request.user)
    top = min((d.depth for d in departments), default=1)
    rows = [{"department": d, "indent": 2 * (d.depth - top),  # em
             "head_count": counts.get(d.pk, 0)} for d in departments]
    return render(request, "org/chart.html", {"rows": rows, "can": _can(request.user)})


# --- the roster -----------------------------------------------------------------------------
def _filters(request: HttpRequest) -> dict[str, Any]:
    g = request.GET
    department = g.get("department", "")
    return {
        "q": g.get("q", "").strip()[:64],
        "department_id": int(department) if department.isdigit() else None,
        "status": g.get("status", "") if g.get("status") in EmployeeStatus.values else "",
        "role": g.get("role", "")[:32],
    }


def _roster(request: HttpRequest, filters: dict[str, Any]) -> Any:
    department = None
    if filters["department_id"] is not None:
        department = selectors.visible_departments(request.user).filter(
            pk=filters["department_id"]).first()
        if department is None:
            return Employee.objects.none()
    return selectors.employees_queryset(
        request.user, q=filters["q"], department=department, status=filters["status"],
        role=filters["role"],
    )


def _export_columns(unmask: bool) -> list[Column]:
    """The columns of the roster export (?export=csv|xlsx); the phone masked unless the role
    may see full numbers."""
    return [
        (gettext_lazy("Employee number"), lambda e: e.number),
        (gettext_lazy("Name"), lambda e: e.name),
        (gettext_lazy("Department"), lambda e: e.department.name),
        (gettext_lazy("Job title"), lambda e: e.position),
        (gettext_lazy("Level"), lambda e: e.level),
        (gettext_lazy("Direct leader"), lambda e: name_of(e.leader)),
        (gettext_lazy("Role"), lambda e: e.role.label if e.role else ""),
        (gettext_lazy("Status"), lambda e: e.get_status_display()),
        (gettext_lazy("Hire date"), lambda e: e.hire_date),
        (gettext_lazy("Leave date"), lambda e: e.leave_date),
        (gettext_lazy("Mobile"), lambda e: _phone_text(e, unmask)),
        (gettext_lazy("Email"), lambda e: e.email),
        (gettext_lazy("City"), lambda e: e.city),
    ]


@login_required
@domain_errors
def employee_list(request: HttpRequest) -> HttpResponse:
    can = _can(request.user)
    filters = _filters(request)
    qs = _roster(request, filters)
    sorts, default = selectors.EMPLOYEE_SORTS, selectors.DEFAULT_EMPLOYEE_SORT
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs, sorts=sorts, default=default)
        response = export_response(request, qs, _export_columns(can["unmask"]), name="employees",
                                   fmt=fmt)
        if can["unmask"]:
            _audit_unmask(request.user, [], export=fmt)
        return response
    try:
        state = list_page(request, qs, sorts=sorts, default=default)
    except ValidationFailed as exc:
        messages.error(request, str(exc.message))
        request.GET = request.GET.copy()
        request.GET.pop("after", None)
        state = list_page(request, qs, sorts=sorts, default=default)
    for employee in state.page.items:
        employee.phone_text = _phone_text(employee, can["unmask"])
    if can["unmask"]:
        _audit_unmask(request.user, state.page.items)
    return render(request, "org/employee_list.html", {
        "state": state,
        "filters": filters,
        "sorts": [(key, label, state.with_params(sort=key)) for key, label in SORT_LABELS],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "departments": selectors.visible_departments(request.user).order_by("path"),
        "statuses": EmployeeStatus.choices,
        "roles": Role.objects.order_by("pk"),
        "export_links": export_links(request),
        "can": can,
    })


# --- an employee ----------------------------------------------------------------------------
@login_required
@domain_errors
def employee_detail(request: HttpRequest, pk: int) -> HttpResponse:
    employee = selectors.employee_detail(request.user, pk)
    can = _can(request.user)
    if can["unmask"] and employee.phone:
        _audit_unmask(request.user, [employee])
    return render(request, "org/employee_detail.html", {
        "employee": employee,
        "phone": _phone_text(employee, can["unmask"]),
        "leaders": selectors.leaders_of(request.user, employee),
        "reports": selectors.direct_reports(request.user, employee),
        "work": selectors.open_work(request.user, employee),
        "history": selectors.employee_history(request.user, employee),
        "can": can,
    })


def _form_page(
    request: HttpRequest, form: forms.Form, save: Callable[[dict[str, Any]], Any], *,
    title: str, done: Callable[[Any], str], next_url: Callable[[Any], str], cancel_url: str,
    intro: str = "",
) -> HttpResponse:
    """GET shows the form; a valid POST calls `save` (a service) and redirects to
    `next_url(result)`; a refusal of the service is shown on the form."""
    if request.method == "POST" and form.is_valid():
        try:
            result = save(form.cleaned_data)
        except (ValidationFailed, Conflict) as exc:
            show_error(form, exc)
        else:
            messages.success(request, done(result))
            return redirect(next_url(result))
    return render(request, "org/form.html", {
        "form": form, "title": title, "intro": intro, "cancel_url": cancel_url,
    })


def _to_employee(employee: Employee) -> str:
    return reverse("org:employee_detail", args=[employee.pk])


@login_required
@domain_errors
def employee_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "org.manage")
    initial = {"hire_date": timezone.localdate()}
    department = request.GET.get("department", "")
    if department.isdigit():
        initial["department"] = int(department)
    form = EmployeeForm(request.POST or None, user=request.user, initial=initial)
    return _form_page(
        request, form, lambda data: services.create_employee(actor=request.user, **data),
        title=_("New employee"), next_url=_to_employee,
        done=lambda e: _("Employee %(name)s added.") % {"name": e.name},
        cancel_url=reverse("org:employee_list"),
    )


@login_required
@domain_errors
def employee_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    employee = selectors.employee_detail(request.user, pk)
    initial = {field: getattr(employee, field) for field in services.EMPLOYEE_FIELDS}
    form = EmployeeEditForm(request.POST or None, initial=initial)
    return _form_page(
        request, form,
        lambda data: services.update_employee(actor=request.user, employee=employee, **data),
        title=_("Edit %(name)s") % {"name": employee.name}, next_url=_to_employee,
        done=lambda e: _("Saved."), cancel_url=_to_employee(employee),
    )


@login_required
@domain_errors
def employee_transfer(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    employee = selectors.employee_detail(request.user, pk)
    form = TransferForm(request.POST or None, user=request.user)
    return _form_page(
        request, form,
        lambda data: services.transfer_employee(actor=request.user, employee=employee,
                                                department=data["department"], on=data["on"]),
        title=_("Transfer %(name)s") % {"name": employee.name}, next_url=_to_employee,
        intro=_("Now in %(department)s. The records they own move with them.")
        % {"department": employee.department.name},
        done=lambda e: _("%(name)s now works in %(department)s.")
        % {"name": e.name, "department": e.department.name},
        cancel_url=_to_employee(employee),
    )


@login_required
@domain_errors
def employee_promote(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    employee = selectors.employee_detail(request.user, pk)
    form = PromoteForm(request.POST or None,
                       initial={"position": employee.position, "level": employee.level})
    return _form_page(
        request, form,
        lambda data: services.promote_employee(actor=request.user, employee=employee,
                                               position=data["position"], level=data["level"],
                                               on=data["on"]),
        title=_("Change the position of %(name)s") % {"name": employee.name},
        next_url=_to_employee,
        intro=_("Now %(position)s, level %(level)s. The days before the change keep the old "
                "position and level in the HR history.")
        % {"position": employee.position or "—", "level": employee.level or "—"},
        done=lambda e: _("%(name)s is now %(position)s, level %(level)s.")
        % {"name": e.name, "position": e.position or "—", "level": e.level or "—"},
        cancel_url=_to_employee(employee),
    )


@login_required
@domain_errors
def employee_leader(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    employee = selectors.employee_detail(request.user, pk)
    form = LeaderForm(request.POST or None, user=request.user,
                      initial={"leader": employee.leader})
    return _form_page(
        request, form,
        lambda data: services.change_leader(actor=request.user, employee=employee,
                                            leader=data["leader"]),
        title=_("Change the direct leader of %(name)s") % {"name": employee.name},
        intro=_("Everyone who reports to them moves along."), next_url=_to_employee,
        done=lambda e: _("Direct leader of %(name)s changed.") % {"name": e.name},
        cancel_url=_to_employee(employee),
    )


@login_required
@domain_errors
def employee_leave(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    employee = selectors.employee_detail(request.user, pk)
    form = LeaveForm(request.POST or None, user=request.user)
    return _form_page(
        request, form,
        lambda data: services.mark_left(actor=request.user, employee=employee,
                                        leave_date=data["leave_date"],
                                        successor=data.get("successor")),
        title=_("Record that %(name)s leaves") % {"name": employee.name},
        intro=_("Their login is switched off. With a successor, their customers, open "
                "opportunities, open leads and WeCom contacts go to that colleague; without "
                "one they stay theirs until you hand them over."),
        next_url=_to_employee,
        done=lambda e: _("%(name)s recorded as left.") % {"name": e.name},
        cancel_url=_to_employee(employee),
    )


# --- departments ----------------------------------------------------------------------------
@login_required
@domain_errors
def department_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "org.manage")
    parent = request.GET.get("parent", "")
    initial = {"parent": int(parent)} if parent.isdigit() else {}
    form = DepartmentNewForm(request.POST or None, user=request.user, initial=initial)
    return _form_page(
        request, form, lambda data: services.create_department(actor=request.user, **data),
        title=_("New department"), next_url=lambda d: reverse("org:chart"),
        done=lambda d: _("Department %(name)s created.") % {"name": d.name},
        cancel_url=reverse("org:chart"),
    )


@login_required
@domain_errors
def department_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    department = selectors.department_for(request.user, pk)
    initial = {field: getattr(department, field) for field in services.DEPARTMENT_FIELDS}
    form = DepartmentForm(request.POST or None, user=request.user, initial=initial)
    return _form_page(
        request, form,
        lambda data: services.update_department(actor=request.user, department=department,
                                                **data),
        title=_("Edit %(name)s") % {"name": department.name},
        next_url=lambda d: reverse("org:chart"), done=lambda d: _("Saved."),
        cancel_url=reverse("org:chart"),
    )


@login_required
@domain_errors
def department_move(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "org.manage")
    department = selectors.department_for(request.user, pk)
    form = MoveForm(request.POST or None, user=request.user,
                    initial={"parent": department.parent_id})
    return _form_page(
        request, form,
        lambda data: services.move_department(actor=request.user, department=department,
                                              parent=data["parent"]),
        title=_("Move %(name)s") % {"name": department.name},
        intro=_("Its sub-departments and their people move along."),
        next_url=lambda d: reverse("org:chart"),
        done=lambda d: _("%(name)s moved.") % {"name": d.name},
        cancel_url=reverse("org:chart"),
    )
