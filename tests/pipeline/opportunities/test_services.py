from decimal import Decimal

import pytest
from django.utils import translation

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer, make_product, stages
from weiying.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.models import Opportunity, Pipeline, Stage, StageChange
from weiying.pipeline.services.opportunities import (
    create_opportunity,
    mark_lost,
    mark_won,
    move_stage,
    reopen_opportunity,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def _opportunity(company, **kw):
    customer = kw.pop("customer", None) or make_customer(company.rep_a)
    return create_opportunity(actor=user_of(company.rep_a), customer=customer,
                              name="年度框架采购", **kw)


def test_create_defaults_to_first_open_stage_and_customer_owner(company, clock):
    customer = make_customer(company.rep_a2)

    opp = create_opportunity(actor=user_of(company.manager_a), customer=customer, name="扩容")

    assert opp.pipeline == Pipeline.objects.get(is_default=True)
    assert opp.stage.name == "初步接洽"
    assert opp.owner == company.rep_a2
    assert opp.department == company.team_a
    assert opp.amount == Decimal("0.00")
    assert opp.stage_entered_at == NOW
    change = StageChange.objects.get(opportunity=opp)
    assert (change.from_stage, change.to_stage.name, change.seconds_in_previous) == (
        None, "初步接洽", None)
    assert change.by == company.manager_a
    event = DomainEvent.objects.get(name="opportunity.created", subject_id=str(opp.pk))
    assert event.data["owner_id"] == company.rep_a2.pk
    assert AuditLog.objects.filter(action="opportunity.create", object_id=str(opp.pk)).exists()


def test_pool_customer_goes_to_the_actor(company, clock):
    customer = make_customer(None, in_pool=True)

    opp = create_opportunity(actor=user_of(company.rep_a), customer=customer, name="试用")

    assert opp.owner == company.rep_a


def test_amount_defaults_to_the_sum_of_lines(company, clock):
    p1, p2 = make_product("P-1"), make_product("P-2")

    opp = _opportunity(company, lines=[
        {"product": p1, "quantity": "2", "amount": "1999.995"},
        {"product": p2.pk, "quantity": 1, "amount": Decimal("500")},
    ])

    assert opp.amount == Decimal("2500.00")
    assert sorted(opp.lines.values_list("amount", flat=True)) == [Decimal("500.00"),
                                                                 Decimal("2000.00")]


def test_explicit_amount_wins_over_lines(company, clock):
    opp = _opportunity(company, amount="88000",
                       lines=[{"product": make_product(), "quantity": 1, "amount": "100"}])

    assert opp.amount == Decimal("88000.00")


def test_line_with_zero_quantity_is_refused(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        _opportunity(company, lines=[{"product": make_product(), "quantity": 0, "amount": 1}])

    assert str(exc.value.message) == "Line 1: the quantity must be more than zero."


def test_customer_outside_scope_is_not_found(company, clock):
    customer = make_customer(company.rep_a)

    with pytest.raises(NotFound):
        create_opportunity(actor=user_of(company.rep_b), customer=customer, name="x")


def test_finance_may_not_create_opportunities(company, clock):
    customer = make_customer(company.rep_a)

    with pytest.raises(PermissionDenied) as exc:
        create_opportunity(actor=user_of(company.finance), customer=customer, name="x")

    assert exc.value.code == "forbidden"


def test_rep_may_not_give_an_opportunity_to_someone_outside_scope(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        _opportunity(company, owner=company.rep_b)

    assert exc.value.field == "owner"


def test_new_opportunity_cannot_start_won(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        _opportunity(company, stage=stages()["赢单"])

    assert exc.value.field == "stage"


def test_move_records_seconds_in_previous_stage(company, clock):
    opp = _opportunity(company)
    clock.advance(days=3, hours=2, seconds=5)

    move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["方案报价"])

    opp.refresh_from_db()
    assert opp.stage.name == "方案报价"
    assert opp.stage_entered_at == clock.now
    last = opp.stage_changes.order_by("-pk").first()
    assert (last.from_stage.name, last.to_stage.name) == ("初步接洽", "方案报价")
    assert last.seconds_in_previous == 3 * 86400 + 2 * 3600 + 5
    event = DomainEvent.objects.get(name="opportunity.stage_changed")
    assert event.data["seconds"] == 266405
    assert event.data["from_stage_id"] == stages()["初步接洽"].pk
    assert event.data["to_stage_id"] == stages()["方案报价"].pk


def test_second_move_counts_from_the_last_move(company, clock):
    opp = _opportunity(company)
    clock.advance(hours=1)
    move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["需求确认"])
    clock.advance(minutes=30)

    move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["商务谈判"])

    seconds = list(opp.stage_changes.order_by("pk").values_list("seconds_in_previous", flat=True))
    assert seconds == [None, 3600, 1800]


def test_moving_to_won_stage_says_to_mark_it_won(company, clock):
    opp = _opportunity(company)

    with pytest.raises(InvalidTransition) as exc:
        move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["赢单"])

    assert exc.value.code == "invalid_transition"
    assert str(exc.value.message) == (
        "To close an opportunity, mark it won or lost instead of moving it.")


def test_stage_of_another_pipeline_is_refused(company, clock):
    opp = _opportunity(company)
    other = Pipeline.objects.create(name="渠道")
    stage = Stage.objects.create(pipeline=other, name="签约", order=1, probability=10)

    with pytest.raises(ValidationFailed) as exc:
        move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stage)

    assert str(exc.value.message) == "That stage belongs to another pipeline."


def test_other_branch_cannot_move_the_opportunity(company, clock):
    opp = _opportunity(company)

    with pytest.raises(NotFound):
        move_stage(actor=user_of(company.rep_b), opportunity=opp, stage=stages()["需求确认"])


def test_mark_won_closes_in_the_won_stage(company, clock):
    opp = _opportunity(company, amount="50000")
    clock.advance(days=2)

    mark_won(actor=user_of(company.rep_a), opportunity=opp, note="签了")

    opp.refresh_from_db()
    assert (opp.status, opp.stage.name, opp.closed_at, opp.close_note) == (
        "won", "赢单", clock.now, "签了")
    last = opp.stage_changes.order_by("-pk").first()
    assert last.seconds_in_previous == 2 * 86400
    event = DomainEvent.objects.get(name="opportunity.won")
    assert event.data["amount"] == "50000.00"


def test_closed_opportunity_cannot_be_moved_or_won_again(company, clock):
    opp = _opportunity(company)
    mark_won(actor=user_of(company.rep_a), opportunity=opp)

    with pytest.raises(InvalidTransition) as moved:
        move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["需求确认"])
    with pytest.raises(InvalidTransition) as won:
        mark_won(actor=user_of(company.rep_a), opportunity=opp)

    assert str(moved.value.message) == "This opportunity is closed; reopen it before moving it."
    assert str(won.value.message) == "This opportunity is already closed; reopen it first."


def test_lost_needs_a_known_reason(company, clock):
    opp = _opportunity(company)

    with pytest.raises(ValidationFailed) as exc:
        mark_lost(actor=user_of(company.rep_a), opportunity=opp, reason="weather")

    assert exc.value.field == "reason"
    assert Opportunity.objects.get(pk=opp.pk).status == "open"


def test_lost_for_other_reason_needs_a_note(company, clock):
    opp = _opportunity(company)

    with pytest.raises(ValidationFailed) as exc:
        mark_lost(actor=user_of(company.rep_a), opportunity=opp, reason="other", note="  ")

    assert exc.value.field == "note"
    assert str(exc.value.message) == (
        'The reason is "Other": write a note that says what happened.')


def test_mark_lost_records_reason(company, clock):
    opp = _opportunity(company)

    mark_lost(actor=user_of(company.rep_a), opportunity=opp, reason="price", note="贵")

    opp.refresh_from_db()
    assert (opp.status, opp.stage.name, opp.lost_reason) == ("lost", "输单", "price")
    assert DomainEvent.objects.get(name="opportunity.lost").data["reason"] == "price"


def test_reopen_returns_to_the_last_open_stage(company, clock):
    opp = _opportunity(company)
    move_stage(actor=user_of(company.rep_a), opportunity=opp, stage=stages()["商务谈判"])
    mark_lost(actor=user_of(company.rep_a), opportunity=opp, reason="timing")
    clock.advance(days=10)

    reopen_opportunity(actor=user_of(company.rep_a), opportunity=opp)

    opp.refresh_from_db()
    assert (opp.status, opp.stage.name, opp.closed_at, opp.lost_reason) == (
        "open", "商务谈判", None, "")
    assert opp.stage_entered_at == clock.now
    last = opp.stage_changes.order_by("-pk").first()
    assert (last.from_stage.name, last.seconds_in_previous) == ("输单", 10 * 86400)
    event = DomainEvent.objects.filter(name="opportunity.stage_changed").order_by("-pk")[0]
    assert event.data["reopened_from"] == "lost"


def test_reopen_of_open_opportunity_is_refused(company, clock):
    opp = _opportunity(company)

    with pytest.raises(InvalidTransition) as exc:
        reopen_opportunity(actor=user_of(company.rep_a), opportunity=opp)

    assert str(exc.value.message) == "This opportunity is already open."


def test_merged_customer_is_refused(company, clock):
    survivor = make_customer(company.rep_a, name="存续")
    duplicate = make_customer(company.rep_a, name="重复", merged_into=survivor)

    with pytest.raises(ValidationFailed) as exc:
        _opportunity(company, customer=duplicate)

    assert exc.value.field == "customer"
