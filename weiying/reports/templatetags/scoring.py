"""Template helpers for the predictive scores: `{% lead_score lead %}` shows a lead's stored
win probability (nothing when it has none); `|percent` prints a probability."""

from __future__ import annotations

from typing import Any

from django import template

from weiying.reports.models import ScoreKind
from weiying.reports.scoring import score_of
from weiying.reports.scoring_features import OPEN_LEAD_STATUSES

register = template.Library()


@register.filter
def percent(value: Any) -> str:
    """0.347 → "35%"; empty for no value."""
    if value is None or value == "":
        return ""
    return f"{float(value) * 100:.0f}%"


@register.inclusion_tag("reports/scoring_lead.html")
def lead_score(lead: Any) -> dict[str, Any]:
    """For a lead the page already fetched through the viewer's scope (one query)."""
    if lead is None or lead.status not in OPEN_LEAD_STATUSES:
        return {"score": None}
    return {"score": score_of(ScoreKind.LEAD_WIN, lead.pk)}
