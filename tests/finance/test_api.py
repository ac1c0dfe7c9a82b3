from __future__ import annotations

from django.test import Client

from tests.conftest import user_of
from tests.finance.desk import booked_fixture  # noqa: F401 - the fixture
from weiying.api.tokens import issue_token
from weiying.finance.models import BankLine
from weiying.org.models import Role
from weiying.pipeline.models import Receipt

BASE = "/api/finance"
NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def test_bridge_as_json_with_money_as_strings(company, booked, login):
    data = login(company.finance).get(f"{BASE}/bridge", NOV).json()
    assert (data["cash"], data["revenue"], data["output_vat"]) == ("3390.00", "10000.00",
                                                                   "1300.00")
    assert data["receivable_increase"] == "7910.00"
    assert data["difference"] == "0.00" and data["sales_cash"] == "3390.00"
    assert len(data["items"]) == 5 and data["items"][2]["amount"] == "-7910.00"


def test_bridge_for_a_department_outside_the_scope_is_404(company, booked, login):
    client = login(company.manager_b)
    response = client.get(f"{BASE}/bridge", {**NOV, "department_id": company.team_a.pk})
    assert response.status_code == 404
    assert client.get(f"{BASE}/bridge", NOV).json()["cash"] == "0.00"
    mine = login(company.manager_a).get(f"{BASE}/bridge",
                                        {**NOV, "department_id": company.team_a.pk})
    assert mine.json()["cash"] == "3390.00"


def test_revenue_and_ageing(company, booked, login):
    client = login(company.finance)
    rows = client.get(f"{BASE}/revenue", {**NOV, "by": "owner"}).json()["rows"]
    assert rows == [{"key": company.rep_a.pk, "label": company.rep_a.name,
                     "revenue": "10000.00", "output_vat": "1300.00", "cost": "6000.00",
                     "margin": "4000.00", "margin_rate": "0.4000"}]
    bad = client.get(f"{BASE}/revenue", {"by": "colour"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_group"
    ageing = client.get(f"{BASE}/ageing", {"as_of": "2026-11-30"}).json()
    assert ageing["totals"]["0-30"] == "7910.00"
    assert ageing["rows"][0]["contract_number"] == booked.number


def test_vouchers_with_entries_balance(company, booked, login):
    data = login(company.finance).get(f"{BASE}/vouchers", {"period": "2026-11"}).json()
    assert len(data["items"]) == 3
    for voucher in data["items"]:
        debit = sum(int(e["debit"].replace(".", "")) for e in voucher["entries"])
        credit = sum(int(e["credit"].replace(".", "")) for e in voucher["entries"])
        assert debit == credit > 0
    assert [v["on"] for v in data["items"]] == sorted(v["on"] for v in data["items"])
    (receipt,) = [v for v in data["items"] if v["source"] == "receipt"]
    first = receipt["entries"][0]
    assert (first["account_code"], first["debit"]) == ("1002", "3390.00")


def test_a_rep_gets_403(company, booked, login):
    client = login(company.rep_a)
    assert client.get(f"{BASE}/bridge").status_code == 403
    assert client.get(f"{BASE}/vouchers").status_code == 403
    response = client.post(f"{BASE}/bank-lines", {"lines": [
        {"bank_ref": "R1", "date": "2026-11-20", "amount": "1.00"}]},
        content_type="application/json")
    assert response.status_code == 403 and not BankLine.objects.exists()


def test_a_bank_connector_posts_lines_idempotently(company, booked):
    _token, raw = issue_token(actor=user_of(company.admin), name="银行直连",
                              user=user_of(company.finance),
                              role=Role.objects.get(code="finance"))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"lines": [
        {"bank_ref": "C-1", "date": "2026-11-20", "amount": "1000.00", "payer": "上海甲公司",
         "memo": f"货款{booked.number}"},
        {"bank_ref": "C-2", "date": "2026-11-20", "amount": "-30.00", "memo": "手续费"},
        {"bank_ref": "C-3", "date": "2026-11-21", "amount": "5.00", "payer": "某人"},
    ]}
    first = client.post(f"{BASE}/bank-lines", body, content_type="application/json")
    assert first.status_code == 200, first.content
    assert {k: first.json()[k] for k in ("credit", "debit_skipped", "new", "matched",
                                         "unmatched")} == {
        "credit": 2, "debit_skipped": 1, "new": 2, "matched": 1, "unmatched": 1}
    again = client.post(f"{BASE}/bank-lines", body, content_type="application/json").json()
    assert (again["new"], again["already_imported"], again["statement_id"]) == (0, 2, None)
    assert Receipt.objects.filter(external_id="bank:C-1").count() == 1
    assert BankLine.objects.count() == 2


def test_a_bad_line_refuses_the_whole_request(company, booked, login):
    client = login(company.finance)
    response = client.post(f"{BASE}/bank-lines", {"lines": [
        {"bank_ref": "D-1", "date": "2026-11-20", "amount": "1.00"},
        {"bank_ref": "D-2", "date": "2026-11-20", "amount": "1.001"}]},
        content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_lines"
    assert response.json()["field"] == "lines.2.amount"
    assert not BankLine.objects.exists()
