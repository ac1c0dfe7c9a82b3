from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.scope.conftest import clients, world  # noqa: F401 - the marked world's fixtures
from tests.scope.matrix import check_list, lst
from weiying.customers.models import Customer
from weiying.pipeline.models import Lead
from weiying.reports.models import Score, ScoreKind, ScoreModel

pytestmark = pytest.mark.django_db


def _stored(kind: str, ids: list[int]) -> None:
    now = timezone.now()
    model = ScoreModel.objects.create(
        kind=kind, trained_at=now, labelled=400, train_rows=300, test_rows=100, positives=100,
        base_rate=0.25, test_base_rate=0.25, auc=0.75, test_from=now, pipeline=b"stub",
        factors=[{"feature": "source", "value": "referral", "weight": 1.0}])
    Score.objects.bulk_create([Score(kind=kind, object_id=pk, probability=0.5 + i / 100,
                                     model=model, scored_at=now) for i, pk in enumerate(ids)])


def test_the_scoring_page_lists_only_the_scored_records_in_scope(world: Any,  # noqa: F811
                                                                 clients: Any) -> None:  # noqa: F811
    # given: every lead and customer of the marked world scored
    _stored(ScoreKind.LEAD_WIN, list(Lead.objects.values_list("pk", flat=True)))
    _stored(ScoreKind.REPURCHASE, list(Customer.objects.values_list("pk", flat=True)))

    # when / then: each persona sees its own markers and no other
    assert check_list(world, clients, reverse("reports:scoring"), lst("lead", "cust")) == []


def test_retraining_is_refused_without_settings_manage(world: Any,  # noqa: F811
                                                       clients: Any) -> None:  # noqa: F811
    for persona in ["rep_a", "rep_b", "manager_a", "director", "finance"]:
        response = clients[persona].post(reverse("reports:scoring_retrain"))
        assert response.status_code == 403, persona
    assert not ScoreModel.objects.exists()
