"""What the analysis layer stores. Reports are computed from the other layers' data and the
performance roll-ups; only what is expensive to recompute lives here: the trained scoring
models and the scores they gave (weiying.reports.scoring)."""

from __future__ import annotations

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
