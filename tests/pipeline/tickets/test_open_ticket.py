import datetime as dt

import pytest

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.services.tickets import change_priority, open_ticket, sla_hours

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def buyer(company):
    return f.customer("上海甲公司", company.rep_a)


def test_open_ticket_numbers_sets_deadlines_owner_audit_and_event(company, buyer):
    with f.frozen(f.NOW):
        ticket = open_ticket(actor=user_of(company.rep_a), customer=buyer, title="  打印机卡纸 ",
                             description="三楼那台", priority="high")

    assert ticket.number == "GD202503000001"
    assert ticket.title == "打印机卡纸"
    assert ticket.status == "open"
    assert ticket.owner == company.rep_a
    assert ticket.department == company.team_a
    assert ticket.opened_at == f.NOW
    assert ticket.respond_by == f.NOW + 4 * HOUR
    assert ticket.resolve_by == f.NOW + 24 * HOUR
    audit = AuditLog.objects.get(action="ticket.open")
    assert audit.object_id == str(ticket.pk)
    assert audit.after["priority"] == "high"
    event = DomainEvent.objects.get(name="ticket.opened")
    assert event.subject_id == str(ticket.pk)
    assert event.data["customer_id"] == buyer.pk
    assert event.data["priority"] == "high"


def test_ticket_numbers_count_up_within_a_month_and_restart_in_the_next(company, buyer):
    actor = user_of(company.rep_a)
    with f.frozen(f.NOW):
        first = open_ticket(actor=actor, customer=buyer, title="一")
        second = open_ticket(actor=actor, customer=buyer, title="二")
    # 2025-03-31 16:30 UTC is already April in Shanghai.
    with f.frozen(dt.datetime(2025, 3, 31, 16, 30, tzinfo=dt.UTC)):
        third = open_ticket(actor=actor, customer=buyer, title="三")
    assert [first.number, second.number, third.number] == [
        "GD202503000001", "GD202503000002", "GD202504000001",
    ]


@pytest.mark.parametrize(("priority", "respond", "resolve"), [
    ("urgent", 1, 8), ("high", 4, 24), ("normal", 8, 72), ("low", 24, 168),
])
def test_sla_deadlines_per_priority(company, buyer, priority, respond, resolve):
    with f.frozen(f.NOW):
        ticket = open_ticket(actor=user_of(company.rep_a), customer=buyer, title="故障",
                             priority=priority)
    assert ticket.respond_by - ticket.opened_at == respond * HOUR
    assert ticket.resolve_by - ticket.opened_at == resolve * HOUR


def test_sla_hours_can_be_overridden_in_settings(settings):
    settings.WEIYING = {**settings.WEIYING, "SLA_URGENT_RESPOND_HOURS": 2,
                        "SLA_LOW_RESOLVE_HOURS": 240}
    assert sla_hours("urgent") == (2, 8)
    assert sla_hours("low") == (24, 240)
    assert sla_hours("normal") == (8, 72)


def test_changing_priority_recomputes_deadlines_from_opened_at(company, buyer):
    actor = user_of(company.rep_a)
    with f.frozen(f.NOW):
        ticket = open_ticket(actor=actor, customer=buyer, title="故障", priority="low")
    with f.frozen(f.NOW + 5 * HOUR):
        ticket = change_priority(actor=actor, ticket=ticket, priority="urgent")
    assert ticket.priority == "urgent"
    assert ticket.respond_by == f.NOW + 1 * HOUR
    assert ticket.resolve_by == f.NOW + 8 * HOUR
    ticket.refresh_from_db()
    assert ticket.resolve_by == f.NOW + 8 * HOUR
    row = AuditLog.objects.get(action="ticket.priority")
    assert (row.before["priority"], row.after["priority"]) == ("low", "urgent")


def test_changing_to_an_unknown_priority_is_refused(company, buyer):
    actor = user_of(company.rep_a)
    ticket = open_ticket(actor=actor, customer=buyer, title="故障")
    with pytest.raises(ValidationFailed) as exc:
        change_priority(actor=actor, ticket=ticket, priority="asap")
    assert exc.value.field == "priority"
    assert str(exc.value.message) == (
        "Unknown priority asap; use one of low, normal, high, urgent."
    )


def test_title_is_required(company, buyer):
    with pytest.raises(ValidationFailed) as exc:
        open_ticket(actor=user_of(company.rep_a), customer=buyer, title="   ")
    assert exc.value.code == "invalid"
    assert exc.value.field == "title"
    assert str(exc.value.message) == "A ticket needs a title: say what the customer needs."
    assert not AuditLog.objects.filter(action="ticket.open").exists()


def test_contract_must_belong_to_the_customer(company, buyer):
    other = f.customer("上海乙公司", company.rep_a)
    deal = f.contract(other, signed_on=dt.date(2025, 1, 1))
    with pytest.raises(ValidationFailed) as exc:
        open_ticket(actor=user_of(company.rep_a), customer=buyer, title="故障", contract=deal)
    assert exc.value.field == "contract"
    assert str(exc.value.message) == (
        "This contract belongs to another customer; pick one of this customer's."
    )


def test_customer_outside_scope_is_not_found(company, buyer):
    with pytest.raises(NotFound) as exc:
        open_ticket(actor=user_of(company.rep_b), customer=buyer, title="故障")
    assert exc.value.code == "not_found"


def test_role_without_ticket_permission_is_refused(company, buyer):
    with pytest.raises(PermissionDenied) as exc:
        open_ticket(actor=user_of(company.finance), customer=buyer, title="故障")
    assert exc.value.code == "forbidden"


def test_owner_defaults_to_the_customer_owner_even_when_someone_else_opens(company, buyer):
    ticket = open_ticket(actor=user_of(company.operations), customer=buyer, title="故障")
    assert ticket.owner == company.rep_a
    assert ticket.department == company.team_a


def test_owner_defaults_to_the_actor_for_a_pool_customer(company):
    pooled = f.customer("公海客户", None)
    ticket = open_ticket(actor=user_of(company.operations), customer=pooled, title="故障")
    assert ticket.owner == company.operations


def test_explicit_owner_must_be_in_the_actors_scope(company, buyer):
    with pytest.raises(ValidationFailed) as exc:
        open_ticket(actor=user_of(company.rep_a), customer=buyer, title="故障",
                    owner=company.rep_a2)
    assert exc.value.field == "owner"
    assert str(exc.value.message) == "You can only assign tickets to people in your own scope."
    ticket = open_ticket(actor=user_of(company.manager_a), customer=buyer, title="故障",
                         owner=company.rep_a2)
    assert ticket.owner == company.rep_a2
