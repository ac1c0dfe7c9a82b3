"""The performance layer's tables.

- `Kpi`: the catalogue. Every KPI is a formula over the base measures of
  weiying.performance.measures (a count, an amount in fen, a duration in seconds), so a
  ratio such as the win rate is computed from the summed parts of any slice, never averaged.
- `DailyFact`: one row per employee × day × measure (× product line), in whole units (fen,
  seconds, counts), with the department the employee belonged to on that day (from the HR
  history) and a copy of its path for subtree ranges.
- `DepartmentMonth`: the same summed per department × month × measure (× line): the
  department's own members only, so a subtree's figure is one range over the path. Kept in
  the same transaction as the facts, and rebuildable from them.
- `SubtreeMonth`: the departments near the top of the tree (depth ≤ SUBTREE_DEPTH), each
  with its whole subtree summed per month × measure (× line). A region of 10,000 people is
  then a few hundred rows a year, not a range over a thousand departments' months.

The three are derived tables: written only by weiying.performance.facts from the records and
the org tables, and rebuilt from scratch every night. They keep ids of employees and
departments without database foreign keys (after the bulk load each key was checked over
all 38 million facts of the xl company; with the keys gone, two indexes dropped and byte-wise
text keys, that step fell from 191 s to under 105 s); Django's on_delete still runs, and
departments are never deleted.

Targets live in models_targets, commissions in models_commissions.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.scope import ScopeRule

OWNER = {"on_delete": models.SET_NULL, "null": True, "blank": True, "related_name": "+"}


class Unit(models.TextChoices):
    COUNT = "count", _("Count")
    MONEY = "money", _("Amount (¥)")
    SECONDS = "seconds", _("Duration")
    RATIO = "ratio", _("Ratio (%)")


class Direction(models.TextChoices):
    UP = "up", _("Higher is better")
    DOWN = "down", _("Lower is better")


class Kpi(models.Model):
    """A KPI: a formula over base measures, with its unit and direction. Built-in KPIs are
    seeded; an administrator adds custom ones (the formula is checked when saved)."""

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=64)
    definition = models.CharField(_("definition"), max_length=255, blank=True)
    unit = models.CharField(_("unit"), max_length=8, choices=Unit.choices)
    direction = models.CharField(_("direction"), max_length=4, choices=Direction.choices,
                                 default=Direction.UP)
    formula = models.CharField(_("formula"), max_length=255)
    # Per product line when every measure of the formula is kept per line.
    by_line = models.BooleanField(_("per product line"), default=False)
    is_builtin = models.BooleanField(_("built in"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(default=100)

    class Meta:
        verbose_name = _("KPI")
        verbose_name_plural = _("KPIs")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        from django.utils.translation import gettext

        return gettext(self.name) if self.is_builtin else self.name


class DailyFact(models.Model):
    scope = ScopeRule(owner="employee", department="department", follows_owner=False,
                      department_path="department_path")

    day = models.DateField()
    month = models.DateField()  # the first day of the day's month, for the month sums
    # No index of its own: the unique constraint's index leads with the employee.
    employee = models.ForeignKey("org.Employee", on_delete=models.CASCADE, related_name="+",
                                 db_index=False, db_constraint=False)
    department = models.ForeignKey("org.Department", on_delete=models.PROTECT,
                                   related_name="+", db_index=False, db_constraint=False)
    department_path = models.CharField(max_length=255)
    measure = models.CharField(max_length=24)
    line = models.CharField(max_length=64, blank=True, default="")
    value = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["employee", "measure", "line", "day"], name="dailyfact_unique")]
        indexes = [
            # A measure's day in a subtree is one contiguous range of this index: a slice
            # names its measures and its days (day IN …), so every one is a bound and no
            # other day of the subtree is read.
            models.Index(fields=["measure", "day", "department_path"],
                         name="dailyfact_slice_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.day} {self.measure}{self.line and '/' + self.line}"


class DepartmentMonth(models.Model):
    # A department's month belongs to the department; a rep (own records) sees none of it.
    scope = ScopeRule(owner="department__manager", department="department",
                      follows_owner=False, department_path="department_path")

    month = models.DateField()  # the first day of the month
    # No index of its own: the unique constraint's index leads with the department.
    department = models.ForeignKey("org.Department", on_delete=models.PROTECT,
                                   related_name="+", db_index=False, db_constraint=False)
    department_path = models.CharField(max_length=255)
    measure = models.CharField(max_length=24)
    line = models.CharField(max_length=64, blank=True, default="")
    value = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["department", "measure", "line", "month"], name="departmentmonth_unique")]
        indexes = [models.Index(fields=["department_path", "month"],
                                name="departmentmonth_path_idx")]

    def __str__(self) -> str:
        return f"{self.department_id} {self.month:%Y-%m} {self.measure}"


SUBTREE_DEPTH = 4  # the company, its regions and two levels below them


class SubtreeMonth(models.Model):
    scope = ScopeRule(owner="department__manager", department="department",
                      follows_owner=False)

    month = models.DateField()
    department = models.ForeignKey("org.Department", on_delete=models.PROTECT,
                                   related_name="+", db_index=False, db_constraint=False)
    depth = models.PositiveSmallIntegerField()  # the department's, 1 for a root
    measure = models.CharField(max_length=24)
    line = models.CharField(max_length=64, blank=True, default="")
    value = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["department", "measure", "line", "month"], name="subtreemonth_unique")]

    def __str__(self) -> str:
        return f"{self.department_id} subtree {self.month:%Y-%m} {self.measure}"


from weiying.performance.models_commissions import *  # noqa: E402,F401,F403
from weiying.performance.models_targets import *  # noqa: E402,F401,F403
