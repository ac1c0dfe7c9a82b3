"""Bad input to the finance layer is refused with a message that says why and what to do,
and nothing is written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.conftest import user_of
from weiying.core.errors import Conflict, InvalidTransition, ValidationFailed
from weiying.core.models import AuditLog
from weiying.finance import close, services
from weiying.finance.models import Entry, Invoice, Movement, Refund, Voucher
from weiying.pipeline.services import contracts as svc

TODAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


def _nothing_written(before: tuple[int, ...]) -> None:
    assert (Voucher.objects.count(), Entry.objects.count(), Movement.objects.count(),
            Invoice.objects.count(), Refund.objects.count(), AuditLog.objects.count()) == before


def _counts() -> tuple[int, ...]:
    return (Voucher.objects.count(), Entry.objects.count(), Movement.objects.count(),
            Invoice.objects.count(), Refund.objects.count(), AuditLog.objects.count())


@pytest.fixture
def signed(company, products, deal):
    return deal([{"product": products.box, "quantity": "2", "unit_price": "1130.00"}],
                signed_on=dt.date(2026, 3, 2))


def test_a_voucher_that_would_not_balance(company):
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        services.post_manual_voucher(actor=user_of(company.finance), on="2026-11-20",
                                     summary="调账", lines=[
                                         {"account": "1002", "debit": "100.00"},
                                         {"account": "6001", "credit": "99.99"}])
    assert exc.value.code == "voucher_unbalanced"
    assert str(exc.value.message) == (
        "The voucher does not balance: debits ¥100.00, credits ¥99.99, a difference of ¥0.01. "
        "Correct the amounts so both sides are equal.")
    _nothing_written(before)


@pytest.mark.parametrize(("lines", "code"), [
    ([{"account": "1002", "debit": "1.00"}], "voucher_too_short"),
    ([{"account": "9999", "debit": "1.00"}, {"account": "6001", "credit": "1.00"}],
     "unknown_account"),
    ([{"account": "1002", "debit": "1.00", "credit": "1.00"},
      {"account": "6001", "credit": "1.00"}], "one_side"),
    ([{"account": "1002", "debit": "1.005"}, {"account": "6001", "credit": "1.005"}],
     "invalid_amount"),
    ([{"account": "1002", "debit": "-1.00"}, {"account": "6001", "credit": "-1.00"}],
     "invalid_amount"),
])
def test_malformed_voucher_lines(company, lines, code):
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        services.post_manual_voucher(actor=user_of(company.finance), on="2026-11-20",
                                     summary="调账", lines=lines)
    assert exc.value.code == code
    _nothing_written(before)


def test_a_change_to_a_closed_period(company, signed):
    finance = user_of(company.finance)
    close.close_period(actor=finance, year=2026, month=3, today=TODAY)
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        services.post_manual_voucher(actor=finance, on="2026-03-31", summary="补记",
                                     lines=[{"account": "1002", "debit": "10.00"},
                                            {"account": "6001", "credit": "10.00"}])
    assert exc.value.code == "period_closed"
    assert str(exc.value.message) == (
        "Period 2026-03 is closed; book the correction in an open period.")
    _nothing_written(before)
    # A receipt dated in the closed month is booked on the first day of the next open one.
    svc.record_receipt(actor=finance, contract=signed, amount="100.00",
                       received_on=dt.date(2026, 3, 30), method="bank")
    movement = Movement.objects.get(kind="receipt")
    assert (movement.event_on, movement.on) == (dt.date(2026, 3, 30), dt.date(2026, 4, 1))
    assert Voucher.objects.filter(year=2026, month=3).count() == 0


def test_months_close_in_order_and_only_once_ended(company, signed):
    finance = user_of(company.finance)
    close.close_period(actor=finance, year=2026, month=3, today=TODAY)
    before = _counts()
    with pytest.raises(Conflict) as exc:
        close.close_period(actor=finance, year=2026, month=5, today=TODAY)
    assert exc.value.code == "earlier_period_open"
    assert "2026-04 is still open" in str(exc.value.message)
    with pytest.raises(ValidationFailed) as exc:
        close.close_period(actor=finance, year=2026, month=12, today=TODAY)
    assert exc.value.code == "period_not_ended"
    _nothing_written(before)


def test_a_receipt_for_more_than_is_due(company, signed):
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        svc.record_receipt(actor=user_of(company.finance), contract=signed, amount="2260.01",
                           received_on=dt.date(2026, 3, 5), method="bank")
    assert exc.value.code == "receipt_exceeds_due"
    _nothing_written(before)


def test_an_invoice_on_a_cancelled_contract(company, signed):
    svc.cancel_contract(actor=user_of(company.manager_a), contract=signed, reason="撤单")
    before = _counts()
    with pytest.raises(InvalidTransition) as exc:
        services.issue_invoice(actor=user_of(company.finance), contract=signed,
                               number="04400001", kind="special", issued_on="2026-03-10",
                               gross="100.00", vat_rate="0.13")
    assert exc.value.code == "contract_cancelled"
    assert str(exc.value.message) == (
        "This contract is cancelled; it takes no invoices. Void the invoices issued on it "
        "instead.")
    _nothing_written(before)


def test_an_invoice_beyond_the_contract(company, signed):
    finance = user_of(company.finance)
    invoice = services.issue_invoice(actor=finance, contract=signed, number="04400002",
                                     kind="special", issued_on="2026-03-10", gross="2000.00",
                                     vat_rate="0.13")
    # 2000 / 1.13 = 1769.9115 → 1769.91; VAT 230.09
    assert (invoice.net, invoice.vat) == (Decimal("1769.91"), Decimal("230.09"))
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        services.issue_invoice(actor=finance, contract=signed, number="04400003",
                               kind="ordinary", issued_on="2026-03-11", gross="260.01",
                               vat_rate="0.13")
    assert exc.value.code == "invoice_exceeds_contract"
    assert str(exc.value.message) == (
        "¥2,000.00 is already invoiced on this contract of ¥2,260.00; this invoice can be for "
        "at most ¥260.00.")
    with pytest.raises(ValidationFailed):
        services.issue_invoice(actor=finance, contract=signed, number="04400004",
                               kind="ordinary", issued_on="2026-03-11", gross="10.00",
                               vat_rate="0.17")
    _nothing_written(before)


def test_a_refund_of_what_was_earned(company, signed):
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=signed, amount="2260.00",
                       received_on=dt.date(2026, 3, 5), method="bank")
    ops = user_of(company.operations)
    svc.record_delivery(actor=ops, contract=signed, delivered_on=dt.date(2026, 3, 6))
    svc.record_acceptance(actor=ops, contract=signed, accepted_on=dt.date(2026, 3, 7))
    before = _counts()
    with pytest.raises(ValidationFailed) as exc:
        services.record_refund(actor=finance, contract=signed, amount="1.00",
                               refunded_on=dt.date(2026, 3, 8), reason="退款")
    assert exc.value.code == "refund_exceeds_advance"
    assert "Only ¥0.00 of the money received" in str(exc.value.message)
    _nothing_written(before)


def test_an_automatic_voucher_is_not_reversed_by_hand(company, signed):
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=signed, amount="100.00",
                       received_on=dt.date(2026, 3, 5), method="bank")
    voucher = Voucher.objects.get(source="receipt")
    before = _counts()
    with pytest.raises(InvalidTransition) as exc:
        services.reverse_voucher(actor=finance, voucher=voucher, on="2026-11-20", reason="错")
    assert exc.value.code == "automatic_voucher"
    _nothing_written(before)


def test_a_rep_cannot_post_or_close(company, signed):
    from weiying.core.errors import PermissionDenied

    rep = user_of(company.rep_a)
    before = _counts()
    with pytest.raises(PermissionDenied):
        services.post_manual_voucher(actor=rep, on="2026-11-20", summary="x", lines=[])
    with pytest.raises(PermissionDenied):
        close.close_period(actor=rep, year=2026, month=3, today=TODAY)
    with pytest.raises(PermissionDenied):
        services.record_refund(actor=rep, contract=signed, amount="1.00",
                               refunded_on="2026-03-08", reason="x")
    _nothing_written(before)
