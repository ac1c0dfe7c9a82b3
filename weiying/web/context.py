"""Navigation shown in the desktop layout; entries a role cannot use are left out."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from weiying.core.permissions import employee_of, has_perm

# (url name, label[, the permission the entry needs])
NAV: list[tuple[Any, ...]] = [
    ("web:home", _("Overview")),
    ("pipeline:lead_list", _("Leads")),
    ("customers:customer_list", _("Customers")),
    ("customers:pool", _("Shared pool")),
    ("pipeline:opportunity_board", _("Kanban")),
    ("pipeline:opportunity_list", _("Opportunities")),
    ("pipeline:followup_list", _("Follow-ups")),
    ("pipeline:contract_list", _("Contracts")),
    ("pipeline:receivables", _("Collections")),
    ("catalog:delivery_list", _("Deliveries")),
    ("pipeline:ticket_list", _("Service")),
    ("pipeline:aftersale", _("Repurchase & upsell")),
    ("performance:overview", _("Performance")),
    ("reports:index", _("Reports"), "reports.view"),
    ("org:chart", _("Organisation")),
    ("finance:overview", _("Finance"), "finance.view"),
    ("catalog:product_list", _("Catalogue"), "catalog.manage"),
    ("wechat:channel_list", _("Channels"), "lead.assign"),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    items = []
    for name, label, *needs in NAV:
        if needs and not has_perm(request.user, needs[0]):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append({"url": url, "label": label, "active": request.path.startswith(url)
                      and url != "/"})
    return {"nav_items": items, "me": employee_of(request.user)}
