import pytest

from weiying.core.models import DomainEvent
from weiying.org import services as org
from weiying.org.models import Role
from weiying.pipeline.models import AssignmentRule
from weiying.pipeline.services.leads import capture_lead

pytestmark = pytest.mark.django_db


def _capture(**fields):
    fields.setdefault("name", "客户")
    fields.setdefault("phone", "13812345678")
    return capture_lead(actor=None, **fields)


def test_round_robin_takes_reps_in_id_order_and_wraps(company, rule):
    rr = rule("round_robin", company.team_a)
    owners = [_capture(phone=f"1381234567{i}").owner for i in range(3)]
    assert owners == [company.rep_a, company.rep_a2, company.rep_a]
    rr.refresh_from_db()
    assert rr.last_assigned == company.rep_a


def test_round_robin_continues_after_the_last_assigned(company, rule):
    rule("round_robin", company.team_a)
    AssignmentRule.objects.update(last_assigned=company.rep_a)
    assert _capture().owner == company.rep_a2


def test_round_robin_skips_managers_and_people_who_left(company, rule):
    rule("round_robin", company.team_a)
    import datetime as dt

    company.rep_a.status = "left"
    company.rep_a.leave_date = dt.date(2025, 1, 1)
    company.rep_a.save()
    owners = {_capture(phone=f"1381234567{i}").owner for i in range(3)}
    assert owners == {company.rep_a2}


def test_region_rule_matches_only_its_region(company, rule):
    rule("region", company.team_b, priority=10, match_region="华北")
    rule("round_robin", company.team_a, priority=50)
    assert _capture(region="华北").owner == company.rep_b
    assert _capture(region="华东", phone="13912345678").owner.department == company.team_a


def test_source_rule_matches_only_its_source(company, rule):
    rule("source", company.team_b, priority=10, match_source="exhibition")
    assert _capture(source="exhibition").owner == company.rep_b
    lead = _capture(source="ads", phone="13912345678")
    assert lead.owner is None and lead.status == "new"


def test_rules_apply_by_priority(company, rule):
    rule("round_robin", company.team_a, priority=20)
    rule("source", company.team_b, priority=10, match_source="form")
    assert _capture(source="form").owner == company.rep_b


def test_inactive_rule_and_team_without_reps_are_skipped(company, rule):
    rule("round_robin", company.team_b, priority=5).__class__.objects.filter(
        priority=5).update(is_active=False)
    empty = org.create_department(actor=None, name="空组", parent=company.east, check=False)
    org.create_employee(actor=None, number="E099", name="组长", department=empty,
                        role=Role.objects.get(code="manager"), check=False)
    rule("round_robin", empty, priority=10)
    rule("round_robin", company.team_a, priority=30)
    assert _capture().owner == company.rep_a


def test_assignment_by_rule_emits_assigned_event(company, rule):
    rule("round_robin", company.team_a)
    lead = _capture()
    event = DomainEvent.objects.get(name="lead.assigned", subject_id=str(lead.pk))
    assert event.data == {"owner_id": company.rep_a.pk, "previous_owner_id": None,
                          "by_rule": True}
