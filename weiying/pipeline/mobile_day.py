"""Phone pages for the rep's day: what to do today, and logging a follow-up in a few taps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core.permissions import employee_of
from weiying.core.scope import scoped
from weiying.customers.models import Customer
from weiying.pipeline.choices import FollowUpKind, LeadStatus
from weiying.pipeline.models import Lead
from weiying.pipeline.selectors.contracts import due_collections
from weiying.pipeline.selectors.followups import due_followups
from weiying.pipeline.selectors.opportunities import closing_this_month
from weiying.pipeline.views.followups import (
    QUICK_NEXT,
    FollowUpForm,
    back_to,
    save_followup,
    subject_from,
)
from weiying.web.errors import domain_errors

ROWS = 20
COLLECT_AHEAD = dt.timedelta(days=7)  # "this week": what falls due in the next seven days


def _url(name: str, *args: Any, query: str = "") -> str:
    """A link to a page if that page exists (areas are built independently)."""
    try:
        return reverse(name, args=args) + query
    except NoReverseMatch:
        return ""


def _followup_url(key: str, pk: int) -> str:
    return reverse("mobile:followup_new") + f"?{key}={pk}"


@login_required
@domain_errors
def my_day(request: HttpRequest) -> HttpResponse:
    me = employee_of(request.user)
    now = timezone.now()
    today = timezone.localdate(now)
    end_of_today = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1),
                                                           dt.time.min))
    if me is None:
        return render(request, "mobile/my_day.html", {"no_employee": True})

    due = list(due_followups(request.user, until=end_of_today, mine=True)[:ROWS])
    for f in due:
        f.overdue = f.next_at < now
        key, pk = ("customer", f.customer_id) if f.customer_id else ("lead", f.lead_id)
        f.url = _followup_url(key, pk)
    leads = list(
        scoped(Lead.objects.all(), request.user)
        .filter(owner=me, status__in=[LeadStatus.NEW, LeadStatus.ASSIGNED])
        .order_by("assigned_at", "id")[:ROWS]
    )
    for lead in leads:
        lead.url = (_url("mobile:lead_detail", lead.pk)
                    or _followup_url("lead", lead.pk))
    recycling = list(
        scoped(Customer.objects.all(), request.user)
        .filter(owner=me, in_pool=False, recycle_warned_at__isnull=False)
        .order_by("recycle_warned_at", "id")[:ROWS]
    )
    for customer in recycling:
        customer.url = (_url("mobile:customer_detail", customer.pk)
                        or _followup_url("customer", customer.pk))
    collections = list(due_collections(request.user, me, until=today + COLLECT_AHEAD)[:ROWS])
    for i in collections:
        i.overdue = i.due_on < today
        i.url = reverse("mobile:contract_detail", args=[i.contract_id])
    closing = list(closing_this_month(request.user, me, today=today)[:ROWS])
    for o in closing:
        o.url = reverse("pipeline:opportunity_detail", args=[o.pk])
        o.late = o.expected_close is not None and o.expected_close < today
    return render(request, "mobile/my_day.html", {
        "me": me, "today": today, "due": due, "leads": leads, "recycling": recycling,
        "collections": collections, "closing": closing,
    })


@login_required
@domain_errors
def followup_new(request: HttpRequest) -> HttpResponse:
    subject = subject_from(request)
    came_from = back_to(request, "") or _safe_referer(request)
    if request.method == "POST":
        form = FollowUpForm(request.POST)
        if not subject:
            form.add_error(None, _("Choose the customer or lead you followed up."))
        elif form.is_valid() and save_followup(request, form, subject) is not None:
            messages.success(request, _("Follow-up saved."))
            return redirect(came_from or reverse("mobile:my_day"))
    else:
        form = FollowUpForm()
    return render(request, "mobile/followup_new.html", {
        "form": form, "subject": subject, "next": came_from,
        "kinds": FollowUpKind.choices, "quick": QUICK_NEXT,
        "chosen_kind": form["kind"].value() or FollowUpKind.CALL,
        "chosen_next": form["next_quick"].value() or "",
    })


def _safe_referer(request: HttpRequest) -> str:
    """The page the rep came from, when it is a page of this site (not this form)."""
    from urllib.parse import urlsplit

    referer = request.headers.get("Referer", "")
    parts = urlsplit(referer)
    if not referer or parts.netloc != request.get_host():
        return ""
    if parts.path == request.path:
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


urlpatterns = [
    path("", my_day, name="my_day"),
    path("followups/new/", followup_new, name="followup_new"),
]
