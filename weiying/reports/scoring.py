"""Predictive scores trained on the company's own history: the win probability of open leads
and the repurchase propensity of customers (rows from weiying.reports.scoring_features).

The model is a logistic regression on standardized features (categories one-hot encoded,
then standardized like the numbers), so each coefficient says how much one standard
deviation of that column moves the log-odds: the page lists the largest as the main
factors. It is measured honestly on a time-based hold-out: fitted on the older 75 % of the
labelled rows, its ROC AUC taken on the newest 25 %, which it never saw. The stored model
is then refitted on all labelled rows with the same settings. With too little history
(fewer than MIN_LABELLED labelled rows, or one outcome only) nothing is trained and no
score is shown.

scikit-learn is imported inside the functions: the web process never pays for it unless it
trains or scores.
"""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import random
import time
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from weiying.core import audit
from weiying.core.permissions import require
from weiying.core.scope import scoped
from weiying.reports.models import Score, ScoreKind, ScoreModel
from weiying.reports.scoring_features import (
    LEAD_FEATURES,
    OPEN_LEAD_STATUSES,
    REPURCHASE_FEATURES,
    FeatureSet,
    Rows,
    lead_rows,
    repurchase_rows,
)

logger = logging.getLogger(__name__)

MIN_LABELLED = 200
HOLDOUT_SHARE = 0.25
TOP_FACTORS = 10
# Above this many labelled rows a fixed-seed sample keeps training within minutes.
MAX_TRAINING_ROWS = 300_000
SIGNING_SALT = "weiying.reports.scoring.pipeline"

# Why a model was not trained (ScoreModel.refusal).
TOO_FEW_ROWS = "too_few_rows"
ONE_CLASS = "one_class"
ONE_CLASS_SPLIT = "one_class_split"

FEATURES: dict[str, FeatureSet] = {
    ScoreKind.LEAD_WIN: LEAD_FEATURES,
    ScoreKind.REPURCHASE: REPURCHASE_FEATURES,
}


def _history(kind: str, now: Any) -> Rows:
    if kind == ScoreKind.LEAD_WIN:
        return lead_rows(now=now)
    return repurchase_rows(now=now)


def _to_score(kind: str, now: Any) -> Rows:
    if kind == ScoreKind.LEAD_WIN:
        return lead_rows(now=now, open_only=True)
    return repurchase_rows(now=now, to_score=True)


# --- fitting ------------------------------------------------------------------------------------
def join_feature_value(feature: str, category: Any) -> str:
    """Names the one-hot columns "feature<US>value" (module-level: the pipeline pickles it)."""
    return f"{feature}\x1f{category}"


def build_pipeline(features: FeatureSet) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n_numeric = len(features.numeric)
    columns = ColumnTransformer([
        ("num", SimpleImputer(strategy="median"), list(range(n_numeric))),
        ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=10,
                              max_categories=30, sparse_output=False,
                              feature_name_combiner=join_feature_value),
         list(range(n_numeric, len(features.names)))),
    ])
    return Pipeline([
        ("columns", columns),
        ("scale", StandardScaler()),
        ("model", LogisticRegression(C=1.0, max_iter=2000)),
    ])


def _matrix(features: FeatureSet, rows: list[list[Any]]) -> Any:
    import numpy as np

    matrix = np.empty((len(rows), len(features.names)), dtype=object)
    for i, row in enumerate(rows):
        matrix[i, :] = row
    return matrix


def factors_of(pipeline: Any, features: FeatureSet) -> list[dict[str, Any]]:
    """The largest coefficients, as [{"feature", "value" (a category or None), "weight"}]."""
    columns = pipeline.named_steps["columns"]
    names: list[tuple[str, Any]] = [(name, None) for name in features.numeric]
    if features.categorical:
        encoder = columns.named_transformers_["cat"]
        for column in encoder.get_feature_names_out(list(features.categorical)):
            feature, _sep, value = str(column).partition("\x1f")
            names.append((feature, value))
    weights = pipeline.named_steps["model"].coef_[0]
    ranked = sorted(zip(names, weights, strict=True), key=lambda item: -abs(item[1]))
    return [{"feature": feature, "value": value, "weight": round(float(weight), 4)}
            for (feature, value), weight in ranked[:TOP_FACTORS] if abs(weight) > 1e-9]


@dataclass
class Fit:
    """What a training run found: a pipeline and its measures, or the reason there is none."""

    refusal: str = ""
    labelled: int = 0
    positives: int = 0
    train_rows: int = 0
    test_rows: int = 0
    base_rate: float | None = None
    test_base_rate: float | None = None
    auc: float | None = None
    test_from: Any = None
    factors: list[dict[str, Any]] | None = None
    pipeline: Any = None


def _time_split(times: list[Any]) -> tuple[list[int], list[int]]:
    """Indexes of the older 75 % and the newest 25 %. Rows sharing the boundary's reference
    time all go to the held-out side (a monthly snapshot is not cut in two), unless that
    would leave less than half the rows to train on."""
    order = sorted(range(len(times)), key=lambda i: times[i])
    cut = int(len(order) * (1 - HOLDOUT_SHARE))
    boundary = times[order[cut]]
    snapped = next(i for i, index in enumerate(order) if times[index] >= boundary)
    if snapped >= len(order) / 2:
        cut = snapped
    return order[:cut], order[cut:]


def fit(rows: Rows, features: FeatureSet, *, seed: int = 0) -> Fit:
    labelled = len(rows.labels)
    positives = sum(rows.labels)
    result = Fit(labelled=labelled, positives=positives)
    if labelled < MIN_LABELLED:
        result.refusal = TOO_FEW_ROWS
        return result
    if positives in (0, labelled):
        result.refusal = ONE_CLASS
        return result

    from sklearn.metrics import roc_auc_score

    picked = list(range(labelled))
    if labelled > MAX_TRAINING_ROWS:
        picked = sorted(random.Random(seed).sample(picked, MAX_TRAINING_ROWS))
    x = _matrix(features, [rows.features[i] for i in picked])
    y = [rows.labels[i] for i in picked]
    train, test = _time_split([rows.times[i] for i in picked])
    y_train, y_test = [y[i] for i in train], [y[i] for i in test]
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        result.refusal = ONE_CLASS_SPLIT
        return result

    # 1. Measure: fit on the older rows, score the newest.
    measured = build_pipeline(features).fit(x[train], y_train)
    result.auc = float(roc_auc_score(y_test, measured.predict_proba(x[test])[:, 1]))
    # 2. Keep: the same settings fitted on every labelled row.
    final = build_pipeline(features).fit(x, y)
    result.pipeline = final
    result.factors = factors_of(final, features)
    result.train_rows, result.test_rows = len(train), len(test)
    result.base_rate = positives / labelled
    result.test_base_rate = sum(y_test) / len(y_test)
    result.test_from = min(rows.times[picked[i]] for i in test)
    return result


# --- storing ------------------------------------------------------------------------------------
def _sign(blob: bytes) -> str:
    return salted_hmac(SIGNING_SALT, blob, algorithm="sha256").hexdigest()


def _library_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def load_pipeline(model: ScoreModel) -> Any | None:
    """The stored pipeline, or None when there is none, its signature does not match (it was
    not written by our job with this SECRET_KEY) or another scikit-learn version wrote it."""
    if not model.is_trained:
        return None
    blob = bytes(model.pipeline)
    if not constant_time_compare(_sign(blob), model.signature):
        logger.warning("scoring model signature mismatch; not loaded",
                       extra={"kind": model.kind, "model_id": model.pk})
        return None
    if model.library_version != _library_version():
        return None
    return pickle.loads(blob)  # noqa: S301 - signed by our own job, see ScoreModel


def train(kind: str, *, now: Any = None) -> ScoreModel:
    """Retrain the model of `kind` from the history, replace the stored one, and rescore.
    Safe to run again: the row of the kind is replaced and the scores rewritten."""
    started = time.monotonic()
    now = now or timezone.now()
    result = fit(_history(kind, now), FEATURES[kind])
    blob = b"" if result.pipeline is None else pickle.dumps(result.pipeline, protocol=5)
    values = {
        "trained_at": now, "refusal": result.refusal, "labelled": result.labelled,
        "positives": result.positives, "train_rows": result.train_rows,
        "test_rows": result.test_rows, "base_rate": result.base_rate,
        "test_base_rate": result.test_base_rate, "auc": result.auc,
        "test_from": result.test_from, "factors": result.factors or [],
        "pipeline": blob or None, "signature": _sign(blob) if blob else "",
        "library_version": _library_version() if blob else "",
        "seconds": round(time.monotonic() - started, 2),
    }
    with transaction.atomic():
        model, _created = ScoreModel.objects.update_or_create(kind=kind, defaults=values)
        if result.pipeline is None:
            # No model: no score may stay behind from an earlier one.
            Score.objects.filter(kind=kind).delete()
        else:
            _write_scores(model, result.pipeline, now)
    logger.info("scoring model trained", extra={
        "kind": kind, "refusal": result.refusal, "labelled": result.labelled,
        "auc": result.auc, "ms": int((time.monotonic() - started) * 1000)})
    return model


def _write_scores(model: ScoreModel, pipeline: Any, now: Any) -> int:
    rows = _to_score(model.kind, now)
    stamp = timezone.now()
    probabilities: list[float] = []
    if rows.ids:
        probabilities = [float(p) for p in pipeline.predict_proba(
            _matrix(FEATURES[model.kind], rows.features))[:, 1]]
    Score.objects.bulk_create(
        [Score(kind=model.kind, object_id=pk, probability=p, model=model, scored_at=stamp)
         for pk, p in zip(rows.ids, probabilities, strict=True)],
        batch_size=1000, update_conflicts=True, unique_fields=["kind", "object_id"],
        update_fields=["probability", "model", "scored_at"],
    )
    # What this run did not score (a lead closed since) goes.
    Score.objects.filter(kind=model.kind).exclude(scored_at=stamp).delete()
    return len(rows.ids)


def rescore(kind: str, *, now: Any = None) -> int:
    """Score the open leads (or customers) again with the stored model; trains first when
    there is no usable model yet. Returns how many rows were scored."""
    now = now or timezone.now()
    model = ScoreModel.objects.filter(kind=kind).first()
    pipeline = load_pipeline(model) if model is not None else None
    if pipeline is None:
        if model is not None and model.refusal and model.trained_at > now - _RETRY_REFUSED:
            return 0  # refused recently: the weekly retrain tries again
        model = train(kind, now=now)
        return Score.objects.filter(kind=kind).count()
    with transaction.atomic():
        return _write_scores(model, pipeline, now)


_RETRY_REFUSED = dt.timedelta(days=7)


def train_all(*, now: Any = None) -> list[ScoreModel]:
    return [train(kind, now=now) for kind in ScoreKind.values]


def rescore_all(*, now: Any = None) -> dict[str, int]:
    return {kind: rescore(kind, now=now) for kind in ScoreKind.values}


def request_retrain(*, actor: Any) -> None:
    """Queue a retraining of every model now (the page's button)."""
    from weiying.reports.tasks_scoring import retrain_scores_task

    require(actor, "settings.manage")
    with transaction.atomic():
        audit.record(actor, "scores.retrain", object_type="reports.scoremodel")
        transaction.on_commit(retrain_scores_task)


# --- reading ------------------------------------------------------------------------------------
def current_models() -> dict[str, ScoreModel]:
    return {m.kind: m for m in ScoreModel.objects.defer("pipeline")}


def _top(kind: str, visible: Any, limit: int) -> list[tuple[Any, float]]:
    """The objects of `visible` (a scoped queryset) with the highest scores of `kind`: walks
    the score index from the top and keeps the ids inside the scope."""
    scores = list(Score.objects.filter(kind=kind, object_id__in=visible.values("pk"))
                  .order_by("-probability", "object_id")
                  .values_list("object_id", "probability")[:limit])
    found = visible.select_related("owner").in_bulk([pk for pk, _p in scores])
    return [(found[pk], p) for pk, p in scores if pk in found]


def top_open_leads(user: Any, *, limit: int = 20) -> list[tuple[Any, float]]:
    """The open leads in the user's scope with the highest win probability."""
    from weiying.pipeline.models import Lead

    return _top(ScoreKind.LEAD_WIN,
                scoped(Lead.objects.filter(status__in=OPEN_LEAD_STATUSES), user), limit)


def top_customers(user: Any, *, limit: int = 20) -> list[tuple[Any, float]]:
    """The customers in the user's scope most likely to sign again within a year."""
    from weiying.customers.models import Customer

    return _top(ScoreKind.REPURCHASE,
                scoped(Customer.objects.filter(merged_into__isnull=True), user), limit)


def score_of(kind: str, object_id: int) -> Score | None:
    """The stored score of one object the caller already fetched through its scope."""
    return (Score.objects.select_related("model").defer("model__pipeline")
            .filter(kind=kind, object_id=object_id).first())
