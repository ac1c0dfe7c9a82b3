"""What the analysis layer stores. Reports are computed from the other layers' data and the
performance roll-ups; only what is expensive to recompute lives here: the trained scoring
models and the scores they gave (weiying.reports.scoring)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ScoreKind(models.TextChoices):
    LEAD_WIN = "lead_win", _("Lead win probability")
    REPURCHASE = "repurchase", _("Repurchase propensity")


class ScoreModel(models.Model):
    """The current model of one kind: how it measured on held-out data and, when there was
    enough history, the fitted pipeline. One row per kind; retraining replaces it.

    Trust boundary: `pipeline` is a pickle, and unpickling runs code. Only our own training
    job writes it (weiying.reports.scoring.train), and it signs the bytes with an HMAC keyed
    by SECRET_KEY (`signature`); a pipeline whose signature does not match is never loaded.
    It lives in the database rather than in a file under the data dir so that every web and
    worker machine reads the same model and nobody with only file access can swap it.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=ScoreKind.choices, unique=True)
    trained_at = models.DateTimeField(_("trained at"))
    # Empty when a model was trained; otherwise why not (scoring.REFUSALS), with `labelled`.
    refusal = models.CharField(_("not trained because"), max_length=32, blank=True)
    labelled = models.PositiveIntegerField(_("labelled rows"), default=0)
    train_rows = models.PositiveIntegerField(_("training rows"), default=0)
    test_rows = models.PositiveIntegerField(_("held-out rows"), default=0)
    positives = models.PositiveIntegerField(_("positive rows"), default=0)
    base_rate = models.FloatField(_("base rate"), null=True, blank=True)
    test_base_rate = models.FloatField(_("base rate in the held-out rows"), null=True,
                                       blank=True)
    auc = models.FloatField(_("held-out ROC AUC"), null=True, blank=True)
    test_from = models.DateTimeField(_("held-out rows from"), null=True, blank=True)
    # [{"feature": key, "value": category or null, "weight": coefficient}], largest first.
    factors = models.JSONField(_("main factors"), default=list, blank=True)
    pipeline = models.BinaryField(null=True, blank=True, editable=False)
    signature = models.CharField(max_length=128, blank=True, editable=False)
    library_version = models.CharField(max_length=32, blank=True, editable=False)
    seconds = models.FloatField(_("training seconds"), default=0)

    class Meta:
        verbose_name = _("scoring model")
        verbose_name_plural = _("scoring models")

    def __str__(self) -> str:
        return f"{self.kind} {self.trained_at:%Y-%m-%d %H:%M}"

    @property
    def is_trained(self) -> bool:
        return not self.refusal and self.pipeline is not None


class Score(models.Model):
    """The probability the current model gives one open lead or one customer. Pages read
    these rows; the nightly job rewrites them."""

    kind = models.CharField(_("kind"), max_length=16, choices=ScoreKind.choices)
    object_id = models.PositiveBigIntegerField(_("object id"))
    probability = models.FloatField(_("probability"))
    model = models.ForeignKey(ScoreModel, on_delete=models.CASCADE, related_name="scores")
    scored_at = models.DateTimeField(_("scored at"))

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id"], name="score_kind_object_unique"),
        ]
        indexes = [models.Index(fields=["kind", "-probability"], name="score_rank_idx")]

    def __str__(self) -> str:
        return f"{self.kind}#{self.object_id} {self.probability:.3f}"


# The funnel's roll-up lives in its own module.
from weiying.reports.models_funnel import *  # noqa: E402,F401,F403


# --- scheduled reports (weiying.reports.schedules) ---------------------------------------------
class ScheduleFrequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly")


class ReportSchedule(models.Model):
    """A report pushed to WeCom as a text card: to one employee, or to every department head
    of a level (M1, M2… as the HR roster writes levels), daily or weekly on a weekday, at an
    hour in the company's time zone. Each recipient's card carries the headline figures of
    their own scope. `last_slot` is the last due moment sent, so a slot goes out once."""

    name = models.CharField(_("name"), max_length=64)
    recipient = models.ForeignKey("org.Employee", on_delete=models.CASCADE, null=True,
                                  blank=True, related_name="+", verbose_name=_("recipient"))
    recipient_level = models.CharField(_("or every head of level"), max_length=16, blank=True)
    # "dashboard" (the recipient's own), a dashboard role, or a report page (schedules.REPORTS).
    report = models.CharField(_("report"), max_length=24, default="dashboard")
    frequency = models.CharField(_("frequency"), max_length=8, choices=ScheduleFrequency.choices,
                                 default=ScheduleFrequency.DAILY)
    weekday = models.PositiveSmallIntegerField(_("weekday"), null=True, blank=True)  # 0 = Mon
    hour = models.PositiveSmallIntegerField(_("hour"), default=9)
    is_active = models.BooleanField(_("active"), default=True)
    last_slot = models.DateTimeField(_("last sent for"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        verbose_name = _("scheduled report")
        verbose_name_plural = _("scheduled reports")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(recipient__isnull=False, recipient_level="")
                           | (models.Q(recipient__isnull=True) & ~models.Q(recipient_level=""))),
                name="reportschedule_one_audience"),
            models.CheckConstraint(condition=models.Q(hour__lte=23),
                                   name="reportschedule_hour"),
            models.CheckConstraint(
                condition=(models.Q(frequency="daily", weekday__isnull=True)
                           | models.Q(frequency="weekly", weekday__lte=6)),
                name="reportschedule_weekday"),
        ]

    def __str__(self) -> str:
        return self.name
