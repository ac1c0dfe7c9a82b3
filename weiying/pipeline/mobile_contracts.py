"""Phone page (WeUI) of one contract: what it is worth and what came in, its instalments
with the WeChat Pay collect action on each open one, and the next steps the viewer may take
(the approval card in WeCom opens this page)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import DomainError, NotFound
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.choices import ContractStatus
from weiying.pipeline.selectors.contracts import contract_detail
from weiying.pipeline.services import contracts as services
from weiying.web.errors import domain_errors

# The collect button is the WeChat layer's template tag; the pipeline knows only the name
# of the partial that loads it, and includes it only when that layer is installed.
COLLECT_PARTIAL = "pipeline/mobile/_collect.html"
DATE_INPUTS = [("signed_on", gettext_lazy("Signed on")),
               ("delivered_on", gettext_lazy("Delivered on")),
               ("accepted_on", gettext_lazy("Accepted on"))]


def _collect_partial() -> str:
    return COLLECT_PARTIAL if apps.is_installed("weiying.wechat") else ""


@login_required
@domain_errors
def mobile_contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contract = contract_detail(request.user, pk)
    today = timezone.localdate()
    live = contract.status != ContractStatus.CANCELLED
    instalments = list(contract.instalments.all())
    for i in instalments:
        i.settled = i.collected >= i.amount
        # Overdue as the overview and the overdue card count it: past its day, not in full.
        i.overdue = live and not i.settled and i.due_on < today
    customer_visible = scoped(Customer.objects.filter(pk=contract.customer_id),
                              request.user).exists()
    actions = [
        {"name": a, "label": services.TRANSITIONS[a].label,
         "needs": services.TRANSITIONS[a].needs,
         "url": reverse("mobile:contract_action", args=[contract.pk, a])}
        for a in services.allowed_actions(request.user, contract)
    ]
    needs = {n for a in actions for n in a["needs"]}
    lines = list(contract.lines.all())
    for line in lines:
        line.discount_pct = _percent(line.discount)
    return render(request, "pipeline/mobile/contract_detail.html", {
        "contract": contract, "instalments": instalments, "lines": lines,
        "today": today, "actions": actions, "customer_visible": customer_visible,
        "reason_for": " / ".join(str(a["label"]) for a in actions if "reason" in a["needs"]),
        "date_inputs": [{"name": n, "label": label} for n, label in DATE_INPUTS if n in needs],
        "discount_pct": _percent(contract.max_discount),
        "collect_partial": _collect_partial(),
    })


def _percent(rate: Any) -> str:
    """0.15 → "15", 0.075 → "7.5" (a rate as the percentage people write)."""
    return f"{(rate * 100).normalize():f}"


@login_required
@require_POST
@domain_errors
def mobile_contract_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in services.TRANSITIONS:
        raise Http404
    contract = contract_detail(request.user, pk)
    inputs = {name: request.POST.get(name, "") for name in
              ("reason", "signed_on", "delivered_on", "accepted_on", "completed_on")}
    try:
        services.run_action(actor=request.user, contract=contract, action=action, **inputs)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Done: %(action)s.")
                         % {"action": services.TRANSITIONS[action].label})
    return redirect("mobile:contract_detail", pk=pk)


urlpatterns = [
    path("contracts/<int:pk>/", mobile_contract_detail, name="contract_detail"),
    path("contracts/<int:pk>/<str:action>/", mobile_contract_action, name="contract_action"),
]
