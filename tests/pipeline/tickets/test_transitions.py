import datetime as dt

import pytest

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.core.errors import InvalidTransition, NotFound, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.services import tickets as svc

pytestmark = pytest.mark.django_db

LATER = f.NOW + dt.timedelta(hours=2)
CLOSED = "This ticket is closed and cannot change; open a new ticket instead."


@pytest.fixture
def actor(company):
    return user_of(company.rep_a)


@pytest.fixture
def ticket_in(company, actor):
    """ticket_in("resolved") → a ticket walked to that state through the services."""
    buyer = f.customer("上海甲公司", company.rep_a)

    def _make(status):
        with f.frozen(f.NOW):
            ticket = svc.open_ticket(actor=actor, customer=buyer, title="故障")
        with f.frozen(LATER):
            if status == "open":
                return ticket
            ticket = svc.start_ticket(actor=actor, ticket=ticket)
            if status == "in_progress":
                return ticket
            if status == "waiting":
                return svc.wait_for_customer(actor=actor, ticket=ticket)
            ticket = svc.resolve_ticket(actor=actor, ticket=ticket, resolution="换了硒鼓")
            if status == "resolved":
                return ticket
            return svc.close_ticket(actor=actor, ticket=ticket)

    return _make


def _do(action, actor, ticket):
    inputs = {"resolve": {"resolution": "已处理"}, "reopen": {"reason": "又坏了"}}.get(action, {})
    func = {
        "start": svc.start_ticket, "wait": svc.wait_for_customer, "resolve": svc.resolve_ticket,
        "close": svc.close_ticket, "reopen": svc.reopen_ticket,
    }[action]
    return func(actor=actor, ticket=ticket, **inputs)


@pytest.mark.parametrize(("status", "action", "target"), [
    ("open", "start", "in_progress"),
    ("waiting", "start", "in_progress"),
    ("in_progress", "wait", "waiting"),
    ("in_progress", "resolve", "resolved"),
    ("waiting", "resolve", "resolved"),
    ("resolved", "close", "closed"),
    ("resolved", "reopen", "in_progress"),
])
def test_allowed_transitions(ticket_in, actor, status, action, target):
    ticket = ticket_in(status)
    moved = _do(action, actor, ticket)
    assert moved.status == target
    moved.refresh_from_db()
    assert moved.status == target
    assert AuditLog.objects.filter(action=f"ticket.{action}", object_id=str(ticket.pk)).exists()


@pytest.mark.parametrize(("status", "action", "message"), [
    ("in_progress", "start", "This ticket is already in progress."),
    ("resolved", "start", "This ticket is resolved; reopen it with a reason to work on it again."),
    ("open", "wait", "This ticket is open; start it before waiting for the customer."),
    ("waiting", "wait", "This ticket is already waiting for the customer."),
    ("resolved", "wait", "This ticket is resolved; reopen it with a reason to work on it again."),
    ("open", "resolve", "This ticket is open; start it before resolving it."),
    ("resolved", "resolve",
     "This ticket is already resolved; close it, or reopen it with a reason."),
    ("open", "close", "This ticket is open; resolve it before closing it."),
    ("in_progress", "close", "This ticket is in progress; resolve it before closing it."),
    ("waiting", "close",
     "This ticket is waiting for the customer; resolve it before closing it."),
    ("open", "reopen",
     "This ticket is open, not resolved; only a resolved ticket can be reopened."),
    ("in_progress", "reopen",
     "This ticket is in progress, not resolved; only a resolved ticket can be reopened."),
    ("waiting", "reopen",
     "This ticket is waiting for the customer, not resolved; only a resolved ticket can be "
     "reopened."),
    ("closed", "start", CLOSED),
    ("closed", "wait", CLOSED),
    ("closed", "resolve", CLOSED),
    ("closed", "close", CLOSED),
    ("closed", "reopen", CLOSED),
])
def test_refused_transitions_say_the_state_and_what_to_do(ticket_in, actor, status, action,
                                                          message):
    ticket = ticket_in(status)
    audits = AuditLog.objects.count()
    with pytest.raises(InvalidTransition) as exc:
        _do(action, actor, ticket)
    assert exc.value.code == "invalid_transition"
    assert exc.value.status == 409
    assert str(exc.value.message) == message
    ticket.refresh_from_db()
    assert ticket.status == status
    assert AuditLog.objects.count() == audits


def test_closed_ticket_cannot_be_reassigned_or_reprioritised(ticket_in, actor, company):
    ticket = ticket_in("closed")
    with pytest.raises(InvalidTransition) as exc:
        svc.reassign_ticket(actor=actor, ticket=ticket, owner=company.rep_a)
    assert str(exc.value.message) == CLOSED
    with pytest.raises(InvalidTransition) as exc:
        svc.change_priority(actor=actor, ticket=ticket, priority="urgent")
    assert str(exc.value.message) == CLOSED


def test_first_start_is_the_response_and_a_restart_keeps_it(ticket_in, actor):
    ticket = ticket_in("waiting")
    assert ticket.responded_at == LATER
    with f.frozen(LATER + dt.timedelta(hours=5)):
        ticket = svc.start_ticket(actor=actor, ticket=ticket)
    assert ticket.responded_at == LATER


def test_resolve_needs_a_resolution(ticket_in, actor):
    ticket = ticket_in("in_progress")
    with pytest.raises(ValidationFailed) as exc:
        svc.resolve_ticket(actor=actor, ticket=ticket, resolution="  ")
    assert exc.value.field == "resolution"
    assert str(exc.value.message) == "Say how the ticket was resolved before resolving it."


def test_resolve_records_text_and_time_and_close_emits_event(ticket_in, actor):
    ticket = ticket_in("resolved")
    assert ticket.resolution == "换了硒鼓"
    assert ticket.resolved_at == LATER
    with f.frozen(LATER + dt.timedelta(hours=1)):
        ticket = svc.close_ticket(actor=actor, ticket=ticket)
    assert ticket.closed_at == LATER + dt.timedelta(hours=1)
    event = DomainEvent.objects.get(name="ticket.closed")
    assert event.subject_id == str(ticket.pk)
    assert event.data == {"number": ticket.number, "customer_id": ticket.customer_id,
                          "breached": False}


def test_reopen_needs_a_reason_and_clears_the_resolution(ticket_in, actor):
    ticket = ticket_in("resolved")
    with pytest.raises(ValidationFailed) as exc:
        svc.reopen_ticket(actor=actor, ticket=ticket, reason="")
    assert exc.value.field == "reason"
    assert str(exc.value.message) == "Say why the ticket is reopened."

    ticket = svc.reopen_ticket(actor=actor, ticket=ticket, reason="客户说又坏了")
    assert (ticket.status, ticket.resolution, ticket.resolved_at) == ("in_progress", "", None)
    row = AuditLog.objects.get(action="ticket.reopen")
    assert row.after["reason"] == "客户说又坏了"
    assert row.before["resolution"] == "换了硒鼓"


def test_reassign_moves_owner_and_department(ticket_in, company):
    manager = user_of(company.manager_a)
    ticket = ticket_in("in_progress")
    ticket = svc.reassign_ticket(actor=manager, ticket=ticket, owner=company.rep_a2)
    assert (ticket.owner, ticket.department) == (company.rep_a2, company.team_a)
    row = AuditLog.objects.get(action="ticket.reassign")
    assert (row.before["owner"], row.after["owner"]) == (company.rep_a.pk, company.rep_a2.pk)


def test_reassign_to_someone_who_left_is_refused(ticket_in, company):
    from weiying.org.models import Employee

    Employee.objects.filter(pk=company.rep_a2.pk).update(status="left")
    company.rep_a2.refresh_from_db()
    with pytest.raises(ValidationFailed) as exc:
        svc.reassign_ticket(actor=user_of(company.manager_a), ticket=ticket_in("open"),
                            owner=company.rep_a2)
    assert str(exc.value.message) == (
        "赵销售 has left the company; choose someone still on the roster."
    )


def test_someone_outside_the_scope_cannot_move_the_ticket(ticket_in, company):
    ticket = ticket_in("open")
    with pytest.raises(NotFound):
        svc.start_ticket(actor=user_of(company.rep_b), ticket=ticket)
    with pytest.raises(NotFound):
        svc.reassign_ticket(actor=user_of(company.manager_b), ticket=ticket,
                            owner=company.rep_b)
    ticket.refresh_from_db()
    assert (ticket.status, ticket.owner_id) == ("open", company.rep_a.pk)


def test_allowed_actions_follow_the_state(ticket_in):
    assert svc.allowed_actions(ticket_in("open")) == ["start"]
    assert svc.allowed_actions(ticket_in("in_progress")) == ["wait", "resolve"]
    assert svc.allowed_actions(ticket_in("waiting")) == ["start", "resolve"]
    assert svc.allowed_actions(ticket_in("resolved")) == ["close", "reopen"]
    assert svc.allowed_actions(ticket_in("closed")) == []
