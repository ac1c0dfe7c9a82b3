"""Phone pages (WeUI) for a rep's own leads: the list, newest first, and one lead with big
buttons to call, log a follow-up and convert."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from weiying.core import audit
from weiying.core.errors import DomainError
from weiying.core.pagination import keyset_page
from weiying.core.permissions import employee_of, has_perm
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.selectors.leads import SORTS, lead_detail, lead_followups, leads_queryset
from weiying.pipeline.services import leads as services
from weiying.web.errors import domain_errors


@login_required
@domain_errors
def my_leads(request: HttpRequest) -> HttpResponse:
    me = employee_of(request.user)
    show = request.GET.get("show", "open")
    if me is None:
        page = keyset_page(leads_queryset(request.user).none(), SORTS["-created"])
    else:
        qs = leads_queryset(request.user, owner_id=me.pk)
        if show != "all":
            qs = qs.filter(status__in=services.OPEN_STATUSES)
        page = keyset_page(qs, SORTS["-created"], cursor=request.GET.get("after") or None,
                           size=30)
    return render(request, "pipeline/mobile/lead_list.html", {"page": page, "show": show})


@login_required
@domain_errors
def mobile_lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_detail(request.user, pk)
    me = employee_of(request.user)
    if request.method == "POST" and request.POST.get("action") == "convert":
        try:
            services.convert_lead(actor=request.user, lead=lead)
        except DomainError as exc:
            if exc.status == 403:
                raise
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("Lead converted."))
        return redirect("mobile:lead_detail", pk=pk)

    # The owner calls their own lead; others need the unmask permission. Either way the
    # full number on the page is an audited view.
    may_call = bool(lead.phone) and (
        (me is not None and lead.owner_id == me.pk) or has_perm(request.user, "customer.unmask")
    )
    if may_call:
        audit.record(request.user, "customer.unmask", lead, after={"field": "phone",
                                                                   "for": "call"})
    # The customer the lead came in as (a WeCom add), linked only when the rep may see it.
    customer = lead.customer if lead.customer_id and scoped(
        Customer.objects.filter(pk=lead.customer_id), request.user).exists() else None
    return render(request, "pipeline/mobile/lead_detail.html", {
        "lead": lead, "followups": lead_followups(request.user, lead, limit=10),
        "may_call": may_call, "customer": customer,
        "may_convert": lead.status in services.OPEN_STATUSES
        and has_perm(request.user, "lead.edit"),
    })


urlpatterns = [
    path("leads/", my_leads, name="leads"),
    path("leads/<int:pk>/", mobile_lead_detail, name="lead_detail"),
]
