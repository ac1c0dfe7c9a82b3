import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import user_of
from weiying.api.tokens import issue_token
from weiying.org.models import Role
from weiying.pipeline.models import Contract, Receipt
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db

BASE = "/api/contracts"


def post(client, path, body=None):
    return client.post(BASE + path, body or {}, content_type="application/json")


def test_create_and_read_a_contract(company, login, customers, catalog):
    client = login(company.rep_a)
    response = post(client, "", {
        "customer_id": customers.a.pk, "title": "API 合同",
        "lines": [{"product_id": catalog.box.pk, "quantity": "3", "unit_price": "33.33",
                   "discount": "0.07", "vat_rate": "0.09"}],
    })
    assert response.status_code == 201
    body = response.json()
    assert body["number"].startswith("HT")
    assert (body["total"], body["total_net"], body["total_vat"]) == ("92.99", "85.31", "7.68")
    assert body["lines"][0]["amount"] == "92.99"
    assert body["allowed_actions"] == ["submit"]
    assert body["customer_name"] == "上海甲公司"
    again = client.get(f"{BASE}/{body['id']}").json()
    assert again["id"] == body["id"] and again["status"] == "draft"


def test_create_is_refused_with_clear_codes(company, login, customers, catalog):
    client = login(company.rep_a)
    hidden = post(client, "", {"customer_id": customers.b.pk, "title": "x"})
    assert hidden.status_code == 404
    bad_rate = post(client, "", {"customer_id": customers.a.pk, "title": "x", "lines": [
        {"product_id": catalog.box.pk, "quantity": "1", "vat_rate": "0.17"}]})
    assert bad_rate.status_code == 400
    assert bad_rate.json() == {
        "code": "invalid_vat_rate", "field": "lines.0.vat_rate",
        "message": "0.17 is not a VAT rate; use one of 0, 0.01, 0.03, 0.06, 0.09 or 0.13.",
    }
    no_title = post(client, "", {"customer_id": customers.a.pk, "title": ""})
    assert no_title.status_code == 422 and no_title.json()["code"] == "invalid"
    unknown = post(client, "", {"customer_id": customers.a.pk, "title": "x",
                                "lines": [{"product_id": 99999, "quantity": "1"}]})
    assert unknown.status_code == 400
    assert unknown.json()["field"] == "lines.0.product_id"
    assert post(login(company.finance), "", {"customer_id": customers.a.pk,
                                             "title": "x"}).status_code == 403
    assert Contract.objects.count() == 0


def test_list_is_scoped_filtered_and_paged(company, login, customers, make_contract):
    mine = [make_contract() for _ in range(3)]
    signed = make_contract("signed")
    make_contract(customer=customers.b)
    client = login(company.rep_a)
    first = client.get(f"{BASE}?size=2").json()
    second = client.get(f"{BASE}?size=2&cursor={first['next_cursor']}").json()
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert sorted(ids) == sorted([c.pk for c in mine] + [signed.pk])
    assert second["next_cursor"] is None
    only_signed = client.get(f"{BASE}?status=signed").json()["items"]
    assert [c["id"] for c in only_signed] == [signed.pk]
    assert len(login(company.rep_b).get(BASE).json()["items"]) == 1


def test_contract_outside_the_scope_is_404_everywhere(company, login, make_contract):
    contract = make_contract("signed")
    client = login(company.rep_b)
    assert client.get(f"{BASE}/{contract.pk}").status_code == 404
    assert post(client, f"/{contract.pk}/cancel", {"reason": "x"}).status_code == 404
    assert client.get(f"{BASE}/{contract.pk}/receipts").status_code == 404
    assert client.put(f"{BASE}/{contract.pk}/instalments", {"plan": [
        {"due_on": "2030-01-01", "amount": "2000.00"}]},
        content_type="application/json").status_code == 404


def test_transitions_through_the_api(company, login, make_contract):
    contract = make_contract()
    rep = login(company.rep_a)
    submitted = post(rep, f"/{contract.pk}/submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "approved"
    forbidden = post(rep, f"/{contract.pk}/sign", {"signed_on": "2026-01-05"})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    finance = login(company.finance)
    wrong = post(login(company.admin), f"/{contract.pk}/deliver",
                 {"delivered_on": timezone.localdate().isoformat()})
    assert wrong.status_code == 409
    assert wrong.json() == {"code": "invalid_transition",
                            "message": "This contract is approved; mark it signed first."}
    no_date = post(finance, f"/{contract.pk}/sign")
    assert no_date.status_code == 400 and no_date.json()["code"] == "date_required"
    signed = post(finance, f"/{contract.pk}/sign",
                  {"signed_on": timezone.localdate().isoformat()})
    assert signed.status_code == 200
    assert signed.json()["status"] == "signed"
    assert signed.json()["allowed_actions"] == ["cancel"]
    assert post(rep, f"/{contract.pk}/explode").status_code == 404


def test_plan_and_receipts_through_the_api(company, login, customers, make_contract):
    contract = make_contract("signed")
    manager = login(company.manager_a)
    t = timezone.localdate()
    mismatch = manager.put(f"{BASE}/{contract.pk}/instalments", {"plan": [
        {"due_on": t.isoformat(), "amount": "100.00"}]}, content_type="application/json")
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "plan_total_mismatch"
    plan = manager.put(f"{BASE}/{contract.pk}/instalments", {"plan": [
        {"due_on": t.isoformat(), "amount": "1000.00"},
        {"due_on": (t + dt.timedelta(days=30)).isoformat(), "amount": "1000.00"}]},
        content_type="application/json")
    assert plan.status_code == 200
    assert [i["seq"] for i in plan.json()] == [1, 2]

    body = {"amount": "1200.00", "received_on": t.isoformat(), "method": "bank",
            "external_id": "erp-900"}
    created = post(manager, f"/{contract.pk}/receipts", body)
    assert created.status_code == 201
    repeat = post(manager, f"/{contract.pk}/receipts", body)
    assert repeat.status_code == 200 and repeat.json()["id"] == created.json()["id"]
    over = post(manager, f"/{contract.pk}/receipts",
                {"amount": "800.01", "received_on": t.isoformat(), "method": "bank"})
    assert over.status_code == 400
    assert over.json()["code"] == "receipt_exceeds_due"
    assert over.json()["message"] == (
        "This receipt of ¥800.01 is more than the ¥800.00 still due on the contract; record "
        "at most that.")
    assert Receipt.objects.count() == 1
    listed = manager.get(f"{BASE}/{contract.pk}/receipts").json()["items"]
    assert [r["amount"] for r in listed] == ["1200.00"]
    detail = manager.get(f"{BASE}/{contract.pk}").json()
    assert [i["collected"] for i in detail["instalments"]] == ["1000.00", "200.00"]
    assert detail["collected"] == "1200.00" and detail["outstanding"] == "800.00"
    # a rep may not record receipts
    rep = login(company.rep_a)
    assert post(rep, f"/{contract.pk}/receipts", {
        "amount": "1.00", "received_on": t.isoformat(), "method": "bank"}).status_code == 403


def test_quotes_through_the_api(company, login, customers, catalog):
    client = login(company.rep_a)
    created = post(client, "/quotes", {"customer_id": customers.a.pk, "lines": [
        {"product_id": catalog.saas.pk, "quantity": "1", "discount": "0.05"}]})
    assert created.status_code == 201
    quote = created.json()
    assert quote["number"].startswith("BJ") and quote["total"] == "950.00"
    assert quote["allowed_actions"] == ["send", "convert"]
    assert client.get(f"{BASE}/quotes").json()["items"][0]["id"] == quote["id"]
    assert login(company.rep_b).get(f"{BASE}/quotes/{quote['id']}").status_code == 404
    sent = post(client, f"/quotes/{quote['id']}/send")
    assert sent.status_code == 200 and sent.json()["status"] == "sent"
    converted = post(client, f"/quotes/{quote['id']}/convert", {"title": "来自报价"})
    assert converted.status_code == 201
    assert converted.json()["title"] == "来自报价"
    assert converted.json()["quote_id"] == quote["id"]
    again = post(client, f"/quotes/{quote['id']}/convert")
    assert again.status_code == 409 and again.json()["code"] == "quote_already_converted"


def test_receivables_api(company, login, customers, make_contract):
    contract = make_contract("signed")
    t = timezone.localdate()
    svc.plan_instalments(actor=user_of(company.rep_a), contract=contract, plan=[
        (t - dt.timedelta(days=2), "1500.00"), (t + dt.timedelta(days=5), "500.00")])
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="400.00",
                       received_on=t, method="bank")
    body = login(company.manager_a).get(f"{BASE}/receivables").json()
    assert (body["total"], body["collected"], body["due"], body["overdue"]) == (
        "2000.00", "400.00", "1500.00", "1100.00")
    assert body["items"][0]["next_due_on"] == (t + dt.timedelta(days=5)).isoformat()
    assert body["customers"][0]["overdue"] == "1100.00"
    assert login(company.rep_b).get(f"{BASE}/receivables").json()["items"] == []


def test_api_token_with_a_rep_role_is_scoped(company, customers, make_contract):
    contract = make_contract()
    _token, raw = issue_token(actor=user_of(company.admin), name="ERP",
                              user=user_of(company.rep_b), role=Role.objects.get(code="rep"))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{BASE}/{contract.pk}").status_code == 404
    assert client.get(BASE).json()["items"] == []


def test_openapi_documents_every_transition(company, login):
    paths = login(company.admin).get("/api/openapi.json").json()["paths"]
    for action in svc.TRANSITIONS:
        assert f"/api/contracts/{{contract_id}}/{action}" in paths
    assert "/api/contracts/quotes/{quote_id}/convert" in paths
    assert "/api/contracts/products" in paths
