"""Reads of the organisation. Subtree and reporting-line reads use the stored paths."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy

from weiying.core import tree
from weiying.core.errors import NotFound
from weiying.core.scope import visible_employees
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Assignment, Department, Employee

# Public sort keys of the roster → orderings; the last field is unique, as keyset paging needs.
EMPLOYEE_SORTS: dict[str, list[str]] = {
    "number": ["number", "id"],
    "name": ["name", "id"],
    "department": ["department__path", "number", "id"],
}
DEFAULT_EMPLOYEE_SORT = "number"


def subtree_departments(department: Department) -> QuerySet[Department]:
    return Department.objects.filter(tree.subtree_q("path", department.path))


def subtree_employees(department: Department) -> QuerySet[Employee]:
    """Everyone in the department and below it: one indexed range on the department path."""
    return Employee.objects.filter(tree.subtree_q("department_path", department.path))


def reporting_line(employee: Employee, *, include_self: bool = True) -> QuerySet[Employee]:
    """Everyone who reports to `employee`, directly or not."""
    return Employee.objects.filter(tree.subtree_q("path", employee.path, include_self=include_self))


def ancestors(department: Department) -> QuerySet[Department]:
    return Department.objects.filter(pk__in=tree.ancestor_ids(department.path)).order_by("path")


def employees_for(user: Any) -> QuerySet[Employee]:
    return visible_employees(user).select_related("department")


def visible_departments(user: Any) -> QuerySet[Department]:
    """Departments a user may see: all for an all-scope role, else their department subtree
    (subtree roles) or their own department."""
    from weiying.core.permissions import employee_of
    from weiying.core.scope import data_scope_of
    from weiying.org.choices import DataScope

    kind = data_scope_of(user)
    if kind == DataScope.ALL:
        return Department.objects.all()
    if kind == DataScope.NONE:
        return Department.objects.none()
    me = employee_of(user)
    if kind == DataScope.SUBTREE:
        return subtree_departments(me.department)
    return Department.objects.filter(pk=me.department_id)


def department_for(user: Any, pk: int) -> Department:
    """One department the user may see, or NotFound."""
    department = visible_departments(user).select_related("manager", "parent").filter(
        pk=pk).first()
    if department is None:
        raise NotFound()
    return department


def head_counts(user: Any) -> dict[int, int]:
    """{department id: active employees in it and every department below it}, counted among
    the employees the user may see (so a figure matches the roster it links to).

    One grouped query (employees per department path); each count is then added to the
    department's ancestors, read from the path itself.
    """
    rows = (
        visible_employees(user).exclude(status=EmployeeStatus.LEFT)
        .values("department__path").annotate(n=Count("id")).order_by()
    )
    totals: dict[int, int] = defaultdict(int)
    for row in rows:
        for department_id in tree.ancestor_ids(row["department__path"]):
            totals[department_id] += row["n"]
    return dict(totals)


def employees_queryset(
    user: Any, *, q: str = "", department: Department | None = None, status: str = "",
    role: str = "",
) -> QuerySet[Employee]:
    """The filtered roster the user may see, unordered; `department` takes its whole subtree."""
    qs = visible_employees(user).select_related("department", "leader", "role")
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(number__icontains=q))
    if department is not None:
        qs = qs.filter(tree.subtree_q("department_path", department.path))
    if status:
        qs = qs.filter(status=status)
    if role:
        qs = qs.filter(role__code=role)
    return qs


def employee_detail(user: Any, pk: int) -> Employee:
    """One employee the user may see, or NotFound."""
    employee = (
        visible_employees(user).select_related("department", "leader", "role")
        .filter(pk=pk).first()
    )
    if employee is None:
        raise NotFound()
    return employee


# How each stretch of the HR history began (weiying.org.history's reasons).
HISTORY_REASONS = {
    "join": gettext_lazy("Joined"), "transfer": gettext_lazy("Transfer"),
    "promotion": gettext_lazy("New position or level"),
    "update": gettext_lazy("Profile edited"),
}


def employee_history(user: Any, employee: Employee) -> list[Assignment]:
    """The employee's stretches (department, position, level from a day), newest first, as far
    as the user's scope reaches: a manager sees the time spent in their part of the tree. The
    first stretch reaches back before any record, so it shows no start."""
    from weiying.core.scope import scoped
    from weiying.org.history import BEGINNING

    rows = list(scoped(Assignment.objects.filter(employee=employee), user)
                .select_related("department").order_by("-starts_on"))
    for row in rows:
        row.reason_label = HISTORY_REASONS.get(row.reason, row.reason)
        row.from_label = "" if row.starts_on == BEGINNING else row.starts_on.isoformat()
        row.until_label = (row.ends_on - dt.timedelta(days=1)).isoformat() if row.ends_on else ""
    return rows


def leaders_of(user: Any, employee: Employee) -> list[Employee]:
    """The reporting chain above `employee`, top first, in one query. Each leader carries
    `visible`: whether the user may open that leader's page."""
    ids = tree.ancestor_ids(employee.path)[:-1]
    if not ids:
        return []
    seen = visible_employees(user).filter(pk=OuterRef("pk"))
    return list(
        Employee.objects.filter(pk__in=ids).annotate(visible=Exists(seen)).order_by("path")
    )


def direct_reports(user: Any, employee: Employee) -> QuerySet[Employee]:
    return visible_employees(user).filter(leader=employee).select_related("department") \
        .order_by("number")


def open_work(user: Any, employee: Employee) -> dict[str, int]:
    """How many open leads, customers and open opportunities `employee` owns, counted among
    the records the user may see."""
    from weiying.core.scope import scoped
    from weiying.customers.models import Customer
    from weiying.pipeline.choices import LeadStatus, OpportunityStatus
    from weiying.pipeline.models import Lead, Opportunity

    open_leads = [LeadStatus.NEW, LeadStatus.ASSIGNED, LeadStatus.CONTACTED]
    return {
        "leads": scoped(Lead.objects.filter(owner=employee, status__in=open_leads),
                        user).count(),
        "customers": scoped(Customer.objects.filter(owner=employee, merged_into__isnull=True),
                            user).count(),
        "opportunities": scoped(
            Opportunity.objects.filter(owner=employee, status=OpportunityStatus.OPEN),
            user).count(),
    }
