"""The predictive scores page (/reports/scoring/): for each model its held-out accuracy, sample
sizes, base rate and main factors, and the best-scored open leads and customers in the
viewer's scope. Any signed-in user may open it (a rep sees their own leads and customers);
retraining needs settings.manage. Figures come from the stored models (weiying.reports.scoring)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from weiying.core.permissions import has_perm
from weiying.customers.choices import Level, Source
from weiying.reports import scoring
from weiying.reports.models import ScoreKind, ScoreModel
from weiying.reports.scoring_features import LEAD_HORIZON, REPURCHASE_WINDOW
from weiying.web.errors import domain_errors

FEATURE_LABELS = {
    "has_interest": gettext_lazy("Interest filled in"),
    "followups_7d": gettext_lazy("Follow-ups in the first 7 days"),
    "owner_win_rate": gettext_lazy("Owner's win rate before the lead"),
    "owner_history": gettext_lazy("Owner's decided leads before the lead"),
    "source": gettext_lazy("Source"),
    "channel": gettext_lazy("Channel"),
    "region": gettext_lazy("Region"),
    "city": gettext_lazy("City"),
    "first_response": gettext_lazy("First response"),
    "weekday": gettext_lazy("Weekday of arrival"),
    "arrival_hour": gettext_lazy("Time of arrival"),
    "recency_days": gettext_lazy("Days since the last contract"),
    "frequency": gettext_lazy("Contracts signed"),
    "monetary": gettext_lazy("Amount signed"),
    "products": gettext_lazy("Products bought"),
    "tickets_365d": gettext_lazy("Service tickets in the past year"),
    "days_since_followup": gettext_lazy("Days since the last follow-up"),
    "level": gettext_lazy("Level"),
    "industry": gettext_lazy("Industry"),
}
VALUE_LABELS: dict[str, dict[str, Any]] = {
    "source": dict(Source.choices),
    "level": dict(Level.choices),
    "weekday": dict(enumerate([
        gettext_lazy("Monday"), gettext_lazy("Tuesday"), gettext_lazy("Wednesday"),
        gettext_lazy("Thursday"), gettext_lazy("Friday"), gettext_lazy("Saturday"),
        gettext_lazy("Sunday")])),
    "first_response": {
        "unassigned": gettext_lazy("not assigned"), "none": gettext_lazy("no response"),
        "1h": gettext_lazy("within an hour"), "4h": gettext_lazy("within 4 hours"),
        "1d": gettext_lazy("within a day"), "3d": gettext_lazy("within 3 days"),
        "later": gettext_lazy("after 3 days"),
    },
    "arrival_hour": {
        "night": gettext_lazy("night (0–8 h)"), "morning": gettext_lazy("morning (8–12 h)"),
        "afternoon": gettext_lazy("afternoon (12–18 h)"),
        "evening": gettext_lazy("evening (18–24 h)"),
    },
}
VALUE_LABELS["weekday"] = {str(k): v for k, v in VALUE_LABELS["weekday"].items()}
TITLES = {
    ScoreKind.LEAD_WIN: gettext_lazy("Lead win probability"),
    ScoreKind.REPURCHASE: gettext_lazy("Repurchase propensity"),
}


def factor_label(feature: str, value: str | None) -> str:
    name = str(FEATURE_LABELS.get(feature, feature))
    if value is None:
        return name
    if value == "infrequent_sklearn":
        shown = _("other (rare values)")
    elif value == "":
        shown = _("(empty)")
    else:
        shown = str(VALUE_LABELS.get(feature, {}).get(value, value))
    return f"{name} = {shown}"


def _definition(kind: str) -> str:
    if kind == ScoreKind.LEAD_WIN:
        return _("The chance that an open lead ends in an opportunity won within %(days)s "
                 "days of its arrival. Learnt from the leads at least %(days)s days old: won "
                 "within that time (1), or not: disqualified, lost or still open (0). Younger "
                 "leads are left out, even those already decided: only their quick decisions "
                 "are known, mostly disqualifications. The features are what was known at or "
                 "soon after the lead arrived.") % {"days": LEAD_HORIZON.days}
    return _("The chance that a customer with a signed contract signs another within "
             "%(days)s days. Learnt from snapshots of the history on the first of each month "
             "whose following %(days)s days have passed: the customer's figures on that day "
             "and whether they signed again.") % {"days": REPURCHASE_WINDOW.days}


def _refusal(model: ScoreModel | None) -> str:
    if model is None:
        return _("No model has been trained yet. The job trains every week; no score is "
                 "shown until then.")
    if model.refusal == scoring.TOO_FEW_ROWS:
        return _("Too little history: %(rows)s labelled rows, and a model needs at least "
                 "%(minimum)s. Nothing was trained and no score is shown.") % {
                     "rows": model.labelled, "minimum": scoring.MIN_LABELLED}
    if model.refusal == scoring.ONE_CLASS:
        return _("Too little history: all %(rows)s labelled rows have the same outcome, so "
                 "there is nothing to learn. Nothing was trained and no score is shown.") % {
                     "rows": model.labelled}
    return _("Too little history: the older or the newest labelled rows all have the same "
             "outcome, so the model cannot be measured on held-out data. Nothing was trained "
             "and no score is shown.")


def _section(kind: str, model: ScoreModel | None, user: Any) -> dict[str, Any]:
    section: dict[str, Any] = {"kind": kind, "title": TITLES[kind], "model": model,
                               "definition": _definition(kind)}
    if model is None or not model.is_trained:
        section["refusal"] = _refusal(model)
        return section
    factors = [{"label": factor_label(f["feature"], f.get("value")), "weight": f["weight"]}
               for f in model.factors]
    section["factors"] = factors
    section["chart"] = json.dumps({
        "type": "bar",
        "categories": [f["label"] for f in factors],
        "series": [{"name": _("Coefficient"), "data": [f["weight"] for f in factors]}],
    }, ensure_ascii=False)
    if kind == ScoreKind.LEAD_WIN:
        section["leads"] = scoring.top_open_leads(user)
    else:
        section["customers"] = scoring.top_customers(user)
    return section


@login_required
@domain_errors
def scoring_page(request: HttpRequest) -> HttpResponse:
    models = scoring.current_models()
    sections = [_section(kind, models.get(kind), request.user) for kind in ScoreKind.values]
    return render(request, "reports/scoring.html", {
        "sections": sections, "can_retrain": has_perm(request.user, "settings.manage"),
        "holdout_percent": int(scoring.HOLDOUT_SHARE * 100),
    })


@login_required
@require_POST
@domain_errors
def scoring_retrain(request: HttpRequest) -> HttpResponse:
    scoring.request_retrain(actor=request.user)
    messages.success(request, _("Retraining has started; the figures below change when it "
                                "has finished."))
    return redirect("reports:scoring")


urlpatterns = [
    path("scoring/", scoring_page, name="scoring"),
    path("scoring/retrain/", scoring_retrain, name="scoring_retrain"),
]
