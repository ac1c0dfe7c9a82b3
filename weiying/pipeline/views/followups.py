"""Desktop pages for follow-ups: the scoped list (with what is due) and the new form."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from weiying.core.errors import DomainError, NotFound
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.pipeline.choices import FollowUpKind
from weiying.pipeline.models import Lead, Opportunity
from weiying.pipeline.selectors import followups as selectors
from weiying.pipeline.services.followups import log_followup
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, name_of, wants_export
from weiying.web.lists import list_page, whole_list


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _subject(followup: Any) -> str:
    if followup.customer is not None:
        return followup.customer.name
    return followup.lead.name if followup.lead is not None else ""


# The columns of the follow-ups export (?export=csv|xlsx).
EXPORT_COLUMNS: list[Column] = [
    (gettext_lazy("When"), lambda f: f.at),
    (gettext_lazy("Kind"), lambda f: f.get_kind_display()),
    (gettext_lazy("Customer or lead"), _subject),
    (gettext_lazy("Opportunity"), lambda f: name_of(f.opportunity)),
    (gettext_lazy("Note"), lambda f: f.note),
    (gettext_lazy("Next follow-up"), lambda f: f.next_at),
    (gettext_lazy("Next follow-up done"),
     lambda f: (gettext_lazy("Yes") if f.next_done else gettext_lazy("No")) if f.next_at else ""),
    (gettext_lazy("By"), lambda f: name_of(f.owner)),
]


@login_required
@domain_errors
def followup_list(request: HttpRequest) -> HttpResponse:
    g = request.GET
    now = timezone.now()
    qs = selectors.filter_followups(
        selectors.followups_for(request.user),
        kind=g.get("kind", "") if g.get("kind") in FollowUpKind.values else "",
        owner=g.get("owner") if g.get("owner", "").isdigit() else None,
        since=_date(g.get("since", "")), until=_date(g.get("until", "")),
        customer=g.get("customer") if g.get("customer", "").isdigit() else None,
        due=g.get("due") == "1", now=now,
    )
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs.select_related("customer", "lead", "opportunity", "owner"),
                        sorts=selectors.SORTS, default="-at")
        return export_response(request, qs, EXPORT_COLUMNS, name="followups", fmt=fmt)
    state = list_page(request, qs, sorts=selectors.SORTS, default="-at")
    due = selectors.due_followups(request.user, until=now)
    return render(request, "pipeline/followup_list.html", {
        "state": state,
        "rows": state.page.items,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "kinds": FollowUpKind.choices,
        "owners": visible_employees(request.user).order_by("name"),
        "due_count": due.count(),
        "due_rows": due[:10],
        "now": now,
        "export_links": export_links(request),
    })


QUICK_NEXT = [
    ("", gettext_lazy("None")),
    ("tomorrow", gettext_lazy("Tomorrow")),
    ("3d", gettext_lazy("In 3 days")),
    ("week", gettext_lazy("Next week")),
]


def quick_next(choice: str, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """A quick choice as a time: 10:00 Beijing time on that day (next week: next Monday)."""
    today = timezone.localdate(now or timezone.now())
    if choice == "tomorrow":
        day = today + dt.timedelta(days=1)
    elif choice == "3d":
        day = today + dt.timedelta(days=3)
    elif choice == "week":
        day = today + dt.timedelta(days=7 - today.weekday())
    else:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time(10, 0)))


class FollowUpForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("How"), choices=FollowUpKind.choices,
                             initial=FollowUpKind.CALL)
    note = forms.CharField(label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 4}),
                           max_length=4000)
    at = forms.DateTimeField(label=gettext_lazy("When"), required=False,
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    next_quick = forms.ChoiceField(label=gettext_lazy("Next follow-up"), choices=QUICK_NEXT,
                                   required=False, widget=forms.RadioSelect)
    next_at = forms.DateTimeField(label=gettext_lazy("Or a time"), required=False,
                                  widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


def subject_from(request: HttpRequest) -> dict[str, Any]:
    """The customer, lead or opportunity named in ?customer= / ?lead= / ?opportunity=,
    each only if the user may see it (otherwise NotFound → 404)."""
    found: dict[str, Any] = {}
    for key, model in (("customer", Customer), ("lead", Lead), ("opportunity", Opportunity)):
        value = request.POST.get(key) or request.GET.get(key) or ""
        if not value:
            continue
        obj = scoped(model.objects.all(), request.user).filter(pk=value).first() \
            if value.isdigit() else None
        if obj is None:
            raise NotFound()
        found[key] = obj
    if "opportunity" in found and "customer" not in found:
        found["customer"] = found["opportunity"].customer
    return found


def save_followup(request: HttpRequest, form: FollowUpForm, subject: dict[str, Any]) -> Any:
    """Call the service with the form's data; a refusal becomes a form error (None back)."""
    data = form.cleaned_data
    next_at = data.get("next_at") or quick_next(data.get("next_quick") or "")
    try:
        return log_followup(
            actor=request.user, kind=data["kind"], note=data["note"], at=data.get("at"),
            next_at=next_at, **subject,
        )
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        field = {"next_at": "next_at", "at": "at", "note": "note", "kind": "kind"}.get(
            exc.field or "")
        form.add_error(field, str(exc.message))
        return None


def back_to(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


@login_required
@domain_errors
def followup_new(request: HttpRequest) -> HttpResponse:
    subject = subject_from(request)
    if request.method == "POST":
        form = FollowUpForm(request.POST)
        if not subject:
            form.add_error(None, _("Choose the customer or lead you followed up."))
        elif form.is_valid() and save_followup(request, form, subject) is not None:
            messages.success(request, _("Follow-up saved."))
            default = (
                reverse("pipeline:opportunity_detail", args=[subject["opportunity"].pk])
                if "opportunity" in subject else reverse("pipeline:followup_list")
            )
            return redirect(back_to(request, default))
    else:
        form = FollowUpForm()
    return render(request, "pipeline/followup_new.html", {
        "form": form, "subject": subject, "next": back_to(request, ""),
    })


urlpatterns = [
    path("followups/", followup_list, name="followup_list"),
    path("followups/new/", followup_new, name="followup_new"),
]
