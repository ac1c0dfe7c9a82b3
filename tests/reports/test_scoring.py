import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from weiying.core.models import AuditLog
from weiying.customers.models import Customer
from weiying.pipeline.models import Contract, Lead, Opportunity, Pipeline
from weiying.reports import scoring
from weiying.reports.models import Score, ScoreKind, ScoreModel
from weiying.reports.scoring_features import is_labelled, lead_outcome, lead_rows

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=SHANGHAI)
SOURCES = ["form", "ads", "exhibition", "referral"]


def _customers(owners: list[Any], n: int, prefix: str, **fields: Any) -> list[Customer]:
    return Customer.objects.bulk_create([
        Customer(name=f"{prefix}{i}", name_key=f"{prefix}{i}", owner=owners[i % len(owners)],
                 department=owners[i % len(owners)].department, last_activity_at=NOW,
                 **fields)
        for i in range(n)
    ])


def _history(owners: list[Any], n: int, win: Any, *, seed: int = 7) -> None:
    """`n` decided leads over the 400 days before NOW, spread over `owners`; `win(source, rng)`
    says whether each was won (an opportunity won 20 days later) or disqualified."""
    rng = random.Random(seed)
    pipeline = Pipeline.objects.get(is_default=True)
    won_stage = pipeline.stages.get(kind="won")
    start = NOW - dt.timedelta(days=400)
    specs = []
    for i in range(n):
        created = start + dt.timedelta(minutes=rng.randrange(270 * 24 * 60))
        source = SOURCES[i % len(SOURCES)]
        specs.append((created, source, owners[i % len(owners)], win(source, rng)))
    winners = [spec for spec in specs if spec[3]]
    customers = _customers(owners, len(winners), "历史客户")
    opportunities = Opportunity.objects.bulk_create([
        Opportunity(name=f"商机{i}", customer=customer, pipeline=pipeline, stage=won_stage,
                    status="won", owner=owner, department=owner.department,
                    stage_entered_at=created + dt.timedelta(days=20),
                    closed_at=created + dt.timedelta(days=20),
                    last_activity_at=created + dt.timedelta(days=20), created_at=created)
        for i, ((created, _source, owner, _won), customer) in enumerate(
            zip(winners, customers, strict=True))
    ])
    won_by_spec = dict(zip([id(s) for s in winners], opportunities, strict=True))
    Lead.objects.bulk_create([
        Lead(name=f"历史线索{i}", source=source, owner=owner, department=owner.department,
             status="converted" if won else "disqualified",
             interest="软件" if rng.random() < 0.5 else "",
             opportunity=won_by_spec.get(id(spec)),
             last_activity_at=created + dt.timedelta(days=3), created_at=created)
        for i, spec in enumerate(specs)
        for created, source, owner, won in [spec]
    ])


def _open_lead(owner: Any, name: str, source: str = "referral") -> Lead:
    created = NOW - dt.timedelta(days=5)
    return Lead.objects.create(name=name, source=source, owner=owner,
                               department=owner.department, status="assigned",
                               assigned_at=created, last_activity_at=created,
                               created_at=created)


def _referrals_win(source: str, rng: random.Random) -> bool:
    return rng.random() < (0.9 if source == "referral" else 0.05)


def test_a_label_that_follows_the_source_is_learnt_and_named_first(company: Any) -> None:
    # given
    _history([company.rep_a, company.rep_a2, company.rep_b], 1200, _referrals_win)

    # when
    model = scoring.train(ScoreKind.LEAD_WIN, now=NOW)

    # then
    assert model.is_trained
    assert model.auc > 0.8
    assert (model.labelled, model.train_rows, model.test_rows) == (1200, 900, 300)
    assert model.base_rate == pytest.approx(model.positives / 1200)
    assert 0.2 < model.base_rate < 0.35
    assert model.factors[0]["feature"] == "source"
    assert model.factors[0]["value"] == "referral" and model.factors[0]["weight"] > 0
    assert model.test_from >= NOW - dt.timedelta(days=400)


def test_a_random_label_measures_near_chance(company: Any) -> None:
    _history([company.rep_a, company.rep_a2, company.rep_b], 1600,
             lambda _source, rng: rng.random() < 0.3, seed=11)

    model = scoring.train(ScoreKind.LEAD_WIN, now=NOW)

    assert model.is_trained
    assert 0.35 < model.auc < 0.65


def test_too_little_history_trains_nothing_and_the_page_says_so(company: Any,
                                                                 login: Any) -> None:
    _history([company.rep_a], 120, _referrals_win)
    _open_lead(company.rep_a, "新线索")

    model = scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    page = login(company.manager_a, language="en").get(reverse("reports:scoring"))

    assert not model.is_trained and model.pipeline is None
    assert (model.refusal, model.labelled) == (scoring.TOO_FEW_ROWS, 120)
    assert Score.objects.count() == 0
    text = page.content.decode()
    assert page.status_code == 200
    assert "Too little history: 120 labelled rows, and a model needs at least 200." in text
    assert "No model has been trained yet." in text  # the repurchase model never ran
    assert "新线索" not in text


def test_one_outcome_only_trains_nothing(company: Any) -> None:
    _history([company.rep_a], 300, lambda _source, _rng: False)

    model = scoring.train(ScoreKind.LEAD_WIN, now=NOW)

    assert (model.is_trained, model.refusal) == (False, scoring.ONE_CLASS)


def test_a_rep_sees_only_their_own_scored_leads(company: Any, login: Any) -> None:
    _history([company.rep_a, company.rep_a2, company.rep_b], 800, _referrals_win)
    mine = _open_lead(company.rep_a, "李的线索")
    _open_lead(company.rep_a2, "赵的线索")
    _open_lead(company.rep_b, "钱的线索")

    scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    rep_page = login(company.rep_a).get(reverse("reports:scoring")).content.decode()
    manager_page = login(company.manager_a).get(reverse("reports:scoring")).content.decode()

    assert Score.objects.filter(kind=ScoreKind.LEAD_WIN).count() == 3
    assert "李的线索" in rep_page and reverse("pipeline:lead_detail", args=[mine.pk]) in rep_page
    assert "赵的线索" not in rep_page and "钱的线索" not in rep_page
    assert "李的线索" in manager_page and "赵的线索" in manager_page
    assert "钱的线索" not in manager_page
    assert "data-chart=" in rep_page and "Retrain now" not in rep_page


def test_the_lead_page_shows_its_stored_score(company: Any, login: Any) -> None:
    _history([company.rep_a, company.rep_b], 800, _referrals_win)
    lead = _open_lead(company.rep_a, "待评分")
    scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    score = Score.objects.get(kind=ScoreKind.LEAD_WIN, object_id=lead.pk)

    page = login(company.rep_a, language="en").get(reverse("pipeline:lead_detail",
                                                           args=[lead.pk]))

    assert f"{score.probability * 100:.0f}%" in page.content.decode()
    assert "Win probability" in page.content.decode()


def test_retraining_replaces_the_model_and_rescoring_updates_the_rows(company: Any) -> None:
    # given
    _history([company.rep_a, company.rep_b], 800, _referrals_win)
    keep = _open_lead(company.rep_a, "留下")
    closes = _open_lead(company.rep_b, "作废", source="ads")
    first = scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    before = dict(Score.objects.values_list("object_id", "probability"))

    # when: retrained, then a lead closes and one is reassigned to a busier source
    second = scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    Lead.objects.filter(pk=closes.pk).update(status="disqualified")
    Lead.objects.filter(pk=keep.pk).update(source="ads")
    scored = scoring.rescore(ScoreKind.LEAD_WIN, now=NOW)

    # then
    assert second.pk == first.pk and ScoreModel.objects.count() == 1
    assert second.auc == pytest.approx(first.auc)
    assert scored == 1
    after = dict(Score.objects.values_list("object_id", "probability"))
    assert list(after) == [keep.pk]
    assert after[keep.pk] < before[keep.pk]


def test_a_pipeline_with_a_wrong_signature_is_not_loaded(company: Any) -> None:
    _history([company.rep_a, company.rep_b], 400, _referrals_win)
    model = scoring.train(ScoreKind.LEAD_WIN, now=NOW)
    assert scoring.load_pipeline(model) is not None

    model.signature = "0" * 64
    assert scoring.load_pipeline(model) is None


def test_repurchase_follows_the_customers_who_keep_buying(company: Any, login: Any) -> None:
    # given: "A" customers sign every two months from their first contract on, "C" once
    rng = random.Random(3)
    owners = [company.rep_a, company.rep_b]
    loyal = _customers(owners, 60, "老客户", level="A")
    once = _customers(owners, 60, "一次客户", level="C")
    contracts = []
    for customer in [*loyal, *once]:
        day = dt.date(2024, 3, 1) + dt.timedelta(days=rng.randrange(300))
        while day < NOW.date():
            contracts.append(Contract(
                number=f"HT{len(contracts)}", title="合同", customer=customer,
                owner=customer.owner, department=customer.department, status="signed",
                total=Decimal("1000.00"), signed_on=day, created_at=NOW))
            if customer.level == "C":
                break
            day += dt.timedelta(days=rng.randint(40, 80))
    Contract.objects.bulk_create(contracts)

    # when
    model = scoring.train(ScoreKind.REPURCHASE, now=NOW)
    page = login(company.rep_a).get(reverse("reports:scoring")).content.decode()

    # then
    assert model.is_trained and model.auc > 0.8
    assert model.labelled >= 500 and model.train_rows + model.test_rows == model.labelled
    assert Score.objects.filter(kind=ScoreKind.REPURCHASE).count() == 120
    rep_a_customers = [c.name for c in loyal if c.owner_id == company.rep_a.pk]
    rep_b_customers = [c.name for c in loyal if c.owner_id == company.rep_b.pk]
    assert any(f">{name}<" in page for name in rep_a_customers)
    assert not any(f">{name}<" in page for name in rep_b_customers)


def test_only_a_settings_manager_may_retrain(company: Any, login: Any,
                                             django_capture_on_commit_callbacks: Any) -> None:
    _history([company.rep_a, company.rep_b], 300, _referrals_win)

    refused = login(company.manager_a).post(reverse("reports:scoring_retrain"))
    with django_capture_on_commit_callbacks(execute=True):
        done = login(company.admin).post(reverse("reports:scoring_retrain"))

    assert refused.status_code == 403
    assert done.status_code == 302
    assert ScoreModel.objects.filter(kind=ScoreKind.LEAD_WIN).get().is_trained
    assert ScoreModel.objects.filter(kind=ScoreKind.REPURCHASE).get().refusal
    assert AuditLog.objects.filter(action="scores.retrain").count() == 1


def test_a_lead_is_labelled_by_a_win_within_the_horizon() -> None:
    young = NOW - dt.timedelta(days=30)
    old = NOW - dt.timedelta(days=200)
    day = dt.timedelta(days=1)

    assert lead_outcome("converted", "won", young + day, young, young, NOW) == (1, young + day)
    assert lead_outcome("converted", "lost", young + day, young, young, NOW) == (0, young + day)
    assert lead_outcome("disqualified", None, None, young, young + day, NOW) == (0, young + day)
    assert lead_outcome("assigned", None, None, young, young, NOW) == (None, None)
    assert lead_outcome("converted", "open", None, young, young, NOW) == (None, None)
    horizon = old + dt.timedelta(days=120)
    assert lead_outcome("assigned", None, None, old, old, NOW) == (0, horizon)
    assert lead_outcome("converted", "won", NOW, old, NOW, NOW) == (0, horizon)  # won too late
    assert (is_labelled(young, NOW), is_labelled(old, NOW)) == (False, True)


def test_only_leads_past_the_horizon_are_learnt_from(company: Any) -> None:
    _history([company.rep_a], 10, _referrals_win)
    recent = Lead.objects.create(name="近期作废", owner=company.rep_a, status="disqualified",
                                 created_at=NOW - dt.timedelta(days=10),
                                 last_activity_at=NOW - dt.timedelta(days=9))

    rows = lead_rows(now=NOW)

    assert len(rows.ids) == len(rows.labels) == 10 and recent.pk not in rows.ids


def test_an_owners_win_rate_uses_only_leads_decided_before(company: Any) -> None:
    # given: rep_b lost a lead on day 3; rep_a won one decided on day 20 and lost one that
    # arrived on day 10 (decided on day 11); a third of rep_a's arrives on day 30
    pipeline = Pipeline.objects.get(is_default=True)
    start = NOW - dt.timedelta(days=300)
    customer = _customers([company.rep_a], 1, "客户")[0]
    opp = Opportunity.objects.create(
        name="商机", customer=customer, pipeline=pipeline, stage=pipeline.stages.get(kind="won"),
        status="won", owner=company.rep_a, stage_entered_at=start, last_activity_at=start,
        closed_at=start + dt.timedelta(days=20), created_at=start)
    for day, name, owner, opportunity in [(0, "first", company.rep_a, opp),
                                          (2, "other", company.rep_b, None),
                                          (10, "second", company.rep_a, None),
                                          (30, "third", company.rep_a, None)]:
        Lead.objects.create(name=name, owner=owner, opportunity=opportunity,
                            status="converted" if opportunity else "disqualified",
                            created_at=start + dt.timedelta(days=day),
                            last_activity_at=start + dt.timedelta(days=day + 1))

    # when
    rows = lead_rows(now=NOW)

    # then: the rate is (wins + 5 × prior) / (decided + 5), the prior the company's
    # (wins + 1) / (decided + 2), both counting only what was decided before the arrival
    by_name = {Lead.objects.get(pk=pk).name: features for pk, features in
               zip(rows.ids, rows.features, strict=True)}
    assert by_name["first"][2] == pytest.approx(1 / 2)
    assert by_name["second"][2] == pytest.approx(1 / 3)  # only rep_b's loss is known
    assert by_name["third"][2] == pytest.approx((1 + 5 * 2 / 5) / (2 + 5))
    assert by_name["third"][3] == pytest.approx(math.log1p(2))
