"""Desk pages of delivery orders: the list (filters and export), one order with its steps,
the form that makes an order from a contract, and the evidence file. Operations staff work
the orders; a rep sees their own contracts' orders and may make one for them. Views parse and
call weiying.catalog.delivery_services; every rule lives there."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.catalog import delivery_selectors as selectors
from weiying.catalog import delivery_services as services
from weiying.catalog.delivery import AcceptanceKind, DeliveryOrder, DeliveryStatus
from weiying.catalog.models import Warehouse
from weiying.core.errors import DomainError, NotFound, PermissionDenied
from weiying.core.scope import visible_employees
from weiying.pipeline.selectors.contracts import contract_detail
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, name_of, wants_export
from weiying.web.lists import list_page, whole_list

SORTS = {
    "-created": ["-created_at", "-id"],
    "promised": ["promised_on", "id"],
    "number": ["number", "id"],
}
# The columns of the delivery orders export (?export=csv|xlsx).
EXPORT: list[Column] = [
    (gettext_lazy("Number"), lambda o: o.number),
    (gettext_lazy("Contract"), lambda o: o.contract.number),
    (gettext_lazy("Customer"), lambda o: o.contract.customer.name),
    (gettext_lazy("Owner"), lambda o: name_of(o.owner)),
    (gettext_lazy("Status"), lambda o: o.get_status_display()),
    (gettext_lazy("Promised on"), lambda o: o.promised_on),
    (gettext_lazy("Shipped on"), lambda o: o.shipped_on),
    (gettext_lazy("Delivered on"), lambda o: o.delivered_on),
    (gettext_lazy("Accepted on"), lambda o: o.accepted_on),
    (gettext_lazy("Acceptance"), lambda o: o.get_acceptance_kind_display()),
    (gettext_lazy("Warehouse"), lambda o: name_of(o.warehouse)),
    (gettext_lazy("Carrier"), lambda o: o.carrier),
    (gettext_lazy("Tracking number"), lambda o: o.tracking_number),
    (gettext_lazy("External id"), lambda o: o.external_id or ""),
    (gettext_lazy("Created at"), lambda o: o.created_at),
]
INPUTS = ("shipped_on", "delivered_on", "accepted_on", "kind", "evidence_note", "evidence_url",
          "carrier", "tracking_number", "warehouse", "reason")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def step_inputs(request: HttpRequest) -> dict[str, Any]:
    """What a step's form posted (for the desk and the phone page alike)."""
    inputs: dict[str, Any] = {name: request.POST.get(name, "") for name in INPUTS}
    inputs["evidence_file"] = request.FILES.get("evidence_file")
    return inputs


def step_actions(user: Any, order: DeliveryOrder, url_name: str) -> list[dict[str, Any]]:
    return [{"name": a, "label": services.STEPS[a].label,
             "url": reverse(url_name, args=[order.pk, a])}
            for a in services.allowed_actions(user, order)]


@login_required
@domain_errors
def delivery_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in DeliveryStatus.values:
        status = ""
    late = request.GET.get("late") == "1"
    today = timezone.localdate()
    qs = selectors.delivery_orders_for(
        request.user, status=status, late=late, contract=_int(request.GET.get("contract")),
        owner=_int(request.GET.get("owner")), search=request.GET.get("q", "").strip(),
        today=today,
    )
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs, sorts=SORTS, default="-created")
        return export_response(request, qs, EXPORT, name="delivery-orders", fmt=fmt)
    state = list_page(request, qs, sorts=SORTS, default="-created")
    for order in state.page.items:
        order.late = order.is_late(today)
    return render(request, "catalog/delivery_list.html", {
        "state": state, "statuses": DeliveryStatus.choices, "status": status, "late": late,
        "owners": visible_employees(request.user).order_by("name")[:300],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "export_links": export_links(request),
    })


@login_required
@domain_errors
def delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = selectors.delivery_order_detail(request.user, pk)
    today = timezone.localdate()
    return render(request, "catalog/delivery_detail.html", {
        "order": order, "lines": list(order.lines.all()), "today": today,
        "late": order.is_late(today),
        "actions": step_actions(request.user, order, "catalog:delivery_action"),
        "kinds": AcceptanceKind.choices,
        "warehouses": Warehouse.objects.filter(is_active=True).order_by("code"),
    })


@login_required
@require_POST
@domain_errors
def delivery_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in services.STEPS:
        raise Http404
    order = selectors.delivery_order_detail(request.user, pk)
    try:
        services.run_step(actor=request.user, order=order, action=action,
                          **step_inputs(request))
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Done: %(action)s.")
                         % {"action": services.STEPS[action].label})
    return redirect("catalog:delivery_detail", pk=pk)


@login_required
@domain_errors
def delivery_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    """The uploaded evidence, to people whose scope holds the order."""
    order = selectors.delivery_order_detail(request.user, pk)
    if not order.evidence_file:
        raise Http404
    try:
        handle = order.evidence_file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    name = order.evidence_file.name.rsplit("/", 1)[-1]
    return FileResponse(handle, as_attachment=True, filename=name)


def _quantities(request: HttpRequest, progress: list[Any]) -> tuple[list[dict[str, Any]], str]:
    """The lines the form asked for (empty boxes and zeros skipped)."""
    lines, error = [], ""
    for p in progress:
        raw = request.POST.get(f"qty_{p.line.pk}", "").strip()
        if not raw:
            continue
        try:
            quantity = Decimal(raw)
        except InvalidOperation:
            error = _("Contract line %(n)s: the quantity must be a number above zero.") % {
                "n": p.n}
            continue
        if quantity == 0:
            continue
        lines.append({"contract_line": p.line.pk, "quantity": quantity})
    return lines, error


@login_required
@domain_errors
def delivery_new(request: HttpRequest, contract_pk: int) -> HttpResponse:
    contract = contract_detail(request.user, contract_pk)
    if not services.may_create(request.user, contract):
        raise PermissionDenied(_("Only operations staff or the contract's owner can make "
                                 "delivery orders for it. Ask operations to do it."))
    progress = services.line_progress(contract)
    error = ""
    posted: dict[str, str] = {}
    if request.method == "POST":
        posted = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"}
        lines, error = _quantities(request, progress)
        if not error:
            try:
                order = services.create_delivery_order(
                    actor=request.user, contract=contract, lines=lines,
                    promised_on=request.POST.get("promised_on") or None,
                    warehouse=request.POST.get("warehouse") or None,
                    carrier=request.POST.get("carrier", ""), note=request.POST.get("note", ""),
                )
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                error = str(exc.message)
            else:
                messages.success(request, _("Delivery order %(number)s created.")
                                 % {"number": order.number})
                return redirect("catalog:delivery_detail", pk=order.pk)
    for p in progress:
        p.value = posted.get(f"qty_{p.line.pk}", f"{p.remaining.normalize():f}"
                             if p.remaining > 0 else "")
    return render(request, "catalog/delivery_new.html", {
        "contract": contract, "progress": progress, "error": error, "posted": posted,
        "open": any(p.remaining > 0 for p in progress),
        "warehouses": Warehouse.objects.filter(is_active=True).order_by("code"),
    })


urlpatterns = [
    path("deliveries/", delivery_list, name="delivery_list"),
    path("deliveries/<int:pk>/", delivery_detail, name="delivery_detail"),
    path("deliveries/<int:pk>/do/<slug:action>/", delivery_action, name="delivery_action"),
    path("deliveries/<int:pk>/evidence/", delivery_evidence, name="delivery_evidence"),
    path("contracts/<int:contract_pk>/deliveries/new/", delivery_new, name="delivery_new"),
]
