"""Targets: what a person or a department should reach on one KPI over one month, quarter
or year, optionally for one product line.

A target belongs to exactly one subject, an employee or a department (a check constraint says
so). `holder` is the department the target is seen from: the department itself for a
department target, the employee's department for an employee target (it follows the employee
on a transfer), so the data scope is one column: a rep sees their own targets, a manager the
targets of their subtree. `parent` is the target this one was decomposed from (分解).

Values are in the KPI's natural unit: yuan for money, a count, seconds, a ratio 0..1.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from weiying.core.scope import ScopeRule

__all__ = ["PeriodKind", "Target"]


class PeriodKind(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")
    YEAR = "year", _("Year")


class Target(models.Model):
    """One target: a KPI × subject × product line × period, with its value."""

    scope = ScopeRule(owner="employee", department="holder")

    kpi = models.ForeignKey("performance.Kpi", on_delete=models.PROTECT, related_name="targets",
                            verbose_name=_("KPI"))
    kind = models.CharField(_("period kind"), max_length=8, choices=PeriodKind.choices)
    start = models.DateField(_("first day"))
    end = models.DateField(_("last day"))
    employee = models.ForeignKey("org.Employee", on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="+", verbose_name=_("employee"))
    department = models.ForeignKey("org.Department", on_delete=models.CASCADE, null=True,
                                   blank=True, related_name="+",
                                   verbose_name=_("department"))
    holder = models.ForeignKey("org.Department", on_delete=models.PROTECT, related_name="+")
    line = models.CharField(_("product line"), max_length=64, blank=True, default="")
    value = models.DecimalField(_("target"), max_digits=20, decimal_places=4)
    parent = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="parts", verbose_name=_("decomposed from"))
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+", verbose_name=_("set by"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["start", "kpi__position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(employee__isnull=False, department__isnull=True)
                           | Q(employee__isnull=True, department__isnull=False)),
                name="target_one_subject"),
            models.UniqueConstraint(fields=["kpi", "employee", "line", "kind", "start"],
                                    condition=Q(employee__isnull=False),
                                    name="target_employee_unique"),
            models.UniqueConstraint(fields=["kpi", "department", "line", "kind", "start"],
                                    condition=Q(department__isnull=False),
                                    name="target_department_unique"),
        ]
        indexes = [models.Index(fields=["holder", "start"], name="target_holder_idx")]

    def __str__(self) -> str:
        subject = self.employee_id and f"e{self.employee_id}" or f"d{self.department_id}"
        return f"{self.kpi_id} {subject} {self.kind} {self.start}{self.line and '/' + self.line}"

    @property
    def subject(self) -> object:
        return self.employee if self.employee_id else self.department
