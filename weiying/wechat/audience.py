"""Who a push goes to: approvers and managers above an employee, read from the org tree's
paths (no recursion), and a check that each recipient may see what the message is about."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Model

from weiying.core import tree
from weiying.core.scope import scoped
from weiying.org.choices import EmployeeStatus
from weiying.org.models import Department, Employee, Role


def _roles_with(permission: str) -> list[int]:
    # Roles are few; their permissions are a JSON list that SQLite cannot search portably.
    return [pk for pk, perms in Role.objects.values_list("pk", "permissions")
            if permission in (perms or [])]


def nearest_above_many(employees: Iterable[Employee], *, permission: str | None = None
                       ) -> dict[int, list[Employee]]:
    """{employee id: the nearest people above them}: the closest current leader on their
    reporting line, and the head of the closest department (theirs, then up the tree) headed
    by someone else; with `permission`, only people whose role grants it. One or two people
    each; the whole batch in three queries, whatever its size (the ancestors are read from
    the stored paths)."""
    employees = list(employees)
    if not employees:
        return {}
    leader_ids = {e.pk: tree.ancestor_ids(e.path)[:-1] for e in employees}
    dept_ids = {e.pk: tree.ancestor_ids(e.department.path) for e in employees}
    heads = dict(Department.objects.filter(
        pk__in={d for ids in dept_ids.values() for d in ids}).values_list("pk", "manager_id"))
    wanted = {i for ids in leader_ids.values() for i in ids} | {
        m for m in heads.values() if m is not None}
    qs = Employee.objects.filter(pk__in=wanted).exclude(status=EmployeeStatus.LEFT)
    if permission:
        qs = qs.filter(role_id__in=_roles_with(permission))
    found = {e.pk: e for e in qs.select_related("department", "user", "role")}

    chosen: dict[int, list[Employee]] = {}
    for e in employees:
        people: list[Employee] = []
        leader = next((found[i] for i in reversed(leader_ids[e.pk]) if i in found), None)
        if leader is not None:
            people.append(leader)
        head = next((found[heads[d]] for d in reversed(dept_ids[e.pk])
                     if heads.get(d) in found and heads[d] != e.pk), None)
        if head is not None and head not in people:
            people.append(head)
        chosen[e.pk] = people
    return chosen


def nearest_above(employee: Employee, *, permission: str | None = None) -> list[Employee]:
    return nearest_above_many([employee], permission=permission)[employee.pk]


def approvers_for(contract: Any) -> list[Employee]:
    """Who may approve `contract`: the nearest people above its owner holding
    contract.approve, among those whose data scope holds the contract."""
    if contract.owner is None:
        return []
    people = nearest_above(contract.owner, permission="contract.approve")
    return [p for p in people if sees(p, type(contract), [contract.pk])]


def managers_of(employees: Iterable[Employee]) -> dict[int, Employee | None]:
    """{employee id: the person they answer to}: the nearest leader, else the nearest
    department head; three queries for the lot."""
    return {pk: (people[0] if people else None)
            for pk, people in nearest_above_many(employees).items()}


def sees(employee: Employee, model: type[Model], pks: Iterable[Any]) -> set[Any]:
    """Which of `pks` the employee's data scope holds (one query). Someone without a login
    sees nothing."""
    pks = list(pks)
    user = employee.user
    if user is None or not pks:
        return set()
    if "_weiying_employee" not in user.__dict__:
        # employee_of() would load this very row again; it was loaded with role and department
        user._weiying_employee = employee
    return set(scoped(model._default_manager.filter(pk__in=pks), user)
               .values_list("pk", flat=True))
