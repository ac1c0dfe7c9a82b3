import datetime as dt

import pytest
from django.utils import translation

from tests.conftest import user_of
from tests.pipeline.opportunities.factories import NOW, make_customer, make_lead
from weiying.core.errors import NotFound, PermissionDenied, ValidationFailed
from weiying.core.models import AuditLog, DomainEvent
from weiying.customers.models import Customer
from weiying.pipeline.models import FollowUp, Lead, Opportunity
from weiying.pipeline.services.followups import log_followup, mark_next_done
from weiying.pipeline.services.opportunities import create_opportunity

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def test_customer_side_effects(company, clock):
    customer = make_customer(company.rep_a)
    assert customer.status == "new"

    followup = log_followup(actor=user_of(company.rep_a), kind="call", note="聊了预算",
                            customer=customer, at=NOW - HOUR, next_at=NOW + 24 * HOUR)

    customer.refresh_from_db()
    assert followup.owner == company.rep_a
    assert customer.status == "contacted"
    assert customer.last_followup_at == NOW - HOUR
    assert customer.last_activity_at == NOW - HOUR
    assert customer.next_followup_at == NOW + 24 * HOUR
    event = DomainEvent.objects.get(name="followup.logged")
    assert event.data["customer_id"] == customer.pk
    assert event.data["kind"] == "call"
    assert AuditLog.objects.filter(action="followup.log", object_id=str(followup.pk)).exists()


def test_backdated_followup_does_not_rewind_customer(company, clock):
    customer = make_customer(company.rep_a, last_activity_at=NOW)
    Customer.objects.filter(pk=customer.pk).update(status="negotiating",
                                                   last_followup_at=NOW - HOUR)

    log_followup(actor=user_of(company.rep_a), kind="visit", note="补记上周拜访",
                 customer=customer, at=NOW - 7 * 24 * HOUR)

    customer.refresh_from_db()
    assert (customer.last_followup_at, customer.last_activity_at) == (NOW - HOUR, NOW)
    assert customer.status == "negotiating"


def test_lead_first_response_seconds_are_exact(company, clock):
    lead = make_lead(company.rep_a, assigned_at=NOW - dt.timedelta(hours=1, minutes=23,
                                                                   seconds=45))

    log_followup(actor=user_of(company.rep_a), kind="call", note="首次联系", lead=lead)

    lead.refresh_from_db()
    assert lead.first_response_at == NOW
    assert lead.first_response_seconds == 5025
    assert lead.status == "contacted"
    assert lead.last_activity_at == NOW
    assert DomainEvent.objects.get(name="followup.logged").data["first_response"] is True


def test_first_response_counts_from_creation_when_never_assigned(company, clock):
    lead = make_lead(company.rep_a, assigned_at=None, status="new",
                     created_at=NOW - dt.timedelta(minutes=10))

    log_followup(actor=user_of(company.rep_a), kind="wechat", note="加了微信", lead=lead)

    lead.refresh_from_db()
    assert (lead.first_response_seconds, lead.status) == (600, "contacted")


def test_second_followup_keeps_the_first_response(company, clock):
    lead = make_lead(company.rep_a, assigned_at=NOW - HOUR)
    log_followup(actor=user_of(company.rep_a), kind="call", note="一", lead=lead)
    clock.advance(hours=5)

    log_followup(actor=user_of(company.rep_a), kind="call", note="二", lead=lead)

    lead.refresh_from_db()
    assert (lead.first_response_at, lead.first_response_seconds) == (NOW, 3600)
    assert lead.last_activity_at == NOW + 5 * HOUR


def test_a_followup_on_a_lead_of_a_known_customer_is_the_customers_too(company, clock):
    customer = make_customer(company.rep_a)
    lead = make_lead(company.rep_a, customer=customer)

    followup = log_followup(actor=user_of(company.rep_a), kind="wechat", note="加了企微",
                            lead=lead, next_at=NOW + 24 * HOUR)

    customer.refresh_from_db()
    assert (followup.lead, followup.customer) == (lead, customer)
    assert customer.status == "contacted"
    assert (customer.last_followup_at, customer.next_followup_at) == (NOW, NOW + 24 * HOUR)
    assert Lead.objects.get(pk=lead.pk).status == "contacted"
    event = DomainEvent.objects.get(name="followup.logged")
    assert (event.data["lead_id"], event.data["customer_id"]) == (lead.pk, customer.pk)


def test_a_leads_customer_outside_the_scope_gets_only_the_lead_followup(company, clock):
    customer = make_customer(company.rep_a2)
    lead = make_lead(company.rep_a, customer=customer)

    followup = log_followup(actor=user_of(company.rep_a), kind="call", note="只记线索",
                            lead=lead)

    assert (followup.lead, followup.customer) == (lead, None)
    assert Customer.objects.get(pk=customer.pk).last_followup_at is None


def test_disqualified_lead_keeps_its_status(company, clock):
    lead = make_lead(company.rep_a, status="disqualified")

    log_followup(actor=user_of(company.rep_a), kind="call", note="再确认", lead=lead)

    assert Lead.objects.get(pk=lead.pk).status == "disqualified"


def test_followup_on_opportunity_updates_its_activity(company, clock):
    customer = make_customer(company.rep_a)
    opp = create_opportunity(actor=user_of(company.rep_a), customer=customer, name="商机")
    clock.advance(hours=3)

    followup = log_followup(actor=user_of(company.rep_a), kind="meeting", note="方案会",
                            opportunity=opp)

    assert followup.customer == customer
    assert Opportunity.objects.get(pk=opp.pk).last_activity_at == NOW + 3 * HOUR


def test_opportunity_of_another_customer_is_refused(company, clock):
    opp = create_opportunity(actor=user_of(company.rep_a),
                             customer=make_customer(company.rep_a, name="甲"), name="商机")

    with pytest.raises(ValidationFailed) as exc:
        log_followup(actor=user_of(company.rep_a), kind="call", note="x", opportunity=opp,
                     customer=make_customer(company.rep_a, name="乙"))

    assert exc.value.field == "opportunity"


def test_earlier_plans_are_marked_done(company, clock):
    customer = make_customer(company.rep_a)
    me = user_of(company.rep_a)
    first = log_followup(actor=me, kind="call", note="一", customer=customer,
                         at=NOW - 48 * HOUR, next_at=NOW - HOUR)
    other_rep = log_followup(actor=user_of(company.manager_a), kind="call", note="经理",
                             customer=customer, at=NOW - 48 * HOUR, next_at=NOW + 5 * HOUR)

    log_followup(actor=me, kind="call", note="二", customer=customer, next_at=NOW + 72 * HOUR)

    first.refresh_from_db()
    other_rep.refresh_from_db()
    assert first.next_done is True
    assert other_rep.next_done is False
    assert Customer.objects.get(pk=customer.pk).next_followup_at == NOW + 5 * HOUR


def test_future_followup_is_refused(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        log_followup(actor=user_of(company.rep_a), kind="call", note="x",
                     customer=make_customer(company.rep_a), at=NOW + dt.timedelta(minutes=1))

    assert exc.value.field == "at"
    assert str(exc.value.message) == (
        "A follow-up cannot be in the future; plan it as the next follow-up instead.")


def test_next_must_be_after_the_followup(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        log_followup(actor=user_of(company.rep_a), kind="call", note="x",
                     customer=make_customer(company.rep_a), at=NOW - HOUR, next_at=NOW - HOUR)

    assert exc.value.field == "next_at"
    assert str(exc.value.message) == "The next follow-up must be later than this one."


@pytest.mark.parametrize(("kind", "note", "field"), [("fax", "x", "kind"), ("call", "  ", "note")])
def test_kind_and_note_are_checked(company, clock, kind, note, field):
    with pytest.raises(ValidationFailed) as exc:
        log_followup(actor=user_of(company.rep_a), kind=kind, note=note,
                     customer=make_customer(company.rep_a))

    assert exc.value.field == field


def test_needs_a_customer_or_lead(company, clock):
    with pytest.raises(ValidationFailed) as exc:
        log_followup(actor=user_of(company.rep_a), kind="call", note="x")

    assert str(exc.value.message) == "Choose the customer or lead you followed up."


def test_customer_of_another_branch_is_not_found(company, clock):
    with pytest.raises(NotFound):
        log_followup(actor=user_of(company.rep_b), kind="call", note="x",
                     customer=make_customer(company.rep_a))

    assert FollowUp.objects.count() == 0


def test_finance_may_not_log_followups(company, clock):
    with pytest.raises(PermissionDenied):
        log_followup(actor=user_of(company.finance), kind="call", note="x",
                     customer=make_customer(company.rep_a))


def test_dismissing_a_plan_recomputes_next_followup(company, clock):
    customer = make_customer(company.rep_a)
    followup = log_followup(actor=user_of(company.rep_a), kind="call", note="x",
                            customer=customer, next_at=NOW + HOUR)

    mark_next_done(actor=user_of(company.rep_a), followup=followup)

    assert FollowUp.objects.get(pk=followup.pk).next_done is True
    assert Customer.objects.get(pk=customer.pk).next_followup_at is None
