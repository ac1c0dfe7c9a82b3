from decimal import Decimal

import pytest

from tests.conftest import user_of
from weiying.core.errors import Conflict, InvalidTransition, NotFound
from weiying.core.models import DomainEvent
from weiying.customers.models import Customer
from weiying.customers.services import create_customer
from weiying.pipeline.models import FollowUp, Lead
from weiying.pipeline.services.leads import convert_lead, disqualify_lead

pytestmark = pytest.mark.django_db


def test_convert_creates_customer_and_opportunity(company, make_lead):
    lead = make_lead(owner=company.rep_a, name="张三", company_name="上海星辰科技有限公司",
                     phone="13812345678", interest="CRM", city="上海", source="exhibition")
    customer, opportunity = convert_lead(actor=user_of(company.rep_a), lead=lead,
                                         amount="12000.005")
    assert customer.name == "上海星辰科技有限公司" and customer.kind == "company"
    assert customer.owner == company.rep_a and customer.phone == "13812345678"
    assert customer.source == "exhibition"
    assert opportunity.name == "上海星辰科技有限公司 · CRM"
    assert opportunity.amount == Decimal("12000.01")
    assert opportunity.lead_id == lead.pk and opportunity.owner == company.rep_a
    lead = Lead.objects.get(pk=lead.pk)
    assert lead.status == "converted" and lead.converted_at is not None
    assert lead.customer == customer and lead.opportunity == opportunity
    event = DomainEvent.objects.get(name="lead.converted")
    assert event.data["customer_id"] == customer.pk
    assert event.data["opportunity_id"] == opportunity.pk


def test_convert_without_opportunity_and_person_lead(company, make_lead):
    lead = make_lead(owner=company.rep_a, name="王五", phone="13812345679")
    customer, opportunity = convert_lead(actor=user_of(company.rep_a), lead=lead,
                                         create_opportunity=False)
    assert opportunity is None
    assert customer.kind == "individual" and customer.name == "王五"


def test_convert_keeps_follow_ups_and_links_them_to_the_customer(company, make_lead):
    from django.utils import timezone

    lead = make_lead(owner=company.rep_a, name="张三", phone="13812345678")
    followup = FollowUp.objects.create(kind="call", lead=lead, owner=company.rep_a,
                                       note="首次电话", at=timezone.now())
    customer, _opp = convert_lead(actor=user_of(company.rep_a), lead=lead,
                                  create_opportunity=False)
    followup.refresh_from_db()
    assert followup.lead_id == lead.pk and followup.customer_id == customer.pk


def test_duplicate_customer_is_refused_then_linked(company, make_lead):
    existing = create_customer(actor=None, name="上海星辰科技", phone="13812345678",
                               owner=company.rep_a)
    lead = make_lead(owner=company.rep_a, company_name="星辰", name="张三",
                     phone="13812345678")
    with pytest.raises(Conflict) as exc:
        convert_lead(actor=user_of(company.rep_a), lead=lead)
    assert exc.value.code == "duplicate_customer"
    assert Lead.objects.get(pk=lead.pk).status == "assigned"
    assert Customer.objects.count() == 1

    customer, opportunity = convert_lead(actor=user_of(company.rep_a), lead=lead,
                                         customer=existing)
    assert customer == existing and opportunity.customer == existing
    assert Lead.objects.get(pk=lead.pk).customer == existing


def test_cannot_link_to_a_customer_outside_scope(company, make_lead):
    theirs = create_customer(actor=None, name="北京客户", owner=company.rep_b)
    lead = make_lead(owner=company.rep_a)
    with pytest.raises(NotFound):
        convert_lead(actor=user_of(company.rep_a), lead=lead, customer=theirs)


def test_converted_or_disqualified_leads_cannot_be_converted(company, make_lead):
    lead = make_lead(owner=company.rep_a)
    convert_lead(actor=user_of(company.rep_a), lead=lead, create_opportunity=False)
    with pytest.raises(InvalidTransition) as exc:
        convert_lead(actor=user_of(company.rep_a), lead=lead)
    assert exc.value.code == "lead_converted"
    other = make_lead(owner=company.rep_a)
    disqualify_lead(actor=user_of(company.rep_a), lead=other, reason="spam")
    with pytest.raises(InvalidTransition) as exc:
        convert_lead(actor=user_of(company.rep_a), lead=other)
    assert exc.value.code == "lead_disqualified"


def test_a_lead_that_came_in_as_a_customer_converts_to_that_customer(company, make_lead):
    # given: a WeCom add through a channel code made the customer and a lead linked to it
    wecom = create_customer(actor=None, name="刘女士", owner=company.rep_a, source="wecom")
    lead = make_lead(owner=company.rep_a, name="刘女士", phone="", source="wecom",
                     customer=wecom)

    # when: the rep taps "convert" (no customer picked)
    customer, opportunity = convert_lead(actor=user_of(company.rep_a), lead=lead)

    # then: the lead stays with its customer; no second 刘女士 is made
    assert customer == wecom and opportunity.customer == wecom
    assert Lead.objects.get(pk=lead.pk).customer == wecom
    assert Customer.objects.count() == 1


def test_a_leads_customer_outside_the_scope_is_not_used_for_the_conversion(company,
                                                                            make_lead):
    theirs = create_customer(actor=None, name="钱女士", owner=company.rep_a2, source="wecom")
    lead = make_lead(owner=company.rep_a, name="钱女士", phone="", source="wecom",
                     customer=theirs)

    customer, _opportunity = convert_lead(actor=user_of(company.rep_a), lead=lead,
                                          create_opportunity=False)

    assert customer != theirs and customer.owner == company.rep_a
    assert Lead.objects.get(pk=lead.pk).customer == customer
