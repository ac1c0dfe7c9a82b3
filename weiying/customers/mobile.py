"""Phone pages (WeUI) for reps: my customers, one customer, the shared pool with one-tap claim.

Mounted under /m/ in the "mobile" namespace by weiying.web.mobile_urls.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from weiying.core.errors import Conflict, NotFound, ValidationFailed
from weiying.core.permissions import employee_of, has_perm
from weiying.core.scope import scoped
from weiying.customers import selectors, services
from weiying.web.errors import domain_errors


def _page(request: HttpRequest, **filters: object) -> object:
    try:
        return selectors.list_customers(request.user, q=request.GET.get("q", ""),
                                        cursor=request.GET.get("after") or None, size=30,
                                        **filters)
    except ValidationFailed:
        return selectors.list_customers(request.user, q=request.GET.get("q", ""), size=30,
                                        **filters)


@login_required
@domain_errors
def my_customers(request: HttpRequest) -> HttpResponse:
    me = employee_of(request.user)
    page = _page(request, owner_id=me.pk if me else -1)
    return render(request, "customers/mobile/customers.html", {"page": page})


@login_required
@domain_errors
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_detail(request.user, pk)
    if customer.merged_into_id:
        return redirect("mobile:customer_detail", pk=customer.merged_into_id)
    return render(request, "customers/mobile/customer_detail.html", {
        "customer": customer,
        "contacts": customer.contacts.order_by("-is_primary", "pk"),
        "can_claim": customer.in_pool and has_perm(request.user, "pool.claim"),
        "can_unmask": has_perm(request.user, "customer.unmask"),
        "wecom_external_id": _wecom_chat_with(request, customer),
        "contracts": _contracts(request, customer),
    })


CONTRACT_ROWS = 10


def _contracts(request: HttpRequest, customer: object) -> list[object]:
    """The customer's contracts the signed-in rep may see, newest first (a contract is scoped
    by its own owner, not by the customer's). Read through the reverse relation the
    pipeline's contract table declares; customers never imports the pipeline's pages."""
    contracts = getattr(customer, "contracts", None)
    if contracts is None:
        return []
    return list(scoped(contracts.all(), request.user).order_by("-created_at", "-pk")
                [:CONTRACT_ROWS])


def _wecom_chat_with(request: HttpRequest, customer: object) -> str:
    """The customer's WeCom external user id when the customer follows the signed-in rep in
    WeCom (so the rep can open their chat), else "". Read through the reverse relation the
    WeChat layer's follow table declares; customers never imports the WeChat layer."""
    me = employee_of(request.user)
    follows = getattr(customer, "wechat_follows", None)
    if me is None or follows is None:
        return ""
    return follows.filter(employee=me, ended_at__isnull=True).values_list(
        "external_userid", flat=True).first() or ""


@login_required
@domain_errors
def pool(request: HttpRequest) -> HttpResponse:
    page = _page(request, pool=True)
    return render(request, "customers/mobile/pool.html", {
        "page": page, "can_claim": has_perm(request.user, "pool.claim"),
    })


@require_POST
@login_required
@domain_errors
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        customer = selectors.customer_detail(request.user, pk)
        services.claim_customer(actor=request.user, customer=customer)
    except NotFound:
        messages.error(request, _("This customer is no longer in the shared pool."))
        return redirect("mobile:pool")
    except Conflict as exc:
        messages.error(request, str(exc.message))
        return redirect("mobile:pool")
    messages.success(request, _("%(name)s is yours now.") % {"name": customer.name})
    return redirect("mobile:customer_detail", pk=customer.pk)


urlpatterns = [
    path("customers/", my_customers, name="customers"),
    path("customers/<int:pk>/", customer_detail, name="customer_detail"),
    path("customers/<int:pk>/claim/", claim, name="customer_claim"),
    path("pool/", pool, name="pool"),
]
