"""A row's department is its owner's department: the department scopes read that column, so a
transfer must carry the owner's records along, and every service must keep it in step."""

import pytest
from django.apps import apps

from tests.conftest import user_of
from weiying.core.models import AuditLog
from weiying.core.scope import ScopeRule, scoped
from weiying.customers import services as customers
from weiying.org import services as org
from weiying.pipeline.models import Lead, Opportunity
from weiying.pipeline.services import leads, opportunities

pytestmark = pytest.mark.django_db


def _owned_rows(company):
    actor = user_of(company.rep_a)
    customer = customers.create_customer(actor=actor, name="随迁客户", owner=company.rep_a)
    lead = leads.capture_lead(actor=actor, name="随迁线索", phone="13912345678",
                              owner=company.rep_a)
    deal = opportunities.create_opportunity(actor=actor, customer=customer, name="随迁商机",
                                            amount="1000.00")
    return customer, lead, deal


def test_a_transfer_moves_the_owners_records_to_the_new_team(company):
    customer, lead, deal = _owned_rows(company)

    org.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                          department=company.team_b)

    for row in (customer, lead, deal):
        row.refresh_from_db()
        assert row.department_id == company.team_b.pk
    audit = AuditLog.objects.filter(action="employee.transfer").latest("pk")
    assert audit.after["records_moved"] == {
        "customers.customer": 1, "pipeline.lead": 1, "pipeline.opportunity": 1,
    }


def test_after_a_transfer_the_new_manager_sees_the_records_and_the_old_one_does_not(company):
    _customer, lead, deal = _owned_rows(company)

    org.transfer_employee(actor=user_of(company.admin), employee=company.rep_a,
                          department=company.team_b)

    old, new = user_of(company.manager_a), user_of(company.manager_b)
    assert not scoped(Lead.objects.filter(pk=lead.pk), old).exists()
    assert not scoped(Opportunity.objects.filter(pk=deal.pk), old).exists()
    assert scoped(Lead.objects.filter(pk=lead.pk), new).exists()
    assert scoped(Opportunity.objects.filter(pk=deal.pk), new).exists()
    # The rep still sees their own.
    assert scoped(Lead.objects.filter(pk=lead.pk), user_of(company.rep_a)).exists()


def test_services_keep_every_owned_row_in_its_owners_department(company):
    _owned_rows(company)
    actor = user_of(company.manager_a)
    lead = leads.capture_lead(actor=actor, name="转派线索", phone="13912345679",
                              owner=company.rep_a)
    leads.assign_lead(actor=actor, lead=lead, owner=company.rep_a2)

    mismatched = []
    for model in apps.get_models():
        rule = getattr(model, "scope", None)
        if not isinstance(rule, ScopeRule) or rule.department is None or "__" in rule.department:
            continue
        for row in model._default_manager.filter(**{f"{rule.owner}__isnull": False}) \
                .select_related(rule.owner):
            owner = getattr(row, rule.owner)
            if getattr(row, f"{rule.department}_id") != owner.department_id:
                mismatched.append((model._meta.label, row.pk))
    assert mismatched == []
