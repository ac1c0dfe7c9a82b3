import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import user_of
from weiying.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from weiying.core.models import AuditLog, DomainEvent
from weiying.pipeline.models import Instalment, Receipt
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.django_db

D = Decimal


def today():
    return timezone.localdate()


def days(n):
    return today() + dt.timedelta(days=n)


# --- Plan ------------------------------------------------------------------------------------
def test_plan_must_add_up_to_the_total(company, make_contract):
    contract = make_contract("signed")  # total 2000.00
    rep = user_of(company.rep_a)
    with pytest.raises(ValidationFailed) as exc:
        svc.plan_instalments(actor=rep, contract=contract,
                             plan=[(days(10), "1000.00"), (days(40), "999.99")])
    assert exc.value.code == "plan_total_mismatch"
    assert str(exc.value.message) == (
        "The instalments add up to ¥1,999.99 but the contract total is ¥2,000.00; make them "
        "equal.")
    plan = svc.plan_instalments(actor=rep, contract=contract,
                                plan=[(days(40), "1200.00"), (days(10), "800.00")])
    assert [(i.seq, i.due_on, i.amount) for i in plan] == [
        (1, days(10), D("800.00")), (2, days(40), D("1200.00"))]
    assert AuditLog.objects.filter(action="contract.plan_instalments").count() == 1


@pytest.mark.parametrize("amount", ["0", "-5.00", "10.001", "abc"])
def test_each_instalment_must_be_above_zero_in_fen(company, make_contract, amount):
    with pytest.raises(ValidationFailed) as exc:
        svc.plan_instalments(actor=user_of(company.rep_a), contract=make_contract("signed"),
                             plan=[(days(1), amount), (days(2), "2000.00")])
    assert exc.value.field == "plan.0.amount"
    assert str(exc.value.message) == (
        "Instalment 1: the amount must be above zero, in yuan and fen.")


def test_plan_needs_a_date(company, make_contract):
    with pytest.raises(ValidationFailed) as exc:
        svc.plan_instalments(actor=user_of(company.rep_a), contract=make_contract("signed"),
                             plan=[("next week", "2000.00")])
    assert (exc.value.code, exc.value.field) == ("date_required", "plan.0.due_on")


def test_empty_plan_is_refused(company, make_contract):
    with pytest.raises(ValidationFailed) as exc:
        svc.plan_instalments(actor=user_of(company.rep_a), contract=make_contract("signed"),
                             plan=[])
    assert str(exc.value.message) == "A collection plan needs at least one instalment."


def test_plan_is_closed_on_completed_and_cancelled_contracts(company, make_contract):
    with pytest.raises(InvalidTransition) as exc:
        svc.plan_instalments(actor=user_of(company.admin), contract=make_contract("completed"),
                             plan=[(days(1), "2000.00")])
    assert str(exc.value.message) == (
        "This contract is completed; its collection plan can no longer change.")


def test_replanning_keeps_instalments_already_collected_on(company, make_contract):
    contract = make_contract("signed")
    rep, finance = user_of(company.rep_a), user_of(company.finance)
    svc.plan_instalments(actor=rep, contract=contract,
                         plan=[(days(-10), "500.00"), (days(20), "1500.00")])
    svc.record_receipt(actor=finance, contract=contract, amount="300.00",
                       received_on=today(), method="bank")
    first = Instalment.objects.get(contract=contract, seq=1)
    # the kept instalment (500) + the new ones must make 2000
    with pytest.raises(ValidationFailed) as exc:
        svc.plan_instalments(actor=rep, contract=contract, plan=[(days(30), "2000.00")])
    assert str(exc.value.message) == (
        "The instalments add up to ¥2,500.00 but the contract total is ¥2,000.00; make them "
        "equal. Instalments already collected on (¥500.00) stay in the plan.")
    plan = svc.plan_instalments(actor=rep, contract=contract,
                                plan=[(days(30), "700.00"), (days(60), "800.00")])
    assert [(i.pk == first.pk, i.seq, i.amount, i.collected) for i in plan] == [
        (True, 1, D("500.00"), D("300.00")),
        (False, 2, D("700.00"), D("0.00")),
        (False, 3, D("800.00"), D("0.00")),
    ]


def test_money_received_before_the_plan_is_allocated_to_it(company, make_contract):
    contract = make_contract("signed")
    svc.record_receipt(actor=user_of(company.finance), contract=contract, amount="900.00",
                       received_on=today(), method="bank")
    plan = svc.plan_instalments(actor=user_of(company.rep_a), contract=contract,
                                plan=[(days(1), "600.00"), (days(2), "1400.00")])
    assert [i.collected for i in plan] == [D("600.00"), D("300.00")]


# --- Receipts --------------------------------------------------------------------------------
def test_receipt_is_allocated_to_the_oldest_open_instalments(company, customers,
                                                            make_contract):
    contract = make_contract("signed")
    svc.plan_instalments(actor=user_of(company.rep_a), contract=contract, plan=[
        (days(-30), "500.00"), (days(-1), "700.00"), (days(30), "800.00")])
    finance = user_of(company.finance)
    receipt = svc.record_receipt(actor=finance, contract=contract, amount="900.00",
                                 received_on=today(), method="bank", reference="工行回单 01")
    assert [i.collected for i in contract.instalments.order_by("seq")] == [
        D("500.00"), D("400.00"), D("0.00")]
    assert receipt.instalment.seq == 1
    assert receipt.recorded_by_id == company.finance.pk
    contract.refresh_from_db()
    assert contract.collected == D("900.00")
    customers.a.refresh_from_db()
    assert customers.a.total_collected == D("900.00")
    event = DomainEvent.objects.get(name="receipt.recorded")
    assert event.data["amount"] == "900.00"
    assert [(a["seq"], a["amount"]) for a in event.data["allocation"]] == [
        (1, "500.00"), (2, "400.00")]


def test_receipt_goes_to_the_named_instalment_first(company, make_contract):
    contract = make_contract("signed")
    plan = svc.plan_instalments(actor=user_of(company.rep_a), contract=contract, plan=[
        (days(-30), "500.00"), (days(30), "1500.00")])
    receipt = svc.record_receipt(actor=user_of(company.finance), contract=contract,
                                 amount="1600.00", received_on=today(), method="wechat_pay",
                                 instalment=plan[1])
    assert receipt.instalment_id == plan[1].pk
    assert [i.collected for i in contract.instalments.order_by("seq")] == [
        D("100.00"), D("1500.00")]


def test_over_receipt_is_refused_and_nothing_is_written(company, customers, make_contract):
    contract = make_contract("signed")
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=contract, amount="1500.00",
                       received_on=today(), method="bank")
    before = (Receipt.objects.count(), DomainEvent.objects.count(), AuditLog.objects.count())
    with pytest.raises(ValidationFailed) as exc:
        svc.record_receipt(actor=finance, contract=contract, amount="500.01",
                           received_on=today(), method="bank", external_id="bank-77")
    assert exc.value.code == "receipt_exceeds_due"
    assert str(exc.value.message) == (
        "This receipt of ¥500.01 is more than the ¥500.00 still due on the contract; record at "
        "most that.")
    assert (Receipt.objects.count(), DomainEvent.objects.count(),
            AuditLog.objects.count()) == before
    contract.refresh_from_db()
    customers.a.refresh_from_db()
    assert contract.collected == customers.a.total_collected == D("1500.00")
    # exactly the outstanding amount fits
    svc.record_receipt(actor=finance, contract=contract, amount="500.00",
                       received_on=today(), method="bank")
    contract.refresh_from_db()
    assert contract.outstanding == D("0.00")


def test_external_id_makes_a_retry_harmless(company, customers, make_contract):
    contract = make_contract("signed")
    finance = user_of(company.finance)
    first = svc.record_receipt(actor=finance, contract=contract, amount="100.00",
                               received_on=today(), method="bank", external_id="erp-1")
    again = svc.record_receipt(actor=finance, contract=contract, amount="100.00",
                               received_on=today(), method="bank", external_id="erp-1")
    assert again.pk == first.pk
    assert Receipt.objects.count() == 1
    assert DomainEvent.objects.filter(name="receipt.recorded").count() == 1
    contract.refresh_from_db()
    customers.a.refresh_from_db()
    assert contract.collected == customers.a.total_collected == D("100.00")


def test_external_id_of_another_contract_is_a_conflict(company, make_contract):
    one, two = make_contract("signed"), make_contract("signed")
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=one, amount="1.00", received_on=today(),
                       method="bank", external_id="erp-2")
    with pytest.raises(Conflict) as exc:
        svc.record_receipt(actor=finance, contract=two, amount="1.00", received_on=today(),
                           method="bank", external_id="erp-2")
    assert exc.value.code == "external_id_reused"


@pytest.mark.parametrize("state", ["draft", "approved"])
def test_receipts_only_on_signed_contracts(company, make_contract, state):
    with pytest.raises(InvalidTransition) as exc:
        svc.record_receipt(actor=user_of(company.admin), contract=make_contract(state),
                           amount="1.00", received_on=today(), method="bank")
    assert str(exc.value.message) == (
        f"This contract is {state}; receipts can be recorded once it is signed.")


def test_receipts_are_refused_on_a_cancelled_contract(company, make_contract):
    contract = svc.cancel_contract(actor=user_of(company.admin), contract=make_contract(),
                                   reason="x")
    with pytest.raises(InvalidTransition) as exc:
        svc.record_receipt(actor=user_of(company.admin), contract=contract, amount="1.00",
                           received_on=today(), method="bank")
    assert str(exc.value.message) == "This contract is cancelled; it takes no receipts."


def test_receipt_on_a_completed_contract_is_allowed(company, make_contract):
    contract = make_contract("completed")
    receipt = svc.record_receipt(actor=user_of(company.finance), contract=contract,
                                 amount="2000.00", received_on=today(), method="bank")
    assert receipt.pk


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"amount": "0"}, "invalid_amount", "amount"),
        ({"amount": "-1.00"}, "invalid_amount", "amount"),
        ({"received_on": days(1)}, "date_in_future", "received_on"),
        ({"method": "bitcoin"}, "invalid_method", "method"),
    ],
)
def test_receipt_input_is_checked(company, make_contract, kwargs, code, field):
    args = {"amount": "1.00", "received_on": today(), "method": "bank", **kwargs}
    with pytest.raises(ValidationFailed) as exc:
        svc.record_receipt(actor=user_of(company.finance), contract=make_contract("signed"),
                           **args)
    assert (exc.value.code, exc.value.field) == (code, field)


def test_instalment_of_another_contract_is_refused(company, make_contract):
    one, two = make_contract("signed"), make_contract("signed")
    plan = svc.plan_instalments(actor=user_of(company.rep_a), contract=two,
                                plan=[(days(1), "2000.00")])
    with pytest.raises(ValidationFailed) as exc:
        svc.record_receipt(actor=user_of(company.finance), contract=one, amount="1.00",
                           received_on=today(), method="bank", instalment=plan[0])
    assert exc.value.code == "instalment_mismatch"


def test_recording_receipts_needs_the_permission_and_the_scope(company, make_contract):
    contract = make_contract("signed")
    with pytest.raises(PermissionDenied):
        svc.record_receipt(actor=user_of(company.rep_a), contract=contract, amount="1.00",
                           received_on=today(), method="bank")
    with pytest.raises(NotFound):
        svc.record_receipt(actor=user_of(company.manager_b), contract=contract, amount="1.00",
                           received_on=today(), method="bank")


def test_customer_value_sums_over_contracts(company, customers, make_contract):
    one, two = make_contract("signed"), make_contract("completed")
    finance = user_of(company.finance)
    svc.record_receipt(actor=finance, contract=one, amount="250.50", received_on=today(),
                       method="bank")
    svc.record_receipt(actor=finance, contract=two, amount="1999.99", received_on=today(),
                       method="alipay")
    customers.a.refresh_from_db()
    assert customers.a.total_signed == D("4000.00")
    assert customers.a.total_collected == D("2250.49")
