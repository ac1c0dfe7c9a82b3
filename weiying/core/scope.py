"""The data scope: the one place that decides which business rows a user may see.

Every selector starts from `scoped(Model.objects…, user)`. A model opts in by declaring
`scope = ScopeRule(owner="owner", …)`: the path to the Employee who owns the row, the
department that holds it while nobody owns it, and the department whose shared pool it
sits in. The rule reads the scope from the user's role, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from weiying.core import tree
from weiying.core.permissions import employee_of, role_of
from weiying.org.choices import DataScope

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class ScopeRule:
    """Where a model keeps its owner, its department and its shared pool.

    `department` is the department that holds the row: while the row is owned it is the
    owner's department (services set it on every change of owner, and `follow_owner` moves it
    when the owner transfers), while nobody owns it the team whose queue it waits in. That
    invariant lets the department scopes filter on the row's own department column, which the
    database answers from an index, instead of joining through the owner.
    """

    owner: str
    department: str | None = None
    pool: str | None = None
    # False for history (the finance subledger): a row keeps the department it was booked in
    # when its owner later transfers.
    follows_owner: bool = True
    # A copy of the department's tree path kept on the row (the performance roll-ups, whose
    # copies follow a department's move): the subtree scope is then a range on the row itself,
    # answered from the row's own index, with no join to the departments.
    department_path: str | None = None


def data_scope_of(user: Any) -> str:
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return DataScope.NONE
    token_role = getattr(user, "_weiying_token_role", None)
    if user.is_superuser and token_role is None:
        return DataScope.ALL
    role = token_role or role_of(user)
    if role is None:
        return DataScope.NONE
    if role.data_scope != DataScope.ALL and employee_of(user) is None:
        return DataScope.NONE
    return role.data_scope


def scope_q(model: type[Model], user: Any) -> Q | None:
    """The filter for `user` on `model`; None means everything, Q(pk__in=[]) nothing."""
    rule: ScopeRule | None = getattr(model, "scope", None)
    if rule is None:
        raise TypeError(f"{model.__name__} has no data-scope rule; declare `scope = ScopeRule(…)`")
    kind = data_scope_of(user)
    if kind == DataScope.ALL:
        return None
    if kind == DataScope.NONE:
        return Q(pk__in=[])
    me = employee_of(user)
    owner = rule.owner
    dept = me.department
    if kind == DataScope.SELF:
        q = Q(**{owner: me.pk})
    elif kind == DataScope.LINE:
        q = tree.subtree_q(f"{owner}__path", me.path)
    elif kind == DataScope.DEPARTMENT:
        if rule.department:
            q = Q(**{f"{rule.department}_id": dept.pk})
        else:
            q = Q(**{f"{owner}__department_id": dept.pk})
    else:  # SUBTREE
        # One range on the department path: a few departments, then an index per department.
        if rule.department_path:
            q = tree.subtree_q(rule.department_path, dept.path)
        else:
            q = tree.subtree_q(f"{rule.department or owner + '__department'}__path", dept.path)
    if rule.pool:
        # A shared pool belongs to a department (or to the whole company when empty); everyone
        # inside that department may see what is in it.
        # The model carries a boolean `in_pool` beside the pool's department.
        q |= Q(in_pool=True) & (
            Q(**{f"{rule.pool}__in": tree.ancestor_ids(dept.path)})
            | Q(**{f"{rule.pool}__isnull": True})
        )
    return q


def scoped(queryset: QuerySet[M], user: Any) -> QuerySet[M]:
    q = scope_q(queryset.model, user)
    return queryset if q is None else queryset.filter(q)


def visible_employees(user: Any) -> QuerySet[Any]:
    """Employees the user may see records of (for filters and pickers)."""
    from weiying.org.models import Employee

    kind = data_scope_of(user)
    qs = Employee.objects.all()
    if kind == DataScope.ALL:
        return qs
    if kind == DataScope.NONE:
        return qs.none()
    me = employee_of(user)
    if kind == DataScope.SELF:
        return qs.filter(pk=me.pk)
    if kind == DataScope.LINE:
        return qs.filter(tree.subtree_q("path", me.path))
    if kind == DataScope.DEPARTMENT:
        return qs.filter(department_id=me.department_id)
    return qs.filter(tree.subtree_q("department_path", me.department.path))


def follow_owner(employee: Any, department: Any) -> dict[str, int]:
    """Move the rows `employee` owns to `department`, in every model whose scope rule keeps a
    department of its own (see ScopeRule): the records follow their owner on a transfer.
    Returns {model label: rows moved}. Call inside the transfer's transaction."""
    from django.apps import apps

    moved = {}
    for model in apps.get_models():
        rule: ScopeRule | None = getattr(model, "scope", None)
        if (rule is None or rule.department is None or "__" in rule.department
                or not rule.follows_owner):
            continue  # rows scoped through a parent (instalments through their contract)
        count = (model._default_manager.filter(**{rule.owner: employee})
                 .exclude(**{f"{rule.department}_id": department.pk})
                 .update(**{rule.department: department}))
        if count:
            moved[model._meta.label_lower] = count
    return moved
