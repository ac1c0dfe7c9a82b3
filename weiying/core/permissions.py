"""Action permissions. What a user may *see* is the data scope (weiying.core.scope); what
they may *do* is this list, granted through their role. Deny by default."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from weiying.core.errors import PermissionDenied

PERMISSIONS: dict[str, Any] = {
    "customer.edit": _("Create and edit customers"),
    "customer.unmask": _("See full phone numbers (audited)"),
    "customer.merge": _("Merge duplicate customers"),
    "pool.claim": _("Claim customers from the shared pool"),
    "pool.release": _("Release customers to the shared pool"),
    "pool.assign": _("Assign pool customers to a rep"),
    "lead.edit": _("Create and work leads"),
    "lead.assign": _("Assign leads to others"),
    "import": _("Import leads and customers from files"),
    "opportunity.edit": _("Create and move opportunities"),
    "contract.edit": _("Draft quotes and contracts"),
    "contract.approve": _("Approve discounts and contracts"),
    "contract.sign": _("Mark contracts signed, cancel them"),
    "receipt.record": _("Record receipts"),
    "delivery.record": _("Record delivery and acceptance"),
    "delivery.manage": _("Ship, deliver, accept and cancel delivery orders"),
    "ticket.edit": _("Open and work service tickets"),
    "export": _("Export lists (audited)"),
    "finance.view": _("See finance reports and vouchers"),
    "finance.post": _("Record refunds, invoices, bank statements and manual vouchers"),
    "finance.close": _("Close accounting periods"),
    "org.manage": _("Manage departments, employees and roles"),
    "reports.view": _("See the analysis reports and dashboards of the data in scope"),
    "targets.manage": _("Set, decompose and import targets"),
    "commission.manage": _("Define commission rules and prepare monthly statements"),
    "commission.approve": _("Approve the commission statements of one's team"),
    "audit.view": _("Read the audit trail"),
    "settings.manage": _("Manage pipelines, stages and rules"),
    "catalog.manage": _("Manage the catalogue, price lists, stock and capacity"),
    "api.tokens": _("Issue and revoke API tokens"),
}

_REP = [
    "customer.edit", "pool.claim", "pool.release", "lead.edit", "opportunity.edit",
    "contract.edit", "ticket.edit",
]
BUILTIN_ROLES: list[dict[str, Any]] = [
    {"code": "rep", "name": gettext_noop("Sales rep"), "data_scope": "self", "permissions": _REP},
    {
        "code": "manager", "name": gettext_noop("Sales manager"), "data_scope": "subtree",
        "permissions": [*_REP, "pool.assign", "lead.assign", "contract.approve",
                        "contract.sign", "receipt.record", "delivery.record", "export",
                        "import", "customer.merge", "finance.view", "reports.view",
                        "targets.manage", "commission.approve"],
    },
    {
        "code": "director", "name": gettext_noop("Sales director"), "data_scope": "subtree",
        "permissions": [*_REP, "pool.assign", "lead.assign", "contract.approve",
                        "contract.sign", "receipt.record", "delivery.record", "export",
                        "import", "customer.merge", "customer.unmask", "finance.view",
                        "reports.view", "targets.manage", "commission.approve"],
    },
    {
        "code": "operations", "name": gettext_noop("Operations"), "data_scope": "all",
        "permissions": ["delivery.record", "delivery.manage", "ticket.edit",
                        "catalog.manage"],
    },
    {
        "code": "finance", "name": gettext_noop("Finance"), "data_scope": "all",
        "permissions": ["receipt.record", "contract.sign", "export", "customer.unmask",
                        "finance.view", "finance.post", "finance.close", "reports.view",
                        "commission.manage"],
    },
    {"code": "admin", "name": gettext_noop("Administrator"), "data_scope": "all",
     "permissions": sorted(PERMISSIONS)},
]


def role_of(user: Any) -> Any:
    """The user's role, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_weiying_role", False)
    if cached is not False:
        return cached
    employee = employee_of(user)
    role = employee.role if employee is not None else None
    user._weiying_role = role
    return role


def employee_of(user: Any) -> Any:
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_weiying_employee", False)
    if cached is not False:
        return cached
    from weiying.org.models import Employee

    employee = (
        Employee.objects.select_related("role", "department").filter(user_id=user.pk).first()
    )
    user._weiying_employee = employee
    return employee


def has_perm(user: Any, code: str) -> bool:
    if code not in PERMISSIONS:
        raise KeyError(f"unknown permission {code!r}")
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    token_role = getattr(user, "_weiying_token_role", None)
    if user.is_superuser and token_role is None:
        return True
    role = token_role or role_of(user)
    return role is not None and code in role.permissions


def require(user: Any, code: str) -> None:
    if not has_perm(user, code):
        raise PermissionDenied(
            _("Your role does not allow this (%(permission)s). Ask an administrator.")
            % {"permission": PERMISSIONS[code]},
            code="forbidden",
        )


def grant_builtin_permissions(role_model: Any) -> None:
    """For data migrations: the built-in roles gain the permissions BUILTIN_ROLES now lists
    (a new layer's); a company's own roles, and anything taken away by hand, are untouched."""
    for spec in BUILTIN_ROLES:
        role = role_model.objects.filter(code=spec["code"], is_builtin=True).first()
        if role is not None:
            role.permissions = sorted(set(role.permissions) | set(spec["permissions"]))
            role.save(update_fields=["permissions"])
