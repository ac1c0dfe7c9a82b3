"""Reads of the organisation. Subtree and reporting-line reads use the stored paths."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from weiying.core import tree
from weiying.core.scope import visible_employees
from weiying.org.models import Department, Employee


def subtree_departments(department: Department) -> QuerySet[Department]:
    return Department.objects.filter(tree.subtree_q("path", department.path))


def subtree_employees(department: Department) -> QuerySet[Employee]:
    """Everyone in the department and below it: one indexed range on the department path."""
    return Employee.objects.filter(tree.subtree_q("department__path", department.path))


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
