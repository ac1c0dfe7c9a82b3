import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import user_of
from weiying.pipeline.models import Contract, Quote
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"pipeline:{name}", args=args)


def test_contract_pages_are_visible_inside_the_scope_only(company, login, make_contract):
    contract = make_contract("signed")
    pages = [url("contract_detail", contract.pk), url("instalment_plan", contract.pk),
             url("receipt_new", contract.pk)]
    for persona in (company.rep_a, company.manager_a, company.director, company.finance,
                    company.admin):
        client = login(persona)
        for page in pages:
            assert client.get(page).status_code == 200, (persona.name, page)
    for persona in (company.rep_a2, company.rep_b, company.manager_b):
        client = login(persona)
        for page in pages:
            assert client.get(page).status_code == 404, (persona.name, page)


def test_contract_list_shows_only_what_the_persona_may_see(company, login, customers,
                                                          make_contract):
    mine = make_contract()
    theirs = make_contract(customer=customers.b)
    body = login(company.rep_a).get(url("contract_list")).content.decode()
    assert mine.number in body and theirs.number not in body
    body = login(company.finance).get(url("contract_list")).content.decode()
    assert mine.number in body and theirs.number in body
    filtered = login(company.finance).get(url("contract_list") + "?status=signed")
    assert mine.number not in filtered.content.decode()


def test_detail_shows_the_allowed_actions(company, login, make_contract):
    contract = make_contract()
    body = login(company.rep_a).get(url("contract_detail", contract.pk)).content.decode()
    assert url("contract_action", contract.pk, "submit") in body
    assert url("contract_action", contract.pk, "cancel") not in body


def test_new_contract_form_creates_a_draft(company, login, customers, catalog):
    client = login(company.rep_a)
    assert client.get(url("contract_new") + f"?customer={customers.a.pk}").status_code == 200
    response = client.post(url("contract_new"), {
        "customer": customers.a.pk, "title": "网页合同", "start_on": "", "end_on": "",
        "note": "", "lines-TOTAL_FORMS": "2", "lines-INITIAL_FORMS": "0",
        "lines-0-product": catalog.box.pk, "lines-0-quantity": "3",
        "lines-0-unit_price": "33.33", "lines-0-discount_percent": "7", "lines-0-vat_rate": "",
        "lines-1-product": "", "lines-1-quantity": "",
    })
    contract = Contract.objects.get(title="网页合同")
    assert response.status_code == 302
    assert response["Location"] == url("contract_detail", contract.pk)
    assert str(contract.total) == "92.99" and str(contract.max_discount) == "0.0700"


def test_new_contract_form_shows_a_service_refusal(company, login, customers, catalog):
    response = login(company.rep_a).post(url("contract_new"), {
        "customer": customers.a.pk, "title": "x", "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0", "lines-0-product": catalog.box.pk,
        "lines-0-quantity": "0",
    })
    assert response.status_code == 200
    assert "Line 1: the quantity must be a number above zero." in response.content.decode()
    assert not Contract.objects.exists()


def test_customer_outside_the_scope_cannot_be_picked(company, login, customers, catalog):
    response = login(company.rep_a).post(url("contract_new"), {
        "customer": customers.b.pk, "title": "x", "lines-TOTAL_FORMS": "0",
        "lines-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200
    assert not Contract.objects.exists()


def test_roles_without_contract_edit_get_a_403_on_the_form(company, login):
    assert login(company.finance).get(url("contract_new")).status_code == 403
    assert login(company.operations).get(url("quote_new")).status_code == 403


def test_action_button_runs_the_transition(company, login, make_contract):
    contract = make_contract()
    client = login(company.rep_a)
    response = client.post(url("contract_action", contract.pk, "submit"))
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.status == "approved"
    # a refused action comes back as a message on the detail page
    response = client.post(url("contract_action", contract.pk, "sign"),
                           {"signed_on": timezone.localdate().isoformat()}, follow=True)
    assert "Your role does not allow this (Mark contracts signed, cancel them)." in \
        response.content.decode()
    contract.refresh_from_db()
    assert contract.status == "approved"


def test_action_on_a_contract_outside_the_scope_is_404(company, login, make_contract):
    contract = make_contract()
    assert login(company.rep_b).post(
        url("contract_action", contract.pk, "submit")).status_code == 404
    assert login(company.rep_a).post(
        url("contract_action", contract.pk, "explode")).status_code == 404


def test_sign_form_records_the_date(company, login, make_contract):
    contract = make_contract("approved")
    day = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    login(company.finance).post(url("contract_action", contract.pk, "sign"),
                                {"signed_on": day})
    contract.refresh_from_db()
    assert (contract.status, contract.signed_on.isoformat()) == ("signed", day)


def test_plan_and_receipt_forms(company, login, make_contract):
    contract = make_contract("signed")
    client = login(company.manager_a)
    t = timezone.localdate()
    bad = client.post(url("instalment_plan", contract.pk), {
        "rows": "2", "due_on_0": t.isoformat(), "amount_0": "100.00"})
    assert bad.status_code == 200
    assert "make them equal" in bad.content.decode()
    good = client.post(url("instalment_plan", contract.pk), {
        "rows": "2", "due_on_0": t.isoformat(), "amount_0": "1500.00",
        "due_on_1": (t + dt.timedelta(days=30)).isoformat(), "amount_1": "500.00"})
    assert good.status_code == 302
    assert contract.instalments.count() == 2

    over = client.post(url("receipt_new", contract.pk), {
        "amount": "2000.01", "received_on": t.isoformat(), "method": "bank"})
    assert over.status_code == 200
    assert "still due on the contract" in over.content.decode()
    ok = client.post(url("receipt_new", contract.pk), {
        "amount": "1600.00", "received_on": t.isoformat(), "method": "bank",
        "reference": "回单"})
    assert ok.status_code == 302
    contract.refresh_from_db()
    assert str(contract.collected) == "1600.00"


def test_receivables_page_per_persona(company, login, customers, make_contract):
    contract = make_contract("signed")
    svc.plan_instalments(actor=user_of(company.rep_a), contract=contract,
                         plan=[(timezone.localdate() - dt.timedelta(days=3), "2000.00")])
    other = make_contract("signed", customer=customers.b)
    for persona in (company.rep_a, company.manager_a, company.finance):
        response = login(persona).get(url("receivables"))
        assert response.status_code == 200
        assert contract.number in response.content.decode()
    body = login(company.rep_b).get(url("receivables")).content.decode()
    assert contract.number not in body and other.number in body
    overdue = login(company.finance).get(url("receivables") + "?overdue=1").content.decode()
    assert contract.number in overdue and other.number not in overdue


def test_quote_pages(company, login, customers, catalog):
    client = login(company.rep_a)
    assert client.get(url("quote_list")).status_code == 200
    assert client.get(url("quote_new")).status_code == 200
    response = client.post(url("quote_new"), {
        "customer": customers.a.pk, "valid_until": "", "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0", "lines-0-product": catalog.saas.pk,
        "lines-0-quantity": "2"})
    assert response.status_code == 302
    quote = Quote.objects.get()
    assert str(quote.total) == "2000.00"
    assert client.get(url("quote_detail", quote.pk)).status_code == 200
    assert login(company.rep_b).get(url("quote_detail", quote.pk)).status_code == 404
    converted = client.post(url("quote_action", quote.pk, "convert"))
    contract = Contract.objects.get(quote=quote)
    assert converted["Location"] == url("contract_detail", contract.pk)


def test_draft_can_be_edited_on_the_page(company, login, catalog, make_contract):
    contract = make_contract()
    client = login(company.rep_a)
    assert client.get(url("contract_edit", contract.pk)).status_code == 200
    response = client.post(url("contract_edit", contract.pk), {
        "customer": contract.customer_id, "title": "改过", "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0", "lines-0-product": catalog.box.pk,
        "lines-0-quantity": "1"})
    assert response.status_code == 302
    contract.refresh_from_db()
    assert (contract.title, str(contract.total)) == ("改过", "33.33")
    assert login(company.rep_b).get(url("contract_edit", contract.pk)).status_code == 404
