import datetime as dt
import logging

import pytest

from tests.conftest import user_of
from tests.pipeline.tickets import factories as f
from weiying.pipeline.selectors.tickets import filter_tickets, sla_state
from weiying.pipeline.tasks_tickets import log_sla_breaches

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)
NOW = f.NOW


def test_sla_state_of_a_fresh_ticket_counts_down():
    ticket = f.Ticket(respond_by=NOW + 8 * H, resolve_by=NOW + 72 * H)
    assert sla_state(ticket, NOW + 6 * H) == {
        "respond": "due", "resolve": "due",
        "respond_left_seconds": 7200, "resolve_left_seconds": 66 * 3600,
    }


def test_sla_state_at_the_deadline_is_still_due_and_a_second_later_breached():
    ticket = f.Ticket(respond_by=NOW, resolve_by=NOW + 72 * H)
    assert sla_state(ticket, NOW)["respond"] == "due"
    late = sla_state(ticket, NOW + dt.timedelta(seconds=1))
    assert (late["respond"], late["respond_left_seconds"]) == ("breached", -1)


def test_sla_state_judges_done_steps_by_when_they_were_done():
    ticket = f.Ticket(respond_by=NOW + 1 * H, resolve_by=NOW + 8 * H,
                      responded_at=NOW + 30 * dt.timedelta(minutes=1),
                      resolved_at=NOW + 9 * H)
    state = sla_state(ticket, NOW + 100 * H)
    assert state == {"respond": "met", "resolve": "breached",
                     "respond_left_seconds": 1800, "resolve_left_seconds": -3600}


@pytest.fixture
def board(company):
    """Tickets of rep_a opened at different times; the clock reads NOW."""
    buyer = f.customer("上海甲公司", company.rep_a)
    return {
        # respond_by passed an hour ago, never responded
        "late_response": f.ticket_row(buyer, respond_by=NOW - 1 * H, resolve_by=NOW + 60 * H),
        # responded late (after respond_by), resolution still far
        "responded_late": f.ticket_row(buyer, status="in_progress", respond_by=NOW - 5 * H,
                                       responded_at=NOW - 4 * H, resolve_by=NOW + 30 * H),
        # resolve_by in 90 minutes, responded in time
        "resolve_soon": f.ticket_row(buyer, status="in_progress", respond_by=NOW - 5 * H,
                                     responded_at=NOW - 6 * H, resolve_by=NOW + 1.5 * H),
        # respond_by in exactly two hours
        "respond_soon": f.ticket_row(buyer, respond_by=NOW + 2 * H, resolve_by=NOW + 70 * H),
        # respond_by in two hours and one minute: not yet "due soon"
        "respond_later": f.ticket_row(buyer, respond_by=NOW + 2 * H + dt.timedelta(minutes=1),
                                      resolve_by=NOW + 70 * H),
        # resolved in time, resolve_by now passed: met, nothing pending
        "done": f.ticket_row(buyer, status="resolved", respond_by=NOW - 50 * H,
                             responded_at=NOW - 51 * H, resolve_by=NOW - 1 * H,
                             resolved_at=NOW - 2 * H, resolution="好了"),
        # resolved after its deadline
        "done_late": f.ticket_row(buyer, status="closed", respond_by=NOW - 50 * H,
                                  responded_at=NOW - 51 * H, resolve_by=NOW - 10 * H,
                                  resolved_at=NOW - 9 * H, closed_at=NOW - 8 * H,
                                  resolution="好了"),
    }


def _numbers(company, board, sla):
    names = {t.pk: name for name, t in board.items()}
    qs = filter_tickets(user_of(company.rep_a), now=NOW, sla=sla)
    return {names[pk] for pk in qs.values_list("pk", flat=True)}


def test_breached_filter_at_a_frozen_time(company, board):
    assert _numbers(company, board, "breached") == {"late_response", "responded_late",
                                                    "done_late"}


def test_due_within_two_hours_filter_at_a_frozen_time(company, board):
    assert _numbers(company, board, "due_soon") == {"resolve_soon", "respond_soon"}


def test_sql_filters_agree_with_sla_state(company, board):
    for name, ticket in board.items():
        state = sla_state(ticket, NOW)
        breached = "breached" in (state["respond"], state["resolve"])
        assert (name in _numbers(company, board, "breached")) == breached, name


def test_periodic_check_logs_active_breaches_only(company, board, caplog):
    with f.frozen(NOW), caplog.at_level(logging.INFO, logger="weiying.pipeline.tasks_tickets"):
        counts = log_sla_breaches()
    # done_late is closed; responded_late was responded to, its resolution is not yet due.
    assert counts == {"total": 1, "respond": 1, "resolve": 0, "announced": 1}
    record = caplog.records[-1]
    assert record.levelname == "WARNING"
    assert record.ticket_ids == [board["late_response"].pk]
    board["late_response"].refresh_from_db()
    assert board["late_response"].status == "open"


def test_each_breached_deadline_is_announced_once(company, board):
    from weiying.core.models import DomainEvent

    with f.frozen(NOW):
        first = log_sla_breaches()
        again = log_sla_breaches()

    events = DomainEvent.objects.filter(name="ticket.sla_breached")
    assert (first["announced"], again["announced"]) == (1, 0)
    assert [(e.subject_id, e.data["step"], e.data["owner_id"]) for e in events] == [
        (str(board["late_response"].pk), "respond", board["late_response"].owner_id)]


def test_new_deadlines_after_a_priority_change_are_announced_again(company, board):
    from weiying.core.models import DomainEvent
    from weiying.pipeline.services import tickets as services

    late = board["late_response"]
    with f.frozen(NOW):
        log_sla_breaches()
        services.change_priority(actor=user_of(company.admin), ticket=late, priority="urgent")
        late.refresh_from_db()
        assert (late.respond_breach_at, late.respond_by > NOW) == (None, True)
        assert log_sla_breaches()["announced"] == 0  # the new deadline is still ahead
    with f.frozen(NOW + 100 * H):
        assert log_sla_breaches()["announced"] >= 1

    steps = list(DomainEvent.objects.filter(name="ticket.sla_breached", subject_id=str(late.pk))
                 .values_list("data__step", flat=True))
    assert steps.count("respond") == 2
