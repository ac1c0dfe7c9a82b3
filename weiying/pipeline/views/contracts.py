"""Pages for quotes, contracts, their collection plans and receipts, and the collections
overview. Views parse and call services; every rule lives in pipeline.services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import formset_factory
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.catalog.models import Product
from weiying.catalog.services import VAT_RATES
from weiying.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from weiying.core.permissions import has_perm
from weiying.core.scope import scoped, visible_employees
from weiying.customers.models import Customer
from weiying.pipeline.choices import ContractStatus, PaymentMethod, QuoteStatus
from weiying.pipeline.models import Contract
from weiying.pipeline.selectors import contracts as selectors
from weiying.pipeline.services import contracts as services
from weiying.pipeline.services import quotes as quote_services
from weiying.web.errors import domain_errors
from weiying.web.exports import (
    Column,
    export_links,
    export_response,
    money_text,
    name_of,
    wants_export,
)
from weiying.web.lists import list_page, whole_list

HUNDRED = Decimal(100)


# --- Forms ----------------------------------------------------------------------------------
class LineForm(forms.Form):
    product = forms.ModelChoiceField(
        Product.objects.filter(is_active=True), required=False, label=gettext_lazy("Product")
    )
    description = forms.CharField(required=False, max_length=255,
                                  label=gettext_lazy("Description"))
    quantity = forms.DecimalField(required=False, max_digits=14, decimal_places=3,
                                  label=gettext_lazy("Quantity"))
    unit_price = forms.DecimalField(required=False, max_digits=18, decimal_places=2,
                                    label=gettext_lazy("Unit price (VAT incl.)"),
                                    help_text=gettext_lazy("Empty: the customer's price list, else the "
                                                          "list price"))
    discount_percent = forms.DecimalField(required=False, max_digits=6, decimal_places=2,
                                          min_value=0, max_value=Decimal("99.99"),
                                          label=gettext_lazy("Discount (%)"))
    vat_rate = forms.ChoiceField(
        required=False, label=gettext_lazy("VAT rate"),
        choices=[("", gettext_lazy("Product's rate"))]
        + [(str(r), f"{(r * HUNDRED).normalize():f}%") for r in VAT_RATES],
    )

    def line(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not data.get("product"):
            return None
        discount = (data.get("discount_percent") or Decimal(0)) / HUNDRED
        return {
            "product": data["product"], "quantity": data.get("quantity"),
            "unit_price": data.get("unit_price"), "discount": discount,
            "vat_rate": data.get("vat_rate") or None, "description": data.get("description"),
        }


LineFormSet = formset_factory(LineForm, extra=5, max_num=50)


def _customer_field(user: Any, selected: Any = None) -> forms.ModelChoiceField:
    """A customer picker validated against the user's whole scope but listing only the
    200 most recently active customers (plus the one preselected), so it stays light."""
    qs = scoped(Customer.objects.filter(merged_into__isnull=True), user)
    field = forms.ModelChoiceField(qs, label=gettext_lazy("Customer"))
    recent = list(qs.order_by("-last_activity_at", "-id").values_list("pk", "name")[:200])
    if selected and all(pk != selected.pk for pk, _name in recent):
        recent.insert(0, (selected.pk, selected.name))
    field.widget.choices = [("", "—")] + recent
    return field


class ContractForm(forms.Form):
    title = forms.CharField(max_length=128, label=gettext_lazy("Title"))
    start_on = forms.DateField(required=False, label=gettext_lazy("Starts on"),
                               widget=forms.DateInput(attrs={"type": "date"}))
    end_on = forms.DateField(required=False, label=gettext_lazy("Ends on"),
                             widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                           label=gettext_lazy("Note"))

    def __init__(self, *args: Any, user: Any, customer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {"customer": _customer_field(user, customer), **self.fields}
        if customer is not None:
            self.initial.setdefault("customer", customer.pk)


class QuoteForm(forms.Form):
    valid_until = forms.DateField(required=False, label=gettext_lazy("Valid until"),
                                  widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, user: Any, customer: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {"customer": _customer_field(user, customer), **self.fields}
        if customer is not None:
            self.initial.setdefault("customer", customer.pk)


class ReceiptForm(forms.Form):
    amount = forms.DecimalField(max_digits=18, decimal_places=2, label=gettext_lazy("Amount"))
    received_on = forms.DateField(label=gettext_lazy("Received on"),
                                  widget=forms.DateInput(attrs={"type": "date"}))
    method = forms.ChoiceField(choices=PaymentMethod.choices, label=gettext_lazy("Method"))
    reference = forms.CharField(required=False, max_length=64,
                                label=gettext_lazy("Reference (bank slip, transaction no.)"))
    instalment = forms.ChoiceField(required=False, label=gettext_lazy("Instalment"))

    def __init__(self, *args: Any, contract: Contract, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instalment"].choices = [("", _("Oldest open instalments first"))] + [
            (str(i.pk), f"#{i.seq} · {i.due_on:%Y-%m-%d} · ¥{i.outstanding}")
            for i in contract.instalments.order_by("due_on", "seq") if i.outstanding > 0
        ]


def _apply_error(form: forms.Form, exc: ValidationFailed, fields: set[str]) -> None:
    field = (exc.field or "").split(".")[-1]
    form.add_error(field if field in fields else None, str(exc.message))


def _lines_from(formset: Any) -> list[dict[str, Any]]:
    return [line for f in formset.forms if (line := f.line()) is not None]


def _lines_initial(lines: Any) -> list[dict[str, Any]]:
    return [
        {"product": line.product_id, "description": line.description,
         "quantity": line.quantity, "unit_price": line.unit_price,
         "discount_percent": (line.discount * HUNDRED).normalize(),
         "vat_rate": str(line.vat_rate.normalize()) if line.vat_rate else "0"}
        for line in lines
    ]


def _with_percents(lines: Any) -> list[Any]:
    """The lines with discount and VAT rate as percentages for display."""
    out = list(lines)
    for line in out:
        line.discount_pct = f"{(line.discount * HUNDRED).normalize():f}"
        line.vat_pct = f"{(line.vat_rate * HUNDRED).normalize():f}"
    return out


def _customer_from_query(request: HttpRequest) -> Customer | None:
    raw = request.GET.get("customer", "")
    if not raw.isdigit():
        return None
    return scoped(Customer.objects.filter(pk=int(raw)), request.user).first()


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


# --- Contracts ------------------------------------------------------------------------------
CONTRACT_SORTS = {
    "-created": ["-created_at", "-id"],
    "-total": ["-total", "-id"],
    "number": ["number", "id"],
}
# The columns of the contracts export (?export=csv|xlsx).
CONTRACT_EXPORT: list[Column] = [
    (gettext_lazy("Number"), lambda c: c.number),
    (gettext_lazy("Title"), lambda c: c.title),
    (gettext_lazy("Customer"), lambda c: c.customer.name),
    (gettext_lazy("Owner"), lambda c: name_of(c.owner)),
    (gettext_lazy("Status"), lambda c: c.get_status_display()),
    (gettext_lazy("Total (VAT incl.)"), lambda c: money_text(c.total)),
    (gettext_lazy("Net of VAT"), lambda c: money_text(c.total_net)),
    (gettext_lazy("VAT"), lambda c: money_text(c.total_vat)),
    (gettext_lazy("Collected"), lambda c: money_text(c.collected)),
    (gettext_lazy("Signed on"), lambda c: c.signed_on),
    (gettext_lazy("Starts on"), lambda c: c.start_on),
    (gettext_lazy("Ends on"), lambda c: c.end_on),
    (gettext_lazy("Created at"), lambda c: c.created_at),
]


@login_required
@domain_errors
def contract_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in ContractStatus.values:
        status = ""
    qs = selectors.contracts_for(
        request.user, status=status, owner=_int(request.GET.get("owner")),
        customer=_int(request.GET.get("customer")), search=request.GET.get("q", "").strip(),
    )
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs.select_related("customer", "owner"), sorts=CONTRACT_SORTS,
                        default="-created")
        return export_response(request, qs, CONTRACT_EXPORT, name="contracts", fmt=fmt)
    state = list_page(request, qs, sorts=CONTRACT_SORTS, default="-created")
    return render(request, "pipeline/contract_list.html", {
        "state": state, "statuses": ContractStatus.choices, "status": status,
        "owners": visible_employees(request.user).order_by("name")[:300],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "can_create": has_perm(request.user, "contract.edit"),
        "export_links": export_links(request),
    })


@login_required
@domain_errors
def contract_detail(request: HttpRequest, pk: int) -> HttpResponse:
    contract = selectors.contract_detail(request.user, pk)
    allowed = services.allowed_actions(request.user, contract)
    actions = [
        {"name": a, "label": services.TRANSITIONS[a].label,
         "needs": services.TRANSITIONS[a].needs,
         "url": reverse("pipeline:contract_action", args=[contract.pk, a])}
        for a in allowed
    ]
    return render(request, "pipeline/contract_detail.html", {
        "contract": contract, "actions": actions, "today": timezone.localdate(),
        "lines": _with_percents(contract.lines.all()),
        "can_plan": has_perm(request.user, "contract.edit")
        and contract.status not in (ContractStatus.COMPLETED, ContractStatus.CANCELLED),
        "can_receive": has_perm(request.user, "receipt.record")
        and contract.status in services.SOLD_STATUSES and contract.outstanding > 0,
        "can_edit": services.lines_editable(request.user, contract),
    })


def _contract_form_page(request: HttpRequest, contract: Contract | None) -> HttpResponse:
    customer = contract.customer if contract else _customer_from_query(request)
    if request.method == "POST":
        form = ContractForm(request.POST, user=request.user, customer=customer)
        formset = LineFormSet(request.POST, prefix="lines")
        if form.is_valid() and formset.is_valid():
            data = form.cleaned_data
            try:
                if contract is None:
                    contract = services.create_contract(
                        actor=request.user, customer=data["customer"], title=data["title"],
                        lines=_lines_from(formset), start_on=data["start_on"],
                        end_on=data["end_on"], note=data["note"],
                    )
                    messages.success(request, _("Contract %(number)s created as a draft.")
                                     % {"number": contract.number})
                else:
                    contract = services.update_contract(
                        actor=request.user, contract=contract, title=data["title"],
                        lines=_lines_from(formset), start_on=data["start_on"],
                        end_on=data["end_on"], note=data["note"],
                    )
                    messages.success(request, _("Contract saved."))
                return redirect("pipeline:contract_detail", pk=contract.pk)
            except ValidationFailed as exc:
                _apply_error(form, exc, set(form.fields))
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                form.add_error(None, str(exc.message))
    elif contract is not None:
        form = ContractForm(user=request.user, customer=customer, initial={
            "customer": customer.pk, "title": contract.title, "start_on": contract.start_on,
            "end_on": contract.end_on, "note": contract.note,
        })
        formset = LineFormSet(prefix="lines", initial=_lines_initial(contract.lines.all()))
    else:
        form = ContractForm(user=request.user, customer=customer)
        formset = LineFormSet(prefix="lines")
    return render(request, "pipeline/contract_form.html", {
        "form": form, "formset": formset, "contract": contract,
    })


@login_required
@domain_errors
def contract_new(request: HttpRequest) -> HttpResponse:
    if not has_perm(request.user, "contract.edit"):
        raise PermissionDenied(_("Your role does not allow drafting contracts."))
    return _contract_form_page(request, None)


@login_required
@domain_errors
def contract_edit(request: HttpRequest, pk: int) -> HttpResponse:
    contract = selectors.contract_detail(request.user, pk)
    if not services.lines_editable(request.user, contract):
        messages.error(request, _("Only a draft can be edited, by someone who drafts contracts."))
        return redirect("pipeline:contract_detail", pk=pk)
    return _contract_form_page(request, contract)


@login_required
@require_POST
@domain_errors
def contract_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in services.TRANSITIONS:
        raise Http404
    contract = selectors.contract_detail(request.user, pk)
    inputs = {name: request.POST.get(name, "") for name in
              ("reason", "signed_on", "delivered_on", "accepted_on", "completed_on")}
    try:
        services.run_action(actor=request.user, contract=contract, action=action, **inputs)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("pipeline:contract_detail", pk=pk)
    messages.success(request, _("Done: %(action)s.")
                     % {"action": services.TRANSITIONS[action].label})
    return redirect("pipeline:contract_detail", pk=pk)


@login_required
@domain_errors
def instalment_plan(request: HttpRequest, pk: int) -> HttpResponse:
    contract = selectors.contract_detail(request.user, pk)
    existing = list(contract.instalments.all())
    locked = [i for i in existing if i.collected > 0]
    rows = [{"due_on": i.due_on.isoformat(), "amount": i.amount}
            for i in existing if i.collected == 0]
    error = ""
    if request.method == "POST":
        rows, plan = [], []
        for n in range(min(int(request.POST.get("rows", "0") or 0), 120)):
            due_on = request.POST.get(f"due_on_{n}", "").strip()
            amount = request.POST.get(f"amount_{n}", "").strip()
            if not due_on and not amount:
                continue
            rows.append({"due_on": due_on, "amount": amount})
            plan.append((due_on, amount))
        try:
            services.plan_instalments(actor=request.user, contract=contract, plan=plan)
        except (PermissionDenied, NotFound):
            raise
        except DomainError as exc:
            error = str(exc.message)
        else:
            messages.success(request, _("Collection plan saved."))
            return redirect("pipeline:contract_detail", pk=pk)
    rows += [{"due_on": "", "amount": ""} for _n in range(max(3, 6 - len(rows)))]
    return render(request, "pipeline/contract_instalments.html", {
        "contract": contract, "rows": rows, "locked": locked, "error": error,
    })


@login_required
@domain_errors
def receipt_new(request: HttpRequest, pk: int) -> HttpResponse:
    contract = selectors.contract_detail(request.user, pk)
    if request.method == "POST":
        form = ReceiptForm(request.POST, contract=contract)
        if form.is_valid():
            data = form.cleaned_data
            instalment = None
            if data["instalment"]:
                instalment = contract.instalments.filter(pk=int(data["instalment"])).first()
            try:
                receipt = services.record_receipt(
                    actor=request.user, contract=contract, amount=data["amount"],
                    received_on=data["received_on"], method=data["method"],
                    reference=data["reference"], instalment=instalment,
                )
            except ValidationFailed as exc:
                _apply_error(form, exc, set(form.fields))
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                form.add_error(None, str(exc.message))
            else:
                messages.success(request, _("Receipt of ¥%(amount)s recorded.")
                                 % {"amount": receipt.amount})
                return redirect("pipeline:contract_detail", pk=pk)
    else:
        form = ReceiptForm(contract=contract, initial={
            "received_on": timezone.localdate(), "amount": contract.outstanding,
            "method": PaymentMethod.BANK,
        })
    return render(request, "pipeline/contract_receipt_new.html",
                  {"contract": contract, "form": form})


RECEIVABLE_SORTS = {
    "-overdue": ["-overdue", "-id"],
    "-outstanding": ["-outstanding_amount", "-id"],
    "-total": ["-total", "-id"],
}
# The columns of the collections export (?export=csv|xlsx): one row per contract.
RECEIVABLE_EXPORT: list[Column] = [
    (gettext_lazy("Number"), lambda c: c.number),
    (gettext_lazy("Title"), lambda c: c.title),
    (gettext_lazy("Customer"), lambda c: c.customer.name),
    (gettext_lazy("Owner"), lambda c: name_of(c.owner)),
    (gettext_lazy("Status"), lambda c: c.get_status_display()),
    (gettext_lazy("Total (VAT incl.)"), lambda c: money_text(c.total)),
    (gettext_lazy("Collected"), lambda c: money_text(c.collected)),
    (gettext_lazy("Due to date"), lambda c: money_text(c.due)),
    (gettext_lazy("Overdue"), lambda c: money_text(c.overdue)),
    (gettext_lazy("Outstanding"), lambda c: money_text(c.outstanding_amount)),
    (gettext_lazy("Next due"), lambda c: c.next_due_on),
]


@login_required
@domain_errors
def receivables(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    overdue_only = request.GET.get("overdue") == "1"
    owner = _int(request.GET.get("owner"))
    qs = selectors.receivable_contracts(request.user, today=today, overdue_only=overdue_only,
                                        owner=owner)
    fmt = wants_export(request)
    if fmt:
        qs = whole_list(request, qs.select_related("customer", "owner"), sorts=RECEIVABLE_SORTS,
                        default="-overdue")
        return export_response(request, qs, RECEIVABLE_EXPORT, name="receivables", fmt=fmt)
    state = list_page(request, qs, sorts=RECEIVABLE_SORTS, default="-overdue")
    return render(request, "pipeline/receivables.html", {
        "state": state, "today": today, "overdue_only": overdue_only, "owner": owner,
        "summary": selectors.receivable_summary(qs),
        "customers": selectors.receivable_customers(request.user, today=today,
                                                    overdue_only=overdue_only, owner=owner),
        "owners": visible_employees(request.user).order_by("name")[:300],
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "export_links": export_links(request),
    })


# --- Quotes ---------------------------------------------------------------------------------
@login_required
@domain_errors
def quote_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    if status not in QuoteStatus.values:
        status = ""
    qs = selectors.quotes_for(request.user, status=status,
                              customer=_int(request.GET.get("customer")))
    state = list_page(request, qs, sorts={"-created": ["-created_at", "-id"]},
                      default="-created")
    return render(request, "pipeline/quote_list.html", {
        "state": state, "statuses": QuoteStatus.choices, "status": status,
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after=""),
        "can_create": has_perm(request.user, "contract.edit"),
        "export_links": export_links(request),
    })


@login_required
@domain_errors
def quote_detail(request: HttpRequest, pk: int) -> HttpResponse:
    quote = selectors.quote_detail(request.user, pk)
    actions = [
        {"name": a, "label": quote_services.QUOTE_ACTION_LABELS[a],
         "url": reverse("pipeline:quote_action", args=[quote.pk, a])}
        for a in quote_services.quote_actions(request.user, quote)
    ]
    return render(request, "pipeline/quote_detail.html", {
        "quote": quote, "actions": actions, "lines": _with_percents(quote.lines.all()),
    })


@login_required
@domain_errors
def quote_new(request: HttpRequest) -> HttpResponse:
    if not has_perm(request.user, "contract.edit"):
        raise PermissionDenied(_("Your role does not allow drafting quotes."))
    customer = _customer_from_query(request)
    if request.method == "POST":
        form = QuoteForm(request.POST, user=request.user, customer=customer)
        formset = LineFormSet(request.POST, prefix="lines")
        if form.is_valid() and formset.is_valid():
            try:
                quote = quote_services.create_quote(
                    actor=request.user, customer=form.cleaned_data["customer"],
                    lines=_lines_from(formset), valid_until=form.cleaned_data["valid_until"],
                )
            except ValidationFailed as exc:
                _apply_error(form, exc, set(form.fields))
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                form.add_error(None, str(exc.message))
            else:
                messages.success(request, _("Quote %(number)s created.")
                                 % {"number": quote.number})
                return redirect("pipeline:quote_detail", pk=quote.pk)
    else:
        form = QuoteForm(user=request.user, customer=customer)
        formset = LineFormSet(prefix="lines")
    return render(request, "pipeline/quote_form.html", {"form": form, "formset": formset})


_QUOTE_RUNNERS = {
    "send": quote_services.send_quote, "accept": quote_services.accept_quote,
    "reject": quote_services.reject_quote, "convert": quote_services.convert_quote,
}


@login_required
@require_POST
@domain_errors
def quote_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in _QUOTE_RUNNERS:
        raise Http404
    quote = selectors.quote_detail(request.user, pk)
    try:
        result = _QUOTE_RUNNERS[action](actor=request.user, quote=quote)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("pipeline:quote_detail", pk=pk)
    if isinstance(result, Contract):
        messages.success(request, _("Contract %(number)s drafted from this quote.")
                         % {"number": result.number})
        return redirect("pipeline:contract_detail", pk=result.pk)
    messages.success(request, _("Quote updated."))
    return redirect("pipeline:quote_detail", pk=pk)


urlpatterns = [
    path("contracts/", contract_list, name="contract_list"),
    path("contracts/new/", contract_new, name="contract_new"),
    path("contracts/<int:pk>/", contract_detail, name="contract_detail"),
    path("contracts/<int:pk>/edit/", contract_edit, name="contract_edit"),
    path("contracts/<int:pk>/do/<slug:action>/", contract_action, name="contract_action"),
    path("contracts/<int:pk>/instalments/", instalment_plan, name="instalment_plan"),
    path("contracts/<int:pk>/receipts/new/", receipt_new, name="receipt_new"),
    path("receivables/", receivables, name="receivables"),
    path("quotes/", quote_list, name="quote_list"),
    path("quotes/new/", quote_new, name="quote_new"),
    path("quotes/<int:pk>/", quote_detail, name="quote_detail"),
    path("quotes/<int:pk>/do/<slug:action>/", quote_action, name="quote_action"),
]
