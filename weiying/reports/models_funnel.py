"""The funnel's roll-up: how far each opportunity got, and the company-wide sums the company
funnel reads instead of scanning every opportunity and stage change (weiying.reports.rollup
keeps them from the pipeline's events and rebuilds them from scratch).

Derived tables: their ids of opportunities, pipelines and stages have no database foreign
keys (checking 1.6 million opportunity keys at the rebuild's commit was 16 of its 40 seconds
on the xl company); Django's on_delete still cascades, and the nightly rebuild puts right
whatever a delete outside Django left behind."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FunnelPosition(models.Model):
    """One opportunity's place in its cohort: the day it was created (company time zone), the
    furthest open stage (order) its history entered, its status, and the last stage change
    whose stay is counted in FunnelStay (so a replay counts no stay twice)."""

    opportunity = models.OneToOneField("pipeline.Opportunity", on_delete=models.CASCADE,
                                       primary_key=True, related_name="+",
                                       db_constraint=False)
    pipeline = models.ForeignKey("pipeline.Pipeline", on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False)
    day = models.DateField()
    furthest = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=8)
    lost_reason = models.CharField(max_length=16, blank=True)
    amount_fen = models.BigIntegerField(default=0)
    last_change = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("funnel position")
        verbose_name_plural = _("funnel positions")

    def __str__(self) -> str:
        return f"{self.opportunity_id}: {self.furthest} {self.status}"


class FunnelLevel(models.Model):
    """Opportunities created on `day` in `pipeline` whose furthest stage, status and loss
    reason are these: how many and their amount in fen."""

    pipeline = models.ForeignKey("pipeline.Pipeline", on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False)
    day = models.DateField()
    furthest = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=8)
    lost_reason = models.CharField(max_length=16, blank=True)
    count = models.BigIntegerField(default=0)
    amount_fen = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("funnel level")
        verbose_name_plural = _("funnel levels")
        constraints = [models.UniqueConstraint(
            fields=["pipeline", "day", "furthest", "status", "lost_reason"],
            name="funnel_level_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.furthest} {self.status}: {self.count}"


class FunnelStay(models.Model):
    """Completed stays in `stage` by opportunities created in `month` (its first day), that
    lasted `hours` whole hours: how many and their exact seconds."""

    pipeline = models.ForeignKey("pipeline.Pipeline", on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False)
    month = models.DateField()
    stage = models.ForeignKey("pipeline.Stage", on_delete=models.CASCADE, related_name="+",
                              db_constraint=False)
    hours = models.PositiveIntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("funnel stay")
        verbose_name_plural = _("funnel stays")
        constraints = [models.UniqueConstraint(fields=["pipeline", "month", "stage", "hours"],
                                               name="funnel_stay_unique")]

    def __str__(self) -> str:
        return f"{self.month} {self.stage_id} {self.hours}h: {self.count}"


class FunnelStayDay(models.Model):
    """The same as FunnelStay by creation day: read only for the days of a month that lies
    partly outside the period, so a period need not start or end on a month's edge."""

    pipeline = models.ForeignKey("pipeline.Pipeline", on_delete=models.CASCADE,
                                 related_name="+", db_constraint=False)
    day = models.DateField()
    stage = models.ForeignKey("pipeline.Stage", on_delete=models.CASCADE, related_name="+",
                              db_constraint=False)
    hours = models.PositiveIntegerField()
    count = models.BigIntegerField(default=0)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("funnel stay by day")
        verbose_name_plural = _("funnel stays by day")
        constraints = [models.UniqueConstraint(fields=["pipeline", "day", "stage", "hours"],
                                               name="funnel_stay_day_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.stage_id} {self.hours}h: {self.count}"
