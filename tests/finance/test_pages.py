from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.conftest import user_of
from tests.finance.desk import booked_fixture  # noqa: F401 - the fixture
from tests.pipeline.contracts.conftest import make_customer
from weiying.finance import bank, services
from weiying.finance.models import BankLine, Invoice, MarketingSpend, Period, Refund, Voucher
from weiying.pipeline.models import Receipt
from weiying.pipeline.services import contracts as svc

D = Decimal

REPORTS = ["finance:overview", "finance:bridge", "finance:revenue", "finance:ageing",
           "finance:liabilities", "finance:invoiced_not_collected", "finance:marketing",
           "finance:voucher_list", "finance:period_list", "finance:invoice_list"]
POSTING = ["finance:voucher_new", "finance:bank_queue", "finance:bank_import"]


NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def _urls(booked):
    voucher = Voucher.objects.filter(contract=booked).first()
    return [reverse(n) for n in REPORTS + POSTING] + [
        reverse("finance:voucher_detail", args=[voucher.pk]),
        reverse("finance:invoice_new", args=[booked.pk]),
        reverse("finance:refund_new", args=[booked.pk]),
    ]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_page_renders_for_finance(company, booked, login, language):
    client = login(company.finance, language=language)
    for url in _urls(booked):
        response = client.get(url, NOV)
        assert response.status_code == 200, url
        assert f'lang="{language}"' in response.content.decode()
    text = client.get(reverse("finance:bridge"), NOV).content.decode()
    assert ("现金" if language == "zh-hans" else "Cash collected") in text


def test_a_rep_is_refused_every_finance_page(company, booked, login):
    client = login(company.rep_a)
    for url in _urls(booked):
        response = client.get(url)
        assert response.status_code == 403, url
    assert client.post(reverse("finance:period_close"), {"year": 2026, "month": 11}
                       ).status_code == 403
    assert not Period.objects.filter(status="closed").exists()


def test_the_finance_link_is_in_the_navigation_only_for_viewers(company, login):
    url = reverse("finance:overview")
    assert url in login(company.finance).get("/").content.decode()
    assert url in login(company.manager_a).get("/").content.decode()
    assert url not in login(company.rep_a).get("/").content.decode()


def test_the_bridge_page_shows_both_sides_and_a_zero_difference(company, booked, login):
    response = login(company.finance).get(reverse("finance:bridge"), NOV)
    b = response.context["bridge"]
    # 3,390.00 received = 10,000.00 revenue + 1,300.00 VAT − 7,910.00 receivable increase.
    assert (b.cash, b.revenue, b.output_vat, b.receivable_increase) == (
        D("3390.00"), D("10000.00"), D("1300.00"), D("7910.00"))
    assert b.difference == 0 and b.sales_cash == D("3390.00")
    text = response.content.decode()
    assert "¥3,390.00" in text and "¥10,000.00" in text and "¥7,910.00" in text
    assert 'data-item="difference"><span class="badge ok">¥0.00' in text


def test_a_manager_sees_only_their_subtree(company, booked, login, deal, products):
    other = make_customer("北京乙公司", company.rep_b)
    theirs = svc.create_contract(actor=user_of(company.rep_b), customer=other, title="北京",
                                 lines=[{"product": products.box, "quantity": "1",
                                         "unit_price": "1130.00"}])
    theirs = svc.submit_contract(actor=user_of(company.rep_b), contract=theirs)
    if theirs.status == "pending_approval":
        theirs = svc.approve_contract(actor=user_of(company.manager_b), contract=theirs)
    theirs = svc.sign_contract(actor=user_of(company.finance), contract=theirs,
                               signed_on=dt.date(2026, 11, 3))
    svc.record_receipt(actor=user_of(company.finance), contract=theirs, amount="100.00",
                       received_on=dt.date(2026, 11, 4), method="bank")
    mine = login(company.manager_a).get(reverse("finance:bridge"), NOV).context["bridge"]
    assert mine.cash == D("3390.00")
    north = login(company.manager_b).get(reverse("finance:bridge"), NOV)
    assert north.context["bridge"].cash == D("100.00")
    assert north.context["bridge"].difference == 0
    ageing = login(company.manager_b).get(reverse("finance:ageing"))
    assert booked.number not in ageing.content.decode()
    assert booked.number in login(company.manager_a).get(reverse("finance:ageing")).content \
        .decode()
    # the department picker offers only the manager's own subtree
    picker = north.context["form"].fields["department"].queryset
    assert set(picker) == {company.team_b}
    vouchers = login(company.manager_b).get(reverse("finance:voucher_list"))
    assert all(v.contract_id == theirs.pk for v in vouchers.context["state"].page.items)
    detail = reverse("finance:voucher_detail",
                     args=[Voucher.objects.filter(contract=booked).first().pk])
    assert login(company.manager_b).get(detail).status_code == 404


def test_revenue_grouped_by_rep_and_product(company, booked, login):
    client = login(company.finance)
    rows = client.get(reverse("finance:revenue"), {**NOV, "by": "owner"}).context["rows"]
    assert [(r["label"], r["revenue"], r["cost"]) for r in rows] == [
        (company.rep_a.name, D("10000.00"), D("6000.00"))]
    rows = client.get(reverse("finance:revenue"), {**NOV, "by": "product"}).context["rows"]
    assert rows[0]["label"] == "智能柜" and rows[0]["margin"] == D("4000.00")


def test_invoiced_and_liability_pages(company, booked, login):
    client = login(company.finance)
    rows = client.get(reverse("finance:invoiced_not_collected")).context["rows"]
    assert [(r["invoiced"], r["collected"], r["outstanding"]) for r in rows] == [
        (D("5000.00"), D("3390.00"), D("1610.00"))]
    assert client.get(reverse("finance:liabilities")).context["rows"] == []


def test_manual_voucher_errors_are_shown_and_nothing_posted(company, login):
    client = login(company.finance)
    before = Voucher.objects.count()
    response = client.post(reverse("finance:voucher_new"), {
        "on": "2026-12-01", "summary": "调整", "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0", "lines-0-account": "1002", "lines-0-debit": "100.00",
        "lines-1-account": "6601", "lines-1-credit": "90.00"})
    assert response.status_code == 400
    assert "¥10.00" in response.content.decode()
    assert Voucher.objects.count() == before


def test_manual_voucher_posted_then_reversed(company, login):
    client = login(company.finance)
    response = client.post(reverse("finance:voucher_new"), {
        "on": "2026-12-01", "summary": "调整", "lines-TOTAL_FORMS": "2",
        "lines-INITIAL_FORMS": "0", "lines-0-account": "6601", "lines-0-debit": "100.00",
        "lines-1-account": "1002", "lines-1-credit": "100.00"})
    voucher = Voucher.objects.get(is_manual=True)
    assert response.status_code == 302
    assert [(e.account.code, e.debit, e.credit) for e in voucher.entries.all()] == [
        ("6601", D("100.00"), D("0.00")), ("1002", D("0.00"), D("100.00"))]
    client.post(reverse("finance:voucher_reverse", args=[voucher.pk]),
                {"on": "2026-12-02", "reason": "录错"})
    reversal = Voucher.objects.get(reverses=voucher)
    assert [(e.debit, e.credit) for e in reversal.entries.all()] == [
        (D("0.00"), D("100.00")), (D("100.00"), D("0.00"))]
    again = client.post(reverse("finance:voucher_reverse", args=[voucher.pk]),
                        {"on": "2026-12-02", "reason": "again"}, follow=True)
    assert Voucher.objects.filter(reverses=voucher).count() == 1
    assert voucher.number in again.content.decode()


def test_the_close_button_closes_the_month(company, booked, login):
    client = login(company.finance)
    page = client.get(reverse("finance:period_list"))
    assert page.context["next_close"].month == 11
    response = client.post(reverse("finance:period_close"), {"year": "2026", "month": "11"},
                           follow=True)
    assert Period.objects.get(year=2026, month=11).is_closed
    assert "2026-11" in response.content.decode()
    again = client.post(reverse("finance:period_close"), {"year": "2026", "month": "11"},
                        follow=True)
    assert "2026-11" in again.content.decode()
    assert Period.objects.filter(status="closed").count() == 1


def test_the_contract_page_shows_the_finance_block_to_finance_only(company, booked, login):
    url = reverse("pipeline:contract_detail", args=[booked.pk])
    text = login(company.finance).get(url).content.decode()
    assert reverse("finance:invoice_new", args=[booked.pk]) in text
    assert reverse("finance:refund_new", args=[booked.pk]) in text
    assert "¥5,000.00" in text and "¥11,300.00" in text  # invoiced, recognised
    manager = login(company.manager_a).get(url).content.decode()
    assert "finance-block" in manager and reverse("finance:refund_new", args=[booked.pk]) \
        not in manager
    assert "finance-block" not in login(company.rep_a).get(url).content.decode()


def test_invoice_issued_and_voided_from_the_pages(company, booked, login):
    client = login(company.finance)
    too_much = client.post(reverse("finance:invoice_new", args=[booked.pk]), {
        "number": "FP0002", "kind": "ordinary", "issued_on": "2026-11-20",
        "gross": "6300.01", "vat_rate": "0.13"})
    assert too_much.status_code == 400 and "¥6,300.00" in too_much.content.decode()
    client.post(reverse("finance:invoice_new", args=[booked.pk]), {
        "number": "FP0002", "kind": "ordinary", "issued_on": "2026-11-20",
        "gross": "6300.00", "vat_rate": "0.13"})
    invoice = Invoice.objects.get(number="FP0002")
    assert (invoice.net, invoice.vat) == (D("5575.22"), D("724.78"))
    client.post(reverse("finance:invoice_void", args=[invoice.pk]), {"reason": "开错"})
    invoice.refresh_from_db()
    assert invoice.status == "voided"


def test_refund_form_refuses_more_than_the_advance(company, deal, products, login):
    contract = deal([{"product": products.setup, "quantity": "1", "unit_price": "5000.00"}],
                    signed_on=dt.date(2026, 11, 2))
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="2000.00",
                       received_on=dt.date(2026, 11, 5), method="bank")
    client = login(company.finance)
    url = reverse("finance:refund_new", args=[contract.pk])
    refused = client.post(url, {"amount": "2000.01", "refunded_on": "2026-11-20",
                                "reason": "退"})
    assert refused.status_code == 400 and "¥2,000.00" in refused.content.decode()
    assert client.post(url, {"amount": "500.00", "refunded_on": "2026-11-20",
                             "reason": "退"}).status_code == 302
    assert Refund.objects.get().amount == D("500.00")


def test_marketing_spend_entered_and_imported(company, booked, login):
    client = login(company.finance)
    url = reverse("finance:marketing")
    client.post(url, {"channel": "展会", "spent_on": "2026-11-10", "amount": "1200.00"})
    upload = io.BytesIO("渠道,日期,金额,编号\n广告,2026-11-11,300.50,S1\n展会,2026-11-12,99.50,S2\n"
                        .encode("utf-8-sig"))
    upload.name = "spend.csv"
    client.post(url, {"file": upload})
    assert MarketingSpend.objects.filter(channel="展会").count() == 2
    rows = {r.channel: r for r in client.get(url, NOV).context["rows"]}
    assert rows["展会"].spend == D("1299.50") and rows["广告"].spend == D("1100.50")
    bad = io.BytesIO("渠道,日期,金额\n广告,昨天,1\n".encode())
    bad.name = "bad.csv"
    count = MarketingSpend.objects.count()
    response = client.post(url, {"file": bad}, follow=True)
    assert MarketingSpend.objects.count() == count
    assert "2" in "".join(str(m) for m in response.context["messages"])


def test_bank_pages_import_match_and_refuse(company, booked, login):
    client = login(company.finance)
    csv_text = ("交易日期,贷方金额,对方户名,摘要,交易流水号\n"
                "2026-11-20,100.00,某人,,P1\n2026-11-20,9000.00,某人,,P2\n")
    upload = io.BytesIO(csv_text.encode())
    upload.name = "s.csv"
    response = client.post(reverse("finance:bank_import"), {"file": upload})
    assert response.status_code == 200 and response.context["report"].new == 2
    queue = client.get(reverse("finance:bank_queue"))
    assert [x.bank_ref for x in queue.context["state"].page.items] == ["P1", "P2"]
    big = BankLine.objects.get(bank_ref="P2")
    refused = client.post(reverse("finance:bank_match", args=[big.pk]),
                          {"contract": booked.number})
    assert refused.status_code == 400 and "¥7,910.00" in refused.content.decode()
    assert not Receipt.objects.filter(external_id="bank:P2").exists()
    small = BankLine.objects.get(bank_ref="P1")
    ok = client.post(reverse("finance:bank_match", args=[small.pk]),
                     {"contract": booked.number})
    assert ok.status_code == 302
    assert Receipt.objects.get(external_id="bank:P1").amount == D("100.00")
    client.post(reverse("finance:bank_ignore", args=[big.pk]), {"note": "退回"})
    assert BankLine.objects.get(bank_ref="P2").status == "ignored"
    bad = io.BytesIO("交易日期,贷方金额,交易流水号\n2026-11-20,abc,P9\n".encode())
    bad.name = "bad.csv"
    refused_file = client.post(reverse("finance:bank_import"), {"file": bad})
    assert refused_file.status_code == 400
    assert "贷方金额" in refused_file.content.decode()
    assert not BankLine.objects.filter(bank_ref="P9").exists()


def test_a_line_waits_then_appears_on_the_overview(company, login):
    bank.receive_lines([{"date": "2026-11-20", "amount": "1.00", "bank_ref": "W1"}],
                       actor=user_of(company.finance))
    assert login(company.finance).get(reverse("finance:overview")).context["waiting"] == 1


def test_spend_rows_are_listed_within_the_viewers_departments(company, booked, login):
    services.record_marketing_spend(actor=user_of(company.finance), channel="展会",
                                    spent_on=dt.date(2026, 11, 4), amount="10.00",
                                    department=company.team_b)
    url = reverse("finance:marketing")
    everyone = login(company.finance).get(url, NOV).context["recent"]
    assert sorted(s.channel for s in everyone) == ["展会", "广告"]
    north = login(company.manager_b).get(url, NOV).context["recent"]
    assert [s.channel for s in north] == ["展会"]
    assert list(login(company.manager_a).get(url, NOV).context["recent"]) == []
