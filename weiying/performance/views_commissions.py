"""Commission desk pages (/performance/commissions/): the month's statements (scoped: a rep sees
their own, a manager their subtree's) with the payroll export, a statement with its lines and
the approve / reject / submit / recompute buttons, and the plans with their tiers. Views parse
and call weiying.performance.commissions; every rule lives there."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from weiying.core.permissions import has_perm, require
from weiying.org.models import Employee
from weiying.org.selectors import visible_departments
from weiying.performance import commissions as svc
from weiying.performance.models import (
    Accumulation,
    CommissionBasis,
    CommissionPlan,
    Kpi,
    StatementStatus,
)
from weiying.web.errors import domain_errors
from weiying.web.exports import export_links, export_response, wants_export
from weiying.web.lists import list_page, whole_list

SORTS = {"employee": ["employee__number", "id"], "-amount": ["-amount", "id"],
         "department": ["department__path", "employee__number", "id"]}


# --- forms -------------------------------------------------------------------------------------
class PlanForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=128)
    basis = forms.ChoiceField(label=gettext_lazy("Basis"), choices=CommissionBasis.choices)
    line = forms.CharField(label=gettext_lazy("Product line (empty: all lines)"),
                           max_length=64, required=False)
    kpi = forms.ChoiceField(label=gettext_lazy("KPI whose achievement picks the tier"),
                            required=False)
    accumulation = forms.ChoiceField(label=gettext_lazy("How the tiers apply"),
                                     choices=Accumulation.choices)
    floor = forms.CharField(label=gettext_lazy("Floor (%)"), max_length=16, required=False,
                            initial="0")
    cap = forms.CharField(label=gettext_lazy("Cap per statement (¥, empty: none)"),
                          max_length=24, required=False)
    valid_from = forms.CharField(label=gettext_lazy("Valid from"), max_length=10,
                                 widget=forms.DateInput(attrs={"type": "date"}))
    valid_to = forms.CharField(label=gettext_lazy("Valid until"), max_length=10,
                               required=False, widget=forms.DateInput(attrs={"type": "date"}))
    levels = forms.CharField(label=gettext_lazy("Levels (comma-separated, empty: all)"),
                             max_length=255, required=False)
    department = forms.ChoiceField(label=gettext_lazy("Department (with its subtree)"),
                                   required=False)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kpi"].choices = [("", _("The basis's own KPI"))] + [
            (k.code, k.label) for k in Kpi.objects.filter(is_active=True)]
        self.fields["department"].choices = [("", _("Whole company"))] + [
            (str(d.pk), d.name) for d in visible_departments(user)]
        self._user = user

    def chosen_department(self) -> Any:
        pk = self.cleaned_data.get("department")
        if not pk:
            return None
        found = visible_departments(self._user).filter(pk=pk).first()
        if found is None:
            raise NotFound(_("No department with that id is in your view."))
        return found


class TierForm(forms.Form):
    from_pct = forms.CharField(label=gettext_lazy("From achievement (%)"), max_length=16,
                               required=False)
    to_pct = forms.CharField(label=gettext_lazy("To achievement (%, empty: and above)"),
                             max_length=16, required=False)
    rate = forms.CharField(label=gettext_lazy("Rate (%)"), max_length=16, required=False)

    def row(self) -> dict[str, str] | None:
        data = getattr(self, "cleaned_data", {}) or {}
        if not any((data.get(k) or "").strip() for k in ("from_pct", "to_pct", "rate")):
            return None
        return {k: (data.get(k) or "").strip() for k in ("from_pct", "to_pct", "rate")}


TierFormSet = forms.formset_factory(TierForm, extra=2, max_num=20)


# --- helpers -----------------------------------------------------------------------------------
def _render(request: HttpRequest, template: str, context: dict[str, Any],
            status: int = 200) -> HttpResponse:
    context.setdefault("can_manage", has_perm(request.user, "commission.manage"))
    context.setdefault("can_approve", has_perm(request.user, "commission.approve"))
    return render(request, f"performance/{template}", context, status=status)


def _month(request: HttpRequest) -> str:
    raw = request.GET.get("month", "").strip()
    if raw:
        return raw
    today = timezone.localdate()
    last = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last:%Y-%m}"


HAS_PAYROLL_NUMBER = any(f.name == "payroll_number" for f in Employee._meta.get_fields())


def payroll_columns() -> list[tuple[str, Any]]:
    """The payroll sheet: headers as payroll systems import them."""
    columns: list[tuple[str, Any]] = [
        ("工号", lambda s: s.employee.number),
        ("姓名", lambda s: s.employee.name),
        ("部门", lambda s: s.department.name),
        ("月份", lambda s: f"{s.month:%Y-%m}"),
        ("计提基数", lambda s: str(s.basis)),
        ("达成率", lambda s: "" if s.achievement is None
         else f"{s.achievement.quantize(svc.Decimal('0.01'))}%"),
        ("提成金额", lambda s: str(s.amount)),
        ("状态", lambda s: s.get_status_display()),
    ]
    if HAS_PAYROLL_NUMBER:
        columns.append(("工资号", lambda s: getattr(s.employee, "payroll_number", "")))
    return columns


# --- statements --------------------------------------------------------------------------------
@login_required
@domain_errors
def commission_statements(request: HttpRequest) -> HttpResponse:
    month = _month(request)
    status = request.GET.get("status", "")
    department = request.GET.get("department", "") or None
    error = ""
    try:
        qs = svc.statements_for(request.user, month=month, status=status,
                                department=department)
    except ValidationFailed as exc:
        error = str(exc.message)
        qs = svc.statements_for(request.user).none()
    fmt = wants_export(request)
    if fmt and not error:
        rows = whole_list(request, qs, sorts=SORTS, default="department")
        return export_response(request, rows, payroll_columns(),
                               name=f"commissions-{month}", fmt=fmt)
    state = list_page(request, qs, sorts=SORTS, default="department")
    return _render(request, "commission_list.html", {
        "state": state, "month": month, "status": status, "department": department or "",
        "statuses": StatementStatus.choices, "error": error,
        "departments": visible_departments(request.user),
        "export_links": export_links(request) if not error else {},
        "next_url": state.with_params(after=state.page.next_cursor),
        "first_url": state.with_params(after="")}, status=400 if error else 200)


@login_required
@domain_errors
@require_POST
def commission_compute(request: HttpRequest) -> HttpResponse:
    require(request.user, "commission.manage")
    month = request.POST.get("month", "").strip()
    try:
        result = svc.compute_month(actor=request.user, month=month)
    except (PermissionDenied, NotFound):
        raise
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect(_list_url())
    messages.success(request, _("%(n)s statements computed for %(month)s.")
                     % {"n": len(result.statements), "month": result.period.label})
    for _employee, reason in result.skipped:
        messages.warning(request, reason)
    return redirect(f"{_list_url()}?month={result.period.label}")


def _list_url() -> str:
    from django.urls import reverse

    return reverse("performance:commission_statements")


@login_required
@domain_errors
def commission_statement(request: HttpRequest, pk: int) -> HttpResponse:
    statement = svc.statement_detail(request.user, pk)
    lines = svc.lines_of(statement)
    bands = {p.get("plan_id"): p.get("bands") for p in statement.figures.get("plans", [])}
    for line in lines:
        line.bands = bands.get(line.plan_id) or []
    editable = statement.status in svc.EDITABLE
    return _render(request, "commission_detail.html", {
        "statement": statement, "lines": lines,
        "may_approve": svc.may_approve(request.user, statement),
        "may_submit": has_perm(request.user, "commission.manage")
        and statement.status == StatementStatus.DRAFT,
        "may_recompute": has_perm(request.user, "commission.manage") and editable})


ACTIONS = ("submit", "approve", "reject", "recompute")


@login_required
@domain_errors
@require_POST
def commission_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in ACTIONS:
        raise Http404
    statement = svc.statement_detail(request.user, pk)
    try:
        if action == "submit":
            svc.submit_statement(actor=request.user, statement=statement)
            done = _("Statement submitted for approval.")
        elif action == "approve":
            svc.approve_statement(actor=request.user, statement=statement)
            done = _("Statement approved.")
        elif action == "reject":
            svc.reject_statement(actor=request.user, statement=statement,
                                 reason=request.POST.get("reason", ""))
            done = _("Statement rejected.")
        else:
            statement = svc.recompute_statement(actor=request.user, statement=statement)
            done = _("Statement recomputed.")
    except NotFound:
        raise
    except PermissionDenied as exc:
        if exc.code != "own_statement":
            raise
        messages.error(request, str(exc.message))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, done)
    return redirect("performance:commission_statement", pk=statement.pk)


# --- plans -------------------------------------------------------------------------------------
@login_required
@domain_errors
def commission_plans(request: HttpRequest) -> HttpResponse:
    plans = list(svc.plans_for(request.user))
    for plan in plans:
        plan.tier_rows = list(plan.tiers.all())
    return _render(request, "commission_plans.html", {"plans": plans})


@login_required
@domain_errors
def commission_plan_new(request: HttpRequest) -> HttpResponse:
    return _plan_form(request, None)


@login_required
@domain_errors
def commission_plan_edit(request: HttpRequest, pk: int) -> HttpResponse:
    plan = svc.plans_for(request.user).filter(pk=pk).first()
    if plan is None:
        raise Http404
    return _plan_form(request, plan)


def _plan_initial(plan: CommissionPlan | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if plan is None:
        return ({"basis": CommissionBasis.COLLECTED, "accumulation": Accumulation.WHOLE,
                 "floor": "0", "is_active": True,
                 "valid_from": timezone.localdate().replace(day=1).isoformat()},
                [{"from_pct": "0"}])
    return ({"name": plan.name, "basis": plan.basis, "line": plan.line, "kpi": plan.kpi,
             "accumulation": plan.accumulation, "floor": svc.pct(plan.floor),
             "cap": "" if plan.cap is None else str(plan.cap),
             "valid_from": plan.valid_from.isoformat(),
             "valid_to": plan.valid_to.isoformat() if plan.valid_to else "",
             "levels": plan.levels,
             "department": str(plan.department_id or ""), "is_active": plan.is_active},
            [{"from_pct": svc.pct(t.from_pct),
              "to_pct": "" if t.to_pct is None else svc.pct(t.to_pct),
              "rate": svc.pct(t.rate)} for t in plan.tiers.all()])


def _plan_form(request: HttpRequest, plan: CommissionPlan | None) -> HttpResponse:
    require(request.user, "commission.manage")
    problems: list[str] = []
    if request.method == "POST":
        form = PlanForm(request.POST, user=request.user)
        tiers = TierFormSet(request.POST, prefix="tiers")
        if form.is_valid() and tiers.is_valid():
            data = form.cleaned_data
            try:
                saved = svc.save_plan(
                    actor=request.user, plan=plan, name=data["name"], basis=data["basis"],
                    line=data["line"], kpi=data["kpi"], accumulation=data["accumulation"],
                    floor=data["floor"], cap=data["cap"], valid_from=data["valid_from"],
                    valid_to=data["valid_to"], levels=data["levels"],
                    department=form.chosen_department(), is_active=data["is_active"],
                    tiers=[r for f in tiers.forms if (r := f.row()) is not None])
            except (PermissionDenied, NotFound):
                raise
            except DomainError as exc:
                problems = [e["message"] for e in exc.errors] or [str(exc.message)]
            else:
                messages.success(request, _("Plan %(name)s saved.") % {"name": saved.name})
                return redirect("performance:commission_plans")
        else:
            problems = [_("Check the fields marked below.")]
    else:
        initial, tier_rows = _plan_initial(plan)
        form = PlanForm(initial=initial, user=request.user)
        tiers = TierFormSet(initial=tier_rows, prefix="tiers")
    return _render(request, "commission_plan_form.html", {
        "form": form, "tiers": tiers, "plan": plan, "problems": problems},
        status=400 if problems else 200)
