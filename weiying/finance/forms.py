"""Forms of the finance desk pages. They parse; every rule lives in the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from weiying.catalog.models import Product
from weiying.catalog.services import VAT_RATES
from weiying.core.scope import visible_employees
from weiying.finance.models import Account, InvoiceKind
from weiying.finance.reports import GROUPS, Slice
from weiying.org.selectors import visible_departments

DATE = {"widget": forms.DateInput(attrs={"type": "date"})}


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


class SliceForm(forms.Form):
    """Period and slice of every report: the department picker lists the viewer's visible
    departments (the subtree below the one picked is included), the rep picker the viewer's
    visible people."""

    start = forms.DateField(label=_("From"), required=False, **DATE)
    end = forms.DateField(label=_("To"), required=False, **DATE)
    department = forms.ModelChoiceField(None, label=_("Department"), required=False,
                                        empty_label=_("Whole scope"))
    owner = forms.ModelChoiceField(None, label=_("Rep"), required=False,
                                   empty_label=_("Anyone"))
    product = forms.ModelChoiceField(Product.objects.order_by("code"), label=_("Product"),
                                     required=False, empty_label=_("Any product"))
    channel = forms.CharField(label=_("Channel"), required=False, max_length=64)

    def __init__(self, data: Any, *, user: Any, products: bool = True) -> None:
        super().__init__(data)
        self.fields["department"].queryset = visible_departments(user).order_by("path")
        self.fields["owner"].queryset = visible_employees(user).order_by("name")
        if not products:
            del self.fields["product"]

    def values(self) -> tuple[dt.date, dt.date, Slice]:
        today = timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        start = data.get("start") or month_start(today)
        end = data.get("end") or today
        where = Slice(department=data.get("department"), owner=data.get("owner"),
                      product=data.get("product"), channel=(data.get("channel") or "").strip())
        return start, end, where


class AsOfForm(SliceForm):
    def values(self) -> tuple[dt.date, dt.date, Slice]:
        start, end, where = super().values()
        return start, end, Slice(department=where.department, owner=where.owner,
                                 channel=where.channel)


class GroupForm(forms.Form):
    by = forms.ChoiceField(label=_("Group by"), required=False, choices=[
        ("department", _("Department")), ("owner", _("Rep")), ("product", _("Product")),
        ("channel", _("Channel")), ("contract", _("Contract")), ("customer", _("Customer")),
    ])

    def group(self) -> str:
        by = self.data.get("by", "department")
        return by if by in GROUPS else "department"


class SpendForm(forms.Form):
    channel = forms.CharField(label=_("Channel"), max_length=64)
    spent_on = forms.DateField(label=_("Spent on"), **DATE)
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2)
    note = forms.CharField(label=_("Note"), required=False, max_length=255)


class VoucherForm(forms.Form):
    on = forms.DateField(label=_("Date"), **DATE)
    summary = forms.CharField(label=_("Summary"), max_length=255)


class VoucherLineForm(forms.Form):
    account = forms.ChoiceField(label=_("Account"), required=False)
    debit = forms.CharField(label=_("Debit"), required=False, max_length=24)
    credit = forms.CharField(label=_("Credit"), required=False, max_length=24)
    summary = forms.CharField(label=_("Summary"), required=False, max_length=255)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [("", "—")] + [
            (a.code, f"{a.code} {a.name}") for a in Account.objects.filter(is_active=True)]

    def line(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if not (data.get("account") or data.get("debit") or data.get("credit")):
            return None
        return {"account": data.get("account", ""), "debit": data.get("debit") or "0",
                "credit": data.get("credit") or "0", "summary": data.get("summary", "")}


VoucherLineFormSet = formset_factory(VoucherLineForm, extra=6, max_num=40)


class ReverseForm(forms.Form):
    on = forms.DateField(label=_("Date of the reversal"), **DATE)
    reason = forms.CharField(label=_("Reason"), max_length=255)


class InvoiceForm(forms.Form):
    number = forms.CharField(label=_("Invoice number"), max_length=32)
    kind = forms.ChoiceField(label=_("Type"), choices=InvoiceKind.choices)
    issued_on = forms.DateField(label=_("Issued on"), **DATE)
    gross = forms.DecimalField(label=_("Amount (VAT incl.)"), max_digits=18, decimal_places=2)
    vat_rate = forms.ChoiceField(label=_("VAT rate"), choices=[
        (str(r), f"{(r * 100).normalize():f}%") for r in VAT_RATES])


class VoidForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255)


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2)
    refunded_on = forms.DateField(label=_("Refunded on"), **DATE)
    reason = forms.CharField(label=_("Reason"), max_length=255)


class BankUploadForm(forms.Form):
    file = forms.FileField(label=_("Statement file (CSV or .xlsx)"))


class BankMatchForm(forms.Form):
    contract = forms.CharField(label=_("Contract number"), max_length=32)
    instalment = forms.IntegerField(label=_("Instalment no. (optional)"), required=False,
                                    min_value=1)


class IgnoreForm(forms.Form):
    note = forms.CharField(label=_("Why it is ignored"), max_length=255)
