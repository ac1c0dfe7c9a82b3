"""The performance desk (/performance/): achievement of a department or a person against
targets (with rankings and the trend), the targets page (list, set, decompose, bottom-up check,
file import) and the KPI catalogue. Views parse the request and call achievement, targets and
kpis; the scope and every rule live there.

Who sees what: a rep their own figures and targets; a manager their subtree; writing needs
targets.manage; exports need the export permission, as every export does.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from weiying.core.errors import DomainError, NotFound, ValidationFailed
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import data_scope_of, scoped, visible_employees
from weiying.org.choices import DataScope
from weiying.org.models import Department, Employee
from weiying.org.selectors import visible_departments
from weiying.performance import achievement, kpis, selectors, targets
from weiying.performance.achievement import display, percent
from weiying.performance.models import Direction, Kpi, Target, Unit
from weiying.performance.selectors import Period
from weiying.web.errors import domain_errors
from weiying.web.exports import export_links, wants_export

DEPARTMENT_SCOPES = (DataScope.ALL, DataScope.SUBTREE, DataScope.DEPARTMENT)


# --- parsing -----------------------------------------------------------------------------------
def sees_departments(user: Any) -> bool:
    return data_scope_of(user) in DEPARTMENT_SCOPES


def _pk(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise NotFound() from None


def subject_of(request: HttpRequest) -> tuple[Employee | None, Department | None]:
    """The person or department the page is about: ?employee= or ?department= within the
    viewer's scope (404 outside it), else the viewer's own department for someone who sees
    departments, else the viewer themself."""
    user = request.user
    data = request.GET if request.method == "GET" else request.POST
    if (pk := _pk(data.get("employee"))) is not None:
        return selectors.employee_for(user, pk), None
    if (pk := _pk(data.get("department"))) is not None:
        if not sees_departments(user):
            raise NotFound()
        return None, selectors.department_for(user, pk)
    me = employee_of(user)
    if sees_departments(user):
        if me is not None:
            return None, me.department
        root = visible_departments(user).filter(parent__isnull=True).order_by("path").first()
        if root is None:
            raise NotFound()
        return None, root
    if me is None:
        raise NotFound()
    return me, None


def period_of(request: HttpRequest) -> tuple[Period, str]:
    """The period asked for (?period=2026-03 | 2026-Q1 | 2026), this month by default; and the
    error to show when the text was not a period."""
    text = (request.GET.get("period") or "").strip()
    if text:
        try:
            return selectors.Period.parse(text), ""
        except ValidationFailed as exc:
            return Period.of(timezone.localdate()), str(exc.message)
    return Period.of(timezone.localdate()), ""


def kpi_of(request: HttpRequest, default: str = "signed_amount") -> Kpi:
    code = request.GET.get("kpi") or default
    found = Kpi.objects.filter(code=code, is_active=True).first()
    if found is None:
        found = Kpi.objects.filter(is_active=True).first()
    if found is None:
        raise NotFound()
    return found


def _export(request: HttpRequest, *, name: str, what: str, headers: list[Any],
            rows: list[list[Any]]) -> HttpResponse:
    from weiying.finance.exports import table_response

    return table_response(request, name=name, what=what, headers=headers, rows=rows,
                          fmt=wants_export(request) or "xlsx")


def _number(kpi: Kpi, value: Any) -> Any:
    """A KPI value for a spreadsheet cell: money in yuan, ratios as fractions, else as is."""
    if value is None:
        return ""
    if kpi.unit == Unit.RATIO:
        return str(value.quantize(targets.RATIO_PLACES))
    return value


def subject_label(employee: Employee | None, department: Department | None) -> str:
    return f"{employee.name} ({employee.number})" if employee else department.name


# --- achievement -------------------------------------------------------------------------------
@login_required
@domain_errors
def overview(request: HttpRequest) -> HttpResponse:
    user = request.user
    employee, department = subject_of(request)
    period, period_error = period_of(request)
    tab = request.GET.get("tab") or "kpis"
    subject = {"employee": employee} if employee else {"department": department}
    context: dict[str, Any] = {
        "employee": employee, "department": department, "period": period,
        "period_error": period_error, "tab": tab, "label": subject_label(employee, department),
        "departments": list(visible_departments(user).order_by("path"))
        if sees_departments(user) else [],
        "kpis": list(Kpi.objects.filter(is_active=True)),
        "export_links": export_links(request),
        "base_query": _query(request, drop=("tab", "export", "kpi", "among", "by", "level")),
    }
    if tab == "rankings":
        return _rankings(request, context, period, employee, department)
    lines = achievement.card(user, period=period, **subject)
    if wants_export(request):
        return _export(request, name="achievement", what="performance.achievement", headers=[
            _("KPI"), _("Unit"), _("Actual"), _("Target"), _("Achievement"), _("Time elapsed"),
            _("Previous period"), _("MoM"), _("A year earlier"), _("YoY")], rows=[
            [ln.kpi.label, ln.kpi.get_unit_display(), _number(ln.kpi, ln.actual),
             _number(ln.kpi, ln.target), percent(ln.achievement), percent(ln.pace),
             _number(ln.kpi, ln.previous), ln.shown["mom"], _number(ln.kpi, ln.year_ago),
             ln.shown["yoy"]] for ln in lines])
    chosen = kpi_of(request)
    data = achievement.trend(user, kpis=[chosen], **subject)
    context.update({
        "lines": lines, "chosen": chosen,
        "trend": {"type": "line", "title": chosen.label, "categories": data["months"],
                  "series": [{"name": _("Actual"), "data": data["series"][chosen.code]},
                             {"name": _("Target"), "data": data["targets"][chosen.code]}]},
        "bars": {"type": "bar", "title": _("Achievement (%)"),
                 "categories": [ln.kpi.label for ln in lines if ln.achievement is not None],
                 "series": [{"name": _("Achievement (%)"), "data": [
                     float(round(ln.achievement * 100, 1)) for ln in lines
                     if ln.achievement is not None]}]},
    })
    return render(request, "performance/overview.html", context)


def _query(request: HttpRequest, *, drop: tuple[str, ...] = ()) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in request.GET.items() if k not in drop and v})


def _rankings(request: HttpRequest, context: dict[str, Any], period: Period,
              employee: Employee | None, department: Department | None) -> HttpResponse:
    user = request.user
    kpi = kpi_of(request)
    among = request.GET.get("among") or "team"
    among = among if among in achievement.AMONG else "team"
    by = request.GET.get("by") or "achievement"
    by = by if by in achievement.BY else "achievement"
    levels = sorted({lv for lv in visible_employees(user).exclude(level="")
                     .values_list("level", flat=True)})
    level = request.GET.get("level") or (employee.level if employee else "") or (
        levels[0] if levels else "")
    team = department or (employee.department if employee else None)
    if employee is not None and not sees_departments(user):
        # A rep learns their place, not their colleagues' figures.
        mine, size = achievement.rank_in_team(user, employee=employee, period=period, kpi=kpi)
        context.update({"kpi": kpi, "among": "team", "by": by, "rows": [], "mine": mine,
                        "size": size, "levels": [], "level": ""})
    else:
        if among == "team" and team is not None and employee is not None:
            team = selectors.department_for(user, team.pk)
        rows = achievement.ranking(user, period=period, kpi=kpi, among=among,
                                   department=team if among == "team" else None,
                                   level=level, by=by)
        context.update({"kpi": kpi, "among": among, "by": by, "rows": rows, "levels": levels,
                        "level": level})
    if wants_export(request):
        return _export(request, name="ranking", what="performance.ranking", headers=[
            _("Rank"), _("Employee number"), _("Name"), _("Department"), _("Actual"),
            _("Target"), _("Achievement")], rows=[
            [r.rank or "", r.employee.number, r.employee.name, r.employee.department.name,
             _number(kpi, r.actual), _number(kpi, r.target), percent(r.achievement)]
            for r in context["rows"]])
    for r in context["rows"]:
        r.shown = {"actual": display(kpi, r.actual), "target": display(kpi, r.target),
                   "achievement": percent(r.achievement)}
    return render(request, "performance/overview.html", context)


# --- targets -----------------------------------------------------------------------------------
def _targets_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    period, period_error = period_of(request)
    department = None
    if sees_departments(user):
        pk = _pk(request.GET.get("department"))
        me = employee_of(user)
        department = (selectors.department_for(user, pk) if pk is not None
                      else (me.department if me else visible_departments(user)
                            .filter(parent__isnull=True).order_by("path").first()))
    kpi = kpi_of(request)
    rows = list(targets.target_list(user, period=period,
                                    department=department)[:500])
    for t in rows:
        t.shown = display(t.kpi, t.value)
    check = None
    if department is not None:
        check = targets.bottom_up(user, department=department, period=period, kpi=kpi)
        for p in check.parts:
            p.shown = display(kpi, p.value)
        check.shown = {"own": display(kpi, check.own), "sum": display(kpi, check.children_sum),
                       "gap": display(kpi, check.gap)}
    can_manage = has_perm(user, "targets.manage")
    return {
        "period": period, "period_error": period_error, "department": department,
        "departments": list(visible_departments(user).order_by("path"))
        if sees_departments(user) else [],
        "people": list(visible_employees(user).select_related("department")
                       .order_by("department__path", "number")[:500]) if can_manage else [],
        "kpis": list(Kpi.objects.filter(is_active=True)), "kpi": kpi, "rows": rows,
        "check": check, "can_manage": can_manage, "export_links": export_links(request),
        "methods": [("equal", _("Equally")), ("headcount", _("By headcount")),
                    ("last_year", _("By last year's actual share"))],
        "intos": [("members", _("Among teams and members")), ("quarters", _("Into quarters")),
                  ("months", _("Into months"))],
        "query": _query(request, drop=("export",)),
    }


@login_required
@domain_errors
def target_list(request: HttpRequest) -> HttpResponse:
    context = _targets_context(request)
    if wants_export(request):
        return _export(request, name="targets", what="performance.target", headers=[
            _("Period"), _("KPI"), _("Employee number"), _("Employee"), _("Department"),
            _("Product line"), _("Target"), _("Decomposed from"), _("Updated")], rows=[
            [Period.of(t.start, t.kind).label, t.kpi.label,
             t.employee.number if t.employee_id else "",
             t.employee.name if t.employee_id else "",
             t.department.name if t.department_id else "", t.line, _number(t.kpi, t.value),
             t.parent_id or "", timezone.localtime(t.updated_at).strftime("%Y-%m-%d %H:%M")]
            for t in context["rows"]])
    return render(request, "performance/targets.html", context)


def _back(request: HttpRequest) -> HttpResponse:
    query = request.POST.get("back") or ""
    return redirect(reverse("performance:targets") + (f"?{query}" if query else ""))


@login_required
@require_POST
@domain_errors
def target_set(request: HttpRequest) -> HttpResponse:
    require(request.user, "targets.manage")
    data = request.POST
    try:
        period = targets.parse_period(data.get("period", ""))
        kind, _sep, pk = (data.get("subject") or "").partition(":")
        if kind not in ("e", "d") or not pk.isdigit():
            raise ValidationFailed(_("Choose the employee or department the target is for."))
        subject = {"employee": int(pk)} if kind == "e" else {"department": int(pk)}
        target = targets.set_target(actor=request.user, kpi=data.get("kpi", ""), period=period,
                                    value=data.get("value", ""), line=data.get("line", ""),
                                    note=data.get("note", ""), **subject)
    except (ValidationFailed, DomainError) as exc:
        if isinstance(exc, NotFound):
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Target saved: %(value)s.")
                         % {"value": display(target.kpi, target.value)})
    return _back(request)


@login_required
@require_POST
@domain_errors
def target_decompose(request: HttpRequest, pk: int) -> HttpResponse:
    require(request.user, "targets.manage")
    target = scoped(Target.objects.all(), request.user).filter(pk=pk).first()
    if target is None:
        raise NotFound()
    try:
        parts = targets.decompose(actor=request.user, target=target,
                                  method=request.POST.get("method", "equal"),
                                  into=request.POST.get("into", "members"))
    except (ValidationFailed, DomainError) as exc:
        if isinstance(exc, NotFound):
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Decomposed into %(n)s parts.") % {"n": len(parts)})
    return _back(request)


@login_required
@domain_errors
def target_import(request: HttpRequest) -> HttpResponse:
    require(request.user, "targets.manage")
    report = None
    error = ""
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            error = _("Choose a CSV or Excel file to import.")
        else:
            try:
                report = targets.import_targets(upload, actor=request.user,
                                                file_name=upload.name)
            except ValidationFailed as exc:
                error = str(exc.message)
    status = 400 if error or (report is not None and not report.ok) else 200
    return render(request, "performance/target_import.html",
                  {"report": report, "error": error}, status=status)


# --- the KPI catalogue -------------------------------------------------------------------------
@login_required
@domain_errors
def kpi_list(request: HttpRequest) -> HttpResponse:
    can_manage = has_perm(request.user, "targets.manage")
    form: dict[str, str] = {}
    error = ""
    status = 200
    if request.method == "POST":
        require(request.user, "targets.manage")
        form = {k: request.POST.get(k, "") for k in ("code", "name", "unit", "direction",
                                                     "formula", "definition")}
        try:
            kpi = kpis.save_custom(actor=request.user, **form)
        except DomainError as exc:
            error = str(exc.message)
            status = 400
        else:
            messages.success(request, _("KPI %(name)s saved.") % {"name": kpi.label})
            return redirect("performance:kpis")
    from weiying.performance.measures import MEASURES

    return render(request, "performance/kpis.html", {
        "rows": list(Kpi.objects.all()), "can_manage": can_manage, "form": form,
        "error": error, "units": Unit.choices, "directions": Direction.choices,
        "measures": sorted(MEASURES),
    }, status=status)
