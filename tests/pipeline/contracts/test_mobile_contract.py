import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.pipeline.models import Contract
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db


def phone_url(contract):
    return reverse("mobile:contract_detail", args=[contract.pk])


def planned(make_contract, *, status="signed", **kw):
    """A contract with three instalments: 5 days late (part collected), due in 3 days, due in
    30 days."""
    contract = make_contract(status, **kw)
    today = timezone.localdate()
    svc.plan_instalments(actor=None, contract=contract, plan=[
        (today - dt.timedelta(days=5), "500.00"), (today + dt.timedelta(days=3), "700.00"),
        (today + dt.timedelta(days=30), "800.00")])
    if status in svc.SOLD_STATUSES:
        svc.record_receipt(actor=None, contract=contract, amount=Decimal("200.00"),
                           received_on=today, method="bank")
    contract.refresh_from_db()
    return contract


def cells(body):
    """The instalment cells of the phone page, in order."""
    plan = body.split('data-testid="instalments"')[1].split('weui-cells__title')[0]
    return plan.split('data-instalment="')[1:]


def test_the_phone_contract_page_shows_the_contract_and_its_instalments(company, login,
                                                                       make_contract):
    contract = planned(make_contract)

    page = login(company.rep_a).get(phone_url(contract))

    assert page.status_code == 200
    assert [t.name for t in page.templates][:2] == ["pipeline/mobile/contract_detail.html",
                                                     "web/mobile_base.html"]
    # the WeChat layer is installed: its collect tag is asked, per open instalment
    assert [t.name for t in page.templates].count("pipeline/mobile/_collect.html") == 3
    body = page.content.decode()
    assert f'data-testid="contract-number">{contract.number}<' in body
    assert "上海甲公司" in body
    assert 'data-testid="contract-status">Signed<' in body
    assert 'data-testid="contract-total">¥2,000.00<' in body
    assert 'data-testid="contract-collected">¥200.00<' in body
    assert 'data-testid="contract-outstanding">¥1,800.00<' in body
    late, soon, later = cells(body)
    today = timezone.localdate()
    assert f"instalment 1 · {(today - dt.timedelta(days=5)):%Y-%m-%d}" in late
    assert "¥500.00 · Collected ¥200.00" in late and 'data-testid="overdue"' in late
    assert "¥700.00 · Collected ¥0.00" in soon and "overdue" not in soon
    assert "¥800.00" in later and "overdue" not in later
    # the customer is one tap away
    assert f'href="{reverse("mobile:customer_detail", args=[contract.customer_id])}"' in body


def test_a_collected_instalment_says_so_and_a_cancelled_contract_is_never_overdue(
        company, login, make_contract):
    contract = planned(make_contract)
    svc.record_receipt(actor=None, contract=contract, amount=Decimal("300.00"),
                       received_on=timezone.localdate(), method="bank")
    draft = planned(make_contract, status="approved", title="作废合同")
    svc.cancel_contract(actor=user_of(company.finance), contract=draft, reason="客户放弃")
    client = login(company.rep_a)

    late = cells(client.get(phone_url(contract)).content.decode())[0]
    cancelled = client.get(phone_url(draft)).content.decode()

    assert 'data-testid="settled">Collected in full<' in late and "overdue" not in late
    assert 'data-testid="overdue"' not in cancelled
    assert "客户放弃" in cancelled


def test_the_phone_contract_page_keeps_the_data_scope(company, login, make_contract):
    contract = make_contract("signed")

    for persona in (company.rep_a, company.manager_a, company.director, company.finance,
                    company.admin):
        assert login(persona).get(phone_url(contract)).status_code == 200, persona.name
    for persona in (company.rep_a2, company.rep_b, company.manager_b):
        assert login(persona).get(phone_url(contract)).status_code == 404, persona.name
    assert login(company.rep_a).get(
        reverse("mobile:contract_detail", args=[987654])).status_code == 404


def test_the_customer_is_a_link_only_when_the_viewer_may_see_it(company, login, customers,
                                                                make_contract):
    contract = make_contract("signed")
    # the customer went to rep B since; the contract stays rep A's
    type(customers.a).objects.filter(pk=customers.a.pk).update(
        owner=company.rep_b, department=company.team_b)

    body = login(company.rep_a).get(phone_url(contract)).content.decode()

    assert "上海甲公司" in body
    assert reverse("mobile:customer_detail", args=[customers.a.pk]) not in body


def test_without_the_wechat_layer_the_page_has_no_collect_action(company, login, make_contract,
                                                                monkeypatch):
    contract = planned(make_contract)
    installed = apps.is_installed
    monkeypatch.setattr(apps, "is_installed", lambda name: name != "weiying.wechat"
                        and installed(name))

    page = login(company.rep_a).get(phone_url(contract))

    assert page.status_code == 200
    assert "pipeline/mobile/_collect.html" not in [t.name for t in page.templates]
    assert "/wechat/" not in page.content.decode()


def test_an_approver_approves_on_the_phone_and_lands_back_on_it(company, login, catalog,
                                                                make_contract):
    contract = make_contract("pending_approval", lines=[
        {"product": catalog.saas, "quantity": "1", "unit_price": "1000.00", "discount": "0.2"}])
    manager = login(company.manager_a)

    body = manager.get(phone_url(contract)).content.decode()
    approve = reverse("mobile:contract_action", args=[contract.pk, "approve"])
    reject = reverse("mobile:contract_action", args=[contract.pk, "reject"])
    assert f'formaction="{approve}"' in body and f'formaction="{reject}"' in body
    assert "Largest discount" in body and ">20%<" in body
    assert 'placeholder="Required to Reject / Cancel"' in body
    response = manager.post(approve)

    assert response.status_code == 302 and response["Location"] == phone_url(contract)
    assert Contract.objects.get(pk=contract.pk).status == "approved"
    assert "Done: Approve." in manager.get(response["Location"]).content.decode()


def test_a_reject_without_a_reason_is_a_message_and_changes_nothing(company, login, catalog,
                                                                   make_contract):
    contract = make_contract("pending_approval", lines=[
        {"product": catalog.saas, "quantity": "1", "unit_price": "1000.00", "discount": "0.2"}])
    manager = login(company.manager_a)
    reject = reverse("mobile:contract_action", args=[contract.pk, "reject"])

    refused = manager.post(reject, {"reason": " "}, follow=True)
    assert "Give a reason, so the team knows why." in refused.content.decode()
    assert Contract.objects.get(pk=contract.pk).status == "pending_approval"

    manager.post(reject, {"reason": "折扣太大"})
    contract.refresh_from_db()
    assert (contract.status, contract.rejection_reason) == ("draft", "折扣太大")


def test_the_owner_cannot_approve_their_own_contract_on_the_phone(company, login, catalog,
                                                                  make_contract):
    contract = make_contract("pending_approval", lines=[
        {"product": catalog.saas, "quantity": "1", "unit_price": "1000.00", "discount": "0.2"}])
    rep = login(company.rep_a)

    body = rep.get(phone_url(contract)).content.decode()
    response = rep.post(reverse("mobile:contract_action", args=[contract.pk, "approve"]),
                        follow=True)

    assert 'data-testid="contract-actions"' not in body
    assert response.redirect_chain == [(phone_url(contract), 302)]
    assert ("Your role does not allow this (Approve discounts and contracts). Ask an "
            "administrator.") in response.content.decode()
    assert Contract.objects.get(pk=contract.pk).status == "pending_approval"


def test_an_action_on_a_contract_outside_the_scope_is_not_found(company, login, catalog,
                                                                make_contract):
    contract = make_contract("pending_approval", lines=[
        {"product": catalog.saas, "quantity": "1", "unit_price": "1000.00", "discount": "0.2"}])

    response = login(company.manager_b).post(
        reverse("mobile:contract_action", args=[contract.pk, "approve"]))
    unknown = login(company.manager_a).post(
        reverse("mobile:contract_action", args=[contract.pk, "frobnicate"]))

    assert (response.status_code, unknown.status_code) == (404, 404)
    assert Contract.objects.get(pk=contract.pk).status == "pending_approval"


def test_the_phone_customer_page_lists_the_contracts_the_viewer_may_see(company, login,
                                                                        customers,
                                                                        make_contract):
    mine = make_contract("signed", title="甲的合同")
    theirs = make_contract("draft", title="乙的合同")
    # a contract of rep A's customer held by rep A2 (a colleague's deal with the customer)
    Contract.objects.filter(pk=theirs.pk).update(owner=company.rep_a2)
    url = reverse("mobile:customer_detail", args=[customers.a.pk])

    rep = login(company.rep_a).get(url).content.decode()
    manager = login(company.manager_a).get(url).content.decode()

    assert "甲的合同" in rep and "乙的合同" not in rep
    assert f'href="{phone_url(mine)}"' in rep and phone_url(theirs) not in rep
    assert f"{mine.number} · Signed" in rep and "¥2,000.00" in rep
    assert f'href="{phone_url(mine)}"' in manager and f'href="{phone_url(theirs)}"' in manager


def test_my_day_lists_what_is_due_this_week_and_links_the_phone_contract(company, login,
                                                                         customers,
                                                                         make_contract):
    contract = planned(make_contract, title="甲的年度合同")
    planned(make_contract, customer=customers.a2, title="赵的合同")  # rep A2's

    page = login(company.rep_a).get(reverse("mobile:my_day"))

    due = page.context["collections"]
    assert [(i.contract_id, i.seq, i.overdue) for i in due] == [
        (contract.pk, 1, True), (contract.pk, 2, False)]  # not the one due in 30 days
    body = page.content.decode()
    section = body.split('data-testid="collections"')[1].split("</div>\n\n")[0]
    assert section.count(f'href="{phone_url(contract)}"') == 2
    assert "甲的年度合同 · instalment 1" in section and "¥300.00" in section
    assert "赵的合同" not in body
