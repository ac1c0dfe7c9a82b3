"""Phone pages (WeUI) of delivery orders, for operations staff on the road: the orders still
open, and one order with its next step (ship with tracking, mark delivered, record the
acceptance with its evidence note or a photo). A rep sees their own contracts' orders; the
late-delivery card in WeCom opens the order's page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from weiying.catalog import delivery_selectors as selectors
from weiying.catalog import delivery_services as services
from weiying.catalog.delivery import NOT_YET_DELIVERED, AcceptanceKind, DeliveryStatus
from weiying.catalog.views_delivery import step_actions, step_inputs
from weiying.core.errors import DomainError, NotFound
from weiying.web.errors import domain_errors

OPEN = (*NOT_YET_DELIVERED, DeliveryStatus.DELIVERED)
PAGE = 50


@login_required
@domain_errors
def mobile_delivery_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    late_only = request.GET.get("late") == "1"
    qs = selectors.delivery_orders_for(request.user, late=late_only, today=today).filter(
        status__in=OPEN).order_by("promised_on", "pk")
    orders = list(qs[:PAGE])
    for order in orders:
        order.late = order.is_late(today)
    return render(request, "catalog/mobile/delivery_list.html", {
        "orders": orders, "late_only": late_only, "more": qs.count() > PAGE,
    })


@login_required
@domain_errors
def mobile_delivery_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = selectors.delivery_order_detail(request.user, pk)
    today = timezone.localdate()
    return render(request, "catalog/mobile/delivery_detail.html", {
        "order": order, "lines": list(order.lines.all()), "today": today,
        "late": order.is_late(today), "kinds": AcceptanceKind.choices,
        "actions": step_actions(request.user, order, "mobile:delivery_action"),
    })


@login_required
@require_POST
@domain_errors
def mobile_delivery_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
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
    return redirect("mobile:delivery_detail", pk=pk)


urlpatterns = [
    path("deliveries/", mobile_delivery_list, name="delivery_list"),
    path("deliveries/<int:pk>/", mobile_delivery_detail, name="delivery_detail"),
    path("deliveries/<int:pk>/<slug:action>/", mobile_delivery_action, name="delivery_action"),
]
