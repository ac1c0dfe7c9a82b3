"""Desktop pages for customers and the shared pool. Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from weiying.core.permissions import employee_of, has_perm
from weiying.core.scope import scoped, visible_employees
from weiying.customers import selectors, services
from weiying.customers.choices import FollowStatus, Level, Source
from weiying.customers.forms import (
    AssignForm,
    ConsentForm,
    ContactForm,
    CustomerForm,
    MergeForm,
    ReleaseForm,
)
from weiying.customers.models import Customer, Tag
from weiying.web.errors import domain_errors
from weiying.web.exports import Column, export_links, export_response, money_text, wants_export
from weiying.web.forms import show_error
from weiying.web.lists import list_page, whole_list

SORT_LABELS = [
    ("-activity", gettext_lazy("Latest activity")), ("name", gettext_lazy("Name")),
    ("-created", gettext_lazy("Newest")), ("-value", gettext_lazy("Signed value")),
]


def _owner_text(customer: Customer) -> str:
    if customer.in_pool:
        return _("Shared pool")
    return customer.owner.name if customer.owner else ""


# The columns of the customers export (?export=csv|xlsx); the phone stays masked.
EXPORT_COLUMNS: list[Column] = [
    (gettext_lazy("Customer name"), lambda c: c.name),
    (gettext_lazy("Kind"), lambda c: c.get_kind_display()),
    (gettext_lazy("Phone"), lambda c: c.masked_phone),
    (gettext_lazy("Level"), lambda c: c.get_level_display()),
    (gettext_lazy("Follow-up status"), lambda c: c.get_status_display()),
    (gettext_lazy("Source"), lambda c: c.get_source_display()),
    (gettext_lazy("Industry"), lambda c: c.industry),
    (gettext_lazy("City"), lambda c: c.city),
    (gettext_lazy("Region"), lambda c: c.region),
    (gettext_lazy("Owner"), _owner_text),
    (gettext_lazy("Department"), lambda c: c.department.name if c.department else ""),
    (gettext_lazy("Tags"), lambda c: ", ".join(t.name for t in c.tags.all())),
    (gettext_lazy("Total signed"), lambda c: money_text(c.total_signed)),
    (gettext_lazy("Total collected"), lambda c: money_text(c.total_collected)),
    (gettext_lazy("Next follow-up"), lambda c: c.next_followup_at),
    (gettext_lazy("Last activity"), lambda c: c.last_activity_at),
    (gettext_lazy("Created at"), lambda c: c.created_at),
]


def permissions_for(user: Any) -> dict[str, bool]:
    codes = ["customer.edit", "customer.unmask", "customer.merge", "pool.claim",
             "pool.release", "pool.assign"]
    return {code.replace(".", "_"): has_perm(user, code) for code in codes}


def _owners(user: Any) -> Any:
    return visible_employees(user).exclude(status="left").order_by("name")


def _timeline(user: Any, customer: Customer) -> tuple[list[Any], str | None]:
    """The pipeline's timeline of this customer, when that part is installed."""
    try:
        from weiying.pipeline.selectors.timeline import customer_timeline

        template = "pipeline/_timeline.html"
        get_template(template)
    except (ImportError, TemplateDoesNotExist):
        return [], None
    return list(customer_timeline(user, customer)), template


def _filters(request: HttpRequest) -> dict[str, Any]:
    owner = request.GET.get("owner", "")
    return {
        "q": request.GET.get("q", "").strip(),
        "status": request.GET.get("status", ""),
        "level": request.GET.get("level", ""),
        "source": request.GET.get("source", ""),
        "tag": request.GET.get("tag", ""),
        "owner_id": int(owner) if owner.isdigit() else None,
    }


def _list(request: HttpRequest, *, pool: bool) -> Any:
    filters = _filters(request)
    if pool:
        filters.pop("status")
        filters.pop("owner_id")
    qs = selectors.customers_queryset(request.user, pool=pool, **filters)
    try:
        return list_page(request, qs, sorts=selectors.SORTS, default=selectors.DEFAULT_SORT)
    except ValidationFailed as exc:
        messages.error(request, str(exc.message))
        request.GET = request.GET.copy()
        request.GET.pop("after", None)
        return list_page(request, qs, sorts=selectors.SORTS, default=selectors.DEFAULT_SORT)


def _list_context(request: HttpRequest, state: Any) -> dict[str, Any]:
    return {
        "state": state,
        "filters": _filters(request),
        "sorts": [(key, label, state.with_params(sort=key)) for key, label in SORT_LABELS],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "levels": Level.choices, "sources": Source.choices, "statuses": FollowStatus.choices,
        "tags": Tag.objects.order_by("group", "name")[:200],
        "can": permissions_for(request.user),
    }


@login_required
@domain_errors
def customer_list(request: HttpRequest) -> HttpResponse:
    fmt = wants_export(request)
    if fmt:
        qs = selectors.customers_queryset(request.user, pool=False, **_filters(request))
        qs = whole_list(request, qs, sorts=selectors.SORTS, default=selectors.DEFAULT_SORT)
        return export_response(request, qs, EXPORT_COLUMNS, name="customers", fmt=fmt)
    state = _list(request, pool=False)
    context = _list_context(request, state)
    context["owners"] = _owners(request.user)
    context["export_links"] = export_links(request)
    return render(request, "customers/customer_list.html", context)


@login_required
@domain_errors
def pool(request: HttpRequest) -> HttpResponse:
    state = _list(request, pool=True)
    context = _list_context(request, state)
    if has_perm(request.user, "pool.assign"):
        context["assign_form"] = AssignForm(owners=_owners(request.user))
    return render(request, "customers/pool.html", context)


@login_required
@domain_errors
def customer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_detail(request.user, pk)
    if customer.merged_into_id:
        messages.info(request, _("%(name)s was merged into this customer.")
                      % {"name": customer.name})
        return redirect("customers:customer_detail", pk=customer.merged_into_id)
    timeline, timeline_template = _timeline(request.user, customer)
    can = permissions_for(request.user)
    me = employee_of(request.user)
    context = {
        "customer": customer,
        "contacts": customer.contacts.order_by("-is_primary", "pk"),
        "identities": customer.wechat_identities.order_by("pk"),
        "tags": customer.tags.all(),
        "consents": selectors.consent_state(customer),
        "history": selectors.ownership_history(customer)[:50],
        "timeline": timeline,
        "timeline_template": timeline_template,
        "can": can,
        "is_owner": me is not None and customer.owner_id == me.pk,
        "contact_form": ContactForm(),
        "consent_form": ConsentForm(),
        "release_form": ReleaseForm(),
        "assign_form": AssignForm(owners=_owners(request.user)) if can["pool_assign"]
        else None,
        "tag_text": ", ".join(t.name for t in customer.tags.all()),
    }
    return render(request, "customers/customer_detail.html", context)


@login_required
@domain_errors
def customer_new(request: HttpRequest) -> HttpResponse:
    me = employee_of(request.user)
    owners = _owners(request.user)
    form = CustomerForm(request.POST or None, owners=owners,
                        initial={"owner": me.pk if me else None})
    duplicate = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        owner = data["owner"]
        try:
            customer = services.create_customer(
                actor=request.user, name=data["name"], kind=data["kind"], phone=data["phone"],
                email=data["email"], owner=owner, source=data["source"],
                channel=data["channel"], city=data["city"], region=data["region"],
                industry=data["industry"], address=data["address"], level=data["level"],
                note=data["note"], tags=form.tag_names(),
                allow_duplicate=data["allow_duplicate"],
                pool_department=services.branch_of(me.department) if (me and owner is None)
                else None,
            )
        except DomainError as exc:
            show_error(form, exc)
            if exc.code == "duplicate_customer" and getattr(exc, "duplicate_visible", False):
                duplicate = exc.duplicate  # type: ignore[attr-defined]
        else:
            messages.success(request, _("Customer %(name)s created.") % {"name": customer.name})
            return redirect("customers:customer_detail", pk=customer.pk)
    return render(request, "customers/customer_form.html",
                  {"form": form, "duplicate": duplicate, "title": _("New customer")})


@login_required
@domain_errors
def customer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    customer = selectors.customer_detail(request.user, pk)
    initial = {f: getattr(customer, f) for f in services.EDITABLE_FIELDS}
    form = CustomerForm(request.POST or None, initial=initial, editing=True)
    duplicate = None
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        fields = {f: data[f] for f in services.EDITABLE_FIELDS if f in data}
        try:
            services.update_customer(actor=request.user, customer=customer,
                                     allow_duplicate=data["allow_duplicate"], **fields)
        except DomainError as exc:
            show_error(form, exc)
            if exc.code == "duplicate_customer" and getattr(exc, "duplicate_visible", False):
                duplicate = exc.duplicate  # type: ignore[attr-defined]
        else:
            messages.success(request, _("Saved."))
            return redirect("customers:customer_detail", pk=customer.pk)
    return render(request, "customers/customer_form.html", {
        "form": form, "customer": customer, "duplicate": duplicate,
        "title": _("Edit %(name)s") % {"name": customer.name},
    })


@login_required
@domain_errors
def customer_merge(request: HttpRequest, pk: int) -> HttpResponse:
    survivor = selectors.customer_detail(request.user, pk)
    form = MergeForm(request.POST or None, initial={"duplicate": request.GET.get("duplicate")})
    if request.method == "POST" and form.is_valid():
        try:
            duplicate = selectors.customer_detail(request.user, form.cleaned_data["duplicate"])
            services.merge_customers(actor=request.user, survivor=survivor, duplicate=duplicate)
        except DomainError as exc:
            if exc.code == "not_found":
                form.add_error("duplicate", _("There is no such customer among those you may "
                                              "see; check the number."))
            else:
                show_error(form, exc)
        else:
            messages.success(request, _("%(dup)s merged into %(name)s.")
                             % {"dup": duplicate.name, "name": survivor.name})
            return redirect("customers:customer_detail", pk=survivor.pk)
    found = services.find_duplicates(phone=survivor.phone, name=survivor.name,
                                     exclude_id=survivor.pk)
    candidates = scoped(Customer.objects.filter(pk__in=[c.pk for c in found]),
                        request.user).select_related("owner")
    return render(request, "customers/customer_merge.html", {
        "customer": survivor, "form": form, "candidates": candidates,
        "can": permissions_for(request.user),
    })


# --- Actions (POST) -------------------------------------------------------------------------
def _back(request: HttpRequest, customer: Customer) -> HttpResponse:
    target = request.POST.get("next", "")
    if target.startswith("/") and not target.startswith("//"):
        return redirect(target)
    return redirect("customers:customer_detail", pk=customer.pk)


def _act(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    customer = selectors.customer_detail(request.user, pk)
    try:
        action(customer)
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, done % {"name": customer.name})
    return _back(request, customer)


@require_POST
@login_required
@domain_errors
def customer_claim(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        customer = selectors.customer_detail(request.user, pk)
        services.claim_customer(actor=request.user, customer=customer)
    except NotFound:
        # Someone else claimed it first, so it left the pools this user can see.
        messages.error(request, _("This customer is no longer in the shared pool."))
        return redirect("customers:pool")
    except (ValidationFailed, Conflict) as exc:
        messages.error(request, str(exc.message))
        return _back(request, customer)
    messages.success(request, _("%(name)s is yours now.") % {"name": customer.name})
    return _back(request, customer)


@require_POST
@login_required
@domain_errors
def customer_release(request: HttpRequest, pk: int) -> HttpResponse:
    form = ReleaseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why you release this customer."))
        return redirect("customers:customer_detail", pk=pk)
    return _act(request, pk, lambda c: services.release_customer(
        actor=request.user, customer=c, reason=form.cleaned_data["reason"]),
        _("%(name)s went back to the shared pool."))


@require_POST
@login_required
@domain_errors
def customer_assign(request: HttpRequest, pk: int) -> HttpResponse:
    form = AssignForm(request.POST, owners=_owners(request.user))
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("owner", [])))
        customer = selectors.customer_detail(request.user, pk)
        return _back(request, customer)
    owner = form.cleaned_data["owner"]
    return _act(request, pk, lambda c: services.assign_customer(
        actor=request.user, customer=c, owner=owner),
        _("%(name)s assigned."))


@require_POST
@login_required
@domain_errors
def customer_reveal_phone(request: HttpRequest, pk: int) -> HttpResponse:
    """HTMX: swaps the masked number for the full one; each reveal is audited."""
    customer = selectors.customer_detail(request.user, pk)
    phone = services.reveal_phone(actor=request.user, customer=customer)
    return render(request, "customers/_phone.html", {"phone": phone})


@require_POST
@login_required
@domain_errors
def customer_contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    form = ContactForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}")
        return redirect(reverse("customers:customer_detail", args=[pk]) + "#contacts")
    return _act(request, pk, lambda c: services.add_contact(
        actor=request.user, customer=c, **form.cleaned_data), _("Contact added to %(name)s."))


@require_POST
@login_required
@domain_errors
def customer_consent_add(request: HttpRequest, pk: int) -> HttpResponse:
    form = ConsentForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}")
        return redirect(reverse("customers:customer_detail", args=[pk]) + "#consent")
    return _act(request, pk, lambda c: services.record_consent(
        actor=request.user, customer=c, **form.cleaned_data), _("Consent recorded."))


@require_POST
@login_required
@domain_errors
def customer_tags(request: HttpRequest, pk: int) -> HttpResponse:
    raw = request.POST.get("tags", "")
    names = [t.strip() for t in raw.replace("，", ",").split(",") if t.strip()]
    return _act(request, pk, lambda c: services.set_tags(
        actor=request.user, customer=c, names=names), _("Tags saved."))
