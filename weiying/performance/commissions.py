"""Commissions: saving plans with their tiers, computing a month's statements from the daily
facts, and the statement's life (submit, approve, reject); plus the scoped reads the desk, the
phone page and the API share.

How one line of a statement is computed (one plan × one rep × one month):
1. The basis: the rep's collected cash (`collected`, or `collected_by_line` for one line) or
   recognised revenue (`revenue`, per line when the plan has one) summed over the month from
   the daily facts, in fen.
2. The achievement: the plan's KPI (by default the basis's own) over the month against the
   rep's monthly target on that KPI (for the plan's line when the KPI is kept per line and a
   target for the line exists, otherwise all lines). No target (or a target of zero): the
   lowest tier applies, and the line says so.
3. The tier and the amount: 全额累进 (whole) or 超额累进 (banded), see models_commissions; the
   amount is rounded half-up to the fen once, then the plan's cap applies.
A statement is one rep's lines for the month; its basis and amount are the lines' sums.

Limitation: only monthly targets count; a rep with a quarterly or yearly target but no monthly
one is treated as having no target (the lowest tier applies and the line says so).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from weiying.core import audit, tree
from weiying.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.events import emit
from weiying.core.money import money
from weiying.core.permissions import employee_of, has_perm, require
from weiying.core.scope import scoped, visible_employees
from weiying.org.models import Assignment, Department, Employee
from weiying.performance import selectors
from weiying.performance.kpis import Evaluator, measures_for
from weiying.performance.models import (
    Accumulation,
    CommissionBasis,
    CommissionLine,
    CommissionPlan,
    CommissionStatement,
    CommissionTier,
    Kpi,
    StatementStatus,
)
from weiying.performance.selectors import Period

HUNDRED = Decimal(100)
MAX_PERCENT = Decimal("10000")  # an achievement bound beyond 10,000 % is a typing mistake


def pct(value: Decimal | None) -> str:
    """80.0000 → "80", 7.5000 → "7.5" (a percentage as people write it)."""
    if value is None:
        return "—"
    text = f"{value.normalize():f}"
    return text


# --- plans -------------------------------------------------------------------------------------
@dataclass
class TierIn:
    from_pct: Decimal
    to_pct: Decimal | None
    rate: Decimal


def _number(value: Any, *, label: str, field_name: str, problems: list[dict[str, str]],
            optional: bool = False) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        problems.append({"field": field_name, "message": _(
            "%(what)s is missing; write a percentage such as 80 or 7.5.") % {"what": label}})
        return None
    if isinstance(value, float):
        value = str(value)
    try:
        number = Decimal(str(value).strip().rstrip("%").strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        problems.append({"field": field_name, "message": _(
            "%(what)s: %(value)s is not a number; write a percentage such as 80 or 7.5.")
            % {"what": label, "value": value}})
        return None
    return number


def check_tiers(rows: Iterable[dict[str, Any]], *, floor: Decimal = Decimal(0)) -> list[TierIn]:
    """The tiers as entered (in order), checked: they start at the floor, follow each other
    without gap or overlap, each ends above where it starts, rates are 0–100 %, and at most
    one is open-ended — the last. Raises ValidationFailed naming every problem."""
    problems: list[dict[str, str]] = []
    parsed: list[tuple[int, Decimal | None, Decimal | None, Decimal | None]] = []
    for n, row in enumerate(rows, start=1):
        label = _("tier %(n)s") % {"n": n}
        start = _number(row.get("from_pct"), label=_("%(tier)s's start") % {"tier": label},
                        field_name=f"tiers.{n}.from_pct", problems=problems)
        end = _number(row.get("to_pct"), label=_("%(tier)s's end") % {"tier": label},
                      field_name=f"tiers.{n}.to_pct", problems=problems, optional=True)
        rate = _number(row.get("rate"), label=_("%(tier)s's rate") % {"tier": label},
                       field_name=f"tiers.{n}.rate", problems=problems)
        parsed.append((n, start, end, rate))
    if not parsed:
        raise ValidationFailed(_("A plan needs at least one tier; add one starting at "
                                 "%(floor)s %%.") % {"floor": pct(floor)}, field="tiers")

    for n, start, end, rate in parsed:
        if rate is not None and not (0 <= rate <= HUNDRED):
            problems.append({"field": f"tiers.{n}.rate", "message": _(
                "Tier %(n)s's rate is %(rate)s %%; a rate must be between 0 %% and 100 %%.")
                % {"n": n, "rate": pct(rate)}})
        if start is not None and end is not None and end <= start:
            problems.append({"field": f"tiers.{n}.to_pct", "message": _(
                "Tier %(n)s ends at %(end)s %%, not above where it starts (%(start)s %%); make "
                "it end above %(start)s %%.") % {"n": n, "end": pct(end), "start": pct(start)}})
        for bound in (start, end):
            if bound is not None and (bound < 0 or bound > MAX_PERCENT):
                problems.append({"field": f"tiers.{n}", "message": _(
                    "Tier %(n)s has a bound of %(value)s %%; achievement bounds lie between "
                    "0 %% and 10000 %%.") % {"n": n, "value": pct(bound)}})

    first = parsed[0]
    if first[1] is not None and first[1] != floor:
        problems.append({"field": "tiers.1.from_pct", "message": _(
            "Tier 1 starts at %(start)s %%; the first tier must start at the plan's floor, "
            "%(floor)s %%. Make tier 1 start at %(floor)s %%.")
            % {"start": pct(first[1]), "floor": pct(floor)}})

    open_ended = [n for n, _s, end, _r in parsed if end is None]
    if len(open_ended) > 1:
        problems.append({"field": "tiers", "message": _(
            "Tiers %(tiers)s have no end; only the last tier may be open-ended. Give the "
            "others an end.") % {"tiers": ", ".join(str(n) for n in open_ended)}})
    elif open_ended and open_ended[0] != len(parsed):
        n = open_ended[0]
        problems.append({"field": f"tiers.{n}.to_pct", "message": _(
            "Tier %(n)s has no end, so it must be the last tier; give it an end where tier "
            "%(next)s starts, or remove the tiers after it.") % {"n": n, "next": n + 1}})

    for (n, _s, end, _r), (m, start, _e, _r2) in zip(parsed, parsed[1:], strict=False):
        if end is None or start is None:
            continue
        if end < start:
            problems.append({"field": f"tiers.{m}.from_pct", "message": _(
                "Tier %(n)s ends at %(end)s %% but tier %(m)s starts at %(start)s %%, leaving "
                "a gap; make tier %(m)s start at %(end)s %%.")
                % {"n": n, "m": m, "end": pct(end), "start": pct(start)}})
        elif end > start:
            problems.append({"field": f"tiers.{m}.from_pct", "message": _(
                "Tier %(n)s ends at %(end)s %% but tier %(m)s starts at %(start)s %%, so they "
                "overlap; make tier %(m)s start at %(end)s %%.")
                % {"n": n, "m": m, "end": pct(end), "start": pct(start)}})

    if problems:
        raise ValidationFailed(" ".join(p["message"] for p in problems), field="tiers",
                               errors=problems)
    return [TierIn(start, end, rate) for _n, start, end, rate in parsed]  # type: ignore[arg-type]


def _plan_values(*, name: str, basis: str, line: str, kpi: str, accumulation: str,
                 floor: Any, cap: Any, valid_from: Any, valid_to: Any, levels: str,
                 department: Department | None) -> dict[str, Any]:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Give the plan a name."), field="name")
    if basis not in CommissionBasis.values:
        raise ValidationFailed(_("Pick the basis: collected cash or recognised revenue."),
                               field="basis")
    if accumulation not in Accumulation.values:
        raise ValidationFailed(_("Pick how the tiers apply: the whole basis at the tier "
                                 "reached (全额累进) or each band at its own rate (超额累进)."),
                               field="accumulation")
    kpi = (kpi or "").strip()
    if kpi and not Kpi.objects.filter(code=kpi, is_active=True).exists():
        raise ValidationFailed(_("There is no active KPI %(code)s; pick one from the KPI "
                                 "catalogue or leave it empty for the basis's own.")
                               % {"code": kpi}, field="kpi")
    problems: list[dict[str, str]] = []
    floor_value = _number(floor if floor not in (None, "") else "0", label=_("The floor"),
                          field_name="floor", problems=problems)
    if problems:
        raise ValidationFailed(problems[0]["message"], field="floor")
    assert floor_value is not None
    if not (0 <= floor_value < HUNDRED * 100):
        raise ValidationFailed(_("The floor is an achievement from 0 %; write e.g. 0 or 60."),
                               field="floor")
    cap_value = None
    if cap not in (None, ""):
        try:
            cap_value = money(cap)
        except (ValueError, TypeError, InvalidOperation):
            raise ValidationFailed(_("The cap %(value)s is not an amount; write yuan, e.g. "
                                     "20000 or 20000.00.") % {"value": cap},
                                   field="cap") from None
        if cap_value <= 0:
            raise ValidationFailed(_("A cap must be above zero; leave it empty for no cap."),
                                   field="cap")
    start, end = _day(valid_from, "valid_from"), _day(valid_to, "valid_to", optional=True)
    if start is None:
        raise ValidationFailed(_("Give the first day the plan is valid."), field="valid_from")
    if end is not None and end < start:
        raise ValidationFailed(_("The plan ends on %(end)s, before it starts (%(start)s); "
                                 "make the end %(start)s or later.")
                               % {"end": end.isoformat(), "start": start.isoformat()},
                               field="valid_to")
    clean_levels = ",".join(x.strip() for x in (levels or "").replace("，", ",").split(",")
                            if x.strip())
    return {"name": name, "basis": basis, "line": (line or "").strip(), "kpi": kpi,
            "accumulation": accumulation, "floor": floor_value, "cap": cap_value,
            "valid_from": start, "valid_to": end, "levels": clean_levels,
            "department": department}


def _day(value: Any, field_name: str, *, optional: bool = False) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(_("%(value)s is not a date; write YYYY-MM-DD.")
                               % {"value": value}, field=field_name) from None


@transaction.atomic
def save_plan(*, actor: Any, plan: CommissionPlan | None = None, tiers: list[dict[str, Any]],
              name: str, basis: str = CommissionBasis.COLLECTED, line: str = "", kpi: str = "",
              accumulation: str = Accumulation.WHOLE, floor: Any = "0", cap: Any = None,
              valid_from: Any, valid_to: Any = None, levels: str = "",
              department: Department | None = None, is_active: bool = True) -> CommissionPlan:
    """Create or change a plan and replace its tiers; every check first, nothing written on
    any error. Statements already computed keep the tiers they were computed with."""
    require(actor, "commission.manage")
    values = _plan_values(name=name, basis=basis, line=line, kpi=kpi, accumulation=accumulation,
                          floor=floor, cap=cap, valid_from=valid_from, valid_to=valid_to,
                          levels=levels, department=department)
    checked = check_tiers(tiers, floor=values["floor"])
    before = None
    if plan is None:
        plan = CommissionPlan(**values, is_active=is_active)
    else:
        before = {**audit.snapshot(plan), "tiers": _tiers_snapshot(plan)}
        for key, value in values.items():
            setattr(plan, key, value)
        plan.is_active = is_active
    plan.save()
    plan.tiers.all().delete()
    CommissionTier.objects.bulk_create([
        CommissionTier(plan=plan, seq=n, from_pct=t.from_pct, to_pct=t.to_pct, rate=t.rate)
        for n, t in enumerate(checked, start=1)])
    after = {**audit.snapshot(plan), "tiers": _tiers_snapshot(plan)}
    audit.record(actor, "commission.plan_saved", plan, before=before, after=after)
    emit("commission_plan.saved", plan, actor=actor, plan_id=plan.pk)
    return plan


def _tiers_snapshot(plan: CommissionPlan) -> list[list[str | None]]:
    return [[str(t.from_pct), None if t.to_pct is None else str(t.to_pct), str(t.rate)]
            for t in plan.tiers.order_by("seq")]


def plans_for(user: Any) -> QuerySet[CommissionPlan]:
    """The plans (rules, not business rows): readable with commission.manage or
    commission.approve."""
    if not (has_perm(user, "commission.manage") or has_perm(user, "commission.approve")):
        require(user, "commission.manage")
    return CommissionPlan.objects.select_related("department").prefetch_related("tiers")


# --- the arithmetic ----------------------------------------------------------------------------
@dataclass
class Outcome:
    tier: int | None
    rate: Decimal
    uncapped: Decimal
    amount: Decimal
    capped: bool
    bands: list[dict[str, str]] = field(default_factory=list)


def apply_tiers(tiers: list[CommissionTier] | list[TierIn], *, basis: Decimal,
                achievement: Decimal | None, accumulation: str,
                cap: Decimal | None = None) -> Outcome:
    """The commission on `basis` (yuan) at `achievement` (%, None: no target → the lowest
    tier). Pure arithmetic; see the module docstrings for the two accumulations."""
    ordered = list(tiers)
    if not ordered:
        return Outcome(None, Decimal(0), money(0), money(0), False)
    first = ordered[0]
    reached: int | None
    if achievement is None:
        reached = 1
    elif achievement < first.from_pct:
        reached = None
    else:
        reached = 1
        for n, t in enumerate(ordered, start=1):
            if achievement >= t.from_pct:
                reached = n
    if reached is None:
        return Outcome(None, Decimal(0), money(0), money(0), False)
    rate = ordered[reached - 1].rate
    bands: list[dict[str, str]] = []
    if accumulation == Accumulation.BANDED and achievement is not None and achievement > 0:
        exact = Decimal(0)
        for n, t in enumerate(ordered[:reached], start=1):
            top = achievement if n == reached or t.to_pct is None else min(achievement,
                                                                           t.to_pct)
            share = basis * (top - t.from_pct) / achievement
            part = share * t.rate / HUNDRED
            exact += part
            bands.append({"tier": str(n), "from": str(t.from_pct), "to": str(top),
                          "basis": str(money(share)), "rate": pct(t.rate),
                          "amount": str(money(part))})
        uncapped = money(exact)
    else:
        # Whole, or banded with no target / zero achievement: everything sits in one band.
        uncapped = money(basis * rate / HUNDRED)
    amount, capped = uncapped, False
    if cap is not None and amount > cap:
        amount, capped = money(cap), True
    return Outcome(reached, rate, uncapped, amount, capped, bands)


# --- who a plan covers -------------------------------------------------------------------------
def plans_in(period: Period) -> list[CommissionPlan]:
    return list(CommissionPlan.objects.filter(is_active=True, valid_from__lte=period.end)
                .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=period.start))
                .select_related("department").prefetch_related("tiers").order_by("id"))


def covered_ids(plan: CommissionPlan, period: Period) -> set[int]:
    """Everyone who held a post matching the plan (its level filter, its subtree) on some day
    of the month, by the HR history, and was employed then (hired by the month's end, not
    gone before it began)."""
    held = Assignment.objects.filter(starts_on__lte=period.end).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gt=period.start)).filter(
        Q(employee__hire_date__isnull=True) | Q(employee__hire_date__lte=period.end),
        Q(employee__leave_date__isnull=True) | Q(employee__leave_date__gte=period.start))
    if plan.department_id:
        held = held.filter(tree.subtree_q("department__path", plan.department.path))
    if plan.level_list:
        held = held.filter(level__in=plan.level_list)
    return set(held.values_list("employee_id", flat=True))


def _department_at(employee_ids: Iterable[int], day: dt.date) -> dict[int, int]:
    """Each employee's department on `day` (the HR history)."""
    out: dict[int, int] = {}
    rows = (Assignment.objects.filter(employee_id__in=list(employee_ids), starts_on__lte=day)
            .order_by("employee_id", "starts_on").values_list("employee_id", "department_id"))
    for employee_id, department_id in rows:
        out[employee_id] = department_id  # the latest stretch started by that day wins
    return out


# --- computing a month -------------------------------------------------------------------------
def parse_month(month: Any) -> Period:
    if isinstance(month, Period):
        period = month
    elif isinstance(month, dt.date):
        period = Period.month(month.year, month.month)
    else:
        period = Period.parse(str(month))
    if period.kind != "month":
        raise ValidationFailed(_("Statements are monthly; give a month such as 2026-03."),
                               field="month")
    return period


def _targets(kpi: str, period: Period, employee_ids: set[int]) -> dict[tuple[int, str], Decimal]:
    """{(employee id, line): monthly target value} on the KPI."""
    from django.apps import apps

    try:
        target_model = apps.get_model("performance", "Target")
    except LookupError:
        return {}
    rows = target_model.objects.filter(kpi__code=kpi, employee_id__in=employee_ids,
                                       kind="month", start=period.start)
    return {(r.employee_id, r.line): Decimal(r.value) for r in rows}


def _basis_measure(plan: CommissionPlan) -> str:
    if plan.basis == CommissionBasis.REVENUE:
        return "revenue"
    return "collected_by_line" if plan.line else "collected"


@dataclass
class LineFigures:
    plan: CommissionPlan
    basis: Decimal
    kpi: str
    actual: Decimal | None
    target: Decimal | None
    achievement: Decimal | None
    outcome: Outcome
    note: str
    raw: dict[str, Any]


def _plan_lines(actor: Any, plan: CommissionPlan, period: Period, ids: set[int],
                kpis: dict[str, Kpi]) -> dict[int, LineFigures]:
    """One plan's line for each of `ids` (two or three reads of the facts for all of them)."""
    measure = _basis_measure(plan)
    basis_raw = selectors.by_employee(actor, period=period, line=plan.line, measures=[measure])
    code = plan.kpi_code
    kpi = kpis.get(code)
    if kpi is None:
        raise ValidationFailed(_("Plan %(plan)s uses the KPI %(code)s, which no longer "
                                 "exists; pick another KPI for it.")
                               % {"plan": plan.name, "code": code}, field="kpi")
    needs = measures_for([code], kpis)
    kpi_line = plan.line if (kpi.by_line and plan.line) else ""
    targets = _targets(code, period, ids)
    actual_raw = {kpi_line: selectors.by_employee(actor, period=period, line=kpi_line,
                                                  measures=needs)}
    if kpi_line and any((i, kpi_line) not in targets and (i, "") in targets for i in ids):
        actual_raw[""] = selectors.by_employee(actor, period=period, line="", measures=needs)
    tiers = list(plan.tiers.all())
    month = period.label
    out = {}
    for employee_id in ids:
        basis = money(Decimal(basis_raw.get(employee_id, {}).get(measure, 0)) / HUNDRED)
        target_line = kpi_line if (employee_id, kpi_line) in targets else ""
        target = targets.get((employee_id, target_line))
        note = ""
        actual = achievement = None
        if target_line in actual_raw:
            raw = actual_raw[target_line].get(employee_id, {})
            actual = Evaluator(raw, kpis).value(code)
        if target is None or target <= 0:
            note = _("No target on %(kpi)s for %(month)s: the lowest tier applies.") % {
                "kpi": kpi.label, "month": month}
        elif actual is None:
            note = _("%(kpi)s cannot be computed for %(month)s: the lowest tier applies.") % {
                "kpi": kpi.label, "month": month}
        else:
            achievement = actual / target * HUNDRED
            if kpi_line and target_line == "":
                note = _("No target for the line %(line)s: achievement on all lines.") % {
                    "line": plan.line}
        outcome = apply_tiers(tiers, basis=basis, achievement=achievement,
                              accumulation=plan.accumulation, cap=plan.cap)
        if achievement is not None and outcome.tier is None:
            note = _("Achievement %(a)s %% is below the plan's floor of %(floor)s %%: nothing "
                     "is earned.") % {"a": pct(achievement.quantize(Decimal("0.01"))),
                                      "floor": pct(plan.floor)}
        if outcome.capped:
            note = " ".join(x for x in [note, _("Capped at %(cap)s.") % {
                "cap": money(plan.cap)}] if x)
        out[employee_id] = LineFigures(
            plan=plan, basis=basis, kpi=code, actual=actual, target=target,
            achievement=achievement, outcome=outcome, note=note,
            raw={"basis_measure": measure, "basis_fen": basis_raw.get(employee_id, {}).get(
                measure, 0), "kpi_line": target_line,
                "kpi_raw": actual_raw.get(target_line, {}).get(employee_id, {})})
    return out


@dataclass
class ComputeResult:
    period: Period
    statements: list[CommissionStatement]
    skipped: list[tuple[Employee, str]]


EDITABLE = (StatementStatus.DRAFT, StatementStatus.REJECTED)


def _refusal(statement: CommissionStatement) -> str:
    if statement.status == StatementStatus.APPROVED:
        return _("The statement of %(name)s for %(month)s is approved; an approved statement "
                 "never changes. Correct it in a later month.") % {
            "name": statement.employee.name, "month": f"{statement.month:%Y-%m}"}
    return _("The statement of %(name)s for %(month)s is waiting for approval; have it "
             "rejected first, then recompute it.") % {
        "name": statement.employee.name, "month": f"{statement.month:%Y-%m}"}


@transaction.atomic
def compute_month(*, actor: Any, month: Any,
                  employees: Iterable[Employee | int] | None = None) -> ComputeResult:
    """Compute (or recompute) the month's statements of every rep the valid plans cover, or of
    the given employees. Drafts and rejected statements are replaced; submitted and approved
    ones are left as they are (skipped, with the reason) — and refused outright when the
    caller named the employee."""
    require(actor, "commission.manage")
    period = parse_month(month)
    plans = plans_in(period)
    visible = visible_employees(actor)
    wanted: set[int] | None = None
    if employees is not None:
        wanted = {e.pk if isinstance(e, Employee) else int(e) for e in employees}
        found = set(visible.filter(pk__in=wanted).values_list("pk", flat=True))
        if found != wanted:
            raise NotFound(_("No employee with that id is in your view."))
    coverage = {plan.pk: covered_ids(plan, period) for plan in plans}
    everyone: set[int] = set().union(*coverage.values()) if coverage else set()
    if wanted is not None:
        everyone &= wanted
    everyone &= set(visible.filter(pk__in=everyone).values_list("pk", flat=True))

    existing = {s.employee_id: s for s in CommissionStatement.objects.select_related(
        "employee").filter(month=period.start, employee_id__in=everyone)}
    skipped = []
    for employee_id, statement in sorted(existing.items()):
        if statement.status not in EDITABLE:
            if wanted is not None:
                raise Conflict(_refusal(statement), code="statement_locked")
            skipped.append((statement.employee, _refusal(statement)))
            everyone.discard(employee_id)

    kpis = {k.code: k for k in Kpi.objects.all()}
    lines: dict[int, list[LineFigures]] = {i: [] for i in everyone}
    for plan in plans:
        ids = coverage[plan.pk] & everyone
        if ids:
            for employee_id, figures in _plan_lines(actor, plan, period, ids, kpis).items():
                lines[employee_id].append(figures)

    departments = _department_at(everyone, period.end)
    people = Employee.objects.in_bulk(everyone)
    now = timezone.now()
    out = []
    for employee_id in sorted(everyone):
        employee = people[employee_id]
        statement = existing.get(employee_id)
        before = None if statement is None else _statement_snapshot(statement)
        if statement is None:
            statement = CommissionStatement(employee=employee, month=period.start)
        statement.department_id = departments.get(employee_id, employee.department_id)
        figures = lines[employee_id]
        statement.basis = sum((f.basis for f in figures), money(0))
        statement.amount = sum((f.outcome.amount for f in figures), money(0))
        statement.achievement = _headline(figures)
        statement.status = StatementStatus.DRAFT
        statement.rejected_reason = ""
        statement.submitted_at = statement.submitted_by = None
        statement.computed_at, statement.computed_by = now, _user(actor)
        statement.figures = _audit_figures(period, figures, now)
        statement.save()
        statement.lines.all().delete()
        CommissionLine.objects.bulk_create([CommissionLine(
            statement=statement, plan=f.plan, line=f.plan.line, kpi=f.kpi, basis=f.basis,
            actual=_q4(f.actual), target=_q4(f.target), achievement=_q4(f.achievement),
            tier=f.outcome.tier, rate=f.outcome.rate, uncapped=f.outcome.uncapped,
            amount=f.outcome.amount, capped=f.outcome.capped, note=f.note[:255])
            for f in figures])
        audit.record(actor, "commission.computed", statement, before=before,
                     after=_statement_snapshot(statement))
        emit("commission.computed", statement, actor=actor, statement_id=statement.pk,
             employee_id=employee_id, month=period.label, amount=statement.amount)
        out.append(statement)
    return ComputeResult(period, out, skipped)


@transaction.atomic
def recompute_statement(*, actor: Any, statement: CommissionStatement) -> CommissionStatement:
    """Recompute one statement (a draft or a rejected one); an approved or submitted one is
    refused with a message."""
    require(actor, "commission.manage")
    statement = _locked(actor, statement)
    if statement.status not in EDITABLE:
        raise Conflict(_refusal(statement), code="statement_locked")
    result = compute_month(actor=actor, month=statement.month, employees=[statement.employee_id])
    if not result.statements:
        raise Conflict(_("No valid plan covers %(name)s in %(month)s any more; the statement "
                         "was left as it was.") % {"name": statement.employee.name,
                                                   "month": f"{statement.month:%Y-%m}"},
                       code="not_covered")
    return result.statements[0]


def _q4(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.0001"))


def _user(actor: Any) -> Any:
    """The login to record as having done it (none for the system's monthly run)."""
    from django.contrib.auth import get_user_model

    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None


def _headline(figures: list[LineFigures]) -> Decimal | None:
    """The statement's achievement: its all-lines plan's (the first such), else the line with
    the largest basis."""
    if not figures:
        return None
    whole = [f for f in figures if not f.plan.line]
    pick = whole[0] if whole else max(figures, key=lambda f: f.basis)
    return _q4(pick.achievement)


def _audit_figures(period: Period, figures: list[LineFigures], now: dt.datetime
                   ) -> dict[str, Any]:
    return {"month": period.label, "computed_at": now.isoformat(), "plans": [{
        "plan_id": f.plan.pk, "plan": f.plan.name, "basis": f.plan.basis,
        "line": f.plan.line, "accumulation": f.plan.accumulation, "kpi": f.kpi,
        "floor": str(f.plan.floor), "cap": None if f.plan.cap is None else str(f.plan.cap),
        "tiers": _tiers_snapshot(f.plan), **f.raw,
        "actual": None if f.actual is None else str(f.actual),
        "target": None if f.target is None else str(f.target),
        "achievement": None if f.achievement is None else str(_q4(f.achievement)),
        "tier": f.outcome.tier, "rate": str(f.outcome.rate),
        "uncapped": str(f.outcome.uncapped), "amount": str(f.outcome.amount),
        "bands": f.outcome.bands} for f in figures]}


def _statement_snapshot(statement: CommissionStatement) -> dict[str, Any]:
    return audit.snapshot(statement, fields=["employee", "department", "month", "status",
                                             "basis", "achievement", "amount",
                                             "rejected_reason"]) or {}


# --- the statement's life ----------------------------------------------------------------------
def _locked(actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    """The statement, locked for the change, if the actor may see it (NotFound otherwise)."""
    pk = statement.pk if isinstance(statement, CommissionStatement) else int(statement)
    found = scoped(CommissionStatement.objects.select_for_update(of=("self",)), actor).filter(pk=pk).first()
    if found is None:
        raise NotFound(_("No commission statement with that id is in your view."))
    found.employee = Employee.objects.get(pk=found.employee_id)
    return found


def _transition(actor: Any, statement: CommissionStatement, *, to: str, event: str,
                **changes: Any) -> CommissionStatement:
    before = _statement_snapshot(statement)
    statement.status = to
    for key, value in changes.items():
        setattr(statement, key, value)
    statement.save()
    audit.record(actor, event, statement, before=before, after=_statement_snapshot(statement))
    emit(event, statement, actor=actor, statement_id=statement.pk,
         employee_id=statement.employee_id, month=f"{statement.month:%Y-%m}",
         amount=statement.amount)
    return statement


@transaction.atomic
def submit_statement(*, actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    """Send a draft for the manager's approval."""
    require(actor, "commission.manage")
    statement = _locked(actor, statement)
    if statement.status != StatementStatus.DRAFT:
        raise InvalidTransition(_("Only a draft can be submitted; this statement is %(status)s."
                                  " Recompute a rejected one into a draft first.")
                                % {"status": statement.get_status_display()})
    return _transition(actor, statement, to=StatementStatus.SUBMITTED,
                       event="commission.submitted", submitted_at=timezone.now(),
                       submitted_by=_user(actor))


def _approver(actor: Any, statement: CommissionStatement | int) -> CommissionStatement:
    require(actor, "commission.approve")
    statement = _locked(actor, statement)
    me = employee_of(actor)
    if me is not None and me.pk == statement.employee_id:
        raise PermissionDenied(_("You cannot approve or reject your own commission; your "
                                 "manager does."), code="own_statement")
    if statement.status != StatementStatus.SUBMITTED:
        raise InvalidTransition(_("This statement is %(status)s; only a submitted statement "
                                  "can be approved or rejected.")
                                % {"status": statement.get_status_display()})
    return statement


@transaction.atomic
def approve_statement(*, actor: Any, statement: CommissionStatement | int
                      ) -> CommissionStatement:
    """The rep's manager (anyone with commission.approve whose scope holds the statement, not
    the rep) approves it; from then on it never changes."""
    statement = _approver(actor, statement)
    return _transition(actor, statement, to=StatementStatus.APPROVED,
                       event="commission.approved", approved_at=timezone.now(),
                       approved_by=_user(actor))


@transaction.atomic
def reject_statement(*, actor: Any, statement: CommissionStatement | int, reason: str
                     ) -> CommissionStatement:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Say why the statement is rejected, so it can be corrected."),
                               field="reason")
    statement = _approver(actor, statement)
    return _transition(actor, statement, to=StatementStatus.REJECTED,
                       event="commission.rejected", rejected_reason=reason[:255])


# --- reads -------------------------------------------------------------------------------------
def statements_for(user: Any, *, month: Any = None, status: str = "",
                   department: Department | int | None = None,
                   employee: Employee | int | None = None) -> QuerySet[CommissionStatement]:
    """The statements the user may see (a rep their own, a manager their subtree's), filtered.
    A department or employee outside the scope is NotFound."""
    qs = scoped(CommissionStatement.objects.select_related("employee", "department",
                                                           "approved_by"), user)
    if month not in (None, ""):
        qs = qs.filter(month=parse_month(month).start)
    if status:
        if status not in StatementStatus.values:
            raise ValidationFailed(_("Pick a status: %(choices)s.")
                                   % {"choices": ", ".join(StatementStatus.values)},
                                   field="status")
        qs = qs.filter(status=status)
    if department not in (None, ""):
        if isinstance(department, str) and not department.strip().isdigit():
            raise ValidationFailed(_("%(value)s is not a department id; pick a department "
                                     "from the list.") % {"value": department},
                                   field="department")
        found = selectors.department_for(user, department)
        assert found is not None
        qs = qs.filter(tree.subtree_q("department__path", found.path))
    if employee not in (None, ""):
        person = selectors.employee_for(user, employee)
        assert person is not None
        qs = qs.filter(employee_id=person.pk)
    return qs


def statement_detail(user: Any, pk: int) -> CommissionStatement:
    found = statements_for(user).filter(pk=pk).first()
    if found is None:
        raise NotFound(_("No commission statement with that id is in your view."))
    return found


def lines_of(statement: CommissionStatement) -> list[CommissionLine]:
    return list(statement.lines.select_related("plan").order_by("id"))


def may_approve(user: Any, statement: CommissionStatement) -> bool:
    """Whether the approve/reject buttons are offered (the services decide)."""
    me = employee_of(user)
    return (statement.status == StatementStatus.SUBMITTED
            and has_perm(user, "commission.approve")
            and (me is None or me.pk != statement.employee_id))
