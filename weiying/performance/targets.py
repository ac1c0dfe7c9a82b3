"""Targets: setting them, decomposing them (分解) down the pyramid and over time, checking
them bottom-up, and importing them from a file.

Who may write: `targets.manage`, within the data scope (a department or an employee outside
the actor's view is "not found"). Targets come from above: outside an all-seeing role nobody
sets their own target nor their own department's (the manager of a team decomposes the
team's target and adjusts the parts; their own director sets the team's).

How a target splits: an amount or a count (a KPI that adds up over people and days) splits
equally, by headcount, or by last year's actual share of the same KPI, rounded to the fen
(money) or to a whole number (counts) with the remainder on the last part, so the parts add
up exactly. A ratio or an average (win rate, first-response time) does not add up: every part
gets the same value.
"""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from weiying.core import audit, events, tree
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.permissions import employee_of, require
from weiying.core.scope import data_scope_of, scoped
from weiying.org.choices import DataScope, EmployeeStatus
from weiying.org.models import Department, Employee
from weiying.performance import selectors
from weiying.performance.kpis import Evaluator, measures_for
from weiying.performance.models import Kpi, Target, Unit
from weiying.performance.models_targets import PeriodKind
from weiying.performance.selectors import Period

METHODS = ("equal", "headcount", "last_year")
INTO = ("members", "quarters", "months")
RATIO_PLACES = Decimal("0.0001")


# --- small rules -------------------------------------------------------------------------------
def is_additive(kpi: Kpi) -> bool:
    """True when the KPI adds up over people and days (an amount or a count without a
    division), so a target splits into parts that sum to it."""
    if kpi.unit not in (Unit.MONEY, Unit.COUNT):
        return False
    try:
        parsed = ast.parse(kpi.formula, mode="eval")
    except SyntaxError:
        return False
    return not any(isinstance(node, ast.Div) for node in ast.walk(parsed))


def quantum(kpi: Kpi) -> Decimal:
    if kpi.unit == Unit.MONEY:
        return Decimal("0.01")
    if kpi.unit == Unit.RATIO:
        return RATIO_PLACES
    return Decimal(1)


def clean_value(kpi: Kpi, value: Any) -> Decimal:
    """The value as a Decimal in the KPI's unit; refuses negatives, ratios above 100 %,
    and fractions of a count."""
    if isinstance(value, float):
        value = str(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(
            str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(_("%(value)s is not a number; write the target as a number.")
                               % {"value": value}, field="value") from None
    if not number.is_finite():
        raise ValidationFailed(_("%(value)s is not a number; write the target as a number.")
                               % {"value": value}, field="value")
    if number < 0:
        raise ValidationFailed(_("A target cannot be negative (%(value)s); write zero or more.")
                               % {"value": value}, field="value")
    if kpi.unit == Unit.RATIO and number > 1:
        raise ValidationFailed(
            _("%(kpi)s is a ratio: its target is at most 100%% (1); %(value)s is above.")
            % {"kpi": kpi.label, "value": value}, field="value")
    if kpi.unit == Unit.COUNT and number != number.to_integral_value():
        raise ValidationFailed(_("%(kpi)s is a count: write a whole number, not %(value)s.")
                               % {"kpi": kpi.label, "value": value}, field="value")
    return number.quantize(quantum(kpi), rounding=ROUND_HALF_UP)


def check_period(period: Period) -> Period:
    if period.kind not in PeriodKind.values or Period.of(period.start, period.kind) != period:
        raise ValidationFailed(
            _("A target is for a whole month, quarter or year; %(period)s is not one.")
            % {"period": period.label}, field="period")
    return period


def period_of(target: Target) -> Period:
    return Period.of(target.start, target.kind)


def check_line(kpi: Kpi, line: str) -> str:
    line = (line or "").strip()
    if line and not kpi.by_line:
        raise ValidationFailed(
            _("%(kpi)s is not kept per product line; leave the product line empty.")
            % {"kpi": kpi.label}, field="line")
    return line


def may_write(actor: Any, *, employee: Employee | None = None,
              department: Department | None = None) -> tuple[Employee | None, Department | None]:
    """The subject, if `actor` may set its target: targets.manage, in view, and not their own
    (or their own department's) unless the actor sees everything."""
    require(actor, "targets.manage")
    if (employee is None) == (department is None):
        raise ValidationFailed(_("A target is for an employee or a department; name one."),
                               field="subject")
    employee = selectors.employee_for(actor, employee)
    department = selectors.department_for(actor, department)
    if data_scope_of(actor) != DataScope.ALL:
        me = employee_of(actor)
        if employee is not None and me is not None and employee.pk == me.pk:
            raise PermissionDenied(_("Your own target is set by your manager; ask them to "
                                     "change it."), code="own_target")
        if department is not None and me is not None and department.pk == me.department_id:
            raise PermissionDenied(
                _("Your department's own target is set from above; decompose it to your "
                  "members and teams instead."), code="own_target")
    return employee, department


# --- writing -------------------------------------------------------------------------------------
def _write(actor: Any, *, kpi: Kpi, period: Period, value: Decimal, employee: Employee | None,
           department: Department | None, line: str, note: str = "",
           parent: Target | None = None, keep_parent: bool = True) -> tuple[Target, bool]:
    """Create or change one target (already checked); returns (target, changed). Nothing is
    written, audited or emitted when the value, note and parent are already what is asked."""
    subject = {"employee": employee} if employee is not None else {"department": department}
    holder = employee.department if employee is not None else department
    existing = (Target.objects.select_for_update()
                .filter(kpi=kpi, line=line, kind=period.kind, start=period.start, **subject)
                .first())
    new_parent = parent if parent is not None or not keep_parent else (
        existing.parent if existing else None)
    if existing is not None:
        same = (existing.value == value and existing.note == (note or existing.note)
                and existing.parent_id == (new_parent.pk if new_parent else None)
                and existing.holder_id == holder.pk)
        if same:
            return existing, False
        before = audit.snapshot(existing)
        existing.value = value
        existing.note = note or existing.note
        existing.parent = new_parent
        existing.holder = holder
        existing.set_by = actor if getattr(actor, "is_authenticated", False) else None
        existing.save()
        target = existing
    else:
        before = None
        target = Target.objects.create(
            kpi=kpi, kind=period.kind, start=period.start, end=period.end, line=line,
            value=value, note=note, parent=new_parent, holder=holder,
            set_by=actor if getattr(actor, "is_authenticated", False) else None, **subject)
    audit.record(actor, "target.set", target, before=before, after=audit.snapshot(target))
    events.emit("target.set", target, actor=actor, kpi=kpi.code, value=str(value),
                period=period.label, employee_id=target.employee_id,
                department_id=target.department_id)
    return target, True


@transaction.atomic
def set_target(*, actor: Any, kpi: Kpi | str, period: Period, value: Any,
               employee: Employee | int | None = None,
               department: Department | int | None = None, line: str = "",
               note: str = "") -> Target:
    """Set (or adjust) one target. Adjusting a decomposed part keeps its parent."""
    kpi = kpi_by_code(kpi)
    period = check_period(period)
    line = check_line(kpi, line)
    number = clean_value(kpi, value)
    employee, department = may_write(actor, employee=employee, department=department)
    target, _changed = _write(actor, kpi=kpi, period=period, value=number, employee=employee,
                              department=department, line=line, note=(note or "").strip())
    return target


def kpi_by_code(kpi: Kpi | str) -> Kpi:
    if isinstance(kpi, Kpi):
        return kpi
    found = Kpi.objects.filter(code=kpi, is_active=True).first()
    if found is None:
        raise NotFound(_("There is no KPI %(code)s; pick one from the catalogue.")
                       % {"code": kpi})
    return found


# --- decomposition -------------------------------------------------------------------------------
def split(total: Decimal, weights: list[Decimal], step: Decimal, *,
          remainder_last: bool = True) -> list[Decimal]:
    """`total` in proportion to `weights`, the parts adding up to `total` exactly.

    With `remainder_last` (money) each part is rounded half-up to `step` and the last takes
    what is left. Otherwise (counts: ten leads over twelve months) the running total is
    rounded instead, so the whole units spread over the parts (1, 1, 0, 1 …) rather than
    piling on the last; this is also the fallback when rounding up would leave the last part
    below zero."""
    if not weights:
        return []
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:
        raise ValueError("weights must sum to more than zero")
    if remainder_last:
        parts = [(total * w / weight_sum).quantize(step, rounding=ROUND_HALF_UP)
                 for w in weights[:-1]]
        last = total - sum(parts, Decimal(0))
        if last >= 0:
            return [*parts, last]
    out, done, running = [], Decimal(0), Decimal(0)
    for w in weights:
        running += w
        upto = (total * running / weight_sum).quantize(step, rounding=ROUND_HALF_UP)
        out.append(upto - done)
        done = upto
    return out


@dataclass
class Share:
    """One part a target splits into: a child department, a direct member, or a sub-period."""

    label: str
    employee: Employee | None = None
    department: Department | None = None
    period: Period | None = None
    weight: Decimal = Decimal(0)


def direct_members(department: Department, *, exclude: Iterable[int] = ()) -> QuerySet:
    """The people a department's target splits among besides its teams: its active direct
    members, without its head (who carries the department's whole target)."""
    qs = Employee.objects.filter(department=department).exclude(status=EmployeeStatus.LEFT)
    skip = {i for i in exclude if i}
    if department.manager_id:
        skip.add(department.manager_id)
    return qs.exclude(pk__in=skip).order_by("number")


def child_departments(department: Department) -> QuerySet:
    return Department.objects.filter(parent=department, is_active=True).order_by("path")


def _member_shares(actor: Any, target: Target, method: str) -> list[Share]:
    department = target.department
    me = employee_of(actor)
    shares = [Share(c.name, department=c) for c in child_departments(department)]
    shares += [Share(e.name, employee=e) for e in direct_members(
        department, exclude=[me.pk] if me else [])]
    if not shares:
        raise ValidationFailed(_("%(department)s has neither teams nor members to split its "
                                 "target among.") % {"department": department.name})
    if method == "equal":
        for s in shares:
            s.weight = Decimal(1)
    elif method == "headcount":
        for s in shares:
            if s.employee is not None:
                s.weight = Decimal(1)
            else:
                s.weight = Decimal(Employee.objects.filter(
                    tree.subtree_q("department_path", s.department.path))
                    .exclude(status=EmployeeStatus.LEFT).count())
    else:
        kpi = target.kpi
        ago = period_of(target).year_ago()
        wanted = measures_for([kpi.code])
        kpis = {k.code: k for k in Kpi.objects.all()}
        children = selectors.by_child(actor, period=ago, department=department, line=target.line,
                                      measures=wanted)
        people = selectors.by_employee(actor, period=ago, department=department,
                                       line=target.line, measures=wanted)
        for s in shares:
            raw = people.get(s.employee.pk, {}) if s.employee else children.get(
                s.department.pk, {})
            s.weight = max(Evaluator(raw, kpis).value(kpi.code) or Decimal(0), Decimal(0))
    return shares


def _time_shares(actor: Any, target: Target, into: str, method: str) -> list[Share]:
    period = period_of(target)
    if into == "quarters" and target.kind != PeriodKind.YEAR:
        raise ValidationFailed(_("Only a year's target splits into quarters."), field="into")
    if into == "months" and target.kind == PeriodKind.MONTH:
        raise ValidationFailed(_("A month's target does not split further over time."),
                               field="into")
    if method == "headcount":
        raise ValidationFailed(_("Headcount splits a target among people; over time, split "
                                 "equally or by last year's actual."), field="method")
    if into == "quarters":
        parts = [Period.quarter(period.start.year, q) for q in range(1, 5)]
    else:
        parts = [Period.month(m.year, m.month) for m in period.months()]
    shares = [Share(p.label, employee=target.employee, department=target.department, period=p,
                    weight=Decimal(1)) for p in parts]
    if method == "last_year":
        kpi = target.kpi
        kpis = {k.code: k for k in Kpi.objects.all()}
        wanted = measures_for([kpi.code])
        subject = ({"employee": target.employee} if target.employee_id
                   else {"department": target.department})
        months = selectors.monthly(actor, period=period.year_ago(), line=target.line,
                                   measures=wanted, **subject)
        for s in shares:
            summed: dict[str, int] = {}
            for m in s.period.year_ago().months():
                for k, v in months.get(m, {}).items():
                    summed[k] = summed.get(k, 0) + v
            s.weight = max(Evaluator(summed, kpis).value(kpi.code) or Decimal(0), Decimal(0))
    return shares


@transaction.atomic
def decompose(*, actor: Any, target: Target, method: str = "equal",
              into: str = "members") -> list[Target]:
    """Split `target` into its parts (its child departments and direct members, or its
    quarters or months) and write each part with `parent=target`. Re-running with the same
    figures changes nothing."""
    require(actor, "targets.manage")
    target = scoped(Target.objects.select_related("kpi", "employee", "department"), actor) \
        .filter(pk=target.pk).first()
    if target is None:
        raise NotFound(_("No target with that id is in your view."))
    if method not in METHODS:
        raise ValidationFailed(_("Split equally, by headcount or by last year's actual."),
                               field="method")
    if into not in INTO:
        raise ValidationFailed(_("Split among members, or into quarters or months."),
                               field="into")
    if into == "members":
        if target.department_id is None:
            raise ValidationFailed(_("A person's target does not split among people; split it "
                                     "into quarters or months."), field="into")
        selectors.department_for(actor, target.department)
        shares = _member_shares(actor, target, method)
    else:
        if target.employee_id:
            may_write(actor, employee=target.employee)
        else:
            selectors.department_for(actor, target.department)
        shares = _time_shares(actor, target, into, method)

    kpi = target.kpi
    if is_additive(kpi):
        if sum((s.weight for s in shares), Decimal(0)) <= 0:
            raise ValidationFailed(
                _("Nobody here had any %(kpi)s a year earlier, so there is no share to split "
                  "by; split equally or by headcount instead.") % {"kpi": kpi.label},
                field="method")
        values = split(target.value, [s.weight for s in shares], quantum(kpi),
                       remainder_last=kpi.unit == Unit.MONEY)
    else:
        values = [target.value for _s in shares]

    period = period_of(target)
    written = []
    for share, value in zip(shares, values, strict=True):
        part, _changed = _write(actor, kpi=kpi, period=share.period or period, value=value,
                                employee=share.employee, department=share.department,
                                line=target.line, parent=target)
        written.append(part)
    audit.record(actor, "target.decompose", target,
                 after={"method": method, "into": into, "parts": [p.pk for p in written]})
    events.emit("target.decomposed", target, actor=actor, method=method, into=into,
                parts=[p.pk for p in written])
    return written


# --- reading -------------------------------------------------------------------------------------
def targets_of(user: Any, *, period: Period, employee: Employee | int | None = None,
               department: Department | int | None = None, line: str = "") -> dict[str, Target]:
    """{KPI code: target} of one subject for one period (in the viewer's scope)."""
    qs = scoped(Target.objects.select_related("kpi"), user).filter(
        kind=period.kind, start=period.start, line=line)
    if employee is not None:
        qs = qs.filter(employee_id=getattr(employee, "pk", employee))
    else:
        qs = qs.filter(department_id=getattr(department, "pk", department))
    return {t.kpi.code: t for t in qs}


def target_list(user: Any, *, period: Period | None = None, kpi: Kpi | None = None,
                department: Department | None = None) -> QuerySet[Target]:
    """Targets in the viewer's scope, newest period first; within `department`'s subtree."""
    qs = scoped(Target.objects.select_related("kpi", "employee", "department", "parent"), user)
    if period is not None:
        qs = qs.filter(start__lte=period.end, end__gte=period.start)
    if kpi is not None:
        qs = qs.filter(kpi=kpi)
    if department is not None:
        qs = qs.filter(tree.subtree_q("holder__path", department.path))
    return qs.order_by("-start", "kind", "holder__path", "department_id", "employee__number",
                       "kpi__position")


@dataclass
class Part:
    label: str
    employee: Employee | None
    department: Department | None
    target: Target | None

    @property
    def is_set(self) -> bool:
        return self.target is not None

    @property
    def value(self) -> Decimal | None:
        return self.target.value if self.target else None


@dataclass
class BottomUp:
    """A department's own target beside the sum of its teams' and members' targets."""

    department: Department
    period: Period
    kpi: Kpi
    line: str
    own: Decimal | None
    parts: list[Part] = field(default_factory=list)
    additive: bool = True

    @property
    def children_sum(self) -> Decimal:
        return sum((p.value for p in self.parts if p.value is not None), Decimal(0))

    @property
    def gap(self) -> Decimal | None:
        """Own target less the parts' sum (positive: the parts fall short). None for a ratio
        or an average, which does not add up, or when the department has no target."""
        if not self.additive or self.own is None:
            return None
        return self.own - self.children_sum

    @property
    def missing(self) -> list[Part]:
        return [p for p in self.parts if not p.is_set]


def bottom_up(user: Any, *, department: Department | int, period: Period, kpi: Kpi | str,
              line: str = "") -> BottomUp:
    department = selectors.department_for(user, department)
    assert department is not None
    kpi = kpi_by_code(kpi)
    qs = scoped(Target.objects.select_related("employee", "department"), user).filter(
        kpi=kpi, kind=period.kind, start=period.start, line=line)
    own = qs.filter(department=department).first()
    children = list(child_departments(department))
    by_dept = {t.department_id: t for t in qs.filter(department__in=children)}
    by_emp = {t.employee_id: t for t in qs.filter(employee__department=department)}
    members = list(direct_members(department))
    member_ids = {m.pk for m in members}
    # Someone no longer counted among the members (a head, someone who left) but holding a
    # part still shows, so the sum matches what was written.
    members += [t.employee for pk, t in by_emp.items() if pk not in member_ids]
    parts = [Part(c.name, None, c, by_dept.get(c.pk)) for c in children]
    parts += [Part(e.name, e, None, by_emp.get(e.pk)) for e in members]
    return BottomUp(department, period, kpi, line, own.value if own else None, parts,
                    is_additive(kpi))


# --- import ----------------------------------------------------------------------------------------
TARGET_HEADERS: dict[str, tuple[str, ...]] = {
    "employee": ("工号", "员工工号", "employee_number", "employee", "number"),
    "department": ("部门", "部门路径", "department", "department_path"),
    "kpi": ("指标", "kpi", "指标代码", "kpi_code"),
    "period": ("期间", "period", "周期"),
    "line": ("产品线", "line", "product_line"),
    "value": ("目标值", "目标", "value", "target"),
    "note": ("备注", "note"),
}
_DATES = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2})\s*(?:~|～|…|\.\.|至|到|—|–|/|\s)\s*"
                    r"(\d{4}-\d{1,2}-\d{1,2})$")
_PATH_SPLIT = re.compile(r"\s*[/／>＞]\s*")


def parse_period(text: str) -> Period:
    """'2026-03', '2026-Q1', '2026', or two dates '2026-01-01~2026-03-31' covering a whole
    month, quarter or year."""
    raw = (text or "").strip()
    match = _DATES.match(raw)
    if match is None:
        return Period.parse(raw)
    try:
        start, end = (dt.date.fromisoformat("-".join(f"{int(x):02d}" for x in d.split("-")))
                      for d in match.groups())
    except ValueError:
        raise ValidationFailed(_("%(text)s holds a date that does not exist.")
                               % {"text": raw}, field="period") from None
    for kind in ("month", "quarter", "year"):
        candidate = Period.of(start, kind)
        if candidate.start == start and candidate.end == end:
            return candidate
    raise ValidationFailed(
        _("%(text)s is not a whole month, quarter or year; write 2026-03, 2026-Q1 or 2026, or "
          "dates from the first to the last day of one.") % {"text": raw}, field="period")


def parse_value(kpi: Kpi, text: str) -> Decimal:
    raw = (text or "").strip().replace(",", "").replace("，", "")
    if not raw:
        raise ValidationFailed(_("The target value is empty."), field="value")
    if raw.endswith(("%", "％")):
        try:
            percent = Decimal(raw[:-1].strip())
        except InvalidOperation:
            raise ValidationFailed(_("%(value)s is not a number; write the target as a "
                                     "number.") % {"value": text}, field="value") from None
        if kpi.unit != Unit.RATIO:
            raise ValidationFailed(_("%(kpi)s is not a ratio; write the target without %%.")
                                   % {"kpi": kpi.label}, field="value")
        return clean_value(kpi, percent / 100)
    return clean_value(kpi, raw)


class _Resolver:
    """Employees, departments and KPIs looked up once per distinct name in the file."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.kpis = {k.code.lower(): k for k in Kpi.objects.filter(is_active=True)}
        from django.utils import translation

        for k in list(self.kpis.values()):
            self.kpis.setdefault(k.name.strip().lower(), k)
            if k.is_builtin:  # a built-in KPI is known by its name in either language
                for language in ("zh-hans", "en"):
                    with translation.override(language):
                        self.kpis.setdefault(k.label.strip().lower(), k)
        self._employees: dict[str, Employee | None] = {}
        self._departments: dict[str, Department | None] = {}
        self._paths: dict[str, str] | None = None

    def kpi(self, text: str) -> Kpi:
        found = self.kpis.get(text.strip().lower())
        if found is None:
            raise ValidationFailed(_("There is no KPI %(kpi)s; write a code or name from the "
                                     "KPI catalogue.") % {"kpi": text}, field="kpi")
        return found

    def employee(self, number: str) -> Employee:
        if number not in self._employees:
            self._employees[number] = (Employee.objects.select_related("department")
                                       .filter(number=number).first())
        found = self._employees[number]
        if found is None:
            raise ValidationFailed(_("There is no employee with number %(number)s; check the "
                                     "roster.") % {"number": number}, field="employee")
        return found

    def department(self, text: str) -> Department:
        key = "/".join(_PATH_SPLIT.split(text.strip()))
        if key not in self._departments:
            self._departments[key] = self._find_department(key)
        found = self._departments[key]
        if found is None:
            raise ValidationFailed(
                _("There is no department %(department)s; write its path from the top, "
                  "e.g. 总部/华东分公司/上海一组.") % {"department": text}, field="department")
        return found

    def _find_department(self, key: str) -> Department | None:
        if self._paths is None:
            rows = list(Department.objects.values_list("pk", "name", "parent_id"))
            names = {pk: (name, parent) for pk, name, parent in rows}

            def full(pk: int) -> str:
                name, parent = names[pk]
                return f"{full(parent)}/{name}" if parent else name

            self._paths = {full(pk): str(pk) for pk in names}
            # A name that occurs once may stand alone.
            counts: dict[str, int] = {}
            for _pk, name, _parent in rows:
                counts[name] = counts.get(name, 0) + 1
            for pk, name, _parent in rows:
                if counts[name] == 1:
                    self._paths.setdefault(name, str(pk))
        pk = self._paths.get(key)
        return Department.objects.filter(pk=pk).first() if pk else None


@dataclass
class _Row:
    number: int
    kpi: Kpi
    period: Period
    employee: Employee | None
    department: Department | None
    line: str
    value: Decimal
    note: str
    period_text: str

    def subject_label(self) -> str:
        return self.employee.number if self.employee else self.department.name

    def key(self) -> tuple:
        return (self.kpi.pk, "e" if self.employee else "d",
                (self.employee or self.department).pk, self.line, self.period.kind)


def import_targets(source: Any, *, actor: Any, file_name: str = "") -> Any:
    """Import targets from a CSV or .xlsx file: every row is checked first (subject, KPI,
    period, value, overlaps inside the file, the actor's right to set it); if any row fails
    nothing is written and the report lists each failing row. Re-importing the same file
    changes nothing (no audit rows, no events)."""
    import time
    from pathlib import Path

    from weiying.pipeline.imports import ImportReport, read_rows

    require(actor, "targets.manage")
    started = time.monotonic()
    report = ImportReport(kind="targets", file_name=file_name or Path(
        str(getattr(source, "name", source))).name)
    rows = read_rows(source)
    try:
        good = _check_file(actor, rows, report)
    finally:
        rows.close()  # the reader holds the file open until it is closed
    report.rejected = len({e.row for e in report.errors})
    report.valid = report.rows - report.rejected

    if report.rejected == 0 and good:
        with transaction.atomic():
            changed_ids = []
            for row in good:
                target, changed = _write(actor, kpi=row.kpi, period=row.period,
                                         value=row.value, employee=row.employee,
                                         department=row.department, line=row.line,
                                         note=row.note)
                if changed:
                    changed_ids.append(target.pk)
            report.imported = len(changed_ids)
            if changed_ids:
                audit.record(actor, "targets.import", object_type="performance.target",
                             after={"file": report.file_name, "rows": report.rows,
                                    "changed": changed_ids})
                events.emit("targets.imported", target, actor=actor, targets=changed_ids,
                            file=report.file_name)
    report.seconds = time.monotonic() - started
    return report


def _check_file(actor: Any, rows: Any, report: Any) -> list[_Row]:
    from weiying.pipeline.imports import _map_header

    header = next(rows, None)
    if header is None:
        raise ValidationFailed(_("The file is empty; the first row names the columns."),
                               code="bad_file", field="file")
    columns = _map_header(header, TARGET_HEADERS)
    missing = [name for name in ("kpi", "period", "value") if name not in columns]
    if "employee" not in columns and "department" not in columns:
        missing.insert(0, "employee/department")
    if missing:
        raise ValidationFailed(
            _("The file has no column for %(columns)s; the first row names the columns: 工号 "
              "or 部门, 指标, 期间, 产品线 (optional), 目标值.") % {"columns": ", ".join(missing)},
            code="bad_file", field="file")

    resolver = _Resolver(actor)
    good: list[_Row] = []
    for number, cells in enumerate(rows, start=2):
        if not any(cells):
            continue
        report.rows += 1
        row = _check_row(actor, resolver, number, cells, columns, report)
        if row is not None:
            good.append(row)
    _check_overlaps(good, report)
    return good


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _check_row(actor: Any, resolver: _Resolver, number: int, cells: list[str],
               columns: dict[str, int], report: Any) -> _Row | None:
    failed = False

    def fail(column: str, message: Any) -> None:
        nonlocal failed
        failed = True
        report.add_error(number, column, str(message))

    employee = department = kpi = period = None
    number_text = _cell(cells, columns, "employee")
    dept_text = _cell(cells, columns, "department")
    try:
        if number_text and dept_text:
            raise ValidationFailed(_("Write either the employee number or the department, not "
                                     "both."), field="employee")
        if number_text:
            employee = resolver.employee(number_text)
        elif dept_text:
            department = resolver.department(dept_text)
        else:
            raise ValidationFailed(_("Write the employee number or the department."),
                                   field="employee")
    except ValidationFailed as exc:
        fail(exc.field or "employee", exc.message)
    try:
        kpi = resolver.kpi(_cell(cells, columns, "kpi"))
    except ValidationFailed as exc:
        fail("kpi", exc.message)
    period_text = _cell(cells, columns, "period")
    try:
        period = parse_period(period_text)
    except ValidationFailed as exc:
        fail("period", exc.message)
    line = _cell(cells, columns, "line")
    value = None
    if kpi is not None:
        try:
            line = check_line(kpi, line)
        except ValidationFailed as exc:
            fail("line", exc.message)
        try:
            value = parse_value(kpi, _cell(cells, columns, "value"))
        except ValidationFailed as exc:
            fail("value", exc.message)
    if employee is not None or department is not None:
        try:
            employee, department = may_write(actor, employee=employee, department=department)
        except NotFound:
            what = (_("employee %(s)s") % {"s": number_text} if number_text
                    else _("department %(s)s") % {"s": dept_text})
            fail("employee" if number_text else "department",
                 _("%(what)s is outside your view; you may set targets only within your "
                   "department's subtree.") % {"what": what})
        except PermissionDenied as exc:
            fail("employee" if number_text else "department", exc.message)
    if failed or kpi is None or period is None or value is None:
        return None
    return _Row(number, kpi, period, employee, department, line, value,
                _cell(cells, columns, "note")[:255], period_text)


def _check_overlaps(rows: list[_Row], report: Any) -> None:
    """Two rows for the same subject, KPI and line whose periods of the same kind overlap
    (the same month twice, a quarter written once as 2026-Q1 and once as dates)."""
    seen: dict[tuple, list[_Row]] = {}
    for row in rows:
        earlier = seen.setdefault(row.key(), [])
        for other in earlier:
            if other.period.overlaps(row.period):
                report.add_error(row.number, "period", _(
                    "Row %(row)s and row %(other)s both set %(kpi)s of %(subject)s for "
                    "%(period)s (%(this)s / %(that)s); keep one of the two rows.") % {
                        "row": row.number, "other": other.number, "kpi": row.kpi.label,
                        "subject": row.subject_label(), "period": row.period.label,
                        "this": row.period_text, "that": other.period_text})
                break
        else:
            earlier.append(row)

