"""Opening the books from history books the same as the events did, and closes the months."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.conftest import user_of
from weiying.finance import reports
from weiying.finance.backfill import backfill
from weiying.finance.models import Entry, Movement, MovementMonth, Obligation, Period, Voucher
from weiying.pipeline.services import contracts as svc

TODAY = dt.date(2026, 12, 3)


def _wipe_books() -> None:
    Entry.objects.all().delete()
    MovementMonth.objects.all().delete()
    Movement.objects.all().delete()
    Voucher.objects.all().delete()
    Obligation.objects.all().delete()
    Period.objects.all().delete()


def _history(company, products, deal):
    finance, ops = user_of(company.finance), user_of(company.operations)
    goods = deal([{"product": products.box, "quantity": "4", "unit_price": "1130.00"}],
                 signed_on=dt.date(2026, 2, 3))
    svc.record_receipt(actor=finance, contract=goods, amount="1000.00",
                       received_on=dt.date(2026, 2, 10), method="bank")
    svc.record_delivery(actor=ops, contract=goods, delivered_on=dt.date(2026, 3, 1))
    svc.record_acceptance(actor=ops, contract=goods, accepted_on=dt.date(2026, 3, 4))
    service = deal([{"product": products.saas, "quantity": "1", "unit_price": "12000.00"}],
                   signed_on=dt.date(2026, 2, 20), start_on=dt.date(2026, 3, 1),
                   end_on=dt.date(2027, 2, 28))
    svc.record_receipt(actor=finance, contract=service, amount="6000.00",
                       received_on=dt.date(2026, 3, 2), method="bank")
    return goods, service


def test_books_opened_from_history_match_the_live_postings(company, products, deal):
    _history(company, products, deal)
    finance = user_of(company.finance)
    start, end = dt.date(2026, 1, 1), dt.date(2026, 11, 30)
    live = reports.bridge(finance, start, end)
    live_revenue = reports.revenue_by(finance, start, end, "product")
    _wipe_books()
    assert reports.bridge(finance, start, end).cash == 0
    result = backfill(today=TODAY, close_months=False)
    assert (result.contracts, result.receipts, result.acceptances) == (2, 2, 1)
    replayed = reports.bridge(finance, start, end)
    assert (replayed.cash, replayed.revenue, replayed.output_vat, replayed.receivable_close,
            replayed.liability_close) == (live.cash, live.revenue, live.output_vat,
                                          live.receivable_close, live.liability_close)
    assert reports.revenue_by(finance, start, end, "product") == live_revenue


def test_opening_the_books_closes_each_ended_month_and_a_rerun_adds_nothing(
        company, products, deal):
    _history(company, products, deal)
    _wipe_books()
    result = backfill(today=TODAY)
    # February to November 2026 have ended by 3 December.
    assert result.months_closed == 10
    assert Period.objects.filter(status="closed").count() == 10
    finance = user_of(company.finance)
    view = reports.bridge(finance, dt.date(2026, 1, 1), dt.date(2026, 11, 30))
    assert view.difference == 0
    # Nine months (March to November) of the 12,000.00 service: 12000 × 275/365 → by month.
    saas = Obligation.objects.get(fulfilment="service")
    assert Decimal("9000") < saas.recognised_gross < Decimal("9100")
    vouchers, movements = Voucher.objects.count(), Movement.objects.count()
    again = backfill(today=TODAY)
    assert (again.contracts, again.receipts, again.acceptances, again.months_closed) == (
        0, 0, 0, 0)
    assert (Voucher.objects.count(), Movement.objects.count()) == (vouchers, movements)


def test_an_interrupted_opening_resumes_where_it_stopped(company, products, deal):
    _history(company, products, deal)
    _wipe_books()
    backfill(today=dt.date(2026, 2, 28), close_months=False)  # stopped after February
    assert Movement.objects.count() == 1
    result = backfill(today=TODAY)
    assert (result.receipts, result.acceptances) == (1, 1)
    finance = user_of(company.finance)
    view = reports.bridge(finance, dt.date(2026, 1, 1), dt.date(2026, 11, 30))
    assert view.cash == Decimal("7000.00") and view.difference == 0


def test_the_monthly_rollup_rebuilds_to_what_the_postings_kept(company, products, deal):
    from weiying.finance import close, rollup

    _history(company, products, deal)
    for month in (2, 3, 4):
        close.close_period(actor=user_of(company.finance), year=2026, month=month, today=TODAY)
    kept = sorted(MovementMonth.objects.values_list(
        "period", "department_id", "owner_id", "product_id", "bank", "receivable",
        "contract_liability", "pending_vat", "revenue", "output_vat", "cost"))
    assert len(kept) >= 4 and any(row[6] for row in kept)
    assert rollup.rebuild() == len(kept)
    assert sorted(MovementMonth.objects.values_list(
        "period", "department_id", "owner_id", "product_id", "bank", "receivable",
        "contract_liability", "pending_vat", "revenue", "output_vat", "cost")) == kept


def test_spend_recorded_without_a_voucher_is_booked_once(company, products, deal):
    """History loaded in bulk (the demo's marketing spend) gets its vouchers when the books
    are opened, the same entries a live record books, and a re-run books nothing more."""
    from weiying.finance.models import MarketingSpend
    from weiying.finance.services import record_marketing_spend

    live = record_marketing_spend(actor=user_of(company.finance), channel="百度推广",
                                  spent_on=dt.date(2026, 4, 1), amount="3000.00")
    live_entries = sorted(Entry.objects.filter(voucher__source_key=f"marketing:{live.pk}")
                          .values_list("account__role", "debit", "credit"))
    bulk = MarketingSpend.objects.create(channel="抖音", spent_on=dt.date(2026, 5, 1),
                                         amount=Decimal("3000.00"))
    first = backfill(today=TODAY, close_months=False)
    assert first.spends == 1
    entries = sorted(Entry.objects.filter(voucher__source_key=f"marketing:{bulk.pk}")
                     .values_list("account__role", "debit", "credit"))
    assert entries == live_entries
    assert Voucher.objects.get(source_key=f"marketing:{bulk.pk}").on == dt.date(2026, 5, 1)
    assert backfill(today=TODAY, close_months=False).spends == 0
    assert Voucher.objects.filter(source="marketing").count() == 2
