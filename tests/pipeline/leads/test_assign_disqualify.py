import pytest

from tests.conftest import user_of
from weiying.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.services.leads import assign_lead, disqualify_lead

pytestmark = pytest.mark.django_db


def test_manager_assigns_a_queued_lead(company, make_lead):
    lead = make_lead(department=company.team_a)
    lead = assign_lead(actor=user_of(company.manager_a), lead=lead, owner=company.rep_a2)
    assert lead.owner == company.rep_a2 and lead.status == "assigned"
    event = DomainEvent.objects.get(name="lead.assigned", subject_id=str(lead.pk))
    assert event.data["owner_id"] == company.rep_a2.pk
    assert AuditLog.objects.filter(action="lead.assign", object_id=str(lead.pk)).exists()


def test_rep_may_not_assign(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    with pytest.raises(PermissionDenied):
        assign_lead(actor=user_of(company.rep_a), lead=lead, owner=company.rep_a2)


def test_manager_cannot_assign_a_lead_outside_their_scope(company, make_lead):
    lead = make_lead(owner=company.rep_b)
    with pytest.raises(NotFound):
        assign_lead(actor=user_of(company.manager_a), lead=lead, owner=company.rep_a)


def test_manager_cannot_assign_to_someone_outside_their_scope(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    with pytest.raises(ValidationFailed) as exc:
        assign_lead(actor=user_of(company.manager_a), lead=lead, owner=company.rep_b)
    assert exc.value.field == "owner"


def test_disqualify_records_reason_and_event(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    lead = disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="no_budget")
    assert lead.status == "disqualified" and lead.disqualify_reason == "no_budget"
    event = DomainEvent.objects.get(name="lead.disqualified")
    assert event.data == {"reason": "no_budget", "owner_id": company.rep_a.pk}


def test_disqualify_other_needs_a_note(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    with pytest.raises(ValidationFailed) as exc:
        disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="other")
    assert exc.value.field == "note"
    lead = disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="other",
                           note="只是同行来问价")
    assert lead.disqualify_note == "只是同行来问价"


def test_disqualify_needs_a_known_reason(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    with pytest.raises(ValidationFailed) as exc:
        disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="bored")
    assert exc.value.field == "reason"


def test_a_disqualified_lead_cannot_be_disqualified_or_assigned_again(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="spam")
    with pytest.raises(InvalidTransition) as exc:
        disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="spam")
    assert exc.value.code == "lead_disqualified"
    with pytest.raises(InvalidTransition):
        assign_lead(actor=user_of(company.manager_a), lead=lead, owner=company.rep_a2)


def test_rep_cannot_disqualify_someone_elses_lead(company, make_lead):
    lead = make_lead(owner=company.rep_a2)
    with pytest.raises(NotFound):
        disqualify_lead(actor=user_of(company.rep_a), lead=lead, reason="spam")
