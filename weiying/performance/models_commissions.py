"""Commissions (提成): plans with rate tiers by achievement, and monthly statements per rep.

- `CommissionPlan`: what is paid on (collected cash or recognised revenue, all product lines
  or one), which KPI's achievement against the rep's target picks the tier (by default the
  basis's own KPI), how the tiers accumulate, an optional cap per statement, the months it is
  valid for, and whom it covers (a level filter and/or a department subtree).
- `CommissionTier`: one band of achievement [from %, to %) with its rate; the last may be
  open-ended. weiying.performance.commissions.save_plan keeps the tiers contiguous from the
  plan's floor.
- `CommissionStatement`: one rep × month, draft → submitted → approved / rejected (a rejected
  one is recomputed into a draft again); an approved statement never changes. It keeps the
  figures it was computed from (`figures`, JSON) for audit.
- `CommissionLine`: one plan's part of a statement, with the tier, rate and amounts copied, so
  changing a plan later never rewrites a statement.

Two ways of applying the tiers, a plan option (both are common in Chinese sales orgs):
- 全额累进 (`whole`): the rate of the tier the achievement reaches applies to the whole basis.
- 超额累进 (`banded`): each band of achievement earns its own rate on the part of the basis
  that falls in it: amount = Σ rate_i × basis × (min(a, to_i) − from_i) / a over the tiers the
  achievement a has passed. When the tier KPI is the basis itself, that is the familiar
  "first 80 % of target at 2 %, the next 20 % at 3 %, everything above at 5 %".
A tier covers achievements from its start (included) to its end (excluded); above the end of a
last tier that has an end, the last tier still applies (its end is read as open).
Below a floor above 0 % no tier applies and nothing is earned.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from weiying.core.money import MONEY_FIELD
from weiying.core.scope import ScopeRule

__all__ = ["Accumulation", "CommissionBasis", "CommissionLine", "CommissionPlan",
           "CommissionStatement", "CommissionTier", "StatementStatus"]

PERCENT_FIELD = {"max_digits": 9, "decimal_places": 4}


class CommissionBasis(models.TextChoices):
    COLLECTED = "collected", _("Cash collected")
    REVENUE = "revenue", _("Revenue recognised")


class Accumulation(models.TextChoices):
    WHOLE = "whole", _("Whole basis at the tier reached (全额累进)")
    BANDED = "banded", _("Each band at its own rate (超额累进)")


class StatementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class CommissionPlan(models.Model):
    """A commission rule. `kpi` empty means the basis's own KPI (collected or revenue);
    `line` empty means all product lines; `levels` is a comma-separated list of levels
    (empty: every level); `department` limits it to a subtree (empty: the whole company)."""

    name = models.CharField(_("name"), max_length=128)
    basis = models.CharField(_("basis"), max_length=16, choices=CommissionBasis.choices,
                             default=CommissionBasis.COLLECTED)
    line = models.CharField(_("product line"), max_length=64, blank=True, default="")
    kpi = models.CharField(_("KPI for the tier"), max_length=32, blank=True, default="")
    accumulation = models.CharField(_("accumulation"), max_length=8,
                                    choices=Accumulation.choices, default=Accumulation.WHOLE)
    floor = models.DecimalField(_("floor (%)"), default=Decimal("0"), **PERCENT_FIELD)
    cap = models.DecimalField(_("cap per statement"), null=True, blank=True, **MONEY_FIELD)
    valid_from = models.DateField(_("valid from"))
    valid_to = models.DateField(_("valid until"), null=True, blank=True)
    levels = models.CharField(_("levels"), max_length=255, blank=True, default="")
    department = models.ForeignKey("org.Department", on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+",
                                   verbose_name=_("department (with its subtree)"))
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("commission plan")
        verbose_name_plural = _("commission plans")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def kpi_code(self) -> str:
        return self.kpi or self.basis

    @property
    def level_list(self) -> list[str]:
        return [x.strip() for x in self.levels.split(",") if x.strip()]


class CommissionTier(models.Model):
    """One band of achievement: [from %, to %) earns `rate` % (to empty: open-ended)."""

    plan = models.ForeignKey(CommissionPlan, on_delete=models.CASCADE, related_name="tiers")
    seq = models.PositiveSmallIntegerField(_("tier"))
    from_pct = models.DecimalField(_("from achievement (%)"), **PERCENT_FIELD)
    to_pct = models.DecimalField(_("to achievement (%)"), null=True, blank=True,
                                 **PERCENT_FIELD)
    rate = models.DecimalField(_("rate (%)"), **PERCENT_FIELD)

    class Meta:
        verbose_name = _("commission tier")
        verbose_name_plural = _("commission tiers")
        ordering = ["plan", "seq"]
        constraints = [models.UniqueConstraint(fields=["plan", "seq"],
                                               name="commissiontier_plan_seq_unique")]

    def __str__(self) -> str:
        return f"{self.plan_id}#{self.seq} {self.from_pct}–{self.to_pct or '∞'} @ {self.rate}"


class CommissionStatement(models.Model):
    """One rep's commission for one month. `department` is the rep's department on the
    month's last day (the HR history): the statement is seen from there, and keeps it when the
    rep transfers later."""

    scope = ScopeRule(owner="employee", department="department", follows_owner=False)

    employee = models.ForeignKey("org.Employee", on_delete=models.PROTECT, related_name="+",
                                 verbose_name=_("employee"))
    department = models.ForeignKey("org.Department", on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("department"))
    month = models.DateField(_("month"))  # the first day of the month
    status = models.CharField(_("status"), max_length=16, choices=StatementStatus.choices,
                              default=StatementStatus.DRAFT)
    basis = models.DecimalField(_("commission basis"), default=Decimal("0"), **MONEY_FIELD)
    achievement = models.DecimalField(_("achievement (%)"), null=True, blank=True,
                                      **PERCENT_FIELD)
    amount = models.DecimalField(_("commission"), default=Decimal("0"), **MONEY_FIELD)
    figures = models.JSONField(_("figures computed from"), default=dict, blank=True)
    computed_at = models.DateTimeField(_("computed"), null=True, blank=True)
    computed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+")
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                    null=True, blank=True, related_name="+",
                                    verbose_name=_("approved by"))
    rejected_reason = models.CharField(_("reason for rejection"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-month", "employee_id"]
        constraints = [models.UniqueConstraint(fields=["employee", "month"],
                                               name="commissionstatement_unique")]
        indexes = [models.Index(fields=["month", "status"], name="commissionstmt_month_idx")]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.month:%Y-%m} {self.amount}"


class CommissionLine(models.Model):
    """One plan's part of a statement, as computed: the basis, the achievement that picked the
    tier, the rate, the amount before and after the plan's cap, and a note (no target…)."""

    statement = models.ForeignKey(CommissionStatement, on_delete=models.CASCADE,
                                  related_name="lines")
    plan = models.ForeignKey(CommissionPlan, on_delete=models.PROTECT, related_name="+",
                             verbose_name=_("plan"))
    line = models.CharField(_("product line"), max_length=64, blank=True, default="")
    kpi = models.CharField(_("KPI for the tier"), max_length=32)
    basis = models.DecimalField(_("commission basis"), **MONEY_FIELD)
    actual = models.DecimalField(_("actual"), null=True, blank=True, max_digits=20,
                                 decimal_places=4)
    target = models.DecimalField(_("target"), null=True, blank=True, max_digits=20,
                                 decimal_places=4)
    achievement = models.DecimalField(_("achievement (%)"), null=True, blank=True,
                                      **PERCENT_FIELD)
    tier = models.PositiveSmallIntegerField(_("tier"), null=True, blank=True)
    rate = models.DecimalField(_("rate (%)"), **PERCENT_FIELD)
    uncapped = models.DecimalField(_("before the cap"), **MONEY_FIELD)
    amount = models.DecimalField(_("commission"), **MONEY_FIELD)
    capped = models.BooleanField(_("capped"), default=False)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("commission line")
        verbose_name_plural = _("commission lines")
        ordering = ["statement", "id"]

    def __str__(self) -> str:
        return f"{self.statement_id}/{self.plan_id} {self.amount}"
