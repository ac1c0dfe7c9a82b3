"""The KPI catalogue: built-in KPIs and custom ones, each a formula over base measures.

A formula is arithmetic (+ − × ÷, brackets, numbers) over measure codes and the codes of
other KPIs, evaluated with simpleeval (no attribute access, no calls). Measures enter in
their natural units — yuan as Decimal, seconds, counts — so `signed_amount / signed_contracts`
is an average deal in yuan. A ratio of sums is computed from the summed measures of the
slice, so a team's win rate is its won over its closed, not the mean of its members' rates.
A division by zero gives None, shown as "—".
"""

from __future__ import annotations

import ast
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from weiying.core import audit
from weiying.core.errors import Conflict, ValidationFailed
from weiying.core.permissions import require
from weiying.performance.measures import MEASURES
from weiying.performance.models import Direction, Kpi, Unit

# code, name, unit, direction, formula, per line, definition
BUILTIN: list[tuple[str, str, str, str, str, bool, str]] = [
    ("leads", gettext_noop("Leads"), Unit.COUNT, Direction.UP, "leads", False,
     gettext_noop("Leads assigned to the rep, on the day of assignment.")),
    ("first_response", gettext_noop("First-response time"), Unit.SECONDS, Direction.DOWN,
     "response_seconds / responded", False,
     gettext_noop("Average time from a lead's assignment to its first follow-up, on the day of "
                  "the response.")),
    ("followups", gettext_noop("Follow-ups"), Unit.COUNT, Direction.UP, "followups", False,
     gettext_noop("Follow-ups logged (calls, visits, WeChat messages…), on their day.")),
    ("new_customers", gettext_noop("New customers"), Unit.COUNT, Direction.UP,
     "new_customers", False,
     gettext_noop("Customers whose first contract was signed, on the signing day.")),
    ("opportunities", gettext_noop("Opportunities"), Unit.COUNT, Direction.UP,
     "opportunities", False, gettext_noop("Opportunities opened, on the day they were opened.")),
    ("win_rate", gettext_noop("Win rate"), Unit.RATIO, Direction.UP, "won / (won + lost)",
     False, gettext_noop("Opportunities won over those closed (won or lost) in the period.")),
    ("signed_amount", gettext_noop("Signed amount"), Unit.MONEY, Direction.UP,
     "signed_amount", True,
     gettext_noop("Contract totals (VAT included) on the signing day; cancelled contracts "
                  "excluded.")),
    ("collected", gettext_noop("Collected amount"), Unit.MONEY, Direction.UP, "collected",
     False, gettext_noop("Cash received on the rep's contracts, on the day received (回款).")),
    ("revenue", gettext_noop("Recognised revenue"), Unit.MONEY, Direction.UP, "revenue", True,
     gettext_noop("Revenue net of VAT recognised by the finance layer, in the month booked.")),
    ("gross_margin", gettext_noop("Gross margin"), Unit.MONEY, Direction.UP,
     "revenue - cost", True,
     gettext_noop("Recognised revenue less the cost of sales booked with it.")),
    ("repurchase_rate", gettext_noop("Repurchase rate"), Unit.RATIO, Direction.UP,
     "repeat_contracts / signed_contracts", False,
     gettext_noop("Signed contracts of customers who had signed before, over all signed.")),
]

ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant,
                 ast.Add, ast.Sub, ast.Mult, ast.Div, ast.USub, ast.UAdd)


def ensure_builtin() -> None:
    for position, (code, name, unit, direction, formula, by_line, definition) in enumerate(
            BUILTIN):
        Kpi.objects.update_or_create(code=code, defaults={
            "name": name, "unit": unit, "direction": direction, "formula": formula,
            "by_line": by_line, "definition": definition, "is_builtin": True,
            "position": position * 10})


def names_in(formula: str) -> set[str]:
    """The codes a formula uses; raises ValidationFailed when it is not plain arithmetic."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError:
        raise ValidationFailed(
            _("The formula %(formula)s cannot be read; write arithmetic over measure codes, "
              "e.g. signed_amount / signed_contracts.") % {"formula": formula},
            field="formula") from None
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise ValidationFailed(
                _("The formula %(formula)s uses something other than + − × ÷, brackets, "
                  "numbers and codes; remove it.") % {"formula": formula}, field="formula")
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def check_formula(formula: str, *, code: str = "") -> set[str]:
    used = names_in(formula)
    known = set(MEASURES) | set(Kpi.objects.exclude(code=code).values_list("code", flat=True))
    unknown = sorted(used - known)
    if unknown:
        raise ValidationFailed(
            _("The formula uses %(names)s, which is neither a measure nor a KPI; pick from: "
              "%(known)s.") % {"names": ", ".join(unknown), "known": ", ".join(sorted(MEASURES))},
            field="formula")
    if code and code in used:
        raise ValidationFailed(_("A KPI cannot be built from itself."), field="formula")
    return used


@transaction.atomic
def save_custom(*, actor: Any, code: str, name: str, unit: str, direction: str, formula: str,
                definition: str = "") -> Kpi:
    """Add or change a custom KPI (a built-in one keeps its definition)."""
    require(actor, "targets.manage")
    code, name, formula = code.strip(), name.strip(), formula.strip()
    if not code or not code.replace("_", "").isalnum() or not code.isascii():
        raise ValidationFailed(_("A KPI code is letters, digits and underscores, e.g. "
                                 "avg_deal."), field="code")
    if code in MEASURES:
        raise Conflict(_("%(code)s is the code of a measure; pick another code.")
                       % {"code": code}, field="code")
    if not name:
        raise ValidationFailed(_("A KPI needs a name."), field="name")
    if unit not in Unit.values:
        raise ValidationFailed(_("Pick a unit: %(units)s.") % {"units": ", ".join(Unit.values)},
                               field="unit")
    if direction not in Direction.values:
        raise ValidationFailed(_("Pick a direction: up or down."), field="direction")
    existing = Kpi.objects.filter(code=code).first()
    if existing is not None and existing.is_builtin:
        raise Conflict(_("%(code)s is a built-in KPI; its definition cannot change.")
                       % {"code": code}, field="code")
    used = check_formula(formula, code=code)
    by_line = all(MEASURES[n].by_line for n in used if n in MEASURES) and bool(used & set(
        MEASURES))
    before = audit.snapshot(existing) if existing else None
    kpi, _created = Kpi.objects.update_or_create(code=code, defaults={
        "name": name, "unit": unit, "direction": direction, "formula": formula,
        "definition": definition.strip(), "by_line": by_line, "is_builtin": False})
    _check_acyclic(kpi)
    audit.record(actor, "kpi.save", kpi, before=before, after=audit.snapshot(kpi))
    return kpi


def _check_acyclic(kpi: Kpi) -> None:
    formulas = dict(Kpi.objects.values_list("code", "formula"))

    def visit(code: str, trail: tuple[str, ...]) -> None:
        if code in trail:
            raise ValidationFailed(_("The formula refers back to itself through %(trail)s.")
                                   % {"trail": " → ".join((*trail, code))}, field="formula")
        for name in names_in(formulas[code]):
            if name in formulas and name not in MEASURES:
                visit(name, (*trail, code))

    visit(kpi.code, ())


def natural(measure: str, raw: int) -> Decimal:
    """A measure's summed raw value (fen, seconds, count) in its natural unit."""
    if MEASURES[measure].unit == "money":
        return (Decimal(raw) / 100).quantize(Decimal("0.01"))
    return Decimal(raw)


class Evaluator:
    """Evaluates KPIs over one slice's summed measures (raw units, as the selectors return)."""

    def __init__(self, raw: dict[str, int], kpis: dict[str, Kpi] | None = None) -> None:
        self.raw = raw
        self.kpis = kpis if kpis is not None else {k.code: k for k in Kpi.objects.all()}
        self._memo: dict[str, Decimal | None] = {}

    def value(self, code: str) -> Decimal | None:
        if code in MEASURES:
            return natural(code, int(self.raw.get(code, 0)))
        if code in self._memo:
            return self._memo[code]
        kpi = self.kpis[code]
        self._memo[code] = None  # a cycle evaluates to None rather than recursing forever
        result = self._eval(kpi.formula)
        self._memo[code] = result
        return result

    def _eval(self, formula: str) -> Decimal | None:
        from simpleeval import SimpleEval

        names: dict[str, Any] = {}
        for name in names_in(formula):
            v = self.value(name)
            if v is None:
                return None
            names[name] = v
        evaluator = SimpleEval(names=names, functions={})
        try:
            result = evaluator.eval(formula)
        except (ZeroDivisionError, InvalidOperation):
            return None
        except TypeError:  # a decimal constant (0.5) meets Decimal values: go through float
            evaluator.names = {k: float(v) for k, v in names.items()}
            try:
                result = evaluator.eval(formula)
            except ZeroDivisionError:
                return None
            return Decimal(str(round(result, 8)))
        return result if isinstance(result, Decimal) else Decimal(str(result))


def measures_for(kpi_codes: list[str], kpis: dict[str, Kpi] | None = None) -> set[str]:
    """The measures the given KPIs need (to read no more than that)."""
    kpis = kpis if kpis is not None else {k.code: k for k in Kpi.objects.all()}
    out: set[str] = set()
    stack = list(kpi_codes)
    seen: set[str] = set()
    while stack:
        code = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        if code in MEASURES:
            out.add(code)
        elif code in kpis:
            stack.extend(names_in(kpis[code].formula))
    return out
