"""Desktop pages for leads, and the public capture form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core import audit
from weiying.core.errors import DomainError
from weiying.core.middleware import client_ip
from weiying.core.pagination import keyset_page
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.customers.choices import Source
from weiying.pipeline.choices import DisqualifyReason, LeadStatus
from weiying.pipeline.selectors.leads import (
    NO_RESPONSE,
    SORTS,
    lead_detail,
    lead_followups,
    leads_queryset,
)
from weiying.pipeline.services import leads as services
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, name_of, wants_export

CAPTURE_LIMIT_PER_HOUR = 10

# The columns of the leads export (?export=csv|xlsx); the phone stays masked.
EXPORT_COLUMNS: list[Column] = [
    (gettext_lazy("Contact name"), lambda lead: lead.name),
    (gettext_lazy("Company"), lambda lead: lead.company_name),
    (gettext_lazy("Phone"), lambda lead: lead.masked_phone),
    (gettext_lazy("City"), lambda lead: lead.city),
    (gettext_lazy("Region"), lambda lead: lead.region),
    (gettext_lazy("Source"), lambda lead: lead.get_source_display()),
    (gettext_lazy("Channel"), lambda lead: lead.channel),
    (gettext_lazy("Interested in"), lambda lead: lead.interest),
    (gettext_lazy("Status"), lambda lead: lead.get_status_display()),
    (gettext_lazy("Owner"), lambda lead: name_of(lead.owner)),
    (gettext_lazy("Team"), lambda lead: name_of(lead.department)),
    (gettext_lazy("Created at"), lambda lead: lead.created_at),
    (gettext_lazy("First response at"), lambda lead: lead.first_response_at),
    (gettext_lazy("Last activity"), lambda lead: lead.last_activity_at),
]


class LeadForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Contact name"), max_length=64)
    phone = forms.CharField(label=gettext_lazy("Phone"), max_length=32, required=False)
    wechat = forms.CharField(label=gettext_lazy("WeChat id"), max_length=64, required=False)
    company_name = forms.CharField(label=gettext_lazy("Company"), max_length=128,
                                   required=False)
    email = forms.CharField(label=gettext_lazy("Email"), max_length=254, required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=64, required=False)
    region = forms.CharField(label=gettext_lazy("Region"), max_length=64, required=False)
    source = forms.ChoiceField(label=gettext_lazy("Source"), choices=Source.choices,
                               initial=Source.OTHER)
    channel = forms.CharField(label=gettext_lazy("Channel"), max_length=64, required=False)
    interest = forms.CharField(label=gettext_lazy("Interested in"), max_length=255,
                               required=False)
    note = forms.CharField(label=gettext_lazy("Note"), widget=forms.Textarea(attrs={"rows": 3}),
                           required=False)
    owner = forms.TypedChoiceField(label=gettext_lazy("Owner"), coerce=int, required=False,
                                   empty_value=None)


class CaptureForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Your name"), max_length=64)
    phone = forms.CharField(label=gettext_lazy("Mobile"), max_length=32)
    company_name = forms.CharField(label=gettext_lazy("Company"), max_length=128,
                                   required=False)
    city = forms.CharField(label=gettext_lazy("City"), max_length=64, required=False)
    interest = forms.CharField(label=gettext_lazy("What are you interested in?"),
                               max_length=255, required=False)
    consent = forms.BooleanField(
        label=gettext_lazy("I agree that my details are used to contact me about this request."),
        error_messages={"required": gettext_lazy("Please tick the consent box to continue.")},
    )
    # Honeypot: hidden from people, filled in by bots.
    website = forms.CharField(required=False)


def _owner_choices(user: Any) -> list[tuple[Any, str]]:
    # Limitation: the picker lists at most 500 visible employees; larger teams assign by API.
    people = visible_employees(user).exclude(status="left").order_by("name", "pk")[:500]
    return [("", "—")] + [(e.pk, f"{e.name} ({e.number})") for e in people]


@login_required
@domain_errors
def lead_list(request: HttpRequest) -> HttpResponse:
    params = request.GET
    sort = params.get("sort", "-activity")
    if sort not in SORTS:
        sort = "-activity"
    qs = leads_queryset(
        request.user, q=params.get("q", ""), status=params.get("status", ""),
        source=params.get("source", ""), owner_id=params.get("owner") or None,
    ).select_related("owner")
    fmt = wants_export(request)
    if fmt:
        return export_response(request, qs.select_related("department").order_by(*SORTS[sort]),
                               EXPORT_COLUMNS, name="leads", fmt=fmt)
    page = keyset_page(qs, SORTS[sort], cursor=params.get("after") or None)
    kept = {k: v for k, v in params.items() if k != "after" and v}
    from urllib.parse import urlencode

    next_url = "?" + urlencode({**kept, "after": page.next_cursor}) if page.next_cursor else ""
    return render(request, "pipeline/lead_list.html", {
        "page": page, "sort": sort, "params": kept, "next_url": next_url,
        "first_url": "?" + urlencode(kept), "statuses": LeadStatus.choices,
        "no_response": NO_RESPONSE, "sources": Source.choices,
        "owners": _owner_choices(request.user)[1:],
        "sort_links": {key.lstrip("-"): "?" + urlencode({**kept, "sort": key}) for key in SORTS},
        "may_create": has_perm(request.user, "lead.edit"),
        "may_import": has_perm(request.user, "import"),
        "export_links": export_links(request),
    })


def _detail_context(request: HttpRequest, lead: Any, **extra: Any) -> dict[str, Any]:
    user = request.user
    may_unmask = has_perm(user, "customer.unmask")
    show_phone = may_unmask and request.GET.get("unmask") == "1" and bool(lead.phone)
    if show_phone:
        audit.record(user, "customer.unmask", lead, after={"field": "phone"})
    is_open = lead.status in services.OPEN_STATUSES
    return {
        "lead": lead, "followups": lead_followups(user, lead),
        "phone": lead.phone if show_phone else lead.masked_phone,
        "may_unmask": may_unmask and not show_phone and bool(lead.phone),
        "may_assign": is_open and has_perm(user, "lead.assign"),
        "may_edit": is_open and has_perm(user, "lead.edit"),
        "owners": _owner_choices(user)[1:] if is_open and has_perm(user, "lead.assign") else [],
        "reasons": DisqualifyReason.choices,
        "response_time": duration(lead.first_response_seconds), **extra,
    }


def duration(seconds: int | None) -> str:
    """3 d 4 h, 2 h 5 min, 12 min, 40 s: the two largest units."""
    if seconds is None:
        return ""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("%(d)s d %(h)s h") % {"d": days, "h": hours}
    if hours:
        return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
    if minutes:
        return _("%(m)s min") % {"m": minutes}
    return _("%(s)s s") % {"s": secs}


@login_required
@domain_errors
def lead_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_detail(request.user, pk)
    return render(request, "pipeline/lead_detail.html", _detail_context(request, lead))


@login_required
@domain_errors
def lead_new(request: HttpRequest) -> HttpResponse:
    require(request.user, "lead.edit")
    form = LeadForm(request.POST or None)
    form.fields["owner"].choices = _owner_choices(request.user)
    me = employee_of(request.user)
    if request.method != "POST" and me is not None:
        form.initial["owner"] = me.pk
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        owner_id = data.pop("owner")
        try:
            owner = visible_employees(request.user).get(pk=owner_id) if owner_id else None
            lead = services.capture_lead(actor=request.user, owner=owner, **data)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
        else:
            messages.success(request, _("Lead saved."))
            return redirect("pipeline:lead_detail", pk=lead.pk)
    return render(request, "pipeline/lead_new.html", {"form": form})


@login_required
@require_POST
@domain_errors
def lead_assign(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_detail(request.user, pk)
    require(request.user, "lead.assign")
    try:
        owner = visible_employees(request.user).filter(pk=int(request.POST.get("owner", 0))).first()
    except ValueError:
        owner = None
    try:
        if owner is None:
            from weiying.core.errors import ValidationFailed

            raise ValidationFailed(_("Pick who gets this lead."), field="owner")
        services.assign_lead(actor=request.user, lead=lead, owner=owner)
    except DomainError as exc:
        if exc.status == 403:
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Lead assigned to %(name)s.") % {"name": owner.name})
    return redirect("pipeline:lead_detail", pk=pk)


@login_required
@require_POST
@domain_errors
def lead_disqualify(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_detail(request.user, pk)
    try:
        services.disqualify_lead(actor=request.user, lead=lead,
                                 reason=request.POST.get("reason", ""),
                                 note=request.POST.get("note", ""))
    except DomainError as exc:
        if exc.status == 403:
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Lead disqualified."))
    return redirect("pipeline:lead_detail", pk=pk)


def _duplicate_candidates(user: Any, lead: Any) -> list[Any]:
    """Customers the user may see that look like this lead (same phone or name)."""
    from django.db.models import Q

    from weiying.customers.models import Customer
    from weiying.customers.naming import name_key

    cond = Q(name_key=name_key(lead.company_name or lead.name))
    if lead.phone:
        cond |= Q(phone=lead.phone)
    return list(scoped(Customer.objects.filter(merged_into__isnull=True), user)
                .filter(cond).select_related("owner").order_by("-last_activity_at")[:10])


@login_required
@domain_errors
def lead_convert(request: HttpRequest, pk: int) -> HttpResponse:
    lead = lead_detail(request.user, pk)
    require(request.user, "lead.edit")
    context: dict[str, Any] = {"lead": lead, "duplicates": [], "error": "", "values": {}}
    if request.method == "POST":
        from weiying.customers.models import Customer

        post = request.POST
        context["values"] = post
        customer = None
        customer_id = post.get("customer_id")
        try:
            if customer_id:
                customer = scoped(Customer.objects.all(), request.user).filter(
                    pk=int(customer_id)).first()
                if customer is None:
                    from weiying.core.errors import NotFound

                    raise NotFound(
                        _("That customer does not exist or is outside what you may see.")
                    )
            customer, opportunity = services.convert_lead(
                actor=request.user, lead=lead, customer=customer,
                create_opportunity=post.get("create_opportunity") == "on",
                opportunity_name=post.get("opportunity_name", ""),
                amount=post.get("amount") or None,
                expected_close=_date(post.get("expected_close")),
            )
        except (DomainError, ValueError) as exc:
            if isinstance(exc, DomainError) and exc.status == 403:
                raise
            context["error"] = str(exc.message) if isinstance(exc, DomainError) else str(exc)
            if isinstance(exc, DomainError) and exc.code == "duplicate_customer":
                found = getattr(exc, "duplicate", None)
                candidates = _duplicate_candidates(request.user, lead)
                if found is not None and getattr(exc, "duplicate_visible", False):
                    candidates = [found] + [c for c in candidates if c.pk != found.pk]
                context["duplicates"] = candidates
        else:
            messages.success(request, _("Lead converted."))
            return redirect("pipeline:lead_detail", pk=lead.pk)
    return render(request, "pipeline/lead_convert.html", context,
                  status=400 if context["error"] else 200)


def _date(value: str | None) -> Any:
    import datetime as dt

    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(_("Enter the expected close date as YYYY-MM-DD.")) from None


def _throttled(request: HttpRequest) -> bool:
    """At most CAPTURE_LIMIT_PER_HOUR submissions per IP address and hour."""
    key = f"lead-capture:{client_ip(request)}:{timezone.now():%Y%m%d%H}"
    cache.add(key, 0, timeout=3600)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=3600)
        count = 1
    return count > CAPTURE_LIMIT_PER_HOUR


def capture_form(request: HttpRequest) -> HttpResponse:
    """The public form a company links from its website or WeChat menu (no login)."""
    channel = request.GET.get("channel", "")[:64]
    form = CaptureForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if _throttled(request):
            return render(request, "pipeline/lead_capture.html",
                          {"form": form, "throttled": True}, status=429)
        if form.is_valid():
            data = form.cleaned_data
            if data["website"]:
                # A bot filled in the hidden field: thank it and keep nothing.
                return render(request, "pipeline/lead_capture.html", {"done": True})
            try:
                services.capture_lead(
                    actor=None, name=data["name"], phone=data["phone"],
                    company_name=data["company_name"], city=data["city"],
                    interest=data["interest"], source=Source.FORM, channel=channel,
                    consent_at=timezone.now(),
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None,
                               str(exc.message))
            else:
                return render(request, "pipeline/lead_capture.html", {"done": True})
        status = 400
    return render(request, "pipeline/lead_capture.html", {"form": form}, status=status)


urlpatterns = [
    path("leads/", lead_list, name="lead_list"),
    path("leads/new/", lead_new, name="lead_new"),
    path("leads/<int:pk>/", lead_detail_view, name="lead_detail"),
    path("leads/<int:pk>/assign/", lead_assign, name="lead_assign"),
    path("leads/<int:pk>/disqualify/", lead_disqualify, name="lead_disqualify"),
    path("leads/<int:pk>/convert/", lead_convert, name="lead_convert"),
    path("contact/", capture_form, name="capture_form"),
]
