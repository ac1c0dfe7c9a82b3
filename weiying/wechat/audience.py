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
from weiying.org.selectors import ancestors


def _roles_with(permission: str) -> list[int]:
    # Roles are few; their permissions are a JSON list that SQLite cannot search portably.
    return [pk for pk, perms in Role.objects.values_list("pk", "permissions")
            if permission in (perms or [])]


def _active(qs: Any) -> Any:
    return qs.exclude(status=EmployeeStatus.LEFT)


def nearest_above(employee: Employee, *, permission: str | None = None) -> list[Employee]:
    """The nearest people above `employee`: the closest leader on the reporting line, and the
    head of the closest department (theirs, then up the tree) headed by someone else; with
    `permission`, only people whose role grants it. One or two people, three queries."""
    roles = _roles_with(permission) if permission else None
    leader_ids = tree.ancestor_ids(employee.path)[:-1]
    heads = {d.pk: d.manager_id for d in ancestors(employee.department)}
    candidate_ids = set(leader_ids) | {m for m in heads.values() if m is not None}
    candidate_ids.discard(employee.pk)
    qs = _active(Employee.objects.filter(pk__in=candidate_ids))
    if roles is not None:
        qs = qs.filter(role_id__in=roles)
    found = {e.pk: e for e in qs.select_related("department", "user")}
    chosen: list[Employee] = []
    for leader_id in reversed(leader_ids):  # nearest first
        if leader_id in found:
            chosen.append(found[leader_id])
            break
    for dept_id in reversed(tree.ancestor_ids(employee.department.path)):
        head = heads.get(dept_id)
        if head in found:
            if found[head] not in chosen:
                chosen.append(found[head])
            break
    return chosen


def approvers_for(contract: Any) -> list[Employee]:
    """Who may approve `contract`: the nearest people above its owner holding
    contract.approve, among those whose data scope holds the contract."""
    if contract.owner is None:
        return []
    people = nearest_above(contract.owner, permission="contract.approve")
    return [p for p in people if sees(p, type(contract), [contract.pk])]


def manager_of(employee: Employee) -> Employee | None:
    """The person an employee answers to: the nearest leader, else their department head."""
    people = nearest_above(employee)
    return people[0] if people else None


def sees(employee: Employee, model: type[Model], pks: Iterable[Any]) -> set[Any]:
    """Which of `pks` the employee's data scope holds (one query)."""
    pks = list(pks)
    user = employee.user
    if user is None or not pks:
        return set()
    return set(scoped(model._default_manager.filter(pk__in=pks), user)
               .values_list("pk", flat=True))


def department_heads(department_ids: Iterable[int]) -> dict[int, int | None]:
    """{department id: head's employee id} for the given departments, one query."""
    return dict(Department.objects.filter(pk__in=set(department_ids))
                .values_list("pk", "manager_id"))
