"""The domain's worked examples, with the figures computed by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.conftest import user_of
from tests.finance.conftest import balances, obligations
from weiying.core.errors import ValidationFailed
from weiying.core.money import split_vat
from weiying.finance import close, services
from weiying.finance.models import Entry, Voucher
from weiying.finance.recognition import service_parts
from weiying.pipeline.services import contracts as svc

D = Decimal
TODAY = dt.date(2026, 12, 3)


@pytest.mark.parametrize(("gross", "rate", "net", "vat"), [
    # 100.00 / 1.13 = 88.4955… → 88.50; VAT 11.50
    ("100.00", "0.13", "88.50", "11.50"),
    # 0.01 / 1.09 = 0.00917… → 0.01; VAT 0.00
    ("0.01", "0.09", "0.01", "0.00"),
    # 1.06 / 1.06 = 1.00 exactly; VAT 0.06
    ("1.06", "0.06", "1.00", "0.06"),
    # 33.33 / 1.06 = 31.4434… → 31.44; VAT 1.89
    ("33.33", "0.06", "31.44", "1.89"),
    # 101.00 / 1.01 = 100.00; VAT 1.00
    ("101.00", "0.01", "100.00", "1.00"),
    # 0.05 / 1.01 = 0.04950… → 0.05 (half-up at the fen); VAT 0.00
    ("0.05", "0.01", "0.05", "0.00"),
    # 99999.99 / 1.13 = 88495.5663… → 88495.57; VAT 11504.42
    ("99999.99", "0.13", "88495.57", "11504.42"),
    # 2.15 / 1.09 = 1.97247… → 1.97; VAT 0.18
    ("2.15", "0.09", "1.97", "0.18"),
])
def test_vat_split_on_awkward_amounts(gross, rate, net, vat):
    assert split_vat(D(gross), D(rate)) == (D(net), D(vat))
    assert D(net) + D(vat) == D(gross)


def test_twelve_month_service_from_mid_month_spreads_by_day():
    # 12,000.00 from 15 Jan 2026 to 14 Jan 2027: 365 days.
    parts = service_parts(D("12000.00"), dt.date(2026, 1, 15), dt.date(2027, 1, 14))
    days = [17, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 14]
    assert sum(days) == 365
    # Jan: 12000 × 17 / 365 = 558.904… → 558.90; Feb: × 28 = 920.547… → 920.55;
    # 31-day months: 1019.178… → 1019.18; 30-day months: 986.301… → 986.30.
    expected = [D("558.90"), D("920.55"), D("1019.18"), D("986.30"), D("1019.18"),
                D("986.30"), D("1019.18"), D("1019.18"), D("986.30"), D("1019.18"),
                D("986.30"), D("1019.18")]
    # The last month, 14 days, takes the remainder: 12000 − 11539.73 = 460.27
    # (14 days at the daily rate would be 460.274 → 460.27; no drift).
    assert [p for _ym, p in parts[:12]] == expected
    assert parts[12] == ((2027, 1), D("460.27"))
    assert sum(p for _ym, p in parts) == D("12000.00")


def test_discounted_bundle_is_allocated_by_standalone_price(company, products, deal):
    # Standalone prices: box 1,130.00 × 2 = 2,260.00, SaaS 12,000.00, setup 5,000.00; total
    # 19,260.00. Sold for 15,000.00 (the SaaS discounted to 7,740.00).
    contract = deal([
        {"product": products.box, "quantity": "2", "unit_price": "1130.00"},
        {"product": products.saas, "quantity": "1", "unit_price": "7740.00"},
        {"product": products.setup, "quantity": "1", "unit_price": "5000.00"},
    ], signed_on=dt.date(2026, 1, 10), start_on=dt.date(2026, 1, 15),
        end_on=dt.date(2027, 1, 14))
    assert contract.total == D("15000.00")
    obs = obligations(contract)
    # box: 15000 × 2260 / 19260 = 1760.1246… → 1760.12
    # SaaS: 15000 × 12000 / 19260 = 9345.7943… → 9345.79
    # setup: the remainder 15000 − 1760.12 − 9345.79 = 3894.09
    assert [o.gross for o in obs] == [D("1760.12"), D("9345.79"), D("3894.09")]
    # Each at its own rate: 1760.12 / 1.13 = 1557.6283 → 1557.63, VAT 202.49;
    # 9345.79 / 1.06 = 8816.7830 → 8816.78, VAT 529.01; 3894.09 / 1.06 = 3673.6698 → 3673.67,
    # VAT 220.42.
    assert [(o.net, o.vat) for o in obs] == [
        (D("1557.63"), D("202.49")), (D("8816.78"), D("529.01")), (D("3673.67"), D("220.42"))]
    assert [o.fulfilment for o in obs] == ["goods", "service", "milestone"]
    assert (obs[1].start_on, obs[1].end_on) == (dt.date(2026, 1, 15), dt.date(2027, 1, 14))


def test_advance_then_partial_delivery_then_acceptance(company, products, deal):
    # 10 boxes at 1,130.00 = 11,300.00 (net 10,000.00, VAT 1,300.00), standard cost 600 each.
    contract = deal([{"product": products.box, "quantity": "10", "unit_price": "1130.00"}],
                    signed_on=dt.date(2026, 3, 2))
    finance = user_of(company.finance)
    # An advance of 3,390.00: bank 3,390.00 = contract liability 3,000.00 + pending VAT 390.00
    svc.record_receipt(actor=finance, contract=contract, amount="3390.00",
                       received_on=dt.date(2026, 3, 5), method="bank")
    b = balances(contract)
    assert (b["bank"], b["contract_liability"], b["pending_vat"]) == (
        D("3390.00"), D("3000.00"), D("390.00"))
    assert b["revenue"] == 0
    # 4 of 10 accepted through a delivery order: 11,300 × 4/10 = 4,520.00 recognised
    # (revenue 4,000.00, output VAT 520.00). The advance covers 3,390.00 of it (CL 3,000.00,
    # pending VAT 390.00 released) and 1,130.00 becomes a receivable. Cost 4 × 600 = 2,400.00.
    line = contract.lines.get()
    services.post_acceptance(contract.pk, key="delivery_order:test-1:accepted",
                             accepted_on=dt.date(2026, 3, 20), quantities={line.pk: D("4")})
    b = balances(contract)
    assert (b["revenue"], b["output_vat"]) == (D("4000.00"), D("520.00"))
    assert (b["contract_liability"], b["pending_vat"], b["receivable"]) == (
        D("0.00"), D("0.00"), D("1130.00"))
    assert b["cost"] == D("2400.00")
    # The rest accepted with the contract: 6,780.00 more, all receivable.
    svc.record_delivery(actor=user_of(company.operations), contract=contract,
                        delivered_on=dt.date(2026, 3, 20))
    svc.record_acceptance(actor=user_of(company.operations), contract=contract,
                          accepted_on=dt.date(2026, 4, 8))
    b = balances(contract)
    assert (b["revenue"], b["output_vat"], b["receivable"]) == (
        D("10000.00"), D("1300.00"), D("7910.00"))
    assert b["cost"] == D("6000.00")
    # Payment of the receivable: bank 7,910.00 against receivable 7,910.00.
    svc.record_receipt(actor=finance, contract=contract, amount="7910.00",
                       received_on=dt.date(2026, 4, 30), method="bank")
    b = balances(contract)
    assert (b["bank"], b["receivable"]) == (D("11300.00"), D("0.00"))
    # Every voucher balances, and the journal agrees with the subledger.
    for voucher in Voucher.objects.filter(contract=contract):
        entries = list(voucher.entries.all())
        assert sum(e.debit for e in entries) == sum(e.credit for e in entries) > 0
    revenue = Entry.objects.filter(contract=contract, account__role="revenue")
    assert sum(e.credit - e.debit for e in revenue) == D("10000.00")


def test_service_month_close_recognises_by_day(company, products, deal):
    contract = deal([{"product": products.saas, "quantity": "1", "unit_price": "12000.00"}],
                    signed_on=dt.date(2026, 1, 10), start_on=dt.date(2026, 1, 15),
                    end_on=dt.date(2027, 1, 14))
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="12000.00",
                       received_on=dt.date(2026, 1, 12), method="bank")
    finance = user_of(company.finance)
    result = close.close_period(actor=finance, year=2026, month=1, today=TODAY)
    # January's 17 days: 558.90 gross; VAT = 679.25 × 558.90 / 12000 = 31.6355… → 31.64;
    # 12000 / 1.06 = 11320.75, VAT 679.25.
    assert (result.revenue, result.output_vat) == (D("527.26"), D("31.64"))
    b = balances(contract)
    assert b["contract_liability"] + b["pending_vat"] == D("12000.00") - D("558.90")
    close.close_period(actor=finance, year=2026, month=2, today=TODAY)
    b = balances(contract)
    assert b["revenue"] + b["output_vat"] == D("558.90") + D("920.55")
    # A closed month refuses a second close and nothing is written.
    vouchers = Voucher.objects.count()
    with pytest.raises(Exception) as exc:
        close.close_period(actor=finance, year=2026, month=2, today=TODAY)
    assert exc.value.code == "period_closed"
    assert Voucher.objects.count() == vouchers


def test_cancellation_with_a_refund(company, products, deal):
    contract = deal([{"product": products.setup, "quantity": "1", "unit_price": "5000.00"}],
                    signed_on=dt.date(2026, 5, 6))
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=contract, amount="2000.00",
                       received_on=dt.date(2026, 5, 8), method="bank")
    # 2000 / 1.06 → VAT inside it: 283.02 × 2000 / 5000 = 113.208 → 113.21
    b = balances(contract)
    assert (b["contract_liability"], b["pending_vat"]) == (D("1886.79"), D("113.21"))
    svc.cancel_contract(actor=user_of(company.manager_a), contract=contract, reason="客户撤单")
    # The advance is now owed back: refund payable 2,000.00, the liability and pending VAT gone.
    b = balances(contract)
    assert (b["contract_liability"], b["pending_vat"], b["refund_payable"]) == (
        D("0.00"), D("0.00"), D("2000.00"))
    (ob,) = obligations(contract)
    assert (ob.status, ob.released_gross, ob.recognised_gross) == ("cancelled", D("5000.00"), 0)
    # More than is owed back is refused and changes nothing.
    with pytest.raises(ValidationFailed) as exc:
        services.record_refund(actor=finance, contract=contract, amount="2000.01",
                               refunded_on=dt.date(2026, 5, 20), reason="退款")
    assert exc.value.code == "refund_exceeds_advance"
    assert balances(contract)["bank"] == D("2000.00")
    services.record_refund(actor=finance, contract=contract, amount="2000.00",
                           refunded_on=dt.date(2026, 5, 20), reason="退款")
    b = balances(contract)
    assert (b["bank"], b["refund_payable"]) == (D("0.00"), D("0.00"))
    contract.refresh_from_db()
    assert contract.collected == D("0.00")


def test_bridge_holds_to_the_fen_for_the_company_and_each_slice(company, products, deal):
    from weiying.finance import reports

    finance = user_of(company.finance)
    contract = deal([
        {"product": products.box, "quantity": "3", "unit_price": "1130.00"},
        {"product": products.saas, "quantity": "1", "unit_price": "9999.99"},
    ], signed_on=dt.date(2026, 6, 3), start_on=dt.date(2026, 6, 17), end_on=dt.date(2027, 6, 16))
    svc.record_receipt(actor=finance, contract=contract, amount="5000.01",
                       received_on=dt.date(2026, 6, 20), method="bank")
    svc.record_delivery(actor=user_of(company.operations), contract=contract,
                        delivered_on=dt.date(2026, 6, 21))
    svc.record_acceptance(actor=user_of(company.operations), contract=contract,
                          accepted_on=dt.date(2026, 6, 25))
    for month in (6, 7, 8):
        close.close_period(actor=finance, year=2026, month=month, today=TODAY)
    start, end = dt.date(2026, 6, 1), dt.date(2026, 8, 31)
    company_view = reports.bridge(finance, start, end)
    # Cash 5,000.01 = revenue + VAT − increase in receivables + increase in liabilities.
    assert company_view.cash == D("5000.01")
    assert company_view.difference == 0
    assert company_view.sales_cash == D("5000.01") and company_view.timing == 0
    assert company_view.revenue > 0 and company_view.receivable_increase > 0
    for where in (reports.Slice(product=products.box), reports.Slice(product=products.saas),
                  reports.Slice(department=company.team_a), reports.Slice(owner=company.rep_a)):
        view = reports.bridge(finance, start, end, where)
        assert view.difference == 0, where
    parts = [reports.bridge(finance, start, end, reports.Slice(product=p))
             for p in (products.box, products.saas)]
    assert sum(p.cash for p in parts) == company_view.cash
    assert sum(p.revenue for p in parts) == company_view.revenue
    # Another team's manager sees none of it.
    assert reports.bridge(user_of(company.manager_b), start, end).cash == 0
